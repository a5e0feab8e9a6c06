//! OpenFlow table lookup (tuple-space search): 1k/100k/1M rules over 1/16/64 masks.
//! Every lookup hits a rule. Reported as lookups per second.

use bench::{full_run, scale};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec, Pipeline};
use datapath::flow::{Field, FlowKey, FlowMask};
use datapath::types::{PortNo, TableId};
use std::hint::black_box;

/// Mask `m` of a family of distinct masks: IPv4 destination prefixes /8../32, optionally
/// with the UDP destination port and an IPv4 source /16.
pub fn mask(m: usize) -> FlowMask {
    let mut k = FlowKey::ZERO;
    k.set(Field::EthType, 0xffff);
    let prefix = 32 - (m % 25) as u32;
    k.set(Field::Ipv4Dst, (u32::MAX << (32 - prefix)) as u128);
    if (m / 25) % 2 == 1 {
        k.set(Field::IpProto, 0xff);
        k.set(Field::TpDst, 0xffff);
    }
    if (m / 50) % 2 == 1 {
        k.set(Field::Ipv4Src, 0xffff_0000);
    }
    k
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn random_key(s: &mut u64) -> FlowKey {
    let mut k = FlowKey::ZERO;
    k.set(Field::EthType, 0x0800);
    k.set(Field::IpProto, 17);
    k.set(Field::Ipv4Dst, (xorshift(s) as u32) as u128);
    k.set(Field::Ipv4Src, (xorshift(s) as u32) as u128);
    k.set(Field::TpDst, (xorshift(s) % 4096) as u128);
    k
}

/// A pipeline whose table 0 holds `rules` rules spread over `masks` masks, and `probes` keys
/// that each match one of them.
pub fn build(rules: usize, masks: usize, probes: usize) -> (Pipeline, Vec<FlowKey>) {
    let mut s = 0x1234_5678_9abc_def0u64;
    let mut mods = Vec::with_capacity(rules);
    let mut keys = Vec::with_capacity(rules);
    for i in 0..rules {
        let m = mask(i % masks);
        let k = random_key(&mut s);
        keys.push(k);
        mods.push(FlowMod::Add {
            spec: FlowSpec {
                table: TableId(0),
                priority: (100 + (i % masks)) as u16,
                key: k.masked(&m),
                mask: m,
                cookie: i as u64,
                idle_timeout_s: 0,
                hard_timeout_s: 0,
                send_flow_removed: false,
                instructions: Instructions::actions(vec![Action::Output(PortNo(2))]),
            },
            check_overlap: false,
        });
    }
    let (p, _) = Pipeline::new().apply(&mods, 0).expect("rules install");
    let probes = (0..probes)
        .map(|i| keys[(xorshift(&mut s) as usize + i) % rules])
        .collect();
    (p, probes)
}

fn lookup(c: &mut Criterion) {
    let rule_counts = if full_run() {
        vec![1_000, 100_000, 1_000_000]
    } else {
        vec![1_000]
    };
    let mut g = c.benchmark_group("classifier");
    g.sample_size(scale(30, 10));
    for &rules in &rule_counts {
        for masks in [1usize, 16, 64] {
            let (p, probes) = build(rules, masks, 4096);
            let table = p.table(TableId(0));
            g.throughput(Throughput::Elements(32));
            g.bench_function(format!("lookup/masks={masks},rules={rules}"), |b| {
                let mut i = 0;
                b.iter(|| {
                    for _ in 0..32 {
                        let mut wc = FlowMask::ZERO;
                        let r = table.lookup(black_box(&probes[i & 4095]), &mut wc);
                        black_box(r);
                        i += 1;
                    }
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
