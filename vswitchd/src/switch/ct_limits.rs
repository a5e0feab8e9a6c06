//! Connection-tracker limits (`ct-set-maxconns`, `ct-set-limits`, `ct-del-limits` and their
//! reads): stored with the bridge (`Bridge.ct_limits`), applied to its tracker when set and
//! when the bridge is restored.

use datapath::conntrack::CtConfig;
use datapath::pipeline::Datapath;
use proto::v1;

use super::Switch;
use crate::error::ApiError;

/// A zone number of a request, checked.
fn zone(z: u32, field: &str) -> Result<u16, ApiError> {
    u16::try_from(z).map_err(|_| ApiError::invalid(field, format!("zone {z}: must be 0..=65535")))
}

/// Checks a request as a whole: zones in range, none named twice.
fn check(req: &v1::SetConntrackLimitsRequest) -> Result<(), ApiError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, z) in req.zones.iter().enumerate() {
        let z = zone(z.zone, &format!("zones[{i}].zone"))?;
        if !seen.insert(z) {
            return Err(ApiError::invalid(
                format!("zones[{i}].zone"),
                format!("zone {z} is given twice"),
            ));
        }
    }
    for (i, z) in req.del_zones.iter().enumerate() {
        let z = zone(*z, &format!("del_zones[{i}]"))?;
        if !seen.insert(z) {
            return Err(ApiError::invalid(
                format!("del_zones[{i}]"),
                format!("zone {z} is both set and deleted, or deleted twice"),
            ));
        }
    }
    Ok(())
}

/// `req` laid over the stored limits.
fn merge(l: &mut v1::ConntrackLimits, req: &v1::SetConntrackLimitsRequest) {
    if req.max_conns.is_some() {
        l.max_conns = req.max_conns;
    }
    if let Some(d) = req.default_limit {
        l.default_limit = d;
    }
    l.zones.retain(|z| {
        !req.del_zones.contains(&z.zone) && !req.zones.iter().any(|n| n.zone == z.zone)
    });
    l.zones
        .extend(req.zones.iter().map(|z| v1::ConntrackZoneLimit {
            zone: z.zone,
            limit: z.limit,
            count: 0,
        }));
    l.zones.sort_by_key(|z| z.zone);
}

/// Applies stored limits to a bridge's tracker (making it if any limit is set); `del_zones`
/// go back to the default.
pub(super) fn apply(dp: &Datapath, l: Option<&v1::ConntrackLimits>, del_zones: &[u32]) {
    let Some(l) = l else { return };
    if l.max_conns.is_none() && l.default_limit == 0 && l.zones.is_empty() && del_zones.is_empty() {
        return;
    }
    let ct = dp.conntrack();
    if let Some(m) = l.max_conns {
        // Checked against the ceiling when set; a daemon restarted with a lower one clamps.
        let _ = ct.set_max_conns(m.min(ct.max_conns_ceiling()));
    }
    ct.set_default_zone_limit(l.default_limit);
    for z in del_zones {
        ct.set_zone_limit(*z as u16, None);
    }
    for z in &l.zones {
        ct.set_zone_limit(z.zone as u16, Some(z.limit));
    }
}

impl Switch {
    /// `ct-set-maxconns`, `ct-set-limits`, `ct-del-limits`: checked, stored (one
    /// transaction for every bridge it names), then applied.
    pub fn set_conntrack_limits(
        &self,
        req: &v1::SetConntrackLimitsRequest,
    ) -> Result<(), ApiError> {
        check(req)?;
        let mut bridges = self.bridges.lock();
        let names: Vec<String> = if req.bridge.is_empty() {
            bridges.keys().cloned().collect()
        } else if bridges.contains_key(&req.bridge) {
            vec![req.bridge.clone()]
        } else {
            return Err(ApiError::not_found(
                "bridge",
                format!("no bridge {}", req.bridge),
            ));
        };
        let mut recs = Vec::with_capacity(names.len());
        for n in &names {
            let b = &bridges[n];
            if let Some(m) = req.max_conns {
                let ceiling = b.dp.conntrack().max_conns_ceiling();
                if m > ceiling {
                    return Err(ApiError::invalid(
                        "max_conns",
                        format!("{m} is above this daemon's ceiling of {ceiling}"),
                    ));
                }
            }
            let mut rec = b.rec.clone();
            merge(rec.ct_limits.get_or_insert_with(Default::default), req);
            recs.push(rec);
        }
        let mut tx = self.store_txn()?;
        for r in &recs {
            tx.put_bridge(r)?;
        }
        tx.commit()?;
        for r in recs {
            let Some(b) = bridges.get_mut(&r.name) else {
                continue;
            };
            apply(&b.dp, r.ct_limits.as_ref(), &req.del_zones);
            b.rec = r;
        }
        Ok(())
    }

    /// `ct-get-limits [BR] [zone=Z...]`, `ct-get-maxconns [BR]`.
    pub fn conntrack_limits(
        &self,
        req: &v1::GetConntrackLimitsRequest,
    ) -> Result<Vec<v1::ConntrackLimits>, ApiError> {
        let zones: Vec<u16> = req
            .zones
            .iter()
            .enumerate()
            .map(|(i, z)| zone(*z, &format!("zones[{i}]")))
            .collect::<Result<_, _>>()?;
        self.each_bridge(&req.bridge, |name, b| {
            let stored = b.rec.ct_limits.clone().unwrap_or_default();
            let ct = b.dp.conntrack_if_made();
            let count = |z: u16| ct.as_ref().map_or(0, |c| u64::from(c.zone_limit(z).1));
            let max_conns = ct.as_ref().map_or_else(
                || stored.max_conns.unwrap_or(CtConfig::default().max_conns),
                |c| c.max_conns(),
            );
            let own = |z: u16| {
                stored
                    .zones
                    .iter()
                    .find(|l| l.zone == u32::from(z))
                    .map(|l| l.limit)
            };
            let listed: Vec<u16> = if zones.is_empty() {
                stored.zones.iter().map(|l| l.zone as u16).collect()
            } else {
                zones.clone()
            };
            v1::ConntrackLimits {
                bridge: name.to_string(),
                max_conns: Some(max_conns),
                default_limit: stored.default_limit,
                zones: listed
                    .into_iter()
                    .map(|z| v1::ConntrackZoneLimit {
                        zone: u32::from(z),
                        limit: own(z).unwrap_or(stored.default_limit),
                        count: count(z),
                    })
                    .collect(),
            }
        })
    }
}
