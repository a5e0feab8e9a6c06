//! Conntrack limits through the real daemon: a zone limit set with `flowctl ct-set-limits`
//! refuses the connection past it (real TCP between network namespaces, counted), reads back
//! with its count in `ovs-appctl dpctl/ct-get-limits`'s format, and survives a restart with
//! the other limits (`ct-set-maxconns`), as `ct-del-limits` removes it.

mod common;

use std::process::Command;

use common::{Daemon, Hosts};

/// Connects from host `i` to `addr:port` once (a second SYN within 1.5 s) and reports
/// whether the connection was made; the server in the other namespace accepts any number.
fn connects(h: &Hosts, i: usize, addr: &str, port: u16) -> bool {
    let script = format!(
        "import socket, sys\n\
         try:\n\
         \x20   c = socket.create_connection(('{addr}', {port}), timeout=1.5)\n\
         \x20   c.recv(10)\n\
         except OSError:\n\
         \x20   sys.exit(1)\n"
    );
    Command::new("ip")
        .args(["netns", "exec", &h.ns[i - 1], "python3", "-c", &script])
        .status()
        .expect("ip netns exec (iproute2, python3)")
        .success()
}

/// Waits (up to 10 s) until a socket listens on `port` in host `i`'s namespace.
fn listening(h: &Hosts, i: usize, port: u16) {
    let filter = format!("sport = :{port}");
    for _ in 0..200 {
        let out = Command::new("ip")
            .args(["netns", "exec", &h.ns[i - 1], "ss", "-Hltn", &filter])
            .output()
            .expect("ip netns exec ss (iproute2)");
        if !out.stdout.is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!(
        "nothing listens on port {port} in {} after 10 s",
        h.ns[i - 1]
    );
}

/// A TCP server in host `i`'s namespace that answers every connection and keeps it open
/// (the connections stay in the tracker).
fn serve(h: &Hosts, i: usize, port: u16) -> std::process::Child {
    let script = format!(
        "import socket, time\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', {port}))\n\
         s.listen()\n\
         s.settimeout(30)\n\
         held = []\n\
         while True:\n\
         \x20   c, a = s.accept()\n\
         \x20   c.sendall(b'hi')\n\
         \x20   held.append(c)\n"
    );
    h.spawn(i, &["python3", "-c", &script])
}

#[test]
fn a_zone_limit_refuses_the_connection_past_it_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut d = Daemon::start(dir.path());
    let h = Hosts::new("ctl", 132, 2);
    d.ok(&["del-flows", "br0"]);
    d.ok(&["add-flow", "br0", "priority=10,arp,actions=NORMAL"]);
    for (i, p) in h.ports.iter().enumerate() {
        let req = format!("ofport_request={}", i + 1);
        d.ok(&["add-port", "br0", p, "type=afpacket", &req]);
    }
    for f in [
        "table=0,priority=100,ip,ct_state=-trk,actions=ct(zone=5,table=1)",
        "table=1,priority=100,ip,ct_state=+trk+new,in_port=1,actions=ct(commit,zone=5),output:2",
        "table=1,priority=100,ip,ct_state=+trk+est,in_port=1,actions=output:2",
        "table=1,priority=100,ip,ct_state=+trk+est,in_port=2,actions=output:1",
    ] {
        d.ok(&["add-flow", "br0", f]);
    }

    // Bad input is refused whole: nothing of it applies.
    for bad in [
        &["ct-set-limits", "br0", "default=3", "zone=70000,limit=1"][..],
        &["ct-set-limits", "br0", "zone=5,limit=2", "zone=5,limit=3"],
        &["ct-set-limits", "nobr", "zone=5,limit=2"],
        &["ct-del-limits", "br0"],
        &["ct-set-maxconns", "br0", "4294967295"],
    ] {
        assert!(!d.fc(bad).status.success(), "{bad:?} accepted");
    }
    assert_eq!(d.ok(&["ct-get-limits", "br0"]), "default limit=0\n");

    d.ok(&["ct-set-limits", "br0", "zone=5,limit=2", "zone=9,limit=7"]);
    d.ok(&["ct-set-maxconns", "br0", "5000"]);
    let mut server = serve(&h, 2, 8080);
    let addr = h.addr(2);
    // Wait for the server to listen without knocking: a refused attempt would itself be a
    // tracked connection in zone 5 and use up the limit.
    listening(&h, 2, 8080);
    assert!(connects(&h, 1, &addr, 8080), "first connection");
    assert!(connects(&h, 1, &addr, 8080), "second connection");
    assert!(
        !connects(&h, 1, &addr, 8080),
        "the third connection in zone 5 must be refused"
    );
    let stats = d.json(&["ct-stats", "br0"]);
    let refused = stats["stats"][0]["counters"]["ct_refused_zone_limit"]
        .as_u64()
        .unwrap_or(0);
    assert!(refused >= 1, "{stats}");
    assert_eq!(
        d.ok(&["ct-get-limits", "br0", "zone=5"]),
        "default limit=0\nzone=5,limit=2,count=2\n"
    );
    assert_eq!(
        d.ok(&["ct-get-limits", "br0"]),
        "default limit=0\nzone=5,limit=2,count=2\nzone=9,limit=7,count=0\n"
    );
    let _ = server.kill();
    let _ = server.wait();

    d.term();
    let d = Daemon::start(dir.path());
    assert_eq!(
        d.ok(&["ct-get-limits", "br0"]),
        "default limit=0\nzone=5,limit=2,count=0\nzone=9,limit=7,count=0\n",
        "the limits are stored; the connections are not"
    );
    assert_eq!(d.ok(&["ct-get-maxconns", "br0"]), "5000\n");
    d.ok(&["ct-set-limits", "br0", "default=4"]);
    d.ok(&["ct-del-limits", "br0", "zone=9"]);
    assert_eq!(
        d.ok(&["ct-get-limits", "br0", "zone=9,5"]),
        "default limit=4\nzone=9,limit=4,count=0\nzone=5,limit=2,count=0\n"
    );
}
