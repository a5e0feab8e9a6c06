//! The metrics endpoint against the real tools: Prometheus (Debian's `prometheus`, one for
//! this test binary, scraping every second) scrapes `vswitchd --metrics`, `promtool check
//! metrics` accepts what it serves, and a port's `rx_packets` rises by exactly the frames
//! sent into it through a veth from a namespace (and the table's and group's counters they
//! crossed, by as much).
//!
//! Needs root (namespaces, veths, AF_XDP) and `apt-get install prometheus python3-scapy`.
//! About 30 s.

mod common;

use std::io::{Read as _, Write as _};
use std::process::Command;
use std::time::{Duration, Instant};

use common::free_port;
use common::prometheus::{http_get, prometheus, promtool_accepts};
use common::{Daemon, Hosts};

/// Frames sent by the counting test: an odd number, not a burst multiple.
const FRAMES: u64 = 57;

/// What `GET /metrics` on `port` returns (the status must be 200).
fn scrape(port: u16) -> String {
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    let (status, body) = http_get(addr, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The counter test: frames sent from a namespace with scapy move the port's `rx_packets`,
/// the egress port's `tx_packets`, table 0's matches and the group's packets by exactly
/// their number, as Prometheus sees it.
#[test]
fn rx_packets_rises_by_exactly_the_frames_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("tcp:127.0.0.1:{port}");
    let d = Daemon::start_with(dir.path(), None, &["--metrics", &listen]);
    // IPv6 off: the hosts send nothing by themselves.
    let h = Hosts::new_quiet("mx", 77, 2);
    for (i, p) in h.ports.iter().enumerate() {
        let no = format!("ofport_request={}", i + 1);
        d.ok(&["add-port", "br0", p, "type=afxdp", &no]);
    }
    // Port 1's traffic goes through a group to port 2: the group's and the table's counters
    // move with it too.
    d.ok(&["add-group", "br0", "group_id=7,type=all,bucket=output:2"]);
    d.ok(&["add-flow", "br0", "priority=10,in_port=1,actions=group:7"]);
    let prom = prometheus();
    prom.scrape("rx", &format!("127.0.0.1:{port}"));
    let rx = format!(
        "vswitch_port_rx_packets_total{{test=\"rx\",bridge=\"br0\",port=\"{}\",type=\"afxdp\"}}",
        h.ports[0]
    );
    let tx = format!(
        "vswitch_port_tx_packets_total{{test=\"rx\",port=\"{}\"}}",
        h.ports[1]
    );
    prom.wait_for(&rx, 30, |_| true);
    // The baseline: the same value in Prometheus for three seconds.
    let (mut base, mut since) = (prom.value(&rx), Instant::now());
    while since.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(500));
        let now = prom.value(&rx);
        if now != base {
            (base, since) = (now, Instant::now());
        }
    }
    let base = base.expect("rx_packets has a value");
    let tx_base = prom.value(&tx).expect("tx_packets has a value");
    let matches = "vswitch_table_matches_total{test=\"rx\",table=\"0\"}";
    let matches_base = prom.value(matches).expect("table 0 matches have a value");
    let group = "vswitch_group_packets_total{test=\"rx\",group=\"7\"}";
    let bucket = "vswitch_group_bucket_packets_total{test=\"rx\",group=\"7\",bucket=\"0\"}";
    assert_eq!(prom.value(group), Some(0.0));
    // Frames of a local experimental EtherType to an address nobody has: no host answers,
    // the switch floods them to the other port.
    let script = format!(
        "from scapy.all import Ether, Raw, sendp\n\
         sendp(Ether(src='02:00:00:00:77:01', dst='02:00:00:00:77:99', type=0x88b5) \
         / Raw(b'm' * 50), iface='{}', count={FRAMES}, verbose=False)\n",
        h.inner(1)
    );
    h.exec(1, &["/usr/bin/python3", "-c", &script]);
    let want = base + FRAMES as f64;
    let got = prom.wait_for(&rx, 20, |v| v >= want);
    assert_eq!(got, want, "rx_packets went from {base} to {got}");
    prom.wait_for(&tx, 20, |v| v >= tx_base + FRAMES as f64);
    let n = FRAMES as f64;
    prom.wait_for(group, 20, |v| v >= n);
    prom.wait_for(matches, 20, |v| v >= matches_base + n);
    // Nothing else arrives afterwards.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(prom.value(&rx), Some(want));
    assert_eq!(prom.value(&tx), Some(tx_base + n));
    assert_eq!(prom.value(group), Some(n));
    assert_eq!(prom.value(bucket), Some(n));
    assert_eq!(prom.value(matches), Some(matches_base + n));
    // The endpoint itself agrees.
    let text = scrape(port);
    let line = format!(
        "vswitch_port_rx_packets_total{{bridge=\"br0\",port=\"{}\",type=\"afxdp\"}} {}",
        h.ports[0], want as u64
    );
    assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
}

/// Every family, as promtool and Prometheus read it: ports, poll threads, tables, meters,
/// groups, queues, the MAC table, tunnels, and the latency histograms.
#[test]
fn promtool_and_prometheus_accept_every_family() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("tcp:127.0.0.1:{port}");
    let d = Daemon::start_with(dir.path(), None, &["--metrics", &listen]);
    d.ok(&["add-port", "br0", "m1", "type=memory"]);
    d.ok(&[
        "add-port",
        "br0",
        "m2",
        "type=memory",
        "qos-max-rate=20000",
        "queue.1=priority:7",
    ]);
    d.ok(&["add-meter", "br0", "meter=1,kbps,bands=type=drop,rate=1000"]);
    d.ok(&[
        "add-group",
        "br0",
        "group_id=3,type=all,bucket=output:1,bucket=output:2",
    ]);
    d.ok(&[
        "add-flow",
        "br0",
        "table=1,priority=5,arp,actions=meter:1,group:3",
    ]);
    // A refused request, for the request counter.
    assert!(
        !d.fc(&["add-port", "nosuch", "m3", "type=memory"])
            .status
            .success()
    );
    let text = scrape(port);
    promtool_accepts(&text);
    for family in [
        "vswitch_build_info{version=",
        "vswitch_port_rx_packets_total{bridge=\"br0\",port=\"m1\",type=\"memory\"} 0",
        "vswitch_port_tx_dropped_total{",
        "vswitch_port_link_up{bridge=\"br0\",port=\"m2\",type=\"memory\"} 1",
        "vswitch_pmd_cache_hits_total{bridge=\"br0\",pmd=\"0\",level=\"exact\"}",
        "vswitch_pmd_cache_misses_total{",
        "vswitch_pmd_busy_cycles_total{",
        "vswitch_pmd_drops_total{bridge=\"br0\",pmd=\"0\",reason=\"drop_meter\"}",
        "vswitch_table_flows{bridge=\"br0\",table=\"1\"} 1",
        "vswitch_table_lookups_total{bridge=\"br0\",table=\"0\"}",
        "vswitch_meter_flows{bridge=\"br0\",meter=\"1\"} 1",
        "vswitch_meter_band_packets_total{bridge=\"br0\",meter=\"1\",band=\"0\"}",
        "vswitch_group_packets_total{bridge=\"br0\",group=\"3\"}",
        "vswitch_group_bucket_bytes_total{bridge=\"br0\",group=\"3\",bucket=\"1\"}",
        "vswitch_queue_tx_packets_total{bridge=\"br0\",port=\"m2\",queue=\"1\"} 0",
        "vswitch_queue_backlog_packets{bridge=\"br0\",port=\"m2\",queue=\"0\"} 0",
        "vswitch_mac_learned_total{bridge=\"br0\"}",
        "vswitch_mac_capacity{bridge=\"br0\"}",
        "vswitch_tunnel_no_endpoint_drops_total ",
        "vswitch_store_commit_duration_seconds_count ",
        "vswitch_api_request_duration_seconds_bucket{rpc=\"Write\",le=\"+Inf\"}",
        "vswitch_api_requests_total{rpc=\"AddPort\",code=\"NOT_FOUND\"} 1",
    ] {
        assert!(text.contains(family), "no {family} in\n{text}");
    }
    let prom = prometheus();
    prom.scrape("families", &format!("127.0.0.1:{port}"));
    prom.wait_for("up{test=\"families\"}", 30, |v| v == 1.0);
    prom.wait_for(
        "vswitch_table_flows{test=\"families\",table=\"1\"}",
        10,
        |v| v == 1.0,
    );
    let commits = prom.wait_for(
        "vswitch_store_commit_duration_seconds_count{test=\"families\"}",
        10,
        |v| v >= 5.0,
    );
    assert!(commits >= 5.0, "{commits} commits");
    let median = prom.wait_for(
        "histogram_quantile(0.5, vswitch_api_request_duration_seconds_bucket{test=\"families\",rpc=\"AddPort\"})",
        10,
        |v| v > 0.0,
    );
    assert!(median < 3.3, "median AddPort latency {median} s");
    // Only /metrics is served, and only to GET (and HEAD).
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    assert_eq!(http_get(addr, "/").map(|(s, _)| s), Some(404));
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(b"POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
        .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(out.starts_with("HTTP/1.0 405"), "{out}");
}

/// `--metrics unix:PATH` serves the same over a socket, removed when the daemon stops; a
/// taken TCP port stops the daemon at start with a message saying so.
#[test]
fn unix_socket_endpoint_and_a_taken_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("metrics.sock");
    let arg = format!("unix:{}", sock.display());
    let mut d = Daemon::start_with(dir.path(), None, &["--metrics", &arg]);
    let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    promtool_accepts(body);
    assert!(
        body.contains("vswitch_pmd_info{bridge=\"br0\",pmd=\"0\""),
        "{body}"
    );
    d.term();
    assert!(!sock.exists(), "the metrics socket outlived the daemon");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let dir2 = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--db")
        .arg(dir2.path().join("conf.db"))
        .arg("--listen")
        .arg(format!("unix:{}", dir2.path().join("s").display()))
        .args(["--metrics", &format!("tcp:127.0.0.1:{port}")])
        .output()
        .expect("run vswitchd");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("metrics: binding tcp:127.0.0.1:{port}")),
        "{err}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .args(["--metrics", "127.0.0.1:9477"])
        .output()
        .expect("run vswitchd");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("tcp:HOST:PORT"));
}
