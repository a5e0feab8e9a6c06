//! vhost-user rings, device side: a burst of 32 frames of 64 bytes taken from a guest's
//! transmit queue (copied into packet buffers) and written into its receive queue, as the
//! switch does between two VMs; and the same dequeue done with `virtio-queue` (the rust-vmm
//! reference implementation) for comparison.
//!
//! `hot`: one thread, the guest's side reduced to publishing pre-built descriptors: the
//! device side's own work. `cross-core`: a guest thread on another CPU writes what a guest
//! writes before each burst (descriptors, virtio-net headers, the available rings) and
//! reads the used rings after, so every line the switch touches is a transfer between
//! cores, as in a real loop; timed is the switch's side only, with and without prefetching.
#![allow(unsafe_code, clippy::undocumented_unsafe_blocks)] // a guest's memory, by hand

use std::fs::File;
use std::os::fd::FromRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datapath::packet::{BufPool, PacketBuf};
use datapath::port::Batch;
use datapath::port::vhost::memory::GuestMemory;
use datapath::port::vhost::ring::{BurstStats, RingAddrs, RingFeatures, Vring};
use vhost::vhost_user::message::VhostUserMemoryRegion;
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryMmap, GuestRegionMmap, MmapRegion};

const GPA: u64 = 0x4000_0000;
const MEM: usize = 4 << 20;
const Q: u16 = 256;
const FRAME: usize = 64;
const HDR: usize = 12;
/// Per queue q: descriptors at q*16K, avail at +4K, used at +8K; buffers from 1 MiB.
const BUF_BASE: usize = 1 << 20;

struct Guest {
    mem: *mut u8,
    file: File,
    avail_idx: [u16; 2],
}

impl Guest {
    fn new() -> Guest {
        let fd = unsafe { libc::memfd_create(c"bench".as_ptr(), libc::MFD_CLOEXEC) };
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(MEM as u64).expect("memfd");
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MEM,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(mem, libc::MAP_FAILED);
        let g = Guest {
            mem: mem.cast(),
            file,
            avail_idx: [0; 2],
        };
        // Queue 1 (the guest's transmit queue): header + frame per descriptor. Queue 0 (its
        // receive queue): 2 KiB writable buffers.
        for q in 0..2usize {
            for d in 0..Q as usize {
                let buf = BUF_BASE + (q * Q as usize + d) * 2048;
                let (len, flags) = if q == 1 {
                    (HDR + FRAME, 0u16)
                } else {
                    (2048, 2u16)
                };
                let mut e = [0u8; 16];
                e[0..8].copy_from_slice(&(GPA + buf as u64).to_le_bytes());
                e[8..12].copy_from_slice(&(len as u32).to_le_bytes());
                e[12..14].copy_from_slice(&flags.to_le_bytes());
                g.write(q * 16384 + 16 * d, &e);
                if q == 1 {
                    let mut f = vec![0u8; HDR + FRAME];
                    let frame = bench::udp_frame(bench::mac(1), bench::mac(2), 1, 2, 1, 2, FRAME);
                    f[HDR..].copy_from_slice(&frame);
                    g.write(buf, &f);
                }
            }
        }
        g
    }

    fn write(&self, off: usize, b: &[u8]) {
        unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), self.mem.add(off), b.len()) };
    }

    fn uva(&self, off: usize) -> u64 {
        self.mem as u64 + off as u64
    }

    /// Makes `n` more descriptors available on queue `q`.
    fn publish(&mut self, q: usize, n: u16) {
        for _ in 0..n {
            let i = self.avail_idx[q];
            self.write(
                q * 16384 + 4096 + 4 + 2 * (i % Q) as usize,
                &(i % Q).to_le_bytes(),
            );
            self.avail_idx[q] = i.wrapping_add(1);
        }
        unsafe { AtomicU16::from_ptr(self.mem.add(q * 16384 + 4096 + 2).cast()) }
            .store(self.avail_idx[q], Ordering::Release);
    }

    fn ring(&self, mem: &Arc<GuestMemory>, q: usize, prefetch: bool) -> Vring {
        let base = q * 16384;
        Vring::new(
            Arc::clone(mem),
            &RingAddrs {
                size: Q,
                desc_uva: self.uva(base),
                avail_uva: self.uva(base + 4096),
                used_uva: self.uva(base + 8192),
            },
            0,
            RingFeatures {
                event_idx: false,
                mergeable: true,
                hdr_len: HDR as u8,
                in_order: true,
                prefetch,
            },
            None,
        )
        .expect("ring")
    }
}

fn memory(g: &Guest) -> Arc<GuestMemory> {
    Arc::new(
        GuestMemory::map(
            &[VhostUserMemoryRegion::new(GPA, MEM as u64, g.uva(0), 0)],
            vec![g.file.try_clone().expect("dup")],
        )
        .expect("map"),
    )
}

fn rings(c: &mut Criterion) {
    let mut grp = c.benchmark_group("vhost");
    grp.throughput(Throughput::Elements(32));

    let mut g = Guest::new();
    let mem = memory(&g);
    let mut tx = g.ring(&mem, 1, true);
    let mut rx = g.ring(&mem, 0, true);
    let mut pool = BufPool::new(256);
    let mut st = BurstStats::default();
    grp.bench_function("hot/dequeue+enqueue/burst=32,bytes=64", |b| {
        b.iter(|| {
            g.publish(1, 32);
            g.publish(0, 32);
            let mut batch = Batch::new();
            tx.dequeue_burst(&mut batch, &mut pool, &mut st);
            assert_eq!(batch.len(), 32);
            rx.enqueue_burst(&mut batch, &mut pool, &mut st);
        })
    });
    grp.bench_function("hot/dequeue/burst=32,bytes=64", |b| {
        b.iter(|| {
            g.publish(1, 32);
            let mut batch = Batch::new();
            tx.dequeue_burst(&mut batch, &mut pool, &mut st);
            for p in batch.drain(..) {
                pool.put(p);
            }
        })
    });

    // The reference: virtio-queue pops each chain and reads it through GuestMemoryMmap.
    let mut g = Guest::new();
    let file = g.file.try_clone().expect("dup");
    let region = MmapRegion::<()>::from_file(FileOffset::new(file, 0), MEM).expect("map");
    let gm = GuestMemoryMmap::from_regions(vec![
        GuestRegionMmap::new(region, GuestAddress(GPA)).expect("region"),
    ])
    .expect("memory");
    let mut q = Queue::new(Q).expect("queue");
    q.set_size(Q);
    let a = |off: u64| (Some((GPA + off) as u32), Some(((GPA + off) >> 32) as u32));
    let (lo, hi) = a(16384);
    q.set_desc_table_address(lo, hi);
    let (lo, hi) = a(16384 + 4096);
    q.set_avail_ring_address(lo, hi);
    let (lo, hi) = a(16384 + 8192);
    q.set_used_ring_address(lo, hi);
    q.set_ready(true);
    grp.bench_function("hot/virtio-queue-dequeue/burst=32,bytes=64", |b| {
        b.iter(|| {
            g.publish(1, 32);
            let mut batch = Batch::new();
            for _ in 0..32 {
                let chain = q.pop_descriptor_chain(&gm).expect("chain");
                let head = chain.head_index();
                let mut buf = pool.get().expect("buffer");
                let _ = buf.receive_with(|dst| -> Result<usize, ()> {
                    let mut off = 0usize;
                    let mut skip = HDR;
                    for d in chain {
                        let mut addr = d.addr();
                        let mut len = d.len() as usize;
                        let s = skip.min(len);
                        skip -= s;
                        addr = GuestAddress(addr.0 + s as u64);
                        len -= s;
                        gm.read_slice(&mut dst[off..off + len], addr)
                            .map_err(|_| ())?;
                        off += len;
                    }
                    Ok(off)
                });
                q.add_used(&gm, head, 0).expect("used");
                batch.push(buf);
            }
            for p in batch.drain(..) {
                pool.put(p);
            }
        })
    });
    let _ = PacketBuf::new();

    for prefetch in [true, false] {
        cross_core(&mut grp, prefetch);
    }
    grp.finish();
}

fn pin(cpu: usize) {
    let mut set = unsafe { std::mem::zeroed::<libc::cpu_set_t>() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

/// The guest on CPU 0, the switch (this thread) on CPU 1.
fn cross_core(
    grp: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    prefetch: bool,
) {
    use std::sync::atomic::AtomicU64;
    let g = Guest::new();
    let mem = memory(&g);
    let mut tx = g.ring(&mem, 1, prefetch);
    let mut rx = g.ring(&mem, 0, prefetch);
    let mut pool = BufPool::new(256);
    let mut st = BurstStats::default();
    let turn = Arc::new(AtomicU64::new(0));
    let t2 = Arc::clone(&turn);
    let base = g.mem as usize;
    let guest = std::thread::spawn(move || {
        pin(0);
        let mut g = Guest {
            mem: base as *mut u8,
            file: g.file,
            avail_idx: [0; 2],
        };
        let mut next = [0u16; 2];
        let mut seen = 0u16;
        let mut round = 1u64;
        loop {
            // Wait for the switch to ask for a burst (odd) or to finish (u64::MAX).
            let t = loop {
                let t = t2.load(Ordering::Acquire);
                if t == 2 * round - 1 || t == u64::MAX {
                    break t;
                }
                std::hint::spin_loop();
            };
            if t == u64::MAX {
                break;
            }
            // What a driver writes per burst: transmit descriptors and headers, receive
            // descriptors; then it reads the used rings (completions and received frames).
            for (q, nq) in next.iter_mut().enumerate() {
                for k in 0..32u16 {
                    let d = (nq.wrapping_add(k) % Q) as usize;
                    let buf = BUF_BASE + (q * Q as usize + d) * 2048;
                    let (len, flags) = if q == 1 {
                        (HDR + FRAME, 0u16)
                    } else {
                        (2048, 2u16)
                    };
                    let mut e = [0u8; 16];
                    e[0..8].copy_from_slice(&(GPA + buf as u64).to_le_bytes());
                    e[8..12].copy_from_slice(&(len as u32).to_le_bytes());
                    e[12..14].copy_from_slice(&flags.to_le_bytes());
                    g.write(q * 16384 + 16 * d, &e);
                    if q == 1 {
                        g.write(buf, &[0u8; HDR]);
                    }
                }
                *nq = nq.wrapping_add(32);
            }
            g.publish(1, 32);
            g.publish(0, 32);
            let used =
                unsafe { AtomicU16::from_ptr(g.mem.add(8192 + 2).cast()) }.load(Ordering::Acquire);
            for i in seen..used {
                let off = 8192 + 4 + 8 * (i % Q) as usize;
                std::hint::black_box(unsafe { g.mem.add(off).cast::<u64>().read_volatile() });
                let d = (i % Q) as usize;
                std::hint::black_box(unsafe {
                    g.mem.add(BUF_BASE + d * 2048 + HDR).read_volatile()
                });
            }
            seen = used;
            t2.store(2 * round, Ordering::Release);
            round += 1;
        }
        std::mem::forget(g);
    });
    pin(1);
    let mut round = 1u64;
    let name = format!("cross-core/dequeue+enqueue/burst=32,bytes=64,prefetch={prefetch}");
    grp.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                turn.store(2 * round - 1, Ordering::Release);
                while turn.load(Ordering::Acquire) != 2 * round {
                    std::hint::spin_loop();
                }
                round += 1;
                let t0 = std::time::Instant::now();
                let mut batch = Batch::new();
                tx.dequeue_burst(&mut batch, &mut pool, &mut st);
                rx.enqueue_burst(&mut batch, &mut pool, &mut st);
                total += t0.elapsed();
            }
            total
        })
    });
    turn.store(u64::MAX, Ordering::Release);
    guest.join().expect("guest");
}

criterion_group!(benches, rings);
criterion_main!(benches);
