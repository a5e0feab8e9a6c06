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
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 24;

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
#[derive(Debug, Default)]
pub struct PmdCounters {
    /// Packets received from ports.
    pub rx_packets: Counter,
    /// Packets that hit the exact-match cache.
    pub emc_hit: Counter,
    /// Packets that missed the exact-match cache and hit the megaflow cache.
    pub megaflow_hit: Counter,
    /// Packets that went through the slow path (OpenFlow tables).
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
}

/// One poll thread's counters as read at one instant (see [`PmdCounters::read`]); also the
/// baseline a reader keeps to show counts since a clear ([`PmdCounts::since`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
