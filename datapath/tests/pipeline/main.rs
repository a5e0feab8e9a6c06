//! Pipeline tests on in-memory ports: install flows, inject frames, check what comes out of
//! which port and what the counters say.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

mod actions;
mod cache_consistency;
mod copies;
mod counts;
mod drops;
mod forwarding;

use std::sync::Arc;

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec, Selector};
use datapath::flow::{Field, FlowKey, FlowMask, extract};
use datapath::group::{Bucket, Group, GroupKind, Selection};
use datapath::l2::{VlanMode, VlanSet};
use datapath::pipeline::{Datapath, DatapathConfig, Pmd};
use datapath::port::MemPort;
use datapath::stats::{DropReason, PmdCounters};
use datapath::types::{GroupId, PortNo, TableId, VlanId};
use etherparse::PacketBuilder;

struct Bridge {
    dp: Datapath,
    pmd: Pmd,
    ports: Vec<Arc<MemPort>>,
    counters: Arc<PmdCounters>,
    packet_in: std::sync::mpsc::Receiver<datapath::pipeline::PacketIn>,
}

impl Bridge {
    fn new(n_ports: u32) -> Bridge {
        Bridge::with_modes(&vec![None; n_ports as usize])
    }

    fn with_modes(modes: &[Option<VlanMode>]) -> Bridge {
        Bridge::with_config(modes, DatapathConfig::default())
    }

    fn with_config(modes: &[Option<VlanMode>], config: DatapathConfig) -> Bridge {
        let (dp, packet_in) = Datapath::new(config);
        let mut ports = Vec::new();
        for (i, m) in modes.iter().enumerate() {
            let p = Arc::new(MemPort::new(format!("p{}", i + 1), 4096));
            let mode = m.clone().unwrap_or(VlanMode::Trunk {
                allowed: VlanSet::all(),
                native: Some(VlanId(0)),
            });
            dp.add_port(PortNo(i as u32 + 1), p.clone(), mode).unwrap();
            ports.push(p);
        }
        let pmd = dp.new_pmd();
        let counters = pmd.counters();
        Bridge {
            dp,
            pmd,
            ports,
            counters,
            packet_in,
        }
    }

    fn port(&self, no: u32) -> &MemPort {
        &self.ports[no as usize - 1]
    }

    fn add(&self, table: u8, priority: u16, m: &[(Field, u128, u128)], ins: Instructions) {
        self.dp
            .flow_mods(&[FlowMod::Add {
                spec: spec(table, priority, m, ins),
                check_overlap: false,
            }])
            .unwrap();
    }

    fn send(&mut self, port: u32, frames: &[Vec<u8>]) {
        let mut sent = 0;
        while sent < frames.len() {
            let n = self.port(port).inject(frames[sent..].iter().take(1024));
            sent += n;
            self.pmd.poll_until_idle();
        }
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.counters.drops_for(r)
    }
}

fn spec(
    table: u8,
    priority: u16,
    m: &[(Field, u128, u128)],
    instructions: Instructions,
) -> FlowSpec {
    let mut key = FlowKey::ZERO;
    let mut mask = FlowMask::ZERO;
    for &(f, v, msk) in m {
        key.set(f, v);
        mask.set(f, msk);
    }
    FlowSpec {
        table: TableId(table),
        priority,
        key: key.masked(&mask),
        mask,
        cookie: 0,
        idle_timeout_s: 0,
        hard_timeout_s: 0,
        send_flow_removed: false,
        instructions,
    }
}

fn exact(f: Field, v: u128) -> (Field, u128, u128) {
    (f, v, f.full_mask())
}

fn out(ports: &[u32]) -> Instructions {
    Instructions::actions(
        ports
            .iter()
            .map(|&p| Action::Output(PortNo(p)))
            .collect::<Vec<_>>(),
    )
}

fn udp(src: u8, dst: u8, sport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, src], [2, 0, 0, 0, 0, dst])
        .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
        .udp(sport, 80)
        .write(&mut v, &[0u8; 18])
        .unwrap();
    v
}

fn udp_vlan(src: u8, dst: u8, vid: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, src], [2, 0, 0, 0, 0, dst])
        .single_vlan(vid.try_into().unwrap())
        .ipv4([10, 0, 0, src], [10, 0, 0, dst], 64)
        .udp(1, 80)
        .write(&mut v, &[0u8; 18])
        .unwrap();
    v
}
