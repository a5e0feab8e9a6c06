//! The network driver: what each libnetwork request does to the state, the host and the
//! switch.
//!
//! Isolation: every network is a VLAN on a shared bridge (default `br-docker`): each
//! endpoint's port, and the gateway port, is an access port (`tag=N`) of the network's
//! VLAN, and the bridge forwards with `NORMAL` (MAC learning per VLAN). One bridge means
//! one set of poll threads and caches for all networks, and a later uplink or VXLAN port
//! carries every network as a trunk; separate bridges per network would each need their
//! own threads. Per-network flows were the alternative: they would duplicate what
//! `NORMAL` with VLANs already does, and flood and learning would need more of them.
//!
//! Order of every change, for crash safety: the state is written first (durably), then
//! the host and the switch are changed; a removal is taken out of the state first, then
//! undone on the host and the switch. So anything the plugin made is in its state, or is
//! named with its prefix and not in its state, and [`crate::reconcile`] removes it.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::api::{self, Cidr, CreateEndpoint, CreateNetwork, EndpointRef, Id, JoinResponse, Mac};
use crate::host;
use crate::names::Prefix;
use crate::options::{Mode, NetOptions};
use crate::state::{Endpoint, Network, State, Store};
use crate::vswitch::Switch;

mod overlay;
mod uplink;
pub use overlay::DEFAULT_OVERLAY_MTU;

/// How the plugin is configured (its command line).
#[derive(Debug, Clone)]
pub struct Config {
    /// The bridge networks use unless `-o vswitch.bridge` says otherwise.
    pub bridge: String,
    /// Prefix of every interface and port name.
    pub prefix: Prefix,
    /// The switch port type of endpoints: `afxdp` or `afpacket`.
    pub port_type: String,
    /// Manage the host kernel's iptables rules: masquerade of networks' outbound traffic
    /// and isolation between their gateways.
    pub iptables: bool,
}

/// A refused request: the message is what the Docker user sees.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

impl From<crate::state::StateError> for DriverError {
    fn from(e: crate::state::StateError) -> DriverError {
        DriverError(format!("cannot save the plugin's state: {e}"))
    }
}
impl From<crate::vswitch::SwitchError> for DriverError {
    fn from(e: crate::vswitch::SwitchError) -> DriverError {
        DriverError(e.to_string())
    }
}
impl From<host::HostError> for DriverError {
    fn from(e: host::HostError) -> DriverError {
        DriverError(e.to_string())
    }
}
impl From<crate::options::OptionError> for DriverError {
    fn from(e: crate::options::OptionError) -> DriverError {
        DriverError(e.to_string())
    }
}

/// The driver: its configuration, its state (and where it is kept), and the switch.
#[derive(Debug)]
pub struct Driver {
    /// Configuration.
    pub cfg: Config,
    /// The state as last saved.
    pub state: State,
    /// Where it is saved.
    pub store: Store,
    /// The switch.
    pub switch: Switch,
    /// The interface index each gateway port had when its addresses were set: a different
    /// one means the switch re-created the device (after a restart) without them.
    pub gw_ifindex: HashMap<String, u32>,
    /// The cluster, when the plugin has one (`--etcd-endpoints`): overlay networks.
    pub overlay: Option<crate::overlay::Overlay>,
    /// Bridges with networks that have an uplink (the ARP responder serves them).
    pub uplink_bridges: crate::neigh::UplinkBridges,
}

/// Missing ids are answered with this.
fn missing(what: &str, req: &str) -> DriverError {
    DriverError(format!("{req}: the request has no {what}"))
}

impl Driver {
    /// A driver over a loaded state.
    pub fn new(cfg: Config, store: Store, switch: Switch) -> Result<Driver, DriverError> {
        let state = store.load()?;
        Ok(Driver {
            cfg,
            state,
            store,
            switch,
            gw_ifindex: HashMap::new(),
            overlay: None,
            uplink_bridges: Default::default(),
        })
    }

    fn network(&self, id: &Id) -> Result<&Network, DriverError> {
        self.state.networks.get(id).ok_or_else(|| {
            DriverError(format!(
                "network {id} is not known to the vswitch plugin (was its state directory \
                 removed?)"
            ))
        })
    }

    /// The switch port options of an endpoint of `net`.
    pub fn endpoint_port_options(net: &Network) -> HashMap<String, String> {
        let mut o = HashMap::from([("tag".to_string(), net.vlan.to_string())]);
        if let Some(k) = net.options.ingress_kbps {
            o.insert("ingress_policing_rate".into(), k.to_string());
        }
        o
    }

    /// NetworkDriver.CreateNetwork.
    pub async fn create_network(&mut self, req: CreateNetwork) -> Result<(), DriverError> {
        let id = req
            .network
            .clone()
            .ok_or_else(|| missing("NetworkID", "CreateNetwork"))?;
        let mut options = NetOptions::parse(&req.generic, &self.cfg.bridge)?;
        if req.ipv4.is_empty() && req.ipv6_data.is_empty() {
            return Err(DriverError(
                "CreateNetwork: no address pool (Docker's IPAM gives one)".into(),
            ));
        }
        if let Some(u) = &options.uplink {
            if req.internal {
                return Err(DriverError(format!(
                    "option vswitch.uplink={u}: an --internal network has no way out; leave \
                     the option out or the --internal"
                )));
            }
            if !host::exists(u) {
                return Err(DriverError(format!(
                    "option vswitch.uplink={u}: the host has no interface {u}"
                )));
            }
            if req.ipv4.iter().all(|p| p.gateway.is_none()) {
                return Err(DriverError(format!(
                    "option vswitch.uplink={u}: the network needs an IPv4 gateway"
                )));
            }
        }
        crate::publish::check_network(
            &self.state,
            &id,
            &options,
            &req.ipv4.iter().map(|p| p.pool).collect::<Vec<_>>(),
        )
        .map_err(DriverError)?;
        if req.ipv6 && req.ipv6_data.is_empty() {
            return Err(DriverError(
                "--ipv6 needs an IPv6 pool: give --subnet with an IPv6 prefix".into(),
            ));
        }
        let vlan = match options.vlan {
            Some(v) => {
                if let Some(other) = self.state.vlan_owner(&options.bridge, v)
                    && other != &id
                {
                    return Err(DriverError(format!(
                        "option vswitch.vlan={v}: VLAN {v} on bridge {} is used by network \
                         {other}; choose another 1..=4094 or leave it out",
                        options.bridge
                    )));
                }
                v
            }
            None => match self.state.networks.get(&id) {
                Some(n) => n.vlan,
                None => self.state.free_vlan(&options.bridge).ok_or_else(|| {
                    DriverError(format!(
                        "bridge {}: all 4094 VLANs are used",
                        options.bridge
                    ))
                })?,
            },
        };
        if let Some(old) = self.state.networks.get(&id) {
            if old.options.mode == options.mode
                && old.ipv4 == req.ipv4
                && old.ipv6_data == req.ipv6_data
            {
                return Ok(()); // a retry
            }
            return Err(DriverError(format!(
                "network {id} exists with other settings"
            )));
        }
        // The switch first answers (fast) whether it is there at all.
        self.switch.ensure_bridge(&options.bridge).await?;
        let overlay = match options.mode {
            Mode::Overlay => Some(self.define_overlay(&id, &req, &mut options).await?),
            Mode::Bridge => None,
        };
        let net = Network {
            gateway_port: (!req.internal).then(|| self.cfg.prefix.gateway(&id)),
            options,
            vlan,
            internal: req.internal,
            ipv6: req.ipv6,
            ipv4: req.ipv4,
            ipv6_data: req.ipv6_data,
            overlay,
        };
        self.state.networks.insert(id.clone(), net.clone());
        if let Err(e) = self.store.save(&self.state) {
            self.state.networks.remove(&id);
            if let Some(o) = &net.overlay {
                self.leave_overlay(&o.nkey).await;
            }
            return Err(e.into());
        }
        if let Err(e) = self.apply_network(&id, &net).await {
            self.state.networks.remove(&id);
            self.store.save(&self.state)?;
            let _ = self.remove_network_parts(&id, &net).await;
            if let Some(o) = &net.overlay {
                self.leave_overlay(&o.nkey).await;
            }
            return Err(e);
        }
        self.publish_local();
        tracing::info!(network = %id, vlan, bridge = %net.options.bridge, "network created");
        Ok(())
    }

    /// Makes the host and the switch match one network of the state: its gateway port,
    /// addresses and masquerade rules. Idempotent.
    pub async fn apply_network(&mut self, id: &Id, net: &Network) -> Result<(), DriverError> {
        let Some(gw) = &net.gateway_port else {
            return Ok(());
        };
        let opts = HashMap::from([("tag".to_string(), net.vlan.to_string())]);
        let present = self
            .switch
            .ports(&net.options.bridge)
            .await?
            .into_iter()
            .any(|p| &p.name == gw);
        if !present {
            self.switch
                .add_port(&net.options.bridge, gw, "internal", opts)
                .await?;
        }
        self.ensure_gateway_host(gw, net).await?;
        if self.cfg.iptables {
            // With an uplink the switch masquerades (`crate::publish`): no kernel NAT.
            let pools = match net.options.uplink {
                Some(_) => Vec::new(),
                None => net.v4_pools(),
            };
            host::masquerade_on(self.cfg.prefix.as_str(), id.as_str(), gw, &pools).await?;
        }
        if let Some(u) = &net.options.uplink {
            self.ensure_uplink(&net.options.bridge, u).await?;
            self.sync_published(&net.options.bridge).await?;
        }
        Ok(())
    }

    /// Puts the gateway addresses on the gateway port's interface, unless they were put
    /// on this very device already.
    pub async fn ensure_gateway_host(
        &mut self,
        gw: &str,
        net: &Network,
    ) -> Result<(), DriverError> {
        let Some(index) = host::ifindex(gw) else {
            return Err(DriverError(format!(
                "the switch has the gateway port {gw} but the host has no interface {gw}"
            )));
        };
        if self.gw_ifindex.get(gw) == Some(&index) {
            return Ok(());
        }
        let mac = Self::gateway_mac(net).unwrap_or_else(|| choose_mac(None, ""));
        host::configure_gateway(gw, mac, &net.gateways(), net.options.mtu).await?;
        if let Some(a) = net.options.external_ip {
            host::route_external(gw, a, crate::publish::external_mac(a)).await?;
        }
        self.gw_ifindex.insert(gw.to_string(), index);
        Ok(())
    }

    async fn remove_network_parts(&mut self, id: &Id, net: &Network) -> Result<(), DriverError> {
        if let Some(gw) = &net.gateway_port {
            self.switch.del_port(&net.options.bridge, gw).await?;
            host::delete_link(gw).await?;
            self.gw_ifindex.remove(gw);
        }
        if self.cfg.iptables {
            host::masquerade_prune(self.cfg.prefix.as_str(), |n| n != id.as_str()).await?;
        }
        if net.options.uplink.is_some() {
            let bridge = &net.options.bridge;
            self.sync_published(bridge).await?;
            self.prune_uplinks().await?;
        }
        Ok(())
    }

    /// NetworkDriver.DeleteNetwork. Endpoints Docker did not delete first go with it.
    pub async fn delete_network(&mut self, network: Option<Id>) -> Result<(), DriverError> {
        let Some(id) = network else {
            tracing::warn!("DeleteNetwork without a NetworkID: nothing to do");
            return Ok(());
        };
        let Some(net) = self.state.networks.remove(&id) else {
            return Ok(());
        };
        let eps: Vec<(Id, Endpoint)> = self
            .state
            .endpoints_of(&id)
            .map(|(i, e)| (i.clone(), e.clone()))
            .collect();
        for (eid, _) in &eps {
            self.state.endpoints.remove(eid);
        }
        self.store.save(&self.state)?;
        self.publish_local();
        for (eid, ep) in &eps {
            self.remove_endpoint_parts(&net, ep).await?;
            if let Some(o) = &net.overlay {
                self.deregister_overlay_endpoint(o, eid, &ep.mac).await;
            }
        }
        self.remove_network_parts(&id, &net).await?;
        if let Some(o) = &net.overlay {
            self.leave_overlay(&o.nkey).await;
        }
        tracing::info!(network = %id, "network deleted");
        Ok(())
    }

    /// NetworkDriver.CreateEndpoint. Returns the MAC address when the driver chose it.
    pub async fn create_endpoint(
        &mut self,
        req: CreateEndpoint,
    ) -> Result<Option<Mac>, DriverError> {
        let nid = req
            .network
            .clone()
            .ok_or_else(|| missing("NetworkID", "CreateEndpoint"))?;
        let eid = req
            .endpoint
            .clone()
            .ok_or_else(|| missing("EndpointID", "CreateEndpoint"))?;
        let net = self.network(&nid)?.clone();
        for (a, what) in [(req.address, "IPv4"), (req.address_v6, "IPv6")] {
            if let Some(a) = a {
                let pools = if a.addr.is_ipv4() {
                    &net.ipv4
                } else {
                    &net.ipv6_data
                };
                if !pools.iter().any(|p| p.pool.contains(a.addr)) {
                    return Err(DriverError(format!(
                        "{what} address {a} is outside the network's pools"
                    )));
                }
            }
        }
        let chosen = req.mac.is_none();
        let mac = req
            .mac
            .unwrap_or_else(|| choose_mac(req.address, eid.as_str()));
        let ep = Endpoint {
            network: nid.clone(),
            port: self.cfg.prefix.port(&eid),
            inner: self.cfg.prefix.inner(&eid),
            mac,
            address: req.address,
            address_v6: req.address_v6,
            sandbox: None,
            port_map: Vec::new(),
        };
        if let Some(old) = self.state.endpoints.get(&eid) {
            if old.network == nid && old.port == ep.port {
                return Ok(chosen.then_some(old.mac)); // a retry
            }
            return Err(DriverError(format!(
                "endpoint {eid} exists on another network"
            )));
        }
        if let Some((other, _)) = self.state.endpoints.iter().find(|(_, e)| e.port == ep.port) {
            return Err(DriverError(format!(
                "endpoint {eid}: interface name {} is taken by endpoint {other}",
                ep.port
            )));
        }
        if net.overlay.is_some() {
            // Refused at once, before anything is made, while etcd is unreachable.
            self.overlay_record(&ep)?;
        }
        self.state.endpoints.insert(eid.clone(), ep.clone());
        self.store.save(&self.state)?;
        if let Some(o) = &net.overlay
            && let Err(e) = self.register_overlay_endpoint(o, &eid, &ep).await
        {
            self.state.endpoints.remove(&eid);
            self.store.save(&self.state)?;
            return Err(e);
        }
        if let Err(e) = self.apply_endpoint(&net, &ep, true).await {
            self.state.endpoints.remove(&eid);
            self.store.save(&self.state)?;
            let _ = self.remove_endpoint_parts(&net, &ep).await;
            if let Some(o) = &net.overlay {
                self.deregister_overlay_endpoint(o, &eid, &ep.mac).await;
            }
            return Err(e);
        }
        self.publish_local();
        tracing::info!(endpoint = %eid, port = %ep.port, address = ?ep.address, "endpoint created");
        Ok(chosen.then_some(mac))
    }

    /// Makes the host and the switch match one endpoint: its veth pair (re-created only
    /// when `create` or when neither end exists and it is not in a container), its switch
    /// port with the network's options, its queue flow. Idempotent.
    pub async fn apply_endpoint(
        &mut self,
        net: &Network,
        ep: &Endpoint,
        create: bool,
    ) -> Result<(), DriverError> {
        let outer_there = host::exists(&ep.port);
        if create || (!outer_there && ep.sandbox.is_none()) {
            host::create_veth(&ep.port, &ep.inner, ep.mac, net.options.mtu).await?;
        }
        let bridge = net.options.bridge.clone();
        let want = Self::endpoint_port_options(net);
        let existing = self
            .switch
            .ports(&bridge)
            .await?
            .into_iter()
            .find(|p| p.name == ep.port);
        match existing {
            None => {
                self.switch
                    .add_port(&bridge, &ep.port, &self.cfg.port_type, want)
                    .await?;
            }
            Some(p) => {
                let remove: Vec<String> = p
                    .options
                    .keys()
                    .filter(|k| !want.contains_key(*k) && *k != "xdp-mode" && *k != "n-rxq")
                    .cloned()
                    .collect();
                let differs = want.iter().any(|(k, v)| p.options.get(k) != Some(v));
                if differs || !remove.is_empty() {
                    self.switch
                        .set_port_options(&bridge, &ep.port, want, remove)
                        .await?;
                }
            }
        }
        // An overlay endpoint's queue is chosen by the agent's flow of its port.
        if let Some(q) = net.options.priority
            && net.overlay.is_none()
        {
            self.switch
                .set_queue_flow(&bridge, &ep.port, Some(q))
                .await?;
        }
        Ok(())
    }

    async fn remove_endpoint_parts(
        &mut self,
        net: &Network,
        ep: &Endpoint,
    ) -> Result<(), DriverError> {
        if net.options.priority.is_some() {
            self.switch
                .set_queue_flow(&net.options.bridge, &ep.port, None)
                .await?;
        }
        self.switch.del_port(&net.options.bridge, &ep.port).await?;
        host::delete_link(&ep.port).await?;
        host::delete_link(&ep.inner).await?;
        Ok(())
    }

    /// NetworkDriver.DeleteEndpoint.
    pub async fn delete_endpoint(&mut self, req: EndpointRef) -> Result<(), DriverError> {
        let Some(eid) = req.endpoint else {
            tracing::warn!("DeleteEndpoint without an EndpointID: nothing to do");
            return Ok(());
        };
        let Some(ep) = self.state.endpoints.remove(&eid) else {
            return Ok(());
        };
        self.store.save(&self.state)?;
        self.publish_local();
        if let Some(net) = self.state.networks.get(&ep.network).cloned() {
            if net.options.uplink.is_some() {
                self.sync_published(&net.options.bridge).await?;
            }
            self.remove_endpoint_parts(&net, &ep).await?;
            if let Some(o) = &net.overlay {
                self.deregister_overlay_endpoint(o, &eid, &ep.mac).await;
            }
        } else {
            host::delete_link(&ep.port).await?;
        }
        tracing::info!(endpoint = %eid, "endpoint deleted");
        Ok(())
    }

    /// NetworkDriver.EndpointOperInfo: what the switch made of the endpoint.
    pub fn endpoint_info(&self, req: &EndpointRef) -> Result<Value, DriverError> {
        let eid = req
            .endpoint
            .as_ref()
            .ok_or_else(|| missing("EndpointID", "EndpointOperInfo"))?;
        let Some(ep) = self.state.endpoints.get(eid) else {
            return Ok(serde_json::json!({ "Value": {} }));
        };
        let net = self.network(&ep.network)?;
        let mut v = serde_json::json!({
            "vswitch.bridge": net.options.bridge,
            "vswitch.port": ep.port,
            "vswitch.vlan": net.vlan.to_string(),
            "vswitch.mac": ep.mac.to_string(),
        });
        if let Some(o) = &net.overlay {
            v["vswitch.vni"] = Value::String(o.vni.to_string());
        }
        Ok(serde_json::json!({ "Value": v }))
    }

    /// NetworkDriver.Join: the interface Docker moves into the container, and its gateway.
    pub async fn join(&mut self, req: api::Join) -> Result<JoinResponse, DriverError> {
        let eid = req
            .endpoint
            .clone()
            .ok_or_else(|| missing("EndpointID", "Join"))?;
        let mut ep = self
            .state
            .endpoints
            .get(&eid)
            .cloned()
            .ok_or_else(|| DriverError(format!("Join: endpoint {eid} is not known")))?;
        let net = self.network(&ep.network)?.clone();
        if !host::exists(&ep.inner) {
            // Lost (a crash between create and join, or a host change): make it again.
            host::create_veth(&ep.port, &ep.inner, ep.mac, net.options.mtu).await?;
        }
        ep.sandbox = Some(req.sandbox_key.clone());
        self.state.endpoints.insert(eid.clone(), ep.clone());
        self.store.save(&self.state)?;
        if net.options.uplink.is_some() {
            // Its way out (masquerade) and delivery flows.
            self.sync_published(&net.options.bridge).await?;
        }
        let gw = |v6: bool| -> Option<IpAddr> {
            if net.internal {
                return None;
            }
            let pools = if v6 { &net.ipv6_data } else { &net.ipv4 };
            pools.iter().find_map(|p| p.gateway.map(|g| g.addr))
        };
        tracing::info!(endpoint = %eid, sandbox = %req.sandbox_key, "joined");
        Ok(JoinResponse {
            src_name: ep.inner.clone(),
            dst_prefix: "eth".into(),
            gateway: ep.address.and_then(|_| gw(false)),
            gateway_v6: ep.address_v6.and_then(|_| gw(true)),
            disable_gateway_service: net.internal,
        })
    }

    /// NetworkDriver.Leave.
    pub async fn leave(&mut self, req: EndpointRef) -> Result<(), DriverError> {
        let Some(eid) = req.endpoint else {
            tracing::warn!("Leave without an EndpointID: nothing to do");
            return Ok(());
        };
        if let Some(ep) = self.state.endpoints.get_mut(&eid) {
            ep.sandbox = None;
            let nid = ep.network.clone();
            self.store.save(&self.state)?;
            if let Some(net) = self.state.networks.get(&nid).cloned()
                && net.options.uplink.is_some()
            {
                self.sync_published(&net.options.bridge).await?;
            }
        }
        tracing::info!(endpoint = %eid, "left");
        Ok(())
    }

    /// NetworkDriver.ProgramExternalConnectivity: `-p` mappings, served by DNAT in the
    /// switch on the network's uplink (`crate::publish`); refused, saying which options
    /// are missing, on a network without one.
    pub async fn program_external(
        &mut self,
        req: api::ExternalConnectivity,
    ) -> Result<(), DriverError> {
        let Some(eid) = req.endpoint else {
            return Err(missing("EndpointID", "ProgramExternalConnectivity"));
        };
        let Some(ep) = self.state.endpoints.get(&eid).cloned() else {
            return Err(DriverError(format!(
                "ProgramExternalConnectivity: endpoint {eid} is not known"
            )));
        };
        crate::publish::check_mappings(&self.state, &ep.network, &eid, &ep, &req.port_map)
            .map_err(DriverError)?;
        if ep.port_map != req.port_map {
            if let Some(e) = self.state.endpoints.get_mut(&eid) {
                e.port_map = req.port_map.clone();
            }
            self.store.save(&self.state)?;
        }
        let net = self.network(&ep.network)?.clone();
        if net.options.uplink.is_some() {
            self.sync_published(&net.options.bridge).await?;
        }
        if !req.port_map.is_empty() {
            let list: Vec<String> = req
                .port_map
                .iter()
                .map(|m| format!("{:?} {}->{}", m.proto, m.host_port, m.port))
                .collect();
            tracing::info!(
                endpoint = %eid,
                external_ip = ?net.options.external_ip,
                mappings = %list.join(", "),
                "ports published"
            );
        }
        Ok(())
    }

    /// NetworkDriver.RevokeExternalConnectivity: the endpoint's `-p` flows go.
    pub async fn revoke_external(&mut self, req: EndpointRef) -> Result<(), DriverError> {
        let Some(eid) = req.endpoint else {
            return Ok(());
        };
        let Some(ep) = self.state.endpoints.get_mut(&eid) else {
            return Ok(());
        };
        if ep.port_map.is_empty() {
            return Ok(());
        }
        ep.port_map.clear();
        let nid = ep.network.clone();
        self.store.save(&self.state)?;
        if let Some(net) = self.state.networks.get(&nid).cloned()
            && net.options.uplink.is_some()
        {
            self.sync_published(&net.options.bridge).await?;
        }
        Ok(())
    }
}

/// The MAC address of an endpoint Docker gave none (or of a gateway): from its IPv4
/// address as Docker's bridge driver does, else from the hex digits of its id.
fn choose_mac(address: Option<Cidr>, id_hex: &str) -> Mac {
    if let Some(Cidr {
        addr: IpAddr::V4(a),
        ..
    }) = address
    {
        return Mac::from_ipv4(a);
    }
    let mut m = [0x02, 0x42, 0, 0, 0, 0];
    for (i, b) in id_hex.as_bytes().chunks(2).take(4).enumerate() {
        m[2 + i] = std::str::from_utf8(b)
            .ok()
            .and_then(|s| u8::from_str_radix(s, 16).ok())
            .unwrap_or(0);
    }
    Mac(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_local_unicast_and_stable() {
        let m = choose_mac(None, "0a1b2c3d4e");
        assert_eq!(m.to_string(), "02:42:0a:1b:2c:3d");
        let m = choose_mac(Some("172.18.0.5/16".parse().unwrap()), "0a1b");
        assert_eq!(m.to_string(), "02:42:ac:12:00:05");
    }
}
