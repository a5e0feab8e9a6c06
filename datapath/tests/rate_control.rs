//! Rate control through the whole pipeline on in-memory ports, with a manual clock: meters
//! (kbps and pktps, drop and DSCP remark), ingress policing, egress shaping with priority
//! and weighted queues. Offered load is spread evenly over small clock steps; what comes out
//! is measured against the configured rate.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::sync::Arc;

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey, FlowMask};
use datapath::l2::{VlanMode, VlanSet};
use datapath::meter::{Band, BandKind, Meter, MeterUnit};
use datapath::packet::PacketBuf;
use datapath::pipeline::{Datapath, DatapathConfig, ManualClock, Pmd};
use datapath::port::MemPort;
use datapath::qos::{EgressQos, Policer, QosConfig, QueueConfig};
use datapath::stats::{DropReason, PmdCounters};
use datapath::types::{MeterId, PortNo, TableId, VlanId};
use etherparse::PacketBuilder;

struct Rig {
    dp: Datapath,
    pmd: Pmd,
    clock: ManualClock,
    ports: Vec<Arc<MemPort>>,
    counters: Arc<PmdCounters>,
}

impl Rig {
    fn new() -> Rig {
        let clock = ManualClock::new();
        let config = DatapathConfig {
            pool_buffers: 1 << 16,
            ..DatapathConfig::default()
        };
        let (dp, _packet_in) = Datapath::with_clock(config, clock.clone());
        let mut ports = Vec::new();
        for i in 0..3u32 {
            let p = Arc::new(MemPort::new(format!("p{}", i + 1), 1 << 16));
            dp.add_port(
                PortNo(i + 1),
                p.clone(),
                VlanMode::Trunk {
                    allowed: VlanSet::all(),
                    native: Some(VlanId(0)),
                },
            )
            .unwrap();
            ports.push(p);
        }
        let pmd = dp.new_pmd();
        let counters = pmd.counters();
        Rig {
            dp,
            pmd,
            clock,
            ports,
            counters,
        }
    }

    fn flow(&self, priority: u16, m: &[(Field, u128)], ins: Instructions) {
        let mut key = FlowKey::ZERO;
        let mut mask = FlowMask::ZERO;
        for &(f, v) in m {
            key.set(f, v);
            mask.set(f, f.full_mask());
        }
        self.dp
            .flow_mods(&[FlowMod::Add {
                spec: FlowSpec {
                    table: TableId(0),
                    priority,
                    key: key.masked(&mask),
                    mask,
                    cookie: 0,
                    idle_timeout_s: 0,
                    hard_timeout_s: 0,
                    send_flow_removed: false,
                    instructions: ins,
                },
                check_overlap: false,
            }])
            .unwrap();
    }

    fn meter(&self, id: u32, unit: MeterUnit, bands: Vec<Band>) {
        self.dp
            .set_meter(Meter::new(MeterId(id), unit, bands, self.dp.now_ns()).unwrap())
            .unwrap();
    }

    /// Offers `streams` (frame, frames per second) into port 1 for `secs` seconds in steps
    /// of `step_ns`; returns what came out of port 2: (frames, bytes) per stream, told apart
    /// by their first differing byte at `tag_at`.
    fn offer(
        &mut self,
        streams: &[(Vec<u8>, u64)],
        secs: f64,
        step_ns: u64,
        tag_at: usize,
    ) -> Vec<(u64, u64)> {
        let steps = (secs * 1e9 / step_ns as f64) as u64;
        let mut owed = vec![0u128; streams.len()];
        let mut out = vec![(0u64, 0u64); streams.len()];
        let mut sent = VecDeque::new();
        for _ in 0..steps {
            self.clock.advance(step_ns);
            let mut batch: Vec<&[u8]> = Vec::new();
            for (i, (frame, pps)) in streams.iter().enumerate() {
                // Frames owed × 10⁹, so fractional rates accumulate exactly.
                owed[i] += *pps as u128 * step_ns as u128;
                while owed[i] >= 1_000_000_000 {
                    owed[i] -= 1_000_000_000;
                    batch.push(frame);
                }
            }
            let mut k = 0;
            while k < batch.len() {
                k += self.ports[0].inject(batch[k..].iter().take(4096));
                self.pmd.poll_until_idle();
            }
            // Let the egress shaper send what this step allows.
            self.pmd.poll_once();
            self.ports[1].drain_bufs(&mut sent);
            for b in sent.drain(..) {
                let i = streams
                    .iter()
                    .position(|(f, _)| f[tag_at] == b.data()[tag_at])
                    .unwrap();
                out[i].0 += 1;
                out[i].1 += b.len() as u64;
            }
        }
        out
    }
}

/// A UDP frame of `len` bytes in all, with `tag` as its last source MAC byte and destination
/// port `dport`.
fn frame(len: usize, tag: u8, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    let payload = vec![0u8; len - 42];
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, tag], [2, 0, 0, 0, 0, 0xee])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, dport)
        .write(&mut v, &payload)
        .unwrap();
    assert_eq!(v.len(), len);
    v
}

const TAG: usize = 11;

fn metered(id: u32) -> Instructions {
    Instructions {
        meter: Some(MeterId(id)),
        ..Instructions::actions(vec![Action::Output(PortNo(2))])
    }
}

fn within(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= want * tol
}

#[test]
fn kbps_meters_deliver_their_rate_within_1_percent() {
    // (rate in kbit/s, frame length, seconds, clock step)
    for (kbps, len, secs, step) in [
        (1_000u64, 1000usize, 20.0, 1_000_000u64),
        (100_000, 1500, 2.0, 100_000),
        (10_000_000, 1500, 0.2, 10_000),
    ] {
        let mut r = Rig::new();
        let burst_kb = kbps / 100; // 10 ms worth
        r.meter(
            1,
            MeterUnit::Kbps,
            vec![Band {
                kind: BandKind::Drop,
                rate: kbps,
                burst: burst_kb,
            }],
        );
        r.flow(1, &[], metered(1));
        // Offer twice the rate.
        let pps = 2 * kbps * 1000 / (len as u64 * 8);
        let out = r.offer(&[(frame(len, 1, 9), pps)], secs, step, TAG);
        let bits = (out[0].1 * 8) as f64 - (burst_kb * 1000) as f64;
        let rate = bits / secs;
        assert!(
            within(rate, (kbps * 1000) as f64, 0.01),
            "{kbps} kbit/s meter passed {rate:.0} bit/s"
        );
        let offered = (pps as f64 * secs) as u64;
        assert_eq!(
            r.counters.drops_for(DropReason::Meter) + out[0].0,
            offered,
            "every frame is passed or counted as a meter drop"
        );
    }
}

#[test]
fn pktps_meter_and_burst_are_honoured() {
    let mut r = Rig::new();
    r.meter(
        1,
        MeterUnit::Pktps,
        vec![Band {
            kind: BandKind::Drop,
            rate: 10_000,
            burst: 500,
        }],
    );
    r.flow(1, &[], metered(1));
    // An instantaneous burst of 2000 frames: exactly the 500 of the burst pass.
    let f = frame(64, 1, 9);
    let burst: Vec<&[u8]> = vec![&f; 2000];
    r.ports[0].inject(burst);
    r.pmd.poll_until_idle();
    assert_eq!(r.ports[1].drain().len(), 500);
    // Then 30 kpps for 5 s: 10 kpps pass (the bucket starts empty after the burst).
    let out = r.offer(&[(f.clone(), 30_000)], 5.0, 1_000_000, TAG);
    assert!(within(out[0].0 as f64 / 5.0, 10_000.0, 0.01), "{out:?}");
}

#[test]
fn dscp_remark_band_remarks_what_exceeds_it_and_modify_keeps_stats() {
    let mut r = Rig::new();
    let bands = vec![
        Band {
            kind: BandKind::DscpRemark { prec_level: 1 },
            rate: 1000,
            burst: 10,
        },
        Band {
            kind: BandKind::Drop,
            rate: 2000,
            burst: 20,
        },
    ];
    r.meter(1, MeterUnit::Pktps, bands.clone());
    r.flow(1, &[], metered(1));
    // AF11 (dscp 10): remarked to AF12 (dscp 12) above 1000 pps, dropped above 2000 pps.
    let mut f = frame(100, 1, 9);
    f[15] = 10 << 2;
    // Fix the IPv4 checksum for the new TOS.
    f[24] = 0;
    f[25] = 0;
    let sum = datapath::packet::checksum::data(&f[14..34]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    let mut sent = VecDeque::new();
    let (mut plain, mut remarked) = (0, 0);
    for _ in 0..1000 {
        r.clock.advance(1_000_000);
        r.ports[0].inject(std::iter::repeat_n(&f, 3));
        r.pmd.poll_until_idle();
        r.ports[1].drain_bufs(&mut sent);
        for b in sent.drain(..) {
            match b.data()[15] >> 2 {
                10 => plain += 1,
                12 => remarked += 1,
                d => panic!("dscp {d}"),
            }
            let p = etherparse::SlicedPacket::from_ethernet(b.data()).unwrap();
            let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
                panic!("not ipv4")
            };
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
        }
    }
    // 3000 pps offered for 1 s: ~1000 plain, ~1000 remarked, ~1000 dropped.
    assert!(within(plain as f64, 1010.0, 0.02), "plain {plain}");
    assert!(within(remarked as f64, 1010.0, 0.02), "remarked {remarked}");
    let m = r.dp.snapshot().meters[&MeterId(1)].clone();
    let input = m.input.packets.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(input, 3000);
    // Modify the meter while traffic runs: statistics continue.
    r.meter(1, MeterUnit::Pktps, bands);
    r.clock.advance(1_000_000);
    r.ports[0].inject(std::iter::repeat_n(&f, 3));
    r.pmd.poll_until_idle();
    let m = r.dp.snapshot().meters[&MeterId(1)].clone();
    assert_eq!(
        m.input.packets.load(std::sync::atomic::Ordering::Relaxed),
        3003
    );
}

#[test]
fn ingress_policer_drops_above_its_rate() {
    let mut r = Rig::new();
    r.flow(
        1,
        &[],
        Instructions::actions(vec![Action::Output(PortNo(2))]),
    );
    let pol = Arc::new(Policer::new(10_000, 100, 0).unwrap());
    r.dp.transaction(|t| t.set_port_qos(PortNo(1), Some(pol.clone()), None))
        .unwrap();
    // 50 Mbit/s of 1250-byte frames for 2 s through a 10 Mbit/s policer.
    let out = r.offer(&[(frame(1250, 1, 9), 5000)], 2.0, 100_000, TAG);
    let rate = ((out[0].1 * 8) as f64 - 100_000.0) / 2.0;
    assert!(within(rate, 10e6, 0.01), "{rate}");
    let dropped = r.counters.drops_for(DropReason::IngressPolicer);
    assert_eq!(dropped + out[0].0, 10_000);
    assert_eq!(
        pol.dropped.load(std::sync::atomic::Ordering::Relaxed),
        dropped
    );
}

fn shaped_rig(queues: Vec<QueueConfig>, kbps: u64) -> Rig {
    let r = Rig::new();
    // udp dst 1 → queue 1, udp dst 2 → queue 2, the rest queue 0; all to port 2.
    for q in [1u32, 2] {
        r.flow(
            10,
            &[
                (Field::EthType, 0x0800),
                (Field::IpProto, 17),
                (Field::TpDst, q as u128),
            ],
            Instructions::actions(vec![Action::SetQueue(q), Action::Output(PortNo(2))]),
        );
    }
    r.flow(
        1,
        &[],
        Instructions::actions(vec![Action::Output(PortNo(2))]),
    );
    let qos = EgressQos::new(
        QosConfig {
            max_rate_kbps: kbps,
            burst_kb: 0,
            queues,
        },
        0,
    )
    .unwrap();
    r.dp.transaction(|t| t.set_port_qos(PortNo(2), None, Some(Arc::new(qos))))
        .unwrap();
    r
}

#[test]
fn egress_priority_queue_keeps_its_rate_under_congestion() {
    let mut r = shaped_rig(
        vec![QueueConfig {
            id: 1,
            priority: 7,
            weight: 1,
            limit: 64,
        }],
        20_000,
    );
    // Bulk: 50 Mbit/s on queue 0; priority: 5 Mbit/s on queue 1; the port sends 20 Mbit/s.
    let bulk = frame(1250, 1, 9);
    let prio = frame(625, 2, 1);
    let out = r.offer(&[(bulk, 5000), (prio, 1000)], 2.0, 100_000, TAG);
    let prio_rate = (out[1].1 * 8) as f64 / 2.0;
    let bulk_rate = (out[0].1 * 8) as f64 / 2.0;
    assert_eq!(out[1].0, 2000, "every priority frame is sent");
    assert!(within(prio_rate, 5e6, 0.01), "priority {prio_rate}");
    assert!(within(bulk_rate, 15e6, 0.02), "bulk {bulk_rate}");
    assert!(r.counters.drops_for(DropReason::QueueFull) > 0);
    let st = r.dp.snapshot().ports[1].qos.as_ref().unwrap().stats();
    assert_eq!(st.iter().find(|s| s.id == 1).unwrap().dropped, 0);
}

#[test]
fn egress_queues_of_equal_priority_share_by_weight() {
    let mut r = shaped_rig(
        vec![
            QueueConfig {
                id: 1,
                priority: 0,
                weight: 3,
                limit: 256,
            },
            QueueConfig {
                id: 2,
                priority: 0,
                weight: 1,
                limit: 256,
            },
        ],
        8_000,
    );
    let a = frame(1000, 1, 1);
    let b = frame(1000, 2, 2);
    let out = r.offer(&[(a, 2000), (b, 2000)], 2.0, 100_000, TAG);
    let ratio = out[0].1 as f64 / out[1].1 as f64;
    assert!((2.8..3.2).contains(&ratio), "weights 3:1 gave {out:?}");
    let total = ((out[0].1 + out[1].1) * 8) as f64 / 2.0;
    assert!(within(total, 8e6, 0.02), "total {total}");
}

#[test]
fn set_queue_without_port_queues_is_ignored() {
    let mut r = Rig::new();
    r.flow(
        1,
        &[],
        Instructions::actions(vec![Action::SetQueue(5), Action::Output(PortNo(2))]),
    );
    let f = frame(100, 1, 9);
    r.ports[0].inject([&f]);
    r.pmd.poll_until_idle();
    assert_eq!(r.ports[1].drain(), vec![f]);
    let _ = PacketBuf::new();
}
