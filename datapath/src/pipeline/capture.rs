//! Packet capture on a port (tcpdump for a userspace port): copies of the frames a port
//! receives and sends, taken by the poll threads into a bounded queue that a reader drains.
//!
//! What: [`super::Datapath::start_capture`] attaches a tap to a port in the snapshot and
//! returns the reader's end ([`Capture`]). The poll loop has one hook per direction:
//! [`on_rx`] once per received burst (before the ingress policer: what arrived) and
//! [`on_tx`] once per burst handed to a port (before its egress queues, if any). Each checks
//! the port's `capture` field of the snapshot once per burst; with no capture that is the
//! whole cost. With one, each frame is copied (up to the snap length) into a slot taken
//! from the tap's free list and queued with its time and direction; when the reader has
//! not given slots back, the frame is not copied and counted as dropped: a slow reader
//! never stalls a poll thread, and nothing is allocated on one.
//!
//! Frames a tunnel port encapsulates leave through its endpoint's port from the tunnel
//! port's own `tx_burst`, not the output stage: capture the tunnel port to see them (as the
//! inner frames).
//!
//! Thread-safety: a [`Tap`] is shared by the poll threads (producers) and one reader
//! through two lock-free queues (`crossbeam_queue::ArrayQueue`) of preallocated slots; its
//! counters are relaxed atomics. Attaching and detaching are snapshot transactions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;

use super::datapath::Datapath;
use super::shared::Shared;
use super::snapshot::PortEntry;
use super::txn::{DatapathError, Txn};
use crate::packet::{BUF_SIZE, PacketBuf};
use crate::port::Batch;
use crate::types::PortNo;

/// Slots (frames in flight between the poll threads and the reader) of one capture. With
/// the largest snap length that is `CAPTURE_SLOTS * BUF_SIZE` bytes (4 MiB) per capture,
/// allocated when it starts and freed when it ends.
pub const CAPTURE_SLOTS: usize = 2048;

/// Which way a captured frame went, seen from the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received from the port.
    Rx,
    /// Sent to the port.
    Tx,
}

/// What to capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Frames the port receives.
    pub rx: bool,
    /// Frames sent to the port.
    pub tx: bool,
    /// Bytes kept of each frame (the rest is cut; its original length is kept). Values
    /// above a packet buffer's size keep whole frames.
    pub snaplen: usize,
}

/// One frame as the reader sees it.
#[derive(Debug)]
pub struct CapturedFrame<'a> {
    /// When the poll thread saw its burst: nanoseconds since the Unix epoch (the
    /// datapath's monotonic clock from a wall-clock origin taken when the capture started,
    /// so times never go back within a poll thread).
    pub ts_unix_ns: u64,
    /// Which way it went.
    pub direction: Direction,
    /// Its length on the wire.
    pub orig_len: usize,
    /// Its first `snaplen` bytes.
    pub data: &'a [u8],
}

/// A preallocated frame slot.
#[derive(Debug)]
struct Slot {
    ts_unix_ns: u64,
    direction: Direction,
    orig_len: u32,
    len: u32,
    data: Box<[u8]>,
}

/// One capture as the poll threads see it.
#[derive(Debug)]
pub struct Tap {
    rx: bool,
    tx: bool,
    /// Slots not holding a frame.
    free: ArrayQueue<Box<Slot>>,
    /// Frames captured, oldest first.
    full: ArrayQueue<Box<Slot>>,
    /// Frames not captured because no slot was free.
    dropped: AtomicU64,
    epoch: Instant,
    epoch_unix_ns: u64,
}

impl Tap {
    fn new(opts: &CaptureOptions) -> Tap {
        let size = opts.snaplen.clamp(1, BUF_SIZE);
        let free = ArrayQueue::new(CAPTURE_SLOTS);
        for _ in 0..CAPTURE_SLOTS {
            let slot = Box::new(Slot {
                ts_unix_ns: 0,
                direction: Direction::Rx,
                orig_len: 0,
                len: 0,
                data: vec![0; size].into_boxed_slice(),
            });
            // The queue has room for every slot.
            let _ = free.push(slot);
        }
        let epoch = Instant::now();
        let epoch_unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Tap {
            rx: opts.rx,
            tx: opts.tx,
            free,
            full: ArrayQueue::new(CAPTURE_SLOTS),
            dropped: AtomicU64::new(0),
            epoch,
            epoch_unix_ns,
        }
    }

    /// Copies the frames of `pkts` into free slots, all stamped with one time.
    fn record<'a>(&self, direction: Direction, pkts: impl ExactSizeIterator<Item = &'a PacketBuf>) {
        let ts_unix_ns = self.epoch_unix_ns + self.epoch.elapsed().as_nanos() as u64;
        let mut left = pkts.len() as u64;
        for p in pkts {
            let Some(mut slot) = self.free.pop() else {
                self.dropped.fetch_add(left, Ordering::Relaxed);
                return;
            };
            let frame = p.data();
            let n = frame.len().min(slot.data.len());
            slot.data[..n].copy_from_slice(&frame[..n]);
            slot.len = n as u32;
            slot.orig_len = frame.len() as u32;
            slot.ts_unix_ns = ts_unix_ns;
            slot.direction = direction;
            left -= 1;
            // Every slot is in one queue or with the reader, and each queue holds them all.
            if let Err(slot) = self.full.push(slot) {
                let _ = self.free.push(slot);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The captures of one port, as the snapshot holds them (`PortEntry::capture`).
#[derive(Debug, Default)]
pub struct PortCapture {
    rx: Box<[Arc<Tap>]>,
    tx: Box<[Arc<Tap>]>,
}

impl PortCapture {
    /// Records a received burst.
    #[cold]
    #[inline(never)]
    fn rx_burst(&self, batch: &Batch) {
        for t in self.rx.iter() {
            t.record(Direction::Rx, batch.iter());
        }
    }

    /// Records a burst sent to the port.
    #[cold]
    #[inline(never)]
    fn tx_burst(&self, batch: &Batch) {
        for t in self.tx.iter() {
            t.record(Direction::Tx, batch.iter());
        }
    }

    fn has(&self, tap: &Arc<Tap>) -> bool {
        self.rx
            .iter()
            .chain(self.tx.iter())
            .any(|t| Arc::ptr_eq(t, tap))
    }

    /// These captures with `tap` added (`add`) or removed; `None` when none is left.
    fn with(&self, tap: &Arc<Tap>, add: bool) -> Option<Arc<PortCapture>> {
        let list = |v: &[Arc<Tap>], on: bool| -> Box<[Arc<Tap>]> {
            let mut out: Vec<Arc<Tap>> =
                v.iter().filter(|t| !Arc::ptr_eq(t, tap)).cloned().collect();
            if add && on {
                out.push(Arc::clone(tap));
            }
            out.into_boxed_slice()
        };
        let next = PortCapture {
            rx: list(&self.rx, tap.rx),
            tx: list(&self.tx, tap.tx),
        };
        (!next.rx.is_empty() || !next.tx.is_empty()).then(|| Arc::new(next))
    }
}

/// The rx hook: called once per burst received from `port`, before anything else looks at
/// it. Costs one check of the snapshot's port entry when the port has no capture.
#[inline(always)]
pub(super) fn on_rx(port: &PortEntry, batch: &Batch) {
    if let Some(c) = &port.capture {
        c.rx_burst(batch);
    }
}

/// The tx hook: called once per burst handed to `port` (to the port, or to its egress
/// queues). Costs one check of the snapshot's port entry when the port has no capture.
#[inline(always)]
pub(super) fn on_tx(port: &PortEntry, batch: &Batch) {
    if let Some(c) = &port.capture {
        c.tx_burst(batch);
    }
}

/// The reader's end of a capture: takes the frames, says how many were dropped, and
/// detaches the tap when stopped or dropped.
#[derive(Debug)]
pub struct Capture {
    /// The datapath's state, weakly: a capture does not keep a deleted bridge's datapath
    /// (and its ports' descriptors) alive.
    shared: Weak<Shared>,
    port: PortNo,
    tap: Arc<Tap>,
    attached: bool,
}

impl Datapath {
    /// Starts capturing on port `port`. Fails when there is no such port.
    pub fn start_capture(
        &self,
        port: PortNo,
        opts: CaptureOptions,
    ) -> Result<Capture, DatapathError> {
        let tap = Arc::new(Tap::new(&opts));
        self.transaction(|t| t.attach_tap(port, &tap))?;
        Ok(Capture {
            shared: Arc::downgrade(self.shared()),
            port,
            tap,
            attached: true,
        })
    }
}

impl Txn<'_> {
    /// Adds `tap` to port `no`'s captures.
    fn attach_tap(&mut self, no: PortNo, tap: &Arc<Tap>) -> Result<(), DatapathError> {
        let s = &mut *self.snap;
        let slot = s.slot(no).ok_or(DatapathError::NoSuchPort(no))?;
        let e = &mut s.ports[slot];
        e.capture = e
            .capture
            .as_deref()
            .unwrap_or(&PortCapture::default())
            .with(tap, true);
        Ok(())
    }

    /// Takes `tap` off port `no`'s captures (nothing when it is not there).
    fn detach_tap(&mut self, no: PortNo, tap: &Arc<Tap>) {
        let s = &mut *self.snap;
        if let Some(slot) = s.slot(no)
            && let Some(c) = &s.ports[slot].capture
            && c.has(tap)
        {
            s.ports[slot].capture = c.with(tap, false);
        }
    }
}

impl Capture {
    /// Hands each captured frame, oldest first, to `f`, at most `max` of them; returns how
    /// many.
    pub fn drain(&self, max: usize, mut f: impl FnMut(&CapturedFrame<'_>)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(slot) = self.tap.full.pop() else {
                break;
            };
            f(&CapturedFrame {
                ts_unix_ns: slot.ts_unix_ns,
                direction: slot.direction,
                orig_len: slot.orig_len as usize,
                data: &slot.data[..slot.len as usize],
            });
            // Back to the free list, which has room for every slot.
            let _ = self.tap.free.push(slot);
            n += 1;
        }
        n
    }

    /// Frames captured and not drained yet.
    pub fn pending(&self) -> usize {
        self.tap.full.len()
    }

    /// Frames not captured so far because the reader had not taken the earlier ones.
    pub fn dropped(&self) -> u64 {
        self.tap.dropped.load(Ordering::Relaxed)
    }

    /// The port captured.
    pub fn port(&self) -> PortNo {
        self.port
    }

    /// True while the tap is on its port in the datapath's current snapshot: false once
    /// the port was removed (or removed and added again) or the datapath is gone.
    pub fn attached(&self) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let snap = shared.snap.load();
        snap.port(self.port)
            .and_then(|e| e.capture.as_ref())
            .is_some_and(|c| c.has(&self.tap))
    }

    /// Detaches the tap: poll threads stop copying once they load the next snapshot.
    /// Frames already captured can still be drained. Takes the datapath's write lock (which
    /// may wait for a configuration change being made durable): call it from a thread that
    /// may block.
    pub fn stop(&mut self) {
        if !std::mem::take(&mut self.attached) {
            return;
        }
        if let Some(shared) = self.shared.upgrade() {
            let dp = Datapath::from_shared(shared);
            let tap = Arc::clone(&self.tap);
            let port = self.port;
            let _ = dp.transaction(|t| {
                t.detach_tap(port, &tap);
                Ok::<(), ()>(())
            });
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::VlanMode;
    use crate::pipeline::DatapathConfig;
    use crate::port::MemPort;

    fn frame(n: usize, b: u8) -> PacketBuf {
        PacketBuf::from_frame(&vec![b; n]).expect("fits")
    }

    fn dp_with_port() -> Datapath {
        let (dp, _rx) = Datapath::new(DatapathConfig::default());
        let p = Arc::new(MemPort::new("m1", 64));
        dp.add_port(PortNo(1), p, VlanMode::default()).expect("add");
        dp
    }

    #[test]
    fn frames_are_cut_to_the_snap_length_and_keep_their_length_and_order() {
        let dp = dp_with_port();
        let opts = CaptureOptions {
            rx: true,
            tx: false,
            snaplen: 20,
        };
        let cap = dp.start_capture(PortNo(1), opts).expect("start");
        let snap = dp.snapshot();
        let e = snap.port(PortNo(1)).expect("port");
        let mut b = Batch::new();
        b.push(frame(60, 1));
        b.push(frame(10, 2));
        on_rx(e, &b);
        on_tx(e, &b);
        let mut got = Vec::new();
        cap.drain(usize::MAX, |f| {
            got.push((f.direction, f.orig_len, f.data.to_vec(), f.ts_unix_ns));
        });
        assert_eq!(got.len(), 2, "tx was not asked for");
        assert_eq!(got[0].0, Direction::Rx);
        assert_eq!((got[0].1, got[0].2.clone()), (60, vec![1; 20]));
        assert_eq!((got[1].1, got[1].2.clone()), (10, vec![2; 10]));
        assert!(got[0].3 > 1_600_000_000_000_000_000, "a Unix time in ns");
        assert_eq!(cap.dropped(), 0);
    }

    #[test]
    fn a_reader_that_takes_nothing_makes_drops_not_allocations_and_stop_detaches() {
        let dp = dp_with_port();
        let opts = CaptureOptions {
            rx: true,
            tx: true,
            snaplen: 65535,
        };
        let mut cap = dp.start_capture(PortNo(1), opts).expect("start");
        let snap = dp.snapshot();
        let e = snap.port(PortNo(1)).expect("port");
        let mut b = Batch::new();
        for _ in 0..32 {
            b.push(frame(64, 3));
        }
        let bursts = CAPTURE_SLOTS / 32 + 3;
        for _ in 0..bursts {
            on_tx(e, &b);
        }
        assert_eq!(cap.dropped(), (bursts * 32 - CAPTURE_SLOTS) as u64);
        // Slots come back once read.
        assert_eq!(cap.drain(10, |_| {}), 10);
        on_rx(e, &b);
        assert_eq!(cap.dropped(), (bursts * 32 - CAPTURE_SLOTS) as u64 + 22);
        assert!(cap.attached());
        cap.stop();
        assert!(!cap.attached());
        assert!(
            dp.snapshot()
                .port(PortNo(1))
                .expect("port")
                .capture
                .is_none()
        );
    }

    #[test]
    fn two_captures_share_a_port_and_removing_the_port_detaches_them() {
        let dp = dp_with_port();
        let rx = CaptureOptions {
            rx: true,
            tx: false,
            snaplen: 64,
        };
        let tx = CaptureOptions { rx: false, ..rx };
        let a = dp.start_capture(PortNo(1), rx).expect("a");
        let b = dp
            .start_capture(PortNo(1), CaptureOptions { tx: true, ..tx })
            .expect("b");
        let snap = dp.snapshot();
        let e = snap.port(PortNo(1)).expect("port");
        let mut burst = Batch::new();
        burst.push(frame(64, 4));
        on_tx(e, &burst);
        assert_eq!(a.drain(9, |_| {}), 0);
        assert_eq!(b.drain(9, |_| {}), 1);
        drop(a);
        let c = dp.snapshot();
        let pc = c
            .port(PortNo(1))
            .and_then(|e| e.capture.as_ref())
            .expect("b left");
        assert!(pc.rx.is_empty() && pc.tx.len() == 1);
        dp.del_port(PortNo(1)).expect("del");
        assert!(!b.attached());
        assert_eq!(
            dp.start_capture(PortNo(9), rx).err(),
            Some(DatapathError::NoSuchPort(PortNo(9)))
        );
    }

    /// Through a poll thread: frames in on port 1 and out of port 2 (`in_port=1,
    /// actions=output:2`) are seen by a capture of port 1's rx and one of port 2's tx, in
    /// order, the tx ones no earlier than the rx ones; port 2's rx capture sees nothing.
    #[test]
    fn the_poll_loop_feeds_rx_and_tx_captures() {
        use crate::actions::{Action, Instructions};
        use crate::classifier::{FlowMod, FlowSpec};
        use crate::flow::{Field, FlowKey};
        use crate::types::TableId;

        let (dp, _rx) = Datapath::new(DatapathConfig::default());
        let ports: Vec<Arc<MemPort>> = (1..=2)
            .map(|i| Arc::new(MemPort::new(format!("m{i}"), 64)))
            .collect();
        for (i, p) in ports.iter().enumerate() {
            let port: Arc<dyn crate::port::Port> = p.clone();
            dp.add_port(PortNo(i as u32 + 1), port, VlanMode::default())
                .expect("add");
        }
        let mut key = FlowKey::ZERO;
        key.set(Field::InPort, 1);
        let mut mask = FlowKey::ZERO;
        mask.set(Field::InPort, u32::MAX as u128);
        let spec = FlowSpec {
            table: TableId(0),
            priority: 10,
            key: key.masked(&mask),
            mask,
            cookie: 0,
            idle_timeout_s: 0,
            hard_timeout_s: 0,
            send_flow_removed: false,
            instructions: Instructions::actions(vec![Action::Output(PortNo(2))]),
        };
        dp.flow_mods(&[FlowMod::Add {
            spec,
            check_overlap: false,
        }])
        .expect("flow");
        let only = |rx, tx| CaptureOptions {
            rx,
            tx,
            snaplen: 1500,
        };
        let in1 = dp.start_capture(PortNo(1), only(true, false)).expect("rx");
        let out2 = dp.start_capture(PortNo(2), only(false, true)).expect("tx");
        let in2 = dp
            .start_capture(PortNo(2), only(true, false))
            .expect("rx 2");
        let frames: Vec<Vec<u8>> = (0..3u8)
            .map(|i| {
                let mut f = vec![0u8; 60];
                f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
                f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
                f[12..14].copy_from_slice(&[0x88, 0xb5]);
                f[14] = i;
                f
            })
            .collect();
        ports[0].inject(frames.clone());
        let mut pmd = dp.new_pmd();
        assert_eq!(pmd.poll_until_idle(), 3);
        assert_eq!(ports[1].drain(), frames);
        let take = |c: &Capture| {
            let mut v = Vec::new();
            c.drain(usize::MAX, |f| {
                v.push((f.ts_unix_ns, f.direction, f.data.to_vec()))
            });
            v
        };
        let (rx, tx) = (take(&in1), take(&out2));
        assert_eq!(rx.iter().map(|f| f.2.clone()).collect::<Vec<_>>(), frames);
        assert_eq!(tx.iter().map(|f| f.2.clone()).collect::<Vec<_>>(), frames);
        assert!(rx.iter().all(|f| f.1 == Direction::Rx));
        assert!(tx.iter().all(|f| f.1 == Direction::Tx));
        assert!(tx[0].0 >= rx[2].0, "sent after received");
        assert!(take(&in2).is_empty());
    }

    #[test]
    fn a_capture_does_not_keep_the_datapath_alive() {
        let dp = dp_with_port();
        let opts = CaptureOptions {
            rx: true,
            tx: true,
            snaplen: 64,
        };
        let mut cap = dp.start_capture(PortNo(1), opts).expect("start");
        drop(dp);
        assert!(!cap.attached());
        cap.stop();
    }
}
