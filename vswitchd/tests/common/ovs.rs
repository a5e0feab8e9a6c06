//! A private Open vSwitch for comparing behaviour: `ovsdb-server` and `ovs-vswitchd` with
//! every file (database, sockets, pid and log files) in a temporary directory, and
//! `--enable-dummy=override`, so bridges with `datapath_type=dummy` create no kernel device
//! and need no kernel module. Stopped, and its directory removed, when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's openvswitch-switch puts the daemon (it is not on PATH).
const VSWITCHD: &str = "/usr/lib/openvswitch-switch/ovs-vswitchd";
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";
const INSTALL: &str = "apt-get install openvswitch-switch (Open vSwitch 3.1)";

/// A running private Open vSwitch.
pub struct Ovs {
    dir: tempfile::TempDir,
}

impl Ovs {
    /// Starts ovsdb-server and ovs-vswitchd; panics saying what to install when Open
    /// vSwitch is missing.
    pub fn start() -> Ovs {
        for bin in [
            "ovsdb-tool",
            "ovsdb-server",
            "ovs-vsctl",
            "ovs-ofctl",
            VSWITCHD,
            SCHEMA,
        ] {
            let found = if bin.starts_with('/') {
                Path::new(bin).exists()
            } else {
                Command::new("which")
                    .arg(bin)
                    .output()
                    .is_ok_and(|o| o.status.success())
            };
            assert!(found, "{bin} is missing: {INSTALL}");
        }
        let ovs = Ovs {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let db = ovs.path("conf.db");
        ovs.run("ovsdb-tool", &["create", &db, SCHEMA]);
        ovs.run(
            "ovsdb-server",
            &[
                &db,
                &format!("--remote=punix:{}", ovs.path("db.sock")),
                &format!("--pidfile={}", ovs.path("ovsdb-server.pid")),
                &format!("--log-file={}", ovs.path("ovsdb-server.log")),
                "--detach",
            ],
        );
        ovs.vsctl(&["--no-wait", "init"]);
        ovs.run(
            VSWITCHD,
            &[
                &format!("unix:{}", ovs.path("db.sock")),
                "--enable-dummy=override",
                "--disable-system",
                &format!("--pidfile={}", ovs.path("ovs-vswitchd.pid")),
                &format!("--log-file={}", ovs.path("ovs-vswitchd.log")),
                "--detach",
            ],
        );
        ovs
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Runs an Open vSwitch command with this instance's directories (bounded: a command
    /// waiting for a daemon that died must not hang the test); returns its stdout.
    fn run(&self, cmd: &str, args: &[&str]) -> String {
        let d = self.dir.path();
        let o = Command::new("timeout")
            .arg("20")
            .arg(cmd)
            .args(args)
            .env("OVS_RUNDIR", d)
            .env("OVS_DBDIR", d)
            .env("OVS_LOGDIR", d)
            .env("OVS_SYSCONFDIR", d)
            .env("OVS_PKGDATADIR", "/usr/share/openvswitch")
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e} ({INSTALL})"));
        assert!(
            o.status.success(),
            "{cmd} {args:?}: {}{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `ovs-vsctl ARGS` against this instance.
    pub fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.path("db.sock"));
        let mut all = vec![db.as_str()];
        all.extend_from_slice(args);
        self.run("ovs-vsctl", &all)
    }

    /// `ovs-ofctl ARGS` (a bridge name finds the bridge's socket in this instance).
    pub fn ofctl(&self, args: &[&str]) -> String {
        self.run("ovs-ofctl", args)
    }

    /// `ovs-appctl ARGS` against this instance's ovs-vswitchd.
    pub fn appctl(&self, args: &[&str]) -> String {
        self.run("ovs-appctl", args)
    }

    /// `ovs-ofctl ARGS` whether it succeeds or not: its success, and what it printed
    /// (stdout, then stderr without Open vSwitch's log lines).
    pub fn ofctl_any(&self, args: &[&str]) -> (bool, String) {
        let d = self.dir.path();
        let o = Command::new("timeout")
            .arg("20")
            .arg("ovs-ofctl")
            .args(args)
            .env("OVS_RUNDIR", d)
            .env("OVS_DBDIR", d)
            .env("OVS_LOGDIR", d)
            .env("OVS_SYSCONFDIR", d)
            .output()
            .unwrap_or_else(|e| panic!("ovs-ofctl: {e} ({INSTALL})"));
        let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
        for l in String::from_utf8_lossy(&o.stderr).lines() {
            // 2026-01-01T00:00:00Z|00001|module|LEVEL|...
            if l.split('|').count() < 4 || !l.starts_with(|c: char| c.is_ascii_digit()) {
                text.push_str(l);
                text.push('\n');
            }
        }
        (o.status.success(), text)
    }

    /// Adds a port of the dummy datapath with OpenFlow port number `ofport`.
    pub fn add_dummy_port(&self, bridge: &str, name: &str, ofport: u16) {
        let req = format!("ofport_request={ofport}");
        self.vsctl(&[
            "add-port",
            bridge,
            name,
            "--",
            "set",
            "interface",
            name,
            "type=dummy",
            &req,
        ]);
    }

    /// The directory of this instance's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Adds a bridge on the dummy datapath, as `ovs-vsctl add-br` does otherwise.
    pub fn add_br(&self, name: &str) {
        self.vsctl(&[
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=dummy",
        ]);
    }

    /// The end of ovs-vswitchd's log, for failure messages.
    pub fn log(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("ovs-vswitchd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn pid(&self, daemon: &str) -> Option<PathBuf> {
        let p = self.dir.path().join(format!("{daemon}.pid"));
        p.exists().then_some(p)
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for daemon in ["ovs-vswitchd", "ovsdb-server"] {
            if let Some(pid) = self
                .pid(daemon)
                .and_then(|p| std::fs::read_to_string(p).ok())
            {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}
