//! How much a bridge may hold ([`Capacity`]), checked on the draft of each transaction so
//! that a change passing a limit is refused before anything is applied or stored.
//!
//! What: free functions over a draft snapshot; they change nothing. The callers turn a
//! refusal into the update's status (`RESOURCE_EXHAUSTED`, naming the limit and its flag).

use std::collections::{HashMap, HashSet};

use datapath::classifier::{FlowMod, Pipeline};
use datapath::pipeline::Snapshot;

use super::config::Capacity;
use crate::error::ApiError;

/// The flow adds among `mods` (one bundle, applied in order to `p`) that would pass
/// `--max-flows-per-table` or `--max-flows-per-bridge`, by index, in order, with their
/// errors. An add that replaces a flow of the same identity (table, priority, match),
/// already in `p` or earlier in `mods`, adds nothing. `ids` holds each add's identity.
pub(super) fn over_flow_limits(
    p: &Pipeline,
    mods: &[FlowMod],
    ids: &[Vec<u8>],
    cap: &Capacity,
) -> Vec<(usize, ApiError)> {
    let mut refused = Vec::new();
    let mut added: HashMap<u8, usize> = HashMap::new();
    let mut total = p.rule_count();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for (i, (m, id)) in mods.iter().zip(ids).enumerate() {
        let FlowMod::Add { spec, .. } = m else {
            continue;
        };
        let t = spec.table;
        let key = spec.key.masked(&spec.mask);
        if p.table(t)
            .find_strict(&key, &spec.mask, spec.priority)
            .is_some()
            || seen.contains(&id[..])
        {
            continue;
        }
        let in_table = p.table(t).len() + added.get(&t.0).copied().unwrap_or(0);
        if in_table >= cap.flows_per_table {
            refused.push((
                i,
                ApiError::exhausted(
                    "flow.table_id",
                    format!(
                        "table {} is full: it holds {in_table} flows, the most \
                         --max-flows-per-table allows",
                        t.0
                    ),
                ),
            ));
        } else if total >= cap.flows_per_bridge {
            refused.push((
                i,
                ApiError::exhausted(
                    "flow",
                    format!(
                        "the bridge is full: it holds {total} flows, the most \
                         --max-flows-per-bridge allows"
                    ),
                ),
            ));
        } else {
            *added.entry(t.0).or_default() += 1;
            total += 1;
            seen.insert(id);
        }
    }
    refused
}

/// Refuses a new meter when the draft already holds `--max-meters-per-bridge`.
pub(super) fn check_meters(draft: &Snapshot, cap: &Capacity) -> Result<(), ApiError> {
    let n = draft.meters.len();
    if n >= cap.meters_per_bridge {
        return Err(ApiError::exhausted(
            "meter.id",
            format!("the bridge holds {n} meters, the most --max-meters-per-bridge allows"),
        ));
    }
    Ok(())
}

/// Refuses a new group when the draft already holds `--max-groups-per-bridge`.
pub(super) fn check_groups(draft: &Snapshot, cap: &Capacity) -> Result<(), ApiError> {
    let n = draft.groups.len();
    if n >= cap.groups_per_bridge {
        return Err(ApiError::exhausted(
            "group.id",
            format!("the bridge holds {n} groups, the most --max-groups-per-bridge allows"),
        ));
    }
    Ok(())
}

/// Refuses a new port when the bridge, with this transaction's changes, already holds
/// `ports` = `--max-ports-per-bridge`.
pub(super) fn check_ports(ports: usize, cap: &Capacity) -> Result<(), ApiError> {
    if ports >= cap.ports_per_bridge {
        return Err(ApiError::exhausted(
            "port",
            format!("the bridge holds {ports} ports, the most --max-ports-per-bridge allows"),
        ));
    }
    Ok(())
}

/// Refuses a new bridge when the switch already holds `--max-bridges`.
pub(super) fn check_bridges(bridges: usize, cap: &Capacity) -> Result<(), ApiError> {
    if bridges >= cap.bridges {
        return Err(ApiError::exhausted(
            "name",
            format!("the switch holds {bridges} bridges, the most --max-bridges allows"),
        ));
    }
    Ok(())
}

/// Says (a warning) what a bridge restored from the store holds beyond the limits: it is
/// kept, and only further additions are refused.
pub(super) fn warn_if_over(bridge: &str, snap: &Snapshot, ports: usize, cap: &Capacity) {
    let p = &snap.pipeline;
    let fullest = (0..=proto::flow_text::MAX_TABLE_ID as u8)
        .map(|t| (p.table(datapath::types::TableId(t)).len(), t))
        .max()
        .unwrap_or_default();
    let in_table = format!("flows in table {}", fullest.1);
    let over = [
        (
            fullest.0,
            cap.flows_per_table,
            in_table.as_str(),
            "--max-flows-per-table",
        ),
        (
            p.rule_count(),
            cap.flows_per_bridge,
            "flows",
            "--max-flows-per-bridge",
        ),
        (
            snap.meters.len(),
            cap.meters_per_bridge,
            "meters",
            "--max-meters-per-bridge",
        ),
        (
            snap.groups.len(),
            cap.groups_per_bridge,
            "groups",
            "--max-groups-per-bridge",
        ),
        (
            ports,
            cap.ports_per_bridge,
            "ports",
            "--max-ports-per-bridge",
        ),
    ];
    for (n, max, what, flag) in over {
        if n > max {
            tracing::warn!(
                bridge,
                "the store holds {n} {what}, more than {flag} ({max}) allows: all kept, \
                 and nothing more is added until there are fewer"
            );
        }
    }
}
