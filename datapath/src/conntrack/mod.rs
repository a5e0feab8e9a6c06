//! Connection tracking and NAT: the state behind OpenFlow's `ct` action.
//!
//! What: [`Conntrack`] follows TCP (window tracking), UDP, ICMP and ICMPv6 echo and any
//! other IP protocol by addresses, over IPv4 and IPv6, in zones that never see each other's
//! connections; ICMP errors are `+rel` to the connection they quote; fragments are
//! reassembled before tracking ([`frag`]); committed connections may carry source or
//! destination NAT ([`nat`]). Its verdicts and dump follow Open vSwitch's userspace tracker
//! (lib/conntrack*.c), so flows written for OVS behave the same.
//!
//! How a poll thread uses it: it gets a [`CtThread`] once ([`Conntrack::thread`]) and, for
//! each group of packets one `ct(...)` action runs over, calls [`Conntrack::execute`] with
//! the [`CtAction`], the packets and their [`CtMeta`] (the ct fields the flow key will match:
//! `ct_state`, `ct_zone`, `ct_mark`, `ct_label`, the original-direction tuple). NAT rewrites
//! the frames in place; fragments are taken from the batch and come back, reassembled,
//! tracked and still fragments, through [`CtThread::drain_released`].
//!
//! Concurrency: the table ([`table`]) is a chunked arena of connection slots and a hash
//! index in 64 shards. Looking up an established connection takes no lock: the index is
//! read through per-thread cached handles, the slot is validated by its generation, and
//! only that one connection's lock word is taken (a compare-exchange on its own cache line,
//! shared only by threads handling the same connection) to update its state. Creation and
//! deletion lock one shard at a time. Expiry is [`Conntrack::sweep`] in bounded slices,
//! from a background thread ([`Sweeper`]).
//!
//! Memory: a connection is one 144-byte slot plus its two index entries (8 bytes each, the
//! tables kept between 37% and 75% full) and at most 16 bytes in its shard's queue of
//! unanswered connections: at most about 220 bytes; [`Conntrack::memory_bytes`] reports
//! what is held.
//!
//! Thread-safety: `Conntrack` is `Send + Sync`; a `CtThread` belongs to one thread.

mod counters;
mod dump;
pub mod frag;
pub mod nat;
mod peek;
mod slot;
mod sweep;
mod table;
mod tcp;
mod track;
pub mod tuple;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

pub use counters::{CtInvalid, CtRefusal, SharedCounters, ThreadCounters};
pub use dump::{CtEntry, CtFilter, CtStats};
pub use frag::FragConfig;
pub use nat::{Nat, NatRange};
pub use sweep::Sweeper;
pub use tcp::TcpState;
pub use tuple::Tuple;

use crate::packet::PacketBuf;
use table::{Readers, Table};

/// `ct_state` bits, as OpenFlow's (and OVS's `CS_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtState(pub u8);

impl CtState {
    /// `+new`: the first packet of a connection (or of one not yet committed).
    pub const NEW: u8 = 1 << 0;
    /// `+est`: part of an established connection.
    pub const EST: u8 = 1 << 1;
    /// `+rel`: related to a connection (an ICMP error quoting it).
    pub const REL: u8 = 1 << 2;
    /// `+rpl`: in the reply direction.
    pub const RPL: u8 = 1 << 3;
    /// `+inv`: invalid.
    pub const INV: u8 = 1 << 4;
    /// `+trk`: went through the tracker.
    pub const TRK: u8 = 1 << 5;
    /// `+snat`: source translated.
    pub const SNAT: u8 = 1 << 6;
    /// `+dnat`: destination translated.
    pub const DNAT: u8 = 1 << 7;

    /// True when every bit of `bits` is set.
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

impl std::fmt::Display for CtState {
    /// OVS's flag syntax, `+trk+est+rpl`; `-trk` when untracked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const NAMES: [(u8, &str); 8] = [
            (CtState::TRK, "trk"),
            (CtState::NEW, "new"),
            (CtState::EST, "est"),
            (CtState::REL, "rel"),
            (CtState::RPL, "rpl"),
            (CtState::INV, "inv"),
            (CtState::SNAT, "snat"),
            (CtState::DNAT, "dnat"),
        ];
        if self.0 == 0 {
            return f.write_str("-trk");
        }
        for (b, n) in NAMES {
            if self.0 & b != 0 {
                write!(f, "+{n}")?;
            }
        }
        Ok(())
    }
}

/// A packet's connection-tracking metadata: what `ct` wrote, what the flow key matches.
/// `CtMeta::default()` is an untracked packet (and what `ct_clear` leaves).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtMeta {
    /// `ct_state`.
    pub state: CtState,
    /// `ct_zone`.
    pub zone: u16,
    /// `ct_mark`.
    pub mark: u32,
    /// `ct_label`.
    pub label: u128,
    /// The connection's original-direction tuple (`ct_nw_src` and friends); `None` for an
    /// invalid packet.
    pub orig: Option<Tuple>,
}

impl CtMeta {
    /// `ct_nw_src` (0 unless the original tuple is IPv4).
    pub fn ct_nw_src(&self) -> u32 {
        self.orig.filter(|t| !t.v6).map_or(0, |t| t.src as u32)
    }
    /// `ct_nw_dst`.
    pub fn ct_nw_dst(&self) -> u32 {
        self.orig.filter(|t| !t.v6).map_or(0, |t| t.dst as u32)
    }
    /// `ct_ipv6_src` (0 unless IPv6).
    pub fn ct_ipv6_src(&self) -> u128 {
        self.orig.filter(|t| t.v6).map_or(0, |t| t.src)
    }
    /// `ct_ipv6_dst`.
    pub fn ct_ipv6_dst(&self) -> u128 {
        self.orig.filter(|t| t.v6).map_or(0, |t| t.dst)
    }
    /// `ct_nw_proto`.
    pub fn ct_nw_proto(&self) -> u8 {
        self.orig.map_or(0, |t| t.proto)
    }
    /// `ct_tp_src` (ICMP: the type, as OVS).
    pub fn ct_tp_src(&self) -> u16 {
        self.orig.map_or(0, |t| {
            if t.is_icmp() {
                t.icmp_type() as u16
            } else {
                t.sport
            }
        })
    }
    /// `ct_tp_dst` (ICMP: the code, always 0 for tracked types).
    pub fn ct_tp_dst(&self) -> u16 {
        self.orig
            .map_or(0, |t| if t.is_icmp() { 0 } else { t.dport })
    }
}

/// One `ct(...)` action: `ct(commit, zone=N, force, nat(...), exec(set_field:...))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtAction {
    /// `zone=`.
    pub zone: u16,
    /// `commit`: create the connection if new.
    pub commit: bool,
    /// `force`: a packet in the reply direction ends its connection and starts a new one
    /// (implies commit).
    pub force: bool,
    /// `nat`, `nat(src=...)`, `nat(dst=...)`.
    pub nat: Option<Nat>,
    /// `exec(set_field:V/M->ct_mark)`: (value, mask).
    pub mark: Option<(u32, u32)>,
    /// `exec(set_field:V/M->ct_label)`: (value, mask).
    pub label: Option<(u128, u128)>,
}

/// Seconds each connection state lives without traffic; OVS's userspace defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP: first packet seen.
    pub tcp_syn_sent: u32,
    /// TCP: handshake under way.
    pub tcp_syn_recv: u32,
    /// TCP: established.
    pub tcp_established: u32,
    /// TCP: one side closing.
    pub tcp_fin_wait: u32,
    /// TCP: both sides closing.
    pub tcp_time_wait: u32,
    /// TCP: closed or reset.
    pub tcp_close: u32,
    /// UDP and other protocols: first packet.
    pub udp_first: u32,
    /// UDP: more packets, one direction.
    pub udp_single: u32,
    /// UDP: both directions.
    pub udp_multiple: u32,
    /// ICMP: request seen.
    pub icmp_first: u32,
    /// ICMP: reply seen.
    pub icmp_reply: u32,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            tcp_syn_sent: 30,
            tcp_syn_recv: 30,
            tcp_established: 24 * 60 * 60,
            tcp_fin_wait: 15 * 60,
            tcp_time_wait: 45,
            tcp_close: 30,
            udp_first: 60,
            udp_single: 60,
            udp_multiple: 30,
            icmp_first: 60,
            icmp_reply: 30,
        }
    }
}

impl Timeouts {
    /// The values in declaration order (OVS's attribute order: `tcp_syn_sent` first,
    /// `icmp_reply` last).
    pub fn to_array(self) -> [u32; 11] {
        [
            self.tcp_syn_sent,
            self.tcp_syn_recv,
            self.tcp_established,
            self.tcp_fin_wait,
            self.tcp_time_wait,
            self.tcp_close,
            self.udp_first,
            self.udp_single,
            self.udp_multiple,
            self.icmp_first,
            self.icmp_reply,
        ]
    }

    /// Timeouts from [`Timeouts::to_array`]'s order.
    pub fn from_array(a: [u32; 11]) -> Timeouts {
        Timeouts {
            tcp_syn_sent: a[0],
            tcp_syn_recv: a[1],
            tcp_established: a[2],
            tcp_fin_wait: a[3],
            tcp_time_wait: a[4],
            tcp_close: a[5],
            udp_first: a[6],
            udp_single: a[7],
            udp_multiple: a[8],
            icmp_first: a[9],
            icmp_reply: a[10],
        }
    }
}

/// Which entry of [`Timeouts`] applies (index into its array form).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tm {
    TcpSynSent,
    TcpSynRecv,
    TcpEstablished,
    TcpFinWait,
    TcpTimeWait,
    TcpClose,
    UdpFirst,
    UdpSingle,
    UdpMultiple,
    IcmpFirst,
    IcmpReply,
}

/// How a tracker is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtConfig {
    /// Most connections at once (OVS's `ct-set-maxconns`; default 1,000,000).
    pub max_conns: u32,
    /// The most `max_conns` may ever be raised to (sizes the arena's chunk table).
    pub max_conns_ceiling: u32,
    /// Connections a zone without a limit of its own may hold; 0 is unlimited.
    pub default_zone_limit: u32,
    /// Skip TCP window checks (`ct-disable-tcp-seq-chk`).
    pub tcp_liberal: bool,
    /// Check IPv4 header and transport checksums (as OVS does without offloads).
    pub verify_checksums: bool,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Fragment reassembly.
    pub frag: FragConfig,
}

impl Default for CtConfig {
    fn default() -> CtConfig {
        CtConfig {
            max_conns: 1_000_000,
            max_conns_ceiling: 16_000_000,
            default_zone_limit: 0,
            tcp_liberal: false,
            verify_checksums: true,
            timeouts: Timeouts::default(),
            frag: FragConfig::default(),
        }
    }
}

/// Per-zone limits and connection counts.
#[derive(Debug)]
struct Zones {
    /// `u32::MAX`: the default applies; 0: unlimited; else the limit.
    limit: Box<[AtomicU32]>,
    count: Box<[AtomicU32]>,
    default_limit: AtomicU32,
}

/// A limit of [`Conntrack::set_zone_limit`].
const ZONE_DEFAULT: u32 = u32::MAX;

/// Timeout policies: the tracker's own (policy 0) and up to [`MAX_ZONE_POLICIES`] zones'.
/// A zone names its policy by index; a packet reads its zone's index and one value.
#[derive(Debug)]
struct Policies {
    /// Per zone: the policy its connections take (0: the tracker's).
    of_zone: Box<[AtomicU8]>,
    /// The policies' values in seconds, each in [`Timeouts`]'s array order.
    values: Box<[[AtomicU32; 11]]>,
    /// Which zone owns each policy (index 0 is the tracker's; control path only).
    owner: Mutex<Vec<Option<u16>>>,
}

/// Most zones with timeouts of their own in one tracker.
pub const MAX_ZONE_POLICIES: usize = 255;

/// The connection tracker of a datapath. See the module documentation.
#[derive(Debug)]
pub struct Conntrack {
    table: Table,
    zones: Zones,
    policies: Policies,
    max_conns: AtomicU32,
    n_conns: AtomicU32,
    liberal: AtomicBool,
    verify: AtomicBool,
    frags: Mutex<frag::Reassembler>,
    /// Every poll thread's counters (copied on write: a reader takes no lock).
    threads: ArcSwap<Vec<Arc<ThreadCounters>>>,
    shared: SharedCounters,
    sweep_cursor: Mutex<u32>,
    rng: AtomicU64,
}

/// A poll thread's handle on a [`Conntrack`]: cached index handles, its counters, and the
/// fragments its calls released.
#[derive(Debug)]
pub struct CtThread {
    readers: Readers,
    counters: Arc<ThreadCounters>,
    released: Vec<(PacketBuf, CtMeta)>,
}

impl CtThread {
    /// Fragments whose datagram this thread's calls completed, tracked (and translated),
    /// each with the metadata of its datagram, in offset order. The caller continues them
    /// as it would the packets of the batch.
    pub fn drain_released(&mut self) -> std::vec::Drain<'_, (PacketBuf, CtMeta)> {
        self.released.drain(..)
    }

    /// This thread's counters.
    pub fn counters(&self) -> &ThreadCounters {
        &self.counters
    }
}

impl Conntrack {
    /// A tracker set up as `cfg` says.
    pub fn new(cfg: CtConfig) -> Conntrack {
        use std::hash::BuildHasher;
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        let ceiling = cfg.max_conns_ceiling.max(cfg.max_conns) as usize;
        let t = cfg.timeouts.to_array();
        Conntrack {
            // Room above the maximum for slots stranded in other shards' free lists.
            table: Table::new(ceiling + table::SHARDS * 64, seed),
            zones: Zones {
                limit: (0..=u16::MAX as usize)
                    .map(|_| AtomicU32::new(ZONE_DEFAULT))
                    .collect(),
                count: (0..=u16::MAX as usize).map(|_| AtomicU32::new(0)).collect(),
                default_limit: AtomicU32::new(cfg.default_zone_limit),
            },
            policies: Policies {
                of_zone: (0..=u16::MAX as usize).map(|_| AtomicU8::new(0)).collect(),
                values: (0..=MAX_ZONE_POLICIES)
                    .map(|_| std::array::from_fn(|i| AtomicU32::new(t[i])))
                    .collect(),
                owner: Mutex::new(vec![None; MAX_ZONE_POLICIES + 1]),
            },
            max_conns: AtomicU32::new(cfg.max_conns),
            n_conns: AtomicU32::new(0),
            liberal: AtomicBool::new(cfg.tcp_liberal),
            verify: AtomicBool::new(cfg.verify_checksums),
            frags: Mutex::new(frag::Reassembler::new(cfg.frag)),
            threads: ArcSwap::from_pointee(Vec::new()),
            shared: SharedCounters::default(),
            sweep_cursor: Mutex::new(0),
            rng: AtomicU64::new(seed | 1),
        }
    }

    /// A handle for one poll thread (its counters stay in the totals after it is dropped).
    pub fn thread(&self) -> CtThread {
        let counters = Arc::new(ThreadCounters::default());
        self.threads.rcu(|v| {
            let mut v = Vec::clone(v);
            v.push(counters.clone());
            v
        });
        CtThread {
            readers: self.table.readers(),
            counters,
            released: Vec::with_capacity(64),
        }
    }

    /// Connections now.
    pub fn len(&self) -> usize {
        self.n_conns.load(Ordering::Relaxed) as usize
    }

    /// True when no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the timeouts of zones without their own. A connection takes a new timeout at
    /// its next packet (as OVS's do); until then it keeps the expiry its last packet set.
    pub fn set_timeouts(&self, t: Timeouts) {
        self.store_policy(0, t);
    }

    /// The timeouts of zones without their own.
    pub fn timeouts(&self) -> Timeouts {
        self.load_policy(0)
    }

    /// Gives zone `zone` timeouts of its own (`Some`), or returns it to the tracker's
    /// (`None`); taken as [`Conntrack::set_timeouts`]'s are. `Err` with the most there may
    /// be when [`MAX_ZONE_POLICIES`] other zones have their own already.
    pub fn set_zone_timeouts(&self, zone: u16, t: Option<Timeouts>) -> Result<(), usize> {
        let mut owner = self.policies.owner.lock();
        let mine = owner.iter().position(|o| *o == Some(zone));
        let Some(t) = t else {
            if let Some(i) = mine {
                self.policies.of_zone[zone as usize].store(0, Ordering::Release);
                owner[i] = None;
            }
            return Ok(());
        };
        let i = match mine {
            Some(i) => i,
            // A freed policy is reused: a packet that read its index just before may take
            // the new owner's timeouts once.
            None => (1..owner.len())
                .find(|&i| owner[i].is_none())
                .ok_or(MAX_ZONE_POLICIES)?,
        };
        self.store_policy(i, t);
        owner[i] = Some(zone);
        self.policies.of_zone[zone as usize].store(i as u8, Ordering::Release);
        Ok(())
    }

    /// Zone `zone`'s own timeouts, if it has them.
    pub fn zone_timeouts(&self, zone: u16) -> Option<Timeouts> {
        match self.policies.of_zone[zone as usize].load(Ordering::Acquire) {
            0 => None,
            i => Some(self.load_policy(i as usize)),
        }
    }

    fn store_policy(&self, i: usize, t: Timeouts) {
        for (a, v) in self.policies.values[i].iter().zip(t.to_array()) {
            a.store(v, Ordering::Relaxed);
        }
    }

    fn load_policy(&self, i: usize) -> Timeouts {
        let p = &self.policies.values[i];
        Timeouts::from_array(std::array::from_fn(|k| p[k].load(Ordering::Relaxed)))
    }

    /// How long a connection of `zone` in state `tm` lives without traffic.
    #[inline]
    pub(crate) fn timeout_ms(&self, zone: u16, tm: Tm) -> u64 {
        let i = self.policies.of_zone[zone as usize].load(Ordering::Acquire) as usize;
        self.policies.values[i][tm as usize].load(Ordering::Relaxed) as u64 * 1000
    }

    /// Sets the most connections at once; `Err` with the ceiling when above it. Lowering it
    /// removes nothing: new connections are refused (or evict) until below.
    pub fn set_max_conns(&self, n: u32) -> Result<(), u32> {
        let ceiling = self.max_conns_ceiling();
        if n > ceiling {
            return Err(ceiling);
        }
        self.max_conns.store(n, Ordering::Relaxed);
        Ok(())
    }

    /// The most [`Conntrack::set_max_conns`] accepts.
    pub fn max_conns_ceiling(&self) -> u32 {
        (self.table.max_slots() - table::SHARDS * 64) as u32
    }

    /// The most connections at once.
    pub fn max_conns(&self) -> u32 {
        self.max_conns.load(Ordering::Relaxed)
    }

    /// Sets zone `zone`'s limit: `Some(0)` unlimited, `Some(n)` at most `n`, `None` the
    /// default limit.
    pub fn set_zone_limit(&self, zone: u16, limit: Option<u32>) {
        let v = limit.map_or(ZONE_DEFAULT, |l| l.min(ZONE_DEFAULT - 1));
        self.zones.limit[zone as usize].store(v, Ordering::Relaxed);
    }

    /// Sets the limit of zones without one of their own (0: unlimited).
    pub fn set_default_zone_limit(&self, limit: u32) {
        self.zones.default_limit.store(limit, Ordering::Relaxed);
    }

    /// Zone `zone`'s effective limit (0: unlimited) and its connections now.
    pub fn zone_limit(&self, zone: u16) -> (u32, u32) {
        let l = self.zones.limit[zone as usize].load(Ordering::Relaxed);
        let l = if l == ZONE_DEFAULT {
            self.zones.default_limit.load(Ordering::Relaxed)
        } else {
            l
        };
        (l, self.zones.count[zone as usize].load(Ordering::Relaxed))
    }

    /// Turns TCP window checking off (`true`) or on.
    pub fn set_tcp_liberal(&self, liberal: bool) {
        self.liberal.store(liberal, Ordering::Relaxed);
    }

    /// Sets the fragment reassembly settings.
    pub fn set_frag_config(&self, cfg: FragConfig) {
        self.frags.lock().set_config(cfg);
    }

    /// Bytes the tracker holds for connections (arena chunks, index tables, queues).
    pub fn memory_bytes(&self) -> usize {
        self.table.memory_bytes()
            + std::mem::size_of::<AtomicU32>() * self.zones.limit.len() * 2
            + self.policies.of_zone.len()
            + std::mem::size_of_val(&*self.policies.values)
    }

    /// Background work: an expiry slice of up to `budget` slots ([`Conntrack::sweep`]),
    /// growing index tables ahead of need, allocating the next arena chunk before a poll
    /// thread needs it, and expiring fragments. Returns connections expired.
    pub fn maintain(&self, now_ms: u64, budget: usize) -> usize {
        let n = self.sweep(now_ms, budget);
        self.table.grow_ahead();
        self.table.prealloc();
        let mut frags = self.frags.lock();
        frags.expire(now_ms, &self.shared);
        self.shared
            .frag_held
            .store(frags.held() as u64, Ordering::Relaxed);
        n
    }

    /// A pseudo-random 32-bit value (NAT `random`, port search restarts).
    pub(crate) fn rand(&self) -> u32 {
        let x = self
            .rng
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        ((z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb) >> 32) as u32
    }

    pub(crate) fn addr_family_ok(r: &NatRange, v6: bool) -> bool {
        let fam = |a: IpAddr| matches!(a, IpAddr::V6(_));
        fam(r.addr_min) == v6 && fam(r.addr_max) == v6
            || nat::addr_bits(r.addr_min) == 0 && nat::addr_bits(r.addr_max) == 0
    }
}

#[cfg(test)]
mod testpkt;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timeout_tests;
