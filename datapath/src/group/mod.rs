//! OpenFlow groups: all (replicate), select (one bucket by flow hash and weight), indirect.
//!
//! Thread-safety: immutable once built; the datapath compiles each bucket's actions when the
//! group is installed and shares the result through the snapshot.

use std::sync::Arc;

use crate::actions::Action;
use crate::types::GroupId;

/// Group types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// Every bucket gets a copy.
    All,
    /// One bucket per flow, chosen by a hash of the flow, in proportion to weights.
    Select,
    /// Exactly one bucket.
    Indirect,
}

/// One bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Share of flows (select groups only).
    pub weight: u16,
    /// Actions applied to the packet copy in this bucket.
    pub actions: Arc<[Action]>,
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
}

/// Why a group was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// Indirect groups have exactly one bucket.
    #[error("an indirect group needs exactly one bucket, not {0}")]
    IndirectBuckets(usize),
    /// Select groups need a bucket with a non-zero weight.
    #[error("a select group needs at least one bucket with a non-zero weight")]
    NoWeight,
    /// Group ids above 0xffffff00 are reserved.
    #[error("group id {0:#x} is reserved")]
    ReservedId(u32),
}

impl Group {
    /// Checks the OpenFlow rules for this group's type.
    pub fn validate(&self) -> Result<(), GroupError> {
        if self.id.0 > 0xffff_ff00 {
            return Err(GroupError::ReservedId(self.id.0));
        }
        match self.kind {
            GroupKind::Indirect if self.buckets.len() != 1 => {
                Err(GroupError::IndirectBuckets(self.buckets.len()))
            }
            GroupKind::Select if self.buckets.iter().all(|b| b.weight == 0) => {
                Err(GroupError::NoWeight)
            }
            _ => Ok(()),
        }
    }

    /// The bucket for a flow with this hash (select and indirect groups); `None` for an
    /// all group or when no bucket can be chosen. Same hash, same bucket.
    #[inline]
    pub fn select(&self, hash: u64) -> Option<usize> {
        match self.kind {
            GroupKind::Indirect => (!self.buckets.is_empty()).then_some(0),
            GroupKind::All => None,
            GroupKind::Select => {
                let total: u64 = self.buckets.iter().map(|b| b.weight as u64).sum();
                if total == 0 {
                    return None;
                }
                // Fold the hash so the low bits depend on all of it.
                let h = (hash ^ (hash >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
                let mut point = (h >> 11) % total;
                for (i, b) in self.buckets.iter().enumerate() {
                    if point < b.weight as u64 {
                        return Some(i);
                    }
                    point -= b.weight as u64;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(kind: GroupKind, weights: &[u16]) -> Group {
        Group {
            id: GroupId(1),
            kind,
            buckets: weights
                .iter()
                .map(|&w| Bucket {
                    weight: w,
                    actions: Arc::from(vec![]),
                })
                .collect(),
        }
    }

    #[test]
    fn validation() {
        assert_eq!(
            group(GroupKind::Indirect, &[1, 1]).validate(),
            Err(GroupError::IndirectBuckets(2))
        );
        assert_eq!(
            group(GroupKind::Select, &[0, 0]).validate(),
            Err(GroupError::NoWeight)
        );
        assert!(group(GroupKind::Select, &[0, 3]).validate().is_ok());
        assert!(group(GroupKind::All, &[]).validate().is_ok());
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
}
