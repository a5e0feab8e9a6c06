//! Table and group counters of the real daemon under real traffic: `dump-tables`
//! lookup/matched and `group-stats` packet/byte counts (bucket by bucket) rise by exactly
//! the packets that went through them, in `flowctl`'s text and JSON alike.

mod common;

use common::{Daemon, Hosts};
use serde_json::Value;

/// ICMP echo frames `ping` sends by default: Ethernet 14 + IPv4 20 + ICMP 8 + 56 data.
const ECHO_FRAME_BYTES: u64 = 98;

/// `dump-tables` as JSON: table id → (active, lookup, matched).
fn tables(d: &Daemon) -> std::collections::BTreeMap<u64, (u64, u64, u64)> {
    let v = d.json(&["dump-tables", "br0"]);
    v["stats"]
        .as_array()
        .expect("stats")
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k} in {t}"));
            (
                n("table_id"),
                (n("active_count"), n("lookup_count"), n("matched_count")),
            )
        })
        .collect()
}

/// `group-stats` of group 7 as JSON.
fn group7(d: &Daemon) -> Value {
    let v = d.json(&["group-stats", "br0", "group_id=7"]);
    v["stats"][0].clone()
}

fn count(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// Runs `args` in host `i`'s namespace; the exit status is not checked (pings to an
/// address nobody answers fail by design).
fn exec_any(h: &Hosts, i: usize, args: &[&str]) -> String {
    let o = std::process::Command::new("ip")
        .args(["netns", "exec", &h.ns[i - 1]])
        .args(args)
        .output()
        .expect("ip netns exec (iproute2)");
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn table_and_group_counters_count_the_packets_that_crossed_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new("ctr", 71, 2);
    // Nothing but the test's pings may cross the switch: no IPv6 (router solicitations,
    // MLD), no ARP (static neighbours, one for an address nobody has).
    let mac = |i: usize| {
        h.exec(
            i,
            &["cat", &format!("/sys/class/net/{}/address", h.inner(i))],
        )
        .trim()
        .to_string()
    };
    let (mac1, mac2) = (mac(1), mac(2));
    for (i, peer, peer_mac) in [(1, 2, &mac2), (2, 1, &mac1)] {
        h.exec(i, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        let dev = h.inner(i).to_string();
        let addr = h.addr(peer);
        h.exec(
            i,
            &[
                "ip",
                "neigh",
                "replace",
                &addr,
                "lladdr",
                peer_mac,
                "dev",
                &dev,
                "nud",
                "permanent",
            ],
        );
    }
    let nobody = "10.71.0.9";
    let dev1 = h.inner(1).to_string();
    h.exec(
        1,
        &[
            "ip",
            "neigh",
            "replace",
            nobody,
            "lladdr",
            "02:00:00:00:00:09",
            "dev",
            &dev1,
            "nud",
            "permanent",
        ],
    );

    // Requests from port 1 to host 2 go through group 7 (one bucket, to port 2); replies
    // from port 2 go on to table 1, which outputs them to port 1; anything else misses.
    d.ok(&["del-flows", "br0"]);
    d.ok(&["add-group", "br0", "group_id=7,type=all,bucket=output:2"]);
    d.ok(&[
        "add-flow",
        "br0",
        "table=0,priority=100,in_port=1,icmp,nw_dst=10.71.0.2,actions=group:7",
    ]);
    d.ok(&[
        "add-flow",
        "br0",
        "table=0,priority=100,in_port=2,actions=goto_table:1",
    ]);
    d.ok(&[
        "add-flow",
        "br0",
        "table=1,priority=1,icmp,actions=output:1",
    ]);
    for (i, p) in h.ports.iter().enumerate() {
        let req = format!("ofport_request={}", i + 1);
        d.ok(&["add-port", "br0", p, "type=afpacket", &req]);
    }

    let t0 = tables(&d);
    let g0 = group7(&d);
    assert_eq!(count(&g0, "ref_count"), 1, "{g0}");

    let pings: u64 = 20;
    let out = h.exec(
        1,
        &[
            "ping",
            "-c",
            &pings.to_string(),
            "-i",
            "0.01",
            "-W",
            "2",
            &h.addr(2),
        ],
    );
    assert!(out.contains(" 0% packet loss"), "{out}");
    let misses: u64 = 5;
    exec_any(
        &h,
        1,
        &[
            "ping",
            "-c",
            &misses.to_string(),
            "-i",
            "0.01",
            "-W",
            "1",
            nobody,
        ],
    );

    let t1 = tables(&d);
    let delta = |t: u64| {
        let (a0, l0, m0) = t0.get(&t).copied().unwrap_or_default();
        let (a1, l1, m1) = t1[&t];
        assert_eq!(a0, a1, "table {t}: flows changed");
        (a1, l1 - l0, m1 - m0)
    };
    // Table 0: every request, reply and miss looked up; requests and replies matched.
    assert_eq!(delta(0), (2, 2 * pings + misses, 2 * pings), "{t1:?}");
    // Table 1: the replies.
    assert_eq!(delta(1), (1, pings, pings), "{t1:?}");
    assert_eq!(
        t1.len(),
        2,
        "only tables 0 and 1 have flows or lookups: {t1:?}"
    );

    let g1 = group7(&d);
    let bytes = pings * ECHO_FRAME_BYTES;
    assert_eq!(
        count(&g1, "packet_count") - count(&g0, "packet_count"),
        pings,
        "{g1}"
    );
    assert_eq!(
        count(&g1, "byte_count") - count(&g0, "byte_count"),
        bytes,
        "{g1}"
    );
    let (b0, b1) = (&g0["buckets"][0], &g1["buckets"][0]);
    assert_eq!(
        count(b1, "packet_count") - count(b0, "packet_count"),
        pings,
        "{g1}"
    );
    assert_eq!(
        count(b1, "byte_count") - count(b0, "byte_count"),
        bytes,
        "{g1}"
    );

    // The text output says the same (nothing moved since: no traffic runs).
    let text = d.ok(&["dump-tables", "br0"]);
    let mut want = String::new();
    for (t, (a, l, m)) in &t1 {
        want += &format!("  table {t}:\n    active={a}, lookup={l}, matched={m}\n");
    }
    assert_eq!(text, want);
    let text = d.ok(&["dump-group-stats", "br0"]);
    let (p, b) = (count(&g1, "packet_count"), count(&g1, "byte_count"));
    let prefix = " group_id=7,duration=";
    assert!(text.starts_with(prefix), "{text}");
    assert!(
        text.trim_end().ends_with(&format!(
            ",ref_count=1,packet_count={p},byte_count={b},bucket0:packet_count={p},byte_count={b}"
        )),
        "{text}"
    );
}
