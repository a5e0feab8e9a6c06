//! Rate control on real ports: namespaces joined by AF_XDP ports of the real daemon, traffic
//! from iperf3 and ping. A 10 Mbit/s meter against a 50 Mbit/s UDP stream; a priority queue
//! on a port congested by a bulk stream.

mod common;

use std::time::Duration;

use common::{Daemon, Hosts, finish};

/// iperf3's JSON summary of what the receiver got: (packets received, lost, seconds).
fn udp_received(json: &str) -> (u64, u64, f64) {
    let v: serde_json::Value = serde_json::from_str(json).expect("iperf3 json");
    let s = &v["end"]["sum_received"];
    let packets = s["packets"].as_u64().expect("packets");
    let lost = s["lost_packets"].as_u64().expect("lost_packets");
    let secs = s["seconds"].as_f64().expect("seconds");
    (packets.saturating_sub(lost), lost, secs)
}

/// An iperf3 UDP stream of `rate` for `secs` s from host 1 to host 2 (whose server must be
/// running), 1400-byte datagrams: (the rate in frames as the switch counts them, 1400 B of
/// payload plus UDP, IPv4 and Ethernet headers; received; lost; seconds).
fn udp_stream(h: &Hosts, rate: &str, secs: &str) -> (f64, u64, u64, f64) {
    let out = h.exec(
        1,
        &[
            "iperf3",
            "-c",
            &h.addr(2),
            "-u",
            "-b",
            rate,
            "-l",
            "1400",
            "-t",
            secs,
            "-J",
        ],
    );
    let (received, lost, secs) = udp_received(&out);
    (received as f64 * 1442.0 * 8.0 / secs, received, lost, secs)
}

/// Average RTT in ms from ping's summary; `None` when every reply was lost.
fn ping_avg_ms(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.contains("min/avg/max"))?;
    let nums = line.split('=').nth(1)?.trim();
    nums.split('/').nth(1)?.parse().ok()
}

#[test]
fn a_50_mbit_udp_stream_through_a_10_mbit_meter_delivers_10_mbit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new("rlm", 93, 2);
    for p in &h.ports {
        d.ok(&["add-port", "br0", p, "type=afxdp"]);
    }
    d.ok(&[
        "add-meter",
        "br0",
        "meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=1000",
    ]);
    d.ok(&[
        "add-flow",
        "br0",
        &format!(
            "priority=10,udp,nw_dst={},actions=meter:1,normal",
            h.addr(2)
        ),
    ]);
    h.exec(1, &["ping", "-c", "2", "-i", "0.2", "-W", "2", &h.addr(2)]);
    h.exec(2, &["iperf3", "-s", "-1", "-D"]);
    std::thread::sleep(Duration::from_millis(500));
    let (l2_bps, received, lost, secs) = udp_stream(&h, "50M", "5");
    eprintln!("meter: {l2_bps:.0} bit/s, {received} received, {lost} lost");
    assert!(
        (l2_bps - 10e6).abs() <= 0.05 * 10e6,
        "through a 10 Mbit/s meter: {:.2} Mbit/s ({received} received, {lost} lost in {secs:.1} s)",
        l2_bps / 1e6
    );
    let stats = d.json(&["meter-stats", "br0", "1"]);
    let dropped = stats["stats"][0]["bands"][0]["packet_count"]
        .as_u64()
        .expect("band packet_count");
    eprintln!("meter band dropped {dropped}, iperf3 lost {lost}");
    let diff = dropped.abs_diff(lost);
    assert!(
        diff <= 50.max(lost / 50),
        "the meter dropped {dropped} packets, iperf3 lost {lost}"
    );
    let pmd = d.json(&["pmd-stats"]);
    assert!(pmd.to_string().contains("drop_meter"), "{pmd}");
}

#[test]
fn a_priority_queue_keeps_its_rate_and_latency_on_a_congested_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new("rlq", 94, 2);
    d.ok(&["add-port", "br0", &h.ports[0], "type=afxdp"]);
    // Host 2's port sends at most 20 Mbit/s; queue 1 goes first.
    d.ok(&[
        "add-port",
        "br0",
        &h.ports[1],
        "type=afxdp",
        "qos-max-rate=20000",
        "queue.1=priority:7",
    ]);
    for m in ["ip,nw_tos=184", "udp,tp_dst=5202", "tcp,tp_dst=5202"] {
        d.ok(&[
            "add-flow",
            "br0",
            &format!("priority=10,{m},actions=set_queue:1,normal"),
        ]);
    }
    h.exec(1, &["ping", "-c", "2", "-i", "0.2", "-W", "2", &h.addr(2)]);
    h.exec(2, &["iperf3", "-s", "-1", "-D", "-p", "5201"]);
    h.exec(2, &["iperf3", "-s", "-1", "-D", "-p", "5202"]);
    std::thread::sleep(Duration::from_millis(500));
    let a2 = h.addr(2);
    let bulk = h.spawn(
        1,
        &[
            "iperf3", "-c", &a2, "-p", "5201", "-u", "-b", "50M", "-l", "1400", "-t", "7", "-J",
        ],
    );
    // Let the bulk stream fill queue 0.
    std::thread::sleep(Duration::from_millis(1500));
    let prio = h.spawn(
        1,
        &[
            "iperf3", "-c", &a2, "-p", "5202", "-u", "-b", "5M", "-l", "1000", "-t", "3", "-J",
        ],
    );
    let ping_prio = h.spawn(
        1,
        &["ping", "-Q", "184", "-c", "20", "-i", "0.1", "-W", "2", &a2],
    );
    let ping_bulk = h.spawn(1, &["ping", "-c", "20", "-i", "0.1", "-W", "2", &a2]);
    let prio_out = finish(prio);
    let ping_prio = ping_prio.wait_with_output().expect("ping");
    let ping_bulk = ping_bulk.wait_with_output().expect("ping");
    let _ = finish(bulk);

    let (received, lost, secs) = udp_received(&prio_out);
    let bps = received as f64 * 1000.0 * 8.0 / secs;
    assert!(
        lost * 100 <= received && (bps - 5e6).abs() <= 0.05 * 5e6,
        "priority stream: {:.2} Mbit/s, {lost} lost of {}",
        bps / 1e6,
        received + lost
    );
    let prio_rtt = ping_avg_ms(&String::from_utf8_lossy(&ping_prio.stdout));
    let bulk_rtt = ping_avg_ms(&String::from_utf8_lossy(&ping_bulk.stdout));
    eprintln!(
        "priority: {bps:.0} bit/s, {lost} lost; ping rtt priority {prio_rtt:?} ms, bulk {bulk_rtt:?} ms"
    );
    assert!(
        prio_rtt.is_some_and(|ms| ms < 10.0),
        "priority ping: {prio_rtt:?} ms"
    );
    assert!(
        bulk_rtt.is_none_or(|ms| ms > 50.0),
        "a ping in the congested queue should wait behind the bulk stream: {bulk_rtt:?} ms"
    );
    let q = d.json(&["queue-stats", "br0", &h.ports[1]]);
    let queues = q["stats"].as_array().expect("queue stats");
    let get = |id: u64, k: &str| {
        queues
            .iter()
            .find(|s| s["queue_id"].as_u64() == Some(id))
            .and_then(|s| s[k].as_u64())
            .expect("queue counter")
    };
    assert!(get(0, "tx_dropped") > 0, "{q}");
    assert_eq!(get(1, "tx_dropped"), 0, "{q}");
    assert!(get(1, "tx_packets") >= received, "{q}");
}

#[test]
fn rate_control_options_are_checked_and_ingress_policing_counts_drops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new("rlp", 95, 2);
    for p in &h.ports {
        d.ok(&["add-port", "br0", p, "type=afxdp"]);
    }
    for (opts, needle) in [
        (vec!["queue.1=priority:7"], "qos-max-rate"),
        (vec!["qos-max-rate=1000", "queue.64=weight:1"], "queue id"),
        (
            vec!["qos-max-rate=1000", "queue.1=speed:3"],
            "unknown queue setting",
        ),
        (vec!["qos-max-rate=fast"], "whole number"),
        (vec!["ingress_policing_burst=10"], "ingress_policing_rate"),
    ] {
        let mut args = vec!["set-port", "br0", &h.ports[0]];
        args.extend(opts.iter().copied());
        let o = d.fc(&args);
        assert!(!o.status.success(), "{opts:?} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{opts:?}: {err}");
    }
    // Police host 1's traffic at 5 Mbit/s and send 20 Mbit/s.
    d.ok(&[
        "set-port",
        "br0",
        &h.ports[0],
        "ingress_policing_rate=5000",
        "ingress_policing_burst=500",
    ]);
    h.exec(1, &["ping", "-c", "2", "-i", "0.2", "-W", "2", &h.addr(2)]);
    h.exec(2, &["iperf3", "-s", "-1", "-D"]);
    std::thread::sleep(Duration::from_millis(500));
    let (l2_bps, ..) = udp_stream(&h, "20M", "3");
    eprintln!("policer: {l2_bps:.0} bit/s");
    assert!(
        (l2_bps - 5e6).abs() <= 0.05 * 5e6,
        "through a 5 Mbit/s policer: {:.2} Mbit/s",
        l2_bps / 1e6
    );
    let ports = d.json(&["dump-ports", "br0", &h.ports[0]]);
    let rx_dropped = ports["stats"][0]["rx_dropped"]
        .as_u64()
        .expect("rx_dropped");
    assert!(rx_dropped > 1000, "{ports}");
}
