//! Namespaces ping each other through TAP, AF_PACKET and AF_XDP ports added with flowctl;
//! an iperf3 TCP stream crosses AF_XDP ports.

use super::*;

#[test]
fn namespaces_ping_through_tap_ports_added_with_flowctl() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsca{id}"), format!("vscb{id}"));
    let (ta, tb) = (format!("vca{id}"), format!("vcb{id}"));
    let ip = |args: &[&str]| {
        let o = Command::new("ip")
            .args(args)
            .output()
            .expect("`ip` (iproute2) is required");
        assert!(
            o.status.success(),
            "ip {args:?}: {} (needs root)",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    struct Ns(Vec<String>);
    impl Drop for Ns {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).output();
            }
        }
    }
    let _ns = Ns(vec![na.clone(), nb.clone()]);
    for n in [&na, &nb] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        ip(&["netns", "add", n]);
    }
    d.ok(&["add-port", "br0", &ta, "type=tap"]);
    d.ok(&["add-port", "br0", &tb, "type=internal"]);
    for (t, n, addr) in [(&ta, &na, "10.94.0.1/24"), (&tb, &nb, "10.94.0.2/24")] {
        ip(&["link", "set", t, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", t]);
        ip(&["-n", n, "link", "set", t, "up"]);
    }
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &na,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "10.94.0.2",
        ])
        .output()
        .expect("ping (iputils-ping)");
    assert!(
        out.status.success(),
        "ping through vswitchd failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let fdb = d.ok(&["fdb-show", "br0"]);
    assert!(fdb.lines().count() >= 3, "{fdb}");
    // The MAC table's counters: both stations learned, nothing moved, evicted or aged.
    let st = d.ok(&["fdb-stats-show", "br0"]);
    assert!(
        st.starts_with(
            "Statistics for bridge \"br0\":\n  Current/maximum MAC entries in the table: 2/"
        ),
        "{st}"
    );
    let st = d.json(&["fdb-stats-show", "br0"]);
    assert_eq!(st["stats"]["learned"], 2, "{st}");
    for k in ["moved", "evicted", "aged", "tunnel_sources_full"] {
        assert_eq!(st["stats"][k], 0, "{k}: {st}");
    }
    assert!(st["stats"]["capacity"].as_u64() >= Some(2), "{st}");
    assert_eq!(d.json(&["fdb-show", "br0"])["stats"], st["stats"]);
    let pmd = d.json(&["pmd-stats"]);
    for k in ["megaflow_full", "megaflow_removed", "cache_flush"] {
        assert!(pmd["pmds"][0][k].is_u64(), "{k}: {pmd}");
    }
    assert!(d.ok(&["pmd-stats"]).contains("  megaflows removed: "));
    let ports = d.ok(&["dump-ports", "br0"]);
    assert!(ports.contains("rx pkts="), "{ports}");
    // Removing a port under the switch: its device goes away with it.
    d.ok(&["del-port", "br0", &ta]);
    let o = Command::new("ip")
        .args(["-n", &na, "link", "show", &ta])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the TAP device outlived its port");
}

#[test]
fn namespaces_ping_through_af_packet_ports_added_with_flowctl() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsqa{id}"), format!("vsqb{id}"));
    let (va, vb) = (format!("vqa{id}"), format!("vqb{id}"));
    let ip = |args: &[&str]| {
        let o = Command::new("ip")
            .args(args)
            .output()
            .expect("`ip` (iproute2) is required");
        assert!(
            o.status.success(),
            "ip {args:?}: {} (needs root)",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    struct Cleanup(Vec<String>, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).output();
            }
            for v in &self.1 {
                let _ = Command::new("ip").args(["link", "del", v]).output();
            }
        }
    }
    let _c = Cleanup(vec![na.clone(), nb.clone()], vec![va.clone(), vb.clone()]);
    for (v, n, addr) in [(&va, &na, "10.96.0.1/24"), (&vb, &nb, "10.96.0.2/24")] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        ip(&["netns", "add", n]);
        let peer = format!("{v}p");
        ip(&["link", "add", v, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", &peer]);
        ip(&["-n", n, "link", "set", &peer, "up"]);
        ip(&["link", "set", v, "up"]);
        d.ok(&["add-port", "br0", v, "type=afpacket"]);
    }
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &na,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "10.96.0.2",
        ])
        .output()
        .expect("ping (iputils-ping)");
    assert!(
        out.status.success(),
        "ping through vswitchd AF_PACKET ports failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // An interface that does not exist is a clear refusal.
    let o = d.fc(&["add-port", "br0", "nosuchif0", "type=afpacket"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no interface named"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn namespaces_ping_through_af_xdp_ports_and_a_missing_interface_does_not_stop_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsxa{id}"), format!("vsxb{id}"));
    let (va, vb) = (format!("vxa{id}"), format!("vxb{id}"));
    let ip = |args: &[&str]| {
        let o = Command::new("ip")
            .args(args)
            .output()
            .expect("`ip` (iproute2) is required");
        assert!(
            o.status.success(),
            "ip {args:?}: {} (needs root)",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    struct Cleanup(Vec<String>, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).output();
            }
            for v in &self.1 {
                let _ = Command::new("ip").args(["link", "del", v]).output();
            }
        }
    }
    let _c = Cleanup(vec![na.clone(), nb.clone()], vec![va.clone(), vb.clone()]);
    for (v, n, addr, mode) in [
        (&va, &na, "10.99.0.1/24", "xdp-mode=native"),
        (&vb, &nb, "10.99.0.2/24", "xdp-mode=generic"),
    ] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        ip(&["netns", "add", n]);
        let peer = format!("{v}p");
        ip(&["link", "add", v, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", &peer]);
        ip(&["-n", n, "link", "set", &peer, "up"]);
        ip(&["link", "set", v, "up"]);
        d.ok(&["add-port", "br0", v, "type=afxdp", mode]);
    }
    let ping = || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &na,
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                "10.99.0.2",
            ])
            .output()
            .expect("ping (iputils-ping)")
    };
    let out = ping();
    assert!(
        out.status.success(),
        "ping through vswitchd AF_XDP ports failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let o = d.fc(&["add-port", "br0", "x9", "type=afxdp", "xdp-mode=turbo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("xdp-mode"));
    // Restart: the ports come back and carry traffic again.
    d.term();
    let mut d = Daemon::start(dir.path());
    let out = ping();
    assert!(out.status.success(), "no traffic after a restart");
    // An interface gone while the daemon was down: it still starts, the port is down.
    d.term();
    ip(&["link", "del", &vb]);
    let d = Daemon::start(dir.path());
    let show = d.ok(&["show", "br0"]);
    assert!(show.contains(&vb), "{show}");
    assert!(d.ok(&["list-br"]).contains("br0"));
}

#[test]
fn an_iperf3_tcp_stream_crosses_af_xdp_ports() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsia{id}"), format!("vsib{id}"));
    let (va, vb) = (format!("via{id}"), format!("vib{id}"));
    let run = |cmd: &str, args: &[&str]| {
        let o = Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e} (apt-get install iproute2 ethtool iperf3)"));
        assert!(
            o.status.success(),
            "{cmd} {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    struct Cleanup(Vec<String>, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).output();
            }
            for v in &self.1 {
                let _ = Command::new("ip").args(["link", "del", v]).output();
            }
        }
    }
    let _c = Cleanup(vec![na.clone(), nb.clone()], vec![va.clone(), vb.clone()]);
    for (v, n, addr) in [(&va, &na, "10.92.0.1/24"), (&vb, &nb, "10.92.0.2/24")] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        run("ip", &["netns", "add", n]);
        let peer = format!("{v}p");
        run(
            "ip",
            &["link", "add", v, "type", "veth", "peer", "name", &peer],
        );
        run("ip", &["link", "set", &peer, "netns", n]);
        run("ip", &["-n", n, "addr", "add", addr, "dev", &peer]);
        run("ip", &["-n", n, "link", "set", &peer, "up"]);
        run("ip", &["link", "set", v, "up"]);
        // veth leaves TCP checksums to an offload that a userspace switch never performs.
        run(
            "ip",
            &["netns", "exec", n, "ethtool", "-K", &peer, "tx", "off"],
        );
        d.ok(&["add-port", "br0", v, "type=afxdp"]);
    }
    run("ip", &["netns", "exec", &nb, "iperf3", "-s", "-1", "-D"]);
    std::thread::sleep(Duration::from_millis(500));
    let out = run(
        "ip",
        &[
            "netns",
            "exec",
            &na,
            "iperf3",
            "-c",
            "10.92.0.2",
            "-t",
            "2",
            "-J",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 json");
    let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(
        bytes > 10_000_000,
        "iperf3 moved only {bytes} bytes through the switch"
    );
    // The MAC table learned both ends.
    let fdb = d.ok(&["fdb-show", "br0"]);
    assert!(fdb.lines().count() >= 3, "{fdb}");
}
