//! Two instances of our switch joined by a VXLAN or GRE overlay.

use super::*;

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
