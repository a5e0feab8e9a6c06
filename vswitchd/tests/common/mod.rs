//! Shared by the system tests: the real `vswitchd` on a temporary store and socket, driven
//! by the real `flowctl`, and namespaces joined to it through veth pairs that the test
//! creates under unique names and removes afterwards (even when it fails).
#![allow(dead_code)] // each test crate uses a different part

pub mod in_process;
pub mod ovs;
pub mod prometheus;
pub mod pyvenv;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `flowctl` binary next to `vswitchd`.
pub fn flowctl_binary() -> PathBuf {
    let vswitchd = PathBuf::from(env!("CARGO_BIN_EXE_vswitchd"));
    let p = vswitchd.with_file_name("flowctl");
    assert!(
        p.exists(),
        "{} is missing: build it first (`cargo build -p flowctl`; ./scripts/test does)",
        p.display()
    );
    p
}

/// A file of the test PKI that flowctl's tests keep (`flowctl/tests/tls`).
pub fn tls_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flowctl/tests/tls")
        .join(name)
        .display()
        .to_string()
}

/// A TCP port on 127.0.0.1 free at the time of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A running daemon, killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
}

impl Daemon {
    /// Starts `vswitchd` with its store and socket in `dir`; waits until it listens.
    pub fn start(dir: &Path) -> Daemon {
        Daemon::start_in(dir, None)
    }

    /// Starts `vswitchd` inside network namespace `netns` (when given).
    pub fn start_in(dir: &Path, netns: Option<&str>) -> Daemon {
        Daemon::start_with(dir, netns, &[])
    }

    /// Starts `vswitchd` (inside `netns` when given) with more command-line arguments.
    pub fn start_with(dir: &Path, netns: Option<&str>, extra: &[&str]) -> Daemon {
        Daemon::spawn(dir, netns, extra, &[], Stdio::null())
    }

    /// Starts `vswitchd` with more arguments and environment variables, its standard error
    /// going to [`Daemon::log_path`] (read it with [`Daemon::log`]).
    pub fn start_logged(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::File::create(dir.join("vswitchd.log")).expect("create the log file");
        Daemon::spawn(dir, None, extra, env, Stdio::from(log))
    }

    /// Where [`Daemon::start_logged`] sends the daemon's standard error.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("vswitchd.log")
    }

    /// What the daemon has logged so far ([`Daemon::start_logged`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(
        dir: &Path,
        netns: Option<&str>,
        extra: &[&str],
        env: &[(&str, &str)],
        stderr: Stdio,
    ) -> Daemon {
        let sock = dir.join("s");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_vswitchd")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_vswitchd")),
        };
        let child = cmd
            .arg("--db")
            .arg(dir.join("conf.db"))
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .args(extra)
            .envs(env.iter().copied())
            .stderr(stderr)
            .spawn()
            .expect("spawn vswitchd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(
                Instant::now() < deadline,
                "vswitchd never listened on {}",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon {
            child: Some(child),
            dir: dir.to_path_buf(),
        }
    }

    /// The daemon's API address for `flowctl --server`.
    pub fn server(&self) -> String {
        format!("unix:{}", self.dir.join("s").display())
    }

    /// Runs flowctl with `input` on its standard input.
    pub fn with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut c = Command::new(flowctl_binary())
            .arg("--server")
            .arg(self.server())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run flowctl");
        c.stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        c.wait_with_output().expect("wait flowctl")
    }

    /// Kills the daemon with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// Stops the daemon with SIGTERM and checks it exits cleanly.
    pub fn term(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY-free: ask politely with SIGTERM through the kill command.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(st)) = c.try_wait() {
                    assert!(st.success(), "vswitchd exited with {st} on SIGTERM");
                    break;
                }
                assert!(Instant::now() < deadline, "vswitchd ignored SIGTERM");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Runs flowctl against this daemon.
    pub fn fc(&self, args: &[&str]) -> Output {
        Command::new(flowctl_binary())
            .arg("--server")
            .arg(format!("unix:{}", self.dir.join("s").display()))
            .args(args)
            .output()
            .expect("run flowctl")
    }

    /// Runs flowctl and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.fc(args);
        assert!(
            o.status.success(),
            "flowctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf-8")
    }

    /// Runs flowctl with `--format json` and parses what it prints.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("flowctl json")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs a command that must succeed; returns its stdout. A missing command fails with the
/// packages to install.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap_or_else(|e| {
        panic!("{cmd}: {e} (apt-get install iproute2 iputils-ping ethtool iperf3; run as root)")
    });
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Namespaces `{prefix}N` with address `10.{net}.0.N/24` on `{prefix}vN` (inside), whose
/// host ends `{prefix}hN` are the switch's ports. Removed on drop.
pub struct Hosts {
    /// Namespace names, host 1 first.
    pub ns: Vec<String>,
    /// Host-side veth names (the switch's ports), host 1 first.
    pub ports: Vec<String>,
    inner: Vec<String>,
    net: u8,
}

impl Hosts {
    /// Creates `n` hosts. `prefix` must be short (names are limited to 15 bytes) and unique
    /// to the test; the process id is appended.
    pub fn new(prefix: &str, net: u8, n: usize) -> Hosts {
        Hosts::new_with(prefix, net, n, false)
    }

    /// As [`Hosts::new`], with IPv6 off in every namespace before its interface exists:
    /// the hosts send nothing (no router solicitations, no MLD reports) unless a test makes
    /// them, so a test can count frames exactly.
    pub fn new_quiet(prefix: &str, net: u8, n: usize) -> Hosts {
        Hosts::new_with(prefix, net, n, true)
    }

    fn new_with(prefix: &str, net: u8, n: usize, quiet: bool) -> Hosts {
        let id = std::process::id() % 100_000;
        let mut h = Hosts {
            ns: Vec::new(),
            ports: Vec::new(),
            inner: Vec::new(),
            net,
        };
        for i in 1..=n {
            let ns = format!("{prefix}{id}n{i}");
            let port = format!("{prefix}{id}h{i}");
            let _ = Command::new("ip").args(["netns", "del", &ns]).output();
            let _ = Command::new("ip").args(["link", "del", &port]).output();
            run("ip", &["netns", "add", &ns]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            if quiet {
                for k in ["all", "default"] {
                    let key = format!("net.ipv6.conf.{k}.disable_ipv6=1");
                    run("ip", &["netns", "exec", &ns, "sysctl", "-qw", &key]);
                }
            }
            h.ns.push(ns);
            h.ports.push(port);
            h.inner.push(format!("{prefix}{id}v{i}"));
            h.plug(i);
        }
        h
    }

    /// Creates host `i`'s veth pair (again): the inside end in its namespace with its
    /// address, the host end up.
    pub fn plug(&self, i: usize) {
        let (ns, port, inner) = (&self.ns[i - 1], &self.ports[i - 1], &self.inner[i - 1]);
        run(
            "ip",
            &["link", "add", port, "type", "veth", "peer", "name", inner],
        );
        run("ip", &["link", "set", inner, "netns", ns]);
        let addr = format!("{}/24", self.addr(i));
        run("ip", &["-n", ns, "addr", "add", &addr, "dev", inner]);
        run("ip", &["-n", ns, "link", "set", inner, "up"]);
        run("ip", &["link", "set", port, "up"]);
        // veth leaves checksums to an offload a userspace switch never performs.
        run(
            "ip",
            &["netns", "exec", ns, "ethtool", "-K", inner, "tx", "off"],
        );
    }

    /// Deletes host `i`'s veth pair (both ends go).
    pub fn unplug(&self, i: usize) {
        run("ip", &["link", "del", &self.ports[i - 1]]);
    }

    /// The name of host `i`'s interface inside its namespace (1-based).
    pub fn inner(&self, i: usize) -> &str {
        &self.inner[i - 1]
    }

    /// Host `i`'s address (1-based).
    pub fn addr(&self, i: usize) -> String {
        format!("10.{}.0.{i}", self.net)
    }

    /// Runs `args` inside host `i`'s namespace; must succeed.
    pub fn exec(&self, i: usize, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.ns[i - 1]];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Starts `args` inside host `i`'s namespace without waiting.
    pub fn spawn(&self, i: usize, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns[i - 1]])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in namespace")
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
        for p in &self.ports {
            let _ = Command::new("ip").args(["link", "del", p]).output();
        }
    }
}

/// The output of a child that must have succeeded.
pub fn finish(c: Child) -> String {
    let o = c.wait_with_output().expect("wait");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Makes sure 2 MiB hugepages are reserved and hugetlbfs is mounted.
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
pub fn hugepages() {
    let nr: usize = std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if nr < 512 {
        std::fs::write("/proc/sys/vm/nr_hugepages", "512")
            .expect("reserve hugepages (run as root)");
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    if !mounts.contains("hugetlbfs") {
        std::fs::create_dir_all("/dev/hugepages").unwrap();
        run("mount", &["-t", "hugetlbfs", "nodev", "/dev/hugepages"]);
    }
    let free: usize =
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    assert!(
        free >= 128,
        "only {free} free 2 MiB hugepages: echo 1024 > /proc/sys/vm/nr_hugepages"
    );
}
