//! One connection's storage: a slot of atomic words, and the lock word that guards it.
//!
//! What: a [`Slot`] holds a connection's two tuples (original and reply direction, both
//! immutable while the connection lives) and its mutable state (expiry time, protocol
//! state, flags, mark, label, the TCP window tracker's three words). Slots live in a
//! chunked arena and are reused; the lock word says which incarnation a slot holds:
//! `inc << 3 | state << 1 | locked`, with `inc` advanced at every allocation and `state`
//! one of free, reserved (being created: its tuples may be in the index, no packet may use
//! it) or live.
//!
//! The protocol (a seqlock made of the lock word):
//! - A reader that found the slot through the index loads the lock word (Acquire), compares
//!   the tuple words (Relaxed), issues an Acquire fence and loads the word again: only the
//!   same live incarnation both times means the tuple it compared is that incarnation's.
//! - To touch the mutable state it locks with a compare-exchange from exactly that
//!   incarnation, unlocked: a slot freed or reused meanwhile fails the exchange. Under the
//!   lock the state words are read and written Relaxed; unlocking is a Release store.
//! - A creator takes a free slot, stores the new incarnation as reserved, issues a Release
//!   fence, then writes the tuples (so a reader that sees a new tuple word also sees the
//!   changed lock word when it looks again), and publishes it live with a Release store.
//! - A deleter locks the slot and stores it free, unlocked; only then are its index entries
//!   removed and the slot returned to a free list.
//!
//! Thread-safety: `Sync`; every field is atomic.

use std::sync::atomic::{AtomicU64, Ordering, fence};

use super::tuple::{Tuple, WORDS};

/// Slot states (bits 1..=2 of the lock word).
pub(crate) const FREE: u64 = 0;
pub(crate) const RESERVED: u64 = 1;
pub(crate) const LIVE: u64 = 2;

/// Flags in the info word.
pub(crate) mod flag {
    /// A packet in the reply direction has been seen (not evictable as unreplied).
    pub const REPLIED: u8 = 1;
    /// The reply tuple is source-translated.
    pub const SNAT: u8 = 2;
    /// The reply tuple is destination-translated.
    pub const DNAT: u8 = 4;
}

/// A connection slot. 144 bytes.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    lock: AtomicU64,
    key: [AtomicU64; WORDS],
    rkey: [AtomicU64; WORDS],
    /// Expiry time, milliseconds on the caller's clock.
    expires_ms: AtomicU64,
    /// `mark << 32 | flags << 8 | proto_state`.
    info: AtomicU64,
    label: [AtomicU64; 2],
    tcp: [AtomicU64; 3],
}

/// A locked slot's mutable state, read out (and written back by [`Slot::store`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub expires_ms: u64,
    pub proto_state: u8,
    pub flags: u8,
    pub mark: u32,
    pub label: u128,
    pub tcp: [u64; 3],
}

#[inline]
fn word(inc: u64, state: u64) -> u64 {
    inc << 3 | state << 1
}

/// The incarnation (`inc`) and state of a lock word.
#[inline]
pub(crate) fn decode(w: u64) -> (u64, u64) {
    (w >> 3, (w >> 1) & 3)
}

impl Slot {
    /// The lock word (Acquire).
    #[inline]
    pub(crate) fn word(&self) -> u64 {
        self.lock.load(Ordering::Acquire)
    }

    /// The incarnation if the slot is live and its tuple in direction `reply` is `t`.
    #[inline]
    pub(crate) fn live_match(&self, reply: bool, t: &[u64; WORDS]) -> Option<u64> {
        let w = self.lock.load(Ordering::Acquire);
        if decode(w).1 != LIVE {
            return None;
        }
        let k = if reply { &self.rkey } else { &self.key };
        for i in 0..WORDS {
            if k[i].load(Ordering::Relaxed) != t[i] {
                return None;
            }
        }
        fence(Ordering::Acquire);
        (self.lock.load(Ordering::Relaxed) & !1 == w & !1).then_some(decode(w).0)
    }

    /// True if the slot is reserved or live and its tuple in direction `reply` is `t` (the
    /// writers' check, under the shard lock: a reserved tuple is taken).
    pub(crate) fn occupied_by(&self, reply: bool, t: &[u64; WORDS]) -> bool {
        let st = decode(self.lock.load(Ordering::Acquire)).1;
        if st == FREE {
            return false;
        }
        let k = if reply { &self.rkey } else { &self.key };
        (0..WORDS).all(|i| k[i].load(Ordering::Relaxed) == t[i])
    }

    /// Locks incarnation `inc` if it is still live; false if it is gone.
    #[inline]
    pub(crate) fn lock(&self, inc: u64) -> bool {
        let want = word(inc, LIVE);
        let mut spins = 0u32;
        loop {
            match self.lock.compare_exchange_weak(
                want,
                want | 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(cur) if cur & !1 != want => return false,
                Err(_) => {
                    // Another thread holds it for a few dozen instructions; the sweeper
                    // may be descheduled while holding it, so yield after a while.
                    spins += 1;
                    if spins < 128 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    /// Unlocks incarnation `inc`, still live.
    #[inline]
    pub(crate) fn unlock(&self, inc: u64) {
        self.lock.store(word(inc, LIVE), Ordering::Release);
    }

    /// Ends locked incarnation `inc`: the slot becomes free (its entries still to be removed).
    pub(crate) fn kill(&self, inc: u64) {
        self.lock.store(word(inc, FREE), Ordering::Release);
    }

    /// Starts a new incarnation of a free slot (which the caller owns): reserved, with these
    /// tuples and state. Returns its `inc`.
    pub(crate) fn reserve(&self, key: &Tuple, rkey: &Tuple, st: &State) -> u64 {
        let inc = decode(self.lock.load(Ordering::Relaxed)).0 + 1;
        self.lock.store(word(inc, RESERVED), Ordering::Relaxed);
        fence(Ordering::Release);
        for (a, v) in self.key.iter().zip(key.words()) {
            a.store(v, Ordering::Relaxed);
        }
        self.set_rkey(rkey);
        self.store(st);
        inc
    }

    /// Replaces the reply tuple of a reserved slot (NAT trying another tuple).
    pub(crate) fn set_rkey(&self, rkey: &Tuple) {
        for (a, v) in self.rkey.iter().zip(rkey.words()) {
            a.store(v, Ordering::Relaxed);
        }
    }

    /// Makes reserved incarnation `inc` live.
    pub(crate) fn publish(&self, inc: u64) {
        self.lock.store(word(inc, LIVE), Ordering::Release);
    }

    /// Gives up reserved incarnation `inc` (creation failed).
    pub(crate) fn unreserve(&self, inc: u64) {
        self.lock.store(word(inc, FREE), Ordering::Release);
    }

    /// The original-direction tuple (stable while the incarnation lives).
    pub(crate) fn key(&self) -> Tuple {
        Tuple::from_words(&std::array::from_fn(|i| {
            self.key[i].load(Ordering::Relaxed)
        }))
    }

    /// The reply-direction tuple.
    pub(crate) fn rkey(&self) -> Tuple {
        Tuple::from_words(&std::array::from_fn(|i| {
            self.rkey[i].load(Ordering::Relaxed)
        }))
    }

    /// Without the lock, a hint: is the slot still live in the incarnation whose low 32
    /// bits are `inc_lo`, and unanswered? (Eviction confirms under the lock.)
    pub(crate) fn unreplied_hint(&self, inc_lo: u32) -> Option<u64> {
        let (inc, st) = decode(self.lock.load(Ordering::Acquire));
        let info = self.info.load(Ordering::Relaxed);
        (st == LIVE && inc as u32 == inc_lo && (info >> 8) as u8 & flag::REPLIED == 0)
            .then_some(inc)
    }

    /// Expiry time, read without the lock (a hint for the sweeper).
    #[inline]
    pub(crate) fn expires_ms(&self) -> u64 {
        self.expires_ms.load(Ordering::Relaxed)
    }

    /// The mutable state (caller holds the lock).
    #[inline]
    pub(crate) fn load(&self) -> State {
        let info = self.info.load(Ordering::Relaxed);
        State {
            expires_ms: self.expires_ms.load(Ordering::Relaxed),
            proto_state: info as u8,
            flags: (info >> 8) as u8,
            mark: (info >> 32) as u32,
            label: (self.label[0].load(Ordering::Relaxed) as u128) << 64
                | self.label[1].load(Ordering::Relaxed) as u128,
            tcp: std::array::from_fn(|i| self.tcp[i].load(Ordering::Relaxed)),
        }
    }

    /// Writes the mutable state back (caller holds the lock, or owns a reserved slot).
    #[inline]
    pub(crate) fn store(&self, s: &State) {
        self.expires_ms.store(s.expires_ms, Ordering::Relaxed);
        let info = (s.mark as u64) << 32 | (s.flags as u64) << 8 | s.proto_state as u64;
        self.info.store(info, Ordering::Relaxed);
        self.label[0].store((s.label >> 64) as u64, Ordering::Relaxed);
        self.label[1].store(s.label as u64, Ordering::Relaxed);
        for (a, v) in self.tcp.iter().zip(s.tcp) {
            a.store(v, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_144_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 144);
    }

    #[test]
    fn incarnations_lock_and_die() {
        let s = Slot::default();
        let t = Tuple {
            src: 1,
            dst: 2,
            sport: 3,
            dport: 4,
            proto: 17,
            ..Tuple::default()
        };
        let g = s.reserve(&t, &t.reverse(), &State::default());
        assert_eq!(
            s.live_match(false, &t.words()),
            None,
            "reserved is not live"
        );
        assert!(s.occupied_by(true, &t.reverse().words()));
        s.publish(g);
        assert_eq!(s.live_match(false, &t.words()), Some(g));
        assert_eq!(s.live_match(true, &t.words()), None);
        assert!(s.lock(g));
        s.kill(g);
        assert!(!s.lock(g), "a dead incarnation cannot be locked");
        assert!(!s.occupied_by(false, &t.words()));
        let g2 = s.reserve(&t, &t, &State::default());
        s.publish(g2);
        assert!(g2 > g);
        assert!(!s.lock(g), "the old incarnation stays dead after reuse");
        assert!(s.lock(g2));
        s.unlock(g2);
    }
}
