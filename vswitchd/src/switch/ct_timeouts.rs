//! Connection-tracker timeouts (`ct-set-timeouts`, `ct-get-timeouts`, `ct-del-timeouts`,
//! Open vSwitch's zone timeout policies): the bridge's and per zone, stored with the bridge
//! (`Bridge.ct_timeouts`, only what was set) and applied to its tracker when set and when
//! the bridge is restored. What is not set takes the default: a zone the bridge's, the
//! bridge Open vSwitch's. A connection takes a new timeout at its next packet.

use datapath::conntrack::{MAX_ZONE_POLICIES, Timeouts};
use datapath::pipeline::Datapath;
use proto::v1;

use super::Switch;
use crate::error::ApiError;

/// Timeouts with every attribute set.
fn full(t: Timeouts) -> v1::ConntrackTimeouts {
    v1::ConntrackTimeouts::from_attrs(t.to_array().map(Some))
}

/// `over`'s set attributes laid over `base`.
fn over(base: Timeouts, over: Option<&v1::ConntrackTimeouts>) -> Timeouts {
    let mut a = base.to_array();
    if let Some(o) = over {
        for (a, o) in a.iter_mut().zip(o.attrs()) {
            if let Some(o) = o {
                *a = o;
            }
        }
    }
    Timeouts::from_array(a)
}

/// The bridge's timeouts in effect and each zone's own.
fn effective(p: &v1::ConntrackTimeoutPolicies) -> (Timeouts, Vec<(u16, Timeouts)>) {
    let base = over(Timeouts::default(), p.default_timeouts.as_ref());
    let zones = p
        .zones
        .iter()
        .map(|z| (z.zone as u16, over(base, z.timeouts.as_ref())))
        .collect();
    (base, zones)
}

/// Checks a request as a whole.
fn check(req: &v1::SetConntrackTimeoutsRequest) -> Result<(), ApiError> {
    if let Some(z) = req.zone {
        u16::try_from(z)
            .map_err(|_| ApiError::invalid("zone", format!("{z}: must be 0..=65535")))?;
    }
    let t = req.timeouts.unwrap_or_default();
    if req.delete && !t.is_empty() {
        return Err(ApiError::invalid(
            "timeouts",
            "a delete names no timeouts (it removes them all)",
        ));
    }
    if !req.delete && t.is_empty() {
        return Err(ApiError::invalid("timeouts", "no timeout given"));
    }
    for (name, v) in proto::ct_timeouts::NAMES.iter().zip(t.attrs()) {
        if v == Some(0) {
            return Err(ApiError::invalid(
                format!("timeouts.{name}"),
                "a timeout is at least 1 second",
            ));
        }
    }
    Ok(())
}

/// `req` laid over the stored timeouts; `Err` when it would give too many zones their own.
fn merge(
    p: &mut v1::ConntrackTimeoutPolicies,
    req: &v1::SetConntrackTimeoutsRequest,
) -> Result<(), ApiError> {
    let t = req.timeouts.unwrap_or_default();
    match (req.zone, req.delete) {
        (None, true) => p.default_timeouts = None,
        (None, false) => {
            let cur = p.default_timeouts.unwrap_or_default();
            p.default_timeouts = Some(cur.overlaid(&t));
        }
        (Some(z), true) => p.zones.retain(|o| o.zone != z),
        (Some(z), false) => match p.zones.iter().position(|o| o.zone == z) {
            Some(i) => {
                let o = &mut p.zones[i];
                o.timeouts = Some(o.timeouts.unwrap_or_default().overlaid(&t));
            }
            None if p.zones.len() >= MAX_ZONE_POLICIES => {
                return Err(ApiError::invalid(
                    "zone",
                    format!("at most {MAX_ZONE_POLICIES} zones have timeouts of their own"),
                ));
            }
            None => {
                p.zones.push(v1::ConntrackZoneTimeouts {
                    zone: z,
                    timeouts: Some(t),
                });
                p.zones.sort_by_key(|o| o.zone);
            }
        },
    }
    Ok(())
}

/// Applies stored timeouts to a bridge's tracker (making it if any is set); `removed` zones
/// go back to the bridge's.
pub(super) fn apply(dp: &Datapath, p: Option<&v1::ConntrackTimeoutPolicies>, removed: &[u16]) {
    let p = p.cloned().unwrap_or_default();
    let untouched = p.default_timeouts.is_none() && p.zones.is_empty() && removed.is_empty();
    if untouched && dp.conntrack_if_made().is_none() {
        return;
    }
    let ct = dp.conntrack();
    let (base, zones) = effective(&p);
    ct.set_timeouts(base);
    for z in removed {
        // Removing never fails.
        let _ = ct.set_zone_timeouts(*z, None);
    }
    for (z, t) in zones {
        // Checked against the bound before it was stored; a daemon that stored more (none
        // does) keeps the zones it has room for.
        let _ = ct.set_zone_timeouts(z, Some(t));
    }
}

impl Switch {
    /// `ct-set-timeouts`, `ct-del-timeouts`: checked, stored (one transaction for every
    /// bridge it names), then applied.
    pub fn set_conntrack_timeouts(
        &self,
        req: &v1::SetConntrackTimeoutsRequest,
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
            let mut rec = bridges[n].rec.clone();
            merge(rec.ct_timeouts.get_or_insert_with(Default::default), req)?;
            recs.push(rec);
        }
        let mut tx = self.store_txn()?;
        for r in &recs {
            tx.put_bridge(r)?;
        }
        tx.commit()?;
        let removed: Vec<u16> = match (req.zone, req.delete) {
            (Some(z), true) => vec![z as u16],
            _ => Vec::new(),
        };
        for r in recs {
            let Some(b) = bridges.get_mut(&r.name) else {
                continue;
            };
            apply(&b.dp, r.ct_timeouts.as_ref(), &removed);
            b.rec = r;
        }
        Ok(())
    }

    /// `ct-get-timeouts [BR] [zone=N]`: every attribute at its value in effect.
    pub fn conntrack_timeouts(
        &self,
        req: &v1::GetConntrackTimeoutsRequest,
    ) -> Result<Vec<v1::ConntrackTimeoutPolicies>, ApiError> {
        let only = req
            .zone
            .map(|z| {
                u16::try_from(z)
                    .map_err(|_| ApiError::invalid("zone", format!("{z}: must be 0..=65535")))
            })
            .transpose()?;
        self.each_bridge(&req.bridge, |name, b| {
            let (base, zones) = effective(&b.rec.ct_timeouts.clone().unwrap_or_default());
            let zones = match only {
                Some(z) => vec![(z, zones.iter().find(|o| o.0 == z).map_or(base, |o| o.1))],
                None => zones,
            };
            v1::ConntrackTimeoutPolicies {
                bridge: name.to_string(),
                default_timeouts: Some(full(base)),
                zones: zones
                    .into_iter()
                    .map(|(z, t)| v1::ConntrackZoneTimeouts {
                        zone: u32::from(z),
                        timeouts: Some(full(t)),
                    })
                    .collect(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(zone: Option<u32>, t: &[(&str, u32)], delete: bool) -> v1::SetConntrackTimeoutsRequest {
        let mut timeouts = v1::ConntrackTimeouts::default();
        for (n, v) in t {
            assert!(timeouts.set(n, *v));
        }
        v1::SetConntrackTimeoutsRequest {
            bridge: "br0".into(),
            zone,
            timeouts: Some(timeouts),
            delete,
        }
    }

    #[test]
    fn zones_take_the_bridges_where_they_set_nothing() {
        let mut p = v1::ConntrackTimeoutPolicies::default();
        merge(&mut p, &req(None, &[("udp_first", 5)], false)).unwrap();
        merge(&mut p, &req(Some(7), &[("udp_single", 2)], false)).unwrap();
        merge(&mut p, &req(Some(7), &[("icmp_reply", 3)], false)).unwrap();
        let (base, zones) = effective(&p);
        assert_eq!(base.udp_first, 5);
        assert_eq!(base.udp_single, 60, "OVS's default");
        let z = zones[0].1;
        assert_eq!(
            (zones[0].0, z.udp_first, z.udp_single, z.icmp_reply),
            (7, 5, 2, 3)
        );
        merge(&mut p, &req(Some(7), &[], true)).unwrap();
        merge(&mut p, &req(None, &[], true)).unwrap();
        assert_eq!(effective(&p), (Timeouts::default(), vec![]));
    }

    #[test]
    fn bad_requests_are_refused_whole() {
        assert!(check(&req(Some(70_000), &[("udp_first", 5)], false)).is_err());
        assert!(check(&req(None, &[("udp_first", 0)], false)).is_err());
        assert!(check(&req(None, &[], false)).is_err());
        assert!(check(&req(Some(1), &[("udp_first", 5)], true)).is_err());
        let mut p = v1::ConntrackTimeoutPolicies::default();
        for z in 0..MAX_ZONE_POLICIES as u32 {
            merge(&mut p, &req(Some(z), &[("udp_first", 5)], false)).unwrap();
        }
        assert!(merge(&mut p, &req(Some(9999), &[("udp_first", 5)], false)).is_err());
        merge(&mut p, &req(Some(3), &[("udp_first", 6)], false)).unwrap();
    }
}
