//! A private Docker Engine, switch and plugin for the system tests, and their cleanup.
//!
//! One `Lab` per test binary: Debian's `dockerd` (Engine 20.10) with its own data and exec
//! roots, socket and pidfile, `--iptables=false --ip-masq=false --bridge=none` (so it leaves
//! no FORWARD DROP, NAT chains or docker0 behind) and `--live-restore` (containers outlive a
//! dockerd restart); `vswitchd` on a temporary store; the plugin under a driver name and an
//! interface prefix unique to this process. Dropping the lab removes the containers and
//! networks, stops the three daemons and puts back what was changed on the host
//! (`ip_forward`, the plugin's iptables rules, the plugin socket, dockerd's mounts).
#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod etcd;
pub mod hosts;

/// Debian's docker CLI, which matches the 20.10 engine (a newer CLI refuses some flags).
pub const DOCKER: &str = "/usr/bin/docker";

/// Runs a command that must succeed; returns its stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Fails with what to install when a program is missing.
pub fn need(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
        .unwrap_or(false)
        || Path::new(program).exists();
    assert!(
        found,
        "{program} is missing: apt-get install {package} (./scripts/test installs it)"
    );
}

/// A binary built next to the plugin.
pub fn sibling(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_vswitch-docker")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: build it first (`cargo build -p vswitchd -p flowctl`; ./scripts/test does)",
        p.display()
    );
    p
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemons of one test binary.
pub struct Lab {
    /// Temporary directory with everything of the lab.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    /// The driver name (`docker network create -d`).
    pub driver: String,
    /// The plugin's interface prefix.
    pub prefix: String,
    /// The image tag of the busybox image.
    pub image: String,
    vswitchd: Option<Child>,
    plugin: Option<Child>,
    dockerd: Option<Child>,
    saved_ip_forward: String,
    saved_forward_policy: String,
}

impl Lab {
    /// Starts the switch, the plugin and dockerd, and imports the busybox image.
    pub fn start() -> Lab {
        let mut lab = Lab::dockerd_only();
        lab.start_vswitchd();
        lab.start_plugin();
        lab.import_image();
        lab
    }

    /// Starts dockerd alone (the image test runs the switch and the plugin in containers).
    pub fn dockerd_only() -> Lab {
        need("dockerd", "docker.io");
        need(DOCKER, "docker.io");
        need("busybox", "busybox-static");
        need("iptables", "iptables");
        need("ethtool", "ethtool");
        need("ip", "iproute2");
        let tmp = tempfile::Builder::new()
            .prefix("vsd-lab")
            .tempdir()
            .unwrap();
        let id = std::process::id();
        let prefix = format!("t{}", radix36(id % 46_656, 3));
        let mut lab = Lab {
            dir: tmp.path().to_path_buf(),
            _tmp: tmp,
            driver: format!("vsdtest{id}"),
            prefix,
            image: format!("vsdtest{id}/busybox"),
            vswitchd: None,
            plugin: None,
            dockerd: None,
            saved_ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim()
                .to_string(),
            saved_forward_policy: run("iptables", &["-S", "FORWARD"])
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(2))
                .unwrap_or("ACCEPT")
                .to_string(),
        };
        lab.start_dockerd();
        lab
    }

    /// The switch's API address.
    pub fn server(&self) -> String {
        format!("unix:{}", self.dir.join("vswitchd.sock").display())
    }

    /// The plugin's socket.
    pub fn plugin_socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/docker/plugins/{}.sock", self.driver))
    }

    /// The plugin's state file.
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("plugin-state").join("state.json")
    }

    /// Starts (again) the switch on its store; waits until it listens.
    pub fn start_vswitchd(&mut self) {
        let sock = self.dir.join("vswitchd.sock");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("vswitchd.log"))
            .unwrap();
        let child = Command::new(sibling("vswitchd"))
            .arg("--db")
            .arg(self.dir.join("conf.db"))
            .arg("--listen")
            .arg(format!("unix:{}", sock.display()))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn vswitchd");
        self.vswitchd = Some(child);
        wait_for("vswitchd listens", Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
    }

    /// Kills the switch with SIGKILL.
    pub fn kill_vswitchd(&mut self) {
        if let Some(mut c) = self.vswitchd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts (again) the plugin; waits until it serves.
    pub fn start_plugin(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("plugin.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vswitch-docker"))
            .arg("--server")
            .arg(self.server())
            .arg("--plugin-socket")
            .arg(self.plugin_socket())
            .arg("--state-dir")
            .arg(self.dir.join("plugin-state"))
            .arg("--ifname-prefix")
            .arg(&self.prefix)
            .arg("--bridge")
            .arg(format!("br-{}", self.prefix))
            .arg("--docker-host")
            .arg(self.docker_host())
            .env("RUST_LOG", "vswitch_docker=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn vswitch-docker");
        self.plugin = Some(child);
        let sock = self.plugin_socket();
        wait_for("the plugin listens", Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
    }

    /// Kills the plugin with SIGKILL (its socket file stays, as after a crash).
    pub fn kill_plugin(&mut self) {
        if let Some(mut c) = self.plugin.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The plugin's log so far.
    pub fn plugin_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("plugin.log")).unwrap_or_default()
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// Starts (again) dockerd; waits until it answers.
    pub fn start_dockerd(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("dockerd.log"))
            .unwrap();
        // setsid: dockerd must not get the test's signals (Ctrl-C); stopped by its pidfile.
        let child = Command::new("setsid")
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
                "--live-restore",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        self.dockerd = Some(child);
        wait_for("dockerd answers", Duration::from_secs(30), || {
            self.docker_try(&["info"]).status.success()
        });
    }

    fn dockerd_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("dockerd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops dockerd (SIGTERM) and waits until it is gone.
    pub fn stop_dockerd(&mut self) {
        let Some(pid) = self.dockerd_pid() else {
            return;
        };
        let _ = Command::new("kill").arg(pid.to_string()).status();
        // dockerd is our child (setsid execs it in place): reap it, or its zombie would
        // look alive.
        let mut child = self.dockerd.take();
        let mut alive = || match child.as_mut() {
            Some(c) if c.id() as i32 == pid => matches!(c.try_wait(), Ok(None)),
            _ => Path::new(&format!("/proc/{pid}")).exists(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if alive() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }

    /// Runs the docker CLI against the lab's dockerd.
    pub fn docker_try(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", self.docker_host())
            .output()
            .expect("run docker")
    }

    /// Runs the docker CLI; must succeed; returns stdout.
    pub fn docker(&self, args: &[&str]) -> String {
        let o = self.docker_try(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}{}\nplugin log tail:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.plugin_log(), 15)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Runs flowctl against the lab's switch; returns stdout.
    pub fn flowctl(&self, args: &[&str]) -> String {
        let mut all = vec!["--server".to_string(), self.server()];
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run(sibling("flowctl").to_str().unwrap(), &all)
    }

    fn import_image(&self) {
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
        let tar = self.dir.join("rootfs.tar");
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
        self.docker(&[
            "import",
            "-c",
            "ENV PATH=/bin",
            "-c",
            "CMD [\"/bin/sh\"]",
            tar.to_str().unwrap(),
            &self.image,
        ]);
    }

    /// Host interfaces with the plugin's prefix.
    pub fn host_links(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&self.prefix))
            .collect();
        v.sort();
        v
    }

    /// The plugin's iptables rules (nat and filter).
    pub fn iptables_rules(&self) -> Vec<String> {
        let tag = format!("vswitch-docker:{}:", self.prefix);
        let mut v = Vec::new();
        for (t, c) in [("nat", "POSTROUTING"), ("filter", "FORWARD")] {
            v.extend(
                run("iptables", &["-t", t, "-S", c])
                    .lines()
                    .filter(|l| l.contains(&tag))
                    .map(String::from),
            );
        }
        v
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Containers and networks first, while the plugin can still clean up after them.
        if self.dockerd_pid().is_some() {
            let ids = self.docker_try(&["ps", "-aq"]);
            for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                let _ = self.docker_try(&["rm", "-f", id]);
            }
            let ls = self.docker_try(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
            for line in String::from_utf8_lossy(&ls.stdout).lines() {
                if let Some((name, drv)) = line.split_once(' ')
                    && drv == self.driver
                {
                    let _ = self.docker_try(&["network", "rm", name]);
                }
            }
        }
        self.stop_dockerd();
        self.kill_plugin();
        self.kill_vswitchd();
        let _ = std::fs::remove_file(self.plugin_socket());
        // Whatever is left with our prefix: interfaces and iptables rules.
        for l in self.host_links() {
            let _ = Command::new("ip").args(["link", "del", &l]).output();
        }
        for rule in self.iptables_rules() {
            let table = if rule.contains("MASQUERADE") {
                "nat"
            } else {
                "filter"
            };
            if let Some(spec) = rule.strip_prefix("-A ") {
                let mut args = vec!["-t", table, "-D"];
                args.extend(spec.split_whitespace().map(|w| w.trim_matches('"')));
                let _ = Command::new("iptables").args(&args).output();
            }
        }
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", &self.saved_ip_forward);
        let _ = Command::new("iptables")
            .args(["-P", "FORWARD", &self.saved_forward_policy])
            .output();
        // dockerd's network namespace and overlay mounts under its roots.
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
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn radix36(mut n: u32, width: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = vec![b'0'; width];
    for d in out.iter_mut().rev() {
        *d = digits[(n % 36) as usize];
        n /= 36;
    }
    String::from_utf8(out).unwrap()
}
