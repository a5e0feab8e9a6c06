//! VXLAN costs: the same exact-match forwarding (64 UDP flows, 64-byte inner frames, bursts
//! of 32) to a plain port and to a VXLAN tunnel port (encapsulation into headroom, hand-over
//! to the endpoint's ring); and decapsulation alone. In both pipeline cases the egress
//! side's buffers go back to the ingress ring the same way, so the difference is the tunnel.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey, FlowMask};
use datapath::l2::{VlanMode, VlanSet};
use datapath::packet::{BufPool, PacketBuf};
use datapath::pipeline::{Datapath, DatapathConfig};
use datapath::port::{Batch, MemPort, Port};
use datapath::tunnel::{
    Clock, EncapHeader, EndpointPort, Outer, TunnelConfig, TunnelEndpoint, TunnelPort, decap,
};
use datapath::types::{PortNo, TableId, VlanId};

const LOCAL: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 2);

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("tunnel");
    g.throughput(Throughput::Elements(32));
    for tunnel in [false, true] {
        let (dp, _rx) = Datapath::new(DatapathConfig::default());
        let mode = VlanMode::Trunk {
            allowed: VlanSet::all(),
            native: Some(VlanId(0)),
        };
        let ingress = Arc::new(MemPort::new("in", 8192));
        dp.add_port(PortNo(1), ingress.clone(), mode.clone())
            .expect("port");
        let plain = Arc::new(MemPort::new("out", 8192));
        let ep = Arc::new(TunnelEndpoint::new(
            "tep",
            LOCAL,
            24,
            None,
            [2, 0, 0, 0, 0, 1],
            Clock(Arc::new(|| 0)),
        ));
        ep.neigh.learn(REMOTE, [2, 0, 0, 0, 0, 2], 0);
        let endpoint = EndpointPort(ep.clone());
        if tunnel {
            let t = TunnelPort::new(
                "vx0",
                TunnelConfig {
                    remote: Some(REMOTE),
                    key: Some(42),
                    ..TunnelConfig::default()
                },
                ep.clone(),
            );
            dp.add_port(PortNo(2), Arc::new(t), mode).expect("port");
        } else {
            dp.add_port(PortNo(2), plain.clone(), mode).expect("port");
        }
        let mut key = FlowKey::ZERO;
        key.set(Field::InPort, 1);
        let mut mask = FlowMask::ZERO;
        mask.set(Field::InPort, u32::MAX as u128);
        dp.flow_mods(&[FlowMod::Add {
            spec: FlowSpec {
                table: TableId(0),
                priority: 100,
                key: key.masked(&mask),
                mask,
                cookie: 0,
                idle_timeout_s: 0,
                hard_timeout_s: 0,
                send_flow_removed: false,
                instructions: Instructions::actions(vec![Action::Output(PortNo(2))]),
            },
            check_overlap: false,
        }])
        .expect("flow");
        ingress.inject(bench::udp_flows(64, 4096, 60));
        let mut pmd = dp.new_pmd();
        let mut back: VecDeque<PacketBuf> = VecDeque::with_capacity(64);
        let mut batch = Batch::new();
        let mut pool = BufPool::new(64);
        // Egress buffers back to the ingress ring; tunnel frames lose their outer header
        // on the way (a trim, not a decapsulation, so only the encapsulation is measured).
        let mut recycle = || {
            if tunnel {
                while endpoint.rx_burst(0, &mut batch, &mut pool) > 0 {
                    for mut b in batch.drain(..) {
                        b.trim_front(50);
                        back.push_back(b);
                    }
                }
            } else {
                plain.drain_bufs(&mut back);
            }
            ingress.inject_bufs(&mut back);
        };
        for _ in 0..200 {
            pmd.poll_once();
            recycle();
        }
        let name = if tunnel {
            "vxlan_encap_output"
        } else {
            "plain_output"
        };
        g.bench_function(format!("{name}/flows=64,64B,burst=32"), |b| {
            b.iter(|| {
                pmd.poll_once();
                recycle();
            })
        });
    }
    g.finish();
}

fn decap_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("tunnel");
    g.throughput(Throughput::Elements(32));
    let o = Outer::new([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], REMOTE, LOCAL);
    let h = EncapHeader::vxlan(&o, 42, 4789);
    let frames = bench::udp_flows(32, 32, 60);
    let mut bufs: Vec<PacketBuf> = frames
        .iter()
        .map(|f| {
            let mut b = PacketBuf::from_frame(f).expect("frame");
            h.push(&mut b, 1500).expect("encap");
            b
        })
        .collect();
    // Each iteration decapsulates 32 packets, then puts the outer headers back by moving
    // the frame start (not timed as encapsulation: a pointer move).
    g.bench_function("vxlan_decap/64B,burst=32", |b| {
        b.iter(|| decap_burst(&mut bufs))
    });
    g.finish();
}

/// Decapsulates every buffer, then puts its outer headers back. A function of its own, so
/// `bench/instructions tunnel '^tunnel/vxlan_decap' decap_burst` counts it.
#[inline(never)]
fn decap_burst(bufs: &mut [PacketBuf]) {
    for p in bufs.iter_mut() {
        let m = decap(p, LOCAL).expect("decap");
        std::hint::black_box(m);
        p.prepend(50).expect("headroom");
    }
}

criterion_group!(benches, pipeline, decap_bench);
criterion_main!(benches);
