//! Connection tracking: a batch of 32 packets of established UDP connections through
//! `ct(commit)` with 1k and 1M connections in the table (random connections, so at 1M
//! most lookups miss the CPU caches), and new connections committed at full rate.
//! Frames are 64 bytes on the wire; setup (creating the connections) is outside the timed
//! loop. Under `cargo test` each runs once with 1k connections.

use std::time::{Duration, Instant};

use bench::{full_run, udp_frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datapath::conntrack::{Conntrack, CtAction, CtConfig, CtFilter, CtMeta};
use datapath::packet::{PacketBuf, checksum};

const BURST: usize = 32;
const MACS: ([u8; 6], [u8; 6]) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);

fn frame(src: u32, sport: u16) -> PacketBuf {
    let f = udp_frame(MACS.0, MACS.1, src, 0x0a00_0001, sport, 53, 60);
    PacketBuf::from_frame(&f).expect("fits")
}

fn commit() -> CtAction {
    CtAction {
        commit: true,
        ..CtAction::default()
    }
}

/// xorshift, for picking connections.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn established(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    g.throughput(Throughput::Elements(BURST as u64));
    // CONNTRACK_BENCH_SIZES=1000 limits the setup (for bench/instructions, which cannot
    // skip the setup of benchmarks its filter leaves out).
    let sizes: Vec<usize> = match std::env::var("CONNTRACK_BENCH_SIZES") {
        Ok(v) => v.split(',').filter_map(|s| s.parse().ok()).collect(),
        Err(_) if full_run() => vec![1_000, 1_000_000],
        Err(_) => vec![1_000],
    };
    for &n in &sizes {
        let ct = Conntrack::new(CtConfig {
            max_conns: 2_000_000,
            ..CtConfig::default()
        });
        let mut t = ct.thread();
        let mut md = [CtMeta::default(); BURST];
        let members: Vec<u8> = (0..BURST as u8).collect();
        // Connection i: 10.128.0.0 + i, port 1000 -> 10.0.0.1:53, committed, then answered.
        for chunk in (0..n).collect::<Vec<_>>().chunks(BURST) {
            let mut pkts: Vec<Option<PacketBuf>> = chunk
                .iter()
                .map(|&i| Some(frame(0x0a80_0000 + i as u32, 1000)))
                .collect();
            let m: Vec<u8> = (0..pkts.len() as u8).collect();
            ct.execute(&mut t, &commit(), &mut pkts, &mut md, &m, 0);
            let mut replies: Vec<Option<PacketBuf>> = chunk
                .iter()
                .map(|&i| {
                    let f = udp_frame(
                        MACS.1,
                        MACS.0,
                        0x0a00_0001,
                        0x0a80_0000 + i as u32,
                        53,
                        1000,
                        60,
                    );
                    Some(PacketBuf::from_frame(&f).expect("fits"))
                })
                .collect();
            ct.execute(&mut t, &commit(), &mut replies, &mut md, &m, 0);
        }
        assert_eq!(ct.len(), n);
        // 64 bursts of packets of random connections, reused round robin.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut bursts: Vec<Vec<Option<PacketBuf>>> = (0..64)
            .map(|_| {
                (0..BURST)
                    .map(|_| Some(frame(0x0a80_0000 + (next(&mut x) % n as u64) as u32, 1000)))
                    .collect()
            })
            .collect();
        let mut k = 0;
        g.bench_function(
            format!("established/conns={},64B,burst=32", label(n)),
            |b| {
                b.iter(|| {
                    k = (k + 1) % bursts.len();
                    ct.execute(&mut t, &commit(), &mut bursts[k], &mut md, &members, 1);
                    assert!(md[0].state.has(datapath::conntrack::CtState::EST));
                })
            },
        );
        println!(
            "conntrack memory with {n} connections: {} bytes per connection",
            ct.memory_bytes() / n
        );
    }
    g.finish();
}

fn label(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}

fn new_conns(c: &mut Criterion) {
    let mut g = c.benchmark_group("conntrack");
    g.throughput(Throughput::Elements(BURST as u64));
    let ct = Conntrack::new(CtConfig::default());
    let mut t = ct.thread();
    let mut md = [CtMeta::default(); BURST];
    let members: Vec<u8> = (0..BURST as u8).collect();
    let mut pkts: Vec<Option<PacketBuf>> =
        (0..BURST).map(|i| Some(frame(i as u32, 1000))).collect();
    let mut src = 0x0b00_0000u32;
    g.bench_function("new_commit/64B,burst=32", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                // Fresh source addresses (checksum patched): every packet a new connection.
                for p in pkts.iter_mut().flatten() {
                    let d = p.data_mut();
                    let old = [d[26], d[27], d[28], d[29]];
                    src = src.wrapping_add(1);
                    d[26..30].copy_from_slice(&src.to_be_bytes());
                    let c = u16::from_be_bytes([d[24], d[25]]);
                    let c = checksum::update(c, &old, &src.to_be_bytes());
                    d[24..26].copy_from_slice(&c.to_be_bytes());
                }
                if ct.len() > 900_000 {
                    ct.flush(&CtFilter::default());
                }
                let start = Instant::now();
                ct.execute(&mut t, &commit(), &mut pkts, &mut md, &members, 1);
                spent += start.elapsed();
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, established, new_conns);
criterion_main!(benches);
