//! Several Docker hosts on this one machine, for the overlay tests: each host is a network
//! namespace with its own `vswitchd`, plugin (with its agent) and `dockerd`; a "fabric"
//! namespace holds a Linux bridge joining every host's underlay and management links and
//! the etcd members, each in a namespace of its own.
//!
//! ```text
//!  etcd e0 e1 e2 (10.99.0.10-12:2379)      fabric: Linux bridge `fab`
//!        \   |   /                        /     |      \
//!  host hN: `mg` 10.99.0.2N (kernel: etcd)    `ul` (AF_XDP port of br-ul,
//!           tunnel endpoint 10.98.0.N+1 in the switch; VXLAN between the switches)
//! ```
//!
//! dockerd runs with `nsenter --net` (not `ip netns exec`, whose remount of /sys hides the
//! cgroup hierarchy from it), with its own roots and socket and `--iptables=false
//! --ip-masq=false --ip-forward=false --bridge=none`, so nothing outside its namespace is
//! changed. The switch and the plugin run with `ip netns exec` (they read the namespace's
//! /sys/class/net). Each host's plugin has its own driver name (all plugins share
//! /run/docker/plugins). Dropping the lab removes containers, daemons, mounts under its
//! directory, namespaces and the plugin sockets.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::etcd::{Cluster, Member};
use super::{DOCKER, need, run, sibling, tail};

/// The etcd prefix, driver names and interface names of this process.
pub fn tag() -> String {
    let id = std::process::id() % 46_656;
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut s = String::new();
    let mut n = id;
    for _ in 0..3 {
        s.insert(0, digits[(n % 36) as usize] as char);
        n /= 36;
    }
    s
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `args` in namespace `ns`; must succeed.
pub fn in_ns(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// One simulated host.
pub struct Host {
    /// Index (0, 1, 2).
    pub i: usize,
    /// Its namespace.
    pub ns: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The plugin's driver (and IPAM driver) name here.
    pub driver: String,
    /// The plugin's bridge.
    pub bridge: String,
    /// The plugin's interface prefix.
    pub prefix: String,
    /// The tunnel endpoint's address.
    pub vtep: String,
    vswitchd: Option<Child>,
    plugin: Option<Child>,
    dockerd: Option<Child>,
    endpoints: String,
    etcd_prefix: String,
    /// `--lease-ttl` of the plugin.
    pub lease_ttl: u64,
}

impl Host {
    /// The switch's API.
    pub fn server(&self) -> String {
        format!("unix:{}", self.dir.join("vswitchd.sock").display())
    }

    /// The plugin socket.
    pub fn plugin_socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/docker/plugins/{}.sock", self.driver))
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(name))
            .unwrap()
    }

    /// The plugin's log.
    pub fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("plugin.log")).unwrap_or_default()
    }

    /// Starts (again) the switch; waits until it listens.
    pub fn start_vswitchd(&mut self) {
        let sock = self.dir.join("vswitchd.sock");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(sibling("vswitchd"))
            .arg("--db")
            .arg(self.dir.join("conf.db"))
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .args(["--pmd-cpus", "none"])
            .stdout(Stdio::null())
            .stderr(self.log("vswitchd.log"))
            .spawn()
            .expect("spawn vswitchd");
        self.vswitchd = Some(child);
        wait_for("vswitchd listens", Duration::from_secs(30), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
    }

    /// Kills the switch (SIGKILL).
    pub fn kill_vswitchd(&mut self) {
        if let Some(mut c) = self.vswitchd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts (again) the plugin with its agent; waits until it serves.
    pub fn start_plugin(&mut self) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(env!("CARGO_BIN_EXE_vswitch-docker"))
            .args(["--server", &self.server()])
            .arg("--plugin-socket")
            .arg(self.plugin_socket())
            .arg("--state-dir")
            .arg(self.dir.join("plugin-state"))
            .args(["--ifname-prefix", &self.prefix])
            .args(["--bridge", &self.bridge])
            .args(["--docker-host", &self.docker_host()])
            .args(["--etcd-endpoints", &self.endpoints])
            .args(["--etcd-prefix", &self.etcd_prefix])
            .args(["--vtep-bridge", "br-ul"])
            .args(["--host-id", &format!("h{}", self.i)])
            .args(["--lease-ttl", &self.lease_ttl.to_string()])
            .args(["--reclaim-after", "6"])
            .env("RUST_LOG", "vswitch_docker=debug")
            .stdout(Stdio::null())
            .stderr(self.log("plugin.log"))
            .spawn()
            .expect("spawn vswitch-docker");
        self.plugin = Some(child);
        let sock = self.plugin_socket();
        wait_for("the plugin listens", Duration::from_secs(30), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
    }

    /// Kills the plugin and its agent (SIGKILL).
    pub fn kill_plugin(&mut self) {
        if let Some(mut c) = self.plugin.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    fn start_dockerd(&mut self) {
        let child = Command::new("setsid")
            .arg("nsenter")
            .arg(format!("--net=/run/netns/{}", self.ns))
            .arg("dockerd")
            .arg("--data-root")
            .arg(self.dir.join("docker-data"))
            .arg("--exec-root")
            .arg(self.dir.join("docker-exec"))
            .arg("--pidfile")
            .arg(self.dir.join("dockerd.pid"))
            .args(["-H", &self.docker_host()])
            .args([
                "--iptables=false",
                "--ip-masq=false",
                "--ip-forward=false",
                "--bridge=none",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.log("dockerd.log"))
            .spawn()
            .expect("spawn dockerd");
        self.dockerd = Some(child);
    }

    fn stop_dockerd(&mut self) {
        let pid: Option<i32> = std::fs::read_to_string(self.dir.join("dockerd.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if let Some(pid) = pid {
            let _ = Command::new("kill")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
            let t = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && t.elapsed() < Duration::from_secs(20)
            {
                if let Some(c) = self.dockerd.as_mut() {
                    let _ = c.try_wait();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        if let Some(mut c) = self.dockerd.take() {
            let _ = c.wait();
        }
    }

    /// The docker CLI (Debian's, matching the engine) against this host's dockerd.
    pub fn docker_try(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", self.docker_host())
            .output()
            .expect("run docker")
    }

    /// The docker CLI; must succeed; returns stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        let o = self.docker_try(args);
        assert!(
            o.status.success(),
            "h{}: docker {args:?}: {}{}\nplugin log tail:\n{}",
            self.i,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.plugin_log(), 20)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// flowctl against this host's switch.
    pub fn flowctl(&self, args: &[&str]) -> String {
        let mut all = vec!["--server".to_string(), self.server()];
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run(sibling("flowctl").to_str().unwrap(), &all)
    }

    /// `vswitch-docker overlay-status` (text, or JSON with `json`).
    pub fn status_try(&self, json: bool) -> Result<String, String> {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vswitch-docker"));
        c.arg("--plugin-socket")
            .arg(self.plugin_socket())
            .arg("overlay-status");
        if json {
            c.arg("--json");
        }
        let o = c.output().expect("overlay-status");
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).to_string())
        } else {
            Err(String::from_utf8_lossy(&o.stderr).to_string())
        }
    }

    /// The plugin's status as JSON.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.status_try(true).unwrap()).unwrap()
    }

    /// A container's main process id.
    pub fn pid(&self, container: &str) -> String {
        self.docker(&["inspect", "-f", "{{.State.Pid}}", container])
    }

    /// Runs a host program inside a container's network namespace.
    pub fn in_container(&self, container: &str, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{}/ns/net", self.pid(container)))
            .args(args);
        c
    }

    /// One ping from a container (busybox's); true if answered.
    pub fn ping(&self, container: &str, target: &str) -> bool {
        self.docker_try(&["exec", container, "ping", "-c", "1", "-W", "1", target])
            .status
            .success()
    }

    /// A container's address on `network` (IPv4, or IPv6 with `v6`).
    pub fn ip(&self, container: &str, network: &str, v6: bool) -> String {
        let field = if v6 { "GlobalIPv6Address" } else { "IPAddress" };
        self.docker(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{network}\").{field}}}}}"),
            container,
        ])
    }
}

/// The fabric, the etcd cluster and the hosts.
pub struct MultiHost {
    /// Temporary directory of everything.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    /// Namespaces' name prefix.
    pub tag: String,
    /// The fabric namespace (Linux bridge `fab`).
    pub fabric: String,
    /// etcd.
    pub etcd: Cluster,
    /// The hosts.
    pub hosts: Vec<Host>,
    /// The busybox image's tag.
    pub image: String,
    namespaces: Vec<String>,
}

/// Makes a veth pair `a`-`b` (temporary names) and moves each end into its namespace
/// under its final name.
fn veth(tag: &str, n: usize, a: (&str, &str), b: (&str, &str)) {
    let (ta, tb) = (format!("v{tag}{n}a"), format!("v{tag}{n}b"));
    let _ = Command::new("ip").args(["link", "del", &ta]).output();
    run(
        "ip",
        &["link", "add", &ta, "type", "veth", "peer", "name", &tb],
    );
    for ((ns, name), t) in [(a, &ta), (b, &tb)] {
        run("ip", &["link", "set", t, "netns", ns]);
        run("ip", &["-n", ns, "link", "set", t, "name", name]);
        run("ip", &["-n", ns, "link", "set", name, "up"]);
    }
}

impl MultiHost {
    /// Builds the fabric, starts three etcd members and `n` hosts (switch, plugin, dockerd,
    /// the busybox image).
    pub fn start(n: usize, lease_ttl: u64) -> MultiHost {
        for (p, pkg) in [
            ("dockerd", "docker.io"),
            (DOCKER, "docker.io"),
            ("busybox", "busybox-static"),
            ("iptables", "iptables"),
            ("ethtool", "ethtool"),
            ("ip", "iproute2"),
            ("nsenter", "util-linux"),
            ("tshark", "tshark"),
            ("iperf3", "iperf3"),
        ] {
            need(p, pkg);
        }
        let tmp = tempfile::Builder::new().prefix("vsd-ov").tempdir().unwrap();
        let tag = tag();
        let fabric = format!("vo{tag}f");
        let mut lab = MultiHost {
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
            tag: tag.clone(),
            fabric: fabric.clone(),
            etcd: Cluster {
                members: Vec::new(),
            },
            hosts: Vec::new(),
            image: format!("vsdov{tag}/busybox"),
            namespaces: Vec::new(),
        };
        lab.add_ns(&fabric);
        in_ns(
            &fabric,
            &["ip", "link", "add", "name", "fab", "type", "bridge"],
        );
        in_ns(&fabric, &["ip", "link", "set", "fab", "up"]);
        let mut link = 0;
        let mut members = Vec::new();
        for i in 0..3 {
            let ns = format!("vo{tag}e{i}");
            lab.add_ns(&ns);
            let port = format!("e{i}");
            veth(&tag, link, (&fabric, &port), (&ns, "mg"));
            link += 1;
            in_ns(&fabric, &["ip", "link", "set", &port, "master", "fab"]);
            let ip = format!("10.99.0.1{i}");
            run(
                "ip",
                &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "mg"],
            );
            members.push(Member::new(
                &lab.dir,
                &format!("e{i}"),
                Some(&ns),
                &ip,
                (2379, 2380),
            ));
        }
        lab.etcd = Cluster::start(members);
        let endpoints = lab.etcd.endpoints().join(",");
        for i in 0..n {
            let ns = format!("vo{tag}h{i}");
            lab.add_ns(&ns);
            for (inside, outside) in [("mg", format!("m{i}")), ("ul", format!("u{i}"))] {
                veth(&tag, link, (&fabric, &outside), (&ns, inside));
                link += 1;
                in_ns(&fabric, &["ip", "link", "set", &outside, "master", "fab"]);
            }
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("10.99.0.2{i}/24"),
                    "dev",
                    "mg",
                ],
            );
            // The switch reads the underlay; the kernel must not answer on it.
            in_ns(&ns, &["ethtool", "-K", "ul", "tx", "off"]);
            let dir = lab.dir.join(format!("h{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mut h = Host {
                i,
                ns,
                dir,
                driver: format!("vsdov{tag}h{i}"),
                bridge: format!("br-t{tag}"),
                prefix: format!("t{tag}"),
                vtep: format!("10.98.0.{}", i + 1),
                vswitchd: None,
                plugin: None,
                dockerd: None,
                endpoints: endpoints.clone(),
                etcd_prefix: format!("/vsdov{tag}"),
                lease_ttl,
            };
            h.start_dockerd();
            h.start_vswitchd();
            h.flowctl(&["add-br", "br-ul"]);
            h.flowctl(&["add-port", "br-ul", "ul", "type=afxdp"]);
            h.flowctl(&["set-tunnel-ip", "br-ul", &format!("{}/24", h.vtep)]);
            h.start_plugin();
            lab.hosts.push(h);
        }
        for h in &lab.hosts {
            wait_for("dockerd answers", Duration::from_secs(60), || {
                h.docker_try(&["info"]).status.success()
            });
            lab.import_image(h);
        }
        lab
    }

    fn add_ns(&mut self, ns: &str) {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
        run("ip", &["netns", "add", ns]);
        run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        self.namespaces.push(ns.to_string());
    }

    fn import_image(&self, h: &Host) {
        let tar = self.dir.join("rootfs.tar");
        if !tar.exists() {
            let root = self.dir.join("rootfs");
            for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            let busybox = run("sh", &["-c", "command -v busybox"]);
            std::fs::copy(busybox.trim(), root.join("bin/busybox")).unwrap();
            for applet in run("busybox", &["--list"]).lines() {
                if applet != "busybox" {
                    std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
                }
            }
            std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
            std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
            run(
                "tar",
                &[
                    "-C",
                    root.to_str().unwrap(),
                    "-cf",
                    tar.to_str().unwrap(),
                    ".",
                ],
            );
        }
        h.docker(&[
            "import",
            "-c",
            "ENV PATH=/bin",
            "-c",
            "CMD [\"/bin/sh\"]",
            tar.to_str().unwrap(),
            &self.image,
        ]);
    }

    /// etcdctl (v3) against the cluster, from host 0's namespace.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let ep = self.etcd.endpoints().join(",");
        let mut all = vec![
            "netns",
            "exec",
            &self.hosts[0].ns,
            "env",
            "ETCDCTL_API=3",
            "etcdctl",
        ];
        all.extend(["--endpoints", &ep, "--command-timeout=3s"]);
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// What each host's plugin, switch and etcd say, for a failure's message.
    pub fn diagnose(&self) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            out.push_str(&format!("==== h{}\n", h.i));
            out.push_str(&h.status_try(false).unwrap_or_else(|e| e));
            let flows = Command::new(sibling("flowctl"))
                .args(["--server", &h.server(), "dump-flows", &h.bridge])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
                .unwrap_or_default();
            out.push_str(&flows);
            out.push_str(&tail(&h.plugin_log(), 15));
            out.push('\n');
        }
        out
    }

    /// The keys under the cluster's prefix (and `sub`).
    pub fn keys(&self, sub: &str) -> Vec<String> {
        let p = format!("/vsdov{}/{sub}", self.tag);
        self.etcdctl(&["get", "--prefix", "--keys-only", &p])
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }
}

impl Drop for MultiHost {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            let ids = h.docker_try(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = h.docker_try(&["rm", "-f", id]);
            }
        }
        for h in &mut self.hosts {
            h.stop_dockerd();
            h.kill_plugin();
            h.kill_vswitchd();
            let _ = std::fs::remove_file(h.plugin_socket());
        }
        for m in &mut self.etcd.members {
            m.kill();
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let dir = self.dir.display().to_string();
        let mut ours: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| m.starts_with(&dir))
            .collect();
        ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in ours {
            let _ = Command::new("umount").arg("-l").arg(m).output();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}
