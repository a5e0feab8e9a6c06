//! VXLAN interop with the Linux kernel's VXLAN device: a namespace with
//! `ip link add vx0 type vxlan id 42 ...` on one side of the underlay, a namespace behind our
//! switch on the other; ping and iperf3 TCP in both directions; tshark decodes our packets
//! as VXLAN with the right VNI; the switch resolved the remote by ARP itself.
//! Also GRE (against scapy and Open vSwitch userspace), overlays between two instances of
//! our switch, and tunnel ports following their endpoint: one file per subject.

#[path = "../common/mod.rs"]
mod common;

mod endpoint;
mod gre;
mod kernel;
mod overlay;

use std::process::Command;
use std::time::Duration;

use common::{Daemon, finish, run};

struct Ns(Vec<String>, Vec<String>);
impl Drop for Ns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
        for l in &self.1 {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
    }
}

fn in_ns(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Our switch on a tunnel: `br1` holds the underlay port `underlay` (AF_XDP, `normal`, its
/// poll thread on CPU 0) and the tunnel endpoint `tep` (A.B.C.D/N); `br0` holds the tunnel
/// port `tunnel` (`ty`, to `remote` with `key`) and the host's port `host`.
#[allow(clippy::too_many_arguments)]
fn tunnel_switch(
    d: &Daemon,
    underlay: &str,
    tep: &str,
    ty: &str,
    tunnel: &str,
    remote: &str,
    key: &str,
    host: &str,
) {
    d.ok(&["add-br", "br1"]);
    // Each bridge's poll thread on its own CPU: the packets cross from one to the other.
    d.ok(&["set-pmd-cpus", "br1", "0"]);
    d.ok(&["add-port", "br1", underlay, "type=afxdp"]);
    d.ok(&["set-tunnel-ip", "br1", tep]);
    d.ok(&[
        "add-port",
        "br0",
        tunnel,
        &format!("type={ty}"),
        &format!("remote_ip={remote}"),
        &format!("key={key}"),
    ]);
    d.ok(&["add-port", "br0", host, "type=afxdp"]);
}

/// A remote and a local namespace for a tunnel test, named from `tag`, each holding one end
/// of a veth whose other end stays here for the switch: (remote, local, the remote's
/// underlay end here and inside, the local host's end here and inside). Removed on drop of
/// the returned guard.
#[allow(clippy::type_complexity)]
fn remote_and_local(tag: &str) -> (Ns, [String; 6]) {
    let id = std::process::id() % 100_000;
    let (remote, local) = (format!("{tag}r{id}"), format!("{tag}l{id}"));
    let (hu, uv) = (format!("{tag}u{id}h"), format!("{tag}u{id}v"));
    let (hl, lv) = (format!("{tag}w{id}h"), format!("{tag}w{id}v"));
    let guard = Ns(
        vec![remote.clone(), local.clone()],
        vec![hu.clone(), hl.clone()],
    );
    for (ns, h, v) in [(&remote, &hu, &uv), (&local, &hl, &lv)] {
        ns_with_veth(ns, h, v);
    }
    (guard, [remote, local, hu, uv, hl, lv])
}

/// A kernel VXLAN peer in namespace `ns`: underlay `uv` at `underlay`/24, the VXLAN device
/// `vx0` with `vni` towards our endpoint `tep`, and `overlay`/24 on it.
fn kernel_peer(ns: &str, uv: &str, underlay: &str, tep: &str, vni: &str, overlay: &str) {
    run(
        "ip",
        &[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{underlay}/24"),
            "dev",
            uv,
        ],
    );
    run(
        "ip",
        &[
            "-n", ns, "link", "add", "vx0", "type", "vxlan", "id", vni, "remote", tep, "local",
            underlay, "dstport", "4789", "dev", uv,
        ],
    );
    run(
        "ip",
        &[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{overlay}/24"),
            "dev",
            "vx0",
        ],
    );
    run("ip", &["-n", ns, "link", "set", "vx0", "up"]);
    in_ns(ns, &["ethtool", "-K", "vx0", "tx", "off"]);
}

/// A namespace `ns` holding veth end `v` (up, transmit checksum offload off), whose other
/// end `h` stays in this namespace, up.
fn ns_with_veth(ns: &str, h: &str, v: &str) {
    let _ = Command::new("ip").args(["netns", "del", ns]).output();
    run("ip", &["netns", "add", ns]);
    run("ip", &["link", "add", h, "type", "veth", "peer", "name", v]);
    run("ip", &["link", "set", v, "netns", ns]);
    run("ip", &["link", "set", h, "up"]);
    run("ip", &["-n", ns, "link", "set", v, "up"]);
    run("ip", &["-n", ns, "link", "set", "lo", "up"]);
    in_ns(ns, &["ethtool", "-K", v, "tx", "off"]);
}

fn ping_from(ns: &str, to: &str, d: &Daemon) {
    let o = Command::new("ip")
        .args([
            "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", to,
        ])
        .output()
        .expect("ping (apt-get install iputils-ping)");
    assert!(
        o.status.success(),
        "ping {ns} -> {to} failed:\n{}{}\ntnl: {}\nfdb br0: {}\nports: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        d.ok(&["tnl-neigh-show"]),
        d.ok(&["fdb-show", "br0"]),
        d.ok(&["dump-ports", "br0"]),
    );
}
