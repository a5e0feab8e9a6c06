//! Connection-tracking verdicts compared with Open vSwitch 3.1 on the same traffic: a
//! private Open vSwitch (`common::ovs`, the dummy datapath) and our daemon get the same
//! stateful-firewall flows, then the same frames, one at a time, each entering port 1
//! (inside) or port 2 (outside). After each frame the table-1 flow whose counter moved is
//! that frame's verdict (`+new`, `+est`, `+rel`, `+inv`, with or without `+rpl`); the two
//! verdict sequences must be equal, and equal to the one written here, so a change in
//! either switch shows. Open vSwitch gets its frames by `ovs-appctl netdev-dummy/receive`,
//! ours by an OpenFlow packet-out (`ovs-ofctl packet-out`, `in_port` set, `actions=table`)
//! on a `punix:` listener, so the ingress port is exact in both. The connections left in
//! both trackers (`dump-conntrack`) are compared at the end.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Daemon;
use common::ovs::Ovs;

const INSIDE: [u8; 4] = [10, 0, 0, 1];
const OUTSIDE: [u8; 4] = [10, 0, 0, 2];
const MAC_IN: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_OUT: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// The firewall: untracked IP goes through the tracker to table 1; table 1 has one flow
/// (its own cookie) per state and ingress port; only `+new` from inside commits.
fn flows() -> Vec<String> {
    let mut f = vec!["table=0,priority=100,ct_state=-trk,ip,actions=ct(table=1)".to_string()];
    for (port, other) in [(1, 2), (2, 1)] {
        let new = if port == 1 {
            "ct(commit),output:2".to_string()
        } else {
            "drop".to_string()
        };
        for (cookie, prio, state, actions) in [
            (0x10, 10, "+trk+new", new),
            (0x20, 10, "+trk+est-rpl", format!("output:{other}")),
            (0x30, 10, "+trk+est+rpl", format!("output:{other}")),
            (0x40, 15, "+trk+rel-rpl", format!("output:{other}")),
            (0x50, 15, "+trk+rel+rpl", format!("output:{other}")),
        ] {
            f.push(format!(
                "table=1,cookie={:#x},priority={prio},ct_state={state},ip,in_port={port},actions={actions}",
                cookie + port
            ));
        }
    }
    f.push("table=1,cookie=0x60,priority=20,ct_state=+trk+inv,ip,actions=drop".to_string());
    f.push("table=1,cookie=0x70,priority=1,ct_state=+trk,ip,actions=drop".to_string());
    f
}

/// The verdict a table-1 cookie stands for.
fn verdict(cookie: u64) -> String {
    let state = match cookie & 0xf0 {
        0x10 => "new",
        0x20 => "est",
        0x30 => "est+rpl",
        0x40 => "rel",
        0x50 => "rel+rpl",
        0x60 => return "inv".into(),
        _ => return "other".into(),
    };
    format!("{state}@{}", cookie & 0xf)
}

fn csum(data: &[u8], start: u32) -> u16 {
    let mut sum = start;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet (header and `l4`), the L4 checksum at `l4_csum` filled in.
fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, mut l4: Vec<u8>, l4_csum: Option<usize>) -> Vec<u8> {
    if let Some(at) = l4_csum {
        let mut pseudo = 0u32;
        for c in src.chunks(2).chain(dst.chunks(2)) {
            pseudo += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        pseudo += u32::from(proto) + l4.len() as u32;
        let c = csum(&l4, pseudo);
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let len = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend(len.to_be_bytes());
    ip.extend([0, 1, 0x40, 0, 64, proto, 0, 0]);
    ip.extend(src);
    ip.extend(dst);
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend(l4);
    ip
}

/// An Ethernet frame from `from` (1 inside, 2 outside) to the other side.
fn eth(from: u8, ip: Vec<u8>) -> Vec<u8> {
    let (src, dst) = if from == 1 {
        (MAC_IN, MAC_OUT)
    } else {
        (MAC_OUT, MAC_IN)
    };
    let mut f = dst.to_vec();
    f.extend(src);
    f.extend([8, 0]);
    f.extend(ip);
    f
}

fn addrs(from: u8) -> ([u8; 4], [u8; 4]) {
    if from == 1 {
        (INSIDE, OUTSIDE)
    } else {
        (OUTSIDE, INSIDE)
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// A TCP segment from `from`: ports, sequence and acknowledgement numbers, flags, payload.
fn tcp(from: u8, ports: (u16, u16), seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(ports.0.to_be_bytes());
    t.extend(ports.1.to_be_bytes());
    t.extend(seq.to_be_bytes());
    t.extend(ack.to_be_bytes());
    t.extend([0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend(payload);
    let (s, d) = addrs(from);
    eth(from, ipv4(s, d, 6, t, Some(16)))
}

fn udp_ip(from: u8, ports: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(ports.0.to_be_bytes());
    u.extend(ports.1.to_be_bytes());
    u.extend(((8 + payload.len()) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(payload);
    let (s, d) = addrs(from);
    ipv4(s, d, 17, u, Some(6))
}

fn udp(from: u8, ports: (u16, u16), payload: &[u8]) -> Vec<u8> {
    eth(from, udp_ip(from, ports, payload))
}

/// An ICMP message from `from`: type, code, the 4 bytes after the checksum, the rest.
fn icmp(from: u8, kind: u8, code: u8, word: [u8; 4], rest: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend(word);
    m.extend(rest);
    let c = csum(&m, 0);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let (s, d) = addrs(from);
    eth(from, ipv4(s, d, 1, m, None))
}

/// `frame` with the byte at `at` flipped (a checksum made wrong).
fn corrupt(mut frame: Vec<u8>, at: usize) -> Vec<u8> {
    frame[at] ^= 0xff;
    frame
}

fn hex(frame: &[u8]) -> String {
    frame.iter().map(|b| format!("{b:02x}")).collect()
}

/// Cookie to packet count of the table-1 flows in a dump-flows listing (either switch's).
fn counters(dump: &str) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for l in dump.lines() {
        let mut cookie = None;
        let mut packets = None;
        for f in l.split([',', ' ']) {
            if let Some(c) = f.strip_prefix("cookie=0x") {
                cookie = u64::from_str_radix(c, 16).ok();
            } else if let Some(n) = f.strip_prefix("n_packets=") {
                packets = n.parse::<u64>().ok();
            }
        }
        if let (Some(c), Some(n)) = (cookie, packets)
            && c != 0
        {
            out.insert(c, n);
        }
    }
    out
}

/// Polls `dump` until exactly one table-1 counter moved past `before`; its verdict.
fn next_verdict(before: &mut BTreeMap<u64, u64>, dump: &dyn Fn() -> String) -> String {
    let start = Instant::now();
    loop {
        let now = counters(&dump());
        let moved: Vec<u64> = now
            .iter()
            .filter(|(c, n)| before.get(c).copied().unwrap_or(0) < **n)
            .map(|(c, _)| *c)
            .collect();
        if !moved.is_empty() || start.elapsed() > Duration::from_secs(5) {
            *before = now;
            return match moved.as_slice() {
                [] => "none".into(),
                [c] => verdict(*c),
                many => format!("several {many:x?}"),
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The traffic, each frame with the port it enters and the verdict Open vSwitch gives it.
fn traffic() -> Vec<(&'static str, u8, Vec<u8>, &'static str)> {
    let c = (40000, 80);
    let r = (80, 40000);
    let c2 = (40001, 81);
    let r2 = (81, 40001);
    // ICMP errors quote the offending packet's IP header and 8 bytes of what follows.
    let quoted = udp_ip(1, (5353, 53), b"query")[..28].to_vec();
    let stray = udp_ip(1, (5354, 53), b"query")[..28].to_vec();
    let quoted_tcp = tcp(1, c, 1001, 5001, ACK, b"")[14..14 + 28].to_vec();
    vec![
        // A TCP connection from inside: handshake, data both ways, out of window, FIN.
        ("syn", 1, tcp(1, c, 1000, 0, SYN, b""), "new@1"),
        (
            "syn+ack",
            2,
            tcp(2, r, 5000, 1001, SYN | ACK, b""),
            "est+rpl@2",
        ),
        ("ack", 1, tcp(1, c, 1001, 5001, ACK, b""), "est@1"),
        (
            "data out",
            1,
            tcp(1, c, 1001, 5001, PSH | ACK, b"0123456789"),
            "est@1",
        ),
        (
            "data back",
            2,
            tcp(2, r, 5001, 1011, PSH | ACK, b"abcdefghij"),
            "est+rpl@2",
        ),
        (
            "out of window",
            1,
            tcp(1, c, 1011 + 0x8000_0000, 5011, PSH | ACK, b"x"),
            "inv",
        ),
        ("fin", 1, tcp(1, c, 1011, 5011, FIN | ACK, b""), "est@1"),
        (
            "fin back",
            2,
            tcp(2, r, 5011, 1012, FIN | ACK, b""),
            "est+rpl@2",
        ),
        ("last ack", 1, tcp(1, c, 1012, 5012, ACK, b""), "est@1"),
        // A second one ended by RST, then a segment after it.
        ("syn 2", 1, tcp(1, c2, 7000, 0, SYN, b""), "new@1"),
        (
            "syn+ack 2",
            2,
            tcp(2, r2, 9000, 7001, SYN | ACK, b""),
            "est+rpl@2",
        ),
        ("ack 2", 1, tcp(1, c2, 7001, 9001, ACK, b""), "est@1"),
        (
            "rst 2",
            2,
            tcp(2, r2, 9001, 7001, RST | ACK, b""),
            "est+rpl@2",
        ),
        (
            "after rst",
            1,
            tcp(1, c2, 7001, 9001, PSH | ACK, b"late"),
            "est@1",
        ),
        // From outside, no connection: SYN, a lone ACK, a SYN+ACK.
        (
            "syn from outside",
            2,
            tcp(2, (50000, 22), 1, 0, SYN, b""),
            "new@2",
        ),
        ("lone ack", 2, tcp(2, (50001, 22), 1, 1, ACK, b""), "new@2"),
        (
            "stray syn+ack",
            2,
            tcp(2, (50002, 22), 1, 1, SYN | ACK, b""),
            "inv",
        ),
        // UDP request and reply, and an ICMP error quoting the request.
        ("udp request", 1, udp(1, (5353, 53), b"query"), "new@1"),
        ("udp reply", 2, udp(2, (53, 5353), b"answer"), "est+rpl@2"),
        ("udp again", 1, udp(1, (5353, 53), b"query"), "est@1"),
        (
            "icmp unreachable",
            2,
            icmp(2, 3, 3, [0; 4], &quoted),
            "rel+rpl@2",
        ),
        (
            "icmp error, no flow",
            2,
            icmp(2, 3, 3, [0; 4], &stray),
            "inv",
        ),
        (
            "udp from outside",
            2,
            udp(2, (6000, 7000), b"knock"),
            "new@2",
        ),
        (
            "icmp unreachable for tcp",
            2,
            icmp(2, 3, 1, [0; 4], &quoted_tcp),
            "rel+rpl@2",
        ),
        // Broken packets: checksums (IP, TCP, UDP), impossible TCP flags.
        (
            "bad ip checksum",
            1,
            corrupt(tcp(1, (40010, 80), 1, 0, SYN, b""), 14 + 10),
            "inv",
        ),
        (
            "bad tcp checksum",
            1,
            corrupt(tcp(1, (40011, 80), 1, 0, SYN, b""), 14 + 20 + 16),
            "inv",
        ),
        (
            "bad udp checksum",
            1,
            corrupt(udp(1, (5355, 53), b"query"), 14 + 20 + 6),
            "inv",
        ),
        (
            "syn+fin",
            1,
            tcp(1, (40012, 80), 1, 0, SYN | FIN, b""),
            "inv",
        ),
        // A new SYN on the first connection, closed and in TIME_WAIT, opens it again.
        ("syn reopens", 1, tcp(1, c, 100_000, 0, SYN, b""), "new@1"),
        // ICMP echo and reply; a reply with no request.
        ("echo", 1, icmp(1, 8, 0, [0, 7, 0, 1], b"ping"), "new@1"),
        (
            "echo reply",
            2,
            icmp(2, 0, 0, [0, 7, 0, 1], b"ping"),
            "est+rpl@2",
        ),
        (
            "stray echo reply",
            2,
            icmp(2, 0, 0, [0, 9, 0, 1], b"ping"),
            "inv",
        ),
    ]
}

/// The entries of a dump-conntrack listing (the same format in both), sorted.
fn entries(dump: &str) -> Vec<String> {
    let mut out: Vec<String> = dump
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    out.sort();
    out
}

#[test]
fn the_firewall_gives_each_packet_the_verdict_open_vswitch_gives() {
    let ovs = Ovs::start();
    let br = format!("ctv{}", std::process::id() % 100_000);
    ovs.add_br(&br);
    ovs.add_dummy_port(&br, &format!("{br}a"), 1);
    ovs.add_dummy_port(&br, &format!("{br}b"), 2);
    ovs.ofctl(&["del-flows", &br]);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    d.ok(&["add-br", &br]);
    d.ok(&["del-flows", &br]);
    d.ok(&["add-port", &br, "p1", "type=memory", "ofport_request=1"]);
    d.ok(&["add-port", &br, "p2", "type=memory", "ofport_request=2"]);
    // Frames enter ours as OpenFlow packet-outs through `output:TABLE` with `in_port` set
    // (flowctl's packet-out refuses `output:TABLE` in its action text, so ovs-ofctl).
    let sock = dir.path().join("ctv.ofp");
    d.ok(&["set-controller", &br, &format!("punix:{}", sock.display())]);
    let ours_sw = format!("unix:{}", sock.display());
    let listening = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(
            Instant::now() < listening,
            "our switch never listened on {ours_sw}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for f in flows() {
        ovs.ofctl(&["add-flow", &br, &f]);
        d.ok(&["add-flow", &br, &f]);
    }

    let theirs_dump = || {
        ovs.appctl(&["revalidator/wait"]);
        ovs.ofctl(&["dump-flows", &br, "table=1"])
    };
    let ours_dump = || d.ok(&["dump-flows", &br]);
    let (mut theirs_at, mut ours_at) = (counters(&theirs_dump()), counters(&ours_dump()));
    let mut theirs = Vec::new();
    let mut ours = Vec::new();
    let mut expected = Vec::new();
    for (what, port, frame, want) in traffic() {
        let name = format!("{br}{}", if port == 1 { "a" } else { "b" });
        ovs.appctl(&["netdev-dummy/receive", &name, &hex(&frame)]);
        theirs.push(format!(
            "{what}: {}",
            next_verdict(&mut theirs_at, &theirs_dump)
        ));
        // Every frame misses the datapath caches of Open vSwitch, so its rule counters
        // move at once instead of at the revalidator's next pass.
        ovs.appctl(&["dpctl/del-flows"]);
        ovs.ofctl(&[
            "-O",
            "OpenFlow13",
            "packet-out",
            &ours_sw,
            &format!("in_port={port} packet={} actions=table", hex(&frame)),
        ]);
        ours.push(format!(
            "{what}: {}",
            next_verdict(&mut ours_at, &ours_dump)
        ));
        expected.push(format!("{what}: {want}"));
    }
    assert_eq!(theirs, expected, "Open vSwitch's verdicts changed");
    assert_eq!(
        ours, theirs,
        "our verdicts (left) differ from Open vSwitch's (right)"
    );

    // What is left in the trackers: the same connections (both TCP ones in TIME_WAIT, the
    // UDP flow and the echo), printed alike.
    let their_ct = ovs.appctl(&["dpctl/dump-conntrack"]);
    let our_ct = d.ok(&["dump-conntrack", &br]);
    assert_eq!(
        entries(&our_ct),
        entries(&their_ct),
        "ours:\n{our_ct}\nOpen vSwitch:\n{their_ct}"
    );
    assert_eq!(entries(&their_ct).len(), 4, "{their_ct}");
}
