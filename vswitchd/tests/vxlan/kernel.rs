//! Our switch against the Linux kernel's VXLAN device: interop (ping, iperf3, tshark) and
//! one flow-based port serving two kernel peers.

use super::*;

#[test]
fn kernel_vxlan_interop_ping_iperf3_and_tshark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (_ns, [remote, local, hu, uv, hl, lv]) = remote_and_local("vx");
    // The remote host: underlay 172.30.0.2, the kernel's VXLAN device with VNI 42.
    run(
        "ip",
        &["-n", &remote, "addr", "add", "172.30.0.2/24", "dev", &uv],
    );
    run(
        "ip",
        &[
            "-n",
            &remote,
            "link",
            "add",
            "vx0",
            "type",
            "vxlan",
            "id",
            "42",
            "remote",
            "172.30.0.1",
            "local",
            "172.30.0.2",
            "dstport",
            "4789",
            "dev",
            &uv,
        ],
    );
    run(
        "ip",
        &["-n", &remote, "addr", "add", "10.30.0.2/24", "dev", "vx0"],
    );
    // No IPv6 on vx0: its own neighbour discovery and MLD would cross the underlay and fill
    // the capture below (it stops after 6 packets) before the ping starts.
    in_ns(
        &remote,
        &["sysctl", "-qw", "net.ipv6.conf.vx0.disable_ipv6=1"],
    );
    run("ip", &["-n", &remote, "link", "set", "vx0", "up"]);
    in_ns(&remote, &["ethtool", "-K", "vx0", "tx", "off"]);
    // The local host behind our switch, with the overlay MTU.
    run(
        "ip",
        &["-n", &local, "addr", "add", "10.30.0.1/24", "dev", &lv],
    );
    run("ip", &["-n", &local, "link", "set", &lv, "mtu", "1450"]);

    // Our switch: br1 reaches the underlay and holds the endpoint; br0 has the tunnel.
    let vx = format!("vx{id}");
    tunnel_switch(
        &d,
        &hu,
        "172.30.0.1/24",
        "vxlan",
        &vx,
        "172.30.0.2",
        "42",
        &hl,
    );

    // Capture the underlay on the remote side while pinging.
    let tshark = Command::new("ip")
        .args([
            "netns",
            "exec",
            &remote,
            "tshark",
            "-i",
            &uv,
            "-a",
            "duration:6",
            "-c",
            "6",
            "-f",
            "udp port 4789",
            "-T",
            "fields",
            "-e",
            "vxlan.vni",
            "-e",
            "ip.src",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tshark (apt-get install tshark)");
    std::thread::sleep(Duration::from_millis(1500));
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &local,
            "ping",
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "2",
            "10.30.0.2",
        ])
        .output()
        .expect("ping");
    let ping_out = String::from_utf8_lossy(&ping.stdout).to_string();
    let captured = finish(tshark);
    assert!(
        ping.status.success(),
        "ping across the kernel VXLAN device failed:\n{ping_out}\n{}\ntnl: {}",
        String::from_utf8_lossy(&ping.stderr),
        d.ok(&["tnl-neigh-show"])
    );
    // Both directions of the VXLAN traffic decode with VNI 42.
    let lines: Vec<&str> = captured.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 4, "tshark saw: {captured}");
    assert!(
        lines.iter().all(|l| l.starts_with("42\t")),
        "tshark saw: {captured}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("172.30.0.1")),
        "none of ours: {captured}"
    );
    // The remote pings back.
    in_ns(
        &remote,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.30.0.1"],
    );
    // The endpoint resolved the remote by ARP itself.
    let neigh = d.ok(&["tnl-neigh-show"]);
    assert!(neigh.contains("172.30.0.2"), "{neigh}");

    // iperf3 TCP both ways.
    in_ns(&remote, &["iperf3", "-s", "-D", "-1"]);
    std::thread::sleep(Duration::from_millis(500));
    for reverse in [false, true] {
        let mut args = vec![
            "iperf3",
            "-c",
            "10.30.0.2",
            "-t",
            "2",
            "-J",
            "--connect-timeout",
            "3000",
        ];
        if reverse {
            in_ns(&remote, &["iperf3", "-s", "-D", "-1"]);
            std::thread::sleep(Duration::from_millis(500));
            args.push("-R");
        }
        let out = in_ns(&local, &args);
        let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 json");
        let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        eprintln!("vxlan iperf3 reverse={reverse}: {bytes} bytes in 2 s");
        assert!(
            bytes > 20_000_000,
            "iperf3 (reverse={reverse}) moved only {bytes} bytes"
        );
    }
}

/// One `remote_ip=flow key=flow` port serves two kernel VXLAN peers (172.33.0.2 with VNI 42,
/// 172.33.0.3 with VNI 43): first flows choose the remote and VNI with set_field, then
/// `normal` learns each station with the remote it came from.
#[test]
fn one_flow_based_vxlan_port_serves_two_kernel_peers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (ra, rb, local) = (format!("fa{id}"), format!("fb{id}"), format!("fl{id}"));
    let (ha, va) = (format!("fa{id}h"), format!("fa{id}v"));
    let (hb, vb) = (format!("fb{id}h"), format!("fb{id}v"));
    let (hl, vl) = (format!("fl{id}h"), format!("fl{id}v"));
    let _guard = Ns(
        vec![ra.clone(), rb.clone(), local.clone()],
        vec![ha.clone(), hb.clone(), hl.clone()],
    );
    ns_with_veth(&ra, &ha, &va);
    ns_with_veth(&rb, &hb, &vb);
    ns_with_veth(&local, &hl, &vl);
    kernel_peer(&ra, &va, "172.33.0.2", "172.33.0.1", "42", "10.33.0.2");
    kernel_peer(&rb, &vb, "172.33.0.3", "172.33.0.1", "43", "10.33.0.3");
    run(
        "ip",
        &["-n", &local, "addr", "add", "10.33.0.1/24", "dev", &vl],
    );
    run("ip", &["-n", &local, "link", "set", &vl, "mtu", "1450"]);

    let vx = format!("vf{id}");
    d.ok(&["add-br", "br1"]);
    d.ok(&["set-pmd-cpus", "br1", "0"]);
    d.ok(&["add-port", "br1", &ha, "type=afxdp"]);
    d.ok(&["add-port", "br1", &hb, "type=afxdp"]);
    d.ok(&["set-tunnel-ip", "br1", "172.33.0.1/24"]);
    d.ok(&[
        "add-port",
        "br0",
        &vx,
        "type=vxlan",
        "remote_ip=flow",
        "key=flow",
    ]);
    d.ok(&["add-port", "br0", &hl, "type=afxdp"]);

    // Flows choose the remote and the VNI by the overlay address; back by remote and VNI.
    for (ip, remote, vni) in [
        ("10.33.0.2", "172.33.0.2", 42),
        ("10.33.0.3", "172.33.0.3", 43),
    ] {
        let to = format!("actions=set_field:{remote}->tun_dst,set_field:{vni}->tun_id,output:{vx}");
        d.ok(&[
            "add-flow",
            "br0",
            &format!("priority=10,in_port={hl},arp,arp_tpa={ip},{to}"),
        ]);
        d.ok(&[
            "add-flow",
            "br0",
            &format!("priority=10,in_port={hl},ip,nw_dst={ip},{to}"),
        ]);
        d.ok(&[
            "add-flow",
            "br0",
            &format!("priority=10,in_port={vx},tun_src={remote},tun_id={vni},actions=output:{hl}"),
        ]);
    }
    ping_from(&local, "10.33.0.2", &d);
    ping_from(&local, "10.33.0.3", &d);
    ping_from(&ra, "10.33.0.1", &d);
    ping_from(&rb, "10.33.0.1", &d);
    let neigh = d.ok(&["tnl-neigh-show"]);
    assert!(
        neigh.contains("172.33.0.2") && neigh.contains("172.33.0.3"),
        "both remotes resolved: {neigh}"
    );

    // Now `normal` alone: every ARP cache is emptied, the remotes speak first (their ARP
    // broadcasts are learned with the remote and VNI they came from), the replies go back
    // to the learned remote.
    d.ok(&["del-flows", "br0"]);
    d.ok(&["add-flow", "br0", "priority=0,actions=normal"]);
    for ns in [&ra, &rb, &local] {
        run("ip", &["-n", ns, "neigh", "flush", "all"]);
    }
    ping_from(&ra, "10.33.0.1", &d);
    ping_from(&rb, "10.33.0.1", &d);
    let fdb = d.ok(&["fdb-show", "br0"]);
    assert!(
        fdb.contains("remote_ip=172.33.0.2 tun_id=42")
            && fdb.contains("remote_ip=172.33.0.3 tun_id=43"),
        "fdb-show names the remotes: {fdb}"
    );
    let j = d.json(&["fdb-show", "br0"]);
    assert!(
        j.to_string().contains("\"remote_ip\":\"172.33.0.2\""),
        "{j}"
    );
    // Both tunnel sources were recorded; two remotes fit without evicting a header.
    assert_eq!(j["stats"]["tunnel_sources_full"], 0, "{j}");
    let p = d.json(&["dump-ports", "br0", &vx]);
    assert_eq!(p["stats"][0]["counters"]["remotes_evicted"], 0, "{p}");
    // And the local side reaches both through what was learned.
    ping_from(&local, "10.33.0.2", &d);
    ping_from(&local, "10.33.0.3", &d);
    // A broadcast from the local side (an ARP request for an address nobody has) has no
    // chosen remote: dropped at the flow-based port and counted.
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            &local,
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "10.33.0.9",
        ])
        .output();
    let j = d.json(&["tnl-neigh-show"]);
    let no_dst = j["endpoints"][0]["drops"]["tunnel_no_dst"]
        .as_u64()
        .unwrap_or(0);
    assert!(no_dst >= 1, "tunnel_no_dst counted: {j}");
}
