//! Output staging: one batch per egress port, sent when full and at the end of a burst, so
//! each port transmits whole bursts however the packets of a burst were grouped.
//!
//! Thread-safety: a `TxStage` belongs to one poll thread.

use super::capture;
use super::snapshot::Snapshot;
use crate::packet::{BufPool, PacketBuf};
use crate::port::Batch;
use crate::stats::{DropReason, PmdCounters};

/// One batch per port slot, and the slots holding packets.
pub(super) struct TxStage {
    pub(super) batches: Vec<Batch>,
    pub(super) dirty: Vec<u16>,
}

impl TxStage {
    /// Nothing staged.
    pub(super) fn new() -> TxStage {
        TxStage {
            batches: Vec::new(),
            dirty: Vec::new(),
        }
    }

    /// Makes room for every port of `snap`.
    #[inline]
    pub(super) fn fit(&mut self, snap: &Snapshot) {
        if self.batches.len() < snap.ports.len() {
            self.batches.resize_with(snap.ports.len(), Batch::new);
        }
    }

    /// Stages `b` for the port in `slot`, sending the port's batch when it is full.
    #[inline]
    pub(super) fn stage(
        &mut self,
        snap: &Snapshot,
        slot: usize,
        b: PacketBuf,
        pool: &mut BufPool,
        c: &PmdCounters,
    ) {
        let batch = &mut self.batches[slot];
        if batch.is_empty() {
            self.dirty.push(slot as u16);
        }
        batch.push(b);
        if batch.is_full() {
            let n = batch.len() as u64;
            send(snap, slot, batch, pool, c);
            c.tx_packets.add(n);
            // Still listed as dirty; an empty batch flushes as a no-op.
        }
    }

    /// Sends every staged batch.
    pub(super) fn flush(&mut self, snap: &Snapshot, pool: &mut BufPool, c: &PmdCounters) {
        while let Some(slot) = self.dirty.pop() {
            let batch = &mut self.batches[slot as usize];
            if !batch.is_empty() {
                let n = batch.len() as u64;
                send(snap, slot as usize, batch, pool, c);
                c.tx_packets.add(n);
            }
        }
    }
}

/// Hands `batch` to the port in `slot`: straight to the port, or to its egress queues when it
/// has them (the poll loop sends from there at the port's rate).
#[inline]
pub(super) fn send(
    snap: &Snapshot,
    slot: usize,
    batch: &mut Batch,
    pool: &mut BufPool,
    c: &PmdCounters,
) {
    let e = &snap.ports[slot];
    capture::on_tx(e, batch);
    match &e.qos {
        None => e.port.tx_burst(batch, pool),
        Some(q) => {
            let dropped = q.enqueue(batch, pool);
            c.count_drop(DropReason::QueueFull, dropped as u64);
        }
    }
}
