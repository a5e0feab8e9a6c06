//! Starting and stopping the switch: rebuilding every bridge from the store (or writing the
//! default configuration into a new one), the housekeeping thread, and shutdown.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use proto::v1;
use tokio::sync::broadcast;

use super::Switch;
use super::config::SwitchConfig;
use crate::error::ApiError;
use crate::store::Store;

impl Switch {
    /// Opens the switch on `store`: rebuilds every stored bridge, or writes the default
    /// configuration (bridge `br0`, a learning switch: table 0 holds
    /// `priority=0,actions=NORMAL`) into a new store.
    pub fn start(store: Store, config: SwitchConfig) -> Result<Arc<Switch>, ApiError> {
        let (events, _) = broadcast::channel(4096);
        let created = store.created();
        let records = store.load()?;
        let sw = Arc::new(Switch {
            store,
            config,
            bridges: Mutex::new(BTreeMap::new()),
            events,
            pmd_baseline: Mutex::new(HashMap::new()),
            stop: Arc::new(AtomicBool::new(false)),
            housekeeper: Mutex::new(None),
            ticks: std::sync::atomic::AtomicU64::new(0),
            pmd_spawned: std::sync::atomic::AtomicU64::new(0),
            controllers_changed: tokio::sync::watch::channel(0).0,
            controller_status: Mutex::new(HashMap::new()),
            deferred: super::deferred::Deferred::default(),
            flusher: Mutex::new(None),
        });
        for (name, rec) in records {
            sw.restore_bridge(rec).map_err(|e| {
                ApiError::internal(format!("restoring bridge {name} from the store: {e}"))
            })?;
        }
        if created {
            sw.add_bridge(v1::AddBridgeRequest {
                name: "br0".into(),
                ..Default::default()
            })?;
        }
        let weak = Arc::downgrade(&sw);
        let stop = Arc::clone(&sw.stop);
        let period = sw.config.housekeeping_period;
        let h = std::thread::Builder::new()
            .name("housekeeping".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(period);
                    match weak.upgrade() {
                        Some(sw) => sw.housekeeping(),
                        None => return,
                    }
                }
            })
            .map_err(|e| ApiError::internal(format!("spawning housekeeping thread: {e}")))?;
        *sw.housekeeper.lock() = Some(h);
        *sw.flusher.lock() = Some(sw.spawn_flusher()?);
        Ok(sw)
    }

    /// Starts the thread that writes the deferred store records (see `switch/deferred.rs`):
    /// `group_commit` after the first one queued, all of them in one transaction, holding
    /// the bridge lock so that no other store write comes between.
    fn spawn_flusher(self: &Arc<Self>) -> Result<std::thread::JoinHandle<()>, ApiError> {
        let weak = Arc::downgrade(self);
        let stop = Arc::clone(&self.stop);
        let window = self.config.group_commit;
        std::thread::Builder::new()
            .name("store-flush".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let Some(sw) = weak.upgrade() else { return };
                    if let Some(since) = sw.deferred.wait(std::time::Duration::from_millis(100)) {
                        let due = since + window;
                        let now = std::time::Instant::now();
                        if due > now && !stop.load(Ordering::Acquire) {
                            std::thread::sleep(due - now);
                        }
                        let order = sw.bridges.lock();
                        let r = sw.deferred.write(&sw.store);
                        drop(order);
                        if let Err(e) = r {
                            tracing::error!("group commit of the store failed (retrying): {e}");
                            // The records stay queued; try again a window later.
                            std::thread::sleep(window);
                        }
                    }
                }
            })
            .map_err(|e| ApiError::internal(format!("spawning the store flusher: {e}")))
    }

    /// Stops every thread (poll threads, housekeeping, the store flusher). The store stays
    /// consistent: every change acknowledged as durable is already on disk, and the
    /// deferred ones (OpenFlow flow changes) are made durable here.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.housekeeper.lock().take() {
            h.thread().unpark();
            let _ = h.join();
        }
        self.deferred.wake();
        if let Some(h) = self.flusher.lock().take() {
            let _ = h.join();
        }
        let order = self.bridges.lock();
        let r = self.deferred.write(&self.store);
        drop(order);
        if let Err(e) = r {
            tracing::error!("making the last OpenFlow changes durable failed: {e}");
        }
        for b in self.bridges.lock().values_mut() {
            b.shutdown();
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.shutdown();
    }
}
