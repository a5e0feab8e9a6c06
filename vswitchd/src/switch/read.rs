//! The Read call: flows (with their counters), meters, groups and ports under filters.

use datapath::classifier::Rule;
use proto::v1::{self, entity, port_ref};

use super::Switch;
use super::flows::select_rules;
use super::model::{Bridge, port_descs, rule_ident};
use crate::error::ApiError;

impl Switch {
    /// Reads flows, meters, groups or ports under the filters (none: every flow).
    pub fn read(&self, req: &v1::ReadRequest) -> Result<Vec<v1::ReadResponse>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(&req.bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {}", req.bridge)))?;
        let mut entities = Vec::new();
        let mut ports = Vec::new();
        let all = [v1::ReadFilter {
            filter: Some(v1::read_filter::Filter::Flows(v1::FlowFilter::default())),
        }];
        let filters = if req.filters.is_empty() {
            &all[..]
        } else {
            &req.filters[..]
        };
        let snap = b.dp.snapshot();
        let now = b.dp.now_ns();
        for (fi, f) in filters.iter().enumerate() {
            let at = format!("filters[{fi}]");
            match &f.filter {
                Some(v1::read_filter::Filter::Flows(ff)) => {
                    let sel = select_rules(b, &snap.pipeline, ff).map_err(|e| e.under(&at))?;
                    entities.extend(sel.iter().filter_map(|r| flow_with_stats(b, r, now)));
                }
                Some(v1::read_filter::Filter::Meters(mf)) => {
                    for m in b
                        .meters
                        .values()
                        .filter(|m| mf.id.is_none_or(|id| id == m.id))
                    {
                        entities.push(v1::Entity {
                            entity: Some(entity::Entity::Meter(m.clone())),
                        });
                    }
                }
                Some(v1::read_filter::Filter::Groups(gf)) => {
                    for g in b
                        .groups
                        .values()
                        .filter(|g| gf.id.is_none_or(|id| id == g.id))
                    {
                        entities.push(v1::Entity {
                            entity: Some(entity::Entity::Group(g.clone())),
                        });
                    }
                }
                Some(v1::read_filter::Filter::Ports(pf)) => {
                    let want = wanted_port(b, pf, &at)?;
                    ports.extend(
                        port_descs(b)
                            .into_iter()
                            .filter(|p| want.is_none_or(|w| w == p.port_no)),
                    );
                }
                None => return Err(ApiError::invalid(at, "empty filter")),
            }
        }
        // Stream in chunks so a large table does not make one huge message.
        let mut out: Vec<v1::ReadResponse> = entities
            .chunks(1024)
            .map(|c| v1::ReadResponse {
                entities: c.to_vec(),
                ports: Vec::new(),
            })
            .collect();
        if !ports.is_empty() || out.is_empty() {
            out.push(v1::ReadResponse {
                entities: Vec::new(),
                ports,
            });
        }
        Ok(out)
    }
}

/// The stored message of rule `r` with its counters, as a Read returns it.
fn flow_with_stats(b: &Bridge, r: &Rule, now: u64) -> Option<v1::Entity> {
    let mut f = b.flows.get(&rule_ident(r))?.clone();
    let c = r.stats.read();
    f.stats = Some(v1::FlowStats {
        duration_ns: now.saturating_sub(r.created_ns),
        packet_count: c.packets,
        byte_count: c.bytes,
        idle_ns: now.saturating_sub(c.last_used_ns.max(r.created_ns)),
    });
    Some(v1::Entity {
        entity: Some(entity::Entity::Flow(f)),
    })
}

/// The port number a ports filter names (`None`: every port); `at` is the filter's field.
fn wanted_port(b: &Bridge, pf: &v1::PortFilter, at: &str) -> Result<Option<u32>, ApiError> {
    Ok(match pf.port.as_ref().and_then(|p| p.port.as_ref()) {
        None => None,
        Some(port_ref::Port::Number(n)) => Some(*n),
        Some(port_ref::Port::Name(n)) => Some(b.names()(n).ok_or_else(|| {
            ApiError::not_found(format!("{at}.port"), format!("no port named {n:?}"))
        })?),
        Some(port_ref::Port::Reserved(_)) => {
            return Err(ApiError::invalid(
                format!("{at}.port"),
                "a reserved port has no description",
            ));
        }
    })
}
