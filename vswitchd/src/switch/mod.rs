//! The switch: bridges, their datapaths and poll threads, and every control operation the
//! API offers, made durable in the [`Store`] before it becomes visible.
//!
//! What: [`Switch`] holds one [`Bridge`] per bridge name. A bridge owns a
//! [`Datapath`], its ports, one poll thread, a packet-in forwarder, and the canonical API
//! message of every flow, meter and group it holds (what reads return, what the store keeps).
//!
//! How a change is made (`write`, `add_port`, ...): under the switch lock, the change is
//! staged on a draft datapath snapshot ([`Datapath::transaction`]), every resulting flow,
//! meter, group or port record is written in one store transaction, the store commits
//! (fsync), and only then is the draft published to the poll threads and the reply sent. A
//! refused or failed change leaves the datapath, the store and the daemon's maps untouched.
//!
//! Events (packet-in, flow-removed, port-status, MAC learned/aged) go to every stream
//! subscriber through one broadcast channel; a slow subscriber loses events (counted by the
//! channel) instead of slowing the switch.
//!
//! Thread-safety: `Switch` is `Send + Sync`; control operations serialise on one mutex that
//! poll threads never touch.
//!
//! Layers (a module imports only from the ones above it in this list):
//! - `config`, `spec`, `target`, `events`: the daemon's settings, port options, controller
//!   targets, event messages. They import nothing else from the switch. (The poll threads
//!   are the datapath's [`datapath::pipeline::PmdThread`].)
//! - `capacity`: the limits of `config` checked on a draft snapshot.
//! - `model`: a bridge, its ports, and the staged changes of one transaction.
//! - `ports`, `flows`: free functions over a bridge and a draft datapath; `deferred`: store
//!   writes made durable later.
//! - this file: the [`Switch`] itself.
//! - `lifecycle`, `bridges`, `port_ops`, `links`, `write`, `read`, `stream`, `capture`,
//!   `stats`, `counters`, `housekeeping`, `controllers`, `mirrors`: `impl Switch`, one
//!   concern each.

mod bridges;
mod capacity;
mod capture;
mod config;
mod conntrack;
mod controllers;
mod counters;
mod ct_limits;
mod ct_timeouts;
mod deferred;
mod events;
mod flows;
mod housekeeping;
mod lifecycle;
mod links;
mod mirrors;
mod model;
mod port_ops;
mod ports;
mod read;
mod spec;
mod stats;
mod stream;
mod target;
mod trace;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use datapath::pipeline::Datapath;
use datapath::port::MemPort;
use datapath::stats::PmdCounts;
use parking_lot::Mutex;
use tokio::sync::broadcast;

pub use self::config::{Capacity, DpdkSettings, SwitchConfig};
pub use self::controllers::TargetStatus;
pub use self::counters::TunnelDrops;
pub use self::deferred::Durability;
pub use self::events::Event;
use self::model::Bridge;
pub use self::read::{CHUNK_BYTES, CHUNK_ENTITIES, MAX_READ_FILTERS, Reader};
pub use self::spec::{PORT_TYPES, PortKind, PortSpec};
pub use self::target::{ControllerSpec, DEFAULT_PORT, Target};
use crate::store::Store;

/// The switch.
#[derive(Debug)]
pub struct Switch {
    store: Store,
    config: SwitchConfig,
    bridges: Mutex<BTreeMap<String, Bridge>>,
    events: broadcast::Sender<Arc<Event>>,
    pmd_baseline: Mutex<HashMap<(String, usize), PmdCounts>>,
    stop: Arc<AtomicBool>,
    housekeeper: Mutex<Option<JoinHandle<()>>>,
    ticks: std::sync::atomic::AtomicU64,
    pmd_spawned: std::sync::atomic::AtomicU64,
    /// Bumped when controllers, fail modes or bridges change.
    controllers_changed: tokio::sync::watch::Sender<u64>,
    /// The state of each bridge's controller targets, as the OpenFlow channel reports it.
    controller_status: Mutex<HashMap<String, Vec<Arc<dyn controllers::TargetStatus>>>>,
    /// Store writes not yet durable (OpenFlow's), and the thread that writes them.
    deferred: deferred::Deferred,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl Switch {
    /// A store transaction, after the queued deferred writes are on disk (so the store
    /// takes changes in the order the switch applied them). Callers hold the bridge lock.
    fn store_txn(&self) -> Result<crate::store::StoreTxn, crate::store::StoreError> {
        self.deferred.write(&self.store)?;
        self.store.begin()
    }

    /// The store's file.
    pub fn store_path(&self) -> std::path::PathBuf {
        self.store.path().to_path_buf()
    }

    /// The in-memory port `port` of `bridge` (tests and examples inject and collect frames
    /// through it).
    pub fn memory_port(&self, bridge: &str, port: &str) -> Option<Arc<MemPort>> {
        self.bridges
            .lock()
            .get(bridge)?
            .ports
            .get(port)?
            .mem
            .clone()
    }

    /// The datapath of `bridge` (tests inspect counters through it).
    pub fn datapath(&self, bridge: &str) -> Option<Datapath> {
        self.bridges.lock().get(bridge).map(|b| b.dp.clone())
    }
}
