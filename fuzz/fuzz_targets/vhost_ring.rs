//! A guest's rings as the fuzzer writes them: the input is copied over the start of a
//! guest's memory (descriptor table, available ring, indirect tables and buffers all live
//! there), its first bytes choose the negotiated features and the available indices. The
//! switch takes what the transmit queue offers and writes frames into the receive queue:
//! it never panics, never touches memory outside the guest's (the mapping is exactly the
//! guest's size: anything past it would fault), and every available entry it takes is
//! accounted for once, as a frame or as a counted error.
#![no_main]

use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::Arc;

use datapath::packet::{BufPool, PacketBuf};
use datapath::port::Batch;
use datapath::port::vhost::memory::GuestMemory;
use datapath::port::vhost::ring::{BurstStats, RingAddrs, RingFeatures, Vring};
use libfuzzer_sys::fuzz_target;
use vhost::vhost_user::message::VhostUserMemoryRegion;

const GPA: u64 = 0x10000;
const MEM: usize = 64 << 10;
const Q: u16 = 16;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    // SAFETY: a valid name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: a fresh descriptor.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(MEM as u64).unwrap();
    let body = &data[8..];
    std::os::unix::fs::FileExt::write_all_at(&file, &body[..body.len().min(MEM)], 0).unwrap();
    // The available indices of both queues (queue 1 transmits, queue 0 receives).
    std::os::unix::fs::FileExt::write_all_at(&file, &data[2..4], 0x1002).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &data[4..6], 0x3002).unwrap();
    let mem = Arc::new(
        GuestMemory::map(&[VhostUserMemoryRegion::new(GPA, MEM as u64, GPA, 0)], vec![file]).unwrap(),
    );
    let f = data[0];
    let features = RingFeatures {
        event_idx: f & 1 != 0,
        mergeable: f & 2 != 0,
        hdr_len: if f & 4 != 0 { 12 } else { 10 },
        in_order: f & 8 != 0,
        prefetch: f & 16 != 0,
    };
    let ring = |base: u64| {
        Vring::new(
            Arc::clone(&mem),
            &RingAddrs { size: Q, desc_uva: GPA + base, avail_uva: GPA + base + 0x1000, used_uva: GPA + base + 0x1800 },
            u16::from(data[1]),
            features,
            None,
        )
        .unwrap()
    };
    let mut tx = ring(0);
    let mut rx = ring(0x2000);
    let mut pool = BufPool::new(64);
    let mut st = BurstStats::default();
    for _ in 0..4 {
        let mut b = Batch::new();
        let before = st;
        tx.dequeue_burst(&mut b, &mut pool, &mut st);
        let taken = st.pkts - before.pkts + st.bad_descriptor - before.bad_descriptor
            + st.bad_address - before.bad_address + st.bad_length - before.bad_length;
        assert_eq!(b.len() as u64, st.pkts - before.pkts);
        assert!(taken <= 32);
        for p in b.iter() {
            assert!(!p.is_empty() && p.len() <= datapath::packet::MAX_FRAME);
        }
        // Send them (and a frame of our own) into the receive queue.
        if b.is_empty() {
            b.push(PacketBuf::from_frame(&data[..data.len().min(1500)]).unwrap());
        }
        rx.enqueue_burst(&mut b, &mut pool, &mut st);
        assert!(b.is_empty());
    }
});
