//! The Write call: a batch of updates on one draft, flow inserts gathered into bundles,
//! committed to the store and published together.

use std::collections::HashMap;

use datapath::classifier::{BundleError, FlowMod, Selector};
use datapath::pipeline::Txn;
use datapath::types::{GroupId, MeterId, PortNo};
use proto::flow_text;
use proto::v1::{self, entity, stream_message_response as smr, update};

use super::Switch;
use super::capacity;
use super::config::{Capacity, SwitchConfig};
use super::deferred::{Durability, StoreDelta};
use super::flows::{
    Modification, Run, absorb_removals_as, check_refs, delete_flows, flow_mod_error, modify_flows,
    prepare_flow, resolve_action_names, selector, strict_delete,
};
use super::model::{Bridge, Overlay, apply_overlay, bridge_mut, write_overlay, write_overlay_of};
use super::ports::stage_add_port;
use crate::convert::PortNames;
use crate::error::ApiError;
use crate::meter_group;

impl Switch {
    /// Applies a batch of updates. `ATOMICITY_ALL_OR_NONE`: the first refused update fails
    /// the whole request (error naming `updates[i]`) and nothing changes. Otherwise each
    /// refused update gets a status and the rest are applied. Either way the accepted
    /// changes become durable, then visible, together.
    pub fn write(&self, req: v1::WriteRequest) -> Result<v1::WriteResponse, ApiError> {
        self.write_with(req, Durability::Immediate)
    }

    /// [`Switch::write`] with a choice of durability: `Deferred` applies the change (the
    /// datapath has it when this returns) and makes it durable by the next group commit,
    /// within the switch's `group_commit` window (OpenFlow flow changes, whose barriers
    /// promise the datapath, not the disk).
    pub fn write_with(
        &self,
        req: v1::WriteRequest,
        durability: Durability,
    ) -> Result<v1::WriteResponse, ApiError> {
        let mut statuses = Statuses {
            atomic: req.atomicity == v1::Atomicity::AllOrNone as i32,
            list: Vec::new(),
        };
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let mut ov = Overlay::default();
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            stage_updates(&req.updates, b, txn, &mut ov, &self.config, &mut statuses)?;
            if ov.is_empty() {
                return Ok(());
            }
            match durability {
                // A port removal that changes the mirrors rewrites the bridge: at once.
                _ if ov.mirrors.is_some() => {
                    let mut tx = self.store_txn()?;
                    write_overlay_of(&mut tx, b, &ov)?;
                    tx.commit()?;
                }
                Durability::Immediate => {
                    let mut tx = self.store_txn()?;
                    write_overlay(&mut tx, &req.bridge, &ov)?;
                    tx.commit()?;
                }
                Durability::Deferred => self.deferred.push(StoreDelta::of(&req.bridge, &ov)),
            }
            Ok(())
        })?;
        let events = std::mem::take(&mut ov.events);
        apply_overlay(b, ov);
        drop(bridges);
        for e in events {
            if let Some(u) = e.update {
                self.emit(&req.bridge, u);
            }
        }
        Ok(v1::WriteResponse {
            statuses: statuses.list,
        })
    }
}

/// The statuses of refused updates, and whether a refusal ends the request.
struct Statuses {
    atomic: bool,
    list: Vec<v1::UpdateStatus>,
}

impl Statuses {
    /// Records that update `i` was refused; an error when that refuses the whole request.
    fn fail(&mut self, i: usize, e: ApiError) -> Result<(), ApiError> {
        let e = e.under(&format!("updates[{i}]"));
        self.list.push(v1::UpdateStatus {
            index: i as u32,
            code: e.code as i32,
            message: e.message.clone(),
            field: e.field.clone(),
        });
        if self.atomic { Err(e) } else { Ok(()) }
    }
}

/// Stages every update on the draft, in order: runs of flow inserts as one bundle each,
/// anything else on its own.
fn stage_updates(
    updates: &[v1::Update],
    b: &Bridge,
    txn: &mut Txn<'_>,
    ov: &mut Overlay,
    scfg: &SwitchConfig,
    statuses: &mut Statuses,
) -> Result<(), ApiError> {
    let mut i = 0;
    while i < updates.len() {
        let mut run = Run::default();
        while i < updates.len() {
            match prepare_update(&updates[i], b, txn, ov) {
                Ok(Prepared::Insert(x)) => {
                    let (fm, f) = *x;
                    run.push(i, fm, f);
                }
                Ok(Prepared::Other) if run.mods.is_empty() => {
                    if let Err(e) = apply_update(&updates[i], b, txn, ov, scfg) {
                        statuses.fail(i, e)?;
                    }
                    i += 1;
                    break;
                }
                Ok(Prepared::Other) => break,
                Err(e) => {
                    if run.mods.is_empty() {
                        statuses.fail(i, e)?;
                        i += 1;
                    }
                    break;
                }
            }
            i += 1;
        }
        apply_run(&mut run, txn, ov, statuses, &scfg.capacity)?;
    }
    Ok(())
}

/// Applies a run of flow inserts as one bundle; an insert that the bridge has no room for
/// ([`Capacity`]) or that the bundle refuses gets its status, and the bundle is applied
/// without it (those before it first), in index order.
fn apply_run(
    run: &mut Run,
    txn: &mut Txn<'_>,
    ov: &mut Overlay,
    statuses: &mut Statuses,
    cap: &Capacity,
) -> Result<(), ApiError> {
    let mut start = 0;
    'plan: while start < run.mods.len() {
        let full = capacity::over_flow_limits(
            &txn.snapshot().pipeline,
            &run.mods[start..],
            &run.ids[start..],
            cap,
        );
        let mut from = start;
        let ends = full
            .into_iter()
            .map(|(k, e)| (start + k, Some(e)))
            .chain(std::iter::once((run.mods.len(), None)));
        for (end, refusal) in ends {
            if from < end {
                match txn.flow_mods(&run.mods[from..end]) {
                    Ok(cs) => run.absorb(ov, &cs, from),
                    Err(BundleError { index, error }) => {
                        statuses.fail(run.index[from + index], flow_mod_error(error))?;
                        if index > 0 {
                            let cs = txn
                                .flow_mods(&run.mods[from..from + index])
                                .map_err(|e| ApiError::internal(e.to_string()))?;
                            run.absorb(ov, &cs, from);
                        }
                        // What follows is planned again on the draft as it now is.
                        start = from + index + 1;
                        continue 'plan;
                    }
                }
            }
            if let Some(e) = refusal {
                statuses.fail(run.index[end], e)?;
            }
            from = end + 1;
        }
        break;
    }
    Ok(())
}

/// What one update turned into.
enum Prepared {
    /// A flow add, ready for a bundle.
    Insert(Box<(FlowMod, v1::Flow)>),
    /// Anything else, applied on its own.
    Other,
}

fn entity_of(u: &v1::Update) -> Result<&entity::Entity, ApiError> {
    u.entity
        .as_ref()
        .and_then(|e| e.entity.as_ref())
        .ok_or_else(|| ApiError::invalid("entity", "entity is required"))
}

fn update_type(u: &v1::Update) -> update::Type {
    update::Type::try_from(u.r#type).unwrap_or(update::Type::Unspecified)
}

fn prepare_update(
    u: &v1::Update,
    b: &Bridge,
    txn: &Txn<'_>,
    ov: &Overlay,
) -> Result<Prepared, ApiError> {
    match (update_type(u), entity_of(u)?) {
        (update::Type::Insert, entity::Entity::Flow(f)) => {
            let names = |n: &str| {
                b.ports.get(n).map(|p| p.desc.port_no).or_else(|| {
                    ov.ports_added
                        .iter()
                        .find(|p| p.desc.name == n)
                        .map(|p| p.desc.port_no)
                })
            };
            let (fm, canon) = prepare_flow(f, &names, false)?;
            check_refs(&fm, txn)?;
            Ok(Prepared::Insert(Box::new((fm, canon))))
        }
        _ => Ok(Prepared::Other),
    }
}

/// Applies one update other than a flow insert on the draft.
fn apply_update(
    u: &v1::Update,
    b: &Bridge,
    txn: &mut Txn<'_>,
    ov: &mut Overlay,
    scfg: &SwitchConfig,
) -> Result<(), ApiError> {
    let name_map: HashMap<String, u32> = b
        .ports
        .iter()
        .map(|(n, p)| (n.clone(), p.desc.port_no))
        .chain(
            ov.ports_added
                .iter()
                .map(|p| (p.desc.name.clone(), p.desc.port_no)),
        )
        .collect();
    let names = |n: &str| name_map.get(n).copied();
    use update::Type as T;
    match (update_type(u), entity_of(u)?) {
        (T::Unspecified, _) => Err(ApiError::invalid("type", "update type is required")),
        (T::Insert, entity::Entity::Flow(_)) => Err(ApiError::internal("flow insert not batched")),
        (T::Modify, entity::Entity::FlowModify(fm)) => {
            let ff = fm.filter.clone().unwrap_or_default();
            let s = selector(&ff, &names).map_err(|e| e.under("flow_modify.filter"))?;
            let change = Modification {
                instructions: &fm.instructions,
                reset_counts: fm.reset_counts,
                new_cookie: fm.new_cookie,
            };
            modify_flows(txn, ov, b, &names, s, change).map_err(|e| e.under("flow_modify"))
        }
        (T::Modify, entity::Entity::Flow(f)) => {
            // Strict modify of exactly this flow.
            let s = selector(&exactly(f), &names).map_err(|e| e.under("flow"))?;
            let change = Modification {
                instructions: &f.instructions,
                reset_counts: f.flags.is_some_and(|x| x.reset_counts),
                new_cookie: None,
            };
            modify_flows(txn, ov, b, &names, s, change).map_err(|e| e.under("flow"))
        }
        (T::Delete, entity::Entity::FlowFilter(ff)) => {
            let (s, _) = selector(ff, &names).map_err(|e| e.under("flow_filter"))?;
            delete_flows(txn, ov, b, s, None)
        }
        (T::Delete, entity::Entity::Flow(f)) => {
            let (s, _) = selector(&exactly(f), &names).map_err(|e| e.under("flow"))?;
            delete_flows(txn, ov, b, s, None)
        }
        (ty @ (T::Insert | T::Modify), entity::Entity::Meter(m)) => {
            set_meter(ty, m, b, txn, ov, &scfg.capacity)
        }
        (T::Delete, entity::Entity::Meter(m)) => delete_meter(m, b, txn, ov),
        (ty @ (T::Insert | T::Modify), entity::Entity::Group(g)) => {
            set_group(ty, g, b, txn, ov, &names, &scfg.capacity)
        }
        (T::Delete, entity::Entity::Group(g)) => delete_group(g, b, txn, ov),
        (T::Insert, entity::Entity::Port(p)) => {
            let desc = stage_add_port(txn, b, p, scfg, ov)?;
            ov.events
                .push(port_status(&b.rec.name, v1::PortStatusReason::Add, desc));
            Ok(())
        }
        (T::Delete, entity::Entity::Port(p)) => {
            let st = b
                .ports
                .get(&p.name)
                .filter(|_| !ov.ports_removed.contains(&p.name))
                .ok_or_else(|| ApiError::not_found("port.name", format!("no port {}", p.name)))?;
            txn.del_port(PortNo(st.desc.port_no))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            // The datapath's mirrors forgot the port; the stored ones do too.
            let mirrors = ov.mirrors.as_deref().unwrap_or(&b.rec.mirrors);
            if let Some(m) = super::mirrors::forget_port(mirrors, &p.name) {
                ov.mirrors = Some(m);
            }
            ov.ports_removed.push(p.name.clone());
            ov.events.push(port_status(
                &b.rec.name,
                v1::PortStatusReason::Delete,
                st.desc.clone(),
            ));
            Ok(())
        }
        (ty, e) => Err(ApiError::invalid(
            "type",
            format!(
                "{} is not valid for a {} entity",
                ty.as_str_name(),
                entity_name(e)
            ),
        )),
    }
}

/// The strict filter that selects exactly flow `f`.
fn exactly(f: &v1::Flow) -> v1::FlowFilter {
    v1::FlowFilter {
        table_id: Some(f.table_id),
        r#match: f.r#match.clone(),
        strict: true,
        priority: Some(f.priority),
        ..Default::default()
    }
}

/// A port-status message for the event stream.
fn port_status(
    bridge: &str,
    reason: v1::PortStatusReason,
    desc: v1::PortDesc,
) -> v1::StreamMessageResponse {
    v1::StreamMessageResponse {
        update: Some(smr::Update::PortStatus(v1::PortStatus {
            bridge: bridge.to_string(),
            reason: reason as i32,
            port: Some(desc),
        })),
    }
}

/// Whether meter `id` exists in the draft.
fn meter_exists(id: u32, b: &Bridge, ov: &Overlay) -> bool {
    match ov.meters.get(&id) {
        Some(x) => x.is_some(),
        None => b.meters.contains_key(&id),
    }
}

/// Adds (`INSERT`) or replaces (`MODIFY`) a meter.
fn set_meter(
    ty: update::Type,
    m: &v1::Meter,
    b: &Bridge,
    txn: &mut Txn<'_>,
    ov: &mut Overlay,
    cap: &Capacity,
) -> Result<(), ApiError> {
    let exists = meter_exists(m.id, b, ov);
    if ty == update::Type::Insert && exists {
        return Err(ApiError::exists(
            "meter.id",
            format!("meter {} exists", m.id),
        ));
    }
    if ty == update::Type::Modify && !exists {
        return Err(ApiError::not_found(
            "meter.id",
            format!("no meter {}", m.id),
        ));
    }
    let dm = meter_group::convert_meter(m, txn.now_ns())?;
    if !exists {
        capacity::check_meters(txn.snapshot(), cap)?;
    }
    txn.set_meter(dm)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    ov.meters.insert(m.id, Some(m.clone()));
    Ok(())
}

/// Deletes a meter and, as OpenFlow 1.3 says, the flows that use it.
fn delete_meter(
    m: &v1::Meter,
    b: &Bridge,
    txn: &mut Txn<'_>,
    ov: &mut Overlay,
) -> Result<(), ApiError> {
    if !meter_exists(m.id, b, ov) {
        return Err(ApiError::not_found(
            "meter.id",
            format!("no meter {}", m.id),
        ));
    }
    let users: Vec<FlowMod> = txn
        .snapshot()
        .pipeline
        .rules(None)
        .filter(|r| r.spec.instructions.meter == Some(MeterId(m.id)))
        .map(|r| strict_delete(r))
        .collect();
    if !users.is_empty() {
        let cs = txn
            .flow_mods(&users)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        absorb_removals_as(
            ov,
            &cs,
            &b.flows,
            &b.rec.name,
            Some(v1::FlowRemovedReason::MeterDelete),
        );
    }
    txn.del_meter(MeterId(m.id))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    ov.meters.insert(m.id, None);
    Ok(())
}

/// Whether group `id` exists in the draft.
fn group_exists(id: u32, b: &Bridge, ov: &Overlay) -> bool {
    match ov.groups.get(&id) {
        Some(x) => x.is_some(),
        None => b.groups.contains_key(&id),
    }
}

/// Adds (`INSERT`) or replaces (`MODIFY`) a group; the groups it chains to must exist.
fn set_group(
    ty: update::Type,
    g: &v1::Group,
    b: &Bridge,
    txn: &mut Txn<'_>,
    ov: &mut Overlay,
    names: &dyn PortNames,
    cap: &Capacity,
) -> Result<(), ApiError> {
    let exists = group_exists(g.id, b, ov);
    if ty == update::Type::Insert && exists {
        return Err(ApiError::exists(
            "group.id",
            format!("group {} exists", g.id),
        ));
    }
    if ty == update::Type::Modify && !exists {
        return Err(ApiError::not_found(
            "group.id",
            format!("no group {}", g.id),
        ));
    }
    // Every bucket gets its id (the lowest free one where none is given), as reads show.
    let mut canon = g.clone();
    flow_text::assign_bucket_ids(&mut canon)
        .map_err(|e| ApiError::invalid("group.buckets.bucket_id", e))?;
    let dg = meter_group::convert_group(&canon, names)?;
    if !exists {
        capacity::check_groups(txn.snapshot(), cap)?;
    }
    // A bucket may chain to a group that does not exist yet, as in Open vSwitch (the packet
    // is dropped as NoSuchGroup until it does), but not to its own group.
    for (i, bk) in dg.buckets.iter().enumerate() {
        for a in bk.actions.iter() {
            if let datapath::actions::Action::Group(r) = a
                && *r == dg.id
            {
                return Err(ApiError::invalid(
                    format!("group.buckets[{i}].actions.group"),
                    format!("group {} refers to itself", r.0),
                ));
            }
        }
    }
    txn.set_group(dg)
        .map_err(|e| ApiError::invalid("group", e.to_string()))?;
    for bk in &mut canon.buckets {
        resolve_action_names(&mut bk.actions, names);
    }
    ov.groups.insert(g.id, Some(canon));
    Ok(())
}

/// Deletes a group and the flows that use it.
fn delete_group(
    g: &v1::Group,
    b: &Bridge,
    txn: &mut Txn<'_>,
    ov: &mut Overlay,
) -> Result<(), ApiError> {
    if !group_exists(g.id, b, ov) {
        return Err(ApiError::not_found(
            "group.id",
            format!("no group {}", g.id),
        ));
    }
    let s = Selector {
        out_group: Some(GroupId(g.id)),
        ..Selector::default()
    };
    delete_flows(txn, ov, b, s, Some(v1::FlowRemovedReason::GroupDelete))?;
    txn.del_group(GroupId(g.id))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    ov.groups.insert(g.id, None);
    Ok(())
}

fn entity_name(e: &entity::Entity) -> &'static str {
    match e {
        entity::Entity::Flow(_) => "flow",
        entity::Entity::Meter(_) => "meter",
        entity::Entity::Group(_) => "group",
        entity::Entity::Port(_) => "port",
        entity::Entity::FlowFilter(_) => "flow_filter",
        entity::Entity::FlowModify(_) => "flow_modify",
    }
}
