//! The `Capture` RPC: the frames of one port streamed to a client (`flowctl capture`).
//!
//! What: [`plan`] checks a request (every bound below; a refused request starts nothing);
//! [`start`] attaches a tap to the port ([`Switch::start_capture`], the datapath's
//! [`datapath::pipeline::Capture`]) and spawns the task that drains it: up to
//! [`FRAMES_PER_MESSAGE`] frames per response, each sent once the client took the one
//! before (the poll threads never wait for the client: while it does not read, frames
//! past the tap's [`CAPTURE_SLOTS`](datapath::pipeline::CAPTURE_SLOTS) are dropped and counted). The task polls the tap
//! every [`IDLE_POLL`] when it is empty.
//!
//! It ends, and the tap is detached, when the client cancels or goes away, after the
//! request's `count` frames or `duration_ms` (with a last [`v1::CaptureEnd`] message: frames
//! sent, frames dropped), when the port or its bridge goes away (`NOT_FOUND`), when the
//! client takes no response for the server's request timeout (`DEADLINE_EXCEEDED`), or when
//! the daemon stops (`UNAVAILABLE`). At most [`MAX_CAPTURES`] run at once per daemon
//! (`RESOURCE_EXHAUSTED` past that): with [`CAPTURE_SLOTS`](datapath::pipeline::CAPTURE_SLOTS) buffers of at most 2 KiB each,
//! captures hold at most 32 MiB however the clients behave.
//!
//! Thread-safety: one task per capture; the tap is the datapath's lock-free queue.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use datapath::pipeline::{Capture, CaptureOptions, CapturedFrame, Direction};
use parking_lot::Mutex;
use proto::v1::{self, CaptureDirection, capture_response as cr};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::Instant;
use tokio_stream::Stream;
use tonic::Status;

use crate::error::ApiError;
use crate::switch::Switch;

/// Captures running at once in one daemon.
pub const MAX_CAPTURES: usize = 8;
/// Largest snap length a request may ask for (tcpdump's default); frames are never longer
/// than a packet buffer, so this keeps whole frames.
pub const MAX_SNAPLEN: u32 = 262_144;
/// Longest `duration_ms` (7 days).
pub const MAX_DURATION_MS: u64 = 7 * 24 * 3600 * 1000;
/// Most frames in one response.
pub const FRAMES_PER_MESSAGE: usize = 256;
/// How often an empty tap is looked at again.
pub const IDLE_POLL: Duration = Duration::from_millis(2);

/// A checked request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What the datapath copies.
    pub opts: CaptureOptions,
    /// Frames to send before ending (`None`: no limit).
    pub count: Option<u64>,
    /// How long to capture (`None`: until the client goes away).
    pub duration: Option<Duration>,
    /// The snap length reported to the client.
    pub snaplen: u32,
}

/// Checks `req`'s direction, snap length and duration.
pub fn plan(req: &v1::CaptureRequest) -> Result<Plan, ApiError> {
    if req.bridge.is_empty() {
        return Err(ApiError::invalid("bridge", "a bridge name is required"));
    }
    if req.port.is_empty() {
        return Err(ApiError::invalid("port", "a port name is required"));
    }
    let (rx, tx) = match CaptureDirection::try_from(req.direction) {
        Ok(CaptureDirection::Both) => (true, true),
        Ok(CaptureDirection::Rx) => (true, false),
        Ok(CaptureDirection::Tx) => (false, true),
        Err(_) => {
            return Err(ApiError::invalid(
                "direction",
                format!("unknown direction {}", req.direction),
            ));
        }
    };
    let snaplen = match req.snaplen {
        0 => MAX_SNAPLEN,
        n if n > MAX_SNAPLEN => {
            return Err(ApiError::invalid(
                "snaplen",
                format!("{n} is more than {MAX_SNAPLEN}"),
            ));
        }
        n => n,
    };
    if req.duration_ms > MAX_DURATION_MS {
        return Err(ApiError::invalid(
            "duration_ms",
            format!(
                "{} is more than {MAX_DURATION_MS} (7 days)",
                req.duration_ms
            ),
        ));
    }
    Ok(Plan {
        opts: CaptureOptions {
            rx,
            tx,
            snaplen: snaplen as usize,
        },
        count: (req.count > 0).then_some(req.count),
        duration: (req.duration_ms > 0).then(|| Duration::from_millis(req.duration_ms)),
        snaplen,
    })
}

/// What a running capture needs from the service; its place among the
/// [`MAX_CAPTURES`] is given back when it is dropped.
#[derive(Debug)]
pub struct Job {
    /// The switch.
    pub sw: Arc<Switch>,
    /// A client taking no response for this long is given up.
    pub stall: Duration,
    /// Turns true when the daemon stops.
    pub closing: watch::Receiver<bool>,
    /// The capture's place.
    pub permit: OwnedSemaphorePermit,
}

/// The responses of one capture as the client receives them, then how it ended.
#[derive(Debug)]
pub struct CaptureStream {
    rx: mpsc::Receiver<v1::CaptureResponse>,
    end: Arc<Mutex<Option<Status>>>,
    done: bool,
}

impl Stream for CaptureStream {
    type Item = Result<v1::CaptureResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(m)) => Poll::Ready(Some(Ok(m))),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(this.end.lock().take().map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Checks `req`, attaches the tap, and spawns the task that streams its frames.
pub async fn start(job: Job, req: v1::CaptureRequest) -> Result<CaptureStream, Status> {
    let plan = plan(&req).map_err(ApiError::into_status)?;
    let sw = Arc::clone(&job.sw);
    let (bridge, port, opts) = (req.bridge.clone(), req.port.clone(), plan.opts);
    // Attaching waits for the datapath's write lock: off the async workers.
    let (cap, port_no) =
        tokio::task::spawn_blocking(move || sw.start_capture(&bridge, &port, opts))
            .await
            .map_err(|e| Status::internal(format!("capture task failed: {e}")))?
            .map_err(ApiError::into_status)?;
    let (tx, rx) = mpsc::channel(2);
    let started = v1::CaptureResponse {
        msg: Some(cr::Msg::Started(v1::CaptureStarted {
            bridge: req.bridge,
            port: req.port,
            port_no,
            snaplen: plan.snaplen,
        })),
    };
    // The channel is new: there is room.
    let _ = tx.try_send(started);
    let end = Arc::new(Mutex::new(None));
    tokio::spawn(stream_frames(job, cap, plan, tx, Arc::clone(&end)));
    Ok(CaptureStream {
        rx,
        end,
        done: false,
    })
}

/// How a capture ended.
enum Ending {
    /// Normally: the reason given to the client.
    Done(&'static str),
    /// With an error status.
    Failed(Status),
    /// The client went away: nobody to tell.
    Gone,
}

/// The capture's task: drains the tap into responses until the capture ends, then detaches
/// the tap and sends the last message (or puts the error in `end`).
async fn stream_frames(
    mut job: Job,
    mut cap: Capture,
    plan: Plan,
    tx: mpsc::Sender<v1::CaptureResponse>,
    end: Arc<Mutex<Option<Status>>>,
) {
    let deadline = plan.duration.map(|d| Instant::now() + d);
    let mut sent: u64 = 0;
    let ending = loop {
        let want = plan
            .count
            .map_or(FRAMES_PER_MESSAGE as u64, |c| c.saturating_sub(sent))
            .min(FRAMES_PER_MESSAGE as u64) as usize;
        let mut frames = Vec::new();
        cap.drain(want, |f| frames.push(frame(f)));
        if !frames.is_empty() {
            let n = frames.len() as u64;
            let msg = v1::CaptureResponse {
                msg: Some(cr::Msg::Frames(v1::CapturedFrames { frames })),
            };
            if let Err(e) = send(&mut job, &tx, msg).await {
                break e;
            }
            sent += n;
            if plan.count.is_some_and(|c| sent >= c) {
                break Ending::Done("count");
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Ending::Done("duration");
        }
        if !cap.attached() {
            break Ending::Failed(Status::not_found(
                "the port was removed (or its bridge deleted) during the capture",
            ));
        }
        if want > 0 && cap.pending() > 0 {
            continue;
        }
        tokio::select! {
            () = tokio::time::sleep(IDLE_POLL) => {}
            () = tx.closed() => break Ending::Gone,
            () = until_closing(&mut job.closing) => {
                break Ending::Failed(Status::unavailable("the switch is stopping"));
            }
        }
    };
    // Detaching waits for the datapath's write lock: off the async workers.
    let dropped = tokio::task::spawn_blocking(move || {
        cap.stop();
        cap.dropped()
    })
    .await
    .unwrap_or(0);
    match ending {
        Ending::Done(reason) => {
            let last = v1::CaptureResponse {
                msg: Some(cr::Msg::End(v1::CaptureEnd {
                    captured: sent,
                    dropped,
                    reason: reason.to_string(),
                })),
            };
            if let Err(Ending::Failed(s)) = send(&mut job, &tx, last).await {
                *end.lock() = Some(s);
            }
        }
        Ending::Failed(s) => *end.lock() = Some(s),
        Ending::Gone => {}
    }
}

/// Sends `msg` once the client took the response before; the ending when it cannot.
async fn send(
    job: &mut Job,
    tx: &mpsc::Sender<v1::CaptureResponse>,
    msg: v1::CaptureResponse,
) -> Result<(), Ending> {
    tokio::select! {
        sent = tokio::time::timeout(job.stall, tx.send(msg)) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Ending::Gone),
            Err(_) => Err(Ending::Failed(Status::deadline_exceeded(format!(
                "the client took no response for {} s; the capture was ended",
                job.stall.as_secs()
            )))),
        },
        () = until_closing(&mut job.closing) => {
            Err(Ending::Failed(Status::unavailable("the switch is stopping")))
        }
    }
}

/// One captured frame as the API sends it.
fn frame(f: &CapturedFrame<'_>) -> v1::CapturedFrame {
    v1::CapturedFrame {
        timestamp_ns: f.ts_unix_ns,
        direction: match f.direction {
            Direction::Rx => CaptureDirection::Rx,
            Direction::Tx => CaptureDirection::Tx,
        } as i32,
        original_length: f.orig_len as u32,
        data: f.data.to_vec(),
    }
}

/// Resolves once `rx` reads true (or its sender is gone).
async fn until_closing(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn req(direction: i32, snaplen: u32, duration_ms: u64, count: u64) -> v1::CaptureRequest {
        v1::CaptureRequest {
            bridge: "br0".into(),
            port: "p1".into(),
            direction,
            count,
            snaplen,
            duration_ms,
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let p = plan(&req(0, 0, 0, 0)).expect("defaults");
        assert!(p.opts.rx && p.opts.tx);
        assert_eq!((p.snaplen, p.count, p.duration), (MAX_SNAPLEN, None, None));
        let p = plan(&req(1, 96, 1500, 10)).expect("rx");
        assert!(p.opts.rx && !p.opts.tx);
        assert_eq!(p.opts.snaplen, 96);
        assert_eq!(p.count, Some(10));
        assert_eq!(p.duration, Some(Duration::from_millis(1500)));
        let e = plan(&req(0, MAX_SNAPLEN + 1, 0, 0)).expect_err("snaplen");
        assert_eq!(e.field, "snaplen");
        let e = plan(&req(0, 0, MAX_DURATION_MS + 1, 0)).expect_err("duration");
        assert_eq!(e.field, "duration_ms");
        let e = plan(&req(7, 0, 0, 0)).expect_err("direction");
        assert_eq!(e.field, "direction");
        let mut r = req(0, 0, 0, 0);
        r.port.clear();
        assert_eq!(plan(&r).expect_err("port").field, "port");
    }

    proptest! {
        /// Any request is either refused with INVALID_ARGUMENT naming a field, or planned
        /// within every bound.
        #[test]
        fn every_request_is_refused_or_bounded(
            direction in any::<i32>(),
            snaplen in any::<u32>(),
            duration_ms in any::<u64>(),
            count in any::<u64>(),
            empty in any::<bool>(),
        ) {
            let mut r = req(direction, snaplen, duration_ms, count);
            if empty {
                r.bridge.clear();
            }
            match plan(&r) {
                Ok(p) => {
                    prop_assert!(!empty);
                    prop_assert!(p.opts.rx || p.opts.tx);
                    prop_assert!(p.snaplen >= 1 && p.snaplen <= MAX_SNAPLEN);
                    prop_assert_eq!(p.opts.snaplen, p.snaplen as usize);
                    prop_assert!(p.duration.is_none_or(|d| d.as_millis() <= MAX_DURATION_MS as u128));
                    prop_assert_eq!(p.count.unwrap_or(0), count);
                }
                Err(e) => {
                    prop_assert_eq!(e.code, tonic::Code::InvalidArgument);
                    prop_assert!(!e.field.is_empty());
                }
            }
        }
    }
}
