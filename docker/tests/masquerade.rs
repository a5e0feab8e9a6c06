//! The way out of a network with an uplink, with a real Docker Engine: containers reach a
//! "world" namespace behind a router namespace on the uplink with their source translated
//! to the network's external address by the switch's own NAT (`docker/src/publish.rs`),
//! the router's MAC address resolved by the plugin over the switch's packet-out/packet-in
//! (`docker/src/neigh.rs`); hairpin to a published port from another container and from
//! the host; an uplink port left behind by a crash removed on the next start. One
//! dockerd, switch and plugin for the binary (see `common`).
//!
//! Needs root, `docker.io`, `busybox-static`, `python3`, `tcpdump`, `iptables`, `ethtool`,
//! `iproute2`, and `vswitchd`/`flowctl` built (./scripts/test does all of it).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, run};

/// The outside: the uplink veth's far end in a router namespace (`.254` and `.253` of
/// the uplink's /24), and a world namespace behind the router (`203.0.113.2`, its default
/// route through the router).
struct Outside {
    router: String,
    world: String,
    uplink: String,
    router_if: String,
    world_if: String,
}

const WORLD: &str = "203.0.113.2";

fn ns_run(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend(args);
    run("ip", &all)
}

impl Outside {
    fn new(lab: &Lab, n: u32) -> Outside {
        // Not named with the plugin's prefix: the plugin must not take them for its own.
        let o = Outside {
            router: format!("r{}mq", lab.prefix),
            world: format!("w{}mq", lab.prefix),
            uplink: format!("u{}mq", lab.prefix),
            router_if: format!("u{}rt", lab.prefix),
            world_if: format!("w{}wd", lab.prefix),
        };
        o.remove();
        let (r, w) = (o.router.as_str(), o.world.as_str());
        run("ip", &["netns", "add", r]);
        run("ip", &["netns", "add", w]);
        run(
            "ip",
            &[
                "link",
                "add",
                &o.uplink,
                "type",
                "veth",
                "peer",
                "name",
                &o.router_if,
            ],
        );
        run("ip", &["link", "set", &o.router_if, "netns", r]);
        run(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{}.disable_ipv6=1", o.uplink)],
        );
        run("ip", &["link", "set", &o.uplink, "up"]);
        run(
            "ip",
            &[
                "-n",
                r,
                "link",
                "add",
                "rw0",
                "type",
                "veth",
                "peer",
                "name",
                &o.world_if,
            ],
        );
        run("ip", &["-n", r, "link", "set", &o.world_if, "netns", w]);
        for a in [format!("198.19.{n}.254/24"), format!("198.19.{n}.253/24")] {
            run("ip", &["-n", r, "addr", "add", &a, "dev", &o.router_if]);
        }
        run(
            "ip",
            &["-n", r, "addr", "add", "203.0.113.1/24", "dev", "rw0"],
        );
        run(
            "ip",
            &["-n", w, "addr", "add", "203.0.113.2/24", "dev", &o.world_if],
        );
        for (ns, dev) in [(r, o.router_if.as_str()), (r, "rw0"), (w, &o.world_if)] {
            run("ip", &["-n", ns, "link", "set", dev, "up"]);
            // A userspace switch forwards frames as it reads them: no partial checksums.
            ns_run(ns, &["ethtool", "-K", dev, "tx", "off"]);
        }
        run("ip", &["-n", r, "link", "set", "lo", "up"]);
        run("ip", &["-n", w, "link", "set", "lo", "up"]);
        run(
            "ip",
            &["-n", w, "route", "add", "default", "via", "203.0.113.1"],
        );
        ns_run(r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        o
    }

    fn remove(&self) {
        for ns in [&self.router, &self.world] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.uplink])
            .output();
    }

    /// A TCP server in the world on `port`: every connection is told the address and port
    /// it came from (`peer=A:P`) and held open until the client closes it. Stopped when
    /// dropped (a process outlives its namespace).
    fn server(&self, port: u16) -> Server {
        let script = format!(
            "import socket, threading\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind(('0.0.0.0', {port})); s.listen(256)\n\
             def serve(c, a):\n\
             \x20   c.sendall(('peer=%s:%d\\n' % a).encode())\n\
             \x20   while c.recv(100): pass\n\
             \x20   c.close()\n\
             while True:\n\
             \x20   c, a = s.accept()\n\
             \x20   threading.Thread(target=serve, args=(c, a), daemon=True).start()\n"
        );
        let server = Command::new("ip")
            .args(["netns", "exec", &self.world, "python3", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let child = Server(server);
        let t = Instant::now();
        while !ns_run(&self.world, &["ss", "-tln"]).contains(&format!(":{port}")) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "world server listens"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// The world's established connections to its `port`: the peers' addresses.
    fn peers(&self, port: u16) -> Vec<String> {
        ns_run(&self.world, &["ss", "-Htn", "state", "established"])
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 4 && f[2].ends_with(&format!(":{port}"))).then(|| f[3].to_string())
            })
            .collect()
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A process of the test, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// tcpdump in the world namespace, until dropped: the IPv4 sources it saw.
struct Capture {
    child: Child,
    file: std::path::PathBuf,
}

impl Capture {
    fn start(lab: &Lab, o: &Outside) -> Capture {
        common::need("tcpdump", "tcpdump");
        let file = lab.dir.join("world.pcap");
        let child = Command::new("ip")
            .args(["netns", "exec", &o.world, "tcpdump", "-U", "-n", "-i"])
            .arg(&o.world_if)
            .arg("-w")
            .arg(&file)
            .arg("ip")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        Capture { child, file }
    }

    /// Stops the capture; returns the source addresses of the packets that came in.
    fn sources(mut self) -> BTreeSet<String> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let text = run(
            "tcpdump",
            &["-n", "-r", self.file.to_str().unwrap(), "-q", "ip"],
        );
        text.lines()
            .filter_map(|l| {
                let ip = l.split(" IP ").nth(1)?.split_whitespace().next()?;
                let parts: Vec<&str> = ip.split('.').collect();
                Some(parts[..4.min(parts.len())].join("."))
            })
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn exec(lab: &Lab, container: &str, script: &str) -> std::process::Output {
    lab.docker_try(&["exec", container, "sh", "-c", script])
}

fn create_network(lab: &Lab, name: &str, n: u32, o: &Outside, extra: &[&str]) -> String {
    let d = lab.driver.clone();
    let mut args = vec![
        "network".to_string(),
        "create".into(),
        "-d".into(),
        d,
        "--subnet".into(),
        format!("172.28.{n}.0/24"),
        "-o".into(),
        format!("vswitch.uplink={}", o.uplink),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(name.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.docker(&args)
}

#[test]
fn containers_go_out_masqueraded_by_the_switch() {
    let mut lab = Lab::start();
    let bridge = format!("br-{}", lab.prefix);
    let n = std::process::id() % 200 + 20;
    let ext = format!("198.19.{n}.1");
    let o = Outside::new(&lab, n);
    let _server = o.server(9000);

    // What cannot work is refused, naming the option.
    let d = lab.driver.clone();
    let ext_opt = format!("vswitch.external_ip={ext}/24");
    let up_opt = format!("vswitch.uplink={}", o.uplink);
    for (bad, says) in [
        (
            "vswitch.uplink_gateway=10.1.2.3",
            "not a host address of the uplink's segment",
        ),
        (
            &format!("vswitch.uplink_gateway={ext}") as &str,
            "external_ip itself",
        ),
    ] {
        let out = lab.docker_try(&[
            "network", "create", "-d", &d, "-o", &up_opt, "-o", &ext_opt, "-o", bad, "bad",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{bad}: {err}");
    }
    let out = lab.docker_try(&[
        "network",
        "create",
        "-d",
        &d,
        "--subnet",
        &format!("198.19.{n}.0/25"),
        "-o",
        &up_opt,
        "-o",
        &ext_opt,
        "bad",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("own subnet"), "{err}");

    let gw_opt = format!("vswitch.uplink_gateway=198.19.{n}.254");
    create_network(&lab, "mq", n, &o, &["-o", &ext_opt, "-o", &gw_opt]);
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "m1",
        "--network",
        "mq",
        &lab.image,
        "sleep",
        "600",
    ]);

    // Many connections at once from one container: the world sees each from the
    // external address, on a port of its own.
    let capture = Capture::start(&lab, &o);
    let conns = 40;
    let t = Instant::now();
    let out = exec(
        &lab,
        "m1",
        &format!(
            "for i in $(seq {conns}); do (sleep 8 | nc {WORLD} 9000 > /tmp/o$i) & done; \
             sleep 1; n=0; while [ $(cat /tmp/o* 2>/dev/null | grep -c peer=) -lt {conns} ] \
             && [ $n -lt 100 ]; do sleep 0.2; n=$((n+1)); done"
        ),
    );
    assert!(out.status.success(), "{out:?}");
    let peers = o.peers(9000);
    assert_eq!(peers.len(), conns, "{peers:?}");
    let ports: BTreeSet<&str> = peers
        .iter()
        .map(|p| {
            let (a, port) = p.rsplit_once(':').unwrap();
            assert_eq!(
                a, ext,
                "the world sees only the external address: {peers:?}"
            );
            port
        })
        .collect();
    assert_eq!(ports.len(), conns, "one source port each: {peers:?}");
    eprintln!("{conns} connections through the NAT in {:?}", t.elapsed());
    // The container learned its own translated address from the world.
    let told = exec(&lab, "m1", "cat /tmp/o*");
    let told = String::from_utf8_lossy(&told.stdout);
    assert_eq!(
        told.matches(&format!("peer={ext}:")).count(),
        conns,
        "{told}"
    );
    // The switch's tracker did it, in the network's zone.
    let ct = lab.flowctl(&["dump-conntrack", &bridge]);
    let m1 = lab.docker(&[
        "inspect",
        "m1",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    ]);
    assert!(
        ct.contains(&format!("orig=(src={m1},dst={WORLD},"))
            && ct.contains(&format!("reply=(src={WORLD},dst={ext},sport=9000,")),
        "{ct}"
    );
    // ICMP too, and an address on the uplink's segment is resolved directly.
    let out = exec(&lab, "m1", &format!("ping -c 2 -W 2 {WORLD}"));
    assert!(out.status.success(), "ping the world: {out:?}");
    let near = format!("198.19.{n}.253");
    let t = Instant::now();
    while !exec(&lab, "m1", &format!("ping -c 1 -W 1 {near}"))
        .status
        .success()
    {
        assert!(t.elapsed() < Duration::from_secs(10), "ping {near}");
    }
    let flows = lab.flowctl(&["dump-flows", &bridge]);
    assert!(
        flows.contains(&format!("nw_dst={near} actions=set_field:")),
        "{flows}"
    );
    let sources = capture.sources();
    assert!(
        sources.iter().all(|s| s == &ext || s == WORLD) && sources.contains(&ext),
        "the world saw {sources:?}"
    );

    // The router changes its MAC address: the plugin follows within its refresh.
    ns_run(
        &o.router,
        &[
            "ip",
            "link",
            "set",
            &o.router_if,
            "address",
            "02:00:00:5e:00:99",
        ],
    );
    let t = Instant::now();
    loop {
        let out = exec(&lab, "m1", &format!("echo | timeout 2 nc {WORLD} 9000"));
        if String::from_utf8_lossy(&out.stdout).contains("peer=") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the new router MAC is used"
        );
    }
    eprintln!(
        "the router's new MAC address in use after {:?}",
        t.elapsed()
    );

    // Hairpin: a published port reached at the external address from another container
    // of the network, from the host, and from the world behind the router.
    let script =
        "mkdir -p /www && echo served-by-p1 > /www/index.html && exec httpd -f -p 80 -h /www";
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "mq",
        "-p",
        "8080:80",
        &lab.image,
        "sh",
        "-c",
        script,
    ]);
    let url = format!("http://{ext}:8080/");
    // busybox's static wget crashes resolving; nc speaks the HTTP.
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 3 nc {ext} 8080");
    let t = Instant::now();
    loop {
        let out = exec(&lab, "m1", &get);
        if String::from_utf8_lossy(&out.stdout).contains("served-by-p1") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "hairpin from m1: {out:?}\n{}\n{}",
            lab.flowctl(&["dump-flows", &bridge]),
            lab.flowctl(&["dump-conntrack", &bridge])
        );
    }
    let out = exec(&lab, "p1", &get);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("served-by-p1"),
        "p1 reaches itself at {url}: {out:?}\n{}\n{}",
        lab.flowctl(&["dump-flows", &bridge]),
        lab.flowctl(&["dump-conntrack", &bridge])
    );
    let host = run(
        "python3",
        &[
            "-c",
            &format!(
                "import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).read().decode())"
            ),
        ],
    );
    assert!(host.contains("served-by-p1"), "{host}");
    let world = ns_run(
        &o.world,
        &[
            "python3",
            "-c",
            &format!(
                "import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).read().decode())"
            ),
        ],
    );
    assert!(world.contains("served-by-p1"), "{world}");
    let ct = lab.flowctl(&["dump-conntrack", &bridge]);
    let p1 = lab.docker(&[
        "inspect",
        "p1",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    ]);
    assert!(
        ct.contains(&format!("dst={p1},sport="))
            || ct.contains(&format!("orig=(src={m1},dst={p1},")),
        "{ct}"
    );

    // An --internal network has no way out.
    lab.docker(&[
        "network",
        "create",
        "-d",
        &d,
        "--internal",
        "--subnet",
        &format!("172.27.{n}.0/24"),
        "int",
    ]);
    lab.docker(&[
        "run",
        "-d",
        "--name",
        "i1",
        "--network",
        "int",
        &lab.image,
        "sleep",
        "600",
    ]);
    let out = exec(&lab, "i1", &format!("echo | timeout 2 nc {WORLD} 9000"));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("peer="),
        "{out:?}"
    );
    lab.docker(&["rm", "-f", "i1"]);
    lab.docker(&["network", "rm", "int"]);

    // The plugin is killed and the network removed while it is dead: the next start
    // removes the uplink port (dockerd no longer has the network).
    lab.docker(&["rm", "-f", "m1", "p1"]);
    lab.kill_plugin();
    let _ = lab.docker_try(&["network", "rm", "mq"]);
    assert!(lab.flowctl(&["show", &bridge]).contains(&o.uplink));
    lab.start_plugin();
    let t = Instant::now();
    while lab.flowctl(&["show", &bridge]).contains(&o.uplink) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{}",
            common::tail(&lab.plugin_log(), 20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let flows = lab.flowctl(&["dump-flows", &bridge]);
    assert!(!flows.contains(&ext) && !flows.contains("ct("), "{flows}");
}
