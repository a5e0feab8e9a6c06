//! One controller connection: its own thread and a single-threaded tokio runtime that
//! reads messages, runs them through the [`Session`], sends what it answers, forwards the
//! switch's events, and keeps the connection alive.
//!
//! Why a thread per connection: the session calls the switch directly (a flow batch is a
//! datapath transaction and a store write; a bundle commit waits for fsync), which must not
//! stall other connections or the gRPC server's workers; controllers are few.
//!
//! Keepalive (Open vSwitch's rconn): after `inactivity_probe` without a message from the
//! controller an ECHO_REQUEST goes out; after as long again without one the connection is
//! closed ("inactivity probe timeout").
//!
//! Flow changes arriving back to back are applied together: every complete message in a
//! read is handled, then the session's batch is flushed, then the answers are sent. A
//! batch that deletes flows and has no barrier after it is held while the controller keeps
//! sending ([`HOLD_QUIET`], at most [`HOLD_MAX`]): a controller that empties the tables and
//! fills them again changes them in one datapath transaction. A barrier, any request that
//! is not a FLOW_MOD, or the connection's end applies it at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proto::openflow::header::{self, MsgType};
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use super::roles::Roles;
use super::session::{ConnCounters, Next, Session, Settings};
use super::transport::{self, BoxIo, RawSocket};
use super::writes::MAX_BATCH;
use crate::server::TlsFiles;
use crate::switch::{Switch, Target};

/// Bytes read at once (many messages; the largest message is 64 KiB).
const READ_BUF: usize = 1 << 20;
/// Events forwarded before the answers are sent.
const EVENT_BATCH: usize = 1024;
/// FLOW_MODs that delete flows, with no barrier after them, wait until the controller has
/// been quiet this long, so that a controller that empties the tables and fills them again
/// (Faucet when it reconnects) changes them in one step: traffic never sees them empty.
const HOLD_QUIET: Duration = Duration::from_millis(50);
/// FLOW_MODs of a read that filled the buffer wait this long for the rest of what the
/// controller sent, so that a stream of them is applied in batches of up to [`MAX_BATCH`].
const MORE_QUIET: Duration = Duration::from_millis(1);
/// The longest a held batch waits.
const HOLD_MAX: Duration = Duration::from_millis(250);

/// What a connection is given.
#[derive(Debug, Clone)]
pub struct ConnParams {
    /// The switch.
    pub sw: Arc<Switch>,
    /// The bridge it serves.
    pub bridge: String,
    /// The bridge's roles.
    pub roles: Arc<Roles>,
    /// Its target (TLS or not).
    pub target: Target,
    /// TLS files for `ssl:`/`pssl:`.
    pub tls: Option<TlsFiles>,
    /// Rate limit and connection type.
    pub settings: Settings,
    /// Inactivity probe interval.
    pub probe: Duration,
    /// Turns true when the connection must end (target removed, daemon stopping).
    pub stop: watch::Receiver<bool>,
}

/// What the status of a live connection shows.
#[derive(Debug)]
pub struct ConnInfo {
    /// The peer.
    pub remote: String,
    /// Its role (OFPCR_ROLE_*), updated as it changes.
    pub role: AtomicU32,
    /// Its packet-in counters.
    pub counters: Arc<ConnCounters>,
}

/// Runs a connection on a thread of its own; the handle yields why it ended.
pub fn spawn(
    raw: RawSocket,
    info: Arc<ConnInfo>,
    p: ConnParams,
) -> std::io::Result<std::thread::JoinHandle<String>> {
    std::thread::Builder::new()
        .name(format!("of-{}", p.bridge))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return format!("starting the connection's runtime: {e}"),
            };
            match rt.block_on(drive(raw, &info, p)) {
                Ok(()) => String::new(),
                Err(e) => e,
            }
        })
}

async fn send(wr: &mut WriteHalf<BoxIo>, out: &mut Vec<u8>) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    let r = wr.write_all(out).await;
    out.clear();
    r.map_err(|e| format!("writing to the controller: {e}"))
}

/// When the switch is to apply a batch of FLOW_MODs that deletes flows and was not followed
/// by a barrier: `(since, until)`.
type Hold = Option<(Instant, Instant)>;

/// The hold after a read: `None` (apply now) unless the batch deletes flows, then until the
/// controller has been quiet for [`HOLD_QUIET`], at most [`HOLD_MAX`] after the first.
fn next_hold(session: &Session, hold: Hold, more: bool) -> Hold {
    let quiet = if session.holds_deletes() {
        HOLD_QUIET
    } else if more && session.queued() > 0 && session.queued() < MAX_BATCH {
        MORE_QUIET
    } else {
        return None;
    };
    let now = Instant::now();
    let since = hold.map_or(now, |h| h.0);
    let until = (now + quiet).min(since + HOLD_MAX);
    (until > now).then_some((since, until))
}

/// Puts the switch's events (and any that queued behind them) on the connection.
fn forward_events(
    session: &mut Session,
    first: Result<Arc<crate::switch::Event>, RecvError>,
    events: &mut tokio::sync::broadcast::Receiver<Arc<crate::switch::Event>>,
    out: &mut Vec<u8>,
) -> bool {
    match first {
        Ok(e) => session.event(&e, out),
        Err(RecvError::Lagged(n)) => session.lagged(n),
        Err(RecvError::Closed) => return false,
    }
    for _ in 0..EVENT_BATCH {
        match events.try_recv() {
            Ok(e) => session.event(&e, out),
            Err(TryRecvError::Lagged(n)) => session.lagged(n),
            Err(_) => break,
        }
    }
    true
}

/// The connection's loop; `Ok` for a close asked by this side, `Err(why)` otherwise.
async fn drive(raw: RawSocket, info: &ConnInfo, mut p: ConnParams) -> Result<(), String> {
    let s = raw.register().map_err(|e| e.to_string())?;
    let io = transport::secure(s, &p.target, p.tls.as_ref()).await?;
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut session = Session::new(
        Arc::clone(&p.sw),
        &p.bridge,
        Arc::clone(&p.roles),
        p.settings,
        Arc::clone(&info.counters),
    );
    let mut events = p.sw.subscribe();
    let mut out = Vec::with_capacity(64 << 10);
    session.hello(&mut out);
    send(&mut wr, &mut out).await?;
    let mut buf = vec![0u8; READ_BUF];
    let mut filled = 0;
    let mut last_rx = Instant::now();
    let mut probe_sent: Option<Instant> = None;
    let mut hold: Hold = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250).min(p.probe / 4));
    let mut ticks = 0u64;
    loop {
        let held_until = hold.map_or_else(Instant::now, |h| h.1);
        tokio::select! {
            r = p.stop.changed() => {
                if r.is_err() || *p.stop.borrow() {
                    return Ok(());
                }
            }
            n = rd.read(&mut buf[filled..]) => {
                let n = n.map_err(|e| format!("reading from the controller: {e}"))?;
                if n == 0 {
                    return Err("connection closed by peer".into());
                }
                // A read that filled the buffer leaves more waiting in the socket.
                let more = filled + n == buf.len();
                filled += n;
                last_rx = Instant::now();
                probe_sent = None;
                let used = handle_frames(&mut session, &buf[..filled], &mut out);
                hold = next_hold(&session, hold, more);
                if hold.is_none() || used.is_err() {
                    session.flush(&mut out);
                }
                info.role.store(session.role(), Ordering::Relaxed);
                match used {
                    Ok(used) => {
                        buf.copy_within(used..filled, 0);
                        filled -= used;
                    }
                    Err(why) => {
                        send(&mut wr, &mut out).await?;
                        let _ = wr.shutdown().await;
                        return Err(why);
                    }
                }
                send(&mut wr, &mut out).await?;
            }
            () = tokio::time::sleep_until(held_until.into()), if hold.is_some() => {
                hold = None;
                session.flush(&mut out);
                send(&mut wr, &mut out).await?;
            }
            ev = events.recv() => {
                if !forward_events(&mut session, ev, &mut events, &mut out) {
                    return Ok(());
                }
                send(&mut wr, &mut out).await?;
            }
            _ = tick.tick() => {
                ticks += 1;
                if ticks.is_multiple_of(8) {
                    session.refresh();
                }
                let quiet = last_rx.elapsed();
                match probe_sent {
                    Some(at) if at.elapsed() >= p.probe => {
                        return Err(format!(
                            "inactivity probe timeout: no message for {} ms",
                            quiet.as_millis()
                        ));
                    }
                    None if quiet >= p.probe && session.version().is_some() => {
                        let start = header::begin(&mut out, session.v(), MsgType::ECHO_REQUEST, 0);
                        let _ = header::finish(&mut out, start);
                        probe_sent = Some(Instant::now());
                        send(&mut wr, &mut out).await?;
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Handles every complete message in `buf`; returns the bytes used, or why the
/// connection must close (broken framing, a failed HELLO).
fn handle_frames(session: &mut Session, buf: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
    let mut pos = 0;
    loop {
        match header::frame_len(&buf[pos..]) {
            Ok(Some(len)) => {
                if let Next::Close(why) = session.handle(&buf[pos..pos + len], out) {
                    return Err(why);
                }
                pos += len;
            }
            Ok(None) => return Ok(pos),
            Err(_) => return Err("broken framing: a message length below 8".into()),
        }
    }
}
