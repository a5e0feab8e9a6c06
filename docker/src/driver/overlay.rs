//! What the network driver does for overlay networks (`-o vswitch.mode=overlay`), beside
//! what it does for every network: the definition in etcd (one VNI cluster-wide), this
//! host's attachment, and its endpoints in the registry under the host's lease. The agent
//! (`crate::overlay::agent`) does the rest from what [`Driver::publish_local`] tells it.
//!
//! Order: a network is defined and attached in etcd before it is saved locally (the VNI
//! is needed first); an endpoint is saved locally, then registered, then made on the
//! host and the switch, and taken out again in reverse order if a step fails. Without
//! etcd, new overlay networks and endpoints are refused, naming etcd; removals go ahead
//! locally and the agent removes the registrations when etcd is back.

use std::net::IpAddr;

use super::{Driver, DriverError, choose_mac};
use crate::api::{CreateNetwork, Id, Mac};
use crate::options::NetOptions;
use crate::overlay::schema::{EndpointRecord, FORMAT, NetworkDef};
use crate::overlay::{Local, LocalEpSpec, LocalNetSpec, Overlay};
use crate::state::{Endpoint, Network, OverlayNet};

/// The MTU of an overlay network's interfaces unless `vswitch.mtu` says otherwise: a
/// 1500-byte underlay less VXLAN's 50 bytes.
pub const DEFAULT_OVERLAY_MTU: u32 = 1450;

impl From<crate::overlay::cluster::ClusterError> for DriverError {
    fn from(e: crate::overlay::cluster::ClusterError) -> DriverError {
        DriverError(e.to_string())
    }
}

impl Driver {
    /// The overlay, or why there is none.
    fn overlay(&self) -> Result<&Overlay, DriverError> {
        self.overlay.as_ref().ok_or_else(|| {
            DriverError(
                "option vswitch.mode=overlay: this plugin has no cluster; start it with \
                 --etcd-endpoints URL[,URL...] and --vtep-bridge BR"
                    .into(),
            )
        })
    }

    /// Defines (or finds) overlay network `req` cluster-wide and attaches this host to it.
    /// Sets the MTU in `options`.
    pub(super) async fn define_overlay(
        &mut self,
        id: &Id,
        req: &CreateNetwork,
        options: &mut NetOptions,
    ) -> Result<OverlayNet, DriverError> {
        let ov = self.overlay()?.clone();
        if options.bridge != ov.cfg.bridge {
            return Err(DriverError(format!(
                "option vswitch.bridge={}: overlay networks are on the plugin's bridge {} \
                 (where its VXLAN port is)",
                options.bridge, ov.cfg.bridge
            )));
        }
        let want = NetworkDef {
            format: FORMAT,
            vni: 0,
            ipv4: req.ipv4.clone(),
            ipv6_data: req.ipv6_data.clone(),
            ipv6: req.ipv6,
            internal: req.internal,
            mtu: options.mtu.unwrap_or(DEFAULT_OVERLAY_MTU),
            created_by: ov.host().clone(),
        };
        let nkey = want
            .key()
            .ok_or_else(|| DriverError("an overlay network needs an address pool".into()))?;
        if let Some((other, _)) = self
            .state
            .networks
            .iter()
            .find(|(i, n)| *i != id && n.overlay.as_ref().is_some_and(|o| o.nkey == nkey))
        {
            return Err(DriverError(format!(
                "overlay network {} is already network {other} on this host",
                nkey.replace('_', "/")
            )));
        }
        let def = ov.cluster.define_network(&want).await?;
        ov.cluster.attach(&nkey).await?;
        options.mtu = Some(def.mtu);
        tracing::info!(network = %id, overlay = %nkey, vni = def.vni, "overlay network attached");
        Ok(OverlayNet { nkey, vni: def.vni })
    }

    /// Lets go of overlay network `nkey` in etcd (later, when etcd is unreachable now).
    pub(super) async fn leave_overlay(&mut self, nkey: &str) {
        let Some(ov) = self.overlay.clone() else {
            return;
        };
        if let Err(e) = ov.cluster.detach(nkey).await {
            tracing::warn!(overlay = %nkey, "leaving the overlay network: {e} (again later)");
            ov.shared.pending_detach.lock().insert(nkey.to_string());
        }
    }

    /// The registry record of `ep` and the lease to put it under; refused (naming etcd)
    /// while this host has no lease or no tunnel endpoint.
    pub(super) fn overlay_record(
        &self,
        ep: &Endpoint,
    ) -> Result<(EndpointRecord, i64), DriverError> {
        let ov = self.overlay()?;
        let lease = ov.lease().map_err(DriverError)?;
        let vtep = ov.vtep().map_err(DriverError)?;
        let v4 = match ep.address.map(|a| a.addr) {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let v6 = match ep.address_v6.map(|a| a.addr) {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        };
        if v4.is_none() && v6.is_none() {
            return Err(DriverError(
                "an endpoint of an overlay network needs an address (from IPAM)".into(),
            ));
        }
        let rec = EndpointRecord {
            format: FORMAT,
            mac: ep.mac,
            ipv4: v4,
            ipv6: v6,
            vtep,
        };
        Ok((rec, lease))
    }

    /// Publishes endpoint `eid` in the registry.
    pub(super) async fn register_overlay_endpoint(
        &self,
        o: &OverlayNet,
        eid: &Id,
        ep: &Endpoint,
    ) -> Result<(), DriverError> {
        let (rec, lease) = self.overlay_record(ep)?;
        let ov = self.overlay()?;
        ov.cluster
            .register_endpoint(&o.nkey, eid, &rec, lease)
            .await
            .map_err(|e| match e {
                crate::overlay::cluster::ClusterError::Conflict(m) => DriverError(format!(
                    "{m}; two hosts gave out the same address? overlay networks need the \
                     cluster-wide IPAM: --ipam-driver vswitch"
                )),
                e => e.into(),
            })
    }

    /// Takes endpoint `eid` out of the registry; when etcd is unreachable the agent does it
    /// later (the endpoint is no longer local).
    pub(super) async fn deregister_overlay_endpoint(&self, o: &OverlayNet, eid: &Id, mac: &Mac) {
        let Some(ov) = &self.overlay else { return };
        if let Err(e) = ov.cluster.deregister_endpoint(&o.nkey, eid, mac).await {
            tracing::warn!(endpoint = %eid, "leaving the registry: {e} (again later)");
        }
    }

    /// The MAC address of a network's gateway port (fixed: from its IPv4 address, else from
    /// the network's id).
    pub fn gateway_mac(net: &Network) -> Option<Mac> {
        let gw = net.gateway_port.as_ref()?;
        let v4 = net.ipv4.iter().find_map(|p| p.gateway);
        // The name ends with the network id's digits.
        let seed = gw.rsplit('g').next().unwrap_or_default();
        Some(choose_mac(v4, seed))
    }

    /// Tells the agent this host's overlay networks and endpoints, as the state has them.
    pub fn publish_local(&self) {
        let Some(ov) = &self.overlay else { return };
        let mut local = Local::default();
        for n in self.state.networks.values() {
            let Some(o) = &n.overlay else { continue };
            let mac = Self::gateway_mac(n);
            let gw = |v6: bool| {
                let pools = if v6 { &n.ipv6_data } else { &n.ipv4 };
                pools.iter().find_map(|p| p.gateway.map(|g| g.addr))
            };
            let spec = LocalNetSpec {
                vni: o.vni,
                gateway: match (gw(false), mac) {
                    (Some(IpAddr::V4(a)), Some(m)) => Some((a, m)),
                    _ => None,
                },
                gateway_v6: match (gw(true), mac) {
                    (Some(IpAddr::V6(a)), Some(m)) => Some((a, m)),
                    _ => None,
                },
                queue: n.options.priority,
            };
            local.nets.insert(o.nkey.clone(), spec);
        }
        for (eid, e) in &self.state.endpoints {
            let Some(o) = self
                .state
                .networks
                .get(&e.network)
                .and_then(|n| n.overlay.as_ref())
            else {
                continue;
            };
            local.eps.insert(
                eid.clone(),
                LocalEpSpec {
                    nkey: o.nkey.clone(),
                    port: e.port.clone(),
                    mac: e.mac,
                    ipv4: match e.address.map(|a| a.addr) {
                        Some(IpAddr::V4(a)) => Some(a),
                        _ => None,
                    },
                    ipv6: match e.address_v6.map(|a| a.addr) {
                        Some(IpAddr::V6(a)) => Some(a),
                        _ => None,
                    },
                    addresses: e
                        .address
                        .iter()
                        .chain(&e.address_v6)
                        .filter_map(|a| {
                            let net = self.state.networks.get(&e.network)?;
                            let pool = net
                                .ipv4
                                .iter()
                                .chain(&net.ipv6_data)
                                .find(|d| d.pool.contains(a.addr))?;
                            Some((pool.pool.network(), a.addr))
                        })
                        .collect(),
                },
            );
        }
        ov.set_local(local);
    }
}
