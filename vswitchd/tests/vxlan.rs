//! VXLAN interop with the Linux kernel's VXLAN device: a namespace with
//! `ip link add vx0 type vxlan id 42 ...` on one side of the underlay, a namespace behind our
//! switch on the other; ping and iperf3 TCP in both directions; tshark decodes our packets
//! as VXLAN with the right VNI; the switch resolved the remote by ARP itself.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Daemon, finish, run};

struct Ns(Vec<String>, Vec<String>);
impl Drop for Ns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
        for l in &self.1 {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
    }
}

fn in_ns(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Our switch on a tunnel: `br1` holds the underlay port `underlay` (AF_XDP, `normal`, its
/// poll thread on CPU 0) and the tunnel endpoint `tep` (A.B.C.D/N); `br0` holds the tunnel
/// port `tunnel` (`ty`, to `remote` with `key`) and the host's port `host`.
#[allow(clippy::too_many_arguments)]
fn tunnel_switch(
    d: &Daemon,
    underlay: &str,
    tep: &str,
    ty: &str,
    tunnel: &str,
    remote: &str,
    key: &str,
    host: &str,
) {
    d.ok(&["add-br", "br1"]);
    // Each bridge's poll thread on its own CPU: the packets cross from one to the other.
    d.ok(&["set-pmd-cpus", "br1", "0"]);
    d.ok(&["add-port", "br1", underlay, "type=afxdp"]);
    d.ok(&["set-tunnel-ip", "br1", tep]);
    d.ok(&[
        "add-port",
        "br0",
        tunnel,
        &format!("type={ty}"),
        &format!("remote_ip={remote}"),
        &format!("key={key}"),
    ]);
    d.ok(&["add-port", "br0", host, "type=afxdp"]);
}

/// A remote and a local namespace for a tunnel test, named from `tag`, each holding one end
/// of a veth whose other end stays here for the switch: (remote, local, the remote's
/// underlay end here and inside, the local host's end here and inside). Removed on drop of
/// the returned guard.
#[allow(clippy::type_complexity)]
fn remote_and_local(tag: &str) -> (Ns, [String; 6]) {
    let id = std::process::id() % 100_000;
    let (remote, local) = (format!("{tag}r{id}"), format!("{tag}l{id}"));
    let (hu, uv) = (format!("{tag}u{id}h"), format!("{tag}u{id}v"));
    let (hl, lv) = (format!("{tag}w{id}h"), format!("{tag}w{id}v"));
    let guard = Ns(
        vec![remote.clone(), local.clone()],
        vec![hu.clone(), hl.clone()],
    );
    for (ns, h, v) in [(&remote, &hu, &uv), (&local, &hl, &lv)] {
        ns_with_veth(ns, h, v);
    }
    (guard, [remote, local, hu, uv, hl, lv])
}

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

#[test]
fn two_switch_instances_form_a_vxlan_overlay() {
    overlay_between_two_switches("vxlan", "vo", 41);
}

#[test]
fn two_switch_instances_form_a_gre_overlay() {
    overlay_between_two_switches("gre", "go", 42);
}

/// Two instances of our switch, each in its own namespace, joined by a veth underlay; a host
/// behind each; the hosts reach each other through a `ty` overlay between the switches.
fn overlay_between_two_switches(ty: &str, tag: &str, net: u8) {
    let id = std::process::id() % 100_000;
    let sw = [format!("{tag}s{id}a"), format!("{tag}s{id}b")];
    let hosts = [format!("{tag}h{id}a"), format!("{tag}h{id}b")];
    let _ns = Ns(sw.iter().chain(hosts.iter()).cloned().collect(), Vec::new());
    for n in sw.iter().chain(hosts.iter()) {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        run("ip", &["netns", "add", n]);
        run("ip", &["-n", n, "link", "set", "lo", "up"]);
    }
    // The underlay: one veth between the two switch namespaces.
    let (ua, ub) = (format!("{tag}u{id}a"), format!("{tag}u{id}b"));
    run(
        "ip",
        &["link", "add", &ua, "type", "veth", "peer", "name", &ub],
    );
    run("ip", &["link", "set", &ua, "netns", &sw[0]]);
    run("ip", &["link", "set", &ub, "netns", &sw[1]]);
    // Each host hangs off its switch.
    let mut ports = Vec::new();
    for i in 0..2 {
        let (p, h) = (format!("{tag}p{id}{i}"), format!("{tag}q{id}{i}"));
        run(
            "ip",
            &["link", "add", &p, "type", "veth", "peer", "name", &h],
        );
        run("ip", &["link", "set", &p, "netns", &sw[i]]);
        run("ip", &["link", "set", &h, "netns", &hosts[i]]);
        let addr = format!("10.{net}.0.{}/24", i + 1);
        run("ip", &["-n", &hosts[i], "addr", "add", &addr, "dev", &h]);
        run("ip", &["-n", &hosts[i], "link", "set", &h, "mtu", "1450"]);
        run("ip", &["-n", &hosts[i], "link", "set", &h, "up"]);
        in_ns(&hosts[i], &["ethtool", "-K", &h, "tx", "off"]);
        run("ip", &["-n", &sw[i], "link", "set", &p, "up"]);
        ports.push(p);
    }
    for (i, u) in [&ua, &ub].into_iter().enumerate() {
        run("ip", &["-n", &sw[i], "link", "set", u, "up"]);
    }
    let dirs = [
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    ];
    let daemons: Vec<Daemon> = (0..2)
        .map(|i| Daemon::start_in(dirs[i].path(), Some(&sw[i])))
        .collect();
    for (i, d) in daemons.iter().enumerate() {
        let (me, peer) = (i + 1, 2 - i);
        let underlay = if i == 0 { &ua } else { &ub };
        d.ok(&["add-br", "br1"]);
        d.ok(&["add-port", "br1", underlay, "type=afxdp"]);
        d.ok(&["set-tunnel-ip", "br1", &format!("172.{net}.0.{me}/24")]);
        d.ok(&[
            "add-port",
            "br0",
            "tun0",
            &format!("type={ty}"),
            &format!("remote_ip=172.{net}.0.{peer}"),
            "key=100",
        ]);
        d.ok(&["add-port", "br0", &ports[i], "type=afxdp"]);
    }
    in_ns(
        &hosts[0],
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            &format!("10.{net}.0.2"),
        ],
    );
    in_ns(
        &hosts[1],
        &[
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            &format!("10.{net}.0.1"),
        ],
    );
    for d in &daemons {
        let neigh = d.ok(&["tnl-neigh-show"]);
        assert!(neigh.contains(&format!("172.{net}.0.")), "{neigh}");
    }
}

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

/// A kernel VXLAN peer in namespace `ns`: underlay `uv` at `underlay`/24, the VXLAN device
/// `vx0` with `vni` towards our endpoint `tep`, and `overlay`/24 on it.
fn kernel_peer(ns: &str, uv: &str, underlay: &str, tep: &str, vni: &str, overlay: &str) {
    run(
        "ip",
        &[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{underlay}/24"),
            "dev",
            uv,
        ],
    );
    run(
        "ip",
        &[
            "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", vni, "remote", tep, "local",
            underlay, "dstport", "4789", "dev", uv,
        ],
    );
    run(
        "ip",
        &[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{overlay}/24"),
            "dev",
            "vx0",
        ],
    );
    run("ip", &["-n", ns, "link", "set", "vx0", "up"]);
    in_ns(ns, &["ethtool", "-K", "vx0", "tx", "off"]);
}

/// A namespace `ns` holding veth end `v` (up, transmit checksum offload off), whose other
/// end `h` stays in this namespace, up.
fn ns_with_veth(ns: &str, h: &str, v: &str) {
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
    run("ip", &["netns", "add", ns]);
    run("ip", &["link", "add", h, "type", "veth", "peer", "name", v]);
    run("ip", &["link", "set", v, "netns", ns]);
    run("ip", &["link", "set", h, "up"]);
    run("ip", &["-n", ns, "link", "set", v, "up"]);
    run("ip", &["-n", ns, "link", "set", "lo", "up"]);
    in_ns(ns, &["ethtool", "-K", v, "tx", "off"]);
}

fn ping_from(ns: &str, to: &str, d: &Daemon) {
    let o = Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", to,
        ])
        .output()
        .expect("ping (apt-get install iputils-ping)");
    assert!(
        o.status.success(),
        "ping {ns} -> {to} failed:\n{}{}\ntnl: {}\nfdb br0: {}\nports: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.ok(&["tnl-neigh-show"]),
        d.ok(&["fdb-show", "br0"]),
        d.ok(&["dump-ports", "br0"]),
    );
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

/// Whether `show BR` reports port `name` up.
fn link_up(d: &Daemon, bridge: &str, name: &str) -> bool {
    fn find(v: &serde_json::Value, name: &str) -> Option<bool> {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("name").and_then(|n| n.as_str()) == Some(name)
                    && let Some(up) = m.get("link_up").and_then(|u| u.as_bool())
                {
                    return Some(up);
                }
                m.values().find_map(|x| find(x, name))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|x| find(x, name)),
            _ => None,
        }
    }
    let j = d.json(&["show", bridge]);
    find(&j, name).unwrap_or_else(|| panic!("no port {name} in {j}"))
}

/// Waits up to 3 s for port `name` to be reported up (or down).
fn wait_link(d: &Daemon, bridge: &str, name: &str, up: bool) {
    for _ in 0..30 {
        if link_up(d, bridge, name) == up {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "port {name} is not {}: {}",
        if up { "up" } else { "down" },
        d.ok(&["show", bridge])
    );
}

/// A tunnel port configured before its endpoint exists comes up when `set-tunnel-ip`
/// creates it; removing the endpoint's port takes it down (its traffic counted as
/// tunnel_no_endpoint), re-adding brings it back; so does removing and re-creating the
/// endpoint's bridge. The daemon is never restarted; a restart restores it all.
#[test]
fn tunnel_ports_follow_their_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (_ns, [remote, local, hu, uv, hl, lv]) = remote_and_local("ep");
    kernel_peer(&remote, &uv, "172.34.0.2", "172.34.0.1", "42", "10.34.0.2");
    run(
        "ip",
        &["-n", &local, "addr", "add", "10.34.0.1/24", "dev", &lv],
    );
    run("ip", &["-n", &local, "link", "set", &lv, "mtu", "1450"]);
    let vx = format!("ve{id}");
    // The tunnel port first: accepted, down.
    d.ok(&[
        "add-port",
        "br0",
        &vx,
        "type=vxlan",
        "remote_ip=172.34.0.2",
        "key=42",
    ]);
    assert!(!link_up(&d, "br0", &vx), "up without an endpoint");
    d.ok(&["add-port", "br0", &hl, "type=afxdp"]);
    d.ok(&["add-flow", "br0", "priority=0,actions=normal"]);
    // A bad option is still refused, endpoint or not.
    let bad = d.fc(&[
        "add-port",
        "br0",
        "vbad",
        "type=vxlan",
        "remote_ip=flow",
        "key=flowy",
    ]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("port.options.key"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let setup_underlay = |d: &Daemon| {
        d.ok(&["add-br", "br1"]);
        d.ok(&["set-pmd-cpus", "br1", "0"]);
        d.ok(&["add-port", "br1", &hu, "type=afxdp"]);
    };
    setup_underlay(&d);
    d.ok(&["set-tunnel-ip", "br1", "172.34.0.1/24"]);
    wait_link(&d, "br0", &vx, true);
    ping_from(&local, "10.34.0.2", &d);

    // The endpoint's port goes: the tunnel port is down at once, its traffic counted.
    d.ok(&["del-port", "br1", "br1-tep"]);
    assert!(!link_up(&d, "br0", &vx), "still up without its endpoint");
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &local,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "1",
            "10.34.0.2",
        ])
        .output()
        .expect("ping");
    assert!(
        !o.status.success(),
        "ping crossed a tunnel with no endpoint"
    );
    let j = d.json(&["tnl-neigh-show"]);
    assert!(
        j["no_endpoint_drops"].as_u64().unwrap_or(0) >= 1,
        "tunnel_no_endpoint not counted: {j}"
    );
    assert!(d.ok(&["tnl-neigh-show"]).contains("tunnel_no_endpoint="));
    // Back again.
    d.ok(&["set-tunnel-ip", "br1", "172.34.0.1/24"]);
    wait_link(&d, "br0", &vx, true);
    ping_from(&local, "10.34.0.2", &d);

    // The whole underlay bridge goes, then comes back.
    d.ok(&["del-br", "br1"]);
    assert!(!link_up(&d, "br0", &vx));
    setup_underlay(&d);
    d.ok(&["set-tunnel-ip", "br1", "172.34.0.1/24"]);
    wait_link(&d, "br0", &vx, true);
    ping_from(&local, "10.34.0.2", &d);

    // A restart restores both bridges (br0, holding the tunnel port, comes first).
    d.kill9();
    let d = Daemon::start(dir.path());
    wait_link(&d, "br0", &vx, true);
    ping_from(&local, "10.34.0.2", &d);
}
