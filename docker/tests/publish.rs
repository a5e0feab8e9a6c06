//! Port publishing with a real Docker Engine: `docker run -p 8080:80` on a network with an
//! uplink is served by DNAT in the switch (`docker/src/publish.rs`), reached from a client
//! in another network namespace on the uplink at the network's external address. One
//! dockerd, switch and plugin for the binary (see `common`).
//!
//! Needs root, `docker.io`, `busybox-static`, `python3`, `iptables`, `ethtool`,
//! `iproute2`, and `vswitchd`/`flowctl` built (./scripts/test does all of it).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, run};

/// A client namespace on the far side of the uplink: a veth whose host end becomes the
/// switch's uplink port and whose other end, in the namespace, has `client/24`.
struct Client {
    ns: String,
    uplink: String,
}

impl Client {
    fn new(lab: &Lab, client: &str) -> Client {
        // Not named with the plugin's prefix: the plugin must not take it for its own.
        let ns = format!("c{}pub", lab.prefix);
        let uplink = format!("u{}up", lab.prefix);
        let inner = format!("u{}cl", lab.prefix);
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &uplink]).output();
        run("ip", &["netns", "add", &ns]);
        run(
            "ip",
            &[
                "link", "add", &uplink, "type", "veth", "peer", "name", &inner,
            ],
        );
        run("ip", &["link", "set", &inner, "netns", &ns]);
        run(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{uplink}.disable_ipv6=1")],
        );
        run("ip", &["link", "set", &uplink, "up"]);
        let addr = format!("{client}/24");
        run("ip", &["-n", &ns, "addr", "add", &addr, "dev", &inner]);
        run("ip", &["-n", &ns, "link", "set", &inner, "up"]);
        run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
        // A userspace switch forwards frames as it reads them: no partial checksums.
        run(
            "ip",
            &["netns", "exec", &ns, "ethtool", "-K", &inner, "tx", "off"],
        );
        Client { ns, uplink }
    }

    /// Connects to `addr:port`, sends an HTTP GET and returns the address and port the
    /// connection was with and what came back; `Err` with the error when none was made.
    fn get(&self, addr: &str, port: u16, timeout_s: f32) -> Result<(String, String), String> {
        let script = format!(
            "import socket, sys\n\
             try:\n\
             \x20   c = socket.create_connection(('{addr}', {port}), timeout={timeout_s})\n\
             \x20   peer = c.getpeername()\n\
             \x20   c.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n\
             \x20   data = b''\n\
             \x20   while True:\n\
             \x20       b = c.recv(4096)\n\
             \x20       if not b: break\n\
             \x20       data += b\n\
             \x20   print('%s:%d' % peer)\n\
             \x20   print(data.decode(errors='replace'))\n\
             except OSError as e:\n\
             \x20   print(e)\n\
             \x20   sys.exit(1)\n"
        );
        let o = Command::new("ip")
            .args(["netns", "exec", &self.ns, "python3", "-c", &script])
            .output()
            .expect("ip netns exec python3");
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        if !o.status.success() {
            return Err(format!("{out}{}", String::from_utf8_lossy(&o.stderr)));
        }
        let (peer, body) = out.split_once('\n').unwrap_or((&out, ""));
        Ok((peer.trim().to_string(), body.to_string()))
    }

    /// Like [`Client::get`], retrying for up to `limit` (a container's server starting).
    fn get_within(&self, addr: &str, port: u16, limit: Duration) -> (String, String) {
        let t = Instant::now();
        loop {
            match self.get(addr, port, 1.0) {
                Ok(r) => return r,
                Err(e) => assert!(
                    t.elapsed() < limit,
                    "{addr}:{port} not reachable from the uplink within {limit:?}: {e}"
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.uplink])
            .output();
    }
}

fn httpd(lab: &Lab, name: &str, network: &str, publish: &str) {
    let script = format!(
        "mkdir -p /www && echo served-by-{name} > /www/index.html && exec httpd -f -p 80 -h /www"
    );
    lab.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        network,
        "-p",
        publish,
        &lab.image,
        "sh",
        "-c",
        &script,
    ]);
}

fn flows(lab: &Lab, bridge: &str) -> String {
    lab.flowctl(&["dump-flows", bridge])
}

fn ip_of(lab: &Lab, container: &str) -> String {
    lab.docker(&[
        "inspect",
        container,
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    ])
}

#[test]
fn published_ports_are_served_by_the_switch_on_the_uplink() {
    let mut lab = Lab::start();
    let bridge = format!("br-{}", lab.prefix);
    let n = std::process::id() % 200 + 20;
    let (external, client) = (format!("198.19.{n}.1"), format!("198.19.{n}.2"));
    let c = Client::new(&lab, &client);
    let d = lab.driver.clone();
    lab.docker(&[
        "network",
        "create",
        "-d",
        &d,
        "--subnet",
        &format!("172.29.{n}.0/24"),
        "-o",
        &format!("vswitch.uplink={}", c.uplink),
        "-o",
        &format!("vswitch.external_ip={external}"),
        "pub",
    ]);
    let ports = lab.flowctl(&["show", &bridge]);
    assert!(
        ports.contains(&c.uplink),
        "the uplink is a switch port: {ports}"
    );

    // Two containers published at once, each on its own port of the external address.
    httpd(&lab, "p1", "pub", "8080:80");
    httpd(&lab, "p2", "pub", "8081:80");
    let (ip1, ip2) = (ip_of(&lab, "p1"), ip_of(&lab, "p2"));
    let (peer, body) = c.get_within(&external, 8080, Duration::from_secs(15));
    assert_eq!(
        peer,
        format!("{external}:8080"),
        "the reply comes from {external}:8080"
    );
    assert!(body.contains("served-by-p1"), "{body}");
    let (peer, body) = c.get_within(&external, 8081, Duration::from_secs(15));
    assert_eq!(peer, format!("{external}:8081"));
    assert!(body.contains("served-by-p2"), "{body}");
    let dump = flows(&lab, &bridge);
    assert!(
        dump.contains(&format!("nat(dst={ip1}:80)"))
            && dump.contains(&format!("nat(dst={ip2}:80)")),
        "{dump}"
    );
    // The switch's own tracker did it (the host's kernel never saw the connection).
    let ct = lab.flowctl(&["dump-conntrack", &bridge]);
    assert!(
        ct.contains(&format!("orig=(src={client},dst={external},"))
            && ct.contains(&format!("reply=(src={ip1},dst={client},sport=80,")),
        "{ct}"
    );

    // A reconciliation pass (every 5 s) finds the flows as they should be: no write.
    let writes = || lab.plugin_log().matches("publishing flows written").count();
    let before = writes();
    std::thread::sleep(Duration::from_millis(5500));
    assert_eq!(writes(), before, "{}", common::tail(&lab.plugin_log(), 20));

    // The plugin restarts to find a flow gone: it puts it back.
    lab.kill_plugin();
    lab.flowctl(&["del-flows", &bridge, "tcp,tp_dst=8081"]);
    assert!(c.get(&external, 8081, 1.0).is_err(), "no flow, no service");
    lab.start_plugin();
    let (_, body) = c.get_within(&external, 8081, Duration::from_secs(10));
    assert!(body.contains("served-by-p2"), "{body}");

    // A container removed takes its flows along; the other keeps working.
    lab.docker(&["rm", "-f", "p1"]);
    let dump = flows(&lab, &bridge);
    assert!(
        !dump.contains("tp_dst=8080") && !dump.contains(&format!("nw_src={ip1}")),
        "{dump}"
    );
    assert!(
        c.get(&external, 8080, 1.0).is_err(),
        "8080 is no longer published"
    );
    let (_, body) = c.get_within(&external, 8081, Duration::from_secs(5));
    assert!(body.contains("served-by-p2"), "{body}");

    // Without an uplink, -p is refused naming the options.
    lab.docker(&["network", "create", "-d", &d, "plain"]);
    let o = lab.docker_try(&[
        "run",
        "-d",
        "--name",
        "p3",
        "--network",
        "plain",
        "-p",
        "9090:80",
        &lab.image,
        "sleep",
        "60",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("vswitch.uplink"),
        "{err}"
    );
    lab.docker(&["rm", "-f", "p3"]);

    // The network gone: no flow of the plugin's publishing is left, nor the uplink port.
    lab.docker(&["rm", "-f", "p2"]);
    lab.docker(&["network", "rm", "pub", "plain"]);
    let dump = flows(&lab, &bridge);
    assert!(
        !dump.contains(&external) && !dump.contains("ct(") && !dump.contains("table=21"),
        "{dump}"
    );
    let ports = lab.flowctl(&["show", &bridge]);
    assert!(!ports.contains(&c.uplink), "{ports}");
}
