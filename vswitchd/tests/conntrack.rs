//! Connection tracking through the real daemon with real TCP and ping between network
//! namespaces (AF_PACKET ports on veths): a stateful firewall (`ct(table=1)`, commit from
//! inside only), source NAT (masquerade) and destination NAT (a container's port 80
//! published on the host's 8080), and the `dump-conntrack`, `ct-stats` and
//! `flush-conntrack` commands that show them.

mod common;

use std::process::{Command, Output};

use common::{Daemon, Hosts};

/// A TCP server in host `i`'s namespace on `port`: accepts one connection and sends the
/// peer's address, then exits.
fn serve(h: &Hosts, i: usize, port: u16) -> std::process::Child {
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', {port}))\n\
         s.listen()\n\
         s.settimeout(20)\n\
         c, a = s.accept()\n\
         c.sendall(a[0].encode())\n\
         c.close()\n"
    );
    h.spawn(i, &["python3", "-c", &script])
}

/// Connects from host `i` to `addr:port` (retrying while the server starts, up to
/// `tries` times) and returns what the server sent; `Err` with the output when no
/// connection was made.
fn connect(h: &Hosts, i: usize, addr: &str, port: u16, tries: u32) -> Result<String, String> {
    let script = format!(
        "import socket, sys, time\n\
         for n in range({tries}):\n\
         \x20   try:\n\
         \x20       c = socket.create_connection(('{addr}', {port}), timeout=1.5)\n\
         \x20       print(c.recv(100).decode())\n\
         \x20       sys.exit(0)\n\
         \x20   except OSError as e:\n\
         \x20       err = e\n\
         \x20       time.sleep(0.2)\n\
         print(err)\n\
         sys.exit(1)\n"
    );
    let o = exec(h, i, &["python3", "-c", &script]);
    let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if o.status.success() {
        Ok(text)
    } else {
        Err(format!("{text}{}", String::from_utf8_lossy(&o.stderr)))
    }
}

/// Runs `args` in host `i`'s namespace, success or not.
fn exec(h: &Hosts, i: usize, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &h.ns[i - 1]])
        .args(args)
        .output()
        .expect("ip netns exec (iproute2, python3)")
}

fn ping(h: &Hosts, from: usize, to: &str) -> bool {
    exec(h, from, &["ping", "-c", "2", "-i", "0.2", "-W", "1", to])
        .status
        .success()
}

fn mac(h: &Hosts, i: usize) -> String {
    h.exec(
        i,
        &["cat", &format!("/sys/class/net/{}/address", h.inner(i))],
    )
    .trim()
    .to_string()
}

/// Bridge `br0` with host 1 on port 1 and host 2 on port 2, ARP switched normally.
fn setup(d: &Daemon, h: &Hosts) {
    d.ok(&["del-flows", "br0"]);
    d.ok(&["add-flow", "br0", "priority=10,arp,actions=NORMAL"]);
    for (i, p) in h.ports.iter().enumerate() {
        let req = format!("ofport_request={}", i + 1);
        d.ok(&["add-port", "br0", p, "type=afpacket", &req]);
    }
}

#[test]
fn a_stateful_firewall_lets_inside_connect_and_drops_new_connections_from_outside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new("ctf", 73, 2);
    setup(&d, &h);
    for f in [
        "table=0,priority=100,ip,ct_state=-trk,actions=ct(table=1)",
        "table=1,priority=100,ip,ct_state=+trk+new,in_port=1,actions=ct(commit),output:2",
        "table=1,priority=100,ct_state=+trk+est,in_port=1,actions=output:2",
        "table=1,priority=100,ct_state=+trk+est,in_port=2,actions=output:1",
    ] {
        d.ok(&["add-flow", "br0", f]);
    }
    let dump = d.ok(&["dump-flows", "br0", "--no-stats"]);
    assert!(
        dump.contains("ct_state=-trk,ip actions=ct(table=1)")
            && dump.contains("ct_state=+new+trk,ip,in_port=1 actions=ct(commit),output:2"),
        "{dump}"
    );
    let (in_addr, out_addr) = (h.addr(1), h.addr(2));

    // Ping and TCP from inside work, the answers come back.
    assert!(ping(&h, 1, &out_addr), "ping from inside");
    let server = serve(&h, 2, 8080);
    assert_eq!(connect(&h, 1, &out_addr, 8080, 25), Ok(in_addr.clone()));
    common::finish(server);

    // New connections from outside are dropped: ping and TCP.
    assert!(!ping(&h, 2, &in_addr), "ping from outside must be dropped");
    let mut server = serve(&h, 1, 9090);
    let r = connect(&h, 2, &in_addr, 9090, 2);
    assert!(r.is_err(), "TCP from outside must be dropped: {r:?}");
    let _ = server.kill();
    let _ = server.wait();

    // The tracker shows the connections from inside, in Open vSwitch's format.
    let ct = d.ok(&["dump-conntrack", "br0"]);
    let tcp = format!("tcp,orig=(src={in_addr},dst={out_addr},");
    assert!(ct.contains(&tcp), "{ct}");
    assert!(
        ct.contains(&format!("icmp,orig=(src={in_addr},dst={out_addr},id=")),
        "{ct}"
    );
    assert!(
        !ct.contains(&format!("orig=(src={out_addr},dst={in_addr}")),
        "nothing from outside was committed: {ct}"
    );
    let stats = d.json(&["ct-stats", "br0"]);
    let created = stats["stats"][0]["counters"]["created"]
        .as_u64()
        .unwrap_or(0);
    assert!(created >= 2, "{stats}");
    d.ok(&["flush-conntrack", "br0"]);
    assert_eq!(d.ok(&["dump-conntrack", "br0"]), "");
}

#[test]
fn masquerade_and_port_publishing_through_nat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    // Host 1 is a container on a private address, host 2 the world; 10.74.0.100 is the
    // host's public address, which the world reaches at host 1's MAC address.
    let h = Hosts::new("ctn", 74, 2);
    setup(&d, &h);
    let (private, world, public) = (h.addr(1), h.addr(2), "10.74.0.100".to_string());
    let dev2 = h.inner(2).to_string();
    let mac1 = mac(&h, 1);
    h.exec(
        2,
        &[
            "ip",
            "neigh",
            "replace",
            &public,
            "lladdr",
            &mac1,
            "dev",
            &dev2,
            "nud",
            "permanent",
        ],
    );

    // Masquerade: what the container opens leaves with the public address.
    for f in [
        format!("table=0,priority=100,ip,in_port=1,actions=ct(commit,nat(src={public})),output:2"),
        "table=0,priority=100,ip,in_port=2,actions=ct(nat,table=1)".to_string(),
        "table=1,priority=100,ct_state=+trk+est,actions=output:1".to_string(),
    ] {
        d.ok(&["add-flow", "br0", &f]);
    }
    for port in [8081, 8082, 8083] {
        let server = serve(&h, 2, port);
        assert_eq!(
            connect(&h, 1, &world, port, 25),
            Ok(public.clone()),
            "the world sees only the public address"
        );
        common::finish(server);
    }
    let ct = d.ok(&["dump-conntrack", "br0"]);
    assert!(
        ct.contains(&format!("tcp,orig=(src={private},dst={world},"))
            && ct.contains(&format!("reply=(src={world},dst={public},")),
        "{ct}"
    );

    // Port publishing: the world reaches the container's port 80 at public:8080.
    d.ok(&["del-flows", "br0"]);
    d.ok(&["flush-conntrack"]);
    d.ok(&["add-flow", "br0", "priority=10,arp,actions=NORMAL"]);
    for f in [
        format!(
            "table=0,priority=100,tcp,in_port=2,nw_dst={public},tp_dst=8080,actions=ct(commit,nat(dst={private}:80)),output:1"
        ),
        "table=0,priority=100,ip,in_port=1,actions=ct(nat,table=1)".to_string(),
        "table=1,priority=100,ct_state=+trk+est,actions=output:2".to_string(),
    ] {
        d.ok(&["add-flow", "br0", &f]);
    }
    let server = serve(&h, 1, 80);
    assert_eq!(
        connect(&h, 2, &public, 8080, 25),
        Ok(world.clone()),
        "the container sees the world's address"
    );
    common::finish(server);
    let ct = d.ok(&["dump-conntrack", "br0"]);
    assert!(
        ct.contains(&format!("tcp,orig=(src={world},dst={public},sport="))
            && ct.contains(&format!("reply=(src={private},dst={world},sport=80,")),
        "{ct}"
    );
}
