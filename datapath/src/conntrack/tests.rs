//! The tracker on real frames: states, zones, limits, expiry, NAT, dumps.

use std::net::IpAddr;

use super::testpkt::*;
use super::*;

/// A tracker, one poll thread's handle, and a clock.
pub(super) struct H {
    pub ct: Conntrack,
    pub t: CtThread,
    pub now: u64,
}

impl H {
    pub fn new() -> H {
        H::with(CtConfig::default())
    }

    pub fn with(cfg: CtConfig) -> H {
        let ct = Conntrack::new(cfg);
        let t = ct.thread();
        H { ct, t, now: 1_000 }
    }

    /// Runs `act` over one frame with metadata `md`; the frame afterwards and its metadata.
    pub fn run_md(&mut self, act: &CtAction, f: &[u8], md: CtMeta) -> (Vec<u8>, CtMeta) {
        let mut pkts = [Some(buf(f))];
        let mut meta = [md];
        self.ct
            .execute(&mut self.t, act, &mut pkts, &mut meta, &[0], self.now);
        let out = pkts[0].as_ref().map_or(vec![], |b| b.data().to_vec());
        (out, meta[0])
    }

    pub fn run(&mut self, act: &CtAction, f: &[u8]) -> (Vec<u8>, CtMeta) {
        self.run_md(act, f, CtMeta::default())
    }

    pub fn state(&mut self, act: &CtAction, f: &[u8]) -> String {
        self.run(act, f).1.state.to_string()
    }

    pub fn dump(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ct
            .dump(&CtFilter::default(), self.now)
            .iter()
            .map(|e| e.to_string())
            .collect();
        v.sort();
        v
    }

    pub fn counter(&self, name: &str) -> u64 {
        let s = self.ct.stats();
        s.invalid
            .iter()
            .chain(&s.refused)
            .chain(&s.frags)
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}

pub(super) fn commit(zone: u16) -> CtAction {
    CtAction {
        zone,
        commit: true,
        ..CtAction::default()
    }
}

pub(super) fn track(zone: u16) -> CtAction {
    CtAction {
        zone,
        ..CtAction::default()
    }
}

fn a() -> A {
    v4("10.0.0.1")
}
fn b() -> A {
    v4("10.0.0.2")
}

#[test]
fn udp_new_then_established_both_ways() {
    let mut h = H::new();
    assert_eq!(h.state(&track(0), &udp(a(), b(), 1000, 53)), "+trk+new");
    assert!(h.ct.is_empty(), "not committed");
    assert_eq!(h.state(&commit(0), &udp(a(), b(), 1000, 53)), "+trk+new");
    assert_eq!(h.ct.len(), 1);
    assert_eq!(h.state(&track(0), &udp(a(), b(), 1000, 53)), "+trk+new");
    assert_eq!(h.state(&track(0), &udp(b(), a(), 53, 1000)), "+trk+est+rpl");
    assert_eq!(h.state(&track(0), &udp(a(), b(), 1000, 53)), "+trk+est");
    assert_eq!(
        h.dump(),
        [
            "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=1000,dport=53),reply=(src=10.0.0.2,dst=10.0.0.1,sport=53,dport=1000)"
        ]
    );
    let (_, md) = h.run(&track(0), &udp(b(), a(), 53, 1000));
    let o = md.orig.expect("orig tuple");
    assert_eq!(
        (md.ct_nw_src(), md.ct_nw_dst()),
        (a().bits() as u32, b().bits() as u32)
    );
    assert_eq!(
        (md.ct_tp_src(), md.ct_tp_dst(), md.ct_nw_proto()),
        (1000, 53, 17)
    );
    assert!(!o.v6);
}

#[test]
fn tcp_handshake_data_close() {
    let mut h = H::new();
    let (c, s) = (a(), b());
    let st = |h: &mut H, f: Vec<u8>| h.state(&commit(0), &f);
    assert_eq!(st(&mut h, tcp(c, s, 40000, 80, 100, 0, SYN, 0)), "+trk+new");
    assert_eq!(
        st(&mut h, tcp(s, c, 80, 40000, 5000, 101, SYN | ACK, 0)),
        "+trk+est+rpl"
    );
    assert_eq!(
        st(&mut h, tcp(c, s, 40000, 80, 101, 5001, ACK, 0)),
        "+trk+est"
    );
    assert!(
        h.dump()[0].ends_with("protoinfo=(state=ESTABLISHED)"),
        "{:?}",
        h.dump()
    );
    assert_eq!(
        st(&mut h, tcp(c, s, 40000, 80, 101, 5001, ACK, 100)),
        "+trk+est"
    );
    // Far past the window the server offered: out of window.
    assert_eq!(
        st(&mut h, tcp(c, s, 40000, 80, 101 + 3_000_000, 5001, ACK, 10)),
        "+trk+inv"
    );
    assert_eq!(h.counter("ct_invalid_tcp_out_of_window"), 1);
    assert_eq!(
        st(&mut h, tcp(s, c, 80, 40000, 5001, 201, ACK, 0)),
        "+trk+est+rpl"
    );
    assert_eq!(
        st(&mut h, tcp(c, s, 40000, 80, 201, 5001, FIN | ACK, 0)),
        "+trk+est"
    );
    assert_eq!(
        st(&mut h, tcp(s, c, 80, 40000, 5001, 202, FIN | ACK, 0)),
        "+trk+est+rpl"
    );
    assert_eq!(
        st(&mut h, tcp(c, s, 40000, 80, 202, 5002, ACK, 0)),
        "+trk+est"
    );
    assert!(
        h.dump()[0].ends_with("protoinfo=(state=TIME_WAIT)"),
        "{:?}",
        h.dump()
    );
    // A new SYN on the closed connection starts over.
    assert_eq!(
        st(&mut h, tcp(c, s, 40000, 80, 9000, 0, SYN, 0)),
        "+trk+new"
    );
    assert!(
        h.dump()[0].ends_with("protoinfo=(state=SYN_SENT)"),
        "{:?}",
        h.dump()
    );
    assert_eq!(h.ct.len(), 1);
}

#[test]
fn tcp_refuses_what_cannot_start_a_connection() {
    let mut h = H::new();
    assert_eq!(
        h.state(&commit(0), &tcp(a(), b(), 1, 2, 7, 9, SYN | ACK, 0)),
        "+trk+inv"
    );
    assert_eq!(
        h.state(&commit(0), &tcp(a(), b(), 1, 2, 7, 9, SYN | FIN, 0)),
        "+trk+inv"
    );
    assert_eq!(h.counter("ct_invalid_tcp_not_new"), 2);
    // A mid-stream ACK picks the connection up, as OVS does.
    assert_eq!(
        h.state(&commit(0), &tcp(a(), b(), 1, 2, 7, 9, ACK, 10)),
        "+trk+new"
    );
    assert_eq!(
        h.state(&commit(0), &tcp(b(), a(), 2, 1, 9, 17, ACK, 0)),
        "+trk+est+rpl"
    );
    assert!(h.ct.is_empty() || h.ct.len() == 1);
}

#[test]
fn rst_must_hit_the_sequence_number() {
    let mut h = H::new();
    let (c, s) = (a(), b());
    h.run(&commit(0), &tcp(c, s, 3000, 22, 10, 0, SYN, 0));
    h.run(&commit(0), &tcp(s, c, 22, 3000, 500, 11, SYN | ACK, 0));
    h.run(&commit(0), &tcp(c, s, 3000, 22, 11, 501, ACK, 0));
    assert_eq!(
        h.state(&commit(0), &tcp(s, c, 22, 3000, 900, 0, RST, 0)),
        "+trk+inv"
    );
    assert_eq!(
        h.state(&commit(0), &tcp(s, c, 22, 3000, 501, 0, RST, 0)),
        "+trk+est+rpl"
    );
    assert!(h.dump()[0].ends_with("protoinfo=(state=TIME_WAIT)"));
}

#[test]
fn liberal_mode_lets_out_of_window_pass() {
    let mut h = H::new();
    h.ct.set_tcp_liberal(true);
    let (c, s) = (a(), b());
    h.run(&commit(0), &tcp(c, s, 3000, 22, 10, 0, SYN, 0));
    h.run(&commit(0), &tcp(s, c, 22, 3000, 500, 11, SYN | ACK, 0));
    assert_eq!(
        h.state(&commit(0), &tcp(c, s, 3000, 22, 90_000_000, 501, ACK, 1)),
        "+trk+est"
    );
}

#[test]
fn zones_do_not_see_each_other() {
    let mut h = H::new();
    h.run(&commit(1), &udp(a(), b(), 5, 6));
    assert_eq!(h.state(&track(2), &udp(b(), a(), 6, 5)), "+trk+new");
    assert_eq!(h.state(&track(1), &udp(b(), a(), 6, 5)), "+trk+est+rpl");
    assert_eq!(
        h.dump(),
        [
            "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=5,dport=6),reply=(src=10.0.0.2,dst=10.0.0.1,sport=6,dport=5),zone=1"
        ]
    );
}

#[test]
fn icmp_echo_and_errors() {
    let mut h = H::new();
    assert_eq!(h.state(&commit(0), &echo(b(), a(), 7, true)), "+trk+inv");
    assert_eq!(h.counter("ct_invalid_icmp_not_new"), 1);
    assert_eq!(h.state(&commit(0), &echo(a(), b(), 7, false)), "+trk+new");
    assert_eq!(
        h.state(&commit(0), &echo(b(), a(), 7, true)),
        "+trk+est+rpl"
    );
    assert_eq!(
        h.dump(),
        [
            "icmp,orig=(src=10.0.0.1,dst=10.0.0.2,id=7,type=8,code=0),reply=(src=10.0.0.2,dst=10.0.0.1,id=7,type=0,code=0)"
        ]
    );
    let (_, md) = h.run(&track(0), &echo(a(), b(), 7, false));
    assert_eq!((md.ct_tp_src(), md.ct_tp_dst()), (8, 0));
    // A port unreachable about a UDP datagram of a known connection is related.
    h.run(&commit(0), &udp(a(), b(), 1234, 9));
    let err = icmp_error(b(), a(), &strip(&udp(a(), b(), 1234, 9)));
    assert_eq!(h.state(&track(0), &err), "+trk+rel+rpl");
    let other = icmp_error(b(), a(), &strip(&udp(a(), b(), 1235, 9)));
    assert_eq!(h.state(&track(0), &other), "+trk+inv");
    assert_eq!(h.counter("ct_invalid_icmp_error_no_conn"), 1);
    // Quoting a packet that was not sent by the error's receiver is refused.
    let spoof = icmp_error(b(), v4("10.0.0.3"), &strip(&udp(a(), b(), 1234, 9)));
    assert_eq!(h.state(&track(0), &spoof), "+trk+inv");
    assert_eq!(h.counter("ct_invalid_icmp_error_bad_inner"), 1);
}

#[test]
fn ipv6_udp_echo_and_error() {
    let mut h = H::new();
    let (x, y) = (v6("2001:db8::1"), v6("2001:db8::2"));
    assert_eq!(h.state(&commit(3), &udp(x, y, 4000, 53)), "+trk+new");
    assert_eq!(h.state(&commit(3), &udp(y, x, 53, 4000)), "+trk+est+rpl");
    assert_eq!(h.state(&commit(3), &echo(x, y, 1, false)), "+trk+new");
    assert_eq!(h.state(&commit(3), &echo(y, x, 1, true)), "+trk+est+rpl");
    let err = icmp_error(y, x, &strip(&udp(x, y, 4000, 53)));
    assert_eq!(h.state(&track(3), &err), "+trk+rel+rpl");
    let (_, md) = h.run(&track(3), &udp(y, x, 53, 4000));
    assert_eq!(md.ct_ipv6_src(), x.bits());
    assert_eq!(md.ct_nw_src(), 0);
    assert!(h.dump().contains(&"udp,orig=(src=2001:db8::1,dst=2001:db8::2,sport=4000,dport=53),reply=(src=2001:db8::2,dst=2001:db8::1,sport=53,dport=4000),zone=3".to_string()));
}

#[test]
fn malformed_packets_are_invalid_by_reason() {
    let mut h = H::new();
    let mut f = udp(a(), b(), 1, 2);
    f[14 + 10] ^= 0xff; // IPv4 header checksum
    assert_eq!(h.state(&commit(0), &f), "+trk+inv");
    let mut f = udp(a(), b(), 1, 2);
    f[14 + 20 + 8] ^= 0xff; // payload: UDP checksum no longer matches
    assert_eq!(h.state(&commit(0), &f), "+trk+inv");
    let arp = [0u8; 60];
    assert_eq!(h.state(&commit(0), &arp), "+trk+inv");
    assert_eq!(h.state(&commit(0), &udp(a(), b(), 0, 2)), "+trk+inv");
    assert_eq!(h.counter("ct_invalid_bad_ip_checksum"), 1);
    assert_eq!(h.counter("ct_invalid_bad_l4_checksum"), 1);
    assert_eq!(h.counter("ct_invalid_not_ip"), 1);
    assert_eq!(h.counter("ct_invalid_port_zero"), 1);
    assert!(h.ct.is_empty());
}

#[test]
fn zone_limits_refuse_and_count() {
    let mut h = H::new();
    h.ct.set_zone_limit(5, Some(2));
    for p in 0..3 {
        assert_eq!(h.state(&commit(5), &udp(a(), b(), 100 + p, 7)), "+trk+new");
    }
    assert_eq!(h.ct.zone_limit(5), (2, 2));
    assert_eq!(h.counter("ct_refused_zone_limit"), 1);
    h.ct.set_default_zone_limit(1);
    h.run(&commit(6), &udp(a(), b(), 1, 7));
    h.run(&commit(6), &udp(a(), b(), 2, 7));
    assert_eq!(h.ct.zone_limit(6), (1, 1));
    h.ct.set_zone_limit(6, Some(0));
    h.run(&commit(6), &udp(a(), b(), 2, 7));
    assert_eq!(h.ct.zone_limit(6), (0, 2), "0 is unlimited");
    let stats = h.ct.stats();
    assert_eq!(stats.per_zone_proto.get(&(5, "udp".into())), Some(&2));
    assert_eq!(stats.per_zone_proto.get(&(6, "udp".into())), Some(&2));
}

#[test]
fn the_oldest_unanswered_connection_is_evicted_first() {
    let mut h = H::with(CtConfig {
        max_conns: 4,
        ..CtConfig::default()
    });
    // One answered connection, then three not.
    h.run(&commit(0), &udp(a(), b(), 1, 7));
    h.run(&commit(0), &udp(b(), a(), 7, 1));
    for p in 2..=4 {
        h.now += 1;
        h.run(&commit(0), &udp(a(), b(), p, 7));
    }
    assert_eq!(h.ct.len(), 4);
    h.run(&commit(0), &udp(a(), b(), 5, 7));
    assert_eq!(h.ct.len(), 4);
    let d = h.dump().join("\n");
    assert!(d.contains("sport=1,"), "the answered one stays: {d}");
    assert!(!d.contains("sport=2,"), "the oldest unanswered went: {d}");
    assert!(d.contains("sport=5,"));
    assert_eq!(h.ct.stats().evicted, 1);
    // When every connection has been answered, nothing can go: refused.
    for p in 3..=5 {
        h.run(&commit(0), &udp(b(), a(), 7, p));
    }
    assert_eq!(h.state(&commit(0), &udp(a(), b(), 6, 7)), "+trk+new");
    assert_eq!(h.counter("ct_refused_table_full"), 1);
    assert_eq!(h.ct.len(), 4);
}

#[test]
fn connections_expire_by_protocol_timeouts_and_sweep() {
    let mut h = H::new();
    h.ct.set_timeouts(Timeouts {
        udp_first: 5,
        ..Timeouts::default()
    });
    h.run(&commit(0), &udp(a(), b(), 1, 7));
    h.run(&commit(0), &echo(a(), b(), 3, false));
    h.now += 6_000;
    // Expired entries read as absent before the sweep reaches them.
    assert_eq!(h.state(&track(0), &udp(b(), a(), 7, 1)), "+trk+new");
    assert_eq!(h.ct.sweep(h.now, 1 << 20), 1);
    assert_eq!(h.ct.len(), 1, "ICMP lives 60 s");
    h.now += 60_000;
    assert_eq!(h.ct.maintain(h.now, 1 << 20), 1);
    assert!(h.ct.is_empty());
    assert_eq!(h.ct.stats().expired, 2);
    assert_eq!(h.ct.timeouts().udp_first, 5);
}

#[test]
fn mark_and_label_live_on_the_connection() {
    let mut h = H::new();
    let set = CtAction {
        mark: Some((0x5, 0xff)),
        label: Some((0x1 << 64 | 0x2, u128::MAX)),
        ..commit(0)
    };
    let (_, md) = h.run(&set, &udp(a(), b(), 1, 7));
    assert_eq!((md.mark, md.label), (5, 0x1 << 64 | 2));
    let (_, md) = h.run(&track(0), &udp(b(), a(), 7, 1));
    assert_eq!((md.mark, md.label), (5, 0x1 << 64 | 2));
    let more = CtAction {
        mark: Some((0x100, 0xf00)),
        ..commit(0)
    };
    assert_eq!(h.run(&more, &udp(a(), b(), 1, 7)).1.mark, 0x105);
    assert!(
        h.dump()[0].ends_with(",mark=261,labels=0x10000000000000002"),
        "{:?}",
        h.dump()
    );
}

#[test]
fn flush_by_zone_and_by_tuple() {
    let mut h = H::new();
    h.run(&commit(1), &udp(a(), b(), 1, 7));
    h.run(&commit(1), &udp(a(), b(), 2, 7));
    h.run(&commit(2), &udp(a(), b(), 1, 7));
    let t = super::tuple::parse(&udp(a(), b(), 1, 7), 1, true)
        .expect("parses")
        .tuple;
    assert_eq!(h.ct.flush(&CtFilter::tuple(&t)), 1);
    assert_eq!(h.ct.len(), 2);
    assert_eq!(
        h.ct.flush(&CtFilter {
            zone: Some(1),
            ..CtFilter::default()
        }),
        1
    );
    assert_eq!(h.ct.len(), 1);
    assert!(h.dump()[0].ends_with("zone=2"));
    assert_eq!(h.ct.flush(&CtFilter::default()), 1);
    assert!(h.ct.is_empty());
}

#[test]
fn force_replaces_a_connection_seen_backwards() {
    let mut h = H::new();
    h.run(&commit(0), &udp(a(), b(), 1, 7));
    let force = CtAction {
        force: true,
        ..commit(0)
    };
    assert_eq!(h.state(&force, &udp(b(), a(), 7, 1)), "+trk+new");
    assert_eq!(
        h.dump(),
        [
            "udp,orig=(src=10.0.0.2,dst=10.0.0.1,sport=7,dport=1),reply=(src=10.0.0.1,dst=10.0.0.2,sport=1,dport=7)"
        ]
    );
}

fn snat(addr: &str, lo: u16, hi: u16) -> CtAction {
    CtAction {
        nat: Some(Nat::Src(
            NatRange::addr(addr.parse::<IpAddr>().expect("ip")).ports(lo, hi),
        )),
        ..commit(0)
    }
}

fn nat_apply(zone: u16) -> CtAction {
    CtAction {
        nat: Some(Nat::Apply),
        ..track(zone)
    }
}

#[test]
fn snat_rewrites_both_directions_with_checksums_right() {
    let mut h = H::new();
    let pub_ip = v4("192.0.2.1");
    let (f, md) = h.run(&snat("192.0.2.1", 0, 0), &udp(a(), b(), 40000, 53));
    assert_eq!(md.state.to_string(), "+trk+new+snat");
    assert_eq!(
        f,
        udp(pub_ip, b(), 40000, 53),
        "source address only: the port was free"
    );
    assert!(checksums_ok(&f));
    let (f, md) = h.run(&nat_apply(0), &udp(b(), pub_ip, 53, 40000));
    assert_eq!(md.state.to_string(), "+trk+est+rpl+dnat");
    assert_eq!(f, udp(b(), a(), 53, 40000));
    assert_eq!(
        h.dump(),
        [
            "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=53),reply=(src=10.0.0.2,dst=192.0.2.1,sport=53,dport=40000)"
        ]
    );
    // Another host with the same source port gets another port.
    let (f, _) = h.run(
        &snat("192.0.2.1", 0, 0),
        &udp(v4("10.0.0.9"), b(), 40000, 53),
    );
    let t = super::tuple::parse(&f, 0, true).expect("parses").tuple;
    assert_eq!(t.src, pub_ip.bits());
    assert_ne!(t.sport, 40000);
    assert!(t.sport >= 1024);
    // Without `nat` in the action nothing is rewritten.
    let (f, md) = h.run(&track(0), &udp(b(), pub_ip, 53, 40000));
    assert_eq!(f, udp(b(), pub_ip, 53, 40000));
    assert_eq!(md.state.to_string(), "+trk+est+rpl");
}

#[test]
fn tcp_snat_keeps_tracking_the_translated_connection() {
    let mut h = H::new();
    let n = v4("192.0.2.1");
    let (c, s) = (a(), b());
    let act = snat("192.0.2.1", 5000, 5000);
    let (f, _) = h.run(&act, &tcp(c, s, 40000, 80, 100, 0, SYN, 0));
    assert_eq!(f, tcp(n, s, 5000, 80, 100, 0, SYN, 0));
    let (f, md) = h.run(&act, &tcp(s, n, 80, 5000, 7000, 101, SYN | ACK, 0));
    assert_eq!(f, tcp(s, c, 80, 40000, 7000, 101, SYN | ACK, 0));
    assert_eq!(md.state.to_string(), "+trk+est+rpl+dnat");
    // The only port is taken: a second client is refused.
    let (_, md) = h.run(&act, &tcp(v4("10.0.0.5"), s, 40000, 80, 1, 0, SYN, 0));
    assert_eq!(md.state.to_string(), "+trk+new");
    assert_eq!(h.counter("ct_refused_nat_exhausted"), 1);
}

#[test]
fn dnat_and_hairpin() {
    let mut h = H::new();
    let (client, host, server) = (a(), v4("192.0.2.10"), v4("10.0.0.80"));
    let dnat = CtAction {
        nat: Some(Nat::Dst(
            NatRange::addr("10.0.0.80".parse().expect("ip")).ports(80, 80),
        )),
        ..commit(0)
    };
    let (f, md) = h.run(&dnat, &udp(client, host, 3333, 8080));
    assert_eq!(f, udp(client, server, 3333, 80));
    assert_eq!(md.state.to_string(), "+trk+new+dnat");
    let (f, md) = h.run(&nat_apply(0), &udp(server, client, 80, 3333));
    assert_eq!(f, udp(host, client, 8080, 3333));
    assert_eq!(md.state.to_string(), "+trk+est+rpl+snat");
    // Hairpin: the server reaches its own published port. The translated packet goes from
    // the server to itself, and its reply comes back from the published address.
    let (f, _) = h.run(&dnat, &udp(server, host, 4444, 8080));
    assert_eq!(f, udp(server, server, 4444, 80));
    let (f, md) = h.run(&nat_apply(0), &udp(server, server, 80, 4444));
    assert_eq!(f, udp(host, server, 8080, 4444));
    assert_eq!(md.state.to_string(), "+trk+est+rpl+snat");
    // Hairpin as OVS pipelines do it: DNAT in zone 1, then SNAT to the host in zone 2, so
    // the server's reply comes back through the switch.
    let mut h = H::new();
    let d1 = CtAction { zone: 1, ..dnat };
    let s2 = CtAction {
        zone: 2,
        nat: Some(Nat::Src(NatRange::addr("192.0.2.10".parse().expect("ip")))),
        ..commit(2)
    };
    let (f, md) = h.run(&d1, &udp(server, host, 4444, 8080));
    let (f, _) = h.run_md(&s2, &f, md);
    assert_eq!(f, udp(host, server, 4444, 80));
    let (f, md) = h.run(&nat_apply(2), &udp(server, host, 80, 4444));
    let (f, md) = h.run_md(&nat_apply(1), &f, md);
    assert_eq!(f, udp(host, server, 8080, 4444));
    assert_eq!(md.state.to_string(), "+trk+est+rpl+snat");
}

#[test]
fn recirculated_translated_packets_are_found_again() {
    let mut h = H::new();
    let act = snat("192.0.2.1", 0, 0);
    let (f, md) = h.run(&act, &udp(a(), b(), 1000, 53));
    // The same packet through `ct(commit,nat(...))` again in the same zone: found by its
    // reverse, not translated twice, not a second connection.
    let (f2, md2) = h.run_md(&act, &f, md);
    assert_eq!(f2, f);
    assert_eq!(md2.state.to_string(), "+trk+new+snat");
    // And through a `ct` without NAT: found by the original tuple in the metadata.
    let (_, md3) = h.run_md(&commit(0), &f, md);
    assert_eq!(md3.orig, md.orig);
    assert_eq!(h.ct.len(), 1);
}

#[test]
fn icmp_errors_through_nat_are_rewritten_inside_and_out() {
    let mut h = H::new();
    let (pub_ip, router) = (v4("192.0.2.1"), v4("198.51.100.1"));
    let (sent, _) = h.run(&snat("192.0.2.1", 0, 0), &udp(a(), b(), 40000, 53));
    // A router beyond the NAT reports the translated datagram undeliverable.
    let err = icmp_error(router, pub_ip, &strip(&sent));
    let (f, md) = h.run(&nat_apply(0), &err);
    assert_eq!(md.state.to_string(), "+trk+rel+rpl+dnat");
    assert_eq!(
        f,
        icmp_error(router, a(), &strip(&udp(a(), b(), 40000, 53)))
    );
    assert!(checksums_ok(&f));
    // IPv6 too.
    let mut h = H::new();
    let (x, y, n6) = (v6("fd00::1"), v6("2001:db8::2"), v6("2001:db8::100"));
    let act = CtAction {
        nat: Some(Nat::Src(NatRange::addr(
            "2001:db8::100".parse().expect("ip"),
        ))),
        ..commit(0)
    };
    let (sent, _) = h.run(&act, &udp(x, y, 40000, 53));
    assert_eq!(sent, udp(n6, y, 40000, 53));
    let (f, md) = h.run(&nat_apply(0), &icmp_error(y, n6, &strip(&sent)));
    assert_eq!(md.state.to_string(), "+trk+rel+rpl+dnat");
    assert_eq!(f, icmp_error(y, x, &strip(&udp(x, y, 40000, 53))));
}

#[test]
fn nat_ports_stay_unique_across_threads_and_come_back_on_expiry() {
    use std::sync::Arc;
    let ct = Arc::new(Conntrack::new(CtConfig::default()));
    let act = snat("192.0.2.1", 10000, 10999);
    let threads: Vec<_> = (0..4u16)
        .map(|k| {
            let ct = ct.clone();
            std::thread::spawn(move || {
                let mut t = ct.thread();
                for i in 0..300u16 {
                    let src = v4(&format!("10.{k}.{}.{}", i / 250, i % 250 + 1));
                    let mut pkts = [Some(buf(&udp(src, b(), 5555, 53)))];
                    let mut md = [CtMeta::default()];
                    ct.execute(&mut t, &act, &mut pkts, &mut md, &[0], 1000);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let d = ct.dump(&CtFilter::default(), 1000);
    assert_eq!(d.len(), 1000, "1200 asked, 1000 ports");
    let mut ports: Vec<u16> = d.iter().map(|e| e.reply.dport).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 1000);
    assert!(ports.iter().all(|p| (10000..=10999).contains(p)));
    assert_eq!(
        ct.stats()
            .refused
            .iter()
            .find(|r| r.0 == "ct_refused_nat_exhausted")
            .map(|r| r.1),
        Some(200)
    );
    // Expiry gives the ports back.
    ct.sweep(1000 + 61_000, usize::MAX);
    assert!(ct.is_empty());
    let mut t = ct.thread();
    let mut pkts = [Some(buf(&udp(a(), b(), 5555, 53)))];
    let mut md = [CtMeta::default()];
    ct.execute(&mut t, &act, &mut pkts, &mut md, &[0], 70_000);
    assert_eq!(ct.len(), 1);
}

#[test]
fn lookups_stay_right_while_other_threads_create_and_delete() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let ct = Arc::new(Conntrack::new(CtConfig::default()));
    let mut t = ct.thread();
    // 200 stable connections, each with its own mark.
    for i in 0..200u16 {
        let act = CtAction {
            mark: Some((i as u32 + 1, u32::MAX)),
            ..commit(0)
        };
        let mut p = [Some(buf(&udp(a(), b(), 1000 + i, 7)))];
        let mut md = [CtMeta::default()];
        ct.execute(&mut t, &act, &mut p, &mut md, &[0], 1000);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (ct, stop) = (ct.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut t = ct.thread();
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let src = v4(&format!("10.9.{}.{}", (i / 250) % 250, i % 250 + 1));
                let mut p = [Some(buf(&udp(src, b(), 2000, 7)))];
                let mut md = [CtMeta::default()];
                ct.execute(&mut t, &commit(0), &mut p, &mut md, &[0], 1000);
                if i.is_multiple_of(3) {
                    ct.flush(&CtFilter {
                        orig: dump::TupleMatch {
                            src: Some(src.bits()),
                            ..Default::default()
                        },
                        ..CtFilter::default()
                    });
                }
                i += 1;
            }
        })
    };
    for round in 0..20 {
        for i in 0..200u16 {
            let mut p = [Some(buf(&udp(b(), a(), 7, 1000 + i)))];
            let mut md = [CtMeta::default()];
            ct.execute(&mut t, &track(0), &mut p, &mut md, &[0], 1000);
            assert_eq!(md[0].state.to_string(), "+trk+est+rpl", "round {round}");
            assert_eq!(md[0].mark, i as u32 + 1);
        }
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().expect("churn");
}

#[test]
fn memory_per_connection_stays_under_256_bytes() {
    let mut h = H::new();
    let n = 100_000u32;
    for i in 0..n {
        let src = A::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        h.run(&commit(0), &udp(src, b(), 1000, 53));
    }
    assert_eq!(h.ct.len(), n as usize);
    h.ct.maintain(h.now, 0);
    let per = h.ct.table.memory_bytes() as f64 / n as f64;
    assert!(per <= 256.0, "{per} bytes per connection");
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Arbitrary bytes never panic the tracker, and a frame it leaves keeps its length.
        #[test]
        fn arbitrary_frames(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..8), sel in any::<u8>()) {
            let mut h = H::new();
            let act = CtAction {
                nat: (sel & 1 != 0).then(|| Nat::Src(NatRange::addr("192.0.2.1".parse().expect("ip")))),
                ..commit(sel as u16 >> 4)
            };
            for mut f in frames {
                // Half the time, make it look like IPv4 so parsing goes deeper.
                if sel & 2 != 0 && f.len() > 34 {
                    f[12] = 8;
                    f[13] = 0;
                    f[14] = 0x45;
                }
                let (out, md) = h.run(&act, &f);
                prop_assert!(out.is_empty() || out.len() == f.len());
                prop_assert!(md.state.has(CtState::TRK));
            }
        }

        /// NAT keeps every checksum right, whatever the addresses and ports.
        #[test]
        fn nat_keeps_checksums(src in any::<u32>(), dst in any::<u32>(), to in any::<u32>(), sport in 1u16.., dport in 1u16.., port in 1u16.., tcp_seg in any::<bool>(), six in any::<bool>()) {
            let mut h = H::new();
            let (s, d, n): (A, A, IpAddr) = if six {
                (A::V6((src as u128 | 0xfd00 << 112).into()), A::V6((dst as u128 | 0x2001 << 112).into()), IpAddr::V6((to as u128 | 0x2001_0db8 << 96).into()))
            } else {
                (A::V4(src.into()), A::V4(dst.into()), IpAddr::V4(to.into()))
            };
            let f = if tcp_seg { tcp(s, d, sport, dport, 1, 0, SYN, 0) } else { udp(s, d, sport, dport) };
            let act = CtAction { nat: Some(Nat::Src(NatRange::addr(n).ports(port, port))), ..commit(0) };
            let (out, md) = h.run(&act, &f);
            if src == dst && sport == dport && !six { return Ok(()); }
            prop_assert!(md.state.has(CtState::SNAT) || h.ct.is_empty(), "{}", md.state);
            prop_assert!(checksums_ok(&out));
        }
    }
}
