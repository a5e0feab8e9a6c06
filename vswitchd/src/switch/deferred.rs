//! Store writes made durable later: OpenFlow's flow, group and meter changes, whose
//! barriers promise the datapath, not the disk. Each such change is applied to the
//! datapath at once and its records queued here in order; the store-flush thread writes
//! the queue in one transaction (fsync) within `SwitchConfig::group_commit` of the first
//! record, and any change that is durable at once writes the queue first, so the store
//! always sees changes in the order the switch applied them. A crash loses at most the
//! queue, never half a change.
//!
//! Thread-safety: the queue has its own lock; it is written to the store only by a holder
//! of the switch's bridge lock (every other store writer holds it too), which keeps the
//! store's order the switch's.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use proto::v1;

use super::model::Overlay;
use crate::store::{StoreError, StoreTxn};

/// When a change must be on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before the change is acknowledged (fsync).
    Immediate,
    /// Within the switch's group-commit window (see the module documentation).
    Deferred,
}

/// The store records of one applied change.
#[derive(Debug)]
pub(super) struct StoreDelta {
    bridge: String,
    flows: Vec<(Vec<u8>, Option<v1::Flow>)>,
    meters: Vec<(u32, Option<v1::Meter>)>,
    groups: Vec<(u32, Option<v1::Group>)>,
}

impl StoreDelta {
    /// What `ov` writes to the store (ports never change through a deferred write).
    pub(super) fn of(bridge: &str, ov: &Overlay) -> StoreDelta {
        StoreDelta {
            bridge: bridge.to_string(),
            flows: ov
                .flows
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            meters: ov.meters.iter().map(|(k, v)| (*k, v.clone())).collect(),
            groups: ov.groups.iter().map(|(k, v)| (*k, v.clone())).collect(),
        }
    }

    fn write(&self, tx: &mut StoreTxn) -> Result<(), StoreError> {
        let b = self.bridge.as_str();
        tx.put_flows(
            b,
            self.flows.iter().map(|(k, v)| (k.as_slice(), v.as_ref())),
        )?;
        for (id, m) in &self.meters {
            match m {
                Some(m) => tx.put_meter(b, m)?,
                None => tx.del_meter(b, *id)?,
            }
        }
        for (id, g) in &self.groups {
            match g {
                Some(g) => tx.put_group(b, g)?,
                None => tx.del_group(b, *id)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Queue {
    deltas: Vec<StoreDelta>,
    since: Option<Instant>,
}

/// The queue of store writes not yet durable.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Deferred {
    /// Queues the records of an applied change.
    pub(super) fn push(&self, d: StoreDelta) {
        let mut q = self.queue.lock();
        q.deltas.push(d);
        if q.since.is_none() {
            q.since = Some(Instant::now());
            self.wake.notify_all();
        }
    }

    /// Writes every queued record in one transaction; true if there were any. On failure
    /// they stay queued, ahead of any queued since.
    pub(super) fn write(&self, store: &crate::store::Store) -> Result<bool, StoreError> {
        let (deltas, since) = {
            let mut q = self.queue.lock();
            (std::mem::take(&mut q.deltas), q.since.take())
        };
        if deltas.is_empty() {
            return Ok(false);
        }
        let r = store.begin().and_then(|mut tx| {
            deltas.iter().try_for_each(|d| d.write(&mut tx))?;
            tx.commit()
        });
        if let Err(e) = r {
            let mut q = self.queue.lock();
            let later = std::mem::replace(&mut q.deltas, deltas);
            q.deltas.extend(later);
            q.since = since.or(q.since);
            return Err(e);
        }
        Ok(true)
    }

    /// Waits up to `timeout` for a queued record; since when the oldest has waited.
    pub(super) fn wait(&self, timeout: Duration) -> Option<Instant> {
        let mut q = self.queue.lock();
        if q.since.is_none() {
            self.wake.wait_for(&mut q, timeout);
        }
        q.since
    }

    /// Wakes a thread in [`Deferred::wait`] (at shutdown).
    pub(super) fn wake(&self) {
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::Durability;
    use crate::store::Store;
    use crate::switch::{Switch, SwitchConfig};
    use proto::v1;

    fn insert(bridge: &str, text: &str) -> v1::WriteRequest {
        v1::WriteRequest {
            bridge: bridge.into(),
            updates: vec![v1::Update {
                r#type: v1::update::Type::Insert as i32,
                entity: Some(v1::Entity {
                    entity: Some(v1::entity::Entity::Flow(
                        proto::flow_text::parse_flow(text).unwrap(),
                    )),
                }),
            }],
            atomicity: v1::Atomicity::AllOrNone as i32,
        }
    }

    fn bridge(name: &str) -> v1::AddBridgeRequest {
        v1::AddBridgeRequest {
            name: name.into(),
            fail_mode: v1::FailMode::Secure as i32,
            ..Default::default()
        }
    }

    /// Deferred writes reach the store before any later immediate one (a bridge deleted
    /// after them leaves none of its flows behind) and at shutdown.
    #[test]
    fn deferred_writes_reach_the_store_in_order() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("conf.db");
        let sw = Switch::start(Store::open(&path).unwrap(), SwitchConfig::default()).unwrap();
        sw.add_bridge(bridge("a")).unwrap();
        sw.add_bridge(bridge("b")).unwrap();
        for p in 1..=3 {
            let f = format!("priority={p},actions=drop");
            sw.write_with(insert("a", &f), Durability::Deferred)
                .unwrap();
            sw.write_with(insert("b", &f), Durability::Deferred)
                .unwrap();
        }
        sw.del_bridge(v1::DelBridgeRequest {
            name: "a".into(),
            if_exists: false,
        })
        .unwrap();
        sw.write_with(insert("b", "priority=9,actions=drop"), Durability::Deferred)
            .unwrap();
        sw.shutdown();
        drop(sw);
        let loaded = Store::open(&path).unwrap().load().unwrap();
        assert!(
            !loaded.contains_key("a"),
            "flows of a deleted bridge came back"
        );
        assert_eq!(loaded["b"].flows.len(), 4);
    }
}
