//! OpenFlow 1.3 meters: bands over integer token buckets.
//!
//! What: a [`Meter`] has one or more bands, each a [`TokenBucket`] with a rate and a burst.
//! A packet exceeds a band when that band's bucket lacks the tokens for it; of the bands it
//! exceeds, the one with the highest rate applies (drop, or DSCP remark); packets that
//! exceed no band pass. Packets take tokens only from buckets they conform to.
//!
//! Token arithmetic is exact integers: a bucket holds `tokens_scaled` = tokens × 10⁹, and
//! `elapsed_ns × rate_per_s` adds exactly that many scaled tokens, so no fraction is ever
//! rounded away or invented, whatever the refill pattern (`refill(a); refill(b)` equals
//! `refill(b)`). Invariant, checked in debug builds: `0 <= tokens_scaled <= burst × 10⁹`.
//! Units: bits for kbps meters (a packet costs 8 × its length), packets for pktps meters.
//!
//! Thread-safety: a meter is shared by all poll threads through the snapshot; its buckets
//! sit behind one mutex taken once per batch of packets (never per packet).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::types::MeterId;

const SCALE: u128 = 1_000_000_000;

/// The virtual meter that limits the packets the poll threads translate in their slow path
/// (OpenFlow's OFPM_SLOWPATH, `meter=slowpath`).
pub const SLOWPATH: MeterId = MeterId(0xffff_fffd);
/// The virtual meter that limits packets sent to the controller (OpenFlow's
/// OFPM_CONTROLLER, `meter=controller`).
pub const CONTROLLER: MeterId = MeterId(0xffff_fffe);

/// An integer token bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens per second.
    rate: u64,
    /// Most tokens held.
    burst: u64,
    /// Tokens × 10⁹.
    tokens_scaled: u128,
    /// Clock of the last refill.
    last_ns: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u64, burst: u64, now_ns: u64) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            tokens_scaled: burst as u128 * SCALE,
            last_ns: now_ns,
        }
    }

    /// Adds the tokens earned since the last refill (never above burst).
    #[inline]
    pub fn refill(&mut self, now_ns: u64) {
        if now_ns > self.last_ns {
            let earned = (now_ns - self.last_ns) as u128 * self.rate as u128;
            self.tokens_scaled = (self.tokens_scaled + earned).min(self.burst as u128 * SCALE);
            self.last_ns = now_ns;
        }
        debug_assert!(self.tokens_scaled <= self.burst as u128 * SCALE);
    }

    /// Takes `cost` tokens if there are that many; false (nothing taken) otherwise.
    #[inline]
    pub fn take(&mut self, cost: u64) -> bool {
        let c = cost as u128 * SCALE;
        if self.tokens_scaled >= c {
            self.tokens_scaled -= c;
            true
        } else {
            false
        }
    }

    /// True when `cost` tokens are available (nothing is taken).
    #[inline]
    pub fn has(&self, cost: u64) -> bool {
        self.tokens_scaled >= cost as u128 * SCALE
    }

    /// Whole tokens available.
    pub fn tokens(&self) -> u64 {
        (self.tokens_scaled / SCALE) as u64
    }
}

/// What a meter measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterUnit {
    /// Kilobits per second (rates) and kilobits (bursts).
    Kbps,
    /// Packets per second and packets.
    Pktps,
}

/// What a band does to the packets that exceed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandKind {
    /// Drop them.
    Drop,
    /// Raise their drop precedence (DSCP) by this many levels.
    DscpRemark {
        /// Levels.
        prec_level: u8,
    },
}

/// One band's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    /// Action.
    pub kind: BandKind,
    /// Rate in the meter's unit per second.
    pub rate: u64,
    /// Burst in the meter's unit (0: one tenth of a second at `rate`, at least 1).
    pub burst: u64,
}

/// The fate of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterVerdict {
    /// Conforms.
    Pass,
    /// Dropped by a drop band.
    Drop,
    /// Raise the DSCP drop precedence by this many levels.
    RemarkDscp(u8),
}

/// Most bands a meter may have: what OpenFlow 1.3's meter features can announce
/// (`max_bands` is a `uint8`).
pub const MAX_BANDS: usize = 255;

/// Why a meter was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    /// At least one band is needed.
    #[error("a meter needs at least one band")]
    NoBands,
    /// More bands than OpenFlow can describe.
    #[error("{0} bands; a meter has at most {MAX_BANDS}")]
    TooManyBands(usize),
    /// Rates must be positive.
    #[error("band {0} has rate 0")]
    ZeroRate(usize),
    /// Ids 0 and above 0xffff0000 are reserved, but for the two virtual meters.
    #[error("meter id {0} is out of range 1..=0xffff0000 (or slowpath, controller)")]
    BadId(u32),
}

/// Packets and bytes counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// Packets.
    pub packets: AtomicU64,
    /// Bytes.
    pub bytes: AtomicU64,
}

impl Counts {
    fn add(&self, p: u64, b: u64) {
        if p > 0 {
            self.packets.fetch_add(p, Ordering::Relaxed);
            self.bytes.fetch_add(b, Ordering::Relaxed);
        }
    }
}

/// A meter.
#[derive(Debug)]
pub struct Meter {
    /// Id.
    pub id: MeterId,
    /// Unit.
    pub unit: MeterUnit,
    /// Bands as configured.
    pub bands: Vec<Band>,
    buckets: Mutex<Vec<TokenBucket>>,
    /// Everything that entered the meter (shared with the meter this one replaced, so a
    /// modification keeps the statistics and loses no count in flight).
    pub input: Arc<Counts>,
    /// Per band: the packets it applied to.
    pub band_counts: Vec<Arc<Counts>>,
}

impl Meter {
    /// A meter with full buckets at `now_ns`.
    pub fn new(
        id: MeterId,
        unit: MeterUnit,
        bands: Vec<Band>,
        now_ns: u64,
    ) -> Result<Meter, MeterError> {
        if id.0 == 0 || (id.0 > 0xffff_0000 && id != SLOWPATH && id != CONTROLLER) {
            return Err(MeterError::BadId(id.0));
        }
        if bands.is_empty() {
            return Err(MeterError::NoBands);
        }
        if bands.len() > MAX_BANDS {
            return Err(MeterError::TooManyBands(bands.len()));
        }
        if let Some(i) = bands.iter().position(|b| b.rate == 0) {
            return Err(MeterError::ZeroRate(i));
        }
        let buckets = bands
            .iter()
            .map(|b| {
                let (rate, burst) = match unit {
                    MeterUnit::Kbps => (
                        b.rate.saturating_mul(1000),
                        if b.burst == 0 {
                            b.rate * 100
                        } else {
                            b.burst.saturating_mul(1000)
                        },
                    ),
                    MeterUnit::Pktps => (
                        b.rate,
                        if b.burst == 0 {
                            (b.rate / 10).max(1)
                        } else {
                            b.burst
                        },
                    ),
                };
                TokenBucket::new(rate, burst, now_ns)
            })
            .collect();
        let band_counts = bands.iter().map(|_| Arc::new(Counts::default())).collect();
        Ok(Meter {
            id,
            unit,
            bands,
            buckets: Mutex::new(buckets),
            input: Arc::new(Counts::default()),
            band_counts,
        })
    }

    /// Takes over the statistics of `old`, the meter this one replaces: its input counts and
    /// the counts of the bands at the same positions.
    pub fn keep_stats_of(&mut self, old: &Meter) {
        self.input = Arc::clone(&old.input);
        for (new, old) in self.band_counts.iter_mut().zip(old.band_counts.iter()) {
            *new = Arc::clone(old);
        }
    }

    /// Decides the fate of a batch of packets of lengths `lens` (bytes) arriving at `now_ns`.
    pub fn apply_batch(&self, now_ns: u64, lens: &[u32], verdicts: &mut [MeterVerdict]) {
        let in_total: u64 = lens.iter().map(|l| *l as u64).sum();
        let batch_cost = match self.unit {
            MeterUnit::Kbps => in_total * 8,
            MeterUnit::Pktps => lens.len() as u64,
        };
        let mut buckets = self.buckets.lock();
        for b in buckets.iter_mut() {
            b.refill(now_ns);
        }
        // The common case under the rate: every band has tokens for the whole batch, so
        // every packet conforms (taking per packet would give the same result).
        if buckets.iter().all(|b| b.has(batch_cost)) {
            for b in buckets.iter_mut() {
                b.take(batch_cost);
            }
            drop(buckets);
            verdicts.fill(MeterVerdict::Pass);
            self.input.add(lens.len() as u64, in_total);
            return;
        }
        let mut in_bytes = 0u64;
        let mut per_band = [(0u64, 0u64); 8];
        for (len, v) in lens.iter().zip(verdicts.iter_mut()) {
            in_bytes += *len as u64;
            let cost = match self.unit {
                MeterUnit::Kbps => *len as u64 * 8,
                MeterUnit::Pktps => 1,
            };
            let mut applied: Option<usize> = None;
            for (i, b) in buckets.iter_mut().enumerate() {
                if !b.take(cost) && applied.is_none_or(|a| self.bands[i].rate > self.bands[a].rate)
                {
                    applied = Some(i);
                }
            }
            *v = match applied {
                None => MeterVerdict::Pass,
                Some(i) => {
                    if let Some(c) = per_band.get_mut(i) {
                        c.0 += 1;
                        c.1 += *len as u64;
                    } else {
                        self.band_counts[i].add(1, *len as u64);
                    }
                    match self.bands[i].kind {
                        BandKind::Drop => MeterVerdict::Drop,
                        BandKind::DscpRemark { prec_level } => MeterVerdict::RemarkDscp(prec_level),
                    }
                }
            };
        }
        drop(buckets);
        self.input.add(lens.len() as u64, in_bytes);
        for (i, (p, b)) in per_band.iter().enumerate().take(self.band_counts.len()) {
            self.band_counts[i].add(*p, *b);
        }
    }

    /// What [`Meter::apply_batch`] would decide for one packet of `len_bytes` at `now_ns`,
    /// and which band (index) applied, without taking any token or counting it: `trace`'s
    /// view of a meter.
    pub fn peek(&self, now_ns: u64, len_bytes: u32) -> (MeterVerdict, Option<usize>) {
        let cost = match self.unit {
            MeterUnit::Kbps => len_bytes as u64 * 8,
            MeterUnit::Pktps => 1,
        };
        let mut buckets = self.buckets.lock().clone();
        let mut applied: Option<usize> = None;
        for (i, b) in buckets.iter_mut().enumerate() {
            b.refill(now_ns);
            if !b.has(cost) && applied.is_none_or(|a| self.bands[i].rate > self.bands[a].rate) {
                applied = Some(i);
            }
        }
        let verdict = match applied.map(|i| self.bands[i].kind) {
            None => MeterVerdict::Pass,
            Some(BandKind::Drop) => MeterVerdict::Drop,
            Some(BandKind::DscpRemark { prec_level }) => MeterVerdict::RemarkDscp(prec_level),
        };
        (verdict, applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Offered load far above `rate`, in steps of `step_ns`, for `secs`: how much passes.
    fn passed(rate: u64, burst: u64, cost: u64, step_ns: u64, secs: u64) -> u64 {
        let mut b = TokenBucket::new(rate, burst, 0);
        let mut taken = 0;
        let mut now = 0;
        while now < secs * 1_000_000_000 {
            now += step_ns;
            b.refill(now);
            while b.take(cost) {
                taken += cost;
            }
        }
        taken
    }

    #[test]
    fn accurate_from_1kbps_to_100gbps() {
        // (rate in bits/s, packet cost in bits, step)
        // (rate in bits/s, packet cost in bits, step, seconds): long enough that the last
        // partial packet is well under 1%.
        for (rate, cost, step, secs) in [
            (1_000u64, 8 * 64, 1_000_000u64, 200),
            (100_000_000, 8 * 1500, 10_000, 2),
            (10_000_000_000, 8 * 1500, 1_000, 1),
            (100_000_000_000, 8 * 9000, 1_000, 1),
        ] {
            let burst = cost * 10;
            let got = passed(rate, burst, cost, step, secs);
            let want = rate * secs + burst;
            let err = (got as f64 - want as f64).abs() / want as f64;
            assert!(
                err < 0.01,
                "rate {rate}: {got} vs {want} ({:.3}%)",
                err * 100.0
            );
        }
        let got = passed(10_000, 100, 1, 100_000, 5);
        assert!(
            (got as f64 - 50_100.0).abs() / 50_100.0 < 0.01,
            "pktps {got}"
        );
    }

    #[test]
    fn highest_exceeded_band_applies() {
        let bands = vec![
            Band {
                kind: BandKind::DscpRemark { prec_level: 1 },
                rate: 1,
                burst: 1,
            },
            Band {
                kind: BandKind::Drop,
                rate: 2,
                burst: 2,
            },
        ];
        let m = Meter::new(MeterId(1), MeterUnit::Pktps, bands, 0).unwrap();
        let mut v = [MeterVerdict::Pass; 4];
        m.apply_batch(0, &[100; 4], &mut v);
        assert_eq!(
            v,
            [
                MeterVerdict::Pass,
                MeterVerdict::RemarkDscp(1),
                MeterVerdict::Drop,
                MeterVerdict::Drop
            ]
        );
        assert_eq!(m.input.packets.load(Ordering::Relaxed), 4);
        assert_eq!(m.band_counts[1].packets.load(Ordering::Relaxed), 2);
        assert_eq!(
            Meter::new(
                MeterId(1),
                MeterUnit::Pktps,
                vec![
                    Band {
                        kind: BandKind::Drop,
                        rate: 1,
                        burst: 0
                    };
                    MAX_BANDS + 1
                ],
                0
            )
            .unwrap_err(),
            MeterError::TooManyBands(MAX_BANDS + 1)
        );
        assert_eq!(
            Meter::new(MeterId(0), MeterUnit::Pktps, vec![], 0).unwrap_err(),
            MeterError::BadId(0)
        );
    }

    proptest! {
        #[test]
        fn never_above_burst_and_refills_compose(rate in 1u64..1_000_000_000_000, burst in 1u64..10_000_000_000, t1 in 0u64..10_000_000_000, t2 in 0u64..10_000_000_000, take in 0u64..1_000_000) {
            let mut a = TokenBucket::new(rate, burst, 0);
            let mut b = a.clone();
            a.take(take);
            b.take(take);
            let (t1, t2) = (t1.min(t2), t1.max(t2));
            a.refill(t1);
            a.refill(t2);
            b.refill(t2);
            prop_assert_eq!(&a, &b);
            prop_assert!(a.tokens() <= burst);
        }
    }
}
