//! PORT_MOD over OpenFlow, driven by the real `ovs-ofctl -O OpenFlow13 mod-port`: each of
//! `down`, `no-receive`, `no-forward`, `no-packet-in` shows in `show` and
//! `dump-ports-desc`, changes what the in-memory ports pass (the drops counted by reason in
//! `pmd-stats`), reaches a connected `ovs-ofctl monitor` as a PORT_STATUS (MOD), and `up`
//! / the opposite words undo it. Over a raw connection: an unknown port is BAD_PORT, a bit
//! OpenFlow 1.3 does not define BAD_CONFIG, and only the masked bits change. `flowctl
//! mod-port` (gRPC ModPort) sets the same bits, and a restart clears them (not stored).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;
use common::Daemon;

use proto::openflow::error::{OfpError, port_mod_failed};
use proto::openflow::header::{self, MsgType, Version};
use proto::openflow::hello::{Hello, VersionSet};
use proto::openflow::ids::PortNo;
use proto::openflow::message::{self, Message};
use proto::openflow::port::{PortMod, config};
use proto::v1;
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

const INSTALL: &str = "install openvswitch-common (ovs-ofctl) to run this test";

struct Rig {
    dir: tempfile::TempDir,
    sw: Arc<Switch>,
    target: String,
    _rt: tokio::runtime::Runtime,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Rig {
    /// Bridge `br` with in-memory ports p1 (1), p2 (2), p3 (3), listening on `punix:`.
    fn start() -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("conf.db")).expect("store");
        let sw = Switch::start(store, SwitchConfig::default()).expect("switch");
        sw.add_bridge(v1::AddBridgeRequest {
            name: "br".into(),
            fail_mode: v1::FailMode::Secure as i32,
            ..Default::default()
        })
        .expect("bridge");
        for i in 1..=3u32 {
            sw.add_port(v1::AddPortRequest {
                bridge: "br".into(),
                port: Some(v1::PortConfig {
                    name: format!("p{i}"),
                    r#type: "memory".into(),
                    requested_ofport: Some(i),
                    ..Default::default()
                }),
            })
            .expect("port");
        }
        let sock = dir.path().join("br.ofp");
        sw.set_controller(v1::SetControllerRequest {
            bridge: "br".into(),
            controllers: vec![v1::Controller {
                target: format!("punix:{}", sock.display()),
                ..Default::default()
            }],
        })
        .expect("controller");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        rt.spawn(vswitchd::openflow::serve(Arc::clone(&sw), None, stop_rx));
        wait_for(&sock);
        Rig {
            target: format!("unix:{}", sock.display()),
            dir,
            sw,
            _rt: rt,
            _stop: stop,
        }
    }

    /// `ovs-ofctl` killed (SIGTERM: it flushes what it printed) after `secs` seconds.
    fn command(&self, secs: u32, args: &[&str]) -> Command {
        ofctl_command(self.dir.path(), &self.target, secs, args)
    }

    /// `ovs-ofctl -O OpenFlow13 ARGS` (`SW`: the switch): success and stdout + stderr.
    fn ofctl_any(&self, args: &[&str]) -> (bool, String) {
        let o = self
            .command(20, args)
            .output()
            .unwrap_or_else(|e| panic!("ovs-ofctl: {e} ({INSTALL})"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.success(), text)
    }

    fn ofctl(&self, args: &[&str]) -> String {
        let (ok, out) = self.ofctl_any(args);
        assert!(ok, "ovs-ofctl {args:?} failed: {out}");
        out
    }

    /// The `config:` line of port `name` in `ovs-ofctl show`.
    fn shown_config(&self, name: &str) -> String {
        config_of(&self.ofctl(&["show", "SW"]), name)
    }

    fn drops(&self, reason: &str) -> u64 {
        (self.sw.pmd_stats().iter())
            .filter(|p| p.bridge == "br")
            .map(|p| p.drops.get(reason).copied().unwrap_or(0))
            .sum()
    }

    /// Injects `n` frames on port `from`; returns how many each of the other ports sent,
    /// once the drops and sends have settled.
    fn send(&self, from: u32, n: usize) -> [usize; 3] {
        let p = self
            .sw
            .memory_port("br", &format!("p{from}"))
            .expect("port");
        let f = frame(from as u8);
        assert_eq!(p.inject(std::iter::repeat_n(f, n)), n);
        std::thread::sleep(Duration::from_millis(300));
        let mut got = [0; 3];
        for (i, g) in got.iter_mut().enumerate() {
            let q = self
                .sw
                .memory_port("br", &format!("p{}", i + 1))
                .expect("port");
            *g = q.drain().len();
        }
        got
    }
}

/// `ovs-ofctl -O OpenFlow13 ARGS` (`SW`: `target`), its files in `dir`, killed after
/// `secs` seconds.
fn ofctl_command(dir: &Path, target: &str, secs: u32, args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.arg(secs.to_string())
        .arg("ovs-ofctl")
        .args(["-O", "OpenFlow13"])
        .args(args.iter().map(|a| a.replace("SW", target)));
    for v in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
        c.env(v, dir);
    }
    c
}

/// `ovs-ofctl show` of `target`; must succeed.
fn show(dir: &Path, target: &str) -> String {
    let o = ofctl_command(dir, target, 20, &["show", "SW"])
        .output()
        .unwrap_or_else(|e| panic!("ovs-ofctl: {e} ({INSTALL})"));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "ovs-ofctl show: {text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    text
}

fn frame(src: u8) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xee]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    f
}

fn wait_for(p: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        assert!(Instant::now() < deadline, "no listener at {}", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The `config:` line after port `name`'s heading (` 1(p1): addr:...`).
fn config_of(show: &str, name: &str) -> String {
    let head = format!("({name}):");
    let mut lines = show.lines().skip_while(|l| !l.contains(&head)).skip(1);
    lines
        .find(|l| l.trim_start().starts_with("config:"))
        .unwrap_or_else(|| panic!("no config of {name} in:\n{show}"))
        .trim()
        .to_string()
}

#[test]
fn mod_port_shows_in_show_and_port_desc_and_drops_as_configured() {
    let r = Rig::start();
    r.ofctl(&["add-flow", "SW", "in_port=1,actions=output:2"]);
    r.ofctl(&["add-flow", "SW", "in_port=2,actions=output:1"]);
    r.ofctl(&["add-flow", "SW", "in_port=3,actions=controller"]);
    assert_eq!(r.shown_config("p2"), "config:     0");
    assert_eq!(r.send(1, 5), [0, 5, 0]);

    // no-forward: what is output to p2 is dropped; p2 still receives.
    r.ofctl(&["mod-port", "SW", "p2", "no-forward"]);
    assert_eq!(r.shown_config("p2"), "config:     NO_FWD");
    let desc = r.ofctl(&["dump-ports-desc", "SW"]);
    assert_eq!(config_of(&desc, "p2"), "config:     NO_FWD", "{desc}");
    assert_eq!(r.send(1, 5), [0, 0, 0]);
    assert_eq!(r.drops("drop_port_no_fwd"), 5);
    assert_eq!(r.send(2, 4), [4, 0, 0]);
    r.ofctl(&["mod-port", "SW", "p2", "forward"]);
    assert_eq!(r.shown_config("p2"), "config:     0");
    assert_eq!(r.send(1, 5), [0, 5, 0]);

    // no-receive: what p2 receives is dropped; it still sends.
    r.ofctl(&["mod-port", "SW", "p2", "no-receive"]);
    assert_eq!(r.shown_config("p2"), "config:     NO_RECV");
    assert_eq!(r.send(2, 3), [0, 0, 0]);
    assert_eq!(r.drops("drop_port_no_recv"), 3);
    assert_eq!(r.send(1, 2), [0, 2, 0]);
    r.ofctl(&["mod-port", "SW", "p2", "receive"]);

    // down: neither.
    r.ofctl(&["mod-port", "SW", "p2", "down"]);
    assert_eq!(r.shown_config("p2"), "config:     PORT_DOWN");
    assert_eq!(r.send(2, 3), [0, 0, 0]);
    assert_eq!(r.send(1, 3), [0, 0, 0]);
    assert_eq!(r.drops("drop_port_down"), 6);
    r.ofctl(&["mod-port", "SW", "p2", "up"]);
    assert_eq!(r.shown_config("p2"), "config:     0");
    assert_eq!(r.send(2, 3), [3, 0, 0]);

    // no-packet-in: what p3 receives makes no packet-in.
    r.ofctl(&["mod-port", "SW", "3", "no-packet-in"]);
    assert_eq!(r.shown_config("p3"), "config:     NO_PACKET_IN");
    r.send(3, 4);
    assert_eq!(r.drops("drop_port_no_packet_in"), 4);
    r.ofctl(&["mod-port", "SW", "p3", "packet-in"]);
    assert_eq!(r.shown_config("p3"), "config:     0");
}

#[test]
fn mod_port_sends_port_status_to_a_connected_monitor() {
    let r = Rig::start();
    let mon = r
        // A service connection gets asynchronous messages once it sets a miss length, as
        // in Open vSwitch.
        .command(3, &["monitor", "SW", "65535"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("ovs-ofctl monitor: {e} ({INSTALL})"));
    std::thread::sleep(Duration::from_millis(700));
    r.ofctl(&["mod-port", "SW", "p1", "no-forward"]);
    // Not a change: no second message.
    r.ofctl(&["mod-port", "SW", "p1", "no-forward"]);
    let out = mon.wait_with_output().expect("monitor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let statuses: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("OFPT_PORT_STATUS"))
        .collect();
    assert_eq!(statuses.len(), 1, "{text}");
    assert!(statuses[0].contains("MOD: 1(p1)"), "{text}");
    assert_eq!(config_of(&text, "p1"), "config:     NO_FWD", "{text}");
}

/// A raw OpenFlow 1.3 connection to the rig's listener (for what `ovs-ofctl` checks on
/// its own side before sending: unknown ports, addresses, undefined bits).
struct Raw {
    s: std::os::unix::net::UnixStream,
    buf: Vec<u8>,
    xid: u32,
}

impl Raw {
    fn connect(r: &Rig) -> Raw {
        use std::io::Write;
        let path = r.target.trim_start_matches("unix:");
        let s = std::os::unix::net::UnixStream::connect(path).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let mut raw = Raw {
            s,
            buf: Vec::new(),
            xid: 1,
        };
        let mut hello = Vec::new();
        Hello::emit_ours(VersionSet::of(&[Version::V1_3]), 1, &mut hello).expect("hello");
        raw.s.write_all(&hello).expect("hello");
        assert_eq!(raw.recv()[1], MsgType::HELLO.0);
        raw
    }

    fn send(&mut self, m: &Message<'_>) {
        use std::io::Write;
        self.xid += 1;
        let mut out = Vec::new();
        m.emit(Version::V1_3, self.xid, &mut out).expect("emit");
        self.s.write_all(&out).expect("send");
    }

    fn recv(&mut self) -> Vec<u8> {
        use std::io::Read;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(len)) = header::frame_len(&self.buf) {
                return self.buf.drain(..len).collect();
            }
            assert!(Instant::now() < deadline, "no answer from the switch");
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("the switch closed the connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => {}
            }
        }
    }

    /// Sends a PORT_MOD and a barrier: the error it caused, `None` if it was accepted.
    fn port_mod(&mut self, port: u32, hw: [u8; 6], config: u32, mask: u32) -> Option<OfpError> {
        self.send(&Message::PortMod(PortMod {
            port_no: PortNo(port),
            hw_addr: hw,
            config,
            mask,
            advertise: 0,
        }));
        self.send(&Message::BarrierRequest);
        let mut err = None;
        loop {
            let m = self.recv();
            match message::parse(&m).expect("parses") {
                (_, Message::Error(e)) => err = Some(e.error),
                (_, Message::BarrierReply) => return err,
                _ => {}
            }
        }
    }
}

#[test]
fn port_mod_refuses_unknown_ports_and_bits_and_applies_the_mask() {
    let r = Rig::start();
    let mut c = Raw::connect(&r);
    let hw = [0; 6];
    assert_eq!(
        c.port_mod(9, hw, config::PORT_DOWN, config::PORT_DOWN),
        Some(port_mod_failed::BAD_PORT)
    );
    // OFPPC_NO_STP (OpenFlow 1.0) is not an OpenFlow 1.3 bit.
    assert_eq!(
        c.port_mod(1, hw, 1 << 1, 1 << 1),
        Some(port_mod_failed::BAD_CONFIG)
    );
    // Both bits given, only the masked one changes.
    assert_eq!(
        c.port_mod(1, hw, config::NO_FWD | config::NO_RECV, config::NO_FWD),
        None
    );
    assert_eq!(r.shown_config("p1"), "config:     NO_FWD");
    assert_eq!(c.port_mod(1, hw, 0, config::NO_FWD), None);
    assert_eq!(r.shown_config("p1"), "config:     0");
}

#[test]
fn flowctl_mod_port_shows_in_ovs_ofctl_and_a_restart_clears_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("br0.ofp");
    let target = format!("unix:{}", sock.display());
    let mut d = Daemon::start(dir.path());
    d.ok(&[
        "set-controller",
        "br0",
        &format!("punix:{}", sock.display()),
    ]);
    d.ok(&["add-port", "br0", "p1", "type=memory", "ofport_request=1"]);
    wait_for(&sock);
    d.ok(&["mod-port", "br0", "p1", "no-forward"]);
    d.ok(&["mod-port", "br0", "p1", "no-packet-in"]);
    assert_eq!(
        config_of(&show(dir.path(), &target), "p1"),
        "config:     NO_FWD NO_PACKET_IN"
    );
    d.ok(&["mod-port", "br0", "p1", "forward"]);
    d.ok(&["mod-port", "br0", "p1", "down"]);
    assert_eq!(
        config_of(&show(dir.path(), &target), "p1"),
        "config:     PORT_DOWN NO_PACKET_IN"
    );
    // Refused: an unknown word (usage, exit 2), an unknown port.
    let o = d.fc(&["mod-port", "br0", "p1", "sideways"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = d.fc(&["mod-port", "br0", "nope", "down"]);
    assert!(!o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope"), "{o:?}");
    // Not stored, as in Open vSwitch: a restart brings the port back up.
    d.kill9();
    let _d = Daemon::start(dir.path());
    wait_for(&sock);
    assert_eq!(config_of(&show(dir.path(), &target), "p1"), "config:     0");
}
