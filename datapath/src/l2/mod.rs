//! L2 learning for the `normal` action: the MAC table and VLAN port modes.
//!
//! What: [`MacTable`] maps (VLAN, MAC) to a port. It is shared by every poll thread and
//! lock-free: a fixed array of buckets of [`WAYS`] ways, each way two `AtomicU64`s (key and
//! value). It never grows: when a bucket is full, learning evicts the way seen longest ago,
//! so a MAC flood costs evictions (counted), never memory. Entries older than the aging time
//! read as absent; [`MacTable::sweep`] removes and reports them.
//!
//! The per-way protocol (a tiny seqlock made of the key itself):
//! - key = `VALID | gen << 60 | vlan << 48 | mac`, value = `dest << 32 | last_seen_s` where
//!   `dest = tunnel source index << 16 | port` (ports are below 0xff00). A way
//!   without `VALID` is empty (or `BUSY`); `gen` is a 3-bit counter of the way's refills that
//!   survives removal.
//! - A writer that changes the key of a way first claims it by compare-exchanging the old key
//!   for `BUSY` (so two writers never fill one way), then stores the value (Release), then the
//!   new key with the way's `gen` advanced (Release).
//! - A station move (new port) claims the way the same way, so every port change advances
//!   `gen`. A refresh (same port, new time) compare-exchanges the value alone: even if it
//!   lands on a refilled way, the port that way shows cannot change.
//! - After publishing a new entry, the writer scans the bucket (SeqCst, as was the publish):
//!   of two copies of one address inserted at once, at least one writer sees the other and
//!   removes the copy in the higher way.
//! - A reader loads the key (Acquire), the value (Acquire), and the key again; it trusts the
//!   value only if both key loads are the same word and that word holds the (VLAN, MAC) it
//!   wants. Because every refill changes `gen`, a way emptied and refilled with another
//!   address and then with this one again while the reader looked (ABA) is still noticed,
//!   unless it was refilled a multiple of 8 times in those few nanoseconds.
//!
//! Stations behind a flow-based tunnel port (`remote_ip=flow`, `key=flow`) are learned with
//! the tunnel source they came from (remote address, key): that pair is interned once in a
//! fixed table of [`TUN_SOURCES`] slots ([`TunSources`]) and the entry keeps its 16-bit
//! index, so entries stay two words and an entry without a tunnel source costs nothing more.
//! Interned pairs are never removed (an index never changes meaning under a reader); when
//! the table is full, stations from new sources are learned without one (unicasts to them
//! then go where a flood would: counted as `tunnel_no_dst` on a `remote_ip=flow` port).
//!
//! Thread-safety: `Send + Sync`; every method takes `&self`.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::flow::hash_words;
use crate::types::{MacAddr, PortNo, VlanId};

/// Ways per bucket.
pub const WAYS: usize = 8;
/// Distinct tunnel sources (remote, key) a MAC table can refer to.
pub const TUN_SOURCES: usize = 4096;
/// Slots probed to find or place a tunnel source.
const TUN_PROBES: usize = 16;

/// Interned tunnel sources: slot `i` holds `remote << 32 | key` (remote never 0), written
/// once (compare-exchange from 0) and never changed, so an index read from a MAC entry
/// always means the pair it was learned with.
#[derive(Debug)]
pub struct TunSources {
    slots: Box<[AtomicU64]>,
    /// Pairs that found no free slot (learned without their source).
    pub full: AtomicU64,
}

impl Default for TunSources {
    fn default() -> Self {
        TunSources {
            slots: (0..TUN_SOURCES).map(|_| AtomicU64::new(0)).collect(),
            full: AtomicU64::new(0),
        }
    }
}

impl TunSources {
    /// The index (1..=[`TUN_SOURCES`]) of (`remote`, `key`), interning it; 0 when `remote`
    /// is unspecified or the table is full.
    #[inline]
    pub fn intern(&self, remote: Ipv4Addr, key: u32) -> u16 {
        let r = u32::from(remote);
        if r == 0 {
            return 0;
        }
        let want = (r as u64) << 32 | key as u64;
        let start = hash_words(&[want], 0x0074_756e) as usize;
        for i in 0..TUN_PROBES {
            let idx = (start + i) & (TUN_SOURCES - 1);
            let slot = &self.slots[idx];
            let cur = slot.load(Ordering::Acquire);
            if cur == want {
                return idx as u16 + 1;
            }
            if cur == 0 {
                match slot.compare_exchange(0, want, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return idx as u16 + 1,
                    Err(now) if now == want => return idx as u16 + 1,
                    Err(_) => {}
                }
            }
        }
        self.full.fetch_add(1, Ordering::Relaxed);
        0
    }

    /// The (remote, key) of index `i` (from [`TunSources::intern`]).
    #[inline]
    pub fn get(&self, i: u16) -> Option<(Ipv4Addr, u32)> {
        let v = self
            .slots
            .get((i as usize).checked_sub(1)?)?
            .load(Ordering::Acquire);
        (v != 0).then(|| (Ipv4Addr::from((v >> 32) as u32), v as u32))
    }
}
/// Default aging time.
pub const DEFAULT_AGING_S: u32 = 300;

const VALID: u64 = 1 << 63;
const BUSY: u64 = 1;
const GEN_SHIFT: u32 = 60;
const GEN_MASK: u64 = 7 << GEN_SHIFT;

/// The key a refill of a way whose key was `old` publishes for `want`.
#[inline]
fn next_gen_key(old: u64, want: u64) -> u64 {
    let generation = ((old & GEN_MASK) >> GEN_SHIFT).wrapping_add(1) & 7;
    want | generation << GEN_SHIFT
}

#[derive(Debug, Default)]
struct Way {
    key: AtomicU64,
    val: AtomicU64,
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct Bucket {
    ways: [Way; WAYS],
}

/// What a call to [`MacTable::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A new entry.
    New,
    /// Known on the same port; its time was refreshed.
    Refreshed,
    /// Known on the same port and seen within the last second: nothing written.
    Unchanged,
    /// The station moved from another port.
    Moved {
        /// Where it was.
        from: PortNo,
    },
    /// Multicast or broadcast source: never learned.
    Ignored,
    /// Another thread was writing the same way; skipped (the next packet learns it).
    Contended,
}

/// A learned entry, for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntry {
    /// VLAN.
    pub vlan: VlanId,
    /// Address.
    pub mac: MacAddr,
    /// Port it was learned on.
    pub port: PortNo,
    /// The tunnel source (remote, key) it came from, when learned on a flow-based tunnel
    /// port.
    pub tun: Option<(Ipv4Addr, u32)>,
    /// Seconds since last seen.
    pub age_s: u32,
}

/// A MAC table's event counters as read at one instant ([`MacTable::counts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacCounts {
    /// New entries learned.
    pub learned: u64,
    /// Station moves (a known address seen on another port or remote).
    pub moved: u64,
    /// Entries evicted to make room.
    pub evicted: u64,
    /// Entries removed by aging.
    pub aged: u64,
    /// Stations behind a flow-based tunnel learned without their remote: the table of
    /// tunnel sources was full.
    pub tun_sources_full: u64,
}

/// The MAC learning table.
#[derive(Debug)]
pub struct MacTable {
    buckets: Box<[Bucket]>,
    mask: usize,
    aging_s: AtomicU32,
    len: AtomicUsize,
    /// New entries learned.
    pub learned: AtomicU64,
    /// Station moves.
    pub moved: AtomicU64,
    /// Entries evicted to make room.
    pub evicted: AtomicU64,
    /// Entries removed by aging.
    pub aged: AtomicU64,
    /// Tunnel sources entries refer to.
    pub tun_sources: TunSources,
}

#[inline]
fn make_key(vlan: VlanId, mac: MacAddr) -> u64 {
    VALID | ((vlan.0 as u64 & 0xfff) << 48) | mac.to_u64()
}

#[inline]
fn split_key(k: u64) -> (VlanId, MacAddr) {
    (VlanId(((k >> 48) & 0xfff) as u16), MacAddr::from_u64(k))
}

/// Where an entry sends: port and tunnel source index.
#[inline]
fn dest(port: PortNo, tun: u16) -> u32 {
    (tun as u32) << 16 | (port.0 & 0xffff)
}

#[inline]
fn dest_port(d: u32) -> PortNo {
    PortNo(d & 0xffff)
}

#[inline]
fn pack(d: u32, now_s: u32) -> u64 {
    (d as u64) << 32 | now_s as u64
}

#[inline]
fn unpack(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}

impl MacTable {
    /// A table holding at most `max_entries` (rounded up to whole buckets of [`WAYS`]).
    pub fn new(max_entries: usize) -> MacTable {
        let n = max_entries.div_ceil(WAYS).max(1).next_power_of_two();
        MacTable {
            buckets: (0..n).map(|_| Bucket::default()).collect(),
            mask: n - 1,
            aging_s: AtomicU32::new(DEFAULT_AGING_S),
            len: AtomicUsize::new(0),
            learned: AtomicU64::new(0),
            moved: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            aged: AtomicU64::new(0),
            tun_sources: TunSources::default(),
        }
    }

    /// What the table counted, read now.
    pub fn counts(&self) -> MacCounts {
        MacCounts {
            learned: self.learned.load(Ordering::Relaxed),
            moved: self.moved.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            aged: self.aged.load(Ordering::Relaxed),
            tun_sources_full: self.tun_sources.full.load(Ordering::Relaxed),
        }
    }

    /// Most entries the table can hold.
    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    /// Entries present (including aged ones not yet swept).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the aging time.
    pub fn set_aging_s(&self, s: u32) {
        self.aging_s.store(s.max(1), Ordering::Relaxed);
    }

    /// The aging time.
    pub fn aging_s(&self) -> u32 {
        self.aging_s.load(Ordering::Relaxed)
    }

    #[inline]
    fn bucket(&self, key: u64) -> &Bucket {
        &self.buckets[hash_words(&[key], 0x004d_4143) as usize & self.mask]
    }

    #[inline]
    fn fresh(&self, seen_s: u32, now_s: u32) -> bool {
        now_s.wrapping_sub(seen_s) < self.aging_s.load(Ordering::Relaxed)
    }

    /// The port `mac` was learned on in `vlan`, unless unknown or aged out.
    #[inline]
    pub fn lookup(&self, vlan: VlanId, mac: MacAddr, now_s: u32) -> Option<PortNo> {
        self.lookup_tun(vlan, mac, now_s).map(|(p, _)| p)
    }

    /// Like [`MacTable::lookup`], with the tunnel source index the entry was learned with
    /// (0: none; see [`TunSources::get`]).
    #[inline]
    pub fn lookup_tun(&self, vlan: VlanId, mac: MacAddr, now_s: u32) -> Option<(PortNo, u16)> {
        let want = make_key(vlan, mac);
        for way in &self.bucket(want).ways {
            let k = way.key.load(Ordering::Acquire);
            if k & !GEN_MASK == want {
                let v = way.val.load(Ordering::Acquire);
                if way.key.load(Ordering::Acquire) != k {
                    return None;
                }
                let (d, seen) = unpack(v);
                return self
                    .fresh(seen, now_s)
                    .then_some((dest_port(d), (d >> 16) as u16));
            }
        }
        None
    }

    /// Learns that `mac` in `vlan` is behind `port`.
    #[inline]
    pub fn learn(&self, vlan: VlanId, mac: MacAddr, port: PortNo, now_s: u32) -> Learned {
        self.learn_tun(vlan, mac, port, 0, now_s)
    }

    /// Learns that `mac` in `vlan` is behind `port` and came from tunnel source `tun` (an
    /// index from [`TunSources::intern`], 0 for none). A change of source is a move.
    #[inline]
    pub fn learn_tun(
        &self,
        vlan: VlanId,
        mac: MacAddr,
        port: PortNo,
        tun: u16,
        now_s: u32,
    ) -> Learned {
        let port = dest(port, tun);
        if mac.is_multicast() {
            return Learned::Ignored;
        }
        let want = make_key(vlan, mac);
        let bucket = self.bucket(want);
        for way in &bucket.ways {
            let k = way.key.load(Ordering::Acquire);
            if k & !GEN_MASK == want {
                let v = way.val.load(Ordering::Acquire);
                let (old_port, seen) = unpack(v);
                if old_port != port {
                    // A port change takes the way like a refill does, so a reader can never
                    // pair this key with a value written for another address.
                    if way
                        .key
                        .compare_exchange(k, BUSY, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        return Learned::Contended;
                    }
                    way.val.store(pack(port, now_s), Ordering::Release);
                    way.key.store(next_gen_key(k, want), Ordering::Release);
                    self.moved.fetch_add(1, Ordering::Relaxed);
                    return Learned::Moved {
                        from: dest_port(old_port),
                    };
                }
                if seen == now_s {
                    return Learned::Unchanged;
                }
                // Only the time changes. If the way was refilled meanwhile with a value equal
                // to `v`, that value has this same port, so the port it shows stays right.
                let _ = way.val.compare_exchange(
                    v,
                    pack(port, now_s),
                    Ordering::Release,
                    Ordering::Relaxed,
                );
                return Learned::Refreshed;
            }
        }
        self.learn_slow(bucket, want, port, now_s)
    }

    #[cold]
    fn learn_slow(&self, bucket: &Bucket, want: u64, port: u32, now_s: u32) -> Learned {
        // Prefer an empty way, then an aged one, then the one seen longest ago.
        let mut victim = 0;
        let mut victim_key = 0;
        let mut victim_rank = (u8::MAX, 0u32);
        for (i, way) in bucket.ways.iter().enumerate() {
            let k = way.key.load(Ordering::Acquire);
            let rank = if k == BUSY {
                continue;
            } else if k & VALID == 0 {
                (0, 0)
            } else {
                let (_, seen) = unpack(way.val.load(Ordering::Acquire));
                let age = now_s.wrapping_sub(seen);
                if self.fresh(seen, now_s) {
                    (2, u32::MAX - age)
                } else {
                    (1, u32::MAX - age)
                }
            };
            if rank < victim_rank {
                victim_rank = rank;
                victim = i;
                victim_key = k;
            }
        }
        if victim_rank.0 == u8::MAX {
            return Learned::Contended;
        }
        let way = &bucket.ways[victim];
        // Claim the way only if it still holds what it was ranked by (so an empty way that
        // was filled meanwhile is not counted as empty).
        let old = victim_key;
        if way
            .key
            .compare_exchange(old, BUSY, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Learned::Contended;
        }
        way.val.store(pack(port, now_s), Ordering::Release);
        let mine = next_gen_key(old, want);
        way.key.store(mine, Ordering::SeqCst);
        match victim_rank.0 {
            0 => {
                self.len.fetch_add(1, Ordering::Relaxed);
            }
            1 => {
                self.aged.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.learned.fetch_add(1, Ordering::Relaxed);
        // Two threads may have inserted the same address into two ways at once. Both
        // publish with SeqCst and then scan with SeqCst, so at least one sees the other;
        // whoever sees a second copy removes the one in the higher way.
        for (i, other) in bucket.ways.iter().enumerate() {
            if i == victim {
                continue;
            }
            let k = other.key.load(Ordering::SeqCst);
            if k & !GEN_MASK == want {
                let (high, high_key) = if i < victim { (way, mine) } else { (other, k) };
                if high
                    .key
                    .compare_exchange(
                        high_key,
                        high_key & GEN_MASK,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_ok()
                {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                }
                break;
            }
        }
        Learned::New
    }

    fn remove_where(&self, mut doomed: impl FnMut(u64, u64) -> bool) -> usize {
        let mut n = 0;
        for b in self.buckets.iter() {
            for way in &b.ways {
                let k = way.key.load(Ordering::Acquire);
                if k & VALID == 0 {
                    continue;
                }
                let v = way.val.load(Ordering::Acquire);
                if doomed(k, v)
                    && way
                        .key
                        .compare_exchange(k, k & GEN_MASK, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    n += 1;
                }
            }
        }
        n
    }

    /// Removes entries older than the aging time, reporting each.
    pub fn sweep(&self, now_s: u32, mut aged: impl FnMut(MacEntry)) -> usize {
        let n = self.remove_where(|k, v| {
            let (d, seen) = unpack(v);
            let old = !self.fresh(seen, now_s);
            if old {
                let (vlan, mac) = split_key(k);
                aged(MacEntry {
                    vlan,
                    mac,
                    port: dest_port(d),
                    tun: self.tun_sources.get((d >> 16) as u16),
                    age_s: now_s.wrapping_sub(seen),
                });
            }
            old
        });
        self.aged.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Forgets everything.
    pub fn flush(&self) {
        self.remove_where(|_, _| true);
    }

    /// Forgets what was learned on `port` (the port went away).
    pub fn flush_port(&self, port: PortNo) {
        self.remove_where(|_, v| dest_port(unpack(v).0) == port);
    }

    /// Live entries (not aged), for display.
    pub fn entries(&self, now_s: u32) -> Vec<MacEntry> {
        let mut out = Vec::new();
        for b in self.buckets.iter() {
            for way in &b.ways {
                let k = way.key.load(Ordering::Acquire);
                if k & VALID == 0 {
                    continue;
                }
                let (d, seen) = unpack(way.val.load(Ordering::Acquire));
                if way.key.load(Ordering::Acquire) == k && self.fresh(seen, now_s) {
                    let (vlan, mac) = split_key(k);
                    out.push(MacEntry {
                        vlan,
                        mac,
                        port: dest_port(d),
                        tun: self.tun_sources.get((d >> 16) as u16),
                        age_s: now_s.wrapping_sub(seen),
                    });
                }
            }
        }
        out
    }
}

/// A set of VLAN ids.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet([u64; 64]);

impl Default for VlanSet {
    /// The empty set.
    fn default() -> Self {
        VlanSet([0; 64])
    }
}

impl std::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: u32 = self.0.iter().map(|w| w.count_ones()).sum();
        write!(f, "VlanSet({n} vlans)")
    }
}

impl VlanSet {
    /// Every VLAN.
    pub fn all() -> VlanSet {
        VlanSet([u64::MAX; 64])
    }

    /// Adds a VLAN.
    pub fn insert(&mut self, v: VlanId) {
        let v = v.0 as usize & 0xfff;
        self.0[v / 64] |= 1 << (v % 64);
    }

    /// Membership.
    #[inline]
    pub fn contains(&self, v: VlanId) -> bool {
        let v = v.0 as usize & 0xfff;
        self.0[v / 64] & (1 << (v % 64)) != 0
    }
}

/// How a port takes part in VLANs for the `normal` action.
// The trunk's 512-byte VLAN bitmap is stored once per port in the snapshot and read in
// place; boxing it would add a pointer chase on the `normal` path for no memory that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged frames belong to this VLAN; tagged frames are dropped.
    Access(VlanId),
    /// Tagged frames of the allowed VLANs; untagged frames belong to `native` (and leave
    /// untagged), or are dropped without one.
    Trunk {
        /// VLANs carried tagged.
        allowed: VlanSet,
        /// VLAN of untagged frames.
        native: Option<VlanId>,
    },
}

impl Default for VlanMode {
    /// A trunk carrying every VLAN, untagged frames in VLAN 0: what a port is in OVS with no
    /// VLAN configuration.
    fn default() -> Self {
        VlanMode::Trunk {
            allowed: VlanSet::all(),
            native: Some(VlanId(0)),
        }
    }
}

/// The VLAN a frame belongs to on ingress (`tag`: its VLAN id if tagged; VID 0 is a priority
/// tag and counts as untagged), or `None` when the port does not accept it.
#[inline]
pub fn ingress_vlan(mode: &VlanMode, tag: Option<VlanId>) -> Option<VlanId> {
    let tag = tag.filter(|v| v.0 != 0);
    match (mode, tag) {
        (VlanMode::Access(v), None) => Some(*v),
        (VlanMode::Access(_), Some(_)) => None,
        (VlanMode::Trunk { native, .. }, None) => *native,
        (VlanMode::Trunk { allowed, .. }, Some(v)) => allowed.contains(v).then_some(v),
    }
}

/// How a frame of `vlan` leaves a port: `None` if the port does not carry the VLAN,
/// `Some(None)` untagged, `Some(Some(v))` tagged with `v`.
#[inline]
pub fn egress_tag(mode: &VlanMode, vlan: VlanId) -> Option<Option<VlanId>> {
    match mode {
        VlanMode::Access(v) => (*v == vlan).then_some(None),
        VlanMode::Trunk { allowed, native } => {
            if *native == Some(vlan) {
                Some(None)
            } else {
                allowed.contains(vlan).then_some(Some(vlan))
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tun_source_tests;
