//! A private Open vSwitch 3.1 for tests that compare our flow language with its: the dummy
//! datapath (no kernel devices, no root networking), files in a temporary directory named
//! after the test and the process, one bridge `br0`. Needs `openvswitch-switch`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A private Open vSwitch, stopped and removed on drop.
pub struct Ovs {
    dir: PathBuf,
}

impl Ovs {
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("timeout");
        c.arg("20").arg(program);
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
        c.env("OVS_PKGDATADIR", "/usr/share/openvswitch");
        c
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn start(name: &str) -> Ovs {
        for bin in ["ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-ofctl"] {
            assert!(
                Command::new("which")
                    .arg(bin)
                    .output()
                    .is_ok_and(|o| o.status.success()),
                "{bin} is missing: apt-get install openvswitch-switch"
            );
        }
        let dir = std::env::temp_dir().join(format!("proto-ovs-{name}.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let ovs = Ovs { dir };
        let p = |name: &str| ovs.dir.join(name).display().to_string();
        let db = format!("unix:{}", p("db.sock"));
        ovs.ok(
            "ovsdb-tool",
            &[
                "create",
                &p("conf.db"),
                "/usr/share/openvswitch/vswitch.ovsschema",
            ],
        );
        ovs.ok(
            "ovsdb-server",
            &[
                &p("conf.db"),
                &format!("--remote=punix:{}", p("db.sock")),
                &format!("--pidfile={}", p("ovsdb-server.pid")),
                &format!("--log-file={}", p("ovsdb-server.log")),
                "--detach",
            ],
        );
        ovs.ok("ovs-vsctl", &[&format!("--db={db}"), "--no-wait", "init"]);
        ovs.ok(
            "/usr/lib/openvswitch-switch/ovs-vswitchd",
            &[
                &db,
                "--enable-dummy",
                &format!("--pidfile={}", p("ovs-vswitchd.pid")),
                &format!("--log-file={}", p("ovs-vswitchd.log")),
                "--detach",
            ],
        );
        ovs.ok(
            "ovs-vsctl",
            &[
                &format!("--db={db}"),
                "add-br",
                "br0",
                "--",
                "set",
                "bridge",
                "br0",
                "datapath_type=dummy",
            ],
        );
        ovs
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for daemon in ["ovs-vswitchd", "ovsdb-server"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(format!("{daemon}.pid"))) {
                let _ = Command::new("kill").arg(pid.trim()).output();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        remove(&self.dir);
    }
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
