//! One configured controller target: a listener accepting connections (passive targets)
//! or a connector reconnecting with back-off (active targets), and the target's state for
//! `GetBridge` and connect/disconnect events.
//!
//! Back-off of an active target: 1 s after a failed attempt, doubling up to `max_backoff`;
//! a connection that lived longer than the back-off resets it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use proto::openflow::switch::role;
use proto::v1;
use tokio::sync::{Notify, watch};

use super::conn::{self, ConnInfo, ConnParams};
use super::roles::Roles;
use super::session::{ConnCounters, Settings};
use super::transport::{self, Listener, RawSocket};
use crate::server::TlsFiles;
use crate::switch::{ControllerSpec, Switch};

/// The live state of one target.
#[derive(Debug)]
pub struct TargetState {
    /// The bridge.
    pub bridge: String,
    /// The target as configured.
    pub text: String,
    inner: Mutex<Inner>,
    /// Packet-ins of connections that ended.
    retired_sent: AtomicU64,
    retired_dropped: AtomicU64,
    /// Woken when a connection comes or goes (the manager reports at once).
    pub changed: Arc<Notify>,
}

#[derive(Debug)]
struct Inner {
    conns: BTreeMap<u64, Arc<ConnInfo>>,
    next: u64,
    last_error: String,
    since: Instant,
    /// Since when an active target has had no connection (None while connected).
    down_since: Option<Instant>,
}

impl TargetState {
    /// A target with no connection yet.
    pub fn new(bridge: &str, text: &str, changed: Arc<Notify>) -> TargetState {
        TargetState {
            bridge: bridge.to_string(),
            text: text.to_string(),
            inner: Mutex::new(Inner {
                conns: BTreeMap::new(),
                next: 0,
                last_error: String::new(),
                since: Instant::now(),
                down_since: Some(Instant::now()),
            }),
            retired_sent: AtomicU64::new(0),
            retired_dropped: AtomicU64::new(0),
            changed,
        }
    }

    fn add(&self, info: Arc<ConnInfo>) -> u64 {
        let mut i = self.inner.lock();
        i.next += 1;
        let id = i.next;
        i.conns.insert(id, info);
        i.since = Instant::now();
        i.down_since = None;
        drop(i);
        self.changed.notify_one();
        id
    }

    fn remove(&self, id: u64, error: &str) {
        let mut i = self.inner.lock();
        if let Some(c) = i.conns.remove(&id) {
            self.retired_sent.fetch_add(
                c.counters.packet_in_sent.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            self.retired_dropped.fetch_add(
                c.counters.packet_in_dropped.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
        if !error.is_empty() {
            i.last_error = error.to_string();
        }
        i.since = Instant::now();
        if i.conns.is_empty() {
            i.down_since.get_or_insert_with(Instant::now);
        }
        drop(i);
        self.changed.notify_one();
    }

    /// How long the target has been without a connection (`None`: connected).
    pub fn down_for(&self) -> Option<Duration> {
        self.inner.lock().down_since.map(|t| t.elapsed())
    }

    fn failed(&self, error: String) {
        let mut i = self.inner.lock();
        i.last_error = error;
        drop(i);
        self.changed.notify_one();
    }
}

impl crate::switch::TargetStatus for TargetState {
    fn target(&self) -> &str {
        &self.text
    }

    /// The status `GetBridge` shows.
    fn status(&self) -> v1::ControllerStatus {
        let i = self.inner.lock();
        let first = i.conns.values().next();
        let (mut sent, mut dropped) = (
            self.retired_sent.load(Ordering::Relaxed),
            self.retired_dropped.load(Ordering::Relaxed),
        );
        for c in i.conns.values() {
            sent += c.counters.packet_in_sent.load(Ordering::Relaxed);
            dropped += c.counters.packet_in_dropped.load(Ordering::Relaxed);
        }
        let role = match first.map(|c| c.role.load(Ordering::Relaxed)) {
            Some(role::MASTER) => v1::Role::Primary,
            Some(role::SLAVE) => v1::Role::Secondary,
            _ => v1::Role::Equal,
        };
        v1::ControllerStatus {
            target: self.text.clone(),
            is_connected: !i.conns.is_empty(),
            role: role as i32,
            last_error: i.last_error.clone(),
            connections: i.conns.len() as u32,
            sec_since_change: i.since.elapsed().as_secs(),
            packet_in_sent: sent,
            packet_in_dropped: dropped,
            remote: first.map(|c| c.remote.clone()).unwrap_or_default(),
        }
    }
}

/// What a target task is given.
#[derive(Debug, Clone)]
pub struct TargetParams {
    /// The switch.
    pub sw: Arc<Switch>,
    /// The target and its settings.
    pub spec: ControllerSpec,
    /// The bridge's roles.
    pub roles: Arc<Roles>,
    /// TLS files.
    pub tls: Option<TlsFiles>,
    /// Its state.
    pub state: Arc<TargetState>,
    /// Turns true when the target is removed or the daemon stops.
    pub stop: watch::Receiver<bool>,
}

impl TargetParams {
    fn conn_params(&self) -> ConnParams {
        ConnParams {
            sw: Arc::clone(&self.sw),
            bridge: self.state.bridge.clone(),
            roles: Arc::clone(&self.roles),
            target: self.spec.target.clone(),
            tls: self.tls.clone(),
            settings: Settings {
                rate: self.spec.rate_limit,
                burst: self.spec.burst_limit,
                service: !self.spec.target.is_active(),
            },
            probe: self.spec.inactivity_probe,
            stop: self.stop.clone(),
        }
    }

    fn event(&self, remote: &str, connected: bool, error: &str) {
        self.sw.controller_event(v1::ControllerConnection {
            bridge: self.state.bridge.clone(),
            target: self.state.text.clone(),
            remote: remote.to_string(),
            connected,
            error: error.to_string(),
        });
    }

    /// Starts a connection's thread; returns a receiver of why it ended.
    fn start(&self, raw: RawSocket, remote: String) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let info = Arc::new(ConnInfo {
            remote: remote.clone(),
            role: AtomicU32::new(role::EQUAL),
            counters: Arc::new(ConnCounters::default()),
        });
        let id = self.state.add(Arc::clone(&info));
        self.event(&remote, true, "");
        tracing::info!(bridge = %self.state.bridge, target = %self.state.text, %remote, "controller connected");
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let me = self.clone();
        let params = self.conn_params();
        let handle = match conn::spawn(raw, info, params) {
            Ok(h) => h,
            Err(e) => {
                let why = format!("starting the connection thread: {e}");
                self.state.remove(id, &why);
                self.event(&remote, false, &why);
                return None;
            }
        };
        std::thread::spawn(move || {
            let why = handle
                .join()
                .unwrap_or_else(|_| "the connection thread panicked".into());
            me.state.remove(id, &why);
            me.event(&remote, false, &why);
            tracing::info!(bridge = %me.state.bridge, target = %me.state.text, %remote, "controller disconnected: {}", if why.is_empty() { "closed" } else { &why });
            let _ = done_tx.send(());
        });
        Some(done_rx)
    }
}

/// Serves a target until it is stopped.
pub async fn run(mut p: TargetParams) {
    if p.spec.target.is_active() {
        active(&mut p).await;
    } else {
        passive(&mut p).await;
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

async fn passive(p: &mut TargetParams) {
    let listener = loop {
        match Listener::bind(&p.spec.target).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::warn!(bridge = %p.state.bridge, target = %p.state.text, "{e}");
                p.state.failed(e);
                tokio::select! {
                    _ = stopped(&mut p.stop) => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    };
    if let Some(a) = listener.local_addr() {
        tracing::info!(bridge = %p.state.bridge, target = %p.state.text, "listening for controllers on {a}");
    }
    let mut stop = p.stop.clone();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => return,
            r = listener.accept() => match r {
                Ok((raw, remote)) => {
                    let _ = p.start(raw, remote);
                }
                Err(e) => {
                    p.state.failed(format!("accepting: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn active(p: &mut TargetParams) {
    let mut backoff = Duration::from_secs(1);
    let mut stop = p.stop.clone();
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), transport::connect(&p.spec.target));
        let began = Instant::now();
        let r = tokio::select! {
            _ = stopped(&mut stop) => return,
            r = attempt => r.unwrap_or_else(|_| Err("connecting: timed out".into())),
        };
        match r {
            Ok((raw, remote)) => {
                if let Some(done) = p.start(raw, remote) {
                    tokio::select! {
                        _ = stopped(&mut stop) => return,
                        _ = done => {}
                    }
                }
                if began.elapsed() > backoff {
                    backoff = Duration::from_secs(1);
                }
            }
            Err(e) => {
                tracing::debug!(bridge = %p.state.bridge, target = %p.state.text, "{e}");
                p.state.failed(e);
            }
        }
        tokio::select! {
            _ = stopped(&mut stop) => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(p.spec.max_backoff);
    }
}
