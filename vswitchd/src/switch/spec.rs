//! The typed port specification: a port's type with its options parsed, built once where a
//! request enters (AddPort, a Write of a port, SetPortOptions, a port restored from the
//! store) and used everywhere after. Nothing else in the daemon matches on a type string or
//! reads an option from the string map.
//!
//! What: [`PortSpec::parse`] checks the type, refuses options the type does not know, and
//! parses the type's own options ([`PortKind`]), the VLAN mode (`tag`, `trunks`) and rate
//! control (`ingress_policing_*`, `qos-*`, `queue.N`, see [`crate::qos`]). Errors name the
//! field at fault (`port.type`, `port.options.KEY`). What depends on the machine (does the
//! interface exist, is the endpoint's address taken, does DPDK start) is checked when the
//! port is opened, not here.

use std::collections::HashMap;
use std::path::PathBuf;

use datapath::l2::{VlanMode, VlanSet};
use datapath::port::{VhostMode, XdpMode};
use datapath::tunnel::TunnelKind;
use datapath::types::VlanId;

use crate::error::ApiError;
use crate::qos::RateSpec;
use crate::tunnel::{EndpointSpec, TunnelSpec};

/// Port types this build can create.
pub const PORT_TYPES: &[&str] = &[
    "memory",
    "tap",
    "internal",
    "afpacket",
    "afxdp",
    "tunnel-endpoint",
    "vxlan",
    "gre",
    "vhost-user",
    #[cfg(feature = "dpdk")]
    "dpdk",
];

/// Options every port type accepts.
const COMMON_OPTIONS: &[&str] = &["tag", "trunks"];
/// Most rx queues of an `afxdp` port.
const AFXDP_MAX_RXQ: usize = 64;

/// What a port is: one variant per port type, with that type's options parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// `memory`: an in-memory ring pair (tests, examples, the demo).
    Memory,
    /// `tap`: a TAP device the switch creates, named after the port.
    Tap,
    /// `internal`: the bridge's interface in the host stack, as in OVS (a TAP device too).
    Internal,
    /// `afpacket`: an existing interface named like the port, through a `TPACKET_V3` ring.
    AfPacket,
    /// `afxdp`: an existing interface named like the port, through AF_XDP.
    AfXdp {
        /// `xdp-mode=native|generic|auto` (default auto).
        mode: XdpMode,
        /// `n-rxq=N`, 1 to 64 (default 1).
        n_rxq: usize,
    },
    /// `tunnel-endpoint`: a bridge's address on the underlay (`flowctl set-tunnel-ip`).
    TunnelEndpoint(EndpointSpec),
    /// `vxlan`: a VXLAN tunnel port.
    Vxlan(TunnelSpec),
    /// `gre`: a GRE tunnel port.
    Gre(TunnelSpec),
    /// `vhost-user`: the switch is the vhost-user backend of a VM's virtio-net device.
    VhostUser {
        /// `path=SOCKET` (required).
        path: PathBuf,
        /// `mode=client|server` (default client).
        mode: VhostMode,
        /// `n-rxq=N`: queue pairs offered, 1 to 16 (default 1).
        n_rxq: usize,
    },
    /// `dpdk`: a DPDK device (builds with the `dpdk` feature).
    #[cfg(feature = "dpdk")]
    Dpdk {
        /// `devargs=`: a PCI address or a virtual device (required).
        devargs: String,
        /// `n-rxq=N`, 1 to 16 (default 1).
        n_rxq: usize,
    },
}

/// A port's whole configuration, parsed: its kind, VLAN mode and rate control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// The type with its own options.
    pub kind: PortKind,
    /// `tag=VID` (access) or `trunks=VID,...` (trunk); default: a trunk of every VLAN.
    pub vlan: VlanMode,
    /// Ingress policer and egress queues.
    pub rate: RateSpec,
}

impl PortSpec {
    /// Parses a port's type and options; errors name `port.type` or `port.options.KEY`.
    pub fn parse(ty: &str, options: &HashMap<String, String>) -> Result<PortSpec, ApiError> {
        let own = own_options(ty)?;
        check_known(ty, own, options)?;
        let vlan = vlan_mode(options)?;
        let rate = RateSpec::parse(options)?;
        let kind = PortKind::parse(ty, options)?;
        Ok(PortSpec { kind, vlan, rate })
    }
}

impl PortKind {
    /// The type's own options, parsed (the type is known: see [`own_options`]).
    fn parse(ty: &str, options: &HashMap<String, String>) -> Result<PortKind, ApiError> {
        Ok(match ty {
            "memory" => PortKind::Memory,
            "tap" => PortKind::Tap,
            "internal" => PortKind::Internal,
            "afpacket" => PortKind::AfPacket,
            "afxdp" => PortKind::AfXdp {
                mode: match options.get("xdp-mode") {
                    Some(m) => m
                        .parse::<XdpMode>()
                        .map_err(|e| ApiError::invalid("port.options.xdp-mode", e))?,
                    None => XdpMode::Auto,
                },
                n_rxq: n_rxq_option(options, AFXDP_MAX_RXQ)?,
            },
            "tunnel-endpoint" => PortKind::TunnelEndpoint(EndpointSpec::parse(options)?),
            "vxlan" => PortKind::Vxlan(TunnelSpec::parse(TunnelKind::Vxlan, options)?),
            "gre" => PortKind::Gre(TunnelSpec::parse(TunnelKind::Gre, options)?),
            "vhost-user" => vhost_user(options)?,
            #[cfg(feature = "dpdk")]
            "dpdk" => dpdk(options)?,
            other => return Err(unknown_type(other)),
        })
    }

    /// The type's name, as configured (`PortDesc.type`).
    pub fn type_name(&self) -> &'static str {
        match self {
            PortKind::Memory => "memory",
            PortKind::Tap => "tap",
            PortKind::Internal => "internal",
            PortKind::AfPacket => "afpacket",
            PortKind::AfXdp { .. } => "afxdp",
            PortKind::TunnelEndpoint(_) => "tunnel-endpoint",
            PortKind::Vxlan(_) => "vxlan",
            PortKind::Gre(_) => "gre",
            PortKind::VhostUser { .. } => "vhost-user",
            #[cfg(feature = "dpdk")]
            PortKind::Dpdk { .. } => "dpdk",
        }
    }

    /// True for ports on kernel interfaces (or on a tunnel endpoint), which can disappear
    /// under the switch and come back: the link watcher checks them.
    pub fn is_kernel(&self) -> bool {
        matches!(
            self,
            PortKind::Tap
                | PortKind::Internal
                | PortKind::AfPacket
                | PortKind::AfXdp { .. }
                | PortKind::Vxlan(_)
                | PortKind::Gre(_)
        )
    }

    /// True for the TAP devices the switch creates itself (`tap`, `internal`).
    pub fn is_own_device(&self) -> bool {
        matches!(self, PortKind::Tap | PortKind::Internal)
    }

    /// True for tunnel ports (`vxlan`, `gre`): down while they have no endpoint.
    pub fn is_tunnel(&self) -> bool {
        matches!(self, PortKind::Vxlan(_) | PortKind::Gre(_))
    }

    /// True for a tunnel endpoint: tunnel ports waiting for one may come up when it appears.
    pub fn is_endpoint(&self) -> bool {
        matches!(self, PortKind::TunnelEndpoint(_))
    }
}

/// The options type `ty` accepts besides the common ones; refuses types this build lacks.
fn own_options(ty: &str) -> Result<&'static [&'static str], ApiError> {
    Ok(match ty {
        "memory" | "tap" | "internal" | "afpacket" => &[],
        "afxdp" => &["xdp-mode", "n-rxq"],
        "vhost-user" => &["path", "mode", "n-rxq"],
        #[cfg(feature = "dpdk")]
        "dpdk" => &["devargs", "n-rxq"],
        #[cfg(not(feature = "dpdk"))]
        "dpdk" => {
            return Err(ApiError::invalid(
                "port.type",
                "this vswitchd was built without DPDK: build it with `--features dpdk`",
            ));
        }
        "tunnel-endpoint" => crate::tunnel::ENDPOINT_OPTIONS,
        "vxlan" => crate::tunnel::VXLAN_OPTIONS,
        "gre" => crate::tunnel::GRE_OPTIONS,
        other => return Err(unknown_type(other)),
    })
}

fn unknown_type(ty: &str) -> ApiError {
    let supported = PORT_TYPES.join(", ");
    if ty.is_empty() {
        ApiError::invalid(
            "port.type",
            format!("type is required; this build supports: {supported}"),
        )
    } else {
        ApiError::invalid(
            "port.type",
            format!("unsupported port type {ty:?}; this build supports: {supported}"),
        )
    }
}

/// Refuses options that neither every port nor a `ty` port knows.
fn check_known(ty: &str, own: &[&str], options: &HashMap<String, String>) -> Result<(), ApiError> {
    for k in options.keys() {
        if !COMMON_OPTIONS.contains(&k.as_str())
            && !own.contains(&k.as_str())
            && !crate::qos::is_rate_control_option(k)
        {
            return Err(ApiError::invalid(
                format!("port.options.{k}"),
                format!(
                    "unknown option for a {ty} port (known: {})",
                    COMMON_OPTIONS
                        .iter()
                        .chain(own)
                        .chain(crate::qos::RATE_CONTROL_OPTIONS)
                        .chain(&["queue.N"])
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The `n-rxq` option: 1 to `max`, default 1.
fn n_rxq_option(options: &HashMap<String, String>, max: usize) -> Result<usize, ApiError> {
    match options.get("n-rxq") {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid("port.options.n-rxq", format!("must be 1..={max}"))),
        None => Ok(1),
    }
}

fn vhost_user(options: &HashMap<String, String>) -> Result<PortKind, ApiError> {
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
            .parse::<VhostMode>()
            .map_err(|e| ApiError::invalid("port.options.mode", e))?,
        None => VhostMode::Client,
    };
    Ok(PortKind::VhostUser {
        path: PathBuf::from(path),
        mode,
        n_rxq: n_rxq_option(options, datapath::port::vhost::MAX_QUEUE_PAIRS)?,
    })
}

#[cfg(feature = "dpdk")]
fn dpdk(options: &HashMap<String, String>) -> Result<PortKind, ApiError> {
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
    Ok(PortKind::Dpdk {
        devargs: devargs.to_string(),
        n_rxq: n_rxq_option(options, datapath::port::dpdk::MAX_RXQ)?,
    })
}

/// The VLAN mode from `tag` (an access port) or `trunks` (a trunk of those VLANs).
fn vlan_mode(options: &HashMap<String, String>) -> Result<VlanMode, ApiError> {
    let vid = |s: &str, field: &str| -> Result<VlanId, ApiError> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|v| *v <= VlanId::MAX.0)
            .map(VlanId)
            .ok_or_else(|| ApiError::invalid(field, format!("{s:?} is not a VLAN id 0..=4095")))
    };
    match (options.get("tag"), options.get("trunks")) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "port.options.trunks",
            "a port is either an access port (tag) or a trunk (trunks), not both",
        )),
        (Some(t), None) => Ok(VlanMode::Access(vid(t, "port.options.tag")?)),
        (None, Some(list)) => {
            let mut allowed = VlanSet::default();
            for v in list.split(',').filter(|s| !s.trim().is_empty()) {
                allowed.insert(vid(v, "port.options.trunks")?);
            }
            Ok(VlanMode::Trunk {
                allowed,
                native: None,
            })
        }
        (None, None) => Ok(VlanMode::default()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::Ipv4Addr;

    use proptest::prelude::*;

    use super::*;

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn kind(ty: &str, kv: &[(&str, &str)]) -> PortKind {
        PortSpec::parse(ty, &opts(kv)).unwrap().kind
    }

    /// `field: message` of the error parsing `ty` with `kv`.
    fn err(ty: &str, kv: &[(&str, &str)]) -> String {
        let e = PortSpec::parse(ty, &opts(kv)).unwrap_err();
        assert_eq!(e.code, tonic::Code::InvalidArgument, "{e}");
        format!("{}: {}", e.field, e.message)
    }

    #[test]
    fn every_type_parses_with_its_defaults() {
        for ty in PORT_TYPES {
            let kv: &[(&str, &str)] = match *ty {
                "tunnel-endpoint" => &[("ip", "10.0.0.1/24")],
                "vxlan" | "gre" => &[("remote_ip", "10.0.0.2")],
                "vhost-user" => &[("path", "/run/vm1.sock")],
                "dpdk" => &[("devargs", "net_null0")],
                _ => &[],
            };
            let s = PortSpec::parse(ty, &opts(kv)).unwrap();
            assert_eq!(s.kind.type_name(), *ty);
            assert_eq!(s.vlan, VlanMode::default());
            assert_eq!(s.rate, RateSpec::default());
        }
        assert_eq!(kind("memory", &[]), PortKind::Memory);
        assert_eq!(kind("tap", &[]), PortKind::Tap);
        assert_eq!(kind("internal", &[]), PortKind::Internal);
        assert_eq!(kind("afpacket", &[]), PortKind::AfPacket);
        assert_eq!(
            kind("afxdp", &[]),
            PortKind::AfXdp {
                mode: XdpMode::Auto,
                n_rxq: 1
            }
        );
        assert_eq!(
            kind("vhost-user", &[("path", "/run/vm1.sock")]),
            PortKind::VhostUser {
                path: PathBuf::from("/run/vm1.sock"),
                mode: VhostMode::Client,
                n_rxq: 1
            }
        );
        let PortKind::TunnelEndpoint(e) = kind("tunnel-endpoint", &[("ip", "10.0.0.1/24")]) else {
            panic!("not an endpoint");
        };
        assert_eq!(
            (e.ip, e.prefix, e.gw, e.mtu),
            (Ipv4Addr::new(10, 0, 0, 1), 24, None, 1500)
        );
        for (ty, k) in [("vxlan", TunnelKind::Vxlan), ("gre", TunnelKind::Gre)] {
            let (PortKind::Vxlan(t) | PortKind::Gre(t)) = kind(ty, &[("remote_ip", "10.0.0.2")])
            else {
                panic!("not a tunnel");
            };
            assert_eq!(t.config.kind, k);
            assert_eq!(t.config.remote, Some(Ipv4Addr::new(10, 0, 0, 2)));
            assert_eq!((t.config.key, t.local_ip), (Some(0), None));
        }
    }

    #[test]
    fn every_option_is_read() {
        assert_eq!(
            kind("afxdp", &[("xdp-mode", "native"), ("n-rxq", "64")]),
            PortKind::AfXdp {
                mode: XdpMode::Native,
                n_rxq: 64
            }
        );
        assert_eq!(
            kind("afxdp", &[("xdp-mode", "generic")]),
            PortKind::AfXdp {
                mode: XdpMode::Generic,
                n_rxq: 1
            }
        );
        assert_eq!(
            kind(
                "vhost-user",
                &[("path", "/tmp/s"), ("mode", "server"), ("n-rxq", "16")]
            ),
            PortKind::VhostUser {
                path: PathBuf::from("/tmp/s"),
                mode: VhostMode::Server,
                n_rxq: 16
            }
        );
        let PortKind::TunnelEndpoint(e) = kind(
            "tunnel-endpoint",
            &[
                ("ip", "172.16.0.1/16"),
                ("gw", "172.16.0.254"),
                ("mtu", "9000"),
            ],
        ) else {
            panic!("not an endpoint");
        };
        assert_eq!(
            (e.prefix, e.gw, e.mtu),
            (16, Some(Ipv4Addr::new(172, 16, 0, 254)), 9000)
        );
        let PortKind::Vxlan(t) = kind(
            "vxlan",
            &[
                ("remote_ip", "flow"),
                ("local_ip", "172.16.0.1"),
                ("key", "flow"),
                ("dst_port", "4789"),
                ("tos", "4"),
                ("ttl", "5"),
                ("df", "false"),
            ],
        ) else {
            panic!("not vxlan");
        };
        assert_eq!(t.local_ip, Some(Ipv4Addr::new(172, 16, 0, 1)));
        assert_eq!(
            (
                t.config.remote,
                t.config.key,
                t.config.tos,
                t.config.ttl,
                t.config.df
            ),
            (None, None, 4, 5, false)
        );
        let PortKind::Gre(t) = kind("gre", &[("remote_ip", "10.0.0.2"), ("key", "4294967295")])
        else {
            panic!("not gre");
        };
        assert_eq!(t.config.key, Some(u32::MAX));
        // Common options on any type.
        let s = PortSpec::parse("memory", &opts(&[("tag", " 10 ")])).unwrap();
        assert_eq!(s.vlan, VlanMode::Access(VlanId(10)));
        let s = PortSpec::parse("tap", &opts(&[("trunks", "10, 20,,4095")])).unwrap();
        let VlanMode::Trunk { allowed, native } = s.vlan else {
            panic!("not a trunk");
        };
        assert_eq!(native, None);
        for v in [10, 20, 4095] {
            assert!(allowed.contains(VlanId(v)), "{v}");
        }
        assert!(!allowed.contains(VlanId(11)));
        let s = PortSpec::parse(
            "afpacket",
            &opts(&[
                ("ingress_policing_rate", "1000"),
                ("ingress_policing_burst", "100"),
                ("qos-max-rate", "20000"),
                ("qos-burst", "50"),
                ("queue.1", "priority:7,weight:2,limit:64"),
            ]),
        )
        .unwrap();
        assert_eq!(s.rate.policer, Some((1000, 100)));
        let q = s.rate.qos.unwrap();
        assert_eq!((q.max_rate_kbps, q.burst_kb), (20000, 50));
        assert_eq!(
            q.queues
                .iter()
                .map(|q| (q.id, q.priority, q.weight, q.limit))
                .collect::<Vec<_>>(),
            vec![(1, 7, 2, 64)]
        );
    }

    #[cfg(feature = "dpdk")]
    #[test]
    fn dpdk_options() {
        assert_eq!(
            kind("dpdk", &[("devargs", " 0000:01:00.0 "), ("n-rxq", "2")]),
            PortKind::Dpdk {
                devargs: "0000:01:00.0".into(),
                n_rxq: 2
            }
        );
        assert!(err("dpdk", &[]).starts_with("port.options.devargs: a dpdk port needs"));
        assert!(err("dpdk", &[("devargs", " ")]).starts_with("port.options.devargs:"));
        assert!(err("dpdk", &[("devargs", "x"), ("n-rxq", "17")]).contains("1..=16"));
    }

    #[cfg(not(feature = "dpdk"))]
    #[test]
    fn dpdk_needs_the_feature() {
        assert!(
            err("dpdk", &[("devargs", "net_null0")])
                .starts_with("port.type: this vswitchd was built without DPDK")
        );
        assert!(!PORT_TYPES.contains(&"dpdk"));
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        for (ty, kv, want) in [
            (
                "",
                vec![],
                "port.type: type is required; this build supports: memory, tap",
            ),
            (
                "afxdp-not-here",
                vec![],
                "port.type: unsupported port type \"afxdp-not-here\"",
            ),
            (
                "Memory",
                vec![],
                "port.type: unsupported port type \"Memory\"",
            ),
            (
                "memory",
                vec![("n-rxq", "2")],
                "port.options.n-rxq: unknown option for a memory port (known: tag, trunks, ingress_policing_rate",
            ),
            (
                "afxdp",
                vec![("path", "/x")],
                "port.options.path: unknown option for a afxdp port (known: tag, trunks, xdp-mode, n-rxq,",
            ),
            (
                "vxlan",
                vec![("remote_ip", "10.0.0.2"), ("devargs", "x")],
                "port.options.devargs: unknown option for a vxlan port",
            ),
            (
                "gre",
                vec![("remote_ip", "10.0.0.2"), ("dst_port", "4789")],
                "port.options.dst_port: unknown option for a gre port",
            ),
            (
                "afxdp",
                vec![("xdp-mode", "fast")],
                "port.options.xdp-mode: xdp-mode \"fast\": expected native, generic or auto",
            ),
            (
                "afxdp",
                vec![("n-rxq", "0")],
                "port.options.n-rxq: must be 1..=64",
            ),
            (
                "afxdp",
                vec![("n-rxq", "65")],
                "port.options.n-rxq: must be 1..=64",
            ),
            (
                "afxdp",
                vec![("n-rxq", "two")],
                "port.options.n-rxq: must be 1..=64",
            ),
            (
                "vhost-user",
                vec![],
                "port.options.path: a vhost-user port needs path=SOCKET",
            ),
            (
                "vhost-user",
                vec![("path", "")],
                "port.options.path: a vhost-user port needs",
            ),
            (
                "vhost-user",
                vec![("path", "/s"), ("mode", "both")],
                "port.options.mode:",
            ),
            (
                "vhost-user",
                vec![("path", "/s"), ("n-rxq", "17")],
                "port.options.n-rxq: must be 1..=16",
            ),
            (
                "tunnel-endpoint",
                vec![],
                "port.options.ip: required: ip=A.B.C.D/PREFIX",
            ),
            (
                "tunnel-endpoint",
                vec![("ip", "10.0.0.1/40")],
                "port.options.ip:",
            ),
            (
                "tunnel-endpoint",
                vec![("ip", "10.0.0.1/24"), ("mtu", "100")],
                "port.options.mtu: must be 576..=9000",
            ),
            ("vxlan", vec![], "port.options.remote_ip: required"),
            (
                "vxlan",
                vec![("remote_ip", "10.0.0.2"), ("key", "16777216")],
                "port.options.key: a VNI is 0..=16777215",
            ),
            (
                "gre",
                vec![("remote_ip", "255.255.255.255")],
                "port.options.remote_ip: must be a unicast address",
            ),
            (
                "memory",
                vec![("tag", "4096")],
                "port.options.tag: \"4096\" is not a VLAN id 0..=4095",
            ),
            (
                "memory",
                vec![("tag", "x")],
                "port.options.tag: \"x\" is not a VLAN id",
            ),
            (
                "memory",
                vec![("trunks", "1,x")],
                "port.options.trunks: \"x\" is not a VLAN id",
            ),
            (
                "memory",
                vec![("tag", "1"), ("trunks", "1")],
                "port.options.trunks: a port is either an access port (tag) or a trunk",
            ),
            (
                "memory",
                vec![("ingress_policing_rate", "fast")],
                "port.options.ingress_policing_rate: \"fast\" is not a whole number",
            ),
            (
                "memory",
                vec![("ingress_policing_burst", "10")],
                "port.options.ingress_policing_burst: needs ingress_policing_rate",
            ),
            (
                "memory",
                vec![("queue.1", "weight:2")],
                "port.options.queue.N: egress queues need qos-max-rate",
            ),
            (
                "memory",
                vec![("qos-max-rate", "10"), ("queue.64", "")],
                "port.options.queue.64: queue id must be 0..=63",
            ),
            (
                "memory",
                vec![("qos-max-rate", "10"), ("queue.1", "weight:0")],
                "port.options.queue.1:",
            ),
            (
                "memory",
                vec![("qos-max-rate", "10"), ("queue.1", "colour:red")],
                "port.options.queue.1: unknown queue setting \"colour\"",
            ),
        ] {
            let got = err(ty, &kv);
            assert!(
                got.starts_with(want),
                "{ty} {kv:?}:\n got  {got}\n want {want}..."
            );
        }
    }

    #[test]
    fn kinds_say_what_the_link_watcher_checks() {
        let tunnel = kind("vxlan", &[("remote_ip", "flow")]);
        let endpoint = kind("tunnel-endpoint", &[("ip", "10.0.0.1/24")]);
        let vhost = kind("vhost-user", &[("path", "/s")]);
        for (k, kernel, own, tun, ep) in [
            (&PortKind::Memory, false, false, false, false),
            (&PortKind::Tap, true, true, false, false),
            (&PortKind::Internal, true, true, false, false),
            (&PortKind::AfPacket, true, false, false, false),
            (&kind("afxdp", &[]), true, false, false, false),
            (&tunnel, true, false, true, false),
            (&endpoint, false, false, false, true),
            (&vhost, false, false, false, false),
        ] {
            assert_eq!(
                (
                    k.is_kernel(),
                    k.is_own_device(),
                    k.is_tunnel(),
                    k.is_endpoint()
                ),
                (kernel, own, tun, ep),
                "{k:?}"
            );
        }
    }

    proptest! {
        /// Any type and option map is accepted or refused with an error naming the type or
        /// an option, never a panic; what is accepted keeps its type's name.
        #[test]
        fn never_panics(
            ty in prop_oneof![
                proptest::sample::select(PORT_TYPES.to_vec()).prop_map(str::to_string),
                "[a-z-]{0,12}",
            ],
            kv in proptest::collection::vec((
                prop_oneof![
                    proptest::sample::select(vec![
                        "tag", "trunks", "xdp-mode", "n-rxq", "path", "mode", "devargs", "ip",
                        "gw", "mtu", "remote_ip", "local_ip", "key", "dst_port", "tos", "ttl",
                        "df", "ingress_policing_rate", "qos-max-rate", "queue.1",
                    ]).prop_map(str::to_string),
                    "[a-z_.-]{0,10}",
                ],
                prop_oneof!["[0-9]{0,12}", "[a-z0-9:,./ ]{0,20}", "([0-9]{1,3}\\.){3}[0-9]{1,3}(/[0-9]{1,2})?"],
            ), 0..6),
        ) {
            let m: HashMap<String, String> = kv.into_iter().collect();
            match PortSpec::parse(&ty, &m) {
                Ok(s) => prop_assert_eq!(s.kind.type_name(), ty.as_str()),
                Err(e) => prop_assert!(e.field == "port.type" || e.field.starts_with("port.options."), "{}", e),
            }
        }
    }
}
