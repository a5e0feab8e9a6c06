//! Opening ports from their [`PortSpec`] and staging a port addition on a draft datapath.

use std::sync::Arc;

use datapath::port::{
    AfPacketError, AfPacketPort, AfXdpError, AfXdpPort, MemPort, Port, TapError, TapPort,
    VhostError, VhostUserPort,
};
use datapath::types::PortNo;
use proto::flow_text;
use proto::v1;

use super::config::SwitchConfig;
use super::model::{Bridge, Opened, Overlay, PortState};
use super::spec::{PortKind, PortSpec};
use crate::error::ApiError;
use crate::tunnel::{OpenError, TunnelSpec};

/// Opens a port of `kind` named `name`: what depends on the machine (the interface, the
/// endpoint, DPDK) is checked here.
pub(super) fn open_port(
    name: &str,
    kind: &PortKind,
    cfg: &SwitchConfig,
) -> Result<Opened, ApiError> {
    let port: Arc<dyn Port> = match kind {
        PortKind::Memory => {
            let m = Arc::new(MemPort::new(name, cfg.memory_port_capacity));
            return Ok((Arc::clone(&m) as Arc<dyn Port>, Some(m)));
        }
        // `internal`: the bridge's own interface in the host stack, as in OVS; here a TAP
        // device named after the port.
        PortKind::Tap | PortKind::Internal => {
            Arc::new(TapPort::create(name).map_err(|e| match e {
                TapError::BadName(_) => ApiError::invalid("port.name", e.to_string()),
                e => ApiError::precondition("port", e.to_string()),
            })?)
        }
        PortKind::AfPacket => Arc::new(AfPacketPort::open(name).map_err(|e| match e {
            AfPacketError::NoSuchInterface(_) => ApiError::precondition("port.name", e.to_string()),
            e => ApiError::precondition("port", e.to_string()),
        })?),
        PortKind::AfXdp { mode, n_rxq } => {
            Arc::new(AfXdpPort::open(name, *n_rxq, *mode).map_err(|e| match e {
                AfXdpError::NoSuchInterface(_) => {
                    ApiError::precondition("port.name", e.to_string())
                }
                e => ApiError::precondition("port", e.to_string()),
            })?)
        }
        PortKind::TunnelEndpoint(spec) => Arc::new(datapath::tunnel::EndpointPort(
            crate::tunnel::open_endpoint(name, spec, &cfg.tunnels)?,
        )),
        PortKind::Vxlan(spec) | PortKind::Gre(spec) => open_tunnel(name, spec, cfg)?,
        PortKind::VhostUser { path, mode, n_rxq } => Arc::new(
            VhostUserPort::new(name, path, *mode, *n_rxq).map_err(|e| match e {
                VhostError::NoDirectory(_) | VhostError::NotASocket(_) => {
                    ApiError::precondition("port.options.path", e.to_string())
                }
                e => ApiError::precondition("port", e.to_string()),
            })?,
        ),
        #[cfg(feature = "dpdk")]
        PortKind::Dpdk { devargs, n_rxq } => {
            cfg.dpdk
                .init()
                .map_err(|e| ApiError::precondition("port", e.to_string()))?;
            Arc::new(
                datapath::port::DpdkPort::new(name, devargs, *n_rxq)
                    .map_err(|e| ApiError::precondition("port.options.devargs", e.to_string()))?,
            )
        }
    };
    Ok((port, None))
}

/// A `vxlan` or `gre` port on its endpoint. Without an endpoint it can use, the port is
/// configured but down (its placeholder says so and counts `tunnel_no_endpoint`); it comes
/// up when one appears (`follow_endpoints`, housekeeping).
fn open_tunnel(
    name: &str,
    spec: &TunnelSpec,
    cfg: &SwitchConfig,
) -> Result<Arc<dyn Port>, ApiError> {
    match crate::tunnel::find_endpoint(spec.local_ip, &cfg.tunnels) {
        Ok(ep) => Ok(Arc::new(datapath::tunnel::TunnelPort::new(
            name,
            spec.config.clone(),
            ep,
        ))),
        Err(OpenError::NoEndpoint(_)) => Ok(cfg.tunnels.placeholder(name)),
        Err(OpenError::Bad(e)) => Err(e),
    }
}

/// A port restored from the store, opened if it can be. One whose interface is missing, or
/// whose options no longer parse (a build without its type), stays configured but down:
/// its traffic is dropped and counted, and a kernel port is reopened by the link watcher
/// when its interface comes back.
pub(super) fn restore_port(bridge: &str, desc: &v1::PortDesc, cfg: &SwitchConfig) -> PortState {
    let mut desc = desc.clone();
    let spec = PortSpec::parse(&desc.r#type, &desc.options);
    let opened = match &spec {
        Ok(s) => open_port(&desc.name, &s.kind, cfg),
        Err(e) => Err(e.clone()),
    };
    let opened = match opened {
        Ok(x) => {
            desc.link_up = x.0.link_up().unwrap_or(true);
            if !desc.link_up && spec.as_ref().is_ok_and(|s| s.kind.is_tunnel()) {
                tracing::info!(
                    bridge,
                    port = %desc.name,
                    "port is down until its tunnel endpoint exists"
                );
            }
            x
        }
        Err(e) => {
            tracing::warn!(bridge, port = %desc.name, "port is down: {e}");
            desc.link_up = false;
            let m = Arc::new(MemPort::new(&desc.name, 0));
            (m as Arc<dyn Port>, None)
        }
    };
    PortState::new(desc, spec.ok(), opened)
}

pub(super) fn stage_add_port(
    txn: &mut datapath::pipeline::Txn<'_>,
    b: &Bridge,
    cfg: &v1::PortConfig,
    scfg: &SwitchConfig,
    ov: &mut Overlay,
) -> Result<v1::PortDesc, ApiError> {
    if !flow_text::is_valid_port_name(&cfg.name) {
        return Err(ApiError::invalid(
            "port.name",
            format!(
                "{:?} is not a valid port name (1-15 chars: letters, digits, - _ .)",
                cfg.name
            ),
        ));
    }
    if b.ports.contains_key(&cfg.name) || ov.ports_added.iter().any(|p| p.desc.name == cfg.name) {
        return Err(ApiError::exists(
            "port.name",
            format!("bridge {} already has a port {}", b.rec.name, cfg.name),
        ));
    }
    let spec = PortSpec::parse(&cfg.r#type, &cfg.options)?;
    super::capacity::check_ports(
        b.ports.len() - ov.ports_removed.len() + ov.ports_added.len(),
        &scfg.capacity,
    )?;
    let (policer, qos) = spec.rate.build(txn.now_ns())?;
    let snap = txn.snapshot();
    let no = match cfg.requested_ofport {
        Some(n) => {
            if !PortNo(n).is_valid() {
                return Err(ApiError::invalid(
                    "port.requested_ofport",
                    format!("{n} out of range 1..={}", PortNo::MAX.0),
                ));
            }
            if snap.port(PortNo(n)).is_some() {
                return Err(ApiError::exists(
                    "port.requested_ofport",
                    format!("port number {n} is in use"),
                ));
            }
            n
        }
        None => (1..=PortNo::MAX.0)
            .find(|n| snap.port(PortNo(*n)).is_none())
            .ok_or_else(|| ApiError::precondition("port", "no free port number"))?,
    };
    let (port, mem) = open_port(&cfg.name, &spec.kind, scfg)?;
    txn.add_port(PortNo(no), Arc::clone(&port), spec.vlan.clone())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    txn.set_port_qos(PortNo(no), policer, qos)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let desc = v1::PortDesc {
        port_no: no,
        name: cfg.name.clone(),
        r#type: cfg.r#type.clone(),
        options: cfg.options.clone(),
        hw_addr: Vec::new(),
        mtu: 1500,
        admin_up: true,
        link_up: port.link_up().unwrap_or(true),
        speed_mbps: 0,
        openflow_config: 0,
    };
    ov.ports_added
        .push(PortState::new(desc.clone(), Some(spec), (port, mem)));
    Ok(desc)
}
