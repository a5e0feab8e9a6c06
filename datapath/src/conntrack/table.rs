//! The connection table: a chunked arena of slots and a sharded hash index over both
//! directions' tuples.
//!
//! What: slots live in chunks of [`CHUNK`] allocated once and never freed (a chunk table
//! of `OnceLock`s, so finding a slot takes no lock). The index is split into [`SHARDS`]
//! shards by hash; each shard is an open-addressing table of `u64` entries in buckets of 8
//! (`tag << 32 | (slot + 1) << 1 | reply`, 0 empty, 1 a tombstone), published through an
//! `ArcSwap` so readers never lock: a poll thread keeps a cached handle per shard
//! ([`Readers`]) and checks it with one relaxed load. Writers (creation, deletion, growth)
//! take the shard's mutex; growth builds a new table and publishes it, and a reader still
//! on the old one at worst misses a new entry and goes to the slow path, which looks again
//! under the lock. Each shard also keeps the free slots its deletions returned and, in
//! creation order, the connections not yet answered, oldest first (for eviction).
//!
//! Thread-safety: `Sync`. Lookups take no lock; a writer holds at most one shard mutex at a
//! time (so no lock order exists to get wrong).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::{ArcSwap, Cache};
use parking_lot::Mutex;

use super::slot::Slot;
use super::tuple::WORDS;

/// Index shards (a power of two).
pub(crate) const SHARDS: usize = 64;
/// Slots per arena chunk.
pub(crate) const CHUNK: usize = 4096;
/// Entries per bucket.
const WAYS: usize = 8;
/// Buckets a shard starts with.
const INITIAL_BUCKETS: usize = 64;
const EMPTY: u64 = 0;
const TOMB: u64 = 1;

/// One shard's open-addressing table.
#[derive(Debug)]
pub(crate) struct Index {
    entries: Box<[AtomicU64]>,
    /// Buckets - 1.
    mask: usize,
}

impl Index {
    fn new(buckets: usize) -> Index {
        Index {
            entries: (0..buckets * WAYS).map(|_| AtomicU64::new(EMPTY)).collect(),
            mask: buckets - 1,
        }
    }

    fn capacity(&self) -> usize {
        self.entries.len()
    }
}

#[inline]
fn entry(h: u64, slot: u32, reply: bool) -> u64 {
    (h >> 32) << 32 | ((slot as u64 + 1) << 1) | reply as u64
}

#[inline]
fn entry_slot(e: u64) -> (u32, bool) {
    (((e & 0xffff_ffff) >> 1) as u32 - 1, e & 1 != 0)
}

/// What a shard's writers share, under its mutex.
#[derive(Debug, Default)]
pub(crate) struct ShardW {
    /// Entries in the current table that are not empty (live and tombstones).
    used: usize,
    /// Live entries.
    live: usize,
    /// Slots freed here, for reuse.
    pub(crate) free: Vec<u32>,
    /// Connections created here and not answered yet, oldest first: (slot, low 32 bits of
    /// its incarnation, creation time in ms).
    pub(crate) unreplied: VecDeque<(u32, u32, u64)>,
    /// Connections whose original tuple hashes here (for compacting `unreplied`).
    pub(crate) conns: usize,
}

/// One shard: its published table and its writers' state.
#[derive(Debug)]
pub(crate) struct Shard {
    index: Arc<ArcSwap<Index>>,
    pub(crate) w: Mutex<ShardW>,
    /// Creation time of the front of `unreplied` (`u64::MAX` when empty): a lower bound
    /// on this shard's oldest unanswered connection, so eviction finds the oldest shard
    /// without locking every one.
    pub(crate) oldest_ms: AtomicU64,
}

/// Where a lookup found a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    pub slot: u32,
    pub inc: u64,
    /// The tuple is the connection's reply-direction tuple.
    pub reply: bool,
}

/// The arena and the shards.
#[derive(Debug)]
pub(crate) struct Table {
    chunks: Box<[OnceLock<Box<[Slot]>>]>,
    /// Slots ever handed out (the arena's high-water mark).
    fresh: AtomicU32,
    shards: Box<[Shard]>,
    pub(crate) seed: u64,
    /// Table grows done (inline or in maintenance).
    pub(crate) grows: AtomicU64,
}

/// A poll thread's cached handles on the shards' tables.
pub(crate) struct Readers {
    caches: Vec<Cache<Arc<ArcSwap<Index>>, Arc<Index>>>,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Readers")
    }
}

#[inline]
pub(crate) fn shard_of(h: u64) -> usize {
    (h >> 58) as usize & (SHARDS - 1)
}

impl Table {
    /// A table whose arena may grow to `max_slots` slots.
    pub(crate) fn new(max_slots: usize, seed: u64) -> Table {
        let chunks = max_slots.div_ceil(CHUNK).max(1);
        Table {
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
            fresh: AtomicU32::new(0),
            shards: (0..SHARDS)
                .map(|_| Shard {
                    index: Arc::new(ArcSwap::from_pointee(Index::new(INITIAL_BUCKETS))),
                    w: Mutex::new(ShardW::default()),
                    oldest_ms: AtomicU64::new(u64::MAX),
                })
                .collect(),
            seed,
            grows: AtomicU64::new(0),
        }
    }

    /// Handles for one reader thread.
    pub(crate) fn readers(&self) -> Readers {
        Readers {
            caches: self
                .shards
                .iter()
                .map(|s| Cache::new(s.index.clone()))
                .collect(),
        }
    }

    /// The most slots the arena can hold.
    pub(crate) fn max_slots(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Slots handed out so far.
    pub(crate) fn high_water(&self) -> usize {
        self.fresh.load(Ordering::Relaxed) as usize
    }

    /// Slot `i` (any index below [`Table::high_water`]).
    #[inline]
    pub(crate) fn slot(&self, i: u32) -> Option<&Slot> {
        let i = i as usize;
        self.chunks.get(i / CHUNK)?.get().map(|c| &c[i % CHUNK])
    }

    pub(crate) fn shard(&self, h: u64) -> &Shard {
        &self.shards[shard_of(h)]
    }

    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Finds live `t` (hash `h`) through the reader's cached tables; entries of connections
    /// that `alive` refuses (expired) are skipped.
    #[inline]
    pub(crate) fn lookup(
        &self,
        r: &mut Readers,
        t: &[u64; WORDS],
        h: u64,
        alive: impl Fn(&Slot) -> bool,
    ) -> Option<Found> {
        let idx = r.caches[shard_of(h)].load();
        self.probe(idx, t, h, alive)
    }

    #[inline]
    fn probe(
        &self,
        idx: &Index,
        t: &[u64; WORDS],
        h: u64,
        alive: impl Fn(&Slot) -> bool,
    ) -> Option<Found> {
        let tag = h >> 32;
        let mut b = h as usize & idx.mask;
        for _ in 0..=idx.mask {
            for e in &idx.entries[b * WAYS..b * WAYS + WAYS] {
                let e = e.load(Ordering::Acquire);
                if e == EMPTY {
                    return None;
                }
                if e >> 32 != tag || e == TOMB {
                    continue;
                }
                let (slot, reply) = entry_slot(e);
                let Some(s) = self.slot(slot) else { continue };
                if let Some(inc) = s.live_match(reply, t)
                    && alive(s)
                {
                    return Some(Found { slot, inc, reply });
                }
            }
            b = (b + 1) & idx.mask;
        }
        None
    }

    /// True if a reserved or live connection has tuple `t` (hash `h`) in either direction.
    /// Caller holds the shard's mutex; `alive` as in [`Table::lookup`].
    pub(crate) fn taken(&self, t: &[u64; WORDS], h: u64, alive: impl Fn(&Slot) -> bool) -> bool {
        let idx = self.shard(h).index.load();
        let tag = h >> 32;
        let mut b = h as usize & idx.mask;
        for _ in 0..=idx.mask {
            for e in &idx.entries[b * WAYS..b * WAYS + WAYS] {
                let e = e.load(Ordering::Relaxed);
                if e == EMPTY {
                    return false;
                }
                if e >> 32 != tag || e == TOMB {
                    continue;
                }
                let (slot, reply) = entry_slot(e);
                if let Some(s) = self.slot(slot)
                    && s.occupied_by(reply, t)
                    && alive(s)
                {
                    return true;
                }
            }
            b = (b + 1) & idx.mask;
        }
        false
    }

    /// Adds an entry for `slot`'s tuple of hash `h`. Caller holds the shard's mutex (`w`).
    pub(crate) fn insert(&self, w: &mut ShardW, h: u64, slot: u32, reply: bool) {
        let shard = self.shard(h);
        if (w.used + 1) * 4 > shard.index.load().capacity() * 3 {
            self.rebuild(shard, w);
        }
        let idx = shard.index.load();
        let e = entry(h, slot, reply);
        let mut b = h as usize & idx.mask;
        loop {
            for a in &idx.entries[b * WAYS..b * WAYS + WAYS] {
                let cur = a.load(Ordering::Relaxed);
                if cur == EMPTY || cur == TOMB {
                    a.store(e, Ordering::Release);
                    w.used += (cur == EMPTY) as usize;
                    w.live += 1;
                    return;
                }
            }
            b = (b + 1) & idx.mask;
        }
    }

    /// Removes `slot`'s entry of hash `h`. Caller holds the shard's mutex.
    pub(crate) fn remove(&self, w: &mut ShardW, h: u64, slot: u32, reply: bool) {
        let idx = self.shard(h).index.load();
        let e = entry(h, slot, reply);
        let mut b = h as usize & idx.mask;
        for _ in 0..=idx.mask {
            for a in &idx.entries[b * WAYS..b * WAYS + WAYS] {
                let cur = a.load(Ordering::Relaxed);
                if cur == e {
                    a.store(TOMB, Ordering::Release);
                    w.live -= 1;
                    return;
                }
                if cur == EMPTY {
                    return;
                }
            }
            b = (b + 1) & idx.mask;
        }
    }

    /// A new table for `shard` holding its live entries: twice as large if over half full
    /// of live entries, else the same size without the tombstones.
    fn rebuild(&self, shard: &Shard, w: &mut ShardW) {
        let old = shard.index.load();
        let buckets = if w.live * 2 > old.capacity() {
            (old.mask + 1) * 2
        } else {
            old.mask + 1
        };
        let new = Index::new(buckets);
        let mut used = 0;
        for a in old.entries.iter() {
            let e = a.load(Ordering::Relaxed);
            if e == EMPTY || e == TOMB {
                continue;
            }
            // The tag is the hash's upper half; the bucket came from its lower half, which
            // the entry does not keep: recompute it from the slot's tuple.
            let (slot, reply) = entry_slot(e);
            let Some(s) = self.slot(slot) else { continue };
            let t = if reply { s.rkey() } else { s.key() };
            let h = t.hash(self.seed);
            let mut b = h as usize & new.mask;
            'place: loop {
                for n in &new.entries[b * WAYS..b * WAYS + WAYS] {
                    if n.load(Ordering::Relaxed) == EMPTY {
                        n.store(e, Ordering::Relaxed);
                        used += 1;
                        break 'place;
                    }
                }
                b = (b + 1) & new.mask;
            }
        }
        w.used = used;
        w.live = used;
        shard.index.store(Arc::new(new));
        self.grows.fetch_add(1, Ordering::Relaxed);
    }

    /// Rebuilds shard tables over 60% used (the background thread calls this so inserts
    /// rarely have to). Returns how many it rebuilt.
    pub(crate) fn grow_ahead(&self) -> usize {
        let mut n = 0;
        for shard in self.shards.iter() {
            let mut w = shard.w.lock();
            if w.used * 10 > shard.index.load().capacity() * 6 {
                self.rebuild(shard, &mut w);
                n += 1;
            }
        }
        n
    }

    /// A free slot for a connection whose original tuple hashes to `w`'s shard: one this
    /// shard freed, else a never-used one, else one another shard freed (`None` when the
    /// arena is full). Caller holds `w`'s mutex; other shards are only tried, never waited
    /// for.
    pub(crate) fn alloc(&self, w: &mut ShardW, own: usize) -> Option<u32> {
        if let Some(i) = w.free.pop() {
            return Some(i);
        }
        let i = self
            .fresh
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                ((f as usize) < self.max_slots()).then_some(f + 1)
            });
        if let Ok(i) = i {
            self.ensure_chunk(i as usize / CHUNK);
            return Some(i);
        }
        for (k, s) in self.shards.iter().enumerate() {
            if k == own {
                continue;
            }
            if let Some(mut o) = s.w.try_lock() {
                let take = o.free.len().min(32);
                let at = o.free.len() - take;
                w.free.extend(o.free.drain(at..));
                if let Some(i) = w.free.pop() {
                    return Some(i);
                }
            }
        }
        None
    }

    fn ensure_chunk(&self, c: usize) {
        self.chunks[c].get_or_init(|| (0..CHUNK).map(|_| Slot::default()).collect());
    }

    /// Allocates the chunk the next fresh slots will come from, ahead of need (background).
    pub(crate) fn prealloc(&self) {
        let next = self.high_water() + CHUNK / 2;
        if next / CHUNK < self.chunks.len() {
            self.ensure_chunk(next / CHUNK);
        }
    }

    /// Bytes held: slots in allocated chunks, index tables, free lists and queues.
    pub(crate) fn memory_bytes(&self) -> usize {
        let chunks = self.chunks.iter().filter(|c| c.get().is_some()).count();
        let mut n = chunks * CHUNK * std::mem::size_of::<Slot>();
        n += self.chunks.len() * std::mem::size_of::<OnceLock<Box<[Slot]>>>();
        for s in self.shards.iter() {
            let w = s.w.lock();
            n += s.index.load().capacity() * 8;
            n += w.free.capacity() * 4;
            n += w.unreplied.capacity() * 16;
        }
        n
    }
}
