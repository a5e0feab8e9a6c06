//! The switch against hostile and careless clients, damaged stores and silent drops
//! (issue 19): each probe that once broke it, kept as a regression test whose numbers are
//! the assertions.
//!
//! Runs as root (it starts the daemon under other users' eyes, limits its descriptors and
//! creates veths). Needs `cc` (the unprivileged attacker is a small C program), `setpriv`
//! and `prlimit` (util-linux), and `/usr/bin/python3` (raw frames in a namespace). About 50 s.
// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod connections;
mod errors;
mod frames;
mod limits;
mod socket;
mod store;

use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// A daemon of our own: its stderr kept, started through a wrapper when asked (prlimit).
// ---------------------------------------------------------------------------------------

struct Vswitchd {
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Vswitchd {
    /// Starts `wrapper... vswitchd --db DIR/conf.db --listen unix:DIR/s extra...` and waits
    /// until the socket answers.
    fn start(dir: &std::path::Path, wrapper: &[&str], extra: &[&str]) -> Vswitchd {
        let sock = dir.join("s");
        let log = std::fs::File::create(dir.join("stderr")).unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(env!("CARGO_BIN_EXE_vswitchd"));
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
            .stderr(log)
            .spawn()
            .expect("spawn vswitchd");
        let d = Vswitchd {
            child,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while d.fc(&["list-br"]).status.code() != Some(0) {
            assert!(
                Instant::now() < deadline,
                "vswitchd never served: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn sock(&self) -> std::path::PathBuf {
        self.dir.join("s")
    }

    fn fc(&self, args: &[&str]) -> std::process::Output {
        Command::new(common::flowctl_binary())
            .arg("--server")
            .arg(format!("unix:{}", self.sock().display()))
            .args(args)
            .output()
            .expect("run flowctl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.fc(args);
        assert!(
            o.status.success(),
            "flowctl {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        // Used by the AF_XDP test.
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("json")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// CPU time the daemon used so far (user + system).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which may hold spaces) start at field 3.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let ticks = f[11] + f[12]; // utime, stime
        Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
    }

    /// Resident memory of the daemon, in bytes.
    fn rss(&self) -> u64 {
        rss_of(self.child.id()).expect("the daemon's VmRSS")
    }

    /// Loads `text` into br0 with `flowctl add-flows` (from `DIR/flows.txt`).
    fn add_flows(&self, text: &str) {
        let f = self.dir.join("flows.txt");
        std::fs::write(&f, text).unwrap();
        self.ok(&["add-flows", "br0", f.to_str().unwrap()]);
    }
}

/// Resident memory of process `pid`, in bytes (None once it is gone).
fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(kb * 1024)
}

/// `n` flows to /24 subnets of 10.0.0.0/8 (seven priorities), each output to p1.
fn subnet_flows(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "priority={},ip,nw_dst=10.{}.{}.0/24,actions=output:p1\n",
                100 + i % 7,
                i / 256,
                i % 256
            )
        })
        .collect()
}

impl Drop for Vswitchd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection driver task of a hand-made HTTP/2 client.
type Conn = tokio::task::JoinHandle<Result<(), h2::Error>>;
