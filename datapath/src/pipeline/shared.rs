//! What every poll thread of a datapath shares with the control plane: the published
//! snapshot, the MAC table, the packet-in and packet-out queues, the clock, the settings.
//!
//! Thread-safety: `Shared` is read by poll threads without locks (the snapshot through an
//! atomic pointer); its mutexes are the control plane's.

use std::sync::atomic::AtomicU64;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use super::snapshot::Snapshot;
use super::xlate::PacketInReason;
use crate::actions::Action;
use crate::conntrack::{Conntrack, CtConfig};
use crate::flow::FlowKey;
use crate::l2::MacTable;
use crate::stats::{PmdCounters, TableCounts};
use crate::types::{PortNo, TableId};

/// The default of [`DatapathConfig::max_copies_per_packet`]: as many as a bridge has ports
/// by default (so a flood never sheds), about half of the outputs Open vSwitch's 64 KiB of
/// datapath actions hold.
pub const MAX_COPIES_PER_PACKET: usize = 4096;

/// Datapath-wide settings.
#[derive(Clone, Debug)]
pub struct DatapathConfig {
    /// Most MAC addresses the learning table holds.
    pub mac_table_size: usize,
    /// MAC aging time in seconds.
    pub mac_aging_s: u32,
    /// Most megaflows per poll thread.
    pub megaflow_capacity: usize,
    /// Exact-match cache entries per poll thread (0 disables it).
    pub emc_entries: usize,
    /// A megaflow hit is copied into the exact-match cache with probability 1/N.
    pub emc_insert_inv_prob: u32,
    /// Most packets per burst that may take the slow path; the rest are dropped and counted.
    pub slow_path_budget: usize,
    /// Packet-in events queued for the controller before new ones are dropped.
    pub packet_in_queue: usize,
    /// Buffers each poll thread may allocate for packet copies (flood, multiple outputs).
    pub pool_buffers: usize,
    /// Most copies one packet may produce in one pass through the tables (outputs, flood
    /// and `normal` fan-out, group buckets, `ct(table=T)` while the actions go on): the
    /// copies past it are not made, each counted as `drop_copies_over_limit`. The packet
    /// itself still goes to its last output, so one packet leaves as at most this many
    /// frames plus one. A recirculated packet (`ct(table=T)`) starts a new pass.
    pub max_copies_per_packet: usize,
}

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            mac_table_size: 65536,
            mac_aging_s: 300,
            megaflow_capacity: 65536,
            emc_entries: crate::cache::emc::EMC_ENTRIES,
            emc_insert_inv_prob: 20,
            slow_path_budget: crate::port::BURST,
            packet_in_queue: 1024,
            pool_buffers: 4096,
            max_copies_per_packet: MAX_COPIES_PER_PACKET,
        }
    }
}

/// A packet sent to the controller.
#[derive(Clone, Debug)]
pub struct PacketIn {
    /// Ingress port.
    pub in_port: PortNo,
    /// Why.
    pub reason: PacketInReason,
    /// Table of the flow that sent it.
    pub table: TableId,
    /// That flow's cookie.
    pub cookie: u64,
    /// The packet's key at the time (with pipeline metadata and registers).
    pub key: FlowKey,
    /// Length of the whole packet.
    pub total_len: usize,
    /// The first `max_len` bytes.
    pub data: Vec<u8>,
    /// The controller connection id the flow named (0: the default).
    pub controller_id: u16,
    /// The flow's userdata for it (`controller(userdata=...)`).
    pub userdata: Option<Arc<[u8]>>,
}

/// A packet the controller sends (OpenFlow packet-out).
#[derive(Clone, Debug)]
pub struct PacketOut {
    /// The port it is considered to have arrived on (`None`: the controller).
    pub in_port: Option<PortNo>,
    /// Run through the flow tables (OFPP_TABLE) instead of `actions`.
    pub table: bool,
    /// Actions to apply (ignored when `table`).
    pub actions: Vec<Action>,
    /// The frame.
    pub frame: Vec<u8>,
}

/// The state all poll threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) snap: ArcSwap<Snapshot>,
    /// The version of the snapshot in `snap`, stored after it: a poll thread keeps its
    /// snapshot between polls and reloads it only when this word changes (one plain load
    /// per poll instead of the atomic read-modify-writes of a load from `snap`).
    pub(crate) snap_version: AtomicU64,
    pub(super) write: Mutex<()>,
    pub(crate) macs: MacTable,
    pub(crate) packet_in: SyncSender<PacketIn>,
    pub(crate) packet_out: crossbeam_queue::ArrayQueue<PacketOut>,
    pub(crate) config: DatapathConfig,
    pub(super) pmds: Mutex<Vec<Arc<PmdCounters>>>,
    /// Table counts of poll threads that stopped (so the totals never go back).
    pub(super) retired_tables: Mutex<Box<[TableCounts; 256]>>,
    pub(super) epoch: Instant,
    pub(super) epoch_wall_s: u64,
    pub(super) manual_clock: Option<ManualClock>,
    /// The connection tracker, made when first needed (a `ct` action, a control call).
    pub(crate) ct: OnceLock<Arc<Conntrack>>,
}

impl Shared {
    /// Monotonic nanoseconds since the datapath started (or the manual clock's time).
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        match &self.manual_clock {
            None => self.epoch.elapsed().as_nanos() as u64,
            Some(c) => c.now_ns(),
        }
    }

    /// The datapath's connection tracker (made with the defaults on first use).
    #[inline]
    pub(crate) fn conntrack(&self) -> &Arc<Conntrack> {
        self.ct
            .get_or_init(|| Arc::new(Conntrack::new(CtConfig::default())))
    }
}

/// A clock that only moves when told to: for tests and benchmarks that need exact time
/// (meter and shaper accuracy, timeouts). Cheap to clone; clones share the time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    /// A clock at 0.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// The time, nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves the clock forward by `ns`.
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }
}
