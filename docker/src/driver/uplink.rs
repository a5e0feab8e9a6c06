//! Networks' uplinks: the uplink port itself (recorded in the state, so one left by a
//! crash is removed), and the flows of `crate::publish` written as a difference.

use std::collections::{BTreeMap, HashMap};

use super::{Driver, DriverError};

impl Driver {
    /// Makes the host interface `uplink` a port of `bridge` (untagged: it is no network's
    /// VLAN; only the uplink's flows take its traffic). Recorded in the state first.
    pub(super) async fn ensure_uplink(
        &mut self,
        bridge: &str,
        uplink: &str,
    ) -> Result<(), DriverError> {
        let recorded = self
            .state
            .uplinks
            .get(bridge)
            .is_some_and(|s| s.contains(uplink));
        if !recorded {
            self.state
                .uplinks
                .entry(bridge.to_string())
                .or_default()
                .insert(uplink.to_string());
            self.store.save(&self.state)?;
        }
        let present = self
            .switch
            .ports(bridge)
            .await?
            .into_iter()
            .any(|p| p.name == uplink);
        if !present {
            self.switch
                .add_port(bridge, uplink, &self.cfg.port_type, HashMap::new())
                .await?;
        }
        Ok(())
    }

    /// Removes every recorded uplink port no network of the state uses any more (after
    /// its network's removal, or what a crash between the two left): deleted from the
    /// switch, then from the record.
    pub async fn prune_uplinks(&mut self) -> Result<Vec<String>, DriverError> {
        let mut removed = Vec::new();
        let recorded: Vec<(String, String)> = self
            .state
            .uplinks
            .iter()
            .flat_map(|(b, s)| s.iter().map(move |u| (b.clone(), u.clone())))
            .collect();
        for (bridge, uplink) in recorded {
            let used = self.state.networks.values().any(|n| {
                n.options.bridge == bridge && n.options.uplink.as_deref() == Some(&*uplink)
            });
            if used {
                continue;
            }
            match self.switch.del_port(&bridge, &uplink).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(s) = self.state.uplinks.get_mut(&bridge) {
                s.remove(&uplink);
                if s.is_empty() {
                    self.state.uplinks.remove(&bridge);
                }
            }
            self.store.save(&self.state)?;
            removed.push(uplink);
        }
        Ok(removed)
    }

    /// Makes the uplink flows of `bridge` (`crate::publish`) match the state: writes the
    /// difference with what the switch has, in one all-or-nothing write, and removes
    /// learned neighbours of external addresses no longer in use. Tells the resolver
    /// (`crate::neigh`) the bridge's external addresses.
    pub async fn sync_published(&mut self, bridge: &str) -> Result<(), DriverError> {
        use crate::overlay::flows::{delete_of, diff, insert_of};
        use crate::publish::{self as p, KIND_NEIGH};
        let ports = match self.switch.ports(bridge).await {
            Ok(ports) => ports.into_iter().map(|p| (p.name, p.port_no)).collect(),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let (want, addrs) = p::desired(&self.state, bridge, &ports).map_err(DriverError)?;
        let have = match self
            .switch
            .read_flows(bridge, crate::vswitch::COOKIE_BASE, p::PLUGIN_MASK)
            .await
        {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let (ours, neigh): (Vec<_>, Vec<_>) = have
            .into_iter()
            .filter(|f| p::is_publish_cookie(f.cookie))
            .partition(|f| p::kind_of(f.cookie) != KIND_NEIGH);
        let (inserts, mut deletes) = diff(&want, &ours);
        deletes.extend(
            neigh
                .into_iter()
                .filter(|f| !addrs.contains_key(&p::external_of(f.cookie))),
        );
        let resolved: BTreeMap<_, _> = addrs
            .iter()
            .filter_map(|(a, u)| Some((*a, (*u)?)))
            .collect();
        if resolved.is_empty() {
            self.uplink_bridges.lock().remove(bridge);
        } else {
            self.uplink_bridges
                .lock()
                .insert(bridge.to_string(), resolved);
        }
        if inserts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let mut updates: Vec<_> = deletes.iter().map(delete_of).collect();
        updates.extend(inserts.iter().map(insert_of));
        self.switch.write(bridge, updates).await?;
        tracing::debug!(
            %bridge,
            added = inserts.len(),
            removed = deletes.len(),
            "publishing flows written"
        );
        Ok(())
    }
}
