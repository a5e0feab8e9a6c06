//! The connection tracker's metrics at the real endpoint: real UDP between network
//! namespaces through `ct(commit)` moves `vswitch_ct_created_total` and the zone's
//! `vswitch_ct_zone_entries` by the connections made, a zone limit's refusal shows in
//! `vswitch_ct_refused_total{reason="zone_limit"}`, the expiry of short timeouts in
//! `vswitch_ct_expired_total`, and `promtool check metrics` accepts every scrape.
//!
//! Needs root (namespaces, veths) and `apt-get install prometheus` (promtool). About 10 s.

mod common;

use std::time::{Duration, Instant};

use common::free_port;
use common::prometheus::{http_get, promtool_accepts};
use common::{Daemon, Hosts};

/// `GET /metrics` on `port`, checked by `promtool check metrics` (no remark allowed).
fn scrape(port: u16) -> String {
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    let (status, body) = http_get(addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    promtool_accepts(&body);
    body
}

/// The value of series `series` (name and labels exactly as served), if present.
fn value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits (up to 10 s) until `series` satisfies `ok`; its value.
fn wait_for(port: u16, series: &str, ok: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(port);
        if let Some(v) = value(&text, series).filter(|v| ok(*v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{series}: not as expected in\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends one UDP datagram from host 1 to host 2's port 9 from each source port.
fn send_udp(h: &Hosts, sports: std::ops::Range<u16>) {
    let script = format!(
        "import socket\n\
         for p in range({}, {}):\n\
         \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         \x20   s.bind(('0.0.0.0', p))\n\
         \x20   s.sendto(b'hello', ('{}', 9))\n\
         \x20   s.close()\n",
        sports.start,
        sports.end,
        h.addr(2)
    );
    h.exec(1, &["python3", "-c", &script]);
}

#[test]
fn conntrack_counters_move_with_real_traffic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("tcp:127.0.0.1:{port}");
    let d = Daemon::start_with(dir.path(), None, &["--metrics", &listen]);
    let h = Hosts::new("ctm", 134, 2);
    d.ok(&["del-flows", "br0"]);
    d.ok(&["add-flow", "br0", "priority=10,arp,actions=NORMAL"]);
    for (i, p) in h.ports.iter().enumerate() {
        let req = format!("ofport_request={}", i + 1);
        d.ok(&["add-port", "br0", p, "type=afpacket", &req]);
    }
    for f in [
        "table=0,priority=100,ip,ct_state=-trk,actions=ct(zone=5,table=1)",
        "table=1,priority=100,ip,ct_state=+trk+new,in_port=1,actions=ct(commit,zone=5),output:2",
        "table=1,priority=100,ip,ct_state=+trk+est,actions=NORMAL",
    ] {
        d.ok(&["add-flow", "br0", f]);
    }
    let created = "vswitch_ct_created_total{bridge=\"br0\"}";
    let zone5 = "vswitch_ct_zone_entries{bridge=\"br0\",zone=\"5\",protocol=\"udp\"}";
    let refused = "vswitch_ct_refused_total{bridge=\"br0\",reason=\"zone_limit\"}";
    let expired = "vswitch_ct_expired_total{bridge=\"br0\"}";
    let text = scrape(port);
    assert_eq!(value(&text, created), Some(0), "{text}");
    assert_eq!(value(&text, refused), Some(0), "{text}");
    assert_eq!(
        value(&text, zone5),
        None,
        "no series for a zone without connections"
    );

    send_udp(&h, 5000..5007);
    assert_eq!(wait_for(port, created, |v| v >= 7), 7);
    assert_eq!(wait_for(port, zone5, |v| v >= 7), 7);
    let text = scrape(port);
    assert_eq!(value(&text, "vswitch_ct_entries{bridge=\"br0\"}"), Some(7));
    assert_eq!(
        value(&text, "vswitch_ct_max_conns{bridge=\"br0\"}"),
        Some(1_000_000)
    );
    assert!(value(&text, "vswitch_ct_packets_total{bridge=\"br0\"}").unwrap_or(0) >= 7);

    // The zone's limit refuses the next connection: counted by reason.
    d.ok(&["ct-set-limits", "br0", "zone=5,limit=7"]);
    send_udp(&h, 5007..5008);
    assert_eq!(wait_for(port, refused, |v| v >= 1), 1);
    assert_eq!(value(&scrape(port), created), Some(7));

    // Short timeouts: the connections expire, and the expiry counter moves by as many.
    d.ok(&["ct-del-limits", "br0", "zone=5"]);
    d.ok(&["ct-set-timeouts", "br0", "zone=5", "udp_first=1"]);
    send_udp(&h, 6000..6003);
    assert_eq!(wait_for(port, created, |v| v >= 10), 10);
    // The 7 made before keep their 60 s; the 3 made under the 1 s timeout go.
    assert_eq!(wait_for(port, expired, |v| v >= 3), 3);
    assert_eq!(wait_for(port, zone5, |v| v == 7), 7);
}
