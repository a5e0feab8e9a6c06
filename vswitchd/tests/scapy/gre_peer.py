"""A GRE peer built from scapy, run in the remote namespace by vswitchd/tests/vxlan/gre.rs.

argv: underlay interface, MAC of the host behind the switch, the GRE key (default 7).
1. Sniffs a GRE packet the switch sends (a ping from the host): checks the key, protocol
   0x6558 (transparent Ethernet bridging), a valid outer IPv4 checksum and the inner ICMP.
2. Sends an ICMP echo request inside GRE to the host and waits for the reply inside GRE.
Prints "ok" on success; any failed check raises.
"""
import sys
import time

from scapy.all import GRE, ICMP, IP, AsyncSniffer, Ether, sendp, sniff

iface, host_mac = sys.argv[1], sys.argv[2]
key = int(sys.argv[3]) if len(sys.argv) > 3 else 7

# The host also sends IPv6 neighbour discovery and the like: wait for its ping.
pkts = sniff(
    iface=iface,
    filter="ip proto 47",
    lfilter=lambda x: GRE in x and ICMP in x,
    count=1,
    timeout=15,
)
assert pkts, "no GRE packet with the host's ping from the switch"
p = pkts[0]
g = p[GRE]
assert g.key_present == 1 and g.key == key, f"key: {g.key_present} {g.key}, want {key}"
assert g.proto == 0x6558, f"protocol {g.proto:#x}"
assert g.chksum_present == 0 and g.routing_present == 0 and g.version == 0
outer = p[IP]
sent = outer.chksum
outer.chksum = None
assert IP(bytes(outer)).chksum == sent, "outer IPv4 checksum"
assert ICMP in p and p[ICMP].type == 8, "inner ICMP echo request"
assert p[IP].payload[IP].dst == "10.43.0.2", p.summary()
switch_mac, switch_ip = p[Ether].src, outer.src

req = (
    Ether(dst=switch_mac)
    / IP(src="172.43.0.2", dst=switch_ip)
    / GRE(key_present=1, key=key, proto=0x6558)
    / Ether(src="02:00:00:00:43:02", dst=host_mac)
    / IP(src="10.43.0.2", dst="10.43.0.1")
    / ICMP(type=8, id=77, seq=1)
    / b"scapy-over-gre"
)
sniffer = AsyncSniffer(
    iface=iface,
    filter="ip proto 47",
    lfilter=lambda x: ICMP in x and x[ICMP].type == 0 and x[ICMP].id == 77,
    count=1,
    timeout=10,
)
sniffer.start()
time.sleep(0.5)
for _ in range(3):
    sendp(req, iface=iface, verbose=False)
    time.sleep(0.3)
sniffer.join()
assert sniffer.results, "no echo reply came back inside GRE"
r = sniffer.results[0]
assert r[GRE].key == key
print("ok")
