//! Poll threads of the real daemon: several threads per bridge with the rx queues spread
//! over them, changed at run time under traffic without losing a packet, kept across a
//! restart; idle threads wait on the ports' descriptors and wake at once.

mod common;

use std::time::Duration;

use common::{Daemon, Hosts, finish};

/// The poll threads of `bridge` from `pmd-stats`: (core, ["port:queue", ...]).
fn pmds(d: &Daemon, bridge: &str) -> Vec<(Option<u64>, Vec<String>)> {
    let v = d.json(&["pmd-stats"]);
    v["pmds"]
        .as_array()
        .expect("pmds")
        .iter()
        .filter(|p| p["bridge"] == bridge)
        .map(|p| {
            let rxqs = p["rxqs"]
                .as_array()
                .expect("rxqs")
                .iter()
                .map(|q| format!("{}:{}", q["port_name"].as_str().unwrap_or("?"), q["queue"]))
                .collect();
            (p["core_id"].as_u64(), rxqs)
        })
        .collect()
}

fn loss_percent(ping_out: &str) -> f64 {
    let line = ping_out
        .lines()
        .find(|l| l.contains("packet loss"))
        .expect("ping summary");
    line.split(',')
        .find(|p| p.contains("packet loss"))
        .and_then(|p| p.trim().split('%').next())
        .and_then(|n| n.parse().ok())
        .expect("loss figure")
}

#[test]
fn rx_queues_move_between_poll_threads_under_traffic_without_loss() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(cpus >= 2, "this test needs 2 CPUs, the machine has {cpus}");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path());
    let h = Hosts::new("pm", 96, 4);
    for p in &h.ports[..2] {
        d.ok(&["add-port", "br0", p, "type=afxdp"]);
    }
    // Default: one thread, pinned to the last CPU, polling everything.
    let one = pmds(&d, "br0");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0].0, Some(cpus as u64 - 1));
    assert_eq!(one[0].1.len(), 2);

    h.exec(1, &["ping", "-c", "2", "-i", "0.2", "-W", "2", &h.addr(2)]);
    // 400 pings, 10 ms apart, while threads come and go and ports are added.
    let ping = h.spawn(
        1,
        &["ping", "-c", "400", "-i", "0.01", "-W", "2", &h.addr(2)],
    );
    std::thread::sleep(Duration::from_millis(300));
    d.ok(&["set-pmd-cpus", "br0", "0,1"]);
    let two = pmds(&d, "br0");
    assert_eq!(two.len(), 2, "{two:?}");
    assert_eq!((two[0].0, two[1].0), (Some(0), Some(1)));
    assert!(
        two.iter().all(|p| p.1.len() == 1),
        "one queue each: {two:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    for p in &h.ports[2..] {
        d.ok(&["add-port", "br0", p, "type=afxdp"]);
    }
    let four = pmds(&d, "br0");
    assert!(four.iter().all(|p| p.1.len() == 2), "{four:?}");
    std::thread::sleep(Duration::from_millis(300));
    d.ok(&["set-pmd-cpus", "br0", "1,0"]);
    std::thread::sleep(Duration::from_millis(300));
    d.ok(&["set-pmd-cpus", "br0", "1"]);
    std::thread::sleep(Duration::from_millis(300));
    d.ok(&["set-pmd-cpus", "br0", "0-1"]);
    let out = finish(ping);
    let loss = loss_percent(&out);
    assert_eq!(loss, 0.0, "pings lost while poll threads changed:\n{out}");
    // The other pair works on the second thread's queues.
    h.exec(3, &["ping", "-c", "3", "-i", "0.2", "-W", "2", &h.addr(4)]);

    // Bad CPU lists are refused and change nothing.
    let o = d.fc(&["set-pmd-cpus", "br0", "4096"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = d.fc(&["set-pmd-cpus", "br0", &cpus.to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not available"));
    assert_eq!(pmds(&d, "br0").len(), 2);

    // The setting survives a restart.
    drop(d);
    d = Daemon::start(dir.path());
    let again = pmds(&d, "br0");
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(again.iter().map(|p| p.1.len()).sum::<usize>(), 4);
    h.exec(1, &["ping", "-c", "3", "-i", "0.2", "-W", "2", &h.addr(2)]);
    d.ok(&["set-pmd-cpus", "br0", "default"]);
    assert_eq!(pmds(&d, "br0").len(), 1);
}

#[test]
fn an_idle_poll_thread_wakes_at_once_for_traffic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new("pw", 97, 2);
    for p in &h.ports {
        d.ok(&["add-port", "br0", p, "type=afxdp"]);
    }
    h.exec(1, &["ping", "-c", "2", "-i", "0.2", "-W", "2", &h.addr(2)]);
    // Pings 300 ms apart: the poll thread has backed off to its longest wait before each.
    let out = h.exec(1, &["ping", "-c", "10", "-i", "0.3", "-W", "2", &h.addr(2)]);
    let avg: f64 = out
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .and_then(|v| v.trim().split('/').nth(1))
        .and_then(|v| v.parse().ok())
        .expect("ping rtt");
    eprintln!("idle-to-busy ping rtt avg {avg} ms");
    // Each round trip crosses the switch twice; sleeping out a 1 ms back-off each way would
    // put the average near 1 ms.
    assert!(
        avg < 0.5,
        "round trips through an idle switch average {avg} ms"
    );
}

#[test]
fn multi_queue_af_xdp_ports_spread_over_two_poll_threads_carry_tcp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let ns: Vec<String> = (1..=2).map(|i| format!("pq{id}n{i}")).collect();
    let ports: Vec<String> = (1..=2).map(|i| format!("pq{id}h{i}")).collect();
    struct Cleanup(Vec<String>, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = std::process::Command::new("ip")
                    .args(["netns", "del", n])
                    .output();
            }
            for p in &self.1 {
                let _ = std::process::Command::new("ip")
                    .args(["link", "del", p])
                    .output();
            }
        }
    }
    let _c = Cleanup(ns.clone(), ports.clone());
    for i in 0..2 {
        let inner = format!("pq{id}v{}", i + 1);
        common::run("ip", &["netns", "add", &ns[i]]);
        common::run(
            "ip",
            &[
                "link",
                "add",
                &ports[i],
                "numtxqueues",
                "2",
                "numrxqueues",
                "2",
                "type",
                "veth",
                "peer",
                "name",
                &inner,
                "numtxqueues",
                "2",
                "numrxqueues",
                "2",
            ],
        );
        common::run("ip", &["link", "set", &inner, "netns", &ns[i]]);
        let addr = format!("10.98.0.{}/24", i + 1);
        common::run("ip", &["-n", &ns[i], "addr", "add", &addr, "dev", &inner]);
        common::run("ip", &["-n", &ns[i], "link", "set", &inner, "up"]);
        common::run("ip", &["link", "set", &ports[i], "up"]);
        common::run(
            "ip",
            &[
                "netns", "exec", &ns[i], "ethtool", "-K", &inner, "tx", "off",
            ],
        );
        d.ok(&["add-port", "br0", &ports[i], "type=afxdp", "n-rxq=2"]);
    }
    d.ok(&["set-pmd-cpus", "br0", "0,1"]);
    let threads = pmds(&d, "br0");
    assert_eq!(threads.len(), 2);
    let mut all: Vec<&String> = threads.iter().flat_map(|t| &t.1).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4, "every queue of both ports, once: {threads:?}");
    for t in &threads {
        assert_eq!(t.1.len(), 2, "two queues per thread: {threads:?}");
    }
    common::run("ip", &["netns", "exec", &ns[1], "iperf3", "-s", "-1", "-D"]);
    std::thread::sleep(Duration::from_millis(500));
    let out = common::run(
        "ip",
        &[
            "netns",
            "exec",
            &ns[0],
            "iperf3",
            "-c",
            "10.98.0.2",
            "-t",
            "2",
            "-P",
            "4",
            "-J",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 json");
    let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    let stats = d.json(&["pmd-stats"]);
    let rx: Vec<u64> = stats["pmds"]
        .as_array()
        .expect("pmds")
        .iter()
        .map(|p| p["rx_packets"].as_u64().unwrap_or(0))
        .collect();
    eprintln!("multi-queue: {bytes} bytes in 2 s; rx per thread {rx:?}");
    assert!(bytes > 10_000_000, "iperf3 moved only {bytes} bytes");
}
