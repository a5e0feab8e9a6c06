//! Overlay networks across three Docker hosts on this machine (see `common/hosts.rs`): a
//! three-member etcd cluster, each host a network namespace with its own switch, plugin
//! (and agent) and dockerd, VXLAN between the switches over a Linux bridge "fabric".
//!
//! One test walks through it in order, because the faults act on what the first steps
//! built: one network defined by three hosts (two of them racing), containers on each
//! host with addresses from the cluster-wide IPAM (two hosts racing), ping by address
//! across hosts and by name on a host (Docker's DNS is per host), IPv6 across hosts (the
//! neighbour responder), iperf3 TCP across hosts, tshark on the fabric (VXLAN with the
//! network's VNI, no ARP for containers' addresses crossing), time from `docker run` on
//! one host to reachable from another; then the faults: kill -9 of one host's plugin and
//! switch (the others drop its endpoints within the lease TTL and keep talking; its
//! addresses are reclaimed; restarted, it is back), a host cut off and brought back
//! (resync), one etcd member stopped (nothing changes), all stopped (traffic goes on, a
//! new container is refused naming etcd, and works once etcd is back); and at the end
//! nothing is left in etcd.
//!
//! Needs root, `docker.io`, `busybox-static`, `etcd-server`, `etcd-client`, `tshark`,
//! `iperf3`, `iptables`, `ethtool`, `iproute2`, and `vswitchd`/`flowctl` built
//! (./scripts/test does all of it).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::hosts::{Host, MultiHost, in_ns};
use common::tail;

/// The lease TTL the plugins run with (seconds).
const TTL: u64 = 3;

/// Waits until `ok` holds; returns how long it took. Fails after `limit`.
fn within(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.elapsed()
}

/// `docker run -d` of a sleeping busybox on `network`.
fn run_container(h: &Host, image: &str, name: &str, network: &str) {
    h.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        image,
        "sleep",
        "3600",
    ]);
}

/// One ping from the host side of a container's namespace (no `docker exec`: faster).
fn quick_ping(h: &Host, container: &str, target: &str) -> bool {
    h.in_container(container, &["ping", "-c", "1", "-W", "1", target])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The endpoints of host `of` in `h`'s view.
fn endpoints_of(h: &Host, of: &str) -> usize {
    h.status()["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["host"] == of)
        .count()
}

fn vni(h: &Host, network: &str) -> u64 {
    h.status()["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["network"] == network)
        .and_then(|n| n["vni"].as_u64())
        .unwrap_or_else(|| panic!("h{}: no network {network} in {}", h.i, h.status()))
}

/// Defines `ov` (10.200.0.0/16) on every host, h0 and h1 at the same time.
fn create_networks(lab: &MultiHost) -> u64 {
    let create = |h: &Host| {
        h.docker(&[
            "network",
            "create",
            "-d",
            &h.driver,
            "--ipam-driver",
            &h.driver,
            "-o",
            "vswitch.mode=overlay",
            "--subnet",
            "10.200.0.0/16",
            "ov",
        ])
    };
    std::thread::scope(|s| {
        let a = s.spawn(|| create(&lab.hosts[0]));
        let b = s.spawn(|| create(&lab.hosts[1]));
        a.join().unwrap();
        b.join().unwrap();
    });
    // A conflicting definition is refused, naming the difference.
    let h = &lab.hosts[2];
    let bad = h.docker_try(&[
        "network",
        "create",
        "-d",
        &h.driver,
        "--ipam-driver",
        &h.driver,
        "-o",
        "vswitch.mode=overlay",
        "-o",
        "vswitch.mtu=1300",
        "--subnet",
        "10.200.0.0/16",
        "ov-bad",
    ]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a second definition was accepted");
    assert!(
        err.contains("vswitch.mtu=1450 (this request: 1300)"),
        "{err}"
    );
    create(&lab.hosts[2]);
    let v: Vec<u64> = lab.hosts.iter().map(|h| vni(h, "10.200.0.0/16")).collect();
    assert!(v.iter().all(|x| *x == v[0]), "one VNI everywhere: {v:?}");
    v[0]
}

/// tshark on every link of the fabric while `traffic` runs: (VNIs seen, ARP targets seen).
fn capture(lab: &MultiHost, traffic: impl FnOnce()) -> (Vec<String>, Vec<String>) {
    use std::io::BufRead as _;
    let out = lab.dir.join("fabric.txt");
    let f = std::fs::File::create(&out).unwrap();
    let mut t = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.fabric,
            "tshark",
            "-i",
            "any",
            "-l",
            "-a",
            "duration:30",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "vxlan.vni",
            "-e",
            "arp.dst.proto_ipv4",
        ])
        .stdout(f)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Traffic once it captures (tshark takes seconds to start on a loaded machine).
    let mut err = std::io::BufReader::new(t.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("Capturing on") {
        line.clear();
    }
    std::thread::sleep(Duration::from_millis(500));
    traffic();
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &t.id().to_string()])
        .status();
    let _ = t.wait();
    let text = std::fs::read_to_string(&out).unwrap();
    let mut vnis = Vec::new();
    let mut arps = Vec::new();
    for l in text.lines() {
        let mut it = l.split('\t');
        let (v, a) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
        if !v.is_empty() {
            vnis.push(v.to_string());
        }
        if !a.is_empty() {
            arps.push(a.to_string());
        }
    }
    (vnis, arps)
}

fn flush_neighbours(h: &Host, container: &str) {
    let _ = h
        .in_container(container, &["ip", "neigh", "flush", "all"])
        .output();
}

/// iperf3 TCP from `from` (on `a`) to `to` (on `b`, address `ip`): Mbit/s.
fn iperf(a: &Host, from: &str, b: &Host, to: &str, ip: &str) -> f64 {
    let mut server = b
        .in_container(to, &["iperf3", "-s", "-1"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let o = a
        .in_container(from, &["iperf3", "-c", ip, "-t", "3", "-J"])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        o.status.success(),
        "iperf3: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap()
        / 1e6
}

#[test]
fn overlay_across_three_hosts() {
    let started = Instant::now();
    let mut lab = MultiHost::start(3, TTL);
    let image = lab.image.clone();
    eprintln!("lab up (3 etcd, 3 hosts) in {:?}", started.elapsed());

    // One network, one VNI, defined by three hosts (two racing).
    let vni = create_networks(&lab);
    eprintln!("network defined: VNI {vni}");

    // Containers; h1 and h2 allocate addresses at the same time.
    run_container(&lab.hosts[0], &image, "a1", "ov");
    run_container(&lab.hosts[0], &image, "a2", "ov");
    std::thread::scope(|s| {
        let b = s.spawn(|| run_container(&lab.hosts[1], &image, "b1", "ov"));
        let c = s.spawn(|| run_container(&lab.hosts[2], &image, "c1", "ov"));
        b.join().unwrap();
        c.join().unwrap();
    });
    let (h0, h1, h2) = (&lab.hosts[0], &lab.hosts[1], &lab.hosts[2]);
    let ips = [
        h0.ip("a1", "ov", false),
        h0.ip("a2", "ov", false),
        h1.ip("b1", "ov", false),
        h2.ip("c1", "ov", false),
    ];
    let distinct: std::collections::BTreeSet<_> = ips.iter().collect();
    assert_eq!(distinct.len(), 4, "an address handed out twice: {ips:?}");
    let (b1_ip, c1_ip, a1_ip) = (ips[2].clone(), ips[3].clone(), ips[0].clone());

    // Across hosts by address; on one host by name.
    let across = [(h0, "a1", &b1_ip), (h1, "b1", &c1_ip), (h2, "c1", &a1_ip)];
    for (h, from, to) in across {
        let t = Instant::now();
        while !quick_ping(h, from, to) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{from} -> {to} across hosts\n{}",
                lab.diagnose()
            );
        }
    }
    assert!(
        h0.ping("a1", "a2"),
        "a1 -> a2 by name (Docker's DNS on one host)"
    );
    eprintln!("{}", h0.status_try(false).unwrap());

    // On the fabric: VXLAN with the network's VNI, and no ARP for a container's address.
    for (h, c) in [(h0, "a1"), (h1, "b1"), (h2, "c1")] {
        flush_neighbours(h, c);
    }
    let (vnis, arps) = capture(&lab, || {
        assert!(quick_ping(h0, "a1", &b1_ip) && quick_ping(h1, "b1", &c1_ip));
        assert!(quick_ping(h2, "c1", &a1_ip));
    });
    assert!(!vnis.is_empty(), "no VXLAN seen on the fabric");
    assert!(
        vnis.iter().all(|v| v == &vni.to_string()),
        "VNIs seen: {vnis:?}"
    );
    assert!(
        arps.iter().all(|a| !a.starts_with("10.200.")),
        "ARP for containers crossed the underlay: {arps:?}"
    );
    eprintln!(
        "fabric: {} VXLAN frames of VNI {vni}, ARP only for {:?}",
        vnis.len(),
        arps
    );

    // iperf3 TCP across hosts.
    let mbps = iperf(h0, "a1", h1, "b1", &b1_ip);
    eprintln!("iperf3 TCP a1 (h0) -> b1 (h1): {mbps:.0} Mbit/s");
    assert!(mbps > 1.0, "{mbps} Mbit/s");

    // From `docker run` on h1 to reachable from h0.
    let t = Instant::now();
    run_container(h1, &image, "b2", "ov");
    let run_s = t.elapsed();
    let b2_ip = h1.ip("b2", "ov", false);
    let reach = within("b2 reachable from h0", Duration::from_secs(10), || {
        quick_ping(h0, "a1", &b2_ip)
    });
    eprintln!("docker run on h1 took {run_s:?}; b2 reachable from h0 {reach:?} after it returned");

    ipv6_across_hosts(&lab);
    agent_restart_without_gap(&mut lab, &a1_ip);
    faults(&mut lab, &image, &b1_ip, &a1_ip);
    cleanup_leaves_nothing(&lab);
    eprintln!("total {:?}", started.elapsed());
}

/// A dual-stack overlay network: IPv6 across hosts through the neighbour responder.
fn ipv6_across_hosts(lab: &MultiHost) {
    let image = &lab.image;
    for h in &lab.hosts[..2] {
        h.docker(&[
            "network",
            "create",
            "-d",
            &h.driver,
            "--ipam-driver",
            &h.driver,
            "-o",
            "vswitch.mode=overlay",
            "--ipv6",
            "--subnet",
            "10.201.0.0/24",
            "--subnet",
            "fd00:201::/64",
            "ov6",
        ]);
    }
    let (h0, h1) = (&lab.hosts[0], &lab.hosts[1]);
    run_container(h0, image, "a6", "ov6");
    run_container(h1, image, "b6", "ov6");
    let b6 = h1.ip("b6", "ov6", true);
    assert!(b6.starts_with("fd00:201::"), "{b6}");
    let t = Instant::now();
    while !quick_ping(h0, "a6", &b6) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "a6 -> b6 over IPv6\n{}",
            lab.diagnose()
        );
    }
    let answered = h0.status()["agent"]["nd_answered"].as_u64().unwrap();
    assert!(answered > 0, "no neighbour solicitation answered on h0");
    for (h, c) in [(h0, "a6"), (h1, "b6")] {
        h.docker(&["rm", "-f", c]);
        h.docker(&["network", "rm", "ov6"]);
    }
}

/// kill -9 of h0's plugin (and agent) while b1 pings a1: no reply is lost; the restarted
/// agent removes a stale flow of its own and touches nothing else.
fn agent_restart_without_gap(lab: &mut MultiHost, a1_ip: &str) {
    let stale = "02:42:0a:c8:ff:ff";
    let h0 = &lab.hosts[0];
    h0.flowctl(&[
        "add-flow",
        &h0.bridge,
        &format!("table=1,priority=200,cookie=0x5644080000000000,metadata=0x1000,dl_dst={stale},actions=drop"),
    ]);
    let pinger = lab.hosts[1]
        .in_container(
            "b1",
            &["ping", "-q", "-i", "0.05", "-c", "100", "-W", "1", a1_ip],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    lab.hosts[0].kill_plugin();
    std::thread::sleep(Duration::from_millis(500));
    lab.hosts[0].start_plugin();
    let h0 = &lab.hosts[0];
    within("the stale flow removed", Duration::from_secs(10), || {
        !h0.flowctl(&["dump-flows", &h0.bridge]).contains(stale)
    });
    let out = pinger.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("100 packets transmitted, 100 received")
            || text.contains("100 packets transmitted, 100 packets received"),
        "replies lost across the agent's restart:\n{text}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let programs = h0.status()["agent"]["programs"].as_u64().unwrap();
    assert_eq!(
        programs, 1,
        "the restarted agent rewrote flows that were right"
    );
    eprintln!(
        "agent restarted under a 20/s ping: no reply lost, one stale flow removed, nothing else written"
    );
}

fn faults(lab: &mut MultiHost, image: &str, b1_ip: &str, a1_ip: &str) {
    let limit = Duration::from_secs(TTL + 3);
    // kill -9 of h2's plugin and switch: h0 and h1 drop its endpoints within the TTL.
    lab.hosts[2].kill_plugin();
    lab.hosts[2].kill_vswitchd();
    let t = Instant::now();
    within("h2's endpoints gone from h0's view", limit, || {
        endpoints_of(&lab.hosts[0], "h2") == 0
    });
    within("h2's endpoints gone from h1's view", limit, || {
        endpoints_of(&lab.hosts[1], "h2") == 0
    });
    eprintln!(
        "h2 killed: its endpoints expired everywhere after {:?} (TTL {TTL} s)",
        t.elapsed()
    );
    // The view changes first; the agent's next programming pass removes the flows.
    within("h0 stops sending to h2", limit, || {
        let flows = lab.hosts[0].flowctl(&["dump-flows", &lab.hosts[0].bridge]);
        !flows.contains(&lab.hosts[2].vtep)
    });
    assert!(lab.hosts[0].ping("a1", b1_ip), "h0 and h1 keep talking");
    within("h2's addresses reclaimed", Duration::from_secs(20), || {
        lab.hosts[0].status()["agent"]["reclaimed"]
            .as_u64()
            .unwrap()
            + lab.hosts[1].status()["agent"]["reclaimed"]
                .as_u64()
                .unwrap()
            > 0
    });
    // Back: the switch restores its ports, the plugin its state, the agent its registry.
    lab.hosts[2].start_vswitchd();
    lab.hosts[2].start_plugin();
    let back = within("c1 back in h0's view", Duration::from_secs(20), || {
        endpoints_of(&lab.hosts[0], "h2") == 1
    });
    let c1_ip = lab.hosts[2].ip("c1", "ov", false);
    within("a1 -> c1 again", Duration::from_secs(10), || {
        quick_ping(&lab.hosts[0], "a1", &c1_ip)
    });
    eprintln!("h2 restarted: registered again after {back:?}");

    // h1 cut off (its links down in its namespace), then back.
    let ns1 = lab.hosts[1].ns.clone();
    for l in ["mg", "ul"] {
        in_ns(&ns1, &["ip", "link", "set", l, "down"]);
    }
    let t = Instant::now();
    within("h1's endpoints gone from h0's view", limit, || {
        endpoints_of(&lab.hosts[0], "h1") == 0
    });
    eprintln!("h1 cut off: its endpoints expired after {:?}", t.elapsed());
    assert!(
        quick_ping(&lab.hosts[0], "a1", &c1_ip),
        "h0 and h2 keep talking"
    );
    for l in ["mg", "ul"] {
        in_ns(&ns1, &["ip", "link", "set", l, "up"]);
    }
    let t = Instant::now();
    within("h1 back in h0's view", Duration::from_secs(20), || {
        endpoints_of(&lab.hosts[0], "h1") == 2
    });
    within("a1 -> b1 again", Duration::from_secs(10), || {
        quick_ping(&lab.hosts[0], "a1", b1_ip)
    });
    eprintln!(
        "h1 reconnected: resynced and reachable after {:?}",
        t.elapsed()
    );

    // One etcd member down: nothing changes, new containers work.
    lab.etcd.members[0].kill();
    assert!(lab.hosts[0].ping("a1", b1_ip));
    run_container(&lab.hosts[0], image, "a3", "ov");
    let a3_ip = lab.hosts[0].ip("a3", "ov", false);
    within("a3 reachable from h1", Duration::from_secs(10), || {
        quick_ping(&lab.hosts[1], "b1", &a3_ip)
    });

    // All down: traffic goes on; a new container is refused, naming etcd; back, it works.
    lab.etcd.members[1].kill();
    lab.etcd.members[2].kill();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        lab.hosts[1].ping("b1", a1_ip),
        "existing traffic with etcd down"
    );
    let r = lab.hosts[0].docker_try(&[
        "run",
        "-d",
        "--name",
        "a4",
        "--network",
        "ov",
        image,
        "sleep",
        "3600",
    ]);
    let err = String::from_utf8_lossy(&r.stderr).to_string();
    assert!(
        !r.status.success() && err.contains("etcd"),
        "with etcd down: {err}"
    );
    eprintln!("with etcd down, docker run says: {}", err.trim());
    let _ = lab.hosts[0].docker_try(&["rm", "-f", "a4"]);
    for m in &mut lab.etcd.members {
        m.start();
    }
    lab.etcd.wait_healthy(Duration::from_secs(30));
    let t = Instant::now();
    within("docker run works again", Duration::from_secs(30), || {
        let _ = lab.hosts[0].docker_try(&["rm", "-f", "a4"]);
        lab.hosts[0]
            .docker_try(&[
                "run",
                "-d",
                "--name",
                "a4",
                "--network",
                "ov",
                image,
                "sleep",
                "3600",
            ])
            .status
            .success()
    });
    eprintln!(
        "etcd back: a new container accepted after {:?}",
        t.elapsed()
    );
    let a4_ip = lab.hosts[0].ip("a4", "ov", false);
    within("a4 reachable from h2", Duration::from_secs(10), || {
        quick_ping(&lab.hosts[2], "c1", &a4_ip)
    });
}

/// Containers and networks removed on every host: nothing of them is left in etcd.
fn cleanup_leaves_nothing(lab: &MultiHost) {
    for h in &lab.hosts {
        let ids = h.docker(&["ps", "-aq"]);
        for id in ids.split_whitespace() {
            h.docker(&["rm", "-f", id]);
        }
        h.docker(&["network", "rm", "ov"]);
    }
    let t = Instant::now();
    loop {
        let left: Vec<String> = [
            "view/endpoints",
            "view/networks",
            "macs",
            "attach",
            "ipam/addrs",
            "ipam/pools",
            "vnis",
        ]
        .iter()
        .flat_map(|s| lab.keys(s))
        .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "left in etcd: {left:?}\nh0 plugin log:\n{}",
            tail(&lab.hosts[0].plugin_log(), 20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
