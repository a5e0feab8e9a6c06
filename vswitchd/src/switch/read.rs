//! The Read call: flows (with their counters), meters, groups and ports under filters,
//! selected once and handed out in bounded chunks.
//!
//! A Read must not let one client make the daemon allocate without bound or hold the lock
//! that writers need (500 overlapping filters over 2,001 flows once took the daemon to
//! 1 GB and stalled a concurrent `add-flow` for over a second). So:
//! - a Read carries at most [`MAX_READ_FILTERS`] filters, and returns each entity once
//!   however many of them select it;
//! - [`Switch::reader`] takes the switch lock only to resolve names and copy what little it
//!   needs (the bridge's snapshot pointer, meter and group ids, port descriptions); flows are
//!   selected on the immutable snapshot without it, and kept as one pointer each;
//! - [`Switch::read_chunk`] builds one response of at most [`CHUNK_ENTITIES`] entities and
//!   about [`CHUNK_BYTES`] bytes, under the lock only for that chunk's lookups; the service
//!   builds the next one when the client has taken the last.
//!
//! A flow, meter or group deleted while its Read streams is left out; one changed is
//! reported as it is when its chunk is built. A bridge deleted (or deleted and made again)
//! meanwhile ends the Read.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use datapath::classifier::{Rule, Selector};
use proto::v1::{self, entity, port_ref};

use super::Switch;
use super::flows::{rule_order, select, selector};
use super::model::{Bridge, port_descs, rule_ident};
use crate::error::ApiError;

/// Most filters one Read may carry.
pub const MAX_READ_FILTERS: usize = 64;
/// Most entities (or ports) in one response; also the most a chunk looks up under the lock.
pub const CHUNK_ENTITIES: usize = 1024;
/// A response stops growing once its encoded size passes this.
pub const CHUNK_BYTES: usize = 1 << 20;

/// A Read in progress: what it selected when it started, not yet sent.
#[derive(Debug)]
pub struct Reader {
    bridge: String,
    /// The bridge as it was when the Read started (its stop flag is unique to it).
    instance: Arc<AtomicBool>,
    flows: std::vec::IntoIter<Arc<Rule>>,
    meters: std::collections::btree_set::IntoIter<u32>,
    groups: std::collections::btree_set::IntoIter<u32>,
    ports: std::vec::IntoIter<v1::PortDesc>,
    /// No response was built yet (an empty result is still one, empty, response).
    first: bool,
}

impl Reader {
    /// Flows still to send.
    pub fn flows_left(&self) -> usize {
        self.flows.len()
    }
}

/// What the filters ask for, resolved under the lock.
#[derive(Default)]
struct Wanted {
    flows: Vec<Selector>,
    meters: Pick,
    groups: Pick,
    ports: Pick,
}

/// Every one, or these ids (each once).
#[derive(Default)]
struct Pick {
    all: bool,
    these: BTreeSet<u32>,
}

impl Pick {
    /// Adds what one filter asks for: one id, or (`None`) every one.
    fn add(&mut self, id: Option<u32>) {
        match id {
            None => self.all = true,
            Some(id) => {
                self.these.insert(id);
            }
        }
    }

    /// The ids picked among `ids` (sorted, each once).
    fn among(&self, ids: impl Iterator<Item = u32>) -> BTreeSet<u32> {
        if self.all {
            ids.collect()
        } else {
            let exist: BTreeSet<u32> = ids.collect();
            self.these.intersection(&exist).copied().collect()
        }
    }
}

impl Switch {
    /// Reads flows, meters, groups or ports under the filters (none: every flow), all at
    /// once: [`Switch::reader`] and every [`Switch::read_chunk`].
    pub fn read(&self, req: &v1::ReadRequest) -> Result<Vec<v1::ReadResponse>, ApiError> {
        let mut r = self.reader(req)?;
        let mut out = Vec::new();
        while let Some(c) = self.read_chunk(&mut r)? {
            out.push(c);
        }
        Ok(out)
    }

    /// Starts a Read: checks its filters and selects what they ask for. Errors (a missing
    /// bridge, a bad filter, too many filters) come before anything is sent.
    pub fn reader(&self, req: &v1::ReadRequest) -> Result<Reader, ApiError> {
        if req.filters.len() > MAX_READ_FILTERS {
            return Err(ApiError::invalid(
                "filters",
                format!(
                    "{} filters; a Read takes at most {MAX_READ_FILTERS} (it returns each \
                     entity once, however many filters select it)",
                    req.filters.len()
                ),
            ));
        }
        let all = [v1::ReadFilter {
            filter: Some(v1::read_filter::Filter::Flows(v1::FlowFilter::default())),
        }];
        let filters = if req.filters.is_empty() {
            &all[..]
        } else {
            &req.filters[..]
        };
        let (selectors, meters, groups, ports, snap, instance) = {
            let bridges = self.bridges.lock();
            let b = bridges.get(&req.bridge).ok_or_else(|| {
                ApiError::not_found("bridge", format!("no bridge {}", req.bridge))
            })?;
            let w = wanted(b, filters)?;
            let meters = w.meters.among(b.meters.keys().copied());
            let groups = w.groups.among(b.groups.keys().copied());
            let picked = w.ports.among(b.ports.values().map(|p| p.desc.port_no));
            let ports: Vec<v1::PortDesc> = port_descs(b)
                .into_iter()
                .filter(|p| picked.contains(&p.port_no))
                .collect();
            let snap = b.dp.snapshot();
            (w.flows, meters, groups, ports, snap, Arc::clone(&b.stop))
        };
        // Without the lock: the snapshot is immutable.
        let mut seen = HashSet::new();
        let mut flows = Vec::new();
        for s in &selectors {
            flows.extend(
                select(&snap.pipeline, s)
                    .into_iter()
                    .filter(|r| seen.insert(r.id)),
            );
        }
        drop(seen);
        flows.sort_unstable_by_key(|r| rule_order(r));
        Ok(Reader {
            bridge: req.bridge.clone(),
            instance,
            flows: flows.into_iter(),
            meters: meters.into_iter(),
            groups: groups.into_iter(),
            ports: ports.into_iter(),
            first: true,
        })
    }

    /// The next response of a Read, or `None` when everything was sent: entities (flows,
    /// then meters, then groups) first, then ports. `NOT_FOUND` when the bridge was deleted
    /// since the Read started (what was sent so far is not all it held).
    pub fn read_chunk(&self, r: &mut Reader) -> Result<Option<v1::ReadResponse>, ApiError> {
        let mut resp = v1::ReadResponse::default();
        let mut size = 0;
        let mut looked = 0;
        {
            let bridges = self.bridges.lock();
            let b = bridges
                .get(&r.bridge)
                .filter(|b| Arc::ptr_eq(&b.stop, &r.instance));
            let Some(b) = b else {
                return Err(ApiError::not_found(
                    "bridge",
                    format!("bridge {} was deleted during the Read", r.bridge),
                ));
            };
            let snap = b.dp.snapshot();
            let now = b.dp.now_ns();
            while looked < CHUNK_ENTITIES && size < CHUNK_BYTES {
                let e = if let Some(rule) = r.flows.next() {
                    flow_now(b, &snap.pipeline, &rule, now)
                } else if let Some(id) = r.meters.next() {
                    b.meters.get(&id).map(|m| entity::Entity::Meter(m.clone()))
                } else if let Some(id) = r.groups.next() {
                    b.groups.get(&id).map(|g| entity::Entity::Group(g.clone()))
                } else {
                    break;
                };
                looked += 1;
                if let Some(e) = e {
                    let e = v1::Entity { entity: Some(e) };
                    size += prost::encoding::message::encoded_len(1, &e);
                    resp.entities.push(e);
                }
            }
        }
        // Ports need no lock: they were copied when the Read started.
        while looked < CHUNK_ENTITIES && size < CHUNK_BYTES {
            let Some(p) = r.ports.next() else { break };
            looked += 1;
            size += prost::encoding::message::encoded_len(2, &p);
            resp.ports.push(p);
        }
        if looked == 0 && !std::mem::take(&mut r.first) {
            return Ok(None);
        }
        r.first = false;
        Ok(Some(resp))
    }
}

/// Resolves `filters` against bridge `b`: flow selectors, and which meters, groups and
/// ports they name.
fn wanted(b: &Bridge, filters: &[v1::ReadFilter]) -> Result<Wanted, ApiError> {
    let mut w = Wanted::default();
    let names = b.names();
    for (fi, f) in filters.iter().enumerate() {
        let at = format!("filters[{fi}]");
        match &f.filter {
            Some(v1::read_filter::Filter::Flows(ff)) => {
                w.flows
                    .push(selector(ff, &names).map_err(|e| e.under(&at))?.0);
            }
            Some(v1::read_filter::Filter::Meters(mf)) => w.meters.add(mf.id),
            Some(v1::read_filter::Filter::Groups(gf)) => w.groups.add(gf.id),
            Some(v1::read_filter::Filter::Ports(pf)) => w.ports.add(wanted_port(b, pf, &at)?),
            None => return Err(ApiError::invalid(at, "empty filter")),
        }
    }
    Ok(w)
}

/// Flow `r` (selected when its Read started) as the bridge holds it now, with its counters:
/// `None` if it was deleted since. A flow replaced since (same table, priority and match)
/// is reported as the replacement, with the replacement's counters.
fn flow_now(
    b: &Bridge,
    p: &datapath::classifier::Pipeline,
    r: &Arc<Rule>,
    now: u64,
) -> Option<entity::Entity> {
    let current = p
        .table(r.spec.table)
        .find_strict(&r.spec.key, &r.spec.mask, r.spec.priority)?;
    let mut f = b.flows.get(&rule_ident(current))?.clone();
    let c = current.stats.read();
    f.stats = Some(v1::FlowStats {
        duration_ns: now.saturating_sub(current.created_ns),
        packet_count: c.packets,
        byte_count: c.bytes,
        idle_ns: now.saturating_sub(c.last_used_ns.max(current.created_ns)),
    });
    Some(entity::Entity::Flow(f))
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
