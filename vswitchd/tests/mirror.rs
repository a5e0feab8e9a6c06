//! Port mirrors through the real daemon, with real veths and pings: a capture (tshark) in a
//! third namespace on the mirror's output port sees the ICMP copies, both directions when
//! both ports are selected on receive, only the requests when the replier's port is
//! selected on send, nothing once the mirror is removed; `list-mirrors` counts exactly the
//! frames captured; a mirror survives a restart; bad input is refused whole.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command};

use common::{Daemon, Hosts};

/// A capture with tshark on host `i`'s interface into `file`, running once it says so.
fn capture(h: &Hosts, i: usize, file: &Path) -> Child {
    let path = file.to_str().expect("utf-8 path");
    let mut c = h.spawn(i, &["tshark", "-n", "-i", h.inner(i), "-w", path]);
    let err = c.stderr.take().expect("stderr");
    let mut lines = BufReader::new(err).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("Capturing on") => break,
            Some(Ok(_)) => {}
            _ => panic!("tshark did not start capturing (apt-get install tshark; run as root)"),
        }
    }
    // Drain the rest so tshark never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    // It says so a little before its capture socket takes frames.
    std::thread::sleep(std::time::Duration::from_secs(1));
    c
}

/// Stops a capture and returns the ICMP type of each frame captured (`None`: not ICMP).
fn stop(mut c: Child, file: &Path) -> Vec<Option<u8>> {
    // Let the last copies arrive, then stop tshark the way ^C does (it writes its file out).
    std::thread::sleep(std::time::Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &c.id().to_string()])
        .status();
    let _ = c.wait();
    let out = Command::new("tshark")
        .args(["-n", "-r", file.to_str().expect("utf-8 path")])
        .args(["-T", "fields", "-e", "icmp.type"])
        .output()
        .expect("tshark -r (apt-get install tshark)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().ok())
        .collect()
}

/// Requests (type 8) and replies (type 0) among captured frames.
fn echoes(frames: &[Option<u8>]) -> (usize, usize) {
    let n = |t| frames.iter().filter(|f| **f == Some(t)).count();
    (n(8), n(0))
}

/// Copies the mirror has sent, as `list-mirrors --format json` says.
fn tx_packets(d: &Daemon, name: &str) -> u64 {
    let v = d.json(&["list-mirrors", "br0"]);
    let m = v["mirrors"]
        .as_array()
        .and_then(|a| a.iter().find(|m| m["name"] == name))
        .unwrap_or_else(|| panic!("no mirror {name} in {v}"));
    m["tx_packets"].as_u64().expect("tx_packets")
}

/// Three pings from host 1 to host 2 at 0.2 s intervals, every one answered.
fn ping(h: &Hosts) {
    let addr = h.addr(2);
    let out = h.exec(1, &["ping", "-c", "3", "-i", "0.2", "-W", "2", &addr]);
    assert!(out.contains("3 received"), "{out}");
}

#[test]
fn a_capture_on_the_mirror_port_sees_the_selected_pings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path());
    let h = Hosts::new_quiet("mir", 147, 3);
    // The switch's ends of the veths send nothing of their own either (IPv6 would: MLD
    // reports, router solicitations), so host 3 receives only what the switch sends it.
    for p in &h.ports {
        common::run(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{p}.disable_ipv6=1")],
        );
    }
    for (i, p) in h.ports.iter().enumerate() {
        let req = format!("ofport_request={}", i + 1);
        d.ok(&["add-port", "br0", p, "type=afpacket", &req]);
    }
    let (p1, p2, p3) = (&h.ports[0], &h.ports[1], &h.ports[2]);
    // Hosts 1 and 2 know each other's address without ARP, whose probes would come at
    // any moment: the mirror then sees the pings alone, and its counters equal exactly
    // what a capture took while it ran.
    for (i, j) in [(1, 2), (2, 1)] {
        let mac = h.exec(
            j,
            &["cat", &format!("/sys/class/net/{}/address", h.inner(j))],
        );
        let (addr, dev) = (h.addr(j), h.inner(i).to_string());
        h.exec(
            i,
            &[
                "ip",
                "neigh",
                "replace",
                &addr,
                "lladdr",
                mac.trim(),
                "dev",
                &dev,
                "nud",
                "permanent",
            ],
        );
    }
    // The switch learns where each is.
    ping(&h);

    // Bad input is refused whole, with what is wrong.
    let src = format!("select-src-port={p1},{p2}");
    let out3 = format!("output-port={p3}");
    for (bad, says) in [
        (
            vec!["add-mirror", "br0", "m", "select-src-port=nope", &out3],
            "no port nope",
        ),
        (
            vec!["add-mirror", "nobr", "m", &src, &out3],
            "no bridge nobr",
        ),
        (
            vec!["add-mirror", "br0", "m", &src, &format!("output-port={p2}")],
            "cannot also be selected",
        ),
        (vec!["add-mirror", "br0", "m", &out3], "selects nothing"),
        (
            vec!["add-mirror", "br0", "m", "select-vlan=5000", &out3],
            "VLAN",
        ),
    ] {
        let o = d.fc(&bad);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{bad:?}: {err}");
    }
    assert_eq!(d.ok(&["list-mirrors"]), "");

    // Both ports selected on receive: both directions, once each.
    d.ok(&["add-mirror", "br0", "both", &src, &out3]);
    let o = d.fc(&["add-mirror", "br0", "both", &src, &out3]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already has a mirror both"));
    let file = dir.path().join("both.pcapng");
    let c = capture(&h, 3, &file);
    ping(&h);
    let frames = stop(c, &file);
    assert_eq!(echoes(&frames), (3, 3), "{frames:?}");
    assert_eq!(tx_packets(&d, "both"), frames.len() as u64, "{frames:?}");
    let text = d.ok(&["list-mirrors", "br0"]);
    let want = format!("br0 both select-src-port={p1},{p2} output-port={p3} tx_packets=");
    assert!(text.starts_with(&want), "{text}");

    // The replier's port selected on send: the requests only. Stored: it survives a
    // restart.
    d.ok(&["del-mirror", "br0", "both"]);
    d.ok(&[
        "add-mirror",
        "br0",
        "to2",
        &format!("select-dst-port={p2}"),
        &out3,
    ]);
    d.term();
    let mut d = Daemon::start(dir.path());
    assert_eq!(
        d.ok(&["list-mirrors"]),
        format!("br0 to2 select-dst-port={p2} output-port={p3} tx_packets=0 tx_bytes=0\n")
    );
    let file = dir.path().join("to2.pcapng");
    let c = capture(&h, 3, &file);
    // The restarted switch learns again: its first request may flood (and be mirrored as
    // it leaves for port 2, once).
    ping(&h);
    let frames = stop(c, &file);
    assert_eq!(echoes(&frames), (3, 0), "{frames:?}");
    assert_eq!(tx_packets(&d, "to2"), frames.len() as u64, "{frames:?}");

    // Removed: nothing more.
    d.ok(&["del-mirror", "br0", "to2"]);
    let o = d.fc(&["del-mirror", "br0", "to2"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no mirror to2"));
    let file = dir.path().join("none.pcapng");
    let c = capture(&h, 3, &file);
    ping(&h);
    let frames = stop(c, &file);
    assert_eq!(echoes(&frames), (0, 0), "{frames:?}");

    // A removed port leaves the mirrors, stored: out of the selection, then, as the
    // output, the mirror goes.
    d.ok(&["add-mirror", "br0", "a", &src, &out3]);
    d.ok(&["del-port", "br0", p2]);
    let left = format!("br0 a select-src-port={p1} output-port={p3} tx_packets=0 tx_bytes=0\n");
    assert_eq!(d.ok(&["list-mirrors"]), left);
    d.term();
    let d = Daemon::start(dir.path());
    assert_eq!(d.ok(&["list-mirrors"]), left);
    d.ok(&["del-port", "br0", p3]);
    assert_eq!(d.ok(&["list-mirrors"]), "");
}
