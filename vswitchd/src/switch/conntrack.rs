//! Connection tracking calls: dump, flush and statistics of each bridge's tracker.
//!
//! A bridge's datapath makes its tracker when a `ct` action first runs; a bridge without
//! one has no connections (and reads as empty, without making one).

use datapath::conntrack::{CtFilter, CtStats};
use proto::v1;

use super::Switch;
use super::model::Bridge;
use crate::error::ApiError;

/// `zone` of a request, checked.
fn zone_of(zone: Option<u32>) -> Result<Option<u16>, ApiError> {
    zone.map(|z| u16::try_from(z).map_err(|_| ApiError::invalid("zone", "must be 0..=65535")))
        .transpose()
}

impl Switch {
    /// Runs `f` on the named bridge, or on every bridge when `bridge` is empty.
    pub(super) fn each_bridge<T>(
        &self,
        bridge: &str,
        mut f: impl FnMut(&str, &Bridge) -> T,
    ) -> Result<Vec<T>, ApiError> {
        let bridges = self.bridges.lock();
        if bridge.is_empty() {
            return Ok(bridges.iter().map(|(n, b)| f(n, b)).collect());
        }
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        Ok(vec![f(bridge, b)])
    }

    /// `dump-conntrack [BR] [zone=N]`.
    pub fn dump_conntrack(
        &self,
        bridge: &str,
        zone: Option<u32>,
    ) -> Result<v1::DumpConntrackResponse, ApiError> {
        let filter = CtFilter {
            zone: zone_of(zone)?,
            ..CtFilter::default()
        };
        let per = self.each_bridge(bridge, |name, b| {
            let Some(ct) = b.dp.conntrack_if_made() else {
                return Vec::new();
            };
            let now_ms = b.dp.now_ns() / 1_000_000;
            ct.dump(&filter, now_ms)
                .into_iter()
                .map(|e| v1::ConntrackEntry {
                    bridge: name.to_string(),
                    text: e.format(false),
                    text_stats: e.format(true),
                    zone: e.orig.zone as u32,
                    protocol: e.orig.proto as u32,
                    timeout_s: e.timeout_s,
                    mark: e.mark,
                    label: e.label.to_be_bytes().to_vec(),
                })
                .collect()
        })?;
        Ok(v1::DumpConntrackResponse {
            entries: per.into_iter().flatten().collect(),
        })
    }

    /// `flush-conntrack [BR] [zone=N]`.
    pub fn flush_conntrack(&self, bridge: &str, zone: Option<u32>) -> Result<u64, ApiError> {
        let filter = CtFilter {
            zone: zone_of(zone)?,
            ..CtFilter::default()
        };
        let n = self.each_bridge(bridge, |_, b| {
            b.dp.conntrack_if_made()
                .map_or(0, |ct| ct.flush(&filter) as u64)
        })?;
        Ok(n.into_iter().sum())
    }

    /// `ct-stats [BR]`.
    pub fn conntrack_stats(&self, bridge: &str) -> Result<Vec<v1::ConntrackStats>, ApiError> {
        self.each_bridge(bridge, |name, b| {
            let s =
                b.dp.conntrack_if_made()
                    .map(|ct| ct.stats())
                    .unwrap_or_default();
            stats_message(name, &s)
        })
    }
}

fn stats_message(bridge: &str, s: &CtStats) -> v1::ConntrackStats {
    let mut counters: std::collections::HashMap<String, u64> = [
        ("packets", s.packets),
        ("created", s.created),
        ("expired", s.expired),
        ("evicted", s.evicted),
        ("flushed", s.flushed),
        ("replaced", s.replaced),
        ("nat_rewritten", s.nat_rewritten),
        ("memory_bytes", s.memory_bytes),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in s.invalid.iter().chain(&s.refused).chain(&s.frags) {
        counters.insert((*k).to_string(), *v);
    }
    v1::ConntrackStats {
        bridge: bridge.to_string(),
        entries: s.entries,
        max_conns: s.max_conns,
        zones: s
            .per_zone_proto
            .iter()
            .map(|((zone, proto), n)| v1::ConntrackZoneCount {
                zone: *zone as u32,
                protocol: proto.clone(),
                entries: *n,
            })
            .collect(),
        counters,
    }
}
