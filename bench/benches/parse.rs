//! Parse + flow key extraction, 64-byte frames, bursts of 32.

use bench::udp_frame;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datapath::flow::{FlowKey, Layout, extract};
use datapath::types::PortNo;
use std::hint::black_box;

fn extract_burst(c: &mut Criterion) {
    let frames: Vec<Vec<u8>> = (0..32)
        .map(|i| {
            udp_frame(
                bench::mac(1),
                bench::mac(2),
                0x0a00_0001 + i,
                0x0a01_0001,
                1000 + i as u16,
                80,
                60,
            )
        })
        .collect();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(32));
    g.bench_function("extract/udp4/64B,burst=32", |b| {
        let mut keys = [FlowKey::ZERO; 32];
        let mut lays = [Layout::default(); 32];
        b.iter(|| {
            for (i, f) in frames.iter().enumerate() {
                if let Ok(l) = extract(black_box(f), PortNo(1), &mut keys[i]) {
                    lays[i] = l;
                }
            }
            black_box((&keys, &lays));
        })
    });
    g.finish();
}

criterion_group!(benches, extract_burst);
criterion_main!(benches);
