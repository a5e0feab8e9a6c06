//! Meter text against Open vSwitch 3.1 itself: a private `ovs-vswitchd` (the dummy
//! datapath: no kernel devices, no root networking, files in a temporary directory) takes
//! each meter with `ovs-ofctl add-meter`, and what it reports with `dump-meters` must be
//! what `parse_meter` reads from the same text. Needs `openvswitch-switch`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proto::flow_text::parse_meter;
use proto::v1::Meter;

/// A private Open vSwitch, stopped and removed on drop.
struct Ovs {
    dir: PathBuf,
}

impl Ovs {
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("timeout");
        c.arg("20").arg(program);
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
        c.env("OVS_PKGDATADIR", "/usr/share/openvswitch");
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        self.cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    fn ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start() -> Ovs {
        for bin in ["ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-ofctl"] {
            assert!(
                Command::new("which")
                    .arg(bin)
                    .output()
                    .is_ok_and(|o| o.status.success()),
                "{bin} is missing: apt-get install openvswitch-switch"
            );
        }
        let dir = std::env::temp_dir().join(format!("proto-ovs-meter.{}", std::process::id()));
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

/// The meters of a `dump-meters` reply, each block read back with `parse_meter`.
fn dumped_meters(dump: &str) -> Vec<Meter> {
    let body = dump.split_once('\n').map_or("", |(_, rest)| rest);
    body.split("\n\n")
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| parse_meter(b).unwrap_or_else(|e| panic!("dump-meters block {b:?}: {e}")))
        .collect()
}

#[test]
fn band_and_bands_read_as_open_vswitch_reads_them() {
    let ovs = Ovs::start();
    let accepted = [
        "meter=1,kbps,band=type=drop,rate=10000",
        "meter=2,kbps,bands=type=drop,rate=10000",
        "meter=3 pktps band=type=drop rate=100",
        "meter=4,kbps,burst,band=,type=drop,rate=5,burst_size=9",
        "meter=5,pktps,stats,band=type=drop,rate=7,type=drop,rate=70",
    ];
    for text in accepted {
        ovs.ok("ovs-ofctl", &["-O", "OpenFlow13", "add-meter", "br0", text]);
    }
    let mut theirs =
        dumped_meters(&ovs.ok("ovs-ofctl", &["-O", "OpenFlow13", "dump-meters", "br0"]));
    theirs.sort_by_key(|m| m.id);
    let ours: Vec<Meter> = accepted
        .iter()
        .map(|t| parse_meter(t).unwrap_or_else(|e| panic!("{t}: {e}")))
        .collect();
    assert_eq!(ours, theirs);

    // Refused by both: a band must start with its type and have a rate.
    for text in [
        "meter=6,kbps,band=rate=5",
        "meter=7,kbps,band=type=drop",
        "meter=8,kbps,band=type=drop,rate=1,color=red",
    ] {
        let out = ovs.run("ovs-ofctl", &["-O", "OpenFlow13", "add-meter", "br0", text]);
        assert!(!out.status.success(), "Open vSwitch took {text}");
        assert!(parse_meter(text).is_err(), "we took {text}");
    }
}
