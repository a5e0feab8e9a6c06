//! What the store promises it holds: per table, the number of records and a sum of their
//! hashes, kept in the `meta` table and updated in the same transaction as every change.
//!
//! The sum is a multiset hash: each record's hash (FNV-1a over the table, the key parts and
//! the value, then a 64-bit finaliser) is added on insert and subtracted on removal, so a
//! change costs one hash per record it touches, and a load that reads anything other than
//! what the last commit wrote (a record lost, changed, or invented by damage) sees a
//! different count or sum. It guards against damage, not against someone who can write the
//! file (they could recompute it).
//!
//! Thread-safety: plain values.

use std::hash::Hasher;

/// The tables the digest covers, in their encoding order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Table {
    Bridges = 0,
    Ports = 1,
    Flows = 2,
    Meters = 3,
    Groups = 4,
}

impl Table {
    pub(super) const ALL: [Table; 5] = [
        Table::Bridges,
        Table::Ports,
        Table::Flows,
        Table::Meters,
        Table::Groups,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Table::Bridges => "bridges",
            Table::Ports => "ports",
            Table::Flows => "flows",
            Table::Meters => "meters",
            Table::Groups => "groups",
        }
    }
}

/// Encoded size: a count and a sum per table.
const ENCODED_BYTES: usize = Table::ALL.len() * 16;

/// Record counts and hash sums per table. Arithmetic wraps, so a transaction's delta can be
/// kept as a `Digest` too and added at commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Digest {
    count: [u64; 5],
    sum: [u64; 5],
}

impl Digest {
    /// Accounts for a record now present.
    pub(super) fn add(&mut self, t: Table, key: &[&[u8]], value: &[u8]) {
        let i = t as usize;
        self.count[i] = self.count[i].wrapping_add(1);
        self.sum[i] = self.sum[i].wrapping_add(record_hash(t, key, value));
    }

    /// Accounts for a record gone.
    pub(super) fn remove(&mut self, t: Table, key: &[&[u8]], value: &[u8]) {
        let i = t as usize;
        self.count[i] = self.count[i].wrapping_sub(1);
        self.sum[i] = self.sum[i].wrapping_sub(record_hash(t, key, value));
    }

    /// `self` with `delta` applied.
    pub(super) fn plus(&self, delta: &Digest) -> Digest {
        let mut d = *self;
        for i in 0..Table::ALL.len() {
            d.count[i] = d.count[i].wrapping_add(delta.count[i]);
            d.sum[i] = d.sum[i].wrapping_add(delta.sum[i]);
        }
        d
    }

    /// What differs between what was read (`self`) and what was recorded, one phrase per
    /// table; empty when they agree.
    pub(super) fn differences(&self, recorded: &Digest) -> Vec<String> {
        let mut out = Vec::new();
        for t in Table::ALL {
            let i = t as usize;
            if self.count[i] != recorded.count[i] {
                out.push(format!(
                    "table {} holds {} records where the last commit left {}",
                    t.name(),
                    self.count[i],
                    recorded.count[i]
                ));
            } else if self.sum[i] != recorded.sum[i] {
                out.push(format!(
                    "table {} holds {} records as recorded, but their contents differ from \
                     what the last commit wrote",
                    t.name(),
                    self.count[i]
                ));
            }
        }
        out
    }

    pub(super) fn encode(&self) -> [u8; ENCODED_BYTES] {
        let mut out = [0u8; ENCODED_BYTES];
        for i in 0..Table::ALL.len() {
            out[i * 16..i * 16 + 8].copy_from_slice(&self.count[i].to_le_bytes());
            out[i * 16 + 8..i * 16 + 16].copy_from_slice(&self.sum[i].to_le_bytes());
        }
        out
    }

    pub(super) fn decode(b: &[u8]) -> Option<Digest> {
        if b.len() != ENCODED_BYTES {
            return None;
        }
        let mut d = Digest::default();
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        for i in 0..Table::ALL.len() {
            d.count[i] = word(i * 16);
            d.sum[i] = word(i * 16 + 8);
        }
        Some(d)
    }
}

/// A record's hash: FNV-1a over the table, each key part and the value (each with its
/// length, so parts cannot slide into each other), then the splitmix64 finaliser so that
/// sums of hashes are well mixed. Stable across versions: it is on disk.
fn record_hash(t: Table, key: &[&[u8]], value: &[u8]) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(&[t as u8]);
    for part in key {
        h.write(&(part.len() as u32).to_le_bytes());
        h.write(part);
    }
    h.write(&(value.len() as u32).to_le_bytes());
    h.write(value);
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_what_was_added_restores_the_digest_and_any_bit_change_shows() {
        let mut d = Digest::default();
        d.add(Table::Flows, &[b"br0", b"\x01\x02"], b"flow one");
        let one = d;
        d.add(Table::Flows, &[b"br0", b"\x01\x03"], b"flow two");
        assert_ne!(d, one);
        d.remove(Table::Flows, &[b"br0", b"\x01\x03"], b"flow two");
        assert_eq!(d, one);
        assert_eq!(Digest::decode(&d.encode()), Some(d));
        // Every single-bit change of the value, key or table gives a different digest.
        let value = b"flow one".to_vec();
        for bit in 0..value.len() * 8 {
            let mut v = value.clone();
            v[bit / 8] ^= 1 << (bit % 8);
            let mut e = Digest::default();
            e.add(Table::Flows, &[b"br0", b"\x01\x02"], &v);
            assert_ne!(e, one, "bit {bit}");
            assert!(!e.differences(&one).is_empty());
        }
        let mut moved = Digest::default();
        moved.add(Table::Flows, &[b"br", b"0\x01\x02"], b"flow one");
        assert_ne!(moved, one);
        assert_eq!(
            Digest::default().differences(&one),
            vec!["table flows holds 0 records where the last commit left 1".to_string()]
        );
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // On disk: changing it would make every existing store look damaged.
        let mut d = Digest::default();
        d.add(Table::Bridges, &[b"br0"], b"\x0a\x03br0");
        assert_eq!(d.encode()[..8], 1u64.to_le_bytes());
        assert_eq!(
            u64::from_le_bytes(d.encode()[8..16].try_into().unwrap()),
            STABLE_BR0
        );
    }

    /// `record_hash(Bridges, ["br0"], "\n\x03br0")`: FNV-1a 64 and splitmix64 computed
    /// independently (Python) and pinned.
    const STABLE_BR0: u64 = 4_526_992_722_315_877_767;
}
