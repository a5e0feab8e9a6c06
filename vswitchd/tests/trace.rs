//! `flowctl trace` against the real daemon: the trace of a flow, of a given frame, as JSON,
//! with `--generate` (the packet really sent, the counters' changes reported), and the
//! trace itself changing no counter.

mod common;

use common::Daemon;

/// A bridge with three memory ports and a two-table pipeline: IPv4 from p1 has its
/// destination rewritten and goes on to table 1, which sends 10.0.0.9 out of p3; the rest
/// of p1's traffic is flooded by `normal`.
fn setup(d: &Daemon) {
    for p in ["p1", "p2", "p3"] {
        d.ok(&["add-port", "br0", p, "type=memory"]);
    }
    d.ok(&[
        "add-flow",
        "br0",
        "table=0,priority=100,in_port=p1,ip,actions=mod_nw_dst:10.0.0.9,goto_table:1",
    ]);
    d.ok(&["add-flow", "br0", "table=0,priority=10,actions=normal"]);
    d.ok(&[
        "add-flow",
        "br0",
        "table=1,priority=5,ip,nw_dst=10.0.0.9,actions=output:p3",
    ]);
}

#[test]
fn trace_prints_as_ofproto_trace_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    setup(&d);
    let flow = "in_port=p1,udp,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_dst=53";
    let before = d.ok(&["dump-ports", "br0"]);
    let out = d.ok(&["trace", "br0", flow]);
    assert!(out.starts_with("Flow: in_port=1,dl_type=0x800,"), "{out}");
    assert!(out.contains("bridge(\"br0\")\n-------------\n"), "{out}");
    assert!(out.contains(" 0. in_port=1,dl_type=0x800, priority 100\n    set_field:10.0.0.9->nw_dst\n    goto_table:1\n 1. dl_type=0x800,nw_dst=10.0.0.9, priority 5\n    output:3\n"), "{out}");
    assert!(out.contains("\nMegaflow: in_port=1,dl_type=0x800"), "{out}");
    assert!(
        out.ends_with("Datapath actions: set(nw_dst=10.0.0.9),3\n"),
        "{out}"
    );
    // Not from p1: normal floods (nothing learned, and the trace learns nothing).
    let out = d.ok(&[
        "trace",
        "br0",
        "in_port=p2,arp,dl_src=02:00:00:00:00:02,dl_dst=ff:ff:ff:ff:ff:ff",
    ]);
    assert!(out.contains("    NORMAL\n"), "{out}");
    assert!(out.ends_with("Datapath actions: 1,3\n"), "{out}");
    assert!(
        !d.ok(&["fdb-show", "br0"]).contains("02:00:00:00:00:02"),
        "learned nothing"
    );
    // Nothing counted: ports and flows read as before.
    assert_eq!(d.ok(&["dump-ports", "br0"]), before);
    let flows = d.ok(&["dump-flows", "br0"]);
    assert!(flows.lines().all(|l| l.contains("n_packets=0,")), "{flows}");

    // The same packet given as a frame: the same trace.
    let hex = "020000000002020000000001080045000020000000004011000000000a0000010a00000203e800350000c5a00000000000000000000000000000000000000000";
    let out = d.ok(&["trace", "br0", "in_port=p1", "--packet", hex]);
    assert!(
        out.ends_with("Datapath actions: set(nw_dst=10.0.0.9),3\n"),
        "{out}"
    );

    // JSON: passes, lines with their flows, outputs.
    let j = d.json(&["trace", "br0", flow]);
    assert_eq!(j["datapath_actions"], "set(nw_dst=10.0.0.9),3", "{j}");
    assert_eq!(j["outputs"][0]["name"], "p3", "{j}");
    let nodes = j["passes"][0]["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["kind"], "table", "{j}");
    assert_eq!(nodes[0]["rule"]["priority"], 100, "{j}");
    assert!(
        nodes[0]["rule"]["flow"]
            .as_str()
            .unwrap()
            .contains("goto_table:1"),
        "{j}"
    );

    // A miss and a bad flow.
    d.ok(&["del-flows", "--strict", "br0", "table=0,priority=10"]);
    d.ok(&["del-flows", "--strict", "br0", "table=0,priority=0"]);
    let out = d.ok(&["trace", "br0", "in_port=p2,ip"]);
    assert!(out.contains(" 0. No match.\n"), "{out}");
    assert!(out.ends_with("Datapath actions: drop\n"), "{out}");
    let o = d.fc(&["trace", "br0", "ip,nw_dst=10.0.0.1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("in_port is required"));
    let o = d.fc(&["trace", "br9", "in_port=1"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOT_FOUND"));
}

#[test]
fn generate_sends_the_packet_and_reports_what_the_counters_saw() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    setup(&d);
    let out = d.ok(&[
        "trace",
        "br0",
        "in_port=p1,udp,nw_dst=10.0.0.2,tp_dst=53",
        "--generate",
    ]);
    assert!(
        out.contains("Datapath actions: set(nw_dst=10.0.0.9),3\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "\nGenerated: the packet was sent through the tables\n  sent: p3 tx_packets +1\n"
        ),
        "{out}"
    );
    let j = d.json(&[
        "trace",
        "br0",
        "in_port=p2,ip,dl_src=02:00:00:00:00:05,dl_dst=02:00:00:00:00:06",
        "--generate",
    ]);
    assert_eq!(j["generated"]["settled"], true, "{j}");
    assert_eq!(j["generated"]["tx_packets"]["p1"], 1, "{j}");
    assert_eq!(j["generated"]["tx_packets"]["p3"], 1, "{j}");
}
