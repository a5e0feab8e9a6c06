//! The Write call: a batch of updates on one draft, flow inserts gathered into bundles,
//! committed to the store and published together.

use std::collections::HashMap;

use datapath::classifier::{BundleError, FlowMod};
use datapath::flow::FlowKey;
use datapath::types::{GroupId, MeterId, PortNo};
use proto::v1::{self, entity, stream_message_response as smr, update};

use super::Switch;
use super::config::SwitchConfig;
use super::flows::{
    Run, Selector, absorb_removals_as, check_refs, delete_flows, flow_mod_error, modify_flows,
    prepare_flow, resolve_action_names, selector, strict_delete,
};
use super::model::{Bridge, Overlay, apply_overlay, bridge_mut, write_overlay};
use super::ports::stage_add_port;
use crate::convert;
use crate::error::ApiError;

/// What one update turned into.
pub(super) enum Prepared {
    /// A flow add, ready for a bundle.
    Insert(Box<(FlowMod, v1::Flow)>),
    /// Anything else, applied on its own.
    Other,
}

impl Switch {
    /// Applies a batch of updates. `ATOMICITY_ALL_OR_NONE`: the first refused update fails
    /// the whole request (error naming `updates[i]`) and nothing changes. Otherwise each
    /// refused update gets a status and the rest are applied. Either way the accepted
    /// changes become durable, then visible, together.
    pub fn write(&self, req: v1::WriteRequest) -> Result<v1::WriteResponse, ApiError> {
        let atomic = req.atomicity == v1::Atomicity::AllOrNone as i32;
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let mut statuses: Vec<v1::UpdateStatus> = Vec::new();
        let mut ov = Overlay::default();
        let bridge_name = req.bridge.clone();
        let result = b.dp.transaction(|txn| -> Result<(), ApiError> {
            let fail = |statuses: &mut Vec<v1::UpdateStatus>, i: usize, e: ApiError| {
                let e = e.under(&format!("updates[{i}]"));
                statuses.push(v1::UpdateStatus {
                    index: i as u32,
                    code: e.code as i32,
                    message: e.message.clone(),
                    field: e.field.clone(),
                });
                if atomic { Err(e) } else { Ok(()) }
            };
            let n = req.updates.len();
            let mut i = 0;
            while i < n {
                // Gather a run of flow inserts into one bundle.
                let mut run = Run::default();
                while i < n {
                    match prepare_update(&req.updates[i], b, txn, &ov) {
                        Ok(Prepared::Insert(x)) => {
                            let (fm, f) = *x;
                            run.push(i, fm, f);
                        }
                        Ok(Prepared::Other) if run.mods.is_empty() => {
                            if let Err(e) =
                                apply_update(&req.updates[i], b, txn, &mut ov, &self.config)
                            {
                                fail(&mut statuses, i, e)?;
                            }
                            i += 1;
                            break;
                        }
                        Ok(Prepared::Other) => break,
                        Err(e) => {
                            if run.mods.is_empty() {
                                fail(&mut statuses, i, e)?;
                                i += 1;
                            }
                            break;
                        }
                    }
                    i += 1;
                }
                let mut start = 0;
                while start < run.mods.len() {
                    match txn.flow_mods(&run.mods[start..]) {
                        Ok(cs) => {
                            run.absorb(&mut ov, &cs, start);
                            break;
                        }
                        Err(BundleError { index, error }) => {
                            let e = flow_mod_error(error);
                            fail(&mut statuses, run.index[start + index], e)?;
                            if index > 0 {
                                let cs = txn
                                    .flow_mods(&run.mods[start..start + index])
                                    .map_err(|e| ApiError::internal(e.to_string()))?;
                                run.absorb(&mut ov, &cs, start);
                            }
                            start += index + 1;
                        }
                    }
                }
            }
            if !ov.is_empty() {
                let mut tx = self.store.begin()?;
                write_overlay(&mut tx, &bridge_name, &ov)?;
                tx.commit()?;
            }
            Ok(())
        });
        result?;
        let events = std::mem::take(&mut ov.events);
        apply_overlay(b, ov);
        drop(bridges);
        for e in events {
            if let Some(u) = e.update {
                self.emit(&bridge_name, u);
            }
        }
        Ok(v1::WriteResponse { statuses })
    }
}

pub(super) fn entity_of(u: &v1::Update) -> Result<&entity::Entity, ApiError> {
    u.entity
        .as_ref()
        .and_then(|e| e.entity.as_ref())
        .ok_or_else(|| ApiError::invalid("entity", "entity is required"))
}

pub(super) fn prepare_update(
    u: &v1::Update,
    b: &Bridge,
    txn: &datapath::pipeline::Txn<'_>,
    ov: &Overlay,
) -> Result<Prepared, ApiError> {
    let ty = update::Type::try_from(u.r#type).unwrap_or(update::Type::Unspecified);
    match (ty, entity_of(u)?) {
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

/// Applies one non-insert update on the draft.
pub(super) fn apply_update(
    u: &v1::Update,
    b: &Bridge,
    txn: &mut datapath::pipeline::Txn<'_>,
    ov: &mut Overlay,
    scfg: &SwitchConfig,
) -> Result<(), ApiError> {
    let ty = update::Type::try_from(u.r#type).unwrap_or(update::Type::Unspecified);
    let bridge = b.rec.name.as_str();
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
    match (ty, entity_of(u)?) {
        (update::Type::Unspecified, _) => Err(ApiError::invalid("type", "update type is required")),
        (update::Type::Insert, entity::Entity::Flow(_)) => {
            Err(ApiError::internal("flow insert not batched"))
        }
        (update::Type::Modify, entity::Entity::FlowModify(fm)) => {
            let ff = fm.filter.clone().unwrap_or_default();
            let s = selector(&ff, &names).map_err(|e| e.under("flow_modify.filter"))?;
            modify_flows(
                txn,
                ov,
                b,
                &names,
                s,
                &fm.instructions,
                fm.reset_counts,
                fm.new_cookie,
            )
            .map_err(|e| e.under("flow_modify"))
        }
        (update::Type::Modify, entity::Entity::Flow(f)) => {
            // Strict modify of exactly this flow.
            let ff = v1::FlowFilter {
                table_id: Some(f.table_id),
                r#match: f.r#match.clone(),
                strict: true,
                priority: Some(f.priority),
                ..Default::default()
            };
            let s = selector(&ff, &names).map_err(|e| e.under("flow"))?;
            let reset = f.flags.is_some_and(|x| x.reset_counts);
            modify_flows(txn, ov, b, &names, s, &f.instructions, reset, None)
                .map_err(|e| e.under("flow"))
        }
        (update::Type::Delete, entity::Entity::FlowFilter(ff)) => {
            let s = selector(ff, &names).map_err(|e| e.under("flow_filter"))?;
            delete_flows(txn, ov, b, s, None)
        }
        (update::Type::Delete, entity::Entity::Flow(f)) => {
            let ff = v1::FlowFilter {
                table_id: Some(f.table_id),
                r#match: f.r#match.clone(),
                strict: true,
                priority: Some(f.priority),
                ..Default::default()
            };
            let s = selector(&ff, &names).map_err(|e| e.under("flow"))?;
            delete_flows(txn, ov, b, s, None)
        }
        (ty, entity::Entity::Meter(m)) => {
            let exists = match ov.meters.get(&m.id) {
                Some(x) => x.is_some(),
                None => b.meters.contains_key(&m.id),
            };
            match ty {
                update::Type::Insert | update::Type::Modify => {
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
                    let dm = convert::convert_meter(m, txn.now_ns())?;
                    txn.set_meter(dm)
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    ov.meters.insert(m.id, Some(m.clone()));
                    Ok(())
                }
                _ => {
                    if !exists {
                        return Err(ApiError::not_found(
                            "meter.id",
                            format!("no meter {}", m.id),
                        ));
                    }
                    // OpenFlow 1.3: deleting a meter removes the flows that use it.
                    let users: Vec<FlowMod> = txn
                        .snapshot()
                        .pipeline
                        .rules(None)
                        .filter(|r| r.instructions.meter == Some(MeterId(m.id)))
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
                            bridge,
                            Some(v1::FlowRemovedReason::MeterDelete),
                        );
                    }
                    txn.del_meter(MeterId(m.id))
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    ov.meters.insert(m.id, None);
                    Ok(())
                }
            }
        }
        (ty, entity::Entity::Group(g)) => {
            let exists = match ov.groups.get(&g.id) {
                Some(x) => x.is_some(),
                None => b.groups.contains_key(&g.id),
            };
            match ty {
                update::Type::Insert | update::Type::Modify => {
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
                    let dg = convert::convert_group(g, &names)?;
                    for (i, bk) in dg.buckets.iter().enumerate() {
                        for a in bk.actions.iter() {
                            if let datapath::actions::Action::Group(r) = a
                                && (*r == dg.id || !txn.snapshot().groups.contains_key(r))
                            {
                                return Err(ApiError::not_found(
                                    format!("group.buckets[{i}].actions.group"),
                                    format!("no group {} (or a group that refers to itself)", r.0),
                                ));
                            }
                        }
                    }
                    txn.set_group(dg)
                        .map_err(|e| ApiError::invalid("group", e.to_string()))?;
                    let mut canon = g.clone();
                    for bk in &mut canon.buckets {
                        resolve_action_names(&mut bk.actions, &names);
                    }
                    ov.groups.insert(g.id, Some(canon));
                    Ok(())
                }
                _ => {
                    if !exists {
                        return Err(ApiError::not_found(
                            "group.id",
                            format!("no group {}", g.id),
                        ));
                    }
                    let s = Selector {
                        table: None,
                        strict: false,
                        key: FlowKey::ZERO,
                        mask: FlowKey::ZERO,
                        priority: 0,
                        cookie: 0,
                        cookie_mask: 0,
                        out_port: None,
                        out_group: Some(GroupId(g.id)),
                        canonical: v1::Match::default(),
                    };
                    delete_flows(txn, ov, b, s, Some(v1::FlowRemovedReason::GroupDelete))?;
                    txn.del_group(GroupId(g.id))
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    ov.groups.insert(g.id, None);
                    Ok(())
                }
            }
        }
        (update::Type::Insert, entity::Entity::Port(p)) => {
            let desc = stage_add_port(txn, b, p, scfg, ov)?;
            ov.events.push(v1::StreamMessageResponse {
                update: Some(smr::Update::PortStatus(v1::PortStatus {
                    bridge: bridge.to_string(),
                    reason: v1::PortStatusReason::Add as i32,
                    port: Some(desc),
                })),
            });
            Ok(())
        }
        (update::Type::Delete, entity::Entity::Port(p)) => {
            let st = b
                .ports
                .get(&p.name)
                .filter(|_| !ov.ports_removed.contains(&p.name))
                .ok_or_else(|| ApiError::not_found("port.name", format!("no port {}", p.name)))?;
            txn.del_port(PortNo(st.desc.port_no))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            ov.ports_removed.push(p.name.clone());
            ov.events.push(v1::StreamMessageResponse {
                update: Some(smr::Update::PortStatus(v1::PortStatus {
                    bridge: bridge.to_string(),
                    reason: v1::PortStatusReason::Delete as i32,
                    port: Some(st.desc.clone()),
                })),
            });
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

pub(super) fn entity_name(e: &entity::Entity) -> &'static str {
    match e {
        entity::Entity::Flow(_) => "flow",
        entity::Entity::Meter(_) => "meter",
        entity::Entity::Group(_) => "group",
        entity::Entity::Port(_) => "port",
        entity::Entity::FlowFilter(_) => "flow_filter",
        entity::Entity::FlowModify(_) => "flow_modify",
    }
}
