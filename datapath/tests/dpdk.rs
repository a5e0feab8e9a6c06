//! DPDK ports on DPDK's own virtual devices (feature `dpdk`; needs libdpdk-dev, root and
//! free 2 MiB hugepages, which the tests reserve): frames round trip through `net_ring`
//! (a loopback: what a port sends, it receives) with the right bytes at bursts of 1, 32 and
//! 33; a received mbuf goes out again as the same mbuf (no copy); every mbuf goes back to
//! the mempool whether it is sent, dropped or copied into a heap buffer; bad devargs give
//! clear errors and leave nothing behind; a port can be removed and added again.
#![cfg(feature = "dpdk")]
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

use datapath::packet::{BufPool, PacketBuf};
use datapath::port::dpdk::{DpdkPort, EalConfig, eal_init};
use datapath::port::{Batch, Port};

/// Reserves hugepages if needed and starts the EAL (once per test process). The tests share
/// one mempool and compare its free count, so the returned guard runs them one at a time.
fn eal() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let nr: usize = std::fs::read_to_string("/proc/sys/vm/nr_hugepages")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if nr < 512 {
        std::fs::write("/proc/sys/vm/nr_hugepages", "512")
            .expect("reserve hugepages: run the tests as root");
    }
    let cfg = EalConfig {
        extra: vec!["--no-pci".into(), "--log-level=lib.eal:error".into()],
        n_mbufs: 4096,
        ..EalConfig::default()
    };
    eal_init(&cfg).unwrap_or_else(|e| panic!("{e}"));
    guard
}

/// A frame of `len` bytes whose contents say which one it is.
fn frame(i: usize, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    for (j, b) in f[14..].iter_mut().enumerate() {
        *b = (i * 7 + j) as u8;
    }
    f
}

/// Receives until `n` frames came or a second passed.
fn rx_all(p: &DpdkPort, n: usize, pool: &mut BufPool) -> Vec<PacketBuf> {
    let mut out = Vec::new();
    let t = std::time::Instant::now();
    while out.len() < n && t.elapsed() < std::time::Duration::from_secs(1) {
        let mut b = Batch::new();
        p.rx_burst(0, &mut b, pool);
        out.extend(b.drain(..));
    }
    out
}

fn send(p: &DpdkPort, frames: &[Vec<u8>], pool: &mut BufPool) {
    for chunk in frames.chunks(32) {
        let mut b = Batch::new();
        for f in chunk {
            b.push(PacketBuf::from_frame(f).unwrap());
        }
        p.tx_burst(&mut b, pool);
    }
}

#[test]
fn frames_round_trip_through_net_ring_without_copies_and_every_mbuf_returns() {
    let _one_at_a_time = eal();
    let p = DpdkPort::new("ring0", "net_ring0", 1).unwrap_or_else(|e| panic!("{e}"));
    let mut pool = BufPool::new(256);
    let full = p.mempool_available();
    for burst in [1usize, 32, 33] {
        let frames: Vec<Vec<u8>> = (0..burst).map(|i| frame(i, 60 + i % 40)).collect();
        send(&p, &frames, &mut pool);
        let got = rx_all(&p, burst, &mut pool);
        assert_eq!(got.len(), burst, "burst {burst}: all frames come back");
        for (i, b) in got.iter().enumerate() {
            assert!(b.is_mbuf(), "a received frame is the mbuf itself");
            assert_eq!(b.data(), &frames[i][..], "burst {burst}, frame {i}");
        }
        // The received mbufs go out again as they are: nothing is allocated or copied.
        let before = p.mempool_available();
        let mut sent = 0;
        let mut it = got.into_iter();
        loop {
            let mut b: Batch = it.by_ref().take(32).collect();
            if b.is_empty() {
                break;
            }
            sent += b.len();
            p.tx_burst(&mut b, &mut pool);
        }
        assert_eq!(
            p.mempool_available(),
            before,
            "no new mbuf for a received frame"
        );
        let again = rx_all(&p, sent, &mut pool);
        assert_eq!(again.len(), burst);
        for (i, b) in again.iter().enumerate() {
            assert_eq!(
                b.data(),
                &frames[i][..],
                "burst {burst}, frame {i}, second lap"
            );
        }
        // Dropped, or given back to a pool: every mbuf returns to the mempool.
        let (keep, drop): (Vec<_>, Vec<_>) =
            again.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        drop.into_iter().for_each(|(_, b)| std::mem::drop(b));
        for (_, b) in keep {
            pool.put(b);
        }
        assert_eq!(
            p.mempool_available(),
            full,
            "burst {burst}: every mbuf is back"
        );
    }
    let s = p.stats();
    assert_eq!(s.rx_packets, 2 * (1 + 32 + 33));
    assert_eq!(s.tx_packets, 2 * (1 + 32 + 33));
    assert_eq!(s.tx_dropped, 0);
}

#[test]
fn a_copy_of_an_mbuf_frame_is_a_heap_buffer_and_the_mbuf_still_returns() {
    let _one_at_a_time = eal();
    let p = DpdkPort::new("ring1", "net_ring1", 1).unwrap_or_else(|e| panic!("{e}"));
    let mut pool = BufPool::new(64);
    let full = p.mempool_available();
    let f = frame(3, 128);
    send(&p, std::slice::from_ref(&f), &mut pool);
    let got = rx_all(&p, 1, &mut pool);
    assert_eq!(got.len(), 1);
    // What a flood does: copy into a pool buffer, then let the original go.
    let mut copy = pool.get().unwrap();
    copy.copy_from(&got[0]);
    assert!(!copy.is_mbuf());
    assert_eq!(copy.data(), &f[..]);
    std::mem::drop(got);
    assert_eq!(p.mempool_available(), full);
    // Prepending (a tunnel header) works in the mbuf's headroom too.
    send(&p, std::slice::from_ref(&f), &mut pool);
    let mut got = rx_all(&p, 1, &mut pool);
    let h = got[0].prepend(50).unwrap();
    h.fill(0xaa);
    assert_eq!(got[0].len(), 178);
    let mut b = Batch::new();
    b.push(got.pop().unwrap());
    p.tx_burst(&mut b, &mut pool);
    let back = rx_all(&p, 1, &mut pool);
    assert_eq!(&back[0].data()[..50], &[0xaa; 50][..]);
    assert_eq!(&back[0].data()[50..], &f[..]);
}

#[test]
fn bad_devargs_give_clear_errors_and_a_port_can_be_added_again() {
    let _one_at_a_time = eal();
    let e = DpdkPort::new("bogus", "net_bogus0", 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("net_bogus0") && e.contains("probe failed"),
        "{e}"
    );
    let e = DpdkPort::new("empty", "", 1).unwrap_err().to_string();
    assert!(e.contains("device name"), "{e}");
    let e = DpdkPort::new("many", "net_null0", 64)
        .unwrap_err()
        .to_string();
    assert!(e.contains("n-rxq=64"), "{e}");
    let e = DpdkPort::new("none", "net_null0", 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("n-rxq=0: this device takes 1..=16"), "{e}");
    // The failed one left nothing behind: the same device comes up now.
    let p = DpdkPort::new("null0", "net_null0", 1).unwrap_or_else(|e| panic!("{e}"));
    let e = DpdkPort::new("null0b", "net_null0", 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already in use"), "{e}");
    assert_eq!(p.link_up(), Some(true));
    // net_null receives frames out of nothing; they go back to the mempool when dropped.
    let full = p.mempool_available();
    let mut pool = BufPool::new(64);
    let got = rx_all(&p, 32, &mut pool);
    assert!(!got.is_empty());
    std::mem::drop(got);
    assert_eq!(p.mempool_available(), full);
    std::mem::drop(p);
    for _ in 0..3 {
        let p = DpdkPort::new("null0", "net_null0", 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.link_up(), Some(true));
    }
}
