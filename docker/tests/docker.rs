//! The plugin with a real Docker Engine: one dockerd, switch and plugin for the whole binary
//! (see `common`), and one test that walks through what a Docker user does, in order,
//! because the later steps (restarts, cycles) act on what the earlier ones built.
//!
//! Needs root, `docker.io`, `busybox-static`, `iptables`, `ethtool`, `iproute2`, and
//! `vswitchd`/`flowctl` built (./scripts/test does all of it). About two minutes.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, run, tail};

/// One ping from a container; true if answered.
fn ping(lab: &Lab, container: &str, target: &str) -> bool {
    lab.docker_try(&["exec", container, "ping", "-c", "1", "-W", "1", target])
        .status
        .success()
}

/// One ping from the host.
fn host_ping(target: &str) -> bool {
    Command::new("ping")
        .args(["-c", "1", "-W", "1", target])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Waits until `ok` holds; returns how long it took. Fails after `limit`.
fn regained(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "{what}: not regained within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

fn endpoint_id(lab: &Lab, container: &str, network: &str) -> String {
    lab.docker(&[
        "inspect",
        container,
        "--format",
        &format!("{{{{(index .NetworkSettings.Networks \"{network}\").EndpointID}}}}"),
    ])
}

/// The switch's ports (names) on the lab's bridge.
fn switch_ports(lab: &Lab) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&lab.flowctl(&[
        "--format",
        "json",
        "show",
        &format!("br-{}", lab.prefix),
    ]))
    .expect("flowctl json");
    let ports = v["bridges"][0]["ports"]
        .as_array()
        .or_else(|| v["ports"].as_array())
        .cloned()
        .unwrap_or_default();
    let mut names: Vec<String> = ports
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    names.sort();
    names
}

fn state_endpoints(lab: &Lab) -> usize {
    let Ok(bytes) = std::fs::read(lab.state_file()) else {
        return 0; // nothing saved yet
    };
    let s: serde_json::Value = serde_json::from_slice(&bytes).expect("state json");
    s["endpoints"].as_object().map_or(0, |m| m.len())
}

/// Everything the plugin owns: host interfaces, switch ports, iptables rules, endpoints.
fn footprint(lab: &Lab) -> (Vec<String>, Vec<String>, usize, usize) {
    (
        lab.host_links(),
        switch_ports(lab),
        lab.iptables_rules().len(),
        state_endpoints(lab),
    )
}

/// A namespace outside the host standing for "the world": reachable from the host over a
/// veth, with no route back to the containers' subnets (so only masqueraded traffic gets
/// answers).
struct World {
    ns: String,
    host_if: String,
}

impl World {
    fn new(lab: &Lab) -> World {
        // Not named with the plugin's prefix: the test counts those.
        let ns = format!("w{}world", lab.prefix);
        let host_if = format!("w{}h", lab.prefix);
        let inner = format!("w{}i", lab.prefix);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        run("ip", &["netns", "add", &ns]);
        run(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &inner,
            ],
        );
        run("ip", &["link", "set", &inner, "netns", &ns]);
        run("ip", &["addr", "add", "198.18.99.1/30", "dev", &host_if]);
        run("ip", &["link", "set", &host_if, "up"]);
        run(
            "ip",
            &["-n", &ns, "addr", "add", "198.18.99.2/30", "dev", &inner],
        );
        run("ip", &["-n", &ns, "link", "set", &inner, "up"]);
        World { ns, host_if }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

#[test]
fn docker_networks_on_the_switch() {
    let started = Instant::now();
    let mut lab = Lab::start();
    let d = lab.driver.clone();
    let image = lab.image.clone();
    eprintln!("lab up in {:?}", started.elapsed());
    let baseline = footprint(&lab);

    // Networks: plain with an MTU, a chosen VLAN, internal.
    lab.docker(&[
        "network",
        "create",
        "-d",
        &d,
        "--subnet",
        "172.28.1.0/24",
        "--gateway",
        "172.28.1.1",
        "-o",
        "vswitch.mtu=1400",
        "n1",
    ]);
    lab.docker(&[
        "network",
        "create",
        "-d",
        &d,
        "--subnet",
        "172.28.2.0/24",
        "-o",
        "vswitch.vlan=42",
        "-o",
        "vswitch.ingress_kbps=50000",
        "-o",
        "vswitch.priority=3",
        "n2",
    ]);
    lab.docker(&[
        "network",
        "create",
        "-d",
        &d,
        "--internal",
        "--subnet",
        "172.28.3.0/24",
        "n3",
    ]);
    // A bad option names the option and what is allowed.
    let bad = lab.docker_try(&[
        "network",
        "create",
        "-d",
        &d,
        "-o",
        "vswitch.vlan=5000",
        "nb",
    ]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("vswitch.vlan") && err.contains("1..=4094"),
        "{err}"
    );

    // docker network inspect shows subnet, gateway and options.
    let inspect: serde_json::Value =
        serde_json::from_str(&lab.docker(&["network", "inspect", "n1"])).unwrap();
    assert_eq!(inspect[0]["Driver"], d.as_str());
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Subnet"], "172.28.1.0/24");
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Gateway"], "172.28.1.1");
    assert_eq!(inspect[0]["Options"]["vswitch.mtu"], "1400");

    // Containers.
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "n1",
        &image,
        "sleep",
        "3600",
    ]);
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "c2",
        "--network",
        "n1",
        "--network-alias",
        "web",
        "--ip",
        "172.28.1.20",
        "--mac-address",
        "02:00:00:28:01:20",
        &image,
        "sleep",
        "3600",
    ]);
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "c3",
        "--network",
        "n2",
        "--cap-add",
        "NET_ADMIN",
        &image,
        "sleep",
        "3600",
    ]);
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "c4",
        "--network",
        "n3",
        &image,
        "sleep",
        "3600",
    ]);
    let c2_if = lab.docker(&["exec", "c2", "ip", "-o", "link", "show", "eth0"]);
    assert!(c2_if.contains("02:00:00:28:01:20"), "{c2_if}");
    assert!(c2_if.contains("mtu 1400"), "{c2_if}");
    let c2_ip = lab.docker(&["exec", "c2", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(c2_ip.contains("172.28.1.20/24"), "{c2_ip}");

    // Two containers on one network: by address, by name, by alias.
    assert!(ping(&lab, "c1", "172.28.1.20"), "c1 -> c2 by address");
    assert!(ping(&lab, "c1", "c2"), "c1 -> c2 by name (Docker's DNS)");
    assert!(ping(&lab, "c1", "web"), "c1 -> c2 by its alias");

    // flowctl show names the ports after the endpoints.
    let ports = switch_ports(&lab);
    for (c, n) in [("c1", "n1"), ("c2", "n1"), ("c3", "n2"), ("c4", "n3")] {
        let eid = endpoint_id(&lab, c, n);
        let want = format!("{}{}p", lab.prefix, &eid[..15 - lab.prefix.len() - 1]);
        assert!(ports.contains(&want), "{want} not among {ports:?}");
    }
    // n2's rate limit and priority are on its endpoint's port.
    let bridge = format!("br-{}", lab.prefix);
    let show = lab.flowctl(&["show", &bridge]);
    assert!(show.contains("ingress_policing_rate=50000"), "{show}");
    assert!(show.contains("tag=42"), "{show}");
    let flows = lab.flowctl(&["dump-flows", &bridge]);
    assert!(flows.contains("set_queue:3"), "{flows}");

    // IPv6: a dual-stack network, the gateway and another container over IPv6.
    lab.docker(&[
        "network",
        "create",
        "-d",
        &d,
        "--ipv6",
        "--subnet",
        "172.28.4.0/24",
        "--subnet",
        "fd00:28:4::/64",
        "n4",
    ]);
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "c6",
        "--network",
        "n4",
        &image,
        "sleep",
        "3600",
    ]);
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "c7",
        "--network",
        "n4",
        &image,
        "sleep",
        "3600",
    ]);
    let c7_v6 = lab.docker(&[
        "inspect",
        "c7",
        "--format",
        "{{.NetworkSettings.Networks.n4.GlobalIPv6Address}}",
    ]);
    assert!(c7_v6.starts_with("fd00:28:4::"), "{c7_v6}");
    assert!(ping(&lab, "c6", &c7_v6), "c6 -> c7 over IPv6");
    assert!(ping(&lab, "c6", "fd00:28:4::1"), "c6 -> its IPv6 gateway");
    lab.docker(&["rm", "-f", "c6", "c7"]);
    lab.docker(&["network", "rm", "n4"]);

    // The host reaches a container through the gateway.
    assert!(host_ping("172.28.1.20"), "host -> c2 via the gateway");

    // Isolation: not routed through the host, and not at layer 2 either (c3 takes an
    // address of n1's subnet: its frames stay in VLAN 42).
    assert!(
        !ping(&lab, "c3", "172.28.1.20"),
        "n2 reached n1 through the host: {}\n{}",
        run("iptables", &["-v", "-S", "FORWARD"]),
        lab.docker(&["exec", "c3", "ip", "route"])
    );
    lab.docker(&[
        "exec",
        "c3",
        "ip",
        "addr",
        "add",
        "172.28.1.99/24",
        "dev",
        "eth0",
    ]);
    assert!(!ping(&lab, "c3", "172.28.1.20"), "n2 reached n1 at layer 2");
    assert!(
        !ping(&lab, "c1", "c3"),
        "a name of another network resolved and answered"
    );

    // The way out: masqueraded by the host kernel (for now); internal has none.
    let _world = World::new(&lab);
    assert!(ping(&lab, "c1", "198.18.99.2"), "c1 cannot reach the world");
    assert!(
        !ping(&lab, "c4", "198.18.99.2"),
        "internal network reached the world"
    );
    assert!(
        !ping(&lab, "c4", "172.28.3.1"),
        "internal network has a gateway"
    );
    assert!(
        !ping(&lab, "c4", "172.28.1.1"),
        "internal network reached the host"
    );
    let route = lab.docker(&["exec", "c4", "ip", "route"]);
    assert!(!route.contains("default"), "{route}");

    // Port publishing needs an uplink (tests/publish.rs serves it): refused on n1, naming
    // the options, and nothing is recorded.
    let o = lab.docker_try(&[
        "run",
        "-d",
        "--name",
        "c5",
        "--network",
        "n1",
        "-p",
        "18080:80",
        &image,
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success()
            && err.contains("vswitch.uplink")
            && err.contains("vswitch.external_ip"),
        "{err}"
    );
    let state = std::fs::read_to_string(lab.state_file()).unwrap();
    assert!(!state.contains("\"host_port\": 18080"), "{state}");
    lab.docker(&["rm", "-f", "c5"]);

    // A second and third interface: connect and disconnect.
    lab.docker(&["network", "connect", "--alias", "db", "n2", "c1"]);
    assert!(ping(&lab, "c3", "db"), "c3 -> c1 on n2 by alias");
    lab.docker(&["network", "disconnect", "n2", "c1"]);
    assert!(!ping(&lab, "c3", "db"));

    // Restarts, each while containers run.
    // 1. The plugin dies: traffic does not notice; once back, it knows its networks.
    //    What a crash between two steps leaves (a veth pair and its switch port, named
    //    with the prefix but in no state) is removed when it starts again.
    lab.kill_plugin();
    assert!(ping(&lab, "c1", "c2"), "traffic lost with the plugin");
    let digits = &"0123456789ab"[..15 - lab.prefix.len() - 1];
    let (stray, stray_in) = (
        format!("{}{digits}p", lab.prefix),
        format!("{}{digits}c", lab.prefix),
    );
    run(
        "ip",
        &[
            "link", "add", &stray, "type", "veth", "peer", "name", &stray_in,
        ],
    );
    lab.flowctl(&["add-port", &bridge, &stray, "type=afpacket"]);
    lab.start_plugin();
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.host_links().contains(&stray) || switch_ports(&lab).contains(&stray) {
        assert!(
            Instant::now() < deadline,
            "the leftover {stray} was not removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    lab.docker(&["network", "connect", "n2", "c1"]);
    assert!(ping(&lab, "c3", "c1"));
    lab.docker(&["network", "disconnect", "n2", "c1"]);

    // 2. The switch dies: a request now fails fast and says why; once back, containers
    //    and the host's gateway reach each other again within 2 s.
    lab.kill_vswitchd();
    let t = Instant::now();
    let down = lab.docker_try(&[
        "network",
        "create",
        "-d",
        &d,
        "--subnet",
        "172.28.9.0/24",
        "n9",
    ]);
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        !down.status.success() && err.contains("not reachable"),
        "{err}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    lab.start_vswitchd();
    let c2c = regained(
        "c1 -> c2 after a switch restart",
        Duration::from_secs(2),
        || ping(&lab, "c1", "172.28.1.20"),
    );
    let h2c = regained(
        "host -> c2 after a switch restart",
        Duration::from_secs(2),
        || host_ping("172.28.1.20"),
    );
    // The gateway keeps its MAC address across the re-creation: c1's neighbour entry
    // stays right and its way out works at once.
    let c2g = regained(
        "c1 -> the world after a switch restart",
        Duration::from_secs(2),
        || ping(&lab, "c1", "198.18.99.2"),
    );
    eprintln!("after kill -9 of vswitchd: containers {c2c:?}, host {h2c:?}, way out {c2g:?}");

    // 3. dockerd restarts (live restore): containers keep their network and names.
    lab.stop_dockerd();
    assert!(host_ping("172.28.1.20"), "host -> c2 while dockerd is down");
    lab.start_dockerd();
    let dk = regained(
        "c1 -> c2 by name after dockerd",
        Duration::from_secs(2),
        || ping(&lab, "c1", "c2"),
    );
    eprintln!("after a dockerd restart: {dk:?}");

    // 100 endpoint create/delete cycles (connect + disconnect) and 10 network cycles
    // leave nothing behind.
    let before = footprint(&lab);
    let t = Instant::now();
    for _ in 0..100 {
        lab.docker(&["network", "connect", "n2", "c2"]);
        lab.docker(&["network", "disconnect", "n2", "c2"]);
    }
    for i in 0..10 {
        let name = format!("cyc{i}");
        lab.docker(&[
            "network",
            "create",
            "-d",
            &d,
            "--subnet",
            "172.28.10.0/24",
            &name,
        ]);
        lab.docker(&["run", "--rm", "--network", &name, &image, "true"]);
        lab.docker(&["network", "rm", &name]);
    }
    eprintln!("100 endpoint and 10 network cycles in {:?}", t.elapsed());
    assert_eq!(footprint(&lab), before, "something leaked in the cycles");

    // Everything removed: nothing of the plugin remains.
    for c in ["c1", "c2", "c3", "c4"] {
        lab.docker(&["rm", "-f", c]);
    }
    for n in ["n1", "n2", "n3"] {
        lab.docker(&["network", "rm", n]);
    }
    let after = footprint(&lab);
    assert_eq!(after.0, baseline.0, "host interfaces left");
    assert_eq!(after.1, baseline.1, "switch ports left");
    assert_eq!(after.2, 0, "iptables rules left");
    assert_eq!(after.3, 0, "endpoints left in the state");
    eprintln!(
        "whole test {:?}; plugin log tail:\n{}",
        started.elapsed(),
        tail(&lab.plugin_log(), 5)
    );
}
