//! OpenFlow groups: all (replicate), select (one live bucket by a hash and the weights),
//! indirect (one bucket), fast failover (the first live bucket).
//!
//! A bucket is live while the port it watches is up and the group it watches has a live
//! bucket (Open vSwitch's rule); the executor answers those questions from the snapshot, so
//! this module takes them as closures. Select groups hash what their selection method says:
//! by default the packet's addresses and ports, with `Hash` the listed fields (masked), with
//! `DpHash` the packet's 5-tuple; the basis mixes in `selection_method_param`.
//!
//! Thread-safety: immutable once built; the datapath compiles each bucket's actions when the
//! group is installed and shares the result through the snapshot.

use std::sync::Arc;

use crate::actions::Action;
use crate::flow::{Field, FlowKey, hash_words};
use crate::types::{GroupId, PortNo};

/// Group types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// Every bucket gets a copy.
    All,
    /// One live bucket per flow, chosen by a hash, in proportion to weights.
    Select,
    /// Exactly one bucket.
    Indirect,
    /// The first live bucket.
    FastFailover,
}

/// How a select group hashes a packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Selection {
    /// The packet's Ethernet, IP and transport fields.
    #[default]
    Default,
    /// These fields, each under its mask (`selection_method=hash,fields(...)`).
    Hash {
        /// The fields and the bits of each that count.
        fields: Vec<(Field, u128)>,
        /// The basis (`selection_method_param`).
        basis: u64,
    },
    /// The packet's addresses, protocol and ports (`selection_method=dp_hash`).
    DpHash {
        /// The basis (`selection_method_param`).
        basis: u64,
    },
}

/// One bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Share of flows (select groups only).
    pub weight: u16,
    /// The bucket is live only while this port is up.
    pub watch_port: Option<PortNo>,
    /// The bucket is live only while this group has a live bucket.
    pub watch_group: Option<GroupId>,
    /// Actions applied to the packet copy in this bucket.
    pub actions: Arc<[Action]>,
}

impl Bucket {
    /// A bucket that watches nothing.
    pub fn new(weight: u16, actions: impl Into<Arc<[Action]>>) -> Bucket {
        Bucket {
            weight,
            watch_port: None,
            watch_group: None,
            actions: actions.into(),
        }
    }
}

/// A group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Id.
    pub id: GroupId,
    /// Type.
    pub kind: GroupKind,
    /// Buckets.
    pub buckets: Vec<Bucket>,
    /// Select groups: what the hash covers.
    pub selection: Selection,
}

/// Most buckets a group may have: what one 64 KiB OpenFlow group-mod can carry with a
/// single action per bucket (a 16-byte bucket header and a 16-byte output), as Open vSwitch
/// bounds them ("input too big").
pub const MAX_BUCKETS: usize = 2048;

/// Why a group was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Indirect groups have exactly one bucket.
    #[error("an indirect group needs exactly one bucket, not {0}")]
    IndirectBuckets(usize),
    /// Group ids above 0xffffff00 are reserved.
    #[error("group id {0:#x} is reserved")]
    ReservedId(u32),
    /// Fast failover buckets need something to watch.
    #[error("fast failover bucket {0} watches neither a port nor a group")]
    Unwatched(usize),
    /// More buckets than one OpenFlow message carries.
    #[error("{0} buckets; a group has at most {MAX_BUCKETS}")]
    TooManyBuckets(usize),
}

/// The key words `Selection::Default` hashes: Ethernet addresses, IP protocol, TOS,
/// TTL, addresses and transport ports.
const DEFAULT_WORDS: std::ops::Range<usize> = 1..9;

impl Group {
    /// Checks the OpenFlow rules for this group's type.
    pub fn validate(&self) -> Result<(), GroupError> {
        if self.id.0 > 0xffff_ff00 {
            return Err(GroupError::ReservedId(self.id.0));
        }
        if self.buckets.len() > MAX_BUCKETS {
            return Err(GroupError::TooManyBuckets(self.buckets.len()));
        }
        match self.kind {
            GroupKind::Indirect if self.buckets.len() != 1 => {
                Err(GroupError::IndirectBuckets(self.buckets.len()))
            }
            GroupKind::FastFailover => {
                match self
                    .buckets
                    .iter()
                    .position(|b| b.watch_port.is_none() && b.watch_group.is_none())
                {
                    Some(i) => Err(GroupError::Unwatched(i)),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The hash a select group chooses a bucket by, for a packet with key `key`.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        match &self.selection {
            Selection::Default => hash_words(&key.w[DEFAULT_WORDS], 0x005e_1ec7),
            Selection::Hash { fields, basis } => {
                let mut words = [0u64; 2 * 8];
                let mut n = 0;
                let mut h = *basis;
                for (f, m) in fields {
                    let v = key.get(*f) & m;
                    if n + 2 > words.len() {
                        h = hash_words(&words, h);
                        n = 0;
                    }
                    words[n] = (v >> 64) as u64;
                    words[n + 1] = v as u64;
                    n += 2;
                }
                hash_words(&words[..n], h)
            }
            Selection::DpHash { basis } => {
                let words = [
                    key.get(Field::IpProto) as u64,
                    key.w[Field::Ipv4Src.range().word],
                    (key.get(Field::Ipv6Src) >> 64) as u64 ^ key.get(Field::Ipv6Src) as u64,
                    (key.get(Field::Ipv6Dst) >> 64) as u64 ^ key.get(Field::Ipv6Dst) as u64,
                    (key.get(Field::TpSrc) << 16 | key.get(Field::TpDst)) as u64,
                ];
                hash_words(&words, *basis ^ 0xd9_4a54)
            }
        }
    }

    /// The one bucket a select, indirect or fast failover group sends a packet with this
    /// hash to, given which buckets are live; `None` for an all group or when no bucket
    /// qualifies. Same hash and liveness, same bucket.
    #[inline]
    pub fn choose(&self, hash: u64, live: impl Fn(&Bucket) -> bool) -> Option<usize> {
        match self.kind {
            GroupKind::Indirect => (!self.buckets.is_empty()).then_some(0),
            GroupKind::All => None,
            GroupKind::FastFailover => self.buckets.iter().position(live),
            GroupKind::Select => {
                let usable = |b: &Bucket| b.weight > 0 && live(b);
                let total: u64 = self
                    .buckets
                    .iter()
                    .filter(|b| usable(b))
                    .map(|b| b.weight as u64)
                    .sum();
                if total == 0 {
                    return None;
                }
                // Fold the hash so the low bits depend on all of it.
                let h = (hash ^ (hash >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
                let mut point = (h >> 11) % total;
                for (i, b) in self.buckets.iter().enumerate() {
                    if !usable(b) {
                        continue;
                    }
                    if point < b.weight as u64 {
                        return Some(i);
                    }
                    point -= b.weight as u64;
                }
                None
            }
        }
    }

    /// [`Group::choose`] with every bucket live.
    #[inline]
    pub fn select(&self, hash: u64) -> Option<usize> {
        self.choose(hash, |_| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(kind: GroupKind, weights: &[u16]) -> Group {
        Group {
            id: GroupId(1),
            kind,
            buckets: weights.iter().map(|&w| Bucket::new(w, vec![])).collect(),
            selection: Selection::Default,
        }
    }

    #[test]
    fn validation() {
        assert_eq!(
            group(GroupKind::Indirect, &[1, 1]).validate(),
            Err(GroupError::IndirectBuckets(2))
        );
        // Open vSwitch takes select groups without buckets or weights: they drop.
        assert!(group(GroupKind::Select, &[0, 0]).validate().is_ok());
        assert_eq!(group(GroupKind::Select, &[0, 0]).select(7), None);
        assert!(group(GroupKind::Select, &[0, 3]).validate().is_ok());
        assert!(group(GroupKind::All, &[]).validate().is_ok());
        assert_eq!(
            group(GroupKind::FastFailover, &[0]).validate(),
            Err(GroupError::Unwatched(0))
        );
        assert!(group(GroupKind::All, &[1; MAX_BUCKETS]).validate().is_ok());
        assert_eq!(
            group(GroupKind::All, &[1; MAX_BUCKETS + 1]).validate(),
            Err(GroupError::TooManyBuckets(MAX_BUCKETS + 1))
        );
    }

    #[test]
    fn select_follows_weights_and_is_stable() {
        let g = group(GroupKind::Select, &[1, 3, 0]);
        let mut counts = [0u32; 3];
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..40_000 {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let b = g.select(s).unwrap();
            assert_eq!(g.select(s), Some(b));
            counts[b] += 1;
        }
        assert_eq!(counts[2], 0);
        let ratio = counts[1] as f64 / counts[0] as f64;
        assert!((2.7..3.3).contains(&ratio), "{counts:?}");
    }

    #[test]
    fn dead_buckets_are_skipped() {
        let mut g = group(GroupKind::FastFailover, &[0, 0, 0]);
        for (i, b) in g.buckets.iter_mut().enumerate() {
            b.watch_port = Some(PortNo(i as u32 + 1));
        }
        let up = |ports: &'static [u32]| move |b: &Bucket| ports.contains(&b.watch_port.unwrap().0);
        assert_eq!(g.choose(0, up(&[1, 2, 3])), Some(0));
        assert_eq!(g.choose(0, up(&[2, 3])), Some(1));
        assert_eq!(g.choose(0, up(&[3])), Some(2));
        assert_eq!(g.choose(0, up(&[])), None);
        // A select group spreads over the live buckets only.
        g.kind = GroupKind::Select;
        for b in &mut g.buckets {
            b.weight = 1;
        }
        for h in 0..1000u64 {
            let b = g.choose(h.wrapping_mul(0x9e37_79b9), up(&[1, 3])).unwrap();
            assert_ne!(b, 1);
        }
    }

    #[test]
    fn hash_methods_see_what_they_name() {
        let mut a = FlowKey::ZERO;
        a.set(Field::Ipv4Dst, 0x0a00_0001);
        a.set(Field::TpSrc, 80);
        let mut b = a;
        b.set(Field::Ipv4Dst, 0x0a00_00ff);
        let by_net = Group {
            selection: Selection::Hash {
                fields: vec![(Field::Ipv4Dst, 0xffff_ff00)],
                basis: 3,
            },
            ..group(GroupKind::Select, &[1, 1])
        };
        // Same /24, same hash; another basis, another hash.
        assert_eq!(by_net.hash(&a), by_net.hash(&b));
        let other = Group {
            selection: Selection::Hash {
                fields: vec![(Field::Ipv4Dst, 0xffff_ff00)],
                basis: 4,
            },
            ..by_net.clone()
        };
        assert_ne!(by_net.hash(&a), other.hash(&a));
        let dp = Group {
            selection: Selection::DpHash { basis: 0 },
            ..by_net.clone()
        };
        assert_ne!(dp.hash(&a), dp.hash(&b));
        let mut c = a;
        c.set(Field::EthSrc, 0x0200_0000_0001);
        assert_eq!(dp.hash(&a), dp.hash(&c), "dp_hash covers the 5-tuple only");
    }
}
