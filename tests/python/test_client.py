"""A Python controller adds a flow through the vswitch.v1 API and reads it back.

Run by tests/python/run.sh (which generates the stubs and starts vswitchd):
    test_client.py unix:/path/to/api.sock
"""
import sys

import grpc
from vswitch.v1 import vswitch_pb2 as pb
from vswitch.v1 import vswitch_pb2_grpc as rpc


def main(target: str) -> None:
    # grpcio puts the socket path in :authority for unix targets, which HTTP/2 servers
    # may reject; name a plain host instead.
    channel = grpc.insecure_channel(target, options=[("grpc.default_authority", "localhost")])
    stub = rpc.SwitchStub(channel)

    bridges = [b.name for b in stub.ListBridges(pb.ListBridgesRequest()).bridges]
    assert bridges == ["br0"], bridges
    port = stub.AddPort(pb.AddPortRequest(
        bridge="br0", port=pb.PortConfig(name="py1", type="memory", requested_ofport=3))).port
    assert port.port_no == 3, port

    # priority=100,cookie=0x42,ip,nw_dst=10.0.0.0/24,actions=output:3
    flow = pb.Flow(
        table_id=0, priority=100, cookie=0x42,
        match=pb.Match(fields=[
            pb.FieldMatch(field=pb.FIELD_ETH_TYPE, value=b"\x08\x00"),
            pb.FieldMatch(field=pb.FIELD_IPV4_DST, value=bytes([10, 0, 0, 0]),
                          mask=bytes([255, 255, 255, 0])),
        ]),
        instructions=[pb.Instruction(apply_actions=pb.ApplyActions(actions=[
            pb.Action(output=pb.Output(port=pb.PortRef(name="py1")))]))],
    )
    resp = stub.Write(pb.WriteRequest(
        bridge="br0",
        updates=[pb.Update(type=pb.Update.TYPE_INSERT, entity=pb.Entity(flow=flow))],
        atomicity=pb.ATOMICITY_ALL_OR_NONE))
    assert len(resp.statuses) == 0, resp

    flows = [e.flow
             for r in stub.Read(pb.ReadRequest(bridge="br0", filters=[pb.ReadFilter(
                 flows=pb.FlowFilter(cookie=0x42, cookie_mask=0xFFFFFFFFFFFFFFFF))]))
             for e in r.entities]
    assert len(flows) == 1, flows
    got = flows[0]
    assert (got.table_id, got.priority, got.cookie) == (0, 100, 0x42), got
    fields = {f.field: (f.value, f.mask) for f in got.match.fields}
    assert fields[pb.FIELD_ETH_TYPE] == (b"\x08\x00", b""), fields
    assert fields[pb.FIELD_IPV4_DST] == (bytes([10, 0, 0, 0]), bytes([255, 255, 255, 0])), fields
    # The port name was resolved to its number when the flow was stored.
    out = got.instructions[0].apply_actions.actions[0].output.port
    assert out.WhichOneof("port") == "number" and out.number == 3, out
    assert got.stats.packet_count == 0

    # A refused update: precise status, nothing changed.
    bad = pb.Flow(priority=5, instructions=[pb.Instruction(apply_actions=pb.ApplyActions(
        actions=[pb.Action(group=99)]))])
    try:
        stub.Write(pb.WriteRequest(
            bridge="br0",
            updates=[pb.Update(type=pb.Update.TYPE_INSERT, entity=pb.Entity(flow=bad))],
            atomicity=pb.ATOMICITY_ALL_OR_NONE))
        raise AssertionError("a flow using a missing group was accepted")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND, e
        assert "updates[0]" in e.details() and "group" in e.details(), e.details()
    n = sum(len(r.entities) for r in stub.Read(pb.ReadRequest(bridge="br0")))
    assert n == 2, n  # the default NORMAL flow and ours
    print("python client: add-flow and read-back OK")


if __name__ == "__main__":
    main(sys.argv[1])
