//! vhost-user rings, device side: a burst of 32 frames of 64 bytes taken from a guest's
//! transmit queue (copied into packet buffers) and written into its receive queue, as the
//! switch does between two VMs; and the same dequeue done with `virtio-queue` (the rust-vmm
//! reference implementation) for comparison. One thread, the guest's side reduced to
//! publishing pre-built descriptors, so this measures the device side's own work; the
//! cross-core cost of guest memory is what `../shared/lab/vhost-loop` measures.
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
                    f[HDR..HDR + 12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
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

    fn ring(&self, mem: &Arc<GuestMemory>, q: usize) -> Vring {
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
    let mut tx = g.ring(&mem, 1);
    let mut rx = g.ring(&mem, 0);
    let mut pool = BufPool::new(256);
    let mut st = BurstStats::default();
    grp.bench_function("dequeue+enqueue/burst=32,bytes=64", |b| {
        b.iter(|| {
            g.publish(1, 32);
            g.publish(0, 32);
            let mut batch = Batch::new();
            tx.dequeue_burst(&mut batch, &mut pool, &mut st);
            assert_eq!(batch.len(), 32);
            rx.enqueue_burst(&mut batch, &mut pool, &mut st);
        })
    });
    grp.bench_function("dequeue/burst=32,bytes=64", |b| {
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
    grp.bench_function("virtio-queue-dequeue/burst=32,bytes=64", |b| {
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
    grp.finish();
}

criterion_group!(benches, rings);
criterion_main!(benches);
