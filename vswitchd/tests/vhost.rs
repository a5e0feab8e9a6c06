//! vhost-user ports with the real frontend `dpdk-testpmd` (`net_virtio_user`, from Debian's
//! `dpdk-dev`), through the real vswitchd and flowctl: frames cross between a namespace and
//! testpmd byte for byte, in both socket modes, with one and two queue pairs, with and
//! without hugepages; testpmd killed and restarted under traffic is served again, and leaves
//! no descriptor behind in the daemon.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Hosts};

/// A testpmd process, stopped (and its hugepage files removed) when dropped.
struct Testpmd {
    child: Option<Child>,
    prefix: String,
}

impl Testpmd {
    /// Starts testpmd with one virtio-user port on `sock`: `server` makes testpmd the
    /// socket's server (our port then connects in client mode).
    fn start(
        prefix: &str,
        sock: &Path,
        server: bool,
        queues: usize,
        huge: bool,
        app: &[&str],
        log: &Path,
    ) -> Testpmd {
        if Command::new("dpdk-testpmd")
            .arg("--version")
            .output()
            .is_err()
        {
            panic!(
                "dpdk-testpmd is missing: apt-get install dpdk-dev (./scripts/test installs it)"
            );
        }
        let mut args: Vec<String> = vec![
            "-l".into(),
            "0-1".into(),
            "--main-lcore".into(),
            "1".into(),
            "--no-pci".into(),
            format!("--file-prefix={prefix}"),
            format!(
                "--vdev=net_virtio_user0,path={},queues={queues}{}",
                sock.display(),
                if server { ",server=1" } else { "" }
            ),
        ];
        if huge {
            common::hugepages();
            args.extend(["--single-file-segments".into(), "-m".into(), "256".into()]);
        } else {
            args.extend(["--no-huge".into(), "-m".into(), "256".into()]);
        }
        args.push("--".into());
        args.extend(
            [
                "--nb-cores=1",
                "--total-num-mbufs=4096",
                "--stats-period=1",
                &format!("--rxq={queues}"),
                &format!("--txq={queues}"),
            ]
            .map(String::from),
        );
        args.extend(app.iter().map(|s| s.to_string()));
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new("dpdk-testpmd")
            .args(&args)
            .stdin(Stdio::null())
            .stderr(out.try_clone().unwrap())
            .stdout(out)
            .spawn()
            .expect("start dpdk-testpmd");
        Testpmd {
            child: Some(child),
            prefix: prefix.to_string(),
        }
    }

    /// Kills it without a chance to clean up (a crashed VM).
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(d) = std::fs::read_dir("/dev/hugepages") {
            for e in d.flatten() {
                if e.file_name().to_string_lossy().starts_with(&self.prefix) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

fn test_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vswitch-vhost-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Port `port`'s statistics on br0.
fn port_stats(d: &Daemon, port: &str) -> serde_json::Value {
    d.json(&["dump-ports", "br0", port])["stats"][0].clone()
}

/// The extra counter `name` of port `port` on br0.
fn counter(d: &Daemon, port: &str, name: &str) -> u64 {
    let v = port_stats(d, port);
    v["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name} in {v}"))
}

fn link_up(d: &Daemon, port: &str) -> bool {
    let v = d.json(&["show", "br0"]);
    v["bridges"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == port)
        .map(|p| p["link_up"].as_bool().unwrap_or(false))
        .unwrap()
}

fn wait(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A bridge with host 1 of `hosts` (AF_PACKET) and a vhost-user port `vu0` on `sock`,
/// crossed by two flows.
fn bridge(d: &Daemon, hosts: &Hosts, sock: &Path, mode: &str, queues: usize) {
    d.ok(&[
        "add-port",
        "br0",
        &hosts.ports[0],
        "type=afpacket",
        "ofport_request=1",
    ]);
    d.ok(&[
        "add-port",
        "br0",
        "vu0",
        "type=vhost-user",
        &format!("mode={mode}"),
        &format!("path={}", sock.display()),
        &format!("n-rxq={queues}"),
        "ofport_request=2",
    ]);
    d.ok(&["del-flows", "br0"]);
    d.ok(&["add-flow", "br0", "priority=10,in_port=1,actions=output:2"]);
    d.ok(&["add-flow", "br0", "priority=10,in_port=2,actions=output:1"]);
}

/// Sends `n` frames of an unused ethertype from host 1 to a made-up MAC and returns the
/// frames that came back from it (hex), and the frames sent (hex), as scapy saw them.
///
/// The port's link comes up when the guest has configured its rings, which testpmd does
/// before it fills its receive ring and starts forwarding; frames sent in between are
/// dropped (`tx_no_room`), as a NIC without receive buffers drops them. So probes go first,
/// until one returns; then the `n` frames, and the wait for them ends when all are back.
fn exchange(hosts: &Hosts, n: usize) -> (Vec<String>, Vec<String>) {
    let script = format!(
        r#"
import sys, time
from scapy.all import Ether, Raw, AsyncSniffer, sendp, get_if_hwaddr, conf
conf.verb = 0
iface = "{iface}"
me = get_if_hwaddr(iface)
peer = "02:00:00:00:00:99"
probes, got = [], []
def seen(p):
    (probes if bytes(p)[14:19] == b"probe" else got).append(p)
sn = AsyncSniffer(iface=iface, store=False, prn=seen,
                  lfilter=lambda p: p.src == peer and p.type == 0x88b5)
sn.start()
time.sleep(0.5)
deadline = time.time() + 30
while not probes and time.time() < deadline:
    sendp(Ether(dst=peer, src=me, type=0x88b5) / Raw(b"probe"), iface=iface)
    time.sleep(0.1)
if not probes:
    print("E no probe came back in 30 s")
time.sleep(0.5)
sent = []
for i in range({n}):
    f = Ether(dst=peer, src=me, type=0x88b5) / Raw(b"vswitch vhost test %05d " % i + bytes(range(i % 200)))
    sendp(f, iface=iface)
    sent.append(bytes(f).hex())
    time.sleep(0.002)
deadline = time.time() + 15
while len(got) < len(sent) and time.time() < deadline:
    time.sleep(0.1)
time.sleep(0.3)
sn.stop()
for s in sent:
    print("S", s)
for p in got:
    print("R", bytes(p).hex())
"#,
        iface = hosts.inner(1),
    );
    let out = hosts.exec(1, &["/usr/bin/python3", "-c", &script]);
    assert!(
        !out.contains("E no probe"),
        "testpmd never forwarded a probe"
    );
    let sent = out
        .lines()
        .filter_map(|l| l.strip_prefix("S "))
        .map(String::from)
        .collect();
    let got = out
        .lines()
        .filter_map(|l| l.strip_prefix("R "))
        .map(String::from)
        .collect();
    (got, sent)
}

/// What testpmd's macswap makes of a frame: the addresses swapped.
fn swapped(hex: &str) -> String {
    format!("{}{}{}", &hex[12..24], &hex[0..12], &hex[24..])
}

/// Frames from the namespace reach testpmd through the vhost-user port, testpmd swaps their
/// MACs and sends them back through it: every frame returns, byte for byte.
fn round_trip(name: &str, net: u8, mode: &str, queues: usize, huge: bool) {
    let dir = test_dir(name);
    let hosts = Hosts::new(name, net, 1);
    let d = Daemon::start(&dir);
    let sock = dir.join("vu0.sock");
    // Client mode: testpmd is the socket's server, and our port keeps trying until it is
    // there. Server mode: our port creates the socket, testpmd connects.
    bridge(&d, &hosts, &sock, mode, queues);
    let _tp = Testpmd::start(
        &format!("{name}{}", std::process::id()),
        &sock,
        mode == "client",
        queues,
        huge,
        &["--forward-mode=macswap"],
        &dir.join("testpmd.log"),
    );
    wait("the vhost-user port to come up", 20, || link_up(&d, "vu0"));
    let (got, sent) = exchange(&hosts, 100);
    assert_eq!(sent.len(), 100);
    let want: Vec<String> = sent.iter().map(|s| swapped(s)).collect();
    assert_eq!(
        got,
        want,
        "port vu0: {}\ntestpmd's log: {}",
        port_stats(&d, "vu0"),
        std::fs::read_to_string(dir.join("testpmd.log")).unwrap_or_default()
    );
    let p = port_stats(&d, "vu0");
    assert_eq!(p["rx_errors"], 0);
    assert_eq!(p["tx_errors"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn round_trip_client_mode_one_queue() {
    round_trip("vhc1", 61, "client", 1, false);
}

#[test]
fn round_trip_server_mode_one_queue() {
    round_trip("vhs1", 62, "server", 1, false);
}

#[test]
fn round_trip_client_mode_two_queues() {
    round_trip("vhc2", 63, "client", 2, false);
}

#[test]
fn round_trip_server_mode_two_queues_hugepages() {
    round_trip("vhs2", 64, "server", 2, true);
}

/// testpmd transmitting on two queues: both of the port's rx queues carry frames, and what
/// reaches the namespace is what testpmd's txonly mode builds (UDP from 198.18.0.1 to
/// 198.18.0.2, port 9, 100-byte frames).
#[test]
fn two_transmit_queues_reach_the_namespace() {
    let name = "vhtx";
    let dir = test_dir(name);
    let hosts = Hosts::new(name, 65, 1);
    let d = Daemon::start(&dir);
    let sock = dir.join("vu0.sock");
    bridge(&d, &hosts, &sock, "server", 2);
    let _tp = Testpmd::start(
        &format!("{name}{}", std::process::id()),
        &sock,
        false,
        2,
        false,
        &[
            "--forward-mode=txonly",
            "--txpkts=100",
            "--eth-peer=0,02:00:00:00:00:77",
        ],
        &dir.join("testpmd.log"),
    );
    wait("the vhost-user port to come up", 20, || link_up(&d, "vu0"));
    let iface = hosts.inner(1).to_string();
    let out = hosts.exec(
        1,
        &[
            "timeout",
            "15",
            "tshark",
            "-i",
            &iface,
            "-c",
            "200",
            "-T",
            "fields",
            "-e",
            "frame.len",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "eth.dst",
            "udp",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 100, "tshark saw {} frames", lines.len());
    for l in &lines {
        assert_eq!(
            *l, "100\t198.18.0.1\t198.18.0.2\t9\t9\t02:00:00:00:00:77",
            "a frame as testpmd built it"
        );
    }
    wait("both rx queues to carry frames", 10, || {
        counter(&d, "vu0", "rxq0_packets") > 0 && counter(&d, "vu0", "rxq1_packets") > 0
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// testpmd killed (SIGKILL) and restarted while it transmits, ten times, in both modes:
/// each time the port goes down, comes back up, and traffic flows again; the daemon holds
/// no more descriptors than before; another pair of hosts on the bridge keeps talking.
fn restarts(name: &str, net: u8, mode: &str) {
    let dir = test_dir(name);
    let hosts = Hosts::new(name, net, 3);
    let d = Daemon::start(&dir);
    let sock = dir.join("vu0.sock");
    let testpmd_server = mode == "client";
    let start = |i: usize| {
        Testpmd::start(
            &format!("{name}{}r{i}", std::process::id()),
            &sock,
            testpmd_server,
            1,
            false,
            &["--forward-mode=txonly", "--txpkts=64"],
            &dir.join(format!("testpmd{i}.log")),
        )
    };
    bridge(&d, &hosts, &sock, mode, 1);
    // Hosts 2 and 3 reach each other through normal forwarding (the flows of `bridge`
    // match ports 1 and 2 only).
    for p in &hosts.ports[1..] {
        d.ok(&["add-port", "br0", p, "type=afpacket"]);
    }
    d.ok(&["add-flow", "br0", "priority=0,actions=normal"]);
    let mut tp = Some(start(0));
    let ping = hosts.spawn(
        2,
        &["ping", "-c", "300", "-i", "0.05", "-q", &hosts.addr(3)],
    );
    let fds = |d: &Daemon| {
        std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
            .unwrap()
            .count()
    };
    let mut fds_after_first = 0;
    for i in 1..=10 {
        wait("the vhost-user port to come up", 30, || link_up(&d, "vu0"));
        let rx = |d: &Daemon| port_stats(d, "vu0")["rx_packets"].as_u64().unwrap();
        let before = rx(&d);
        wait("traffic from testpmd", 10, || rx(&d) > before + 1000);
        if i == 2 {
            fds_after_first = fds(&d);
        }
        tp.as_mut().unwrap().kill9();
        drop(tp.take());
        wait("the port to go down", 10, || !link_up(&d, "vu0"));
        if testpmd_server {
            // A killed testpmd leaves its socket file; a new one binds the path again.
            let _ = std::fs::remove_file(&sock);
        }
        tp = Some(start(i));
    }
    wait("the vhost-user port to come up", 30, || link_up(&d, "vu0"));
    // A leak stays; a descriptor the API server has not closed yet after the last flowctl
    // call goes within moments.
    let deadline = Instant::now() + Duration::from_secs(3);
    while fds(&d) > fds_after_first && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        fds(&d) <= fds_after_first,
        "the daemon leaked descriptors: {} then {}",
        fds_after_first,
        fds(&d)
    );
    assert!(counter(&d, "vu0", "connects") >= 11);
    let o = common::finish(ping);
    assert!(
        o.contains(" 0% packet loss"),
        "the other hosts were disturbed: {o}"
    );
    // The poll thread is not stuck: it still counts packets.
    let pmd = d.ok(&["pmd-stats"]);
    assert!(pmd.contains("packets received"), "{pmd}");
    drop(tp);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn testpmd_restarts_client_mode() {
    restarts("vhrc", 66, "client");
}

#[test]
fn testpmd_restarts_server_mode() {
    restarts("vhrs", 67, "server");
}
