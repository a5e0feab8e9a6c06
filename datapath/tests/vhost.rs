//! vhost-user ports against rust-vmm's vhost-user frontend over real unix sockets, with a
//! test guest that lays out its rings the way a virtio-net driver does; and the ring code
//! against `virtio-queue`, the reference implementation of the same layout.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod vhost_guest;

use std::sync::Arc;
use std::time::Duration;

use datapath::packet::{BufPool, PacketBuf};
use datapath::port::vhost::memory::GuestMemory;
use datapath::port::vhost::ring::{BurstStats, RingAddrs, RingFeatures, Vring};
use datapath::port::{Batch, Port, VhostMode, VhostUserPort};
use proptest::prelude::*;
use vhost_guest::*;

const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const ALL: u64 = VIRTIO_F_VERSION_1
    | VIRTIO_NET_F_MRG_RXBUF
    | VIRTIO_RING_F_EVENT_IDX
    | VIRTIO_RING_F_INDIRECT_DESC;

fn sock(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vswitch-vhost-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A server-mode port with a guest connected and running.
fn connected(name: &str, n_qp: usize, features: u64) -> (VhostUserPort, Guest) {
    let path = sock(name);
    let port = VhostUserPort::new(name, &path, VhostMode::Server, n_qp).unwrap();
    let mut g = Guest::new(n_qp);
    g.connect(&path, features);
    wait_for("the rings to start", || port.running());
    (port, g)
}

/// Receives from every rx queue of `port` until `n` frames came or 2 s passed.
fn rx_frames(port: &VhostUserPort, n: usize, pool: &mut BufPool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let t0 = std::time::Instant::now();
    while out.len() < n && t0.elapsed() < Duration::from_secs(2) {
        for q in 0..port.n_rxq() {
            let mut b = Batch::new();
            port.rx_burst(q, &mut b, pool);
            for p in b.drain(..) {
                out.push(p.data().to_vec());
                pool.put(p);
            }
        }
    }
    out
}

fn tx_frames(port: &VhostUserPort, frames: &[Vec<u8>], pool: &mut BufPool) {
    for chunk in frames.chunks(32) {
        let mut b = Batch::new();
        for f in chunk {
            b.push(PacketBuf::from_frame(f).unwrap());
        }
        port.tx_burst(&mut b, pool);
        assert!(b.is_empty());
    }
}

/// Frames of assorted sizes, `n` of them.
fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| frame(DST, SRC, i as u32, 60 + (i * 37) % 1455))
        .collect()
}

/// Guest to switch at burst sizes 1, 2, 31, 32, 33 and 257, with chains of one to three
/// descriptors, direct and indirect; every frame arrives once, byte for byte, in order.
#[test]
fn guest_transmits_bursts() {
    let (port, mut g) = connected("tx", 1, ALL);
    let mut pool = BufPool::new(1024);
    for burst in [1usize, 2, 31, 32, 33, 257] {
        let fs = frames(burst);
        let mut got = Vec::new();
        for (i, chunk) in fs.chunks(80).enumerate() {
            for (k, f) in chunk.iter().enumerate() {
                g.tx(0, f, 1 + (i + k) % 3, (i + k) % 4 == 3);
            }
            got.extend(rx_frames(&port, chunk.len(), &mut pool));
            assert_eq!(g.reclaim_tx(0), chunk.len());
        }
        assert_eq!(got, fs, "burst of {burst}");
    }
    let s = port.stats();
    assert_eq!(s.rx_packets, 1 + 2 + 31 + 32 + 33 + 257);
    assert_eq!(s.rx_errors, 0);
}

/// Switch to guest at the same burst sizes, into 2 KiB buffers (one chain per frame) and
/// into 256-byte buffers (mergeable: a frame spans up to six chains, `num_buffers` says
/// how many).
#[test]
fn guest_receives_bursts() {
    for buf_size in [2048u32, 256] {
        let (port, mut g) = connected(&format!("rx{buf_size}"), 1, ALL);
        let mut pool = BufPool::new(1024);
        for burst in [1usize, 2, 31, 32, 33, 257] {
            let fs = frames(burst);
            let mut got = Vec::new();
            for chunk in fs.chunks(if buf_size == 256 { 30 } else { 200 }) {
                let need: usize = chunk
                    .iter()
                    .map(|f| (f.len() + 12).div_ceil(buf_size as usize))
                    .sum();
                g.post_rx(0, need, buf_size);
                tx_frames(&port, chunk, &mut pool);
                got.extend(g.take_rx(0));
            }
            assert_eq!(got, fs, "burst of {burst}, {buf_size}-byte buffers");
        }
        assert_eq!(port.stats().tx_dropped, 0);
    }
}

/// Without VERSION_1 and mergeable buffers the header is the legacy 10 bytes, both ways.
#[test]
fn legacy_header() {
    let (port, mut g) = connected("legacy", 1, VIRTIO_RING_F_INDIRECT_DESC);
    assert_eq!(g.hdr_len, 10);
    let mut pool = BufPool::new(256);
    let fs = frames(20);
    for f in &fs {
        g.tx(0, f, 2, false);
    }
    assert_eq!(rx_frames(&port, 20, &mut pool), fs);
    g.post_rx(0, 20, 2048);
    tx_frames(&port, &fs, &mut pool);
    assert_eq!(g.take_rx(0), fs);
    // Without mergeable buffers a frame that does not fit one chain is not delivered.
    g.post_rx(0, 1, 100);
    tx_frames(&port, &[frame(DST, SRC, 0, 400)], &mut pool);
    assert!(g.take_rx(0).is_empty());
    assert_eq!(port.extra("tx_no_room"), 1);
}

/// A guest with no receive buffers: frames are dropped and counted, nothing blocks.
#[test]
fn no_receive_buffers() {
    let (port, mut g) = connected("norx", 1, ALL);
    let mut pool = BufPool::new(256);
    tx_frames(&port, &frames(40), &mut pool);
    assert_eq!(port.stats().tx_dropped, 40);
    assert_eq!(port.extra("tx_no_room"), 40);
    g.post_rx(0, 5, 2048);
    tx_frames(&port, &frames(5), &mut pool);
    assert_eq!(g.take_rx(0).len(), 5);
}

/// Two queue pairs: each transmit queue is its own rx queue of the port.
#[test]
fn two_queue_pairs() {
    let (port, mut g) = connected("mq", 2, ALL);
    assert_eq!(port.n_rxq(), 2);
    wait_for("both queue pairs", || port.queues_running() == 4);
    let mut pool = BufPool::new(256);
    g.tx(1, &frame(DST, SRC, 7, 100), 1, false);
    let mut b = Batch::new();
    assert_eq!(port.rx_burst(0, &mut b, &mut pool), 0);
    assert_eq!(port.rx_burst(1, &mut b, &mut pool), 1);
    assert_eq!(&b[0].data()[14..18], &7u32.to_be_bytes());
}

/// With VIRTIO_F_IN_ORDER a burst of transmit completions is one used entry, the last
/// chain's, and the used index moves by the whole burst.
#[test]
fn in_order_transmit_completions() {
    let (port, mut g) = connected("inorder", 1, ALL | VIRTIO_F_IN_ORDER);
    let mut pool = BufPool::new(64);
    let before = g.used_idx(1);
    let mut last = 0;
    let fs = frames(10);
    for f in &fs {
        last = g.tx(0, f, 1, false);
    }
    assert_eq!(rx_frames(&port, 10, &mut pool), fs);
    assert_eq!(g.used_idx(1), before.wrapping_add(10));
    let e = g.used_entry(1, before.wrapping_add(9));
    assert_eq!(e, (last as u32, 0));
}

/// Kicks are off while the switch polls and on once a poll thread arms the queue to
/// sleep; a kick then makes the port's descriptor readable. Interrupts go only to a guest
/// that wants them.
#[test]
fn notifications() {
    let (port, mut g) = connected("notify", 1, VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF);
    let mut pool = BufPool::new(64);
    assert_eq!(g.used_flags(1), 1, "no kicks wanted while polling");
    assert!(port.arm_rx(0), "an empty ring lets the thread sleep");
    assert_eq!(g.used_flags(1), 0, "kicks wanted before sleeping");
    let fd = port.rx_fd(0).unwrap();
    let readable = || readable(fd);
    assert!(!readable());
    g.tx(0, &frame(DST, SRC, 1, 64), 1, false);
    g.kick(1);
    wait_for("the kick to wake the port's descriptor", readable);
    let mut b = Batch::new();
    assert_eq!(port.rx_burst(0, &mut b, &mut pool), 1);
    assert!(!readable(), "the kick was consumed");
    assert_eq!(g.used_flags(1), 1);
    // A frame already waiting keeps the thread awake.
    g.tx(0, &frame(DST, SRC, 2, 64), 1, false);
    assert!(!port.arm_rx(0));
    // Interrupts: wanted by default, not with VRING_AVAIL_F_NO_INTERRUPT.
    let _ = g.calls[1].read();
    assert_eq!(port.rx_burst(0, &mut b, &mut pool), 1);
    assert_eq!(g.calls[1].read().unwrap(), 1);
    g.set_avail_flags(1, 1);
    g.tx(0, &frame(DST, SRC, 3, 64), 1, false);
    assert_eq!(port.rx_burst(0, &mut b, &mut pool), 1);
    assert!(g.calls[1].read().is_err(), "no interrupt asked for");
}

/// Client mode: the switch connects to the frontend's socket, and reconnects after the
/// frontend goes away and comes back (a VM restarting, or the switch restarting).
#[test]
fn client_mode_reconnects() {
    let path = sock("client");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let port = VhostUserPort::new("client", &path, VhostMode::Client, 1).unwrap();
    let mut pool = BufPool::new(256);
    for round in 0..3 {
        let (stream, _) = listener.accept().unwrap();
        let mut g = Guest::new(1);
        g.attach(stream, ALL);
        wait_for("the rings to start", || port.running());
        assert_eq!(port.link_up(), Some(true));
        let fs = frames(10);
        for f in &fs {
            g.tx(0, f, 1, false);
        }
        assert_eq!(rx_frames(&port, 10, &mut pool), fs, "round {round}");
        g.post_rx(0, 10, 2048);
        tx_frames(&port, &fs, &mut pool);
        assert_eq!(g.take_rx(0), fs);
        let gone = port.extra("disconnects");
        g.disconnect();
        // It connects again at once (the listener is still there): watch the counter.
        wait_for("the port to see the frontend go", || {
            port.extra("disconnects") > gone
        });
    }
    assert!(port.extra("connects") >= 3);
}

/// A second connection waits until the first ends (server mode serves one frontend).
#[test]
fn server_mode_serves_the_next_frontend() {
    let (port, mut g) = connected("next", 1, ALL);
    let mut pool = BufPool::new(64);
    g.disconnect();
    wait_for("disconnect", || !port.connected());
    let mut g2 = Guest::new(1);
    g2.connect(&sock("next"), ALL);
    wait_for("the rings to start", || port.running());
    g2.tx(0, &frame(DST, SRC, 9, 80), 1, true);
    assert_eq!(rx_frames(&port, 1, &mut pool).len(), 1);
}

/// What a hostile guest can write into its rings: every kind of bad chain is counted and
/// given back, and the next good frame still goes through; another port is not affected.
#[test]
fn hostile_guest() {
    let (port, mut g) = connected("hostile", 1, ALL);
    let (other, mut g2) = connected("bystander", 1, ALL);
    let mut pool = BufPool::new(256);
    let q = 1; // the guest's transmit queue
    // Descriptors 100 and 101 and buffer slot 200 are the test's own.
    g.queues[q].free.retain(|d| ![100, 101, 200].contains(d));
    let buf = GPA + Guest::buf_off(q, 200) as u64;
    type Case = (&'static str, &'static str, fn(&Guest, u16, u64));
    let cases: &[Case] = &[
        ("next past the table", "rx_bad_descriptor", |g, h, b| {
            g.set_desc(1, h, b, 64, F_NEXT, 1000)
        }),
        // (Empty buffers: with data, the frame outgrows a packet buffer first.)
        ("a loop", "rx_bad_descriptor", |g, h, b| {
            g.set_desc(1, h, b, 0, F_NEXT, h)
        }),
        ("a longer loop", "rx_bad_descriptor", |g, h, b| {
            g.set_desc(1, h, b, 0, F_NEXT, h + 1);
            g.set_desc(1, h + 1, b, 0, F_NEXT, h)
        }),
        ("a loop with data", "rx_bad_length", |g, h, b| {
            g.set_desc(1, h, b, 64, F_NEXT, h)
        }),
        ("outside memory", "rx_bad_address", |g, h, _| {
            g.set_desc(1, h, 0x10, 64, 0, 0)
        }),
        ("past the end of memory", "rx_bad_address", |g, h, _| {
            g.set_desc(1, h, GPA + MEM as u64 - 8, 64, 0, 0)
        }),
        ("an absurd length", "rx_bad_length", |g, h, b| {
            g.set_desc(1, h, b, u32::MAX, 0, 0)
        }),
        ("an address that wraps", "rx_bad_address", |g, h, _| {
            g.set_desc(1, h, u64::MAX - 4, 64, 0, 0)
        }),
        (
            "a device-writable buffer",
            "rx_bad_descriptor",
            |g, h, b| g.set_desc(1, h, b, 64, F_WRITE, 0),
        ),
        ("an empty indirect table", "rx_bad_descriptor", |g, h, b| {
            g.set_desc(1, h, b, 0, F_INDIRECT, 0)
        }),
        ("a ragged indirect table", "rx_bad_descriptor", |g, h, b| {
            g.set_desc(1, h, b, 24, F_INDIRECT, 0)
        }),
        (
            "an indirect table outside memory",
            "rx_bad_address",
            |g, h, _| g.set_desc(1, h, 0x1000, 64, F_INDIRECT, 0),
        ),
        (
            "an indirect table in an indirect table",
            "rx_bad_descriptor",
            |g, h, b| {
                let inner = b + 256;
                g.write((b - GPA) as usize, &{
                    let mut d = [0u8; 16];
                    d[0..8].copy_from_slice(&inner.to_le_bytes());
                    d[8..12].copy_from_slice(&16u32.to_le_bytes());
                    d[12..14].copy_from_slice(&F_INDIRECT.to_le_bytes());
                    d
                });
                g.set_desc(1, h, b, 16, F_INDIRECT, 0)
            },
        ),
        ("an indirect loop", "rx_bad_descriptor", |g, h, b| {
            let mut d = [0u8; 32];
            for k in 0..2 {
                let e = &mut d[16 * k..16 * k + 16];
                e[0..8].copy_from_slice(&(b + 512).to_le_bytes());
                e[8..12].copy_from_slice(&8u32.to_le_bytes());
                e[12..14].copy_from_slice(&F_NEXT.to_le_bytes());
                e[14..16].copy_from_slice(&(1 - k as u16).to_le_bytes());
            }
            g.write((b - GPA) as usize, &d);
            g.set_desc(1, h, b, 32, F_INDIRECT, 0)
        }),
        ("a frame too large", "rx_bad_length", |g, h, b| {
            g.set_desc(1, h, b, 2048, F_NEXT, h + 1);
            g.set_desc(1, h + 1, b, 2048, 0, 0)
        }),
        ("only a header", "rx_bad_length", |g, h, b| {
            g.set_desc(1, h, b, 12, 0, 0)
        }),
        ("less than a header", "rx_bad_length", |g, h, b| {
            g.set_desc(1, h, b, 5, 0, 0)
        }),
        (
            "a frame too large in one buffer",
            "rx_bad_length",
            |g, h, b| g.set_desc(1, h, b, 4096, 0, 0),
        ),
    ];
    for (what, counter, write) in cases {
        let before = port.extra(counter);
        let head = 100;
        write(&g, head, buf);
        g.publish(q, head);
        let good = frame(DST, SRC, 42, 64);
        g.tx(0, &good, 1, false);
        let got = rx_frames(&port, 1, &mut pool);
        assert_eq!(got, vec![good], "{what}: the good frame after it");
        assert_eq!(
            port.extra(counter),
            before + 1,
            "{what}: counted as {counter}"
        );
        let used = g.take_used(q);
        assert!(
            used.iter().any(|&(id, len)| id == head as u32 && len == 0),
            "{what}: given back"
        );
        for (id, _) in used {
            if id != head as u32 {
                g.queues[q].free.push(id as u16);
            }
        }
    }
    // A head index past the table.
    g.publish(q, 5000);
    g.tx(0, &frame(DST, SRC, 43, 64), 1, false);
    assert_eq!(rx_frames(&port, 1, &mut pool).len(), 1);
    g.reclaim_tx(0);
    // An available index far ahead of what could be there: the queue is left alone.
    let idx = g.queues[q].avail_idx;
    g.set_avail_idx(q, idx.wrapping_add(1000));
    let mut b = Batch::new();
    assert_eq!(port.rx_burst(0, &mut b, &mut pool), 0);
    assert!(port.extra("ring_corrupt") >= 1);
    // ... until it makes sense again.
    g.set_avail_idx(q, idx);
    g.tx(0, &frame(DST, SRC, 44, 64), 1, false);
    assert_eq!(rx_frames(&port, 1, &mut pool).len(), 1);
    // Receive side: read-only buffers and buffers outside memory are counted.
    g.set_desc(0, 10, GPA + Guest::buf_off(0, 10) as u64, 2048, 0, 0);
    g.publish(0, 10);
    g.set_desc(0, 11, 0x20, 2048, F_WRITE, 0);
    g.publish(0, 11);
    g.post_rx(0, 1, 2048);
    tx_frames(&port, &[frame(DST, SRC, 45, 100)], &mut pool);
    let used = g.take_used(0);
    assert_eq!(
        used.len(),
        3,
        "two bad chains given back, then the frame: {used:?}"
    );
    assert_eq!((used[0], used[1]), ((10, 0), (11, 0)));
    assert_eq!(used[2].1, 112);
    assert_eq!(port.extra("tx_bad_descriptor"), 1);
    assert_eq!(port.extra("tx_bad_address"), 1);
    // The bystander never noticed.
    g2.tx(0, &frame(DST, SRC, 1, 64), 1, false);
    assert_eq!(rx_frames(&other, 1, &mut pool).len(), 1);
    assert_eq!(other.stats().rx_errors, 0);
}

/// Receive-side bad chains before a good one: the bad ones are given back, the frame goes
/// into the good one.
#[test]
fn hostile_receive_chains_then_good_one() {
    let (port, mut g) = connected("hostile-rx", 1, ALL);
    let mut pool = BufPool::new(64);
    g.set_desc(
        0,
        20,
        GPA + Guest::buf_off(0, 20) as u64,
        2048,
        F_WRITE | F_NEXT,
        20,
    );
    g.publish(0, 20);
    g.post_rx(0, 1, 2048);
    let f = frame(DST, SRC, 46, 200);
    tx_frames(&port, std::slice::from_ref(&f), &mut pool);
    let used = g.take_used(0);
    assert_eq!(used.len(), 2);
    assert_eq!(used[0], (20, 0));
    assert_eq!(port.extra("tx_bad_descriptor"), 1);
    let data = g.read(Guest::buf_off(0, used[1].0 as u16), used[1].1 as usize);
    assert_eq!(&data[12..], &f[..]);
}

/// A frontend that offers garbage: a memory table whose file is smaller than the region
/// is refused, the rings never start, and the connection can be used again properly.
#[test]
fn bad_memory_table_is_refused() {
    use vhost::VhostBackend;
    use vhost::vhost_user::Frontend;
    let path = sock("badmem");
    let port = VhostUserPort::new("badmem", &path, VhostMode::Server, 1).unwrap();
    let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let fe = Frontend::from_stream(stream, 2);
    fe.set_owner().unwrap();
    let f = fe.get_features().unwrap();
    fe.set_features(f & !VHOST_USER_F_PROTOCOL_FEATURES)
        .unwrap();
    let small = Guest::new(1);
    small.memfd.set_len(4096).unwrap();
    let _ = fe.set_mem_table(&[vhost::VhostUserMemoryRegionInfo {
        guest_phys_addr: GPA,
        memory_size: MEM as u64,
        userspace_addr: small.uva(0),
        mmap_offset: 0,
        mmap_handle: std::os::fd::AsRawFd::as_raw_fd(&small.memfd),
    }]);
    wait_for("the refusal to be counted", || {
        port.extra("protocol_errors") >= 1
    });
    assert!(!port.running());
}

/// `virtio-queue` (the reference) and our ring read the same frames from the same
/// random chains; random garbage in a descriptor table never panics and every entry the
/// ring takes is accounted for once.
mod reference {
    use super::*;
    use virtio_queue::{Queue, QueueT};
    use vm_memory::{
        Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion,
    };

    fn memories(g: &Guest) -> (Arc<GuestMemory>, GuestMemoryMmap) {
        let file = g.memfd.try_clone().unwrap();
        let ours = GuestMemory::map(
            &[vhost::vhost_user::message::VhostUserMemoryRegion::new(
                GPA,
                MEM as u64,
                g.uva(0),
                0,
            )],
            vec![file],
        )
        .unwrap();
        let file = g.memfd.try_clone().unwrap();
        let region = MmapRegion::from_file(FileOffset::new(file, 0), MEM).unwrap();
        let theirs = GuestMemoryMmap::from_regions(vec![
            GuestRegionMmap::new(region, GuestAddress(GPA)).unwrap(),
        ])
        .unwrap();
        (Arc::new(ours), theirs)
    }

    /// The transmit queue (1) as both implementations see it: addresses in ours are the
    /// frontend's virtual addresses, in virtio-queue guest physical ones.
    fn rings(g: &Guest, mem: Arc<GuestMemory>) -> (Vring, Queue) {
        let off = |a: u64| a - g.uva(0) + GPA;
        let desc = g.uva(3 * 4096);
        let avail = desc + 4096;
        let used = desc + 8192;
        let ours = Vring::new(
            mem,
            &RingAddrs {
                size: Q,
                desc_uva: desc,
                avail_uva: avail,
                used_uva: used,
            },
            0,
            RingFeatures {
                event_idx: false,
                mergeable: true,
                hdr_len: 12,
                in_order: false,
                prefetch: true,
            },
            None,
        )
        .unwrap();
        let mut q = Queue::new(Q).unwrap();
        q.set_size(Q);
        q.set_desc_table_address(Some(off(desc) as u32), Some((off(desc) >> 32) as u32));
        q.set_avail_ring_address(Some(off(avail) as u32), Some((off(avail) >> 32) as u32));
        q.set_used_ring_address(Some(off(used) as u32), Some((off(used) >> 32) as u32));
        q.set_ready(true);
        (ours, q)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn same_frames_as_virtio_queue(
            chains in prop::collection::vec((14usize..1900, 1usize..5, any::<bool>()), 1..32)
        ) {
            let mut g = Guest::new(1);
            let (ours, theirs) = memories(&g);
            let mut sent = Vec::new();
            for (i, &(len, pieces, indirect)) in chains.iter().enumerate() {
                let f = frame(DST, SRC, i as u32, len);
                g.tx(0, &f, pieces, indirect);
                sent.push(f);
            }
            let (mut ring, mut q) = rings(&g, ours);
            // The reference: every chain's readable bytes after the 12-byte header.
            let mut reference = Vec::new();
            while let Some(chain) = q.pop_descriptor_chain(&theirs) {
                let mut bytes = Vec::new();
                for d in chain {
                    let mut b = vec![0u8; d.len() as usize];
                    theirs.read_slice(&mut b, d.addr()).unwrap();
                    bytes.extend(b);
                }
                reference.push(bytes[12..].to_vec());
            }
            let mut pool = BufPool::new(64);
            let mut got = Vec::new();
            loop {
                let mut b = Batch::new();
                let mut st = BurstStats::default();
                ring.dequeue_burst(&mut b, &mut pool, &mut st);
                if b.is_empty() {
                    break;
                }
                got.extend(b.drain(..).map(|p| p.data().to_vec()));
            }
            prop_assert_eq!(&reference, &sent);
            prop_assert_eq!(&got, &sent);
        }

        #[test]
        fn garbage_never_panics(
            table in prop::collection::vec((any::<u64>(), any::<u32>(), any::<u16>(), any::<u16>()), 16),
            heads in prop::collection::vec(0u16..300, 1..64),
            near in any::<bool>(),
        ) {
            let mut g = Guest::new(1);
            let (ours, _) = memories(&g);
            for (i, &(addr, len, flags, next)) in table.iter().enumerate() {
                // Half the time, addresses near real memory so some chains get far.
                let addr = if near { GPA + addr % (MEM as u64 + 4096) } else { addr };
                let len = if near { len % 4096 } else { len };
                g.set_desc(1, i as u16, addr, len, flags & 7, next % 20);
            }
            for &h in &heads {
                g.publish(1, h);
            }
            let (mut ring, _) = rings(&g, ours);
            let mut pool = BufPool::new(64);
            let mut taken = 0u64;
            let mut st = BurstStats::default();
            loop {
                let mut b = Batch::new();
                let before = st;
                ring.dequeue_burst(&mut b, &mut pool, &mut st);
                let n = st.pkts - before.pkts + st.bad_descriptor - before.bad_descriptor
                    + st.bad_address - before.bad_address + st.bad_length - before.bad_length;
                if n == 0 {
                    break;
                }
                taken += n;
                for p in b.drain(..) {
                    pool.put(p);
                }
            }
            prop_assert_eq!(taken, heads.len() as u64);
            prop_assert_eq!(g.take_used(1).len(), heads.len());
        }
    }
}

/// Test helper: one of the port's extra counters.
trait Extra {
    fn extra(&self, name: &str) -> u64;
}

impl Extra for VhostUserPort {
    fn extra(&self, name: &str) -> u64 {
        let mut v = Vec::new();
        self.extra_stats(&mut v);
        v.iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no counter {name}"))
            .1
    }
}
