//! Ports under the switch coming and going: veths deleted and re-created, ports removed and
//! re-added while other ports carry traffic, TAP devices deleted from outside; and TCP
//! streams over every kernel port type, through `normal` and through explicit flows.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Hosts, finish, run};

/// Waits up to 5 s for port `name`'s link state (from `show`, JSON) to be `up`.
fn wait_link(d: &Daemon, name: &str, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = d.json(&["show", "br0"]);
        let state = v["bridges"][0]["ports"]
            .as_array()
            .or_else(|| v["ports"].as_array())
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .map(|p| p["link_up"].as_bool() == Some(true));
        if state == Some(up) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {name} never went {}: {v}",
            if up { "up" } else { "down" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_stat(d: &Daemon, port: &str, key: &str) -> u64 {
    let v = d.json(&["dump-ports", "br0", port]);
    v["stats"][0][key].as_u64().expect("counter")
}

fn ping(h: &Hosts, from: usize, to: usize) -> bool {
    std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &h.ns[from - 1],
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
        ])
        .arg(h.addr(to))
        .output()
        .map(|o| o.status.success())
        .expect("ping (iputils-ping)")
}

fn veth_deleted_and_recreated(ty: &str, prefix: &str, net: u8) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new(prefix, net, 2);
    for p in &h.ports {
        d.ok(&["add-port", "br0", p, &format!("type={ty}")]);
    }
    assert!(ping(&h, 1, 2), "no traffic before the veth went away");
    h.unplug(2);
    wait_link(&d, &h.ports[1], false);
    assert_eq!(port_stat(&d, &h.ports[1], "link_resets"), 1);
    let before = port_stat(&d, &h.ports[1], "tx_packets");
    assert!(before > 0);
    h.plug(2);
    wait_link(&d, &h.ports[1], true);
    // The re-created interface has a new MAC address: forget the old one.
    h.exec(1, &["ip", "neigh", "flush", "all"]);
    assert!(ping(&h, 1, 2), "no traffic after the veth came back ({ty})");
    // Counters continue across the outage.
    assert!(port_stat(&d, &h.ports[1], "tx_packets") > before);
    // And again, to show nothing was left half-done.
    h.unplug(2);
    wait_link(&d, &h.ports[1], false);
    h.plug(2);
    wait_link(&d, &h.ports[1], true);
    h.exec(1, &["ip", "neigh", "flush", "all"]);
    assert!(ping(&h, 1, 2));
    assert_eq!(port_stat(&d, &h.ports[1], "link_resets"), 2);
}

#[test]
fn an_af_xdp_veth_deleted_and_recreated_comes_back() {
    veth_deleted_and_recreated("afxdp", "rsx", 81);
}

#[test]
fn an_af_packet_veth_deleted_and_recreated_comes_back() {
    veth_deleted_and_recreated("afpacket", "rsp", 82);
}

#[test]
fn a_port_removed_and_readded_under_traffic_does_not_disturb_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new("rsr", 83, 4);
    for p in &h.ports {
        d.ok(&["add-port", "br0", p, "type=afxdp"]);
    }
    assert!(ping(&h, 1, 2));
    assert!(ping(&h, 3, 4));
    let flood = h.spawn(
        1,
        &["ping", "-c", "300", "-i", "0.01", "-W", "2", &h.addr(2)],
    );
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(200));
        d.ok(&["del-port", "br0", &h.ports[2]]);
        d.ok(&["del-port", "br0", &h.ports[3]]);
        std::thread::sleep(Duration::from_millis(100));
        d.ok(&["add-port", "br0", &h.ports[2], "type=afxdp"]);
        d.ok(&["add-port", "br0", &h.ports[3], "type=afpacket"]);
    }
    let out = finish(flood);
    assert!(
        out.contains(" 0% packet loss"),
        "the other pair lost packets while ports came and went:\n{out}"
    );
    assert!(ping(&h, 3, 4), "the re-added ports carry traffic");
}

#[test]
fn a_tap_device_deleted_from_outside_is_recreated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let tap = format!("rst{id}");
    d.ok(&["add-port", "br0", &tap, "type=tap"]);
    run("ip", &["link", "del", &tap]);
    // Down, then re-created by the switch within a second or so.
    let deadline = Instant::now() + Duration::from_secs(5);
    while port_stat(&d, &tap, "link_resets") == 0 {
        assert!(
            Instant::now() < deadline,
            "the deleted TAP was never noticed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_link(&d, &tap, true);
    run("ip", &["link", "show", &tap]);
    d.ok(&["del-port", "br0", &tap]);
}

/// An iperf3 TCP stream from host 1 to host 2 moves at least 10 MB in 2 s.
fn iperf3(h: &Hosts) -> u64 {
    h.exec(2, &["iperf3", "-s", "-1", "-D"]);
    std::thread::sleep(Duration::from_millis(500));
    let out = h.exec(1, &["iperf3", "-c", &h.addr(2), "-t", "2", "-J"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 json");
    let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(bytes > 10_000_000, "iperf3 moved only {bytes} bytes");
    bytes
}

#[test]
fn iperf3_tcp_crosses_af_packet_ports_through_explicit_flows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new("rsi", 84, 2);
    for p in &h.ports {
        d.ok(&["add-port", "br0", p, "type=afpacket"]);
    }
    d.ok(&["del-flows", "br0"]);
    d.ok(&[
        "add-flow",
        "br0",
        &format!("in_port={},actions=output:{}", h.ports[0], h.ports[1]),
    ]);
    d.ok(&[
        "add-flow",
        "br0",
        &format!("in_port={},actions=output:{}", h.ports[1], h.ports[0]),
    ]);
    let bytes = iperf3(&h);
    eprintln!("af_packet, explicit flows: {bytes} bytes in 2 s");
    let flows = d.ok(&["dump-flows", "br0"]);
    assert!(flows.contains("n_packets="), "{flows}");
    assert!(!flows.contains("n_packets=0,"), "{flows}");
}

#[test]
fn iperf3_tcp_crosses_tap_ports_through_normal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let names: Vec<(String, String)> = (1..=2)
        .map(|i| (format!("rsn{id}n{i}"), format!("rsn{id}t{i}")))
        .collect();
    struct Ns(Vec<String>);
    impl Drop for Ns {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", n])
                    .output();
            }
        }
    }
    let _ns = Ns(names.iter().map(|n| n.0.clone()).collect());
    for (i, (ns, tap)) in names.iter().enumerate() {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", ns])
            .output();
        run("ip", &["netns", "add", ns]);
        d.ok(&["add-port", "br0", tap, "type=tap"]);
        run("ip", &["link", "set", tap, "netns", ns]);
        let addr = format!("10.85.0.{}/24", i + 1);
        run("ip", &["-n", ns, "addr", "add", &addr, "dev", tap]);
        run("ip", &["-n", ns, "link", "set", tap, "up"]);
        run(
            "ip",
            &["netns", "exec", ns, "ethtool", "-K", tap, "tx", "off"],
        );
    }
    run(
        "ip",
        &["netns", "exec", &names[1].0, "iperf3", "-s", "-1", "-D"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let out = run(
        "ip",
        &[
            "netns",
            "exec",
            &names[0].0,
            "iperf3",
            "-c",
            "10.85.0.2",
            "-t",
            "2",
            "-J",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 json");
    let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    eprintln!("tap, normal: {bytes} bytes in 2 s");
    assert!(bytes > 10_000_000, "iperf3 moved only {bytes} bytes");
    let fdb = d.ok(&["fdb-show", "br0"]);
    assert!(fdb.lines().count() >= 3, "{fdb}");
    // The TAP devices live in the namespaces: the switch must not mistake them for gone.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(port_stat(&d, &names[0].1, "link_resets"), 0);
}
