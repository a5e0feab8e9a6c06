//! Kernel-facing ports with real peers: network namespaces with real IP stacks ping each
//! other through the switch. Needs root and `ip` (iproute2); fails, never skips, without them.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::FlowKey;
use datapath::l2::VlanMode;
use datapath::pipeline::{Datapath, DatapathConfig};
use datapath::port::{Port, TapPort};
use datapath::types::{PortNo, TableId};

fn ip(args: &[&str]) {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("running `ip`: install iproute2 (apt-get install iproute2)");
    assert!(
        o.status.success(),
        "ip {args:?} failed: {} (these tests need root)",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Namespaces removed when the test ends, whatever happens.
struct Netns(Vec<String>);

impl Netns {
    fn new(names: &[String]) -> Netns {
        for n in names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
            ip(&["netns", "add", n]);
        }
        Netns(names.to_vec())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

/// A bridge with `actions=normal` and a poll thread, stopped on drop.
struct Switch {
    dp: Datapath,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Switch {
    fn new(ports: Vec<Arc<dyn Port>>) -> Switch {
        let (dp, _pi) = Datapath::new(DatapathConfig::default());
        for (i, p) in ports.into_iter().enumerate() {
            dp.add_port(PortNo(i as u32 + 1), p, VlanMode::default())
                .expect("add port");
        }
        dp.flow_mods(&[FlowMod::Add {
            spec: FlowSpec {
                table: TableId(0),
                priority: 0,
                key: FlowKey::ZERO,
                mask: FlowKey::ZERO,
                cookie: 0,
                idle_timeout_s: 0,
                hard_timeout_s: 0,
                send_flow_removed: false,
                instructions: Instructions::actions(vec![Action::Normal]),
            },
            check_overlap: false,
        }])
        .expect("normal flow");
        let stop = Arc::new(AtomicBool::new(false));
        let mut pmd = dp.new_pmd();
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if pmd.poll_once() == 0 {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        });
        Switch {
            dp,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn two_namespaces_ping_each_other_through_tap_ports() {
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsta{id}"), format!("vstb{id}"));
    let (ta, tb) = (format!("vta{id}"), format!("vtb{id}"));
    let _ns = Netns::new(&[na.clone(), nb.clone()]);
    let pa = Arc::new(TapPort::create(&ta).expect("TAP a (needs root and /dev/net/tun)"));
    let pb = Arc::new(TapPort::create(&tb).expect("TAP b"));
    // The devices move into the namespaces; our file descriptors keep working.
    for (t, n, addr) in [(&ta, &na, "10.93.0.1/24"), (&tb, &nb, "10.93.0.2/24")] {
        ip(&["link", "set", t, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", t]);
        ip(&["-n", n, "link", "set", t, "up"]);
    }
    let sw = Switch::new(vec![pa.clone(), pb.clone()]);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &na,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "10.93.0.2",
        ])
        .output()
        .expect("ping (iputils-ping)");
    assert!(
        out.status.success(),
        "ping through TAP ports failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The switch learned both hosts on the right ports, and counted the traffic.
    let macs = sw
        .dp
        .mac_table()
        .entries((sw.dp.now_ns() / 1_000_000_000) as u32);
    let ports: Vec<u32> = macs.iter().map(|e| e.port.0).collect();
    assert!(ports.contains(&1) && ports.contains(&2), "{macs:?}");
    assert!(pa.stats().rx_packets >= 3 && pb.stats().tx_packets >= 3);
    drop(sw);
}

/// Veth pairs removed when the test ends (deleting one end removes both).
struct Veths(Vec<String>);

impl Drop for Veths {
    fn drop(&mut self) {
        for v in &self.0 {
            let _ = Command::new("ip").args(["link", "del", v]).output();
        }
    }
}

#[test]
fn two_namespaces_ping_each_other_through_af_packet_ports() {
    use datapath::port::AfPacketPort;
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vspa{id}"), format!("vspb{id}"));
    let (va, vb) = (format!("vpa{id}"), format!("vpb{id}"));
    let _ns = Netns::new(&[na.clone(), nb.clone()]);
    let _veths = Veths(vec![va.clone(), vb.clone()]);
    for (v, n, addr) in [(&va, &na, "10.95.0.1/24"), (&vb, &nb, "10.95.0.2/24")] {
        let peer = format!("{v}p");
        ip(&["link", "add", v, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", &peer]);
        ip(&["-n", n, "link", "set", &peer, "up"]);
        ip(&["link", "set", v, "up"]);
    }
    let pa = Arc::new(AfPacketPort::open(&va).expect("AF_PACKET a (needs root)"));
    let pb = Arc::new(AfPacketPort::open(&vb).expect("AF_PACKET b"));
    let sw = Switch::new(vec![pa.clone(), pb.clone()]);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &na,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "10.95.0.2",
        ])
        .output()
        .expect("ping (iputils-ping)");
    assert!(
        out.status.success(),
        "ping through AF_PACKET ports failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let macs = sw
        .dp
        .mac_table()
        .entries((sw.dp.now_ns() / 1_000_000_000) as u32);
    let ports: Vec<u32> = macs.iter().map(|e| e.port.0).collect();
    assert!(ports.contains(&1) && ports.contains(&2), "{macs:?}");
    // Our own transmissions are not received back.
    assert!(pa.stats().rx_packets >= 3 && pb.stats().tx_packets >= 3);
    assert_eq!(
        sw.dp.pmd_counters()[0].drops_for(datapath::stats::DropReason::NormalSamePort),
        0
    );
    drop(sw);
}

fn ping_through_af_xdp(mode: datapath::port::XdpMode, tag: &str, net: u8) {
    use datapath::port::AfXdpPort;
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vx{tag}a{id}"), format!("vx{tag}b{id}"));
    let (va, vb) = (format!("x{tag}a{id}"), format!("x{tag}b{id}"));
    let _ns = Netns::new(&[na.clone(), nb.clone()]);
    let _veths = Veths(vec![va.clone(), vb.clone()]);
    for (v, n, host) in [(&va, &na, 1), (&vb, &nb, 2)] {
        let peer = format!("{v}p");
        ip(&["link", "add", v, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", n]);
        ip(&[
            "-n",
            n,
            "addr",
            "add",
            &format!("10.{net}.0.{host}/24"),
            "dev",
            &peer,
        ]);
        ip(&["-n", n, "link", "set", &peer, "up"]);
        ip(&["link", "set", v, "up"]);
    }
    let pa = Arc::new(AfXdpPort::open(&va, 1, mode).expect("AF_XDP a (needs root)"));
    let pb = Arc::new(AfXdpPort::open(&vb, 1, mode).expect("AF_XDP b"));
    let sw = Switch::new(vec![pa.clone(), pb.clone()]);
    let out = Command::new("ip")
        .args([
            "netns", "exec", &na, "ping", "-c", "3", "-i", "0.2", "-W", "2",
        ])
        .arg(format!("10.{net}.0.2"))
        .output()
        .expect("ping (iputils-ping)");
    assert!(
        out.status.success(),
        "ping through AF_XDP ports ({mode:?}, resolved {:?}) failed:\n{}{}",
        pa.mode(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pa.stats().rx_packets >= 3 && pb.stats().tx_packets >= 3);
    drop(sw);
    drop(pa);
    drop(pb);
    // The program is gone with the port.
    let show = Command::new("ip")
        .args(["link", "show", &va])
        .output()
        .expect("ip link show");
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(!show.contains("xdp"), "XDP program left behind: {show}");
}

#[test]
fn two_namespaces_ping_each_other_through_af_xdp_generic() {
    ping_through_af_xdp(datapath::port::XdpMode::Generic, "g", 97);
}

#[test]
fn two_namespaces_ping_each_other_through_af_xdp_native() {
    ping_through_af_xdp(datapath::port::XdpMode::Native, "n", 98);
}
