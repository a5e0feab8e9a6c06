//! The OpenFlow 1.3 channel: a second door to the same flow tables as the gRPC API.
//!
//! What: [`serve`] watches every bridge's configured controllers
//! ([`Switch::controller_config`]) and keeps one task per target: passive targets
//! (`ptcp:`, `pssl:`, `punix:`) listen, active ones (`tcp:`, `ssl:`, `unix:`) connect and
//! reconnect with back-off. Each connection runs on a thread of its own
//! ([`conn`]) around a [`Session`], the protocol state machine, which drives the switch
//! through the methods the gRPC service uses: flows written over OpenFlow are the same
//! flows, stored, listed by every interface, counted and expired alike.
//!
//! Promises (docs/control-plane.md): a BARRIER reply means the datapath has applied
//! everything before it; what OpenFlow wrote is on disk within the switch's group-commit
//! window; a bundle commit is on disk before its reply, and all or nothing.
//!
//! Layers (a module imports only from the ones above it):
//! - `transport`, `limiter`, `roles`, `errors`: sockets and TLS, the packet-in rate
//!   limit, controller roles, the error table. Nothing else from here.
//! - `session`: the protocol state; `writes`, `stats`, `bundles`, `events`: `impl Session`,
//!   one concern each.
//! - `conn`: a connection's thread and loop; `targets`: one target's listener or
//!   connector and its state; this file: the targets of every bridge.
//!
//! Thread-safety: [`serve`] runs on the daemon's runtime; connections on their own threads.

mod bundles;
mod conn;
mod errors;
mod events;
mod limiter;
mod roles;
mod session;
mod stats;
mod targets;
mod transport;
mod writes;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proto::v1;
use tokio::sync::{Notify, watch};

pub use self::roles::Roles;
pub use self::session::{ConnCounters, Next, Session, Settings};
use self::targets::{TargetParams, TargetState};
pub use self::transport::bind_owner_only;
use crate::server::TlsFiles;
use crate::switch::{ControllerSpec, Switch, TargetStatus};

/// A running target.
struct Running {
    spec: ControllerSpec,
    stop: watch::Sender<bool>,
    state: Arc<TargetState>,
    task: tokio::task::JoinHandle<()>,
}

/// Serves every bridge's controllers until `stop` turns true.
pub async fn serve(sw: Arc<Switch>, tls: Option<TlsFiles>, mut stop: watch::Receiver<bool>) {
    let mut cfg = sw.controller_config();
    let changed = Arc::new(Notify::new());
    let mut running: HashMap<(String, String), Running> = HashMap::new();
    let mut roles: HashMap<String, Arc<Roles>> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let bridges = sw.list_bridges();
        reconcile(&sw, &tls, &bridges, &mut running, &mut roles, &changed);
        report(&sw, &bridges, &running);
        fail_open(&sw, &bridges, &running);
        tokio::select! {
            r = cfg.changed() => {
                if r.is_err() {
                    break;
                }
            }
            _ = changed.notified() => {}
            _ = tick.tick() => {}
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    for r in running.values() {
        let _ = r.stop.send(true);
    }
    for (_, r) in running {
        let _ = tokio::time::timeout(Duration::from_secs(1), r.task).await;
    }
}

/// Starts what is configured and not running, stops what runs and is not configured (or
/// is configured differently).
fn reconcile(
    sw: &Arc<Switch>,
    tls: &Option<TlsFiles>,
    bridges: &[v1::Bridge],
    running: &mut HashMap<(String, String), Running>,
    roles: &mut HashMap<String, Arc<Roles>>,
    changed: &Arc<Notify>,
) {
    let mut wanted = HashMap::new();
    for b in bridges {
        for (i, c) in b.controllers.iter().enumerate() {
            match ControllerSpec::parse(c, i) {
                Ok(spec) => {
                    wanted.insert((b.name.clone(), c.target.clone()), spec);
                }
                Err(e) => tracing::warn!(bridge = %b.name, "stored controller refused: {e}"),
            }
        }
    }
    running.retain(|k, r| {
        let keep = wanted.get(k).is_some_and(|s| *s == r.spec);
        if !keep {
            let _ = r.stop.send(true);
        }
        keep
    });
    roles.retain(|b, _| bridges.iter().any(|x| x.name == *b));
    for (key, spec) in wanted {
        if running.contains_key(&key) {
            continue;
        }
        let (bridge, text) = &key;
        let r = Arc::clone(roles.entry(bridge.clone()).or_default());
        let state = Arc::new(TargetState::new(bridge, text, Arc::clone(changed)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let params = TargetParams {
            sw: Arc::clone(sw),
            spec: spec.clone(),
            roles: r,
            tls: tls.clone(),
            state: Arc::clone(&state),
            stop: stop_rx,
        };
        let task = tokio::spawn(targets::run(params));
        running.insert(
            key,
            Running {
                spec,
                stop: stop_tx,
                state,
                task,
            },
        );
    }
}

/// Tells the switch where every bridge's target states are (for `GetBridge`).
fn report(sw: &Switch, bridges: &[v1::Bridge], running: &HashMap<(String, String), Running>) {
    for b in bridges {
        let status: Vec<Arc<dyn TargetStatus>> = b
            .controllers
            .iter()
            .filter_map(|c| running.get(&(b.name.clone(), c.target.clone())))
            .map(|r| Arc::clone(&r.state) as Arc<dyn TargetStatus>)
            .collect();
        sw.report_controllers(&b.name, status);
    }
}

/// Open vSwitch's fail-open rule for a standalone bridge: once every active target has been
/// without a connection for three of the longest inactivity probes (15 s by default), every
/// packet goes to NORMAL until one reconnects. Passive targets (ovs-ofctl) do not count; a
/// secure bridge never fails open.
fn fail_open(sw: &Switch, bridges: &[v1::Bridge], running: &HashMap<(String, String), Running>) {
    for b in bridges {
        let active: Vec<&Running> = b
            .controllers
            .iter()
            .filter_map(|c| running.get(&(b.name.clone(), c.target.clone())))
            .filter(|r| r.spec.target.is_active())
            .collect();
        let trigger = active
            .iter()
            .map(|r| r.spec.inactivity_probe * 3)
            .max()
            .unwrap_or_default();
        let down = active.iter().map(|r| r.state.down_for()).min().flatten();
        let want = b.fail_mode == v1::FailMode::Standalone as i32
            && !active.is_empty()
            && down.is_some_and(|d| d >= trigger);
        match sw.set_fail_open(&b.name, want) {
            Ok(true) if want => tracing::warn!(
                bridge = %b.name,
                "no controller for {} s: failing open, every packet to NORMAL",
                trigger.as_secs()
            ),
            Ok(true) => {
                tracing::info!(bridge = %b.name, "a controller is back: no longer failing open")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(bridge = %b.name, "fail-open: {e}"),
        }
    }
}
