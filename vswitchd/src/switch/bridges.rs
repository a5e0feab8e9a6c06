//! Bridge operations: create (with its poll threads and packet-in forwarder), restore from
//! the store, remove, list, and set its poll-thread CPUs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use datapath::pipeline::{Datapath, PmdThread, usable_cpus};
use datapath::types::{PortNo, TableId};
use proto::flow_text;
use proto::v1;

use super::Switch;
use super::events::spawn_packet_in_forwarder;
use super::flows::{prepare_flow, stage_normal_flow};
use super::model::{
    Bridge, IdMap, Overlay, apply_overlay, bridge_mut, default_dpid, port_descs, retire_endpoints,
    write_overlay,
};
use super::ports::restore_port;
use crate::error::ApiError;
use crate::meter_group;
use crate::store::BridgeRecord;

impl Switch {
    pub(super) fn spawn_bridge(&self, rec: v1::Bridge) -> Result<Bridge, ApiError> {
        let (dp, packet_in) = Datapath::new(self.config.datapath.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let cpus = self.pmd_cpus_for(&rec);
        let mut pmds = Vec::new();
        dp.transaction(|t| -> Result<(), ApiError> {
            t.set_pmd_count(cpus.len());
            Ok(())
        })?;
        for (i, cpu) in cpus.iter().enumerate() {
            pmds.push(spawn_pmd(
                &dp,
                &rec.name,
                i,
                *cpu,
                self.config.pmd_max_sleep,
            )?);
        }
        threads.push(spawn_packet_in_forwarder(
            &rec.name,
            packet_in,
            self.events.clone(),
            Arc::clone(&stop),
        )?);
        Ok(Bridge {
            rec,
            dp,
            ports: BTreeMap::new(),
            flows: IdMap::default(),
            meters: BTreeMap::new(),
            groups: BTreeMap::new(),
            stop,
            threads,
            pmds,
            macs_seen: HashSet::new(),
            meter_added: HashMap::new(),
            group_added: HashMap::new(),
        })
    }

    /// The CPUs of a bridge's poll threads, one thread each: its own `pmd_cpus`, else one
    /// thread on the daemon's default CPUs (taken in turn by successive bridges).
    pub(super) fn pmd_cpus_for(&self, rec: &v1::Bridge) -> Vec<Option<usize>> {
        if !rec.pmd_cpus.is_empty() {
            return rec.pmd_cpus.iter().map(|c| Some(*c as usize)).collect();
        }
        let cpu = (!self.config.pmd_cpus.is_empty()).then(|| {
            let n = self.pmd_spawned.fetch_add(1, Ordering::Relaxed) as usize;
            self.config.pmd_cpus[n % self.config.pmd_cpus.len()]
        });
        vec![cpu]
    }

    /// Sets a bridge's poll-thread CPUs (one thread per CPU; empty: the default) and spreads
    /// its rx queues over them. Threads whose CPU is unchanged keep running; the others
    /// start after (growing) or stop after (shrinking) the new assignment is published, so
    /// every rx queue always has a poller.
    pub fn set_pmd_cpus(&self, req: v1::SetPmdCpusRequest) -> Result<v1::Bridge, ApiError> {
        let usable = usable_cpus()
            .map_err(|e| ApiError::internal(format!("reading the CPU affinity: {e}")))?;
        for (i, c) in req.cpus.iter().enumerate() {
            if !usable.contains(&(*c as usize)) {
                return Err(ApiError::invalid(
                    format!("cpus[{i}]"),
                    format!("cpu {c} is not available to the daemon (usable: {usable:?})"),
                ));
            }
            if req.cpus[..i].contains(c) {
                return Err(ApiError::invalid(
                    format!("cpus[{i}]"),
                    format!("cpu {c} is listed twice"),
                ));
            }
        }
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let mut rec = b.rec.clone();
        rec.pmd_cpus = req.cpus.clone();
        let mut tx = self.store_txn()?;
        tx.put_bridge(&rec)?;
        tx.commit()?;
        let cpus = self.pmd_cpus_for(&rec);
        b.rec = rec;
        // Threads whose CPU changes are restarted: stop them first (their queues wait in
        // their rings for a moment), then publish, then start what is missing; threads
        // beyond the new count stop after the publish has moved their queues away.
        let mut slots: Vec<Option<PmdThread>> =
            std::mem::take(&mut b.pmds).into_iter().map(Some).collect();
        for (i, cpu) in cpus.iter().enumerate() {
            if let Some(slot) = slots.get_mut(i)
                && slot.as_ref().is_some_and(|p| p.cpu() != *cpu)
                && let Some(p) = slot.take()
            {
                p.stop(&b.dp);
                self.pmd_baseline.lock().remove(&(req.bridge.clone(), i));
            }
        }
        b.dp.transaction(|t| -> Result<(), ApiError> {
            t.set_pmd_count(cpus.len());
            Ok(())
        })?;
        let mut pmds = Vec::new();
        for (i, cpu) in cpus.iter().enumerate() {
            match slots.get_mut(i).and_then(Option::take) {
                Some(p) => pmds.push(p),
                None => pmds.push(spawn_pmd(
                    &b.dp,
                    &req.bridge,
                    i,
                    *cpu,
                    self.config.pmd_max_sleep,
                )?),
            }
        }
        for (i, p) in slots.into_iter().enumerate() {
            if let Some(p) = p {
                p.stop(&b.dp);
                self.pmd_baseline.lock().remove(&(req.bridge.clone(), i));
            }
        }
        b.pmds = pmds;
        let mut r = b.rec.clone();
        r.ports = port_descs(b);
        Ok(r)
    }

    pub(super) fn restore_bridge(&self, rec: BridgeRecord) -> Result<(), ApiError> {
        let mut b = self.spawn_bridge(rec.bridge.clone())?;
        super::ct_limits::apply(&b.dp, rec.bridge.ct_limits.as_ref(), &[]);
        super::ct_timeouts::apply(&b.dp, rec.bridge.ct_timeouts.as_ref(), &[]);
        let name = rec.bridge.name.clone();
        let cfg = &self.config;
        let now = Instant::now();
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            for p in rec.ports.values() {
                let st = restore_port(&name, p, cfg);
                let (vlan, rate) = st
                    .spec
                    .as_ref()
                    .map(|s| (s.vlan.clone(), s.rate.clone()))
                    .unwrap_or_default();
                txn.add_port(PortNo(p.port_no), Arc::clone(&st.port), vlan)
                    .map_err(|e| ApiError::internal(format!("port {}: {e}", p.name)))?;
                let (policer, qos) = rate.build(txn.now_ns())?;
                txn.set_port_qos(PortNo(p.port_no), policer, qos)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                b.ports.insert(p.name.clone(), st);
            }
            let names = |n: &str| b.ports.get(n).map(|p| p.desc.port_no);
            for m in rec.meters.values() {
                txn.set_meter(meter_group::convert_meter(m, txn.now_ns())?)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            // Groups may chain: insert in id order, checking references only at the end.
            for g in rec.groups.values() {
                txn.set_group(meter_group::convert_group(g, &names)?)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            let mut mods = Vec::with_capacity(rec.flows.len());
            for (_, f) in &rec.flows {
                let (fm, _) = prepare_flow(f, &names, false)?;
                mods.push(fm);
            }
            txn.flow_mods(&mods)
                .map_err(|e| ApiError::internal(format!("stored flow {}: {}", e.index, e.error)))?;
            super::mirrors::restore(txn, &name, &rec.bridge.mirrors, &names);
            Ok(())
        })
        .inspect_err(|_| b.shutdown())?;
        super::capacity::warn_if_over(&name, &b.dp.snapshot(), b.ports.len(), &cfg.capacity);
        for (id, f) in rec.flows {
            b.flows.insert(id, f);
        }
        for (id, m) in rec.meters {
            b.meter_added.insert(id, now);
            b.meters.insert(id, m);
        }
        for (id, g) in rec.groups {
            b.group_added.insert(id, now);
            b.groups.insert(id, g);
        }
        self.bridges.lock().insert(name, b);
        Ok(())
    }

    /// Adds a bridge. As `ovs-vsctl add-br` does, a bridge in standalone mode (the default)
    /// starts as a learning switch: table 0 holds `priority=0,actions=NORMAL`, stored and
    /// shown like any flow, and deletable. A bridge in secure mode starts with no flow.
    pub fn add_bridge(&self, req: v1::AddBridgeRequest) -> Result<v1::Bridge, ApiError> {
        if !flow_text::is_valid_port_name(&req.name) {
            return Err(ApiError::invalid(
                "name",
                format!(
                    "{:?} is not a valid bridge name (1-15 chars: letters, digits, - _ .)",
                    req.name
                ),
            ));
        }
        let mut bridges = self.bridges.lock();
        if bridges.contains_key(&req.name) {
            return Err(ApiError::exists(
                "name",
                format!("bridge {} already exists", req.name),
            ));
        }
        super::capacity::check_bridges(bridges.len(), &self.config.capacity)?;
        if v1::FailMode::try_from(req.fail_mode).is_err() {
            return Err(ApiError::invalid("fail_mode", "unknown fail mode"));
        }
        let rec = v1::Bridge {
            name: req.name.clone(),
            datapath_id: req.datapath_id.unwrap_or_else(|| default_dpid(&req.name)),
            fail_mode: req.fail_mode,
            n_tables: TableId::COUNT as u32,
            ports: Vec::new(),
            pmd_cpus: Vec::new(),
            controllers: Vec::new(),
            controller_status: Vec::new(),
            fail_open: false,
            ct_limits: None,
            ct_timeouts: None,
            mirrors: Vec::new(),
        };
        let standalone = req.fail_mode == v1::FailMode::Standalone as i32;
        let mut b = self.spawn_bridge(rec.clone())?;
        let mut ov = Overlay::default();
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            if standalone {
                stage_normal_flow(txn, &mut ov)?;
            }
            let mut tx = self.store_txn()?;
            tx.put_bridge(&rec)?;
            write_overlay(&mut tx, &rec.name, &ov)?;
            tx.commit()?;
            Ok(())
        })
        .inspect_err(|_| b.shutdown())?;
        apply_overlay(&mut b, ov);
        bridges.insert(req.name, b);
        drop(bridges);
        self.bridges_changed();
        Ok(rec)
    }

    /// Removes a bridge with everything on it.
    pub fn del_bridge(&self, req: v1::DelBridgeRequest) -> Result<(), ApiError> {
        let mut bridges = self.bridges.lock();
        if !bridges.contains_key(&req.name) {
            if req.if_exists {
                return Ok(());
            }
            return Err(ApiError::not_found(
                "name",
                format!("no bridge {}", req.name),
            ));
        }
        let mut tx = self.store_txn()?;
        tx.del_bridge(&req.name)?;
        tx.commit()?;
        let mut events = Vec::new();
        if let Some(mut b) = bridges.remove(&req.name) {
            b.shutdown();
            if retire_endpoints(b.ports.values()) {
                events = self.follow_endpoints(&mut bridges);
            }
        }
        drop(bridges);
        self.report_controllers(&req.name, Vec::new());
        self.bridges_changed();
        for (name, u) in events {
            self.emit(&name, u);
        }
        Ok(())
    }

    /// Every bridge with its ports.
    pub fn list_bridges(&self) -> Vec<v1::Bridge> {
        let mut v: Vec<v1::Bridge> = self
            .bridges
            .lock()
            .values()
            .map(|b| {
                let mut r = b.rec.clone();
                r.ports = port_descs(b);
                r.fail_open = b.dp.snapshot().pipeline.fail_open();
                r
            })
            .collect();
        for r in &mut v {
            self.fill_controller_status(r);
        }
        v
    }

    /// One bridge with its ports.
    pub fn get_bridge(&self, name: &str) -> Result<v1::Bridge, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(name)
            .ok_or_else(|| ApiError::not_found("name", format!("no bridge {name}")))?;
        let mut r = b.rec.clone();
        r.ports = port_descs(b);
        r.fail_open = b.dp.snapshot().pipeline.fail_open();
        drop(bridges);
        self.fill_controller_status(&mut r);
        Ok(r)
    }
}

/// Starts poll thread `index` of a bridge's datapath (see [`PmdThread::spawn`]).
fn spawn_pmd(
    dp: &Datapath,
    bridge: &str,
    index: usize,
    cpu: Option<usize>,
    max_sleep: std::time::Duration,
) -> Result<PmdThread, ApiError> {
    PmdThread::spawn(dp, bridge, index, cpu, max_sleep)
        .map_err(|e| ApiError::internal(format!("spawning poll thread: {e}")))
}
