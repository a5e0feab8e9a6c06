//! Counters: drop reasons and per-poll-thread statistics.
//!
//! What: every packet the datapath drops is counted under exactly one [`DropReason`]. Each
//! poll thread owns its counters ([`PmdCounters`]); it is their only writer, so it publishes
//! with plain relaxed stores (no locked read-modify-write), and readers (the daemon) sum
//! across threads.
//!
//! Thread-safety: `PmdCounters` is written by one thread and read by any.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a packet was dropped. Each reason has its own counter, named by [`DropReason::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    RuntFrame,
    /// A VLAN tag was cut short.
    TruncatedVlan,
    /// More than two VLAN tags.
    VlanTooDeep,
    /// ARP packet too short or not Ethernet/IPv4 ARP.
    BadArp,
    /// IPv4 header too short, wrong version or IHL below 5.
    BadIpv4Header,
    /// IPv4 total length disagrees with the frame.
    BadIpv4Length,
    /// IPv6 header too short or payload length past the frame.
    BadIpv6Header,
    /// An IPv6 extension header chain that is truncated or too long.
    BadIpv6ExtHeader,
    /// TCP/UDP/ICMP header cut short, or a TCP data offset below 5.
    BadL4Header,
    /// No flow matched in a table (OpenFlow table miss without a miss flow).
    TableMiss,
    /// The matching flow's actions send the packet nowhere.
    FlowDrop,
    /// TTL or hop limit would have reached zero on `dec_ttl`.
    TtlExceeded,
    /// A meter band dropped the packet.
    Meter,
    /// A flow referred to a meter that does not exist.
    NoSuchMeter,
    /// A flow referred to a group that does not exist or has no live bucket.
    NoSuchGroup,
    /// Output to a port that does not exist.
    NoSuchPort,
    /// `normal`: VLAN not allowed on the ingress port (or a tagged frame on an access port).
    VlanNotAllowed,
    /// `normal`: the destination was learned on the ingress port.
    NormalSamePort,
    /// No free buffer to copy a packet for a second output.
    NoBuffer,
    /// Not enough headroom to push a header.
    NoHeadroom,
    /// The slow path's per-burst budget was spent.
    SlowPathBudget,
    /// The packet-in queue to the controller was full.
    PacketInQueueFull,
    /// The ingress port's policer (`ingress_policing_rate`) dropped the packet.
    IngressPolicer,
    /// The egress queue the packet was scheduled on was full (tail drop).
    QueueFull,
    /// An MPLS packet whose label stack entry is cut short.
    BadMpls,
    /// A packet was looked up again (recirculated, after `pop_mpls`) more times than the
    /// datapath follows.
    RecircDepth,
    /// More packets were waiting to be looked up again after `ct(table=T)` than a poll
    /// thread queues (or fragments a tracker released found no place).
    RecircFull,
    /// `resubmit` nested deeper than 64 or taken more than 4,096 times for one packet (Open
    /// vSwitch's bounds).
    ResubmitDepth,
    /// A copy of a packet not made: the packet had already produced as many copies in this
    /// pass through the tables as a poll thread makes for one packet
    /// ([`crate::pipeline::DatapathConfig::max_copies_per_packet`]). Counts copies shed,
    /// not packets: the packet itself still takes its last output.
    CopiesOverLimit,
    /// `normal`: the packet arrived on a mirror's output port, or its destination was
    /// learned on one (a mirror output is reserved for mirroring, as in Open vSwitch).
    MirrorPort,
    /// Received on, or output to, a port OpenFlow took down (`OFPPC_PORT_DOWN`).
    PortDown,
    /// Received on a port configured not to receive (`OFPPC_NO_RECV`).
    PortNoRecv,
    /// Output to a port configured not to forward (`OFPPC_NO_FWD`).
    PortNoFwd,
    /// A packet-in not sent: the packet arrived on a port configured to send none
    /// (`OFPPC_NO_PACKET_IN`). Counts packet-ins, not packets.
    PortNoPacketIn,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 34;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::RuntFrame,
        DropReason::TruncatedVlan,
        DropReason::VlanTooDeep,
        DropReason::BadArp,
        DropReason::BadIpv4Header,
        DropReason::BadIpv4Length,
        DropReason::BadIpv6Header,
        DropReason::BadIpv6ExtHeader,
        DropReason::BadL4Header,
        DropReason::TableMiss,
        DropReason::FlowDrop,
        DropReason::TtlExceeded,
        DropReason::Meter,
        DropReason::NoSuchMeter,
        DropReason::NoSuchGroup,
        DropReason::NoSuchPort,
        DropReason::VlanNotAllowed,
        DropReason::NormalSamePort,
        DropReason::NoBuffer,
        DropReason::NoHeadroom,
        DropReason::SlowPathBudget,
        DropReason::PacketInQueueFull,
        DropReason::IngressPolicer,
        DropReason::QueueFull,
        DropReason::BadMpls,
        DropReason::RecircDepth,
        DropReason::RecircFull,
        DropReason::ResubmitDepth,
        DropReason::CopiesOverLimit,
        DropReason::MirrorPort,
        DropReason::PortDown,
        DropReason::PortNoRecv,
        DropReason::PortNoFwd,
        DropReason::PortNoPacketIn,
    ];

    /// The counter's name.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::RuntFrame => "drop_runt_frame",
            DropReason::TruncatedVlan => "drop_truncated_vlan",
            DropReason::VlanTooDeep => "drop_vlan_too_deep",
            DropReason::BadArp => "drop_bad_arp",
            DropReason::BadIpv4Header => "drop_bad_ipv4_header",
            DropReason::BadIpv4Length => "drop_bad_ipv4_length",
            DropReason::BadIpv6Header => "drop_bad_ipv6_header",
            DropReason::BadIpv6ExtHeader => "drop_bad_ipv6_ext_header",
            DropReason::BadL4Header => "drop_bad_l4_header",
            DropReason::TableMiss => "drop_table_miss",
            DropReason::FlowDrop => "drop_flow_action",
            DropReason::TtlExceeded => "drop_ttl_exceeded",
            DropReason::Meter => "drop_meter",
            DropReason::NoSuchMeter => "drop_no_such_meter",
            DropReason::NoSuchGroup => "drop_no_such_group",
            DropReason::NoSuchPort => "drop_no_such_port",
            DropReason::VlanNotAllowed => "drop_vlan_not_allowed",
            DropReason::NormalSamePort => "drop_normal_same_port",
            DropReason::NoBuffer => "drop_no_buffer",
            DropReason::NoHeadroom => "drop_no_headroom",
            DropReason::SlowPathBudget => "drop_slow_path_budget",
            DropReason::PacketInQueueFull => "drop_packet_in_queue_full",
            DropReason::IngressPolicer => "drop_ingress_policer",
            DropReason::QueueFull => "drop_queue_full",
            DropReason::BadMpls => "drop_bad_mpls",
            DropReason::RecircDepth => "drop_recirc_depth",
            DropReason::RecircFull => "drop_recirc_full",
            DropReason::ResubmitDepth => "drop_resubmit_depth",
            DropReason::CopiesOverLimit => "drop_copies_over_limit",
            DropReason::MirrorPort => "drop_mirror_port",
            DropReason::PortDown => "drop_port_down",
            DropReason::PortNoRecv => "drop_port_no_recv",
            DropReason::PortNoFwd => "drop_port_no_fwd",
            DropReason::PortNoPacketIn => "drop_port_no_packet_in",
        }
    }
}

/// A counter with a single writer: updated with a plain load and store, read by anyone.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning thread may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Resets to zero (owner only; `pmd-stats-clear` asks the owner).
    pub fn clear(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

/// One poll thread's counters.
#[derive(Debug)]
pub struct PmdCounters {
    /// Packets received from ports.
    pub rx_packets: Counter,
    /// Packets that hit the exact-match cache.
    pub emc_hit: Counter,
    /// Packets that missed the exact-match cache and hit the megaflow cache.
    pub megaflow_hit: Counter,
    /// Packets that went through the slow path (OpenFlow tables), and lookups of
    /// recirculated packets (which are not cached).
    pub slow_path: Counter,
    /// Megaflows installed.
    pub megaflow_installed: Counter,
    /// Megaflows not installed because the cache was full.
    pub megaflow_full: Counter,
    /// Megaflows removed by invalidation or idle expiry.
    pub megaflow_removed: Counter,
    /// Whole-cache flushes (port, group or meter changes; missed change history).
    pub cache_flush: Counter,
    /// Packets handed to ports for transmission.
    pub tx_packets: Counter,
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [Counter; DropReason::COUNT],
    /// Non-empty bursts received (`rx_packets / rx_batches` is the average burst).
    pub rx_batches: Counter,
    /// CPU cycles ([`cycles`]) spent in polls that received packets (kept by the thread's
    /// loop).
    pub busy_cycles: Counter,
    /// Cycles spent in empty polls and idle back-off (kept by the thread's loop).
    pub idle_cycles: Counter,
    /// Lookups per OpenFlow table (`dump-tables`).
    pub tables: TableCounters,
}

// By hand: the standard library derives `Default` for arrays of at most 32.
impl Default for PmdCounters {
    fn default() -> PmdCounters {
        PmdCounters {
            rx_packets: Counter::default(),
            emc_hit: Counter::default(),
            megaflow_hit: Counter::default(),
            slow_path: Counter::default(),
            megaflow_installed: Counter::default(),
            megaflow_full: Counter::default(),
            megaflow_removed: Counter::default(),
            cache_flush: Counter::default(),
            tx_packets: Counter::default(),
            drops: std::array::from_fn(|_| Counter::default()),
            rx_batches: Counter::default(),
            busy_cycles: Counter::default(),
            idle_cycles: Counter::default(),
            tables: TableCounters::default(),
        }
    }
}

/// How many packets each OpenFlow table looked up, and how many of those matched a flow:
/// one poll thread's share. Packets the caches answered count as well, against every table
/// their cached translation went through (as Open vSwitch attributes datapath flow hits back
/// to the tables), so the counts do not depend on how warm the caches are.
#[derive(Debug)]
pub struct TableCounters {
    /// Packets that matched a flow, by table number.
    pub matched: [Counter; 256],
    /// Packets that matched no flow (a table miss without a table-miss flow), by table.
    pub missed: [Counter; 256],
}

impl Default for TableCounters {
    fn default() -> Self {
        TableCounters {
            matched: std::array::from_fn(|_| Counter::default()),
            missed: std::array::from_fn(|_| Counter::default()),
        }
    }
}

/// A table's counts as read: packets looked up in it, and how many of those matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounts {
    /// Packets looked up (matched or not).
    pub lookup: u64,
    /// Packets that matched a flow.
    pub matched: u64,
}

impl TableCounters {
    /// Adds this thread's counts to `out` (indexed by table number).
    pub fn add_to(&self, out: &mut [TableCounts; 256]) {
        for (t, o) in out.iter_mut().enumerate() {
            let (m, x) = (self.matched[t].get(), self.missed[t].get());
            o.matched += m;
            o.lookup += m + x;
        }
    }
}

/// The packet and byte counts of one group and of each of its buckets, kept per poll thread:
/// each thread owns a slot of whole cache lines (so no two threads write the same line) and
/// adds to it with plain stores, as [`PmdCounters`]; a reader sums the slots.
#[derive(Debug)]
pub struct GroupCounters {
    lines: Box<[Line]>,
    /// Cache lines per slot.
    per_slot: usize,
    buckets: usize,
}

/// One cache line of counters.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Line([Counter; 8]);

/// A group's counts as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupCounts {
    /// Packets the group processed.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// (packets, bytes) each bucket processed: a packet counts once per bucket it went
    /// through (every bucket of an `all` group, the chosen one of the others).
    pub buckets: Vec<(u64, u64)>,
}

impl GroupCounters {
    /// Zeroed counters of a group of `buckets` buckets, for `threads` poll threads.
    pub fn new(threads: usize, buckets: usize) -> GroupCounters {
        let per_slot = (2 + 2 * buckets).div_ceil(8);
        GroupCounters {
            lines: (0..threads.max(1) * per_slot)
                .map(|_| Line::default())
                .collect(),
            per_slot,
            buckets,
        }
    }

    /// Poll threads with a slot.
    pub fn threads(&self) -> usize {
        self.lines.len() / self.per_slot
    }

    /// Buckets counted.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    #[inline]
    fn counter(&self, thread: usize, i: usize) -> Option<&Counter> {
        self.lines
            .get(thread * self.per_slot + i / 8)
            .map(|l| &l.0[i % 8])
    }

    /// Adds `packets` of `bytes` to the group's totals (poll thread `thread` only; a thread
    /// without a slot counts nothing).
    #[inline]
    pub fn add(&self, thread: usize, packets: u64, bytes: u64) {
        if let (Some(p), Some(b)) = (self.counter(thread, 0), self.counter(thread, 1)) {
            p.add(packets);
            b.add(bytes);
        }
    }

    /// Adds one packet of `bytes` to bucket `bucket` (poll thread `thread` only).
    #[inline]
    pub fn add_bucket(&self, thread: usize, bucket: usize, bytes: u64) {
        if bucket < self.buckets
            && let (Some(p), Some(b)) = (
                self.counter(thread, 2 + 2 * bucket),
                self.counter(thread, 3 + 2 * bucket),
            )
        {
            p.add(1);
            b.add(bytes);
        }
    }

    /// The counts summed over every thread.
    pub fn read(&self) -> GroupCounts {
        let mut out = GroupCounts {
            buckets: vec![(0, 0); self.buckets],
            ..GroupCounts::default()
        };
        for t in 0..self.threads() {
            let get = |i| self.counter(t, i).map_or(0, Counter::get);
            out.packets += get(0);
            out.bytes += get(1);
            for (k, b) in out.buckets.iter_mut().enumerate() {
                b.0 += get(2 + 2 * k);
                b.1 += get(3 + 2 * k);
            }
        }
        out
    }

    /// Counters for `threads` poll threads and `buckets` buckets that start from what
    /// `self` counted (in the first slot; buckets beyond the new number are dropped).
    /// Called on a draft snapshot, before any poll thread can write the new counters.
    pub fn carried(&self, threads: usize, buckets: usize) -> GroupCounters {
        let new = GroupCounters::new(threads, buckets);
        let c = self.read();
        new.add(0, c.packets, c.bytes);
        for (k, (p, b)) in c.buckets.iter().enumerate().take(buckets) {
            if let (Some(cp), Some(cb)) = (new.counter(0, 2 + 2 * k), new.counter(0, 3 + 2 * k)) {
                cp.add(*p);
                cb.add(*b);
            }
        }
        new
    }
}

/// One poll thread's counters as read at one instant (see [`PmdCounters::read`]); also the
/// baseline a reader keeps to show counts since a clear ([`PmdCounts::since`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PmdCounts {
    /// Packets received from ports.
    pub rx_packets: u64,
    /// Exact-match cache hits.
    pub emc_hit: u64,
    /// Megaflow cache hits.
    pub megaflow_hit: u64,
    /// Packets that took the slow path.
    pub slow_path: u64,
    /// Megaflows installed.
    pub megaflow_installed: u64,
    /// Megaflows not installed because the cache was full.
    pub megaflow_full: u64,
    /// Megaflows removed by invalidation or idle expiry.
    pub megaflow_removed: u64,
    /// Whole-cache flushes.
    pub cache_flush: u64,
    /// Packets handed to ports.
    pub tx_packets: u64,
    /// Non-empty bursts received.
    pub rx_batches: u64,
    /// Cycles of polls that received packets.
    pub busy_cycles: u64,
    /// Cycles of empty polls and back-off.
    pub idle_cycles: u64,
    /// Drops, indexed by `DropReason as usize`.
    pub drops: [u64; DropReason::COUNT],
}

// By hand: the standard library derives `Default` for arrays of at most 32.
impl Default for PmdCounts {
    fn default() -> PmdCounts {
        PmdCounts {
            rx_packets: 0,
            emc_hit: 0,
            megaflow_hit: 0,
            slow_path: 0,
            megaflow_installed: 0,
            megaflow_full: 0,
            megaflow_removed: 0,
            cache_flush: 0,
            tx_packets: 0,
            rx_batches: 0,
            busy_cycles: 0,
            idle_cycles: 0,
            drops: [0; DropReason::COUNT],
        }
    }
}

impl PmdCounts {
    /// What was counted after `base` was read (each counter less its baseline, never
    /// below zero).
    pub fn since(&self, base: &PmdCounts) -> PmdCounts {
        PmdCounts {
            rx_packets: self.rx_packets.saturating_sub(base.rx_packets),
            emc_hit: self.emc_hit.saturating_sub(base.emc_hit),
            megaflow_hit: self.megaflow_hit.saturating_sub(base.megaflow_hit),
            slow_path: self.slow_path.saturating_sub(base.slow_path),
            megaflow_installed: self
                .megaflow_installed
                .saturating_sub(base.megaflow_installed),
            megaflow_full: self.megaflow_full.saturating_sub(base.megaflow_full),
            megaflow_removed: self.megaflow_removed.saturating_sub(base.megaflow_removed),
            cache_flush: self.cache_flush.saturating_sub(base.cache_flush),
            tx_packets: self.tx_packets.saturating_sub(base.tx_packets),
            rx_batches: self.rx_batches.saturating_sub(base.rx_batches),
            busy_cycles: self.busy_cycles.saturating_sub(base.busy_cycles),
            idle_cycles: self.idle_cycles.saturating_sub(base.idle_cycles),
            drops: std::array::from_fn(|i| self.drops[i].saturating_sub(base.drops[i])),
        }
    }

    /// Drops counted for `reason`.
    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Adds `other`'s counts to these (to sum poll threads).
    pub fn add(&mut self, other: &PmdCounts) {
        self.rx_packets += other.rx_packets;
        self.emc_hit += other.emc_hit;
        self.megaflow_hit += other.megaflow_hit;
        self.slow_path += other.slow_path;
        self.megaflow_installed += other.megaflow_installed;
        self.megaflow_full += other.megaflow_full;
        self.megaflow_removed += other.megaflow_removed;
        self.cache_flush += other.cache_flush;
        self.tx_packets += other.tx_packets;
        self.rx_batches += other.rx_batches;
        self.busy_cycles += other.busy_cycles;
        self.idle_cycles += other.idle_cycles;
        for (d, o) in self.drops.iter_mut().zip(other.drops) {
            *d += o;
        }
    }
}

/// A cycle counter for poll-loop accounting, as OVS's PMDs keep it: the time-stamp counter
/// on x86_64 (a few nanoseconds to read, where the clock costs tens in a VM), nanoseconds
/// elsewhere. [`cycles_hz`] converts.
#[inline]
pub fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        #[allow(unsafe_code)]
        // SAFETY: RDTSC has no preconditions on x86_64 (user mode may read the TSC unless
        // the kernel forbids it, which Linux does not by default); it reads no memory.
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        EPOCH
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }
}

/// How many [`cycles`] make a second, measured once against the clock (20 ms).
pub fn cycles_hz() -> u64 {
    static HZ: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        let (t0, c0) = (std::time::Instant::now(), cycles());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (ns, c) = (t0.elapsed().as_nanos() as u64, cycles().wrapping_sub(c0));
        (c as u128 * 1_000_000_000 / u128::from(ns.max(1))).max(1) as u64
    })
}

/// Converts [`cycles`] to nanoseconds.
pub fn cycles_to_ns(c: u64) -> u64 {
    (u128::from(c) * 1_000_000_000 / u128::from(cycles_hz())) as u64
}

impl PmdCounters {
    /// Counts `n` drops for `reason`.
    #[inline]
    pub fn count_drop(&self, reason: DropReason, n: u64) {
        self.drops[reason as usize].add(n);
    }

    /// Drops counted for `reason`.
    pub fn drops_for(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }

    /// Every counter, read now.
    pub fn read(&self) -> PmdCounts {
        PmdCounts {
            rx_packets: self.rx_packets.get(),
            emc_hit: self.emc_hit.get(),
            megaflow_hit: self.megaflow_hit.get(),
            slow_path: self.slow_path.get(),
            megaflow_installed: self.megaflow_installed.get(),
            megaflow_full: self.megaflow_full.get(),
            megaflow_removed: self.megaflow_removed.get(),
            cache_flush: self.cache_flush.get(),
            tx_packets: self.tx_packets.get(),
            rx_batches: self.rx_batches.get(),
            busy_cycles: self.busy_cycles.get(),
            idle_cycles: self.idle_cycles.get(),
            drops: std::array::from_fn(|i| self.drops[i].get()),
        }
    }

    /// Total drops for every reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_indexed_in_order_with_unique_names() {
        let mut names = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(names.insert(r.name()));
        }
    }

    #[test]
    fn group_counters_sum_the_threads_and_carry_over() {
        let g = GroupCounters::new(3, 5);
        assert_eq!((g.threads(), g.buckets()), (3, 5));
        g.add(0, 2, 120);
        g.add(2, 1, 60);
        g.add(3, 100, 100); // no slot: not counted
        g.add_bucket(0, 4, 60);
        g.add_bucket(2, 4, 70);
        g.add_bucket(1, 0, 10);
        g.add_bucket(1, 5, 10); // no such bucket
        let c = g.read();
        assert_eq!((c.packets, c.bytes), (3, 180));
        assert_eq!(c.buckets, vec![(1, 10), (0, 0), (0, 0), (0, 0), (2, 130)]);
        let h = g.carried(4, 2);
        h.add(3, 1, 1);
        let c = h.read();
        assert_eq!((c.packets, c.bytes), (4, 181));
        assert_eq!(c.buckets, vec![(1, 10), (0, 0)]);
    }

    #[test]
    fn table_counts_add_matches_and_misses_into_lookups() {
        let c = PmdCounters::default();
        c.tables.matched[0].add(5);
        c.tables.missed[0].add(2);
        c.tables.missed[253].add(1);
        let mut out = [TableCounts::default(); 256];
        c.tables.add_to(&mut out);
        c.tables.add_to(&mut out);
        assert_eq!(
            out[0],
            TableCounts {
                lookup: 14,
                matched: 10
            }
        );
        assert_eq!(
            out[253],
            TableCounts {
                lookup: 2,
                matched: 0
            }
        );
        assert_eq!(out[1], TableCounts::default());
    }

    #[test]
    fn counts_since_a_baseline_subtract_and_never_go_below_zero() {
        let c = PmdCounters::default();
        c.rx_packets.add(10);
        c.count_drop(DropReason::Meter, 3);
        let base = c.read();
        c.rx_packets.add(5);
        c.busy_cycles.add(7);
        c.count_drop(DropReason::Meter, 2);
        let d = c.read().since(&base);
        assert_eq!((d.rx_packets, d.busy_cycles), (5, 7));
        assert_eq!(d.drops_for(DropReason::Meter), 2);
        assert_eq!(d.drops_for(DropReason::TableMiss), 0);
        // A baseline from a thread since cleared counts nothing, not a wrapped number.
        c.rx_packets.clear();
        assert_eq!(c.read().since(&base).rx_packets, 0);
    }
}
