//! Faucet (PyPI, with Gauge, its statistics companion, as a second connection) controls the
//! switch over OpenFlow 1.3: five hosts in network namespaces on AF_PACKET ports, two VLANs
//! and an ACL from Faucet's configuration. Hosts reach each other within a VLAN and not
//! across, the ACL drops what it names, Faucet's learning flows show in `flowctl
//! dump-flows`; Gauge's port statistics arrive; with Faucet killed (fail mode secure) the
//! learned traffic still flows, and when it comes back the switch reconnects and resyncs
//! without losing a ping. Needs root (namespaces, veths).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use common::pyvenv::openflow_venv;
use common::{Daemon, Hosts};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Office: hosts 1-3 (VLAN 100), host 1 may not ping host 3. Guest: hosts 4-5 (VLAN 200).
fn faucet_yaml(net: u8) -> String {
    format!(
        "\
vlans:
  office:
    vid: 100
  guest:
    vid: 200
acls:
  no-ping-to-h3:
    - rule:
        dl_type: 0x800
        ip_proto: 1
        nw_dst: 10.{net}.0.3
        actions:
          allow: 0
    - rule:
        actions:
          allow: 1
dps:
  sw1:
    dp_id: 0x1
    hardware: \"Open vSwitch\"
    interfaces:
      1:
        native_vlan: office
        acls_in: [no-ping-to-h3]
      2:
        native_vlan: office
      3:
        native_vlan: office
      4:
        native_vlan: guest
      5:
        native_vlan: guest
"
    )
}

fn gauge_yaml(dir: &Path) -> String {
    format!(
        "\
faucet_configs:
  - {faucet}
watchers:
  port_stats:
    dps: ['sw1']
    type: 'port_stats'
    interval: 1
    db: 'stats_file'
dbs:
  stats_file:
    type: 'text'
    file: '{stats}'
",
        faucet = dir.join("faucet.yaml").display(),
        stats = dir.join("port_stats.txt").display(),
    )
}

/// Faucet (or Gauge) listening on 127.0.0.1:`port`, logs in `dir`.
fn controller(venv: &Path, dir: &Path, gauge: bool, port: u16) -> Kill {
    let name = if gauge { "gauge" } else { "faucet" };
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::fs::File::create(dir.join(format!("{name}.out"))).expect("log");
    let mut c = Command::new(venv.join("bin").join(name));
    c.env("PATH", path)
        .env("FAUCET_CONFIG", dir.join("faucet.yaml"))
        .env("GAUGE_CONFIG", dir.join("gauge.yaml"))
        .env("FAUCET_LOG", dir.join("faucet.log"))
        .env("FAUCET_EXCEPTION_LOG", dir.join("faucet.exception"))
        .env("GAUGE_LOG", dir.join("gauge.log"))
        .env("GAUGE_EXCEPTION_LOG", dir.join("gauge.exception"))
        .env("FAUCET_PROMETHEUS_ADDR", "127.0.0.1")
        .env("FAUCET_PROMETHEUS_PORT", free_port().to_string())
        .env("GAUGE_PROMETHEUS_ADDR", "127.0.0.1")
        .env("GAUGE_PROMETHEUS_PORT", free_port().to_string())
        .arg("--ryu-ofp-listen-host=127.0.0.1")
        .arg(format!("--ryu-ofp-tcp-listen-port={port}"))
        .stdout(Stdio::null())
        .stderr(out);
    Kill(c.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}")))
}

/// Pings `addr` from host `from`: true if every echo came back.
fn ping(h: &Hosts, from: usize, addr: &str, count: u32) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &h.ns[from - 1], "ping", "-q", "-c"])
        .arg(count.to_string())
        .args(["-i", "0.2", "-W", "1", addr])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn mac_of(h: &Hosts, i: usize) -> String {
    let out = h.exec(i, &["ip", "-o", "link", "show", "dev", h.inner(i)]);
    out.split("link/ether ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("a MAC address")
        .to_string()
}

fn wait_until(what: &str, secs: u64, dir: &Path, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() > deadline {
            let mut logs = String::new();
            for f in ["faucet.log", "gauge.log", "gauge.out", "faucet.out"] {
                let log = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(15)..];
                logs.push_str(&format!("--- {f} ends:\n{}\n", tail.join("\n")));
            }
            panic!("timed out waiting for {what}\n{logs}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn faucet_vlans_acl_learning_and_secure_restart() {
    let venv = openflow_venv();
    let dir = tempfile::tempdir().expect("tempdir");
    let dirp: PathBuf = dir.path().to_path_buf();
    let net = 61;
    let h = Hosts::new("fc", net, 5);
    let d = Daemon::start(&dirp);
    d.ok(&["add-br", "sw1", "fail_mode=secure", "datapath_id=0x1"]);
    for (i, p) in h.ports.iter().enumerate() {
        let ofport = format!("ofport_request={}", i + 1);
        d.ok(&["add-port", "sw1", p, "type=afpacket", &ofport]);
    }
    std::fs::write(dirp.join("faucet.yaml"), faucet_yaml(net)).expect("faucet.yaml");
    std::fs::write(dirp.join("gauge.yaml"), gauge_yaml(&dirp)).expect("gauge.yaml");
    let (fport, gport) = (free_port(), free_port());
    let faucet = controller(&venv, &dirp, false, fport);
    let _gauge = controller(&venv, &dirp, true, gport);
    let ft = format!("tcp:127.0.0.1:{fport}");
    let gt = format!("tcp:127.0.0.1:{gport}");
    d.ok(&["set-controller", "sw1", &ft, &gt, "max_backoff=1000"]);
    let addr = |i: usize| h.addr(i);

    // Within a VLAN (Faucet needs a moment to program the switch).
    wait_until("h1 to reach h2", 30, &dirp, || ping(&h, 1, &addr(2), 1));
    assert!(ping(&h, 2, &addr(3), 3), "h2 -> h3 (office)");
    assert!(ping(&h, 4, &addr(5), 3), "h4 -> h5 (guest)");
    // Not across VLANs, and not what the ACL names.
    assert!(!ping(&h, 1, &addr(4), 2), "h1 -> h4 crosses VLANs");
    assert!(!ping(&h, 5, &addr(2), 2), "h5 -> h2 crosses VLANs");
    assert!(!ping(&h, 1, &addr(3), 2), "the ACL lets h1 ping h3");

    // Faucet's learning flows are ordinary flows: flowctl lists them.
    let h1 = mac_of(&h, 1);
    let flows = d.ok(&["dump-flows", "sw1"]);
    let learned: Vec<&str> = flows.lines().filter(|l| l.contains(&h1)).collect();
    assert!(
        learned.iter().any(|l| l.contains("table=2,"))
            && learned.iter().any(|l| l.contains("table=3,")),
        "no eth_src/eth_dst flows for h1 ({h1}) in:\n{flows}"
    );
    // Both connections are up, and Gauge polls port statistics over the second.
    let show = d.ok(&["show", "sw1"]);
    assert_eq!(show.matches("is_connected:true").count(), 2, "{show}");
    wait_until("Gauge's port statistics", 20, &dirp, || {
        std::fs::read_to_string(dirp.join("port_stats.txt"))
            .is_ok_and(|s| s.lines().any(|l| l.contains("sw1-1-packets-in")))
    });

    // Faucet dies: secure mode keeps the flows, learned traffic still flows.
    drop(faucet);
    wait_until("the switch to see Faucet gone", 20, &dirp, || {
        d.ok(&["show", "sw1"]).matches("is_connected:true").count() == 1
    });
    assert!(
        ping(&h, 1, &addr(2), 3),
        "learned traffic stopped without Faucet"
    );

    // Faucet comes back while h1 pings h2 every 50 ms: the switch reconnects, Faucet
    // programs it again from scratch, and no echo is lost.
    let starts = || {
        std::fs::read_to_string(dirp.join("faucet.log"))
            .unwrap_or_default()
            .matches("Cold start configuring DP")
            .count()
    };
    assert_eq!(starts(), 1);
    let pinger = Command::new("ip")
        .args([
            "netns", "exec", &h.ns[0], "ping", "-q", "-i", "0.05", "-w", "60", "-W", "1",
        ])
        .arg(addr(2))
        .stdout(Stdio::piped())
        .spawn()
        .expect("ping");
    std::thread::sleep(Duration::from_millis(500));
    let _faucet = controller(&venv, &dirp, false, fport);
    wait_until(
        "Faucet to reconnect and program the switch again",
        40,
        &dirp,
        || starts() == 2 && d.ok(&["show", "sw1"]).matches("is_connected:true").count() == 2,
    );
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(pinger.id().to_string())
        .status();
    let out = pinger.wait_with_output().expect("ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(" received, 0% packet loss"),
        "pings lost across Faucet's restart:\n{text}"
    );
    wait_until("h2 to reach h1 after the resync", 20, &dirp, || {
        ping(&h, 2, &addr(1), 1)
    });
    assert!(
        !ping(&h, 1, &addr(3), 2),
        "the ACL is gone after the resync"
    );
}
