//! A bridge on in-memory ports for the pipeline tests: flows added straight to the
//! datapath, frames injected in bursts and polled until the poll thread is idle.
#![allow(dead_code)] // each test binary uses what it needs
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::sync::Arc;

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey, FlowMask};
use datapath::l2::{VlanMode, VlanSet};
use datapath::packet::PacketBuf;
use datapath::pipeline::{Datapath, DatapathConfig, Pmd};
use datapath::port::MemPort;
use datapath::stats::PmdCounters;
use datapath::types::{PortNo, TableId, VlanId};

/// Burst sizes every behaviour is checked at: one packet, a full burst, one more.
pub const BURSTS: [usize; 3] = [1, 32, 33];

/// A datapath with ports p1..pN (numbers 1..N, trunks with native VLAN 0) and one poll
/// thread.
pub struct Bridge {
    pub dp: Datapath,
    pub pmd: Pmd,
    pub ports: Vec<Arc<MemPort>>,
    pub counters: Arc<PmdCounters>,
}

impl Bridge {
    pub fn new(n: u32) -> Bridge {
        let (dp, _) = Datapath::new(DatapathConfig::default());
        let mut ports = Vec::new();
        for i in 1..=n {
            let p = Arc::new(MemPort::new(format!("p{i}"), 4096));
            let mode = VlanMode::Trunk {
                allowed: VlanSet::all(),
                native: Some(VlanId(0)),
            };
            dp.add_port(PortNo(i), p.clone(), mode).unwrap();
            ports.push(p);
        }
        let pmd = dp.new_pmd();
        let counters = pmd.counters();
        Bridge {
            dp,
            pmd,
            ports,
            counters,
        }
    }

    /// A flow matching `m`: (field, value, mask).
    pub fn add_masked(
        &self,
        table: u8,
        priority: u16,
        m: &[(Field, u128, u128)],
        ins: Instructions,
    ) {
        let mut key = FlowKey::ZERO;
        let mut mask = FlowMask::ZERO;
        for &(f, v, mk) in m {
            key.set(f, v);
            mask.set(f, mk);
        }
        let spec = FlowSpec {
            table: TableId(table),
            priority,
            key: key.masked(&mask),
            mask,
            cookie: 0,
            idle_timeout_s: 0,
            hard_timeout_s: 0,
            send_flow_removed: false,
            instructions: ins,
        };
        self.dp
            .flow_mods(&[FlowMod::Add {
                spec,
                check_overlap: false,
            }])
            .unwrap();
    }

    /// A flow matching whole fields.
    pub fn add(&self, table: u8, priority: u16, m: &[(Field, u128)], ins: Instructions) {
        let m: Vec<_> = m.iter().map(|&(f, v)| (f, v, f.full_mask())).collect();
        self.add_masked(table, priority, &m, ins);
    }

    /// A flow matching whole fields, with apply-actions only.
    pub fn add_actions(&self, table: u8, priority: u16, m: &[(Field, u128)], apply: Vec<Action>) {
        self.add(table, priority, m, Instructions::actions(apply));
    }

    /// A flow matching `m` (field, value, mask), with apply-actions only.
    pub fn add_masked_actions(
        &self,
        table: u8,
        priority: u16,
        m: &[(Field, u128, u128)],
        apply: Vec<Action>,
    ) {
        self.add_masked(table, priority, m, Instructions::actions(apply));
    }

    pub fn port(&self, no: u32) -> &MemPort {
        &self.ports[no as usize - 1]
    }

    /// Injects `frames` on port `port` and polls until nothing is left to do.
    pub fn send(&mut self, port: u32, frames: &[Vec<u8>]) {
        assert_eq!(self.port(port).inject(frames), frames.len());
        self.pmd.poll_until_idle();
    }

    /// The frames port `port` sent.
    pub fn out(&self, port: u32) -> Vec<Vec<u8>> {
        self.port(port).drain()
    }

    /// The buffers port `port` sent (with their metadata).
    pub fn out_bufs(&self, port: u32) -> Vec<PacketBuf> {
        let mut q = VecDeque::new();
        self.port(port).drain_bufs(&mut q);
        q.into()
    }

    /// Packets counted on the only flow of `table`.
    pub fn flow_packets(&self, table: u8) -> u64 {
        let snap = self.dp.snapshot();
        let rule = snap.pipeline.rules(Some(TableId(table))).next().unwrap();
        rule.stats.read().packets
    }
}
