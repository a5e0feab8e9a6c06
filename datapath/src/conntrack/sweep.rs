//! Ending connections: deletion, eviction, expiry in bounded slices, flushes, and the
//! background thread that runs the slices.
//!
//! What: [`Conntrack::delete`](super::Conntrack) ends one incarnation (lock it, mark it
//! free, remove its index entries shard by shard, return the slot, uncount it). Expiry
//! ([`Conntrack::sweep`]) walks the arena from where the last slice stopped, at most
//! `budget` slots per call, so a million connections cost a million short steps spread over
//! time, never one long stop; lookups already treat an expired connection as absent, so
//! when the sweep reaches it only changes memory, not verdicts. Eviction takes the oldest
//! connection of a shard that has not been answered. [`Sweeper`] is a thread calling
//! [`Conntrack::maintain`] every 100 ms.
//!
//! Thread-safety: any thread; at most one shard mutex held at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::dump::CtFilter;
use super::slot::{LIVE, decode, flag};
use super::table::shard_of;
use super::{Conntrack, CtThread};

/// Candidates looked at per eviction before giving up on a shard.
const EVICT_SCAN: usize = 64;

impl Conntrack {
    /// Ends incarnation `inc` of `slot` if `keep` says so under its lock; false if it was
    /// already gone (or kept).
    fn delete_if(
        &self,
        slot: u32,
        inc: u64,
        end: impl FnOnce(&super::slot::State) -> bool,
    ) -> bool {
        let Some(s) = self.table.slot(slot) else {
            return false;
        };
        if !s.lock(inc) {
            return false;
        }
        if !end(&s.load()) {
            s.unlock(inc);
            return false;
        }
        let (key, rkey) = (s.key(), s.rkey());
        s.kill(inc);
        let seed = self.table.seed;
        let (h, rh) = (key.hash(seed), rkey.hash(seed));
        {
            let mut w = self.table.shard(h).w.lock();
            self.table.remove(&mut w, h, slot, false);
            w.conns = w.conns.saturating_sub(1);
            if shard_of(rh) == shard_of(h) {
                self.table.remove(&mut w, rh, slot, true);
                w.free.push(slot);
            }
        }
        if shard_of(rh) != shard_of(h) {
            let mut w = self.table.shard(rh).w.lock();
            self.table.remove(&mut w, rh, slot, true);
            w.free.push(slot);
        }
        self.zones.count[key.zone as usize].fetch_sub(1, Ordering::Relaxed);
        self.n_conns.fetch_sub(1, Ordering::Relaxed);
        true
    }

    /// Ends incarnation `inc` of `slot`.
    pub(crate) fn delete(&self, slot: u32, inc: u64) -> bool {
        self.delete_if(slot, inc, |_| true)
    }

    /// Evicts the oldest unanswered connection: the shards publish the creation time of
    /// the front of their queues; the oldest shard is locked, its answered or gone fronts
    /// dropped, and its oldest live one ended. A few rounds at most; false when none was
    /// found.
    pub(crate) fn evict_one(&self, t: &CtThread) -> bool {
        let shards = self.table.shards();
        // Each pass that does not evict corrects one shard's age: at most one per shard.
        for _ in 0..=shards.len() {
            let Some(shard) = shards
                .iter()
                .filter(|s| s.oldest_ms.load(Ordering::Relaxed) != u64::MAX)
                .min_by_key(|s| s.oldest_ms.load(Ordering::Relaxed))
            else {
                return false;
            };
            let mut w = shard.w.lock();
            // Heads that were answered or are gone are dropped first, so the shard's age
            // becomes its oldest unanswered connection's.
            let mut victim = None;
            for _ in 0..EVICT_SCAN {
                let Some(&(slot, inc_lo, _)) = w.unreplied.front() else {
                    break;
                };
                if let Some(inc) = self.table.slot(slot).and_then(|s| s.unreplied_hint(inc_lo)) {
                    victim = Some((slot, inc));
                    break;
                }
                w.unreplied.pop_front();
            }
            let front = w.unreplied.front().map_or(u64::MAX, |e| e.2);
            let was = shard.oldest_ms.swap(front, Ordering::Relaxed);
            if victim.is_none() || front > was {
                // This shard's age moved on: another shard may hold the oldest now.
                continue;
            }
            w.unreplied.pop_front();
            let next = w.unreplied.front().map_or(u64::MAX, |e| e.2);
            shard.oldest_ms.store(next, Ordering::Relaxed);
            drop(w);
            if let Some((slot, inc)) = victim
                && self.delete_if(slot, inc, |st| st.flags & flag::REPLIED == 0)
            {
                t.counters.evicted.add(1);
                return true;
            }
        }
        false
    }

    /// One expiry slice: looks at up to `budget` slots from where the last slice stopped
    /// and removes the connections expired at `now_ms`. Returns how many it removed.
    pub fn sweep(&self, now_ms: u64, budget: usize) -> usize {
        let mut cursor = self.sweep_cursor.lock();
        let hw = self.table.high_water() as u32;
        if hw == 0 {
            return 0;
        }
        let mut removed = 0;
        for _ in 0..budget.min(hw as usize) {
            if *cursor >= hw {
                *cursor = 0;
            }
            let i = *cursor;
            *cursor += 1;
            let Some(s) = self.table.slot(i) else {
                continue;
            };
            let (inc, st) = decode(s.word());
            if st == LIVE
                && s.expires_ms() <= now_ms
                && self.delete_if(i, inc, |st| st.expires_ms <= now_ms)
            {
                removed += 1;
            }
        }
        self.shared
            .expired
            .fetch_add(removed as u64, Ordering::Relaxed);
        removed
    }

    /// Removes every connection `filter` selects (all of them for `CtFilter::default()`).
    /// Returns how many.
    pub fn flush(&self, filter: &CtFilter) -> usize {
        let mut n = 0;
        for i in 0..self.table.high_water() as u32 {
            let Some(s) = self.table.slot(i) else {
                continue;
            };
            let (inc, st) = decode(s.word());
            if st != LIVE || !filter.matches(&s.key(), &s.rkey()) {
                continue;
            }
            if self.delete(i, inc) {
                n += 1;
            }
        }
        self.shared.flushed.fetch_add(n as u64, Ordering::Relaxed);
        n
    }
}

/// A background thread running [`Conntrack::maintain`] every 100 ms (expiry slices of
/// 16,384 slots, ahead-of-need growth, fragment expiry). Stops when dropped.
#[derive(Debug)]
pub struct Sweeper {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Sweeper {
    /// Starts it for `ct`, on the clock `now_ms` (the one the poll threads pass to
    /// `execute`).
    pub fn spawn(
        ct: Arc<Conntrack>,
        now_ms: impl Fn() -> u64 + Send + 'static,
    ) -> std::io::Result<Sweeper> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("ct-sweep".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    ct.maintain(now_ms(), 16_384);
                    let spent = started.elapsed();
                    std::thread::sleep(Duration::from_millis(100).saturating_sub(spent));
                }
            })?;
        Ok(Sweeper {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
