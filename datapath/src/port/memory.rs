//! The in-memory port: a pair of bounded rings, for tests and benchmarks.
//!
//! What: whoever holds the port injects frames into its rx ring ([`MemPort::inject`]) and
//! collects what the switch sent from its tx ring ([`MemPort::drain`]). Buffers move by
//! ownership, never by copy, so a benchmark can recycle the same buffers forever
//! ([`MemPort::recycle_into`]).
//!
//! Thread-safety: each ring is a `Mutex<VecDeque>` locked once per burst.

use std::collections::VecDeque;

use parking_lot::Mutex;

use super::{Batch, Port, PortCounters, PortStats};
use crate::packet::{BufPool, PacketBuf};

/// An in-memory port.
#[derive(Debug)]
pub struct MemPort {
    name: String,
    capacity: usize,
    rx: Mutex<VecDeque<PacketBuf>>,
    tx: Mutex<VecDeque<PacketBuf>>,
    counters: PortCounters,
}

impl MemPort {
    /// A port whose rings hold at most `capacity` packets each.
    pub fn new(name: impl Into<String>, capacity: usize) -> MemPort {
        MemPort {
            name: name.into(),
            capacity,
            rx: Mutex::new(VecDeque::with_capacity(capacity)),
            tx: Mutex::new(VecDeque::with_capacity(capacity)),
            counters: PortCounters::default(),
        }
    }

    /// Queues frames for the switch to receive. Returns how many fit; the rest are counted
    /// as rx drops, as a NIC would.
    pub fn inject<I, F>(&self, frames: I) -> usize
    where
        I: IntoIterator<Item = F>,
        F: AsRef<[u8]>,
    {
        let mut rx = self.rx.lock();
        let mut n = 0;
        for f in frames {
            match PacketBuf::from_frame(f.as_ref()) {
                Some(b) if rx.len() < self.capacity => {
                    rx.push_back(b);
                    n += 1;
                }
                _ => self.counters.rx_dropped(1),
            }
        }
        n
    }

    /// Queues already-built buffers for the switch to receive (moved, not copied).
    pub fn inject_bufs(&self, bufs: &mut VecDeque<PacketBuf>) {
        let mut rx = self.rx.lock();
        let k = self.capacity.saturating_sub(rx.len()).min(bufs.len());
        rx.extend(bufs.drain(..k));
    }

    /// Takes every frame the switch sent, as byte vectors.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        self.tx
            .lock()
            .drain(..)
            .map(|b| b.data().to_vec())
            .collect()
    }

    /// Moves every sent buffer into `out` (no copy).
    pub fn drain_bufs(&self, out: &mut VecDeque<PacketBuf>) {
        out.extend(self.tx.lock().drain(..));
    }

    /// Moves every buffer this port sent into `dst`'s rx ring: a zero-copy traffic loop for
    /// benchmarks.
    pub fn recycle_into(&self, dst: &MemPort) {
        let mut tx = self.tx.lock();
        dst.inject_bufs(&mut tx);
    }

    /// Packets waiting in the rx ring.
    pub fn rx_pending(&self) -> usize {
        self.rx.lock().len()
    }
}

impl Port for MemPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&self, _queue: usize, batch: &mut Batch, _pool: &mut BufPool) -> usize {
        let start = batch.len();
        let mut rx = self.rx.lock();
        let n = batch.remaining_capacity().min(rx.len());
        batch.extend(rx.drain(..n));
        drop(rx);
        let bytes = batch[start..].iter().map(|b| b.len() as u64).sum();
        if n > 0 {
            self.counters.rx(n as u64, bytes);
        }
        n
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        let bytes: u64 = batch.iter().map(|b| b.len() as u64).sum();
        let mut tx = self.tx.lock();
        let sent = self.capacity.saturating_sub(tx.len()).min(batch.len());
        tx.extend(batch.drain(..sent));
        drop(tx);
        let dropped = batch.len() as u64;
        let bytes = bytes - batch.iter().map(|b| b.len() as u64).sum::<u64>();
        pool.put_batch(batch);
        let sent = sent as u64;
        self.counters.tx(sent, bytes);
        if dropped > 0 {
            self.counters.tx_dropped(dropped);
        }
    }

    fn stats(&self) -> PortStats {
        self.counters.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_bounded_and_counted() {
        let p = MemPort::new("m0", 2);
        assert_eq!(p.inject([[1u8; 60], [2; 60], [3; 60]]), 2);
        let mut pool = BufPool::new(4);
        let mut batch = Batch::new();
        assert_eq!(p.rx_burst(0, &mut batch, &mut pool), 2);
        batch.push(PacketBuf::from_frame(&[4; 60]).unwrap());
        p.tx_burst(&mut batch, &mut pool);
        let s = p.stats();
        assert_eq!(
            (s.rx_packets, s.rx_dropped, s.tx_packets, s.tx_dropped),
            (2, 1, 2, 1)
        );
        assert_eq!(p.drain().len(), 2);
    }
}
