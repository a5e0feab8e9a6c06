//! Private etcd members (Debian's `etcd-server` 3.4) for the overlay tests: on loopback, or
//! each in a network namespace of its own; stopped (SIGKILL or SIGTERM) and started again
//! on the same data directory; everything removed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::need;

/// One member.
pub struct Member {
    /// Its name in the cluster.
    pub name: String,
    /// The namespace it runs in (`None`: the host's).
    pub ns: Option<String>,
    /// Its address (client port 2379, peer port 2380 inside a namespace; free ports on
    /// loopback).
    pub client_url: String,
    /// Its peer URL.
    pub peer_url: String,
    /// `name=peer_url,...` of the whole cluster.
    pub initial_cluster: String,
    /// Its data directory.
    pub data: PathBuf,
    /// Its log.
    pub log: PathBuf,
    child: Option<Child>,
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Member {
    /// A member (not started).
    pub fn new(
        dir: &std::path::Path,
        name: &str,
        ns: Option<&str>,
        ip: &str,
        ports: (u16, u16),
    ) -> Member {
        need("etcd", "etcd-server");
        need("etcdctl", "etcd-client");
        Member {
            name: name.to_string(),
            ns: ns.map(String::from),
            client_url: format!("http://{ip}:{}", ports.0),
            peer_url: format!("http://{ip}:{}", ports.1),
            initial_cluster: String::new(),
            data: dir.join(format!("etcd-{name}")),
            log: dir.join(format!("etcd-{name}.log")),
            child: None,
        }
    }

    /// Starts it (again, on its data directory).
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "etcd"]);
                c
            }
            None => Command::new("etcd"),
        };
        cmd.arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data)
            .args(["--listen-client-urls", &self.client_url])
            .args(["--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args([
                "--initial-cluster-token",
                &format!("vsd-{}", std::process::id()),
            ])
            // Faster elections than the defaults (100 ms / 1 s) for the fault tests.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn etcd"));
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// True if it answers a health check (which needs a quorum).
    pub fn healthy(&self) -> bool {
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "etcdctl"]);
                c
            }
            None => Command::new("etcdctl"),
        };
        cmd.env("ETCDCTL_API", "3")
            .args([
                "--endpoints",
                &self.client_url,
                "--command-timeout=2s",
                "endpoint",
                "health",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Members forming one cluster.
pub struct Cluster {
    /// The members.
    pub members: Vec<Member>,
}

impl Cluster {
    /// Starts `members` as one cluster and waits until it is healthy.
    pub fn start(mut members: Vec<Member>) -> Cluster {
        let initial: Vec<String> = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect();
        for m in &mut members {
            m.initial_cluster = initial.join(",");
            m.start();
        }
        let c = Cluster { members };
        c.wait_healthy(Duration::from_secs(30));
        c
    }

    /// One member on loopback.
    pub fn loopback(dir: &std::path::Path) -> Cluster {
        let m = Member::new(dir, "solo", None, "127.0.0.1", (free_port(), free_port()));
        Cluster::start(vec![m])
    }

    /// `--etcd-endpoints`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Waits until a member answers a health check.
    pub fn wait_healthy(&self, limit: Duration) {
        let t = Instant::now();
        while !self.members.iter().any(Member::healthy) {
            assert!(
                t.elapsed() < limit,
                "etcd not healthy within {limit:?}: {}",
                self.members
                    .iter()
                    .map(|m| std::fs::read_to_string(&m.log).unwrap_or_default())
                    .map(|l| super::tail(&l, 5))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
