//! Opening ports and staging a port addition on a draft datapath.

use std::sync::Arc;

use datapath::port::{MemPort, Port};
use datapath::types::PortNo;
use proto::flow_text;
use proto::v1;

use super::config::SwitchConfig;
use super::model::{Bridge, Opened, Overlay};
use super::spec::{PORT_TYPES, check_options, n_rxq_option, vlan_mode};
use crate::error::ApiError;

pub(super) fn open_port(
    name: &str,
    ty: &str,
    options: &std::collections::HashMap<String, String>,
    cfg: &SwitchConfig,
) -> Result<Opened, ApiError> {
    match ty {
        "memory" => {
            let m = Arc::new(MemPort::new(name, cfg.memory_port_capacity));
            Ok((Arc::clone(&m) as Arc<dyn Port>, Some(m)))
        }
        // `internal`: the bridge's own interface in the host stack, as in OVS; here a TAP
        // device named after the port.
        "tap" | "internal" => {
            let t = datapath::port::TapPort::create(name).map_err(|e| match e {
                datapath::port::TapError::BadName(_) => {
                    ApiError::invalid("port.name", e.to_string())
                }
                e => ApiError::precondition("port", e.to_string()),
            })?;
            Ok((Arc::new(t) as Arc<dyn Port>, None))
        }
        "afpacket" => {
            let p = datapath::port::AfPacketPort::open(name).map_err(|e| match e {
                datapath::port::AfPacketError::NoSuchInterface(_) => {
                    ApiError::precondition("port.name", e.to_string())
                }
                e => ApiError::precondition("port", e.to_string()),
            })?;
            Ok((Arc::new(p) as Arc<dyn Port>, None))
        }
        "tunnel-endpoint" => {
            let ep = crate::tunnel::open_endpoint(name, options, &cfg.tunnels)?;
            Ok((
                Arc::new(datapath::tunnel::EndpointPort(ep)) as Arc<dyn Port>,
                None,
            ))
        }
        "vxlan" | "gre" => {
            let kind = if ty == "gre" {
                datapath::tunnel::TunnelKind::Gre
            } else {
                datapath::tunnel::TunnelKind::Vxlan
            };
            // Without an endpoint it can use, the port is configured but down (its
            // placeholder says so and counts `tunnel_no_endpoint`); it comes up when one
            // appears (`follow_endpoints`, housekeeping).
            match crate::tunnel::tunnel_config(kind, options, &cfg.tunnels) {
                Ok((config, ep)) => Ok((
                    Arc::new(datapath::tunnel::TunnelPort::new(name, config, ep)) as Arc<dyn Port>,
                    None,
                )),
                Err(crate::tunnel::OpenError::NoEndpoint(_)) => {
                    Ok((cfg.tunnels.placeholder(name) as Arc<dyn Port>, None))
                }
                Err(crate::tunnel::OpenError::Bad(e)) => Err(e),
            }
        }
        "afxdp" => {
            let mode = match options.get("xdp-mode") {
                Some(m) => m
                    .parse::<datapath::port::XdpMode>()
                    .map_err(|e| ApiError::invalid("port.options.xdp-mode", e))?,
                None => datapath::port::XdpMode::Auto,
            };
            let n_rxq = match options.get("n-rxq") {
                Some(n) => n
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| ApiError::invalid("port.options.n-rxq", "must be 1..=64"))?,
                None => 1,
            };
            let p = datapath::port::AfXdpPort::open(name, n_rxq, mode).map_err(|e| match e {
                datapath::port::AfXdpError::NoSuchInterface(_) => {
                    ApiError::precondition("port.name", e.to_string())
                }
                e => ApiError::precondition("port", e.to_string()),
            })?;
            Ok((Arc::new(p) as Arc<dyn Port>, None))
        }
        "vhost-user" => {
            let path = options
                .get("path")
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "port.options.path",
                        "a vhost-user port needs path=SOCKET (and mode=client|server)",
                    )
                })?;
            let mode = match options.get("mode") {
                Some(m) => m
                    .parse::<datapath::port::VhostMode>()
                    .map_err(|e| ApiError::invalid("port.options.mode", e))?,
                None => datapath::port::VhostMode::Client,
            };
            let n_rxq = n_rxq_option(options, datapath::port::vhost::MAX_QUEUE_PAIRS)?;
            let p =
                datapath::port::VhostUserPort::new(name, std::path::Path::new(path), mode, n_rxq)
                    .map_err(|e| match e {
                    datapath::port::VhostError::NoDirectory(_)
                    | datapath::port::VhostError::NotASocket(_) => {
                        ApiError::precondition("port.options.path", e.to_string())
                    }
                    e => ApiError::precondition("port", e.to_string()),
                })?;
            Ok((Arc::new(p) as Arc<dyn Port>, None))
        }
        #[cfg(feature = "dpdk")]
        "dpdk" => {
            let devargs = options
                .get("devargs")
                .map(|d| d.trim())
                .filter(|d| !d.is_empty())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "port.options.devargs",
                        "a dpdk port needs devargs=PCI-ADDRESS or a virtual device (net_tap0,iface=NAME; net_af_xdp0,iface=NAME; net_ring0; net_null0; net_pcap0,...)",
                    )
                })?;
            let n_rxq = n_rxq_option(options, datapath::port::dpdk::MAX_RXQ)?;
            cfg.dpdk
                .init()
                .map_err(|e| ApiError::precondition("port", e.to_string()))?;
            let p = datapath::port::DpdkPort::new(name, devargs, n_rxq)
                .map_err(|e| ApiError::precondition("port.options.devargs", e.to_string()))?;
            Ok((Arc::new(p) as Arc<dyn Port>, None))
        }
        #[cfg(not(feature = "dpdk"))]
        "dpdk" => Err(ApiError::invalid(
            "port.type",
            "this vswitchd was built without DPDK: build it with `--features dpdk`",
        )),
        "" => Err(ApiError::invalid(
            "port.type",
            format!(
                "type is required; this build supports: {}",
                PORT_TYPES.join(", ")
            ),
        )),
        other => Err(ApiError::invalid(
            "port.type",
            format!(
                "unsupported port type {other:?}; this build supports: {}",
                PORT_TYPES.join(", ")
            ),
        )),
    }
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
    if b.ports.contains_key(&cfg.name) || ov.ports_added.iter().any(|p| p.0.name == cfg.name) {
        return Err(ApiError::exists(
            "port.name",
            format!("bridge {} already has a port {}", b.rec.name, cfg.name),
        ));
    }
    check_options(&cfg.r#type, &cfg.options)?;
    let vlan = vlan_mode(&cfg.options)?;
    let (policer, qos) = crate::qos::port_rate_control(&cfg.options, txn.now_ns())?;
    let snap = txn.snapshot();
    let no = match cfg.requested_ofport {
        Some(n) => {
            if n == 0 || n >= datapath::pipeline::MAX_PORT_NO {
                return Err(ApiError::invalid(
                    "port.requested_ofport",
                    format!("{n} out of range 1..{}", datapath::pipeline::MAX_PORT_NO),
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
        None => (1..datapath::pipeline::MAX_PORT_NO)
            .find(|n| snap.port(PortNo(*n)).is_none())
            .ok_or_else(|| ApiError::precondition("port", "no free port number"))?,
    };
    let (port, mem) = open_port(&cfg.name, &cfg.r#type, &cfg.options, scfg)?;
    txn.add_port(PortNo(no), Arc::clone(&port), vlan)
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
    };
    ov.ports_added.push((desc.clone(), (port, mem)));
    Ok(desc)
}
