//! The whole pipeline on in-memory ports, one poll thread on the bench thread: 64-byte
//! frames, bursts of 32. Each iteration is one poll of the ingress port (32 packets), with
//! the egress port's buffers recycled to the ingress ring (moved, not copied).

use std::sync::Arc;

use bench::{mac, scale, udp_frame};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey, FlowMask};
use datapath::l2::{VlanMode, VlanSet};
use datapath::pipeline::{CaptureOptions, Datapath, DatapathConfig, Mirror, Pmd};
use datapath::port::{MemPort, Port};
use datapath::types::{PortNo, TableId, VlanId};

fn add(dp: &Datapath, priority: u16, key: FlowKey, mask: FlowMask, actions: Vec<Action>) {
    let spec = FlowSpec {
        table: TableId(0),
        priority,
        key: key.masked(&mask),
        mask,
        cookie: 0,
        idle_timeout_s: 0,
        hard_timeout_s: 0,
        send_flow_removed: false,
        instructions: Instructions::actions(actions),
    };
    dp.flow_mods(&[FlowMod::Add {
        spec,
        check_overlap: false,
    }])
    .expect("flow installs");
}

fn bridge(config: DatapathConfig, n: u32) -> (Datapath, Vec<Arc<MemPort>>) {
    let (dp, _rx) = Datapath::new(config);
    let ports: Vec<_> = (1..=n)
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
    (dp, ports)
}

/// Warms the caches, then measures one poll per iteration with the buffers circulating.
fn circulate(
    b: &mut criterion::Bencher<'_>,
    pmd: &mut Pmd,
    ports: &[Arc<MemPort>],
    back: impl Fn(&[Arc<MemPort>]),
) {
    for _ in 0..200 {
        pmd.poll_once();
        back(ports);
    }
    b.iter(|| {
        pmd.poll_once();
        back(ports);
    });
}

fn emc_hit(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(32));
    for flows in [1u32, 64, 1024] {
        let (dp, ports) = bridge(DatapathConfig::default(), 2);
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, 1);
        let mut m = FlowKey::ZERO;
        m.set(Field::InPort, u32::MAX as u128);
        add(&dp, 100, k, m, vec![Action::Output(PortNo(2))]);
        ports[0].inject(bench::udp_flows(flows, 1024, 60));
        let mut pmd = dp.new_pmd();
        g.bench_function(format!("emc_hit/flows={flows},64B,burst=32"), |b| {
            circulate(b, &mut pmd, &ports, |p| p[1].recycle_into(&p[0]))
        });
        let c = pmd.counters();
        assert_eq!(c.total_drops(), 0);
    }
    g.finish();
}

/// `emc_hit/flows=1` on a bridge of four ports with a port mirror configured that does not
/// select its traffic: on another bridge (`other_bridge`: nothing of it is read), or on
/// this bridge between its two other ports (`same_bridge`: each burst starts its packets'
/// mirror masks empty). Compare with `none`, the same bridge without a mirror anywhere.
fn mirror_elsewhere(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(32));
    for place in ["none", "other_bridge", "same_bridge"] {
        let (dp, ports) = bridge(DatapathConfig::default(), 4);
        let mut k = FlowKey::ZERO;
        k.set(Field::InPort, 1);
        let mut m = FlowKey::ZERO;
        m.set(Field::InPort, u32::MAX as u128);
        add(&dp, 100, k, m, vec![Action::Output(PortNo(2))]);
        let (other, _other_ports) = bridge(DatapathConfig::default(), 4);
        let mirror = Mirror {
            name: "m".into(),
            select_src: vec![PortNo(3)],
            select_dst: vec![PortNo(3)],
            output: PortNo(4),
            ..Mirror::default()
        };
        match place {
            "same_bridge" => dp.set_mirrors(vec![mirror]).expect("mirror"),
            "other_bridge" => other.set_mirrors(vec![mirror]).expect("mirror"),
            _ => {}
        }
        ports[0].inject(bench::udp_flows(1, 1024, 60));
        let mut pmd = dp.new_pmd();
        g.bench_function(
            format!("mirror_elsewhere/{place},flows=1,64B,burst=32"),
            |b| circulate(b, &mut pmd, &ports, |p| p[1].recycle_into(&p[0])),
        );
        assert_eq!(pmd.counters().total_drops(), 0);
        assert!(ports[3].drain().is_empty(), "nothing selected");
    }
    g.finish();
}

/// `emc_hit/flows=1` with a capture on each port: port 1's received frames and port 2's
/// sent ones, 64 frames copied per poll (each of 64 bytes). The captures are drained after
/// each poll, outside `Pmd::poll_once`, as the daemon's reader does on another thread: the
/// difference from `emc_hit/flows=1` in `Pmd::poll_once`'s instructions is what capturing
/// costs the poll thread.
fn capture(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(32));
    let (dp, ports) = bridge(DatapathConfig::default(), 2);
    let mut k = FlowKey::ZERO;
    k.set(Field::InPort, 1);
    let mut m = FlowKey::ZERO;
    m.set(Field::InPort, u32::MAX as u128);
    add(&dp, 100, k, m, vec![Action::Output(PortNo(2))]);
    ports[0].inject(bench::udp_flows(1, 1024, 60));
    let opts = |rx, tx| CaptureOptions {
        rx,
        tx,
        snaplen: 65535,
    };
    let rx = dp
        .start_capture(PortNo(1), opts(true, false))
        .expect("capture");
    let tx = dp
        .start_capture(PortNo(2), opts(false, true))
        .expect("capture");
    let mut pmd = dp.new_pmd();
    g.bench_function("capture/rx+tx,flows=1,64B,burst=32", |b| {
        circulate(b, &mut pmd, &ports, |p| {
            p[1].recycle_into(&p[0]);
            rx.drain(usize::MAX, |_| {});
            tx.drain(usize::MAX, |_| {});
        })
    });
    // Checked only when the benchmark ran.
    if pmd.counters().rx_packets.get() > 0 {
        assert_eq!(rx.dropped() + tx.dropped(), 0, "drained after every poll");
    }
    g.finish();
}

fn megaflow_hit(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(32));
    for masks in [1u32, 16] {
        let cfg = DatapathConfig {
            emc_entries: 0,
            ..DatapathConfig::default()
        };
        let (dp, ports) = bridge(cfg, 2);
        // Rule j matches UDP port 1000+j and a /(16+j) of the destination: traffic to rule j
        // probes the masks of rules 0..=j, so each rule yields a distinct megaflow mask.
        for j in 0..masks {
            let mut k = FlowKey::ZERO;
            let mut m = FlowKey::ZERO;
            k.set(Field::EthType, 0x0800);
            m.set(Field::EthType, 0xffff);
            k.set(Field::IpProto, 17);
            m.set(Field::IpProto, 0xff);
            k.set(Field::TpDst, 1000 + j as u128);
            m.set(Field::TpDst, 0xffff);
            k.set(Field::Ipv4Dst, 0x0a01_0000);
            m.set(Field::Ipv4Dst, (u32::MAX << (16 - j.min(16))) as u128);
            add(&dp, 1000 - j as u16, k, m, vec![Action::Output(PortNo(2))]);
        }
        let frames: Vec<_> = (0..1024u32)
            .map(|i| {
                udp_frame(
                    mac(1),
                    mac(2),
                    0x0a00_0000 | i,
                    0x0a01_0000,
                    5000,
                    1000 + (i % masks) as u16,
                    60,
                )
            })
            .collect();
        ports[0].inject(&frames);
        let mut pmd = dp.new_pmd();
        g.bench_function(format!("megaflow_hit/masks={masks},64B,burst=32"), |b| {
            circulate(b, &mut pmd, &ports, |p| p[1].recycle_into(&p[0]))
        });
        if pmd.counters().rx_packets.get() > 0 {
            assert_eq!(
                pmd.megaflow_masks(),
                masks as usize,
                "one megaflow mask per rule"
            );
        }
    }
    g.finish();
}

fn l2_normal(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(32));
    let macs = scale(10_000, 1_000) as u32;
    let (dp, ports) = bridge(DatapathConfig::default(), 2);
    add(&dp, 0, FlowKey::ZERO, FlowKey::ZERO, vec![Action::Normal]);
    let mut pmd = dp.new_pmd();
    // Half the hosts on port 1, half on port 2; every host sends once so all are learned.
    let half = macs / 2;
    let from1: Vec<_> = (0..half)
        .map(|i| udp_frame(mac(i), mac(half + (i * 7919) % half), 1, 2, 1, 2, 60))
        .collect();
    let from2: Vec<_> = (0..half)
        .map(|i| udp_frame(mac(half + i), mac((i * 104_729) % half), 1, 2, 1, 2, 60))
        .collect();
    ports[0].inject(&from1);
    ports[1].inject(&from2);
    pmd.poll_until_idle();
    ports[0].drain();
    ports[1].drain();
    assert_eq!(dp.mac_table().len(), macs as usize);
    ports[0].inject(from1.iter().cycle().take(2048));
    g.bench_function(format!("l2_normal/macs={macs},64B,burst=32"), |b| {
        circulate(b, &mut pmd, &ports, |p| p[1].recycle_into(&p[0]))
    });
    assert_eq!(pmd.counters().total_drops(), 0);
    g.finish();
}

fn slow_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    let n = 1024;
    g.throughput(Throughput::Elements(n as u64));
    let (dp, ports) = bridge(DatapathConfig::default(), 2);
    // Ten rules with different masks; the lowest one matches everything left.
    for j in 0..10u32 {
        let mut k = FlowKey::ZERO;
        let mut m = FlowKey::ZERO;
        k.set(Field::EthType, 0x0800);
        m.set(Field::EthType, 0xffff);
        k.set(Field::Ipv4Src, 0xc0a8_0000 + j as u128);
        m.set(Field::Ipv4Src, 0xffff_ffff);
        add(&dp, 100, k, m, vec![]);
    }
    add(
        &dp,
        1,
        FlowKey::ZERO,
        FlowKey::ZERO,
        vec![Action::Output(PortNo(2))],
    );
    let mut next = 0u32;
    g.bench_function("slow_path/new_flows,64B", |b| {
        b.iter_batched(
            || {
                // Every frame a new source address: a new megaflow each.
                let frames: Vec<_> = (0..n)
                    .map(|_| {
                        next = next.wrapping_add(1);
                        udp_frame(mac(1), mac(2), 0x0a00_0000 ^ next, 0x0a01_0001, 1, 2, 60)
                    })
                    .collect();
                ports[0].inject(&frames);
                ports[1].drain();
                dp.new_pmd()
            },
            |mut pmd| pmd.poll_until_idle(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A flow of `table` matching `ct_state` `value/mask` (and IPv4), with `actions`.
fn add_ct(dp: &Datapath, table: u8, value: u8, mask: u8, actions: Vec<Action>) {
    let (mut k, mut m) = (FlowKey::ZERO, FlowKey::ZERO);
    k.set(Field::EthType, 0x0800);
    m.set(Field::EthType, 0xffff);
    k.set(Field::CtState, value as u128);
    m.set(Field::CtState, mask as u128);
    let spec = FlowSpec {
        table: TableId(table),
        priority: 100,
        key: k.masked(&m),
        mask: m,
        cookie: 0,
        idle_timeout_s: 0,
        hard_timeout_s: 0,
        send_flow_removed: false,
        instructions: Instructions::actions(actions),
    };
    dp.flow_mods(&[FlowMod::Add {
        spec,
        check_overlap: false,
    }])
    .expect("flow installs");
}

/// Established connections through the stateful firewall's first two tables:
/// `ct_state=-trk,ip,actions=ct(table=1)`, then `ct_state=+trk+est,actions=output:2`
/// (`+new` commits). Compare with `emc_hit/flows=1024`, the same traffic without `ct`.
fn ct_established(c: &mut Criterion) {
    use datapath::conntrack::{CtAction, CtState};
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(32));
    let conns = 1024;
    let (dp, ports) = bridge(DatapathConfig::default(), 2);
    let ct = |commit: bool, table: Option<u8>| Action::Ct {
        ct: CtAction {
            commit,
            ..CtAction::default()
        },
        table: table.map(TableId),
        zone_src: None,
    };
    let trk = CtState::TRK;
    add_ct(&dp, 0, 0, trk, vec![ct(false, Some(1))]);
    let (new, est) = (trk | CtState::NEW, trk | CtState::EST);
    add_ct(
        &dp,
        1,
        new,
        new,
        vec![ct(true, None), Action::Output(PortNo(2))],
    );
    add_ct(&dp, 1, est, est, vec![Action::Output(PortNo(2))]);
    ports[0].inject(bench::udp_flows(conns, 1024, 60));
    let mut pmd = dp.new_pmd();
    g.bench_function(format!("ct_established/conns={conns},64B,burst=32"), |b| {
        circulate(b, &mut pmd, &ports, |p| p[1].recycle_into(&p[0]))
    });
    // Checked only when the benchmark ran (a filter that leaves it out still runs this).
    let c = pmd.counters();
    if c.rx_packets.get() > 0 {
        assert_eq!(c.total_drops(), 0, "every packet went through ct and out");
        assert_eq!(dp.conntrack().len(), conns as usize);
    }
    g.finish();
}

criterion_group!(
    benches,
    emc_hit,
    mirror_elsewhere,
    capture,
    megaflow_hit,
    l2_normal,
    slow_path,
    ct_established
);
criterion_main!(benches);
