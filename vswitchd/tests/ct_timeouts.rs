//! Conntrack timeouts through the real daemon: a zone's UDP timeouts set to 2 s with
//! `flowctl ct-set-timeouts` end a real UDP connection between network namespaces within
//! 2-4 s (it leaves `dump-conntrack`), while with the defaults one stays; bad requests change
//! nothing; the timeouts survive a restart and `ct-del-timeouts` removes them.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Hosts};

/// Sends one UDP datagram from host `i` (source port `sport`) to `addr:9`.
fn send_udp(h: &Hosts, i: usize, addr: &str, sport: u16) {
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('0.0.0.0', {sport}))\n\
         s.sendto(b'hello', ('{addr}', 9))\n"
    );
    h.exec(i, &["python3", "-c", &script]);
}

/// True when `dump-conntrack br0 zone=5` lists a UDP entry with source port `sport`.
fn tracked(d: &Daemon, sport: u16) -> bool {
    let needle = format!("sport={sport},");
    d.ok(&["dump-conntrack", "br0", "zone=5"])
        .lines()
        .any(|l| l.starts_with("udp,") && l.contains(&needle))
}

/// Waits (up to 3 s) for the entry of `sport` to appear; the time it appeared.
fn appears(d: &Daemon, sport: u16) -> Instant {
    for _ in 0..60 {
        if tracked(d, sport) {
            return Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no entry for sport {sport}:\n{}",
        d.ok(&["dump-conntrack", "br0"])
    );
}

/// How long the entry of `sport` stays after `since` (at most `limit`; `None` past it).
fn lifetime(d: &Daemon, sport: u16, since: Instant, limit: Duration) -> Option<Duration> {
    while since.elapsed() < limit {
        if !tracked(d, sport) {
            return Some(since.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn setup(d: &Daemon, h: &Hosts) {
    d.ok(&["del-flows", "br0"]);
    d.ok(&["add-flow", "br0", "priority=10,arp,actions=NORMAL"]);
    for (i, p) in h.ports.iter().enumerate() {
        let req = format!("ofport_request={}", i + 1);
        d.ok(&["add-port", "br0", p, "type=afpacket", &req]);
    }
    for f in [
        "table=0,priority=100,ip,ct_state=-trk,actions=ct(zone=5,table=1)",
        "table=1,priority=100,ip,ct_state=+trk+new,in_port=1,actions=ct(commit,zone=5),output:2",
        "table=1,priority=100,ip,ct_state=+trk+est,in_port=1,actions=output:2",
        "table=1,priority=100,ip,ct_state=+trk+est,in_port=2,actions=output:1",
    ] {
        d.ok(&["add-flow", "br0", f]);
    }
}

const DEFAULTS: &str = "Zone:default, Timeout Policies: tcp_syn_sent=30 tcp_syn_recv=30 \
     tcp_established=86400 tcp_fin_wait=900 tcp_time_wait=45 tcp_close=30 udp_first=60 \
     udp_single=60 udp_multiple=30 icmp_first=60 icmp_reply=30\n";

const ZONE5: &str = "Zone:5, Timeout Policies: tcp_syn_sent=30 tcp_syn_recv=30 \
     tcp_established=86400 tcp_fin_wait=900 tcp_time_wait=45 tcp_close=30 udp_first=2 \
     udp_single=2 udp_multiple=2 icmp_first=60 icmp_reply=30\n";

#[test]
fn a_zones_udp_timeout_ends_its_connections_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path());
    let h = Hosts::new("ctt", 133, 2);
    setup(&d, &h);
    let addr = h.addr(2);

    // Bad input is refused whole: nothing of it applies.
    for bad in [
        &[
            "ct-set-timeouts",
            "br0",
            "zone=5",
            "udp_first=2",
            "udp_single=0",
        ][..],
        &[
            "ct-set-timeouts",
            "br0",
            "zone=5",
            "udp_first=2",
            "tcp_unack=3",
        ],
        &["ct-set-timeouts", "br0", "zone=70000", "udp_first=2"],
        &["ct-set-timeouts", "nobr", "udp_first=2"],
        &["ct-set-timeouts", "br0", "zone=5"],
        &["ct-del-timeouts", "br0", "udp_first=2"],
    ] {
        assert!(!d.fc(bad).status.success(), "{bad:?} accepted");
    }
    assert_eq!(d.ok(&["ct-get-timeouts", "br0"]), DEFAULTS);

    // With the defaults (udp_first 60 s) the entry stays.
    send_udp(&h, 1, &addr, 4001);
    let t = appears(&d, 4001);
    assert_eq!(lifetime(&d, 4001, t, Duration::from_secs(5)), None);

    d.ok(&[
        "ct-set-timeouts",
        "br0",
        "zone=5",
        "udp_first=2",
        "udp_single=2",
        "udp_multiple=2",
    ]);
    assert_eq!(
        d.ok(&["ct-get-timeouts", "br0"]),
        format!("{DEFAULTS}{ZONE5}")
    );
    assert_eq!(d.ok(&["ct-get-timeouts", "br0", "zone=5"]), ZONE5);
    let json = d.json(&["ct-get-timeouts", "br0"]);
    assert_eq!(json["timeouts"][0]["zones"][0]["timeouts"]["udp_first"], 2);

    send_udp(&h, 1, &addr, 4002);
    let t = appears(&d, 4002);
    let life = lifetime(&d, 4002, t, Duration::from_secs(6)).expect("the entry must expire");
    assert!(
        life >= Duration::from_millis(1500) && life <= Duration::from_millis(4500),
        "lived {life:?}, udp_first=2"
    );
    // The connection made before the change keeps the expiry its packet set (60 s): a new
    // timeout is taken at a connection's next packet.
    assert!(tracked(&d, 4001));

    d.term();
    let d = Daemon::start(dir.path());
    assert_eq!(
        d.ok(&["ct-get-timeouts", "br0"]),
        format!("{DEFAULTS}{ZONE5}"),
        "the timeouts are stored"
    );
    assert!(!tracked(&d, 4001), "connections are not");
    send_udp(&h, 1, &addr, 4003);
    let t = appears(&d, 4003);
    let life = lifetime(&d, 4003, t, Duration::from_secs(6)).expect("applied on restore");
    assert!(life <= Duration::from_millis(4500), "lived {life:?}");

    // The bridge's own: zones without theirs take it; ct-del-timeouts removes a zone's.
    d.ok(&["ct-set-timeouts", "br0", "icmp_reply=7"]);
    d.ok(&["ct-del-timeouts", "br0", "zone=5"]);
    assert_eq!(
        d.ok(&["ct-get-timeouts", "br0"]),
        DEFAULTS.replace("icmp_reply=30", "icmp_reply=7")
    );
    assert_eq!(
        d.ok(&["ct-get-timeouts", "br0", "zone=5"]),
        DEFAULTS
            .replace("icmp_reply=30", "icmp_reply=7")
            .replace("default", "5")
    );
    send_udp(&h, 1, &addr, 4004);
    let t = appears(&d, 4004);
    assert_eq!(lifetime(&d, 4004, t, Duration::from_secs(5)), None);
    d.ok(&["ct-del-timeouts", "br0"]);
    assert_eq!(d.ok(&["ct-get-timeouts", "br0"]), DEFAULTS);
}
