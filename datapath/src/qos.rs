//! Per-port rate control: ingress policing and egress scheduling.
//!
//! What:
//! - A [`Policer`] drops received packets above a port's `ingress_policing_rate`, as OVS
//!   does: one token bucket in bits, no queueing.
//! - An [`EgressQos`] shapes what a port sends to `max_rate` and, when more arrives than that
//!   rate lets through, decides what goes first. Packets wait in per-queue FIFOs (the
//!   `set_queue` action picks the queue; queue 0 takes the rest). Queues of a higher
//!   `priority` are always served first (strict priority); queues of equal priority share
//!   what is left in proportion to their `weight` (deficit round robin over bytes). A full
//!   queue drops the arriving packet (tail drop) and counts it.
//!
//! Token buckets are [`TokenBucket`]s: exact integer arithmetic, never above their burst (see
//! `meter`). Both pieces serve whole bursts: the policer takes its bucket's lock once per
//! received burst, the scheduler once per enqueued burst and once per dequeued burst, never
//! per packet. Queues are allocated when the configuration is applied, so enqueueing and
//! dequeueing allocate nothing.
//!
//! Thread-safety: `Policer` and `EgressQos` live in the snapshot's port entry, shared by every
//! poll thread through an `Arc`; their state sits behind a mutex taken once per burst. Their
//! counters are atomics the lock holder stores into, so reading statistics
//! ([`EgressQos::stats`], a policer's `dropped`) never takes a lock a poll thread waits on. A
//! reconfiguration builds a new object; packets still queued in the old one are freed when the
//! last snapshot holding it goes (they are not sent).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::meter::TokenBucket;
use crate::packet::{BufPool, PacketBuf};
use crate::port::{BURST, Batch, Port};

/// Highest queue id a port may configure (queues 0..=MAX_QUEUE_ID).
pub const MAX_QUEUE_ID: u32 = 63;
/// Packets a queue holds when its configuration gives no `limit`.
pub const DEFAULT_QUEUE_LIMIT: u32 = 512;
/// Default ingress burst in kilobits when none is given (as OVS: 8000 kb).
pub const DEFAULT_POLICING_BURST_KB: u64 = 8000;
/// DRR quantum per unit of weight, bytes: at least one largest frame, so every visit to a
/// backlogged queue can send.
const QUANTUM: u64 = 2048;

/// Why a rate-control configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QosError {
    /// Rates must be positive.
    #[error("{0} must be greater than 0")]
    ZeroRate(&'static str),
    /// Queue ids are limited.
    #[error("queue id {0} is out of range 0..={MAX_QUEUE_ID}")]
    BadQueueId(u32),
    /// A queue was listed twice.
    #[error("queue {0} is configured twice")]
    DuplicateQueue(u32),
    /// Weights must be positive.
    #[error("queue {0}: weight must be 1..=1000")]
    BadWeight(u32),
    /// Limits must be positive and bounded.
    #[error("queue {0}: limit must be 1..=65536 packets")]
    BadLimit(u32),
}

/// Drops received packets above a rate.
#[derive(Debug)]
pub struct Policer {
    /// Rate, kilobits per second.
    pub rate_kbps: u64,
    /// Burst, kilobits.
    pub burst_kb: u64,
    bucket: Mutex<TokenBucket>,
    /// Packets dropped.
    pub dropped: AtomicU64,
    /// Bytes dropped.
    pub dropped_bytes: AtomicU64,
}

impl Policer {
    /// A policer at `rate_kbps` with a burst of `burst_kb` (0: [`DEFAULT_POLICING_BURST_KB`]).
    pub fn new(rate_kbps: u64, burst_kb: u64, now_ns: u64) -> Result<Policer, QosError> {
        if rate_kbps == 0 {
            return Err(QosError::ZeroRate("ingress_policing_rate"));
        }
        let burst_kb = if burst_kb == 0 {
            DEFAULT_POLICING_BURST_KB
        } else {
            burst_kb
        };
        Ok(Policer {
            rate_kbps,
            burst_kb,
            bucket: Mutex::new(TokenBucket::new(
                rate_kbps.saturating_mul(1000),
                burst_kb.saturating_mul(1000),
                now_ns,
            )),
            dropped: AtomicU64::new(0),
            dropped_bytes: AtomicU64::new(0),
        })
    }

    /// Keeps the packets of `batch` that conform (in order) and returns the others to `pool`.
    /// Returns how many were dropped.
    pub fn police(&self, now_ns: u64, batch: &mut Batch, pool: &mut BufPool) -> usize {
        let total_bits: u64 = batch.iter().map(|p| p.len() as u64 * 8).sum();
        let mut bucket = self.bucket.lock();
        bucket.refill(now_ns);
        // The common case under the rate: the whole burst conforms, one subtraction.
        if bucket.take(total_bits) {
            return 0;
        }
        let mut keep = Batch::new();
        let (mut dropped, mut bytes) = (0usize, 0u64);
        for p in batch.drain(..) {
            if bucket.take(p.len() as u64 * 8) {
                keep.push(p);
            } else {
                dropped += 1;
                bytes += p.len() as u64;
                pool.put(p);
            }
        }
        drop(bucket);
        *batch = keep;
        self.dropped.fetch_add(dropped as u64, Ordering::Relaxed);
        self.dropped_bytes.fetch_add(bytes, Ordering::Relaxed);
        dropped
    }
}

/// One egress queue's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Queue id (`set_queue:ID`).
    pub id: u32,
    /// Strict priority: a higher value is always served first.
    pub priority: u8,
    /// Share among queues of equal priority, 1..=1000.
    pub weight: u32,
    /// Most packets waiting; more are dropped.
    pub limit: u32,
}

impl QueueConfig {
    /// Queue `id` with priority 0, weight 1 and the default limit.
    pub fn new(id: u32) -> QueueConfig {
        QueueConfig {
            id,
            priority: 0,
            weight: 1,
            limit: DEFAULT_QUEUE_LIMIT,
        }
    }
}

/// A port's egress configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QosConfig {
    /// The port sends at most this many kilobits per second.
    pub max_rate_kbps: u64,
    /// Burst of the shaper, kilobits (0: 10 ms at `max_rate`, at least two large frames).
    pub burst_kb: u64,
    /// Queues; queue 0 is added with defaults when not listed.
    pub queues: Vec<QueueConfig>,
}

/// One queue's statistics, read at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Queue id.
    pub id: u32,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped (queue full).
    pub dropped: u64,
    /// Packets waiting.
    pub backlog: u64,
}

struct QueueState {
    fifo: VecDeque<PacketBuf>,
    limit: usize,
    deficit: u64,
    quantum: u64,
    // Counters live under the scheduler's lock with the queue (plain adds, no atomic
    // read-modify-write per packet); each change is also stored into the queue's
    // `Published` copy, which `stats` reads without the lock.
    tx_packets: u64,
    tx_bytes: u64,
    dropped: u64,
}

/// What `stats` reads of one queue: written only by the scheduler lock's holder (plain
/// stores), read by anyone.
#[derive(Default)]
struct Published {
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    dropped: AtomicU64,
    backlog: AtomicU64,
}

struct SchedState {
    shaper: TokenBucket,
    queues: Vec<QueueState>,
    /// Queue indexes grouped by priority, highest first, with each level's round-robin
    /// position.
    levels: Vec<(Vec<usize>, usize)>,
}

/// A port's shaper and egress queues.
pub struct EgressQos {
    config: QosConfig,
    /// Queue index of each queue id (0..=MAX_QUEUE_ID); unconfigured ids map to queue 0's.
    index_of: [u8; MAX_QUEUE_ID as usize + 1],
    state: Mutex<SchedState>,
    /// Each queue's counters, by queue index.
    published: Box<[Published]>,
    backlog: AtomicUsize,
}

impl std::fmt::Debug for EgressQos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressQos")
            .field("config", &self.config)
            .field("backlog", &self.backlog.load(Ordering::Relaxed))
            .finish()
    }
}

impl EgressQos {
    /// Validates `config` and allocates its queues.
    pub fn new(mut config: QosConfig, now_ns: u64) -> Result<EgressQos, QosError> {
        if config.max_rate_kbps == 0 {
            return Err(QosError::ZeroRate("max-rate"));
        }
        let mut seen = [false; MAX_QUEUE_ID as usize + 1];
        for q in &config.queues {
            if q.id > MAX_QUEUE_ID {
                return Err(QosError::BadQueueId(q.id));
            }
            if std::mem::replace(&mut seen[q.id as usize], true) {
                return Err(QosError::DuplicateQueue(q.id));
            }
            if !(1..=1000).contains(&q.weight) {
                return Err(QosError::BadWeight(q.id));
            }
            if !(1..=65536).contains(&q.limit) {
                return Err(QosError::BadLimit(q.id));
            }
        }
        if !seen[0] {
            config.queues.push(QueueConfig::new(0));
        }
        config.queues.sort_by_key(|q| q.id);
        let mut index_of = [0u8; MAX_QUEUE_ID as usize + 1];
        let default = config.queues.iter().position(|q| q.id == 0).unwrap_or(0) as u8;
        index_of.fill(default);
        for (i, q) in config.queues.iter().enumerate() {
            index_of[q.id as usize] = i as u8;
        }
        let mut prios: Vec<u8> = config.queues.iter().map(|q| q.priority).collect();
        prios.sort_unstable_by(|a, b| b.cmp(a));
        prios.dedup();
        let levels = prios
            .iter()
            .map(|p| {
                let members = (0..config.queues.len())
                    .filter(|&i| config.queues[i].priority == *p)
                    .collect();
                (members, 0)
            })
            .collect();
        let rate = config.max_rate_kbps.saturating_mul(1000);
        let burst = if config.burst_kb == 0 {
            (rate / 100).max(2 * 8 * crate::packet::BUF_SIZE as u64)
        } else {
            config.burst_kb.saturating_mul(1000)
        };
        let queues = config
            .queues
            .iter()
            .map(|q| QueueState {
                fifo: VecDeque::with_capacity(q.limit as usize),
                limit: q.limit as usize,
                deficit: 0,
                quantum: q.weight as u64 * QUANTUM,
                tx_packets: 0,
                tx_bytes: 0,
                dropped: 0,
            })
            .collect();
        Ok(EgressQos {
            index_of,
            state: Mutex::new(SchedState {
                shaper: TokenBucket::new(rate, burst, now_ns),
                queues,
                levels,
            }),
            published: config.queues.iter().map(|_| Published::default()).collect(),
            backlog: AtomicUsize::new(0),
            config,
        })
    }

    /// The configuration, with queue 0 filled in.
    pub fn config(&self) -> &QosConfig {
        &self.config
    }

    /// Packets waiting in every queue.
    #[inline]
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Queues every packet of `batch` (draining it) on the queue its `queue()` names; packets
    /// that find their queue full go back to `pool`. Returns how many were dropped.
    pub fn enqueue(&self, batch: &mut Batch, pool: &mut BufPool) -> usize {
        let mut st = self.state.lock();
        let mut dropped = 0;
        let mut queued = 0;
        for p in batch.drain(..) {
            let qi = self
                .index_of
                .get(p.queue() as usize)
                .copied()
                .unwrap_or(self.index_of[0]) as usize;
            let q = &mut st.queues[qi];
            let out = &self.published[qi];
            if q.fifo.len() >= q.limit {
                q.dropped += 1;
                out.dropped.store(q.dropped, Ordering::Relaxed);
                dropped += 1;
                pool.put(p);
            } else {
                q.fifo.push_back(p);
                out.backlog.store(q.fifo.len() as u64, Ordering::Relaxed);
                queued += 1;
            }
        }
        drop(st);
        self.backlog.fetch_add(queued, Ordering::Relaxed);
        dropped
    }

    /// Takes up to `out.remaining_capacity()` packets, in scheduling order, as far as the
    /// shaper's tokens allow at `now_ns`. Returns how many were taken.
    pub fn dequeue(&self, now_ns: u64, out: &mut Batch) -> usize {
        if self.backlog() == 0 {
            return 0;
        }
        let mut st = self.state.lock();
        let SchedState {
            shaper,
            queues,
            levels,
        } = &mut *st;
        shaper.refill(now_ns);
        let mut taken = 0;
        'fill: while !out.is_full() {
            // Strict priority: the highest level with anything waiting.
            let Some((members, rr)) = levels
                .iter_mut()
                .find(|(m, _)| m.iter().any(|&i| !queues[i].fifo.is_empty()))
            else {
                break;
            };
            // Deficit round robin inside the level. Each pass over a backlogged queue adds
            // a quantum (at least one largest frame), so this finds a packet within one round.
            loop {
                let qi = members[*rr % members.len()];
                let q = &mut queues[qi];
                match q.fifo.front() {
                    None => {
                        q.deficit = 0;
                        *rr = (*rr + 1) % members.len();
                    }
                    Some(p) if (p.len() as u64) <= q.deficit => {
                        let len = p.len() as u64;
                        if !shaper.take(len * 8) {
                            break 'fill;
                        }
                        q.deficit -= len;
                        if let Some(p) = q.fifo.pop_front() {
                            out.push(p);
                        }
                        q.tx_packets += 1;
                        q.tx_bytes += len;
                        let out = &self.published[qi];
                        out.tx_packets.store(q.tx_packets, Ordering::Relaxed);
                        out.tx_bytes.store(q.tx_bytes, Ordering::Relaxed);
                        out.backlog.store(q.fifo.len() as u64, Ordering::Relaxed);
                        taken += 1;
                        if q.fifo.is_empty() {
                            q.deficit = 0;
                            *rr = (*rr + 1) % members.len();
                        }
                        // Back to the priority check: a higher queue may have filled.
                        continue 'fill;
                    }
                    Some(_) => {
                        q.deficit += q.quantum;
                        *rr = (*rr + 1) % members.len();
                    }
                }
            }
        }
        drop(st);
        self.backlog.fetch_sub(taken, Ordering::Relaxed);
        taken
    }

    /// Sends what the shaper allows now through `port`. Returns how many packets were sent.
    pub fn service(&self, now_ns: u64, port: &dyn Port, pool: &mut BufPool) -> usize {
        let mut total = 0;
        let mut out = Batch::new();
        loop {
            let n = self.dequeue(now_ns, &mut out);
            if n == 0 {
                return total;
            }
            total += n;
            port.tx_burst(&mut out, pool);
            if n < BURST {
                return total;
            }
        }
    }

    /// Every queue's statistics, by queue id. Takes no lock: a poll thread serving the
    /// queues never waits for a reader.
    pub fn stats(&self) -> Vec<QueueStats> {
        self.config
            .queues
            .iter()
            .zip(self.published.iter())
            .map(|(c, q)| QueueStats {
                id: c.id,
                tx_packets: q.tx_packets.load(Ordering::Relaxed),
                tx_bytes: q.tx_bytes.load(Ordering::Relaxed),
                dropped: q.dropped.load(Ordering::Relaxed),
                backlog: q.backlog.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pkt(len: usize, queue: u32) -> PacketBuf {
        let mut p = PacketBuf::from_frame(&vec![0u8; len]).expect("frame");
        p.set_queue(queue);
        p
    }

    fn cfg(rate_kbps: u64, queues: &[(u32, u8, u32)]) -> QosConfig {
        QosConfig {
            max_rate_kbps: rate_kbps,
            burst_kb: 0,
            queues: queues
                .iter()
                .map(|&(id, priority, weight)| QueueConfig {
                    id,
                    priority,
                    weight,
                    limit: 65536,
                })
                .collect(),
        }
    }

    /// Offers `offer` (packets of `len` bytes on each queue) every ms for `ms` ms, dequeues
    /// every ms; returns the bytes sent per queue id.
    fn run(q: &EgressQos, offer: &[(u32, usize, usize)], ms: u64) -> Vec<(u32, u64)> {
        let mut pool = BufPool::new(1 << 20);
        let mut sent: Vec<(u32, u64)> = offer.iter().map(|o| (o.0, 0)).collect();
        for t in 1..=ms {
            for &(id, n, len) in offer {
                let mut b = Batch::new();
                for _ in 0..n {
                    if b.is_full() {
                        q.enqueue(&mut b, &mut pool);
                    }
                    b.push(pkt(len, id));
                }
                q.enqueue(&mut b, &mut pool);
            }
            let mut out = Batch::new();
            while q.dequeue(t * 1_000_000, &mut out) > 0 {
                for p in out.drain(..) {
                    if let Some(s) = sent.iter_mut().find(|s| s.0 == p.queue()) {
                        s.1 += p.len() as u64;
                    }
                    pool.put(p);
                }
            }
        }
        sent
    }

    #[test]
    fn shaper_holds_the_rate() {
        // 10 Mbit/s port, 50 Mbit/s offered: ~10 Mbit/s leaves (plus the initial burst).
        let q = EgressQos::new(cfg(10_000, &[]), 0).expect("qos");
        let sent = run(&q, &[(0, 5, 1250)], 2000);
        let bits = sent[0].1 * 8;
        let want = 10_000_000u64 * 2 + 100_000;
        let err = (bits as f64 - want as f64).abs() / want as f64;
        assert!(err < 0.01, "{bits} vs {want}");
        assert!(q.stats()[0].dropped > 0);
    }

    #[test]
    fn strict_priority_starves_lower_queues_first() {
        // Queue 1 (priority 7) offers 5 Mbit/s, queue 0 offers 50 Mbit/s into 10 Mbit/s:
        // queue 1 gets all it offers, queue 0 the rest.
        let q = EgressQos::new(cfg(10_000, &[(1, 7, 1), (0, 0, 1)]), 0).expect("qos");
        let sent = run(&q, &[(0, 5, 1250), (1, 1, 625)], 1000);
        let hi = sent.iter().find(|s| s.0 == 1).expect("q1").1 * 8;
        let lo = sent.iter().find(|s| s.0 == 0).expect("q0").1 * 8;
        assert!(hi >= 4_990_000, "high priority got {hi}");
        assert!(
            (4_900_000..5_200_000).contains(&lo),
            "low priority got {lo}"
        );
        let st = q.stats();
        assert_eq!(st.iter().find(|s| s.id == 1).expect("q1").dropped, 0);
    }

    #[test]
    fn equal_priorities_share_by_weight() {
        let q = EgressQos::new(cfg(12_000, &[(0, 0, 1), (1, 0, 2)]), 0).expect("qos");
        let sent = run(&q, &[(0, 5, 1000), (1, 5, 1000)], 1000);
        let a = sent[0].1 as f64;
        let b = sent[1].1 as f64;
        let ratio = b / a;
        assert!((1.9..2.1).contains(&ratio), "weights 1:2 gave {a}:{b}");
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let mut c = cfg(1, &[]);
        c.queues.push(QueueConfig {
            id: 0,
            priority: 0,
            weight: 1,
            limit: 3,
        });
        let q = EgressQos::new(c, 0).expect("qos");
        let mut pool = BufPool::new(16);
        let mut b = Batch::new();
        for _ in 0..5 {
            b.push(pkt(100, 0));
        }
        assert_eq!(q.enqueue(&mut b, &mut pool), 2);
        assert_eq!(q.backlog(), 3);
        assert_eq!(pool.free_len(), 2);
        assert_eq!(q.stats()[0].dropped, 2);
    }

    #[test]
    fn unknown_queue_ids_use_queue_0_and_bad_configs_are_refused() {
        let q = EgressQos::new(cfg(1000, &[(3, 1, 1)]), 0).expect("qos");
        let mut pool = BufPool::new(16);
        let mut b = Batch::new();
        b.push(pkt(100, 9));
        b.push(pkt(100, 1_000_000));
        q.enqueue(&mut b, &mut pool);
        assert_eq!(q.stats().iter().find(|s| s.id == 0).expect("q0").backlog, 2);
        assert_eq!(
            EgressQos::new(cfg(0, &[]), 0).unwrap_err(),
            QosError::ZeroRate("max-rate")
        );
        assert_eq!(
            EgressQos::new(cfg(1, &[(64, 0, 1)]), 0).unwrap_err(),
            QosError::BadQueueId(64)
        );
        assert_eq!(
            EgressQos::new(cfg(1, &[(2, 0, 1), (2, 1, 1)]), 0).unwrap_err(),
            QosError::DuplicateQueue(2)
        );
        assert_eq!(
            EgressQos::new(cfg(1, &[(2, 0, 0)]), 0).unwrap_err(),
            QosError::BadWeight(2)
        );
    }

    #[test]
    fn policer_drops_above_rate_and_keeps_order() {
        // 1 Mbit/s, 10 kb burst; 100 packets of 1000 B at t=0: the burst (1250 B) lets one.
        let p = Policer::new(1000, 10, 0).expect("policer");
        let mut pool = BufPool::new(64);
        let mut b = Batch::new();
        for i in 0..4u8 {
            let mut x = PacketBuf::from_frame(&[i; 1000]).expect("frame");
            x.set_queue(i as u32);
            b.push(x);
        }
        assert_eq!(p.police(0, &mut b, &mut pool), 3);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].data()[0], 0);
        // 16 ms later 16 kbit have arrived (capped at the 10 kb burst): one more 8 kbit packet.
        let mut b2 = Batch::new();
        b2.push(PacketBuf::from_frame(&[5; 1000]).expect("frame"));
        b2.push(PacketBuf::from_frame(&[6; 1000]).expect("frame"));
        assert_eq!(p.police(16_000_000, &mut b2, &mut pool), 1);
        assert_eq!(b2[0].data()[0], 5);
        assert_eq!(p.dropped.load(Ordering::Relaxed), 4);
        assert!(Policer::new(0, 0, 0).is_err());
        assert_eq!(Policer::new(5, 0, 0).expect("p").burst_kb, 8000);
    }

    proptest! {
        /// Nothing is lost or invented: every packet enqueued is, at the end, sent, dropped
        /// at enqueue, or still queued; and strict priority holds at every dequeue.
        #[test]
        fn conservation_and_priority(
            queues in proptest::collection::vec((0u32..4, 0u8..3, 1u32..5, 1u32..20), 1..5),
            ops in proptest::collection::vec((0u32..6, 1usize..40, 60usize..1600, 0u64..3_000_000), 1..60),
            rate in 100u64..100_000,
        ) {
            let mut seen = std::collections::HashSet::new();
            let qs: Vec<QueueConfig> = queues.into_iter().filter(|q| seen.insert(q.0)).map(|(id, priority, weight, limit)| QueueConfig { id, priority, weight, limit }).collect();
            let q = EgressQos::new(QosConfig { max_rate_kbps: rate, burst_kb: 0, queues: qs }, 0).expect("qos");
            let prio_of = |id: u32| q.config().queues.iter().find(|c| c.id == id).map_or_else(|| q.config().queues.iter().find(|c| c.id == 0).map_or(0, |c| c.priority), |c| c.priority);
            let mut pool = BufPool::new(1 << 16);
            let (mut offered, mut dropped, mut sent) = (0u64, 0u64, 0u64);
            let mut now = 0;
            for (id, n, len, dt) in ops {
                let mut b = Batch::new();
                for _ in 0..n.min(BURST) { b.push(pkt(len, id)); }
                offered += b.len() as u64;
                dropped += q.enqueue(&mut b, &mut pool) as u64;
                now += dt;
                let mut out = Batch::new();
                q.dequeue(now, &mut out);
                // Strict priority: when a packet leaves, no queue of a higher priority has
                // anything waiting (nothing is enqueued during a dequeue).
                if let Some(last) = out.last() {
                    let p = prio_of(last.queue());
                    let st = q.stats();
                    for s in st.iter().filter(|s| s.backlog > 0) {
                        let cp = q.config().queues.iter().find(|c| c.id == s.id).map_or(0, |c| c.priority);
                        prop_assert!(cp <= p, "queue {} (prio {cp}) waits while prio {p} was sent", s.id);
                    }
                }
                sent += out.len() as u64;
                for p in out.drain(..) { pool.put(p); }
            }
            let st = q.stats();
            let backlog: u64 = st.iter().map(|s| s.backlog).sum();
            prop_assert_eq!(backlog as usize, q.backlog());
            prop_assert_eq!(offered, sent + dropped + backlog);
            prop_assert_eq!(st.iter().map(|s| s.tx_packets).sum::<u64>(), sent);
            prop_assert_eq!(st.iter().map(|s| s.dropped).sum::<u64>(), dropped);
        }
    }
}
