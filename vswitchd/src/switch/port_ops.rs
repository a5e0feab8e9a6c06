//! Port operations: add, remove, list, and change options.

use datapath::pipeline::PortConfig;
use datapath::types::PortNo;
use proto::v1::{self, stream_message_response as smr};

use super::Switch;
use super::mirrors::forget_port;
use super::model::{Overlay, apply_overlay, bridge_mut, live_desc, port_descs, retire_endpoints};
use super::ports::stage_add_port;
use super::spec::{PortKind, PortSpec};
use crate::error::ApiError;

impl Switch {
    /// Adds a port.
    pub fn add_port(&self, req: v1::AddPortRequest) -> Result<v1::PortDesc, ApiError> {
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let cfg = req
            .port
            .ok_or_else(|| ApiError::invalid("port", "port is required"))?;
        let mut ov = Overlay::default();
        let desc = b.dp.transaction(|txn| -> Result<v1::PortDesc, ApiError> {
            let desc = stage_add_port(txn, b, &cfg, &self.config, &mut ov)?;
            let mut tx = self.store_txn()?;
            tx.put_port(&req.bridge, &desc)?;
            tx.commit()?;
            Ok(desc)
        })?;
        let name = b.rec.name.clone();
        apply_overlay(b, ov);
        let endpoint = b
            .ports
            .get(&desc.name)
            .and_then(|p| p.kind())
            .is_some_and(PortKind::is_endpoint);
        // A new endpoint brings up the tunnel ports waiting for one.
        let events = if endpoint {
            self.follow_endpoints(&mut bridges)
        } else {
            Vec::new()
        };
        drop(bridges);
        self.emit(
            &name,
            smr::Update::PortStatus(v1::PortStatus {
                bridge: name.clone(),
                reason: v1::PortStatusReason::Add as i32,
                port: Some(desc.clone()),
            }),
        );
        for (name, u) in events {
            self.emit(&name, u);
        }
        Ok(desc)
    }

    /// Removes a port (flows that name it stay, as in OpenFlow).
    pub fn del_port(&self, req: v1::DelPortRequest) -> Result<(), ApiError> {
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let Some(p) = b.ports.get(&req.name) else {
            if req.if_exists {
                return Ok(());
            }
            return Err(ApiError::not_found(
                "name",
                format!("bridge {} has no port {}", req.bridge, req.name),
            ));
        };
        let desc = p.desc.clone();
        // The datapath's mirrors forget the port with it; the stored ones do the same.
        let mirrors = forget_port(&b.rec.mirrors, &req.name);
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            txn.del_port(PortNo(desc.port_no))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let mut tx = self.store_txn()?;
            tx.del_port(&req.bridge, &req.name)?;
            if let Some(m) = &mirrors {
                tx.put_bridge(&v1::Bridge {
                    mirrors: m.clone(),
                    ..b.rec.clone()
                })?;
            }
            tx.commit()?;
            Ok(())
        })?;
        if let Some(m) = mirrors {
            b.rec.mirrors = m;
        }
        let mut events = Vec::new();
        if let Some(p) = b.ports.remove(&req.name)
            && retire_endpoints(std::iter::once(&p))
        {
            events = self.follow_endpoints(&mut bridges);
        }
        drop(bridges);
        self.emit(
            &req.bridge,
            smr::Update::PortStatus(v1::PortStatus {
                bridge: req.bridge.clone(),
                reason: v1::PortStatusReason::Delete as i32,
                port: Some(desc),
            }),
        );
        for (name, u) in events {
            self.emit(&name, u);
        }
        Ok(())
    }

    /// Every port of a bridge.
    pub fn list_ports(&self, bridge: &str) -> Result<Vec<v1::PortDesc>, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        Ok(port_descs(b))
    }

    /// Sets or removes port options. The whole result is checked as AddPort checks it; the
    /// VLAN mode and rate control apply at once. The type's own options (`remote_ip`,
    /// `path`, ...) are stored and used when the port is next opened (a restart, or its
    /// interface coming back).
    pub fn set_port_options(
        &self,
        req: v1::SetPortOptionsRequest,
    ) -> Result<v1::PortDesc, ApiError> {
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        let p = b.ports.get(&req.name).ok_or_else(|| {
            ApiError::not_found(
                "name",
                format!("bridge {} has no port {}", req.bridge, req.name),
            )
        })?;
        let mut desc = p.desc.clone();
        for k in &req.remove {
            desc.options.remove(k);
        }
        for (k, v) in &req.options {
            desc.options.insert(k.clone(), v.clone());
        }
        let spec = PortSpec::parse(&desc.r#type, &desc.options)?;
        // Rebuilt only when its settings change: queued packets and bucket state survive
        // unrelated changes.
        let rate_control = if p.spec.as_ref().map(|s| &s.rate) != Some(&spec.rate) {
            Some(spec.rate.build(b.dp.now_ns())?)
        } else {
            None
        };
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            txn.set_port_vlan(PortNo(desc.port_no), spec.vlan.clone(), true)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            if let Some((policer, qos)) = rate_control {
                txn.set_port_qos(PortNo(desc.port_no), policer, qos)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
            }
            let mut tx = self.store_txn()?;
            tx.put_port(&req.bridge, &desc)?;
            tx.commit()?;
            Ok(())
        })?;
        if let Some(p) = b.ports.get_mut(&req.name) {
            p.desc = desc.clone();
            p.spec = Some(spec);
        }
        drop(bridges);
        self.emit(
            &req.bridge,
            smr::Update::PortStatus(v1::PortStatus {
                bridge: req.bridge.clone(),
                reason: v1::PortStatusReason::Modify as i32,
                port: Some(desc.clone()),
            }),
        );
        Ok(desc)
    }

    /// [`Switch::mod_port`] of the port named `name`.
    pub fn mod_port_named(
        &self,
        bridge: &str,
        name: &str,
        config: u32,
        mask: u32,
    ) -> Result<v1::PortDesc, ApiError> {
        let no = (self.bridges.lock().get(bridge))
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?
            .ports
            .get(name)
            .map(|p| p.desc.port_no)
            .ok_or_else(|| {
                ApiError::not_found("name", format!("bridge {bridge} has no port {name}"))
            })?;
        self.mod_port(bridge, no, config, mask)
    }

    /// Changes port `port_no`'s OpenFlow configuration bits selected by `mask` to those of
    /// `config` (OpenFlow's PORT_MOD; bits outside [`PortConfig::ALL`] are refused). The
    /// datapath applies them at once; they are not stored (a restart clears them, as in
    /// Open vSwitch). Connected controllers get a PORT_STATUS (MODIFY) when a bit changed.
    pub fn mod_port(
        &self,
        bridge: &str,
        port_no: u32,
        config: u32,
        mask: u32,
    ) -> Result<v1::PortDesc, ApiError> {
        if mask & !PortConfig::ALL != 0 {
            return Err(ApiError::invalid(
                "mask",
                format!(
                    "unsupported port configuration bits {:#x}",
                    mask & !PortConfig::ALL
                ),
            ));
        }
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        let p = (b.ports.values())
            .find(|p| p.desc.port_no == port_no)
            .ok_or_else(|| {
                ApiError::not_found("port", format!("bridge {bridge} has no port {port_no}"))
            })?;
        let no = PortNo(port_no);
        let old = b.dp.port_config(no).unwrap_or_default().0;
        let new = (old & !mask) | (config & mask);
        if new != old {
            b.dp.set_port_config(no, PortConfig(new))
                .map_err(|e| ApiError::internal(e.to_string()))?;
        }
        let desc = live_desc(b, p);
        drop(bridges);
        if new != old {
            self.emit(
                bridge,
                smr::Update::PortStatus(v1::PortStatus {
                    bridge: bridge.to_string(),
                    reason: v1::PortStatusReason::Modify as i32,
                    port: Some(desc.clone()),
                }),
            );
        }
        Ok(desc)
    }
}
