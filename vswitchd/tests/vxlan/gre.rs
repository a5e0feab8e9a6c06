//! GRE against scapy and against Open vSwitch userspace.

use super::*;

/// GRE against frames built and checked by scapy: what the switch sends decodes as GRE with
/// the key and transparent Ethernet bridging, and what scapy sends in GRE reaches the host
/// behind the switch, whose reply comes back in GRE.
#[test]
fn gre_frames_built_by_scapy_cross_the_switch() {
    gre_with_scapy("gs", false);
}

/// The same with `remote_ip=flow key=flow`: flows choose the remote and a key only GRE can
/// carry (all 32 bits), and match the scapy peer's packets by `tun_src` and `tun_id`.
#[test]
fn gre_key_flow_with_scapy() {
    gre_with_scapy("gk", true);
}

fn gre_with_scapy(tag: &str, flow_based: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (_ns, [remote, local, hu, uv, hl, lv]) = remote_and_local(tag);
    run(
        "ip",
        &["-n", &remote, "addr", "add", "172.43.0.2/24", "dev", &uv],
    );
    run(
        "ip",
        &["-n", &local, "addr", "add", "10.43.0.1/24", "dev", &lv],
    );
    run("ip", &["-n", &local, "link", "set", &lv, "mtu", "1450"]);
    run(
        "ip",
        &[
            "-n",
            &local,
            "neigh",
            "add",
            "10.43.0.2",
            "lladdr",
            "02:00:00:00:43:02",
            "dev",
            &lv,
        ],
    );
    let link = run("ip", &["-n", &local, "-j", "link", "show", &lv]);
    let v: serde_json::Value = serde_json::from_str(&link).expect("ip -j");
    let host_mac = v[0]["address"].as_str().expect("mac").to_string();

    let gre = format!("{tag}{id}");
    let key = if flow_based { "305419896" } else { "7" };
    if flow_based {
        tunnel_switch(&d, &hu, "172.43.0.1/24", "gre", &gre, "flow", "flow", &hl);
        d.ok(&[
            "add-flow",
            "br0",
            &format!(
                "priority=10,in_port={hl},actions=set_field:172.43.0.2->tun_dst,set_field:{key}->tun_id,output:{gre}"
            ),
        ]);
        d.ok(&[
            "add-flow",
            "br0",
            &format!(
                "priority=10,in_port={gre},tun_src=172.43.0.2,tun_id={key},actions=output:{hl}"
            ),
        ]);
    } else {
        tunnel_switch(
            &d,
            &hu,
            "172.43.0.1/24",
            "gre",
            &gre,
            "172.43.0.2",
            key,
            &hl,
        );
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scapy/gre_peer.py");
    let peer = Command::new("ip")
        .args([
            "netns",
            "exec",
            &remote,
            "/usr/bin/python3",
            script,
            &uv,
            &host_mac,
            key,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with scapy (apt-get install python3-scapy)");
    std::thread::sleep(Duration::from_millis(1500));
    // Pings from the host: the first resolves the underlay next hop, the rest go in GRE.
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            &local,
            "ping",
            "-c",
            "5",
            "-i",
            "0.3",
            "-W",
            "1",
            "10.43.0.2",
        ])
        .output();
    let out = peer.wait_with_output().expect("scapy peer");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "scapy GRE peer failed:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.ok(&["tnl-neigh-show"])
    );
}

/// GRE interop with Open vSwitch userspace (a private instance, `type=gre` on a netdev
/// bridge, in its own namespace): hosts behind each switch ping each other and run iperf3.
#[test]
fn gre_interop_with_open_vswitch_userspace() {
    for bin in ["ovsdb-server", "ovsdb-tool", "ovs-vsctl"] {
        assert!(
            Command::new("which")
                .arg(bin)
                .output()
                .is_ok_and(|o| o.status.success()),
            "{bin} is missing: apt-get install openvswitch-switch"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ovs_dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (ovs_ns, h_ovs, h_ours) = (format!("gvo{id}"), format!("gvh{id}o"), format!("gvh{id}u"));
    let (under_ours, under_ovs) = (format!("gvu{id}a"), format!("gvu{id}b"));
    let (port_ours, host_ours) = (format!("gvl{id}a"), format!("gvl{id}b"));
    let (port_ovs, host_ovs) = (format!("gvm{id}a"), format!("gvm{id}b"));
    struct Ovs(std::path::PathBuf);
    impl Drop for Ovs {
        fn drop(&mut self) {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ovs/gre-peer");
            let _ = Command::new(script).arg("down").arg(&self.0).output();
        }
    }
    let _ns = Ns(
        vec![ovs_ns.clone(), h_ovs.clone(), h_ours.clone()],
        vec![under_ours.clone(), port_ours.clone()],
    );
    for n in [&ovs_ns, &h_ovs, &h_ours] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        run("ip", &["netns", "add", n]);
    }
    // Underlay: our end in this namespace, OVS's in its own.
    run(
        "ip",
        &[
            "link",
            "add",
            &under_ours,
            "type",
            "veth",
            "peer",
            "name",
            &under_ovs,
        ],
    );
    run("ip", &["link", "set", &under_ovs, "netns", &ovs_ns]);
    run("ip", &["-n", &ovs_ns, "link", "set", &under_ovs, "up"]);
    run("ip", &["link", "set", &under_ours, "up"]);
    // Our host.
    run(
        "ip",
        &[
            "link", "add", &port_ours, "type", "veth", "peer", "name", &host_ours,
        ],
    );
    run("ip", &["link", "set", &host_ours, "netns", &h_ours]);
    run("ip", &["link", "set", &port_ours, "up"]);
    // OVS's host.
    run(
        "ip",
        &[
            "link", "add", &port_ovs, "type", "veth", "peer", "name", &host_ovs,
        ],
    );
    run("ip", &["link", "set", &port_ovs, "netns", &ovs_ns]);
    run("ip", &["link", "set", &host_ovs, "netns", &h_ovs]);
    run("ip", &["-n", &ovs_ns, "link", "set", &port_ovs, "up"]);
    for (ns, dev, addr) in [
        (&h_ours, &host_ours, "10.44.0.1/24"),
        (&h_ovs, &host_ovs, "10.44.0.2/24"),
    ] {
        run("ip", &["-n", ns, "addr", "add", addr, "dev", dev]);
        run("ip", &["-n", ns, "link", "set", dev, "mtu", "1400"]);
        run("ip", &["-n", ns, "link", "set", dev, "up"]);
        in_ns(ns, &["ethtool", "-K", dev, "tx", "off"]);
    }
    let _ovs = Ovs(ovs_dir.path().to_path_buf());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ovs/gre-peer");
    run(
        script,
        &[
            "up",
            &ovs_dir.path().display().to_string(),
            &ovs_ns,
            &under_ovs,
            "172.44.0.2/24",
            "172.44.0.1",
            "9",
            &port_ovs,
        ],
    );
    let gre = format!("gv{id}");
    tunnel_switch(
        &d,
        &under_ours,
        "172.44.0.1/24",
        "gre",
        &gre,
        "172.44.0.2",
        "9",
        &port_ours,
    );
    // Both ends resolve their next hop on the first packets.
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &h_ours, "ping", "-c", "3", "-i", "0.3", "-W", "1",
        ])
        .arg("10.44.0.2")
        .output();
    in_ns(
        &h_ours,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.44.0.2"],
    );
    in_ns(
        &h_ovs,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.44.0.1"],
    );
    in_ns(&h_ovs, &["iperf3", "-s", "-D", "-1"]);
    std::thread::sleep(Duration::from_millis(500));
    let out = in_ns(&h_ours, &["iperf3", "-c", "10.44.0.2", "-t", "2", "-J"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 json");
    let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    eprintln!("gre with ovs: {bytes} bytes in 2 s");
    assert!(
        bytes > 5_000_000,
        "iperf3 over GRE with OVS moved only {bytes} bytes"
    );
}
