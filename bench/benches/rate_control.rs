//! What rate control costs per packet: the same exact-match forwarding path (64-byte frames,
//! bursts of 32, 64 flows) plain, through a meter, behind an ingress policer, and through an
//! egress shaper with two queues. Rates are high enough that nothing is dropped, so the
//! difference is the bookkeeping itself (what dropping costs is a drop, not a forward).

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey, FlowMask};
use datapath::l2::{VlanMode, VlanSet};
use datapath::meter::{Band, BandKind, Meter, MeterUnit};
use datapath::pipeline::{Datapath, DatapathConfig};
use datapath::port::{MemPort, Port};
use datapath::qos::{EgressQos, Policer, QosConfig, QueueConfig};
use datapath::types::{MeterId, PortNo, TableId, VlanId};

#[derive(Clone, Copy)]
enum Variant {
    Plain,
    Meter,
    Policer,
    Shaper,
}

fn setup(v: Variant) -> (Datapath, Vec<Arc<MemPort>>) {
    let (dp, _rx) = Datapath::new(DatapathConfig::default());
    let ports: Vec<_> = (1..=2)
        .map(|i| Arc::new(MemPort::new(format!("p{i}"), 8192)))
        .collect();
    for (i, p) in ports.iter().enumerate() {
        let mode = VlanMode::Trunk {
            allowed: VlanSet::all(),
            native: Some(VlanId(0)),
        };
        dp.add_port(PortNo(i as u32 + 1), p.clone() as Arc<dyn Port>, mode)
            .expect("port");
    }
    let mut key = FlowKey::ZERO;
    key.set(Field::InPort, 1);
    let mut mask = FlowMask::ZERO;
    mask.set(Field::InPort, u32::MAX as u128);
    let mut instructions = Instructions::actions(vec![Action::Output(PortNo(2))]);
    let meter = |rate_kbps: u64| {
        Meter::new(
            MeterId(1),
            MeterUnit::Kbps,
            vec![Band {
                kind: BandKind::Drop,
                rate: rate_kbps,
                burst: rate_kbps / 1000,
            }],
            0,
        )
        .expect("meter")
    };
    match v {
        Variant::Plain => {}
        Variant::Meter => {
            // 1 Tbit/s: every packet conforms.
            dp.set_meter(meter(1_000_000_000)).expect("meter");
            instructions.meter = Some(MeterId(1));
        }
        Variant::Policer => {
            let p = Arc::new(Policer::new(1_000_000_000, 1_000_000, 0).expect("policer"));
            dp.transaction(|t| t.set_port_qos(PortNo(1), Some(p), None))
                .expect("policer");
        }
        Variant::Shaper => {
            let q = EgressQos::new(
                QosConfig {
                    max_rate_kbps: 1_000_000_000,
                    burst_kb: 1_000_000,
                    queues: vec![QueueConfig::new(1)],
                },
                0,
            )
            .expect("qos");
            dp.transaction(|t| t.set_port_qos(PortNo(2), None, Some(Arc::new(q))))
                .expect("qos");
        }
    }
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
            instructions,
        },
        check_overlap: false,
    }])
    .expect("flow");
    (dp, ports)
}

fn rate_control(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_control");
    g.throughput(Throughput::Elements(32));
    for (name, v) in [
        ("plain", Variant::Plain),
        ("meter_conforming", Variant::Meter),
        ("ingress_policer", Variant::Policer),
        ("egress_shaper", Variant::Shaper),
    ] {
        let (dp, ports) = setup(v);
        ports[0].inject(bench::udp_flows(64, 4096, 60));
        let mut pmd = dp.new_pmd();
        let refill = |p: &[Arc<MemPort>]| p[1].recycle_into(&p[0]);
        for _ in 0..200 {
            pmd.poll_once();
            refill(&ports);
        }
        g.bench_function(format!("{name}/flows=64,64B,burst=32"), |b| {
            b.iter(|| {
                pmd.poll_once();
                refill(&ports);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, rate_control);
criterion_main!(benches);
