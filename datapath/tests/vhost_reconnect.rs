//! A frontend that connects, sets everything up, and goes away 100 times in a row, in both
//! socket modes, leaves no descriptor and no mapping behind, and the port still carries
//! traffic afterwards; dropping the port leaves nothing either. (Its own test binary: it
//! counts the whole process's descriptors and mappings, so nothing may run beside it.)
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod vhost_guest;

use datapath::packet::BufPool;
use datapath::port::{Batch, Port, VhostMode, VhostUserPort};
use vhost_guest::*;

const FEATURES: u64 = VIRTIO_F_VERSION_1
    | VIRTIO_NET_F_MRG_RXBUF
    | VIRTIO_RING_F_EVENT_IDX
    | VIRTIO_RING_F_INDIRECT_DESC;

fn extra(p: &VhostUserPort, name: &str) -> u64 {
    let mut v = Vec::new();
    p.extra_stats(&mut v);
    v.iter().find(|(n, _)| *n == name).map(|x| x.1).unwrap()
}

fn one_frame_through(port: &VhostUserPort, g: &mut Guest, pool: &mut BufPool, seq: u32) {
    let f = frame([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1], seq, 100);
    g.tx(0, &f, 1, false);
    let mut got = None;
    wait_for("a frame", || {
        let mut b = Batch::new();
        port.rx_burst(0, &mut b, pool);
        if let Some(p) = b.pop() {
            got = Some(p.data().to_vec());
            pool.put(p);
        }
        got.is_some()
    });
    assert_eq!(got.unwrap(), f);
}

#[test]
fn hundred_reconnects_leak_nothing() {
    let dir = std::env::temp_dir().join(format!("vswitch-vhost-reconnect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut pool = BufPool::new(64);
    let (fds0, maps0) = (open_fds(), mappings());

    // Server mode: the guest connects.
    let path = dir.join("server.sock");
    let port = VhostUserPort::new("srv", &path, VhostMode::Server, 2).unwrap();
    let mut baseline = None;
    for i in 0..101u32 {
        let mut g = Guest::new(2);
        g.connect(&path, FEATURES);
        wait_for("the rings to start", || port.running());
        one_frame_through(&port, &mut g, &mut pool, i);
        let gone = extra(&port, "disconnects");
        drop(g);
        wait_for("the disconnect", || extra(&port, "disconnects") > gone);
        // The first round warms up what stays (thread stacks, pools).
        if i == 0 {
            baseline = Some((open_fds(), mappings()));
        }
    }
    let (fds1, maps1) = baseline.unwrap();
    assert_eq!(
        open_fds(),
        fds1,
        "descriptors leaked over 100 server-mode reconnections"
    );
    assert_eq!(
        mappings(),
        maps1,
        "mappings leaked over 100 server-mode reconnections"
    );
    assert_eq!(extra(&port, "connects"), 101);
    drop(port);
    assert!(!path.exists(), "the server socket is removed with the port");

    // Client mode: the switch connects to the frontend's socket, and keeps doing so.
    let path = dir.join("client.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let port = VhostUserPort::new("cli", &path, VhostMode::Client, 1).unwrap();
    let mut baseline = None;
    for i in 0..101u32 {
        let (stream, _) = listener.accept().unwrap();
        let mut g = Guest::new(1);
        g.attach(stream, FEATURES);
        wait_for("the rings to start", || port.running());
        one_frame_through(&port, &mut g, &mut pool, i);
        let gone = extra(&port, "disconnects");
        drop(g);
        wait_for("the disconnect", || extra(&port, "disconnects") > gone);
        if i == 0 {
            baseline = Some((open_fds(), mappings()));
        }
    }
    let (fds1, maps1) = baseline.unwrap();
    // The port may already hold its next connection (the listener's backlog).
    assert!(
        open_fds() <= fds1 + 1,
        "descriptors leaked over 100 client-mode reconnections"
    );
    assert_eq!(
        mappings(),
        maps1,
        "mappings leaked over 100 client-mode reconnections"
    );
    drop(port);
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    // A crashed frontend: the connection just ends mid-setup, many times.
    let path = dir.join("crash.sock");
    let port = VhostUserPort::new("crash", &path, VhostMode::Server, 1).unwrap();
    for _ in 0..100 {
        let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        // Half a message header, then gone.
        use std::io::Write;
        let _ = (&s).write_all(&[1, 0, 0]);
    }
    wait_for("every crashed connection to be served", || {
        extra(&port, "disconnects") >= 100
    });
    let mut g = Guest::new(1);
    g.connect(&path, FEATURES);
    wait_for("the rings to start", || port.running());
    one_frame_through(&port, &mut g, &mut pool, 7);
    drop(g);
    drop(port);
    let _ = std::fs::remove_dir_all(&dir);
    // Everything the ports had is gone with them (the pool's buffers are heap, not maps).
    assert!(
        open_fds() <= fds0,
        "descriptors left after the ports were dropped"
    );
    assert!(
        mappings() <= maps0 + 4,
        "mappings left after the ports were dropped"
    );
}
