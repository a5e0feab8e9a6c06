//! Frames through real ports: what is lost below the switch is counted, and one packet
//! makes a bounded number of copies.

use std::time::{Duration, Instant};

use super::{Vswitchd, common};

// ---------------------------------------------------------------------------------------
// Frames lost below the switch are counted (item 8).
// ---------------------------------------------------------------------------------------

/// Sends `count` raw frames of `size` bytes (broadcast, an unknown EtherType) out of
/// interface `dev` in namespace `ns`, as fast as a Python loop goes; returns how many the
/// kernel took (the interface's tx_packets delta).
fn blast(h: &common::Hosts, i: usize, size: usize, count: usize) -> u64 {
    let dev = h.inner(i).to_string();
    let tx = || -> u64 {
        h.exec(
            i,
            &[
                "cat",
                &format!("/sys/class/net/{dev}/statistics/tx_packets"),
            ],
        )
        .trim()
        .parse()
        .unwrap()
    };
    let before = tx();
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
         s.bind(({dev:?}, 0))\n\
         f = b'\\xff' * 6 + b'\\x02\\x00\\x00\\x00\\x00\\x01' + b'\\x88\\xb5' + bytes({})\n\
         for _ in range({count}):\n    \
             try:\n        s.send(f)\n    \
             except OSError:\n        pass\n",
        size - 14
    );
    h.exec(i, &["/usr/bin/python3", "-c", &script]);
    tx() - before
}

fn counters(d: &Vswitchd, port: &str) -> serde_json::Value {
    d.json(&["dump-ports", "br0", port])["stats"][0].clone()
}

/// Waits until the port's received + dropped stop changing, and returns them.
fn settled(d: &Vswitchd, port: &str) -> (u64, u64, serde_json::Value) {
    let mut last = (u64::MAX, u64::MAX);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let c = counters(d, port);
        let now = (
            c["rx_packets"].as_u64().unwrap(),
            c["rx_dropped"].as_u64().unwrap(),
        );
        if now == last {
            return (now.0, now.1, c);
        }
        last = now;
    }
}

/// Every frame the kernel hands towards an AF_XDP or AF_PACKET port is either received or
/// counted as dropped: 9,000-byte frames on a generic-mode AF_XDP port (larger than a UMEM
/// frame: the kernel drops them, `XDP_STATISTICS` says so) and on an AF_PACKET port
/// (larger than a buffer), and a 200,000-frame burst on a native-mode port, whatever part
/// of it the switch could not keep up with.
#[test]
fn frames_lost_below_the_switch_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &[], &[]);
    let h = common::Hosts::new("hx", 19, 3);
    for i in 1..=3 {
        h.exec(i, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    }
    for (i, mtu) in [(1, "9000"), (2, "9000")] {
        common::run("ip", &["link", "set", &h.ports[i - 1], "mtu", mtu]);
        h.exec(i, &["ip", "link", "set", h.inner(i), "mtu", mtu]);
    }
    d.ok(&[
        "add-port",
        "br0",
        &h.ports[0],
        "type=afxdp",
        "xdp-mode=generic",
    ]);
    d.ok(&["add-port", "br0", &h.ports[1], "type=afpacket"]);
    d.ok(&[
        "add-port",
        "br0",
        &h.ports[2],
        "type=afxdp",
        "xdp-mode=native",
    ]);
    // Nothing forwarded: only what arrives matters.
    d.ok(&["del-flows", "br0"]);
    std::thread::sleep(Duration::from_millis(500));

    for (i, size, kind) in [(1, 9000, "afxdp"), (2, 9000, "afpacket")] {
        let port = &h.ports[i - 1];
        let (rx0, drop0, _) = settled(&d, port);
        let sent = blast(&h, i, size, 100);
        assert_eq!(sent, 100, "{kind}: the kernel did not take all 100 frames");
        let (rx, dropped, c) = settled(&d, port);
        assert_eq!(
            (rx - rx0, dropped - drop0),
            (0, 100),
            "{kind}: 100 jumbo frames not all counted as dropped: {c}"
        );
        let named = if kind == "afxdp" {
            c["counters"]["xdp_rx_dropped"].as_u64().unwrap()
        } else {
            c["counters"]["rx_too_big"].as_u64().unwrap()
        };
        assert!(named >= 100, "{kind}: the reason is not named: {c}");
    }

    let port = &h.ports[2];
    let (rx0, drop0, _) = settled(&d, port);
    let sent = blast(&h, 3, 60, 200_000);
    let (rx, dropped, c) = settled(&d, port);
    eprintln!(
        "burst: {sent} sent, {} received, {} dropped: {c}",
        rx - rx0,
        dropped - drop0
    );
    assert_eq!(
        (rx - rx0) + (dropped - drop0),
        sent,
        "frames went missing without a counter: {c}"
    );
}

/// Copies of one packet the poll threads shed for `--max-copies-per-packet` (pmd-stats).
fn copies_shed(d: &Vswitchd) -> u64 {
    let pmd = d.json(&["pmd-stats"]);
    pmd["pmds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["drops"]["drop_copies_over_limit"].as_u64().unwrap_or(0))
        .sum()
}

/// Frames port `port` sent or dropped on send (dump-ports), once they stop changing.
fn tx_settled(d: &Vswitchd, port: &str) -> u64 {
    let mut last = u64::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let c = counters(d, port);
        let now = c["tx_packets"].as_u64().unwrap() + c["tx_dropped"].as_u64().unwrap();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// What one packet may turn into (the rest of item 5): with `--max-copies-per-packet 100`,
/// 10 frames into an `all` group of 1,000 buckets, and 10 into a flow that resubmits 64
/// times to a 1,000-output flow (64,000 outputs asked for; the walk stops past 8,192
/// operations, at 9,000), leave as exactly 10 * 101 frames each (before the bound, 10
/// packets through a 100,000-output flow were 1,000,300 frames), and the copies not made
/// are counted to the copy: 10 * 899 and 10 * 8,899.
#[test]
fn one_packet_makes_a_bounded_number_of_copies() {
    let dir = tempfile::tempdir().unwrap();
    let d = Vswitchd::start(dir.path(), &[], &["--max-copies-per-packet", "100"]);
    let h = common::Hosts::new_quiet("hc", 20, 2);
    let (p1, p2) = (h.ports[0].as_str(), h.ports[1].as_str());
    d.ok(&["add-port", "br0", p1, "type=afpacket"]);
    d.ok(&["add-port", "br0", p2, "type=afpacket"]);
    d.ok(&["del-flows", "br0"]);
    let buckets = vec![format!("bucket=output:{p2}"); 1000].join(",");
    d.ok(&[
        "add-group",
        "br0",
        &format!("group_id=1,type=all,{buckets}"),
    ]);
    d.ok(&["add-flow", "br0", &format!("in_port={p1},actions=group:1")]);
    std::thread::sleep(Duration::from_millis(500));
    let resubmits = vec!["resubmit(,1)"; 64].join(",");
    let outputs = vec![format!("output:{p2}"); 1000].join(",");
    for (what, want_shed) in [("group", 10 * 899), ("resubmit", 10 * 8899)] {
        if what == "resubmit" {
            d.ok(&["del-flows", "br0"]);
            d.ok(&[
                "add-flow",
                "br0",
                &format!("table=0,in_port={p1},actions={resubmits}"),
            ]);
            d.ok(&["add-flow", "br0", &format!("table=1,actions={outputs}")]);
        }
        let (rx0, _, _) = settled(&d, p1);
        let (tx0, shed0) = (tx_settled(&d, p2), copies_shed(&d));
        let t = Instant::now();
        assert_eq!(
            blast(&h, 1, 60, 10),
            10,
            "{what}: the kernel took fewer than 10"
        );
        let (rx, _, _) = settled(&d, p1);
        let tx = tx_settled(&d, p2);
        let shed = copies_shed(&d);
        eprintln!(
            "{what}: {} in, {} out, {} copies shed, {:?}",
            rx - rx0,
            tx - tx0,
            shed - shed0,
            t.elapsed()
        );
        assert_eq!(
            rx - rx0,
            10,
            "{what}: the switch did not receive the 10 frames"
        );
        assert_eq!(tx - tx0, 10 * 101, "{what}: frames out of {p2}");
        assert_eq!(shed - shed0, want_shed, "{what}: copies counted as shed");
    }
    assert!(d.ok(&["pmd-stats"]).contains("drop_copies_over_limit"));
}
