//! Tunnel ports in the daemon: the endpoint (`type=tunnel-endpoint`, what `flowctl
//! set-tunnel-ip` adds to the underlay bridge) and VXLAN and GRE ports (`type=vxlan`,
//! `type=gre`): their options parsed ([`EndpointSpec`], [`TunnelSpec`]) with errors that
//! name the option at fault, and opened against the switch's endpoints.
//!
//! Endpoints are found by tunnel ports through a registry of weak references shared by the
//! whole switch. When an endpoint's port is removed the endpoint is retired: it is no
//! longer found, and the tunnel ports on it go down (the daemon swaps them for a
//! [`NoEndpointPort`] that counts `tunnel_no_endpoint`) until an endpoint they can use
//! exists again.
//!
//! `remote_ip=flow` and `key=flow` leave the remote or the key to the flows
//! (`set_field:IP->tun_dst`, `set_field:N->tun_id`); see `datapath::tunnel`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Weak};
use std::time::Instant;

use datapath::tunnel::{Clock, DropCounters, TunnelConfig, TunnelEndpoint, TunnelKind};
use parking_lot::Mutex;

use crate::error::{ApiError, quote};

/// Options of a `tunnel-endpoint` port.
pub const ENDPOINT_OPTIONS: &[&str] = &["ip", "gw", "mtu"];
/// Options of a `gre` port.
pub const GRE_OPTIONS: &[&str] = &["remote_ip", "local_ip", "key", "tos", "ttl", "df"];
/// Options of a `vxlan` port.
pub const VXLAN_OPTIONS: &[&str] = &[
    "remote_ip",
    "local_ip",
    "key",
    "dst_port",
    "tos",
    "ttl",
    "df",
];

/// The switch's tunnel endpoints.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    endpoints: Arc<Mutex<Vec<Weak<TunnelEndpoint>>>>,
    /// Drops of tunnel ports that have no endpoint (`tunnel_no_endpoint`), switch-wide.
    pub no_endpoint: Arc<DropCounters>,
}

impl Registry {
    /// The live endpoints (not retired).
    pub fn live(&self) -> Vec<Arc<TunnelEndpoint>> {
        let mut v = self.endpoints.lock();
        v.retain(|w| w.upgrade().is_some_and(|e| !e.is_retired()));
        v.iter().filter_map(Weak::upgrade).collect()
    }

    fn add(&self, ep: &Arc<TunnelEndpoint>) {
        self.endpoints.lock().push(Arc::downgrade(ep));
    }

    /// The placeholder of a tunnel port without an endpoint.
    pub fn placeholder(&self, name: &str) -> Arc<NoEndpointPort> {
        Arc::new(NoEndpointPort::new(name, Arc::clone(&self.no_endpoint)))
    }
}

pub use datapath::tunnel::NoEndpointPort;

fn opt<'a>(options: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    options.get(k).map(|s| s.trim())
}

fn bad(k: &str, msg: impl Into<String>) -> ApiError {
    ApiError::invalid(format!("port.options.{k}"), msg)
}

fn ip(options: &HashMap<String, String>, k: &str) -> Result<Option<Ipv4Addr>, ApiError> {
    opt(options, k)
        .map(|v| {
            v.parse::<Ipv4Addr>()
                .map_err(|_| bad(k, format!("{} is not an IPv4 address", quote(v))))
        })
        .transpose()
}

fn num<T: std::str::FromStr>(
    options: &HashMap<String, String>,
    k: &str,
    what: &str,
) -> Result<Option<T>, ApiError> {
    opt(options, k)
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| bad(k, format!("{} is not {what}", quote(v))))
        })
        .transpose()
}

/// A locally administered MAC for endpoint `name` at `ip`.
fn endpoint_mac(name: &str, ip: Ipv4Addr) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(ip.octets()) {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    let b = h.to_be_bytes();
    [0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// A `tunnel-endpoint` port's options, parsed: `ip=A.B.C.D/N` (required), `gw=IP`,
/// `mtu=N` (576..=9000, default 1500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// The endpoint's address.
    pub ip: Ipv4Addr,
    /// Its subnet's prefix length.
    pub prefix: u8,
    /// Gateway for remotes outside the subnet.
    pub gw: Option<Ipv4Addr>,
    /// MTU of the underlay.
    pub mtu: u16,
}

impl EndpointSpec {
    /// Parses the options of a `tunnel-endpoint` port.
    pub fn parse(options: &HashMap<String, String>) -> Result<EndpointSpec, ApiError> {
        let spec = opt(options, "ip").ok_or_else(|| bad("ip", "required: ip=A.B.C.D/PREFIX"))?;
        let (addr, prefix) = spec.split_once('/').unwrap_or((spec, "32"));
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("ip", format!("{} is not A.B.C.D/PREFIX", quote(spec))))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| bad("ip", format!("{}: the prefix must be 0..=32", quote(spec))))?;
        let gw = ip(options, "gw")?;
        let mtu: u16 = num(options, "mtu", "an MTU 576..=9000")?.unwrap_or(1500);
        if !(576..=9000).contains(&mtu) {
            return Err(bad("mtu", "must be 576..=9000"));
        }
        Ok(EndpointSpec {
            ip: addr,
            prefix,
            gw,
            mtu,
        })
    }
}

/// Opens a `tunnel-endpoint` port; refused when another live endpoint has its address.
pub fn open_endpoint(
    name: &str,
    spec: &EndpointSpec,
    reg: &Registry,
) -> Result<Arc<TunnelEndpoint>, ApiError> {
    let addr = spec.ip;
    if reg.live().iter().any(|e| e.ip == addr) {
        return Err(ApiError::exists(
            "port.options.ip",
            format!("{addr} is already a tunnel endpoint"),
        ));
    }
    let start = Instant::now();
    let mut ep = TunnelEndpoint::new(
        name,
        addr,
        spec.prefix,
        spec.gw,
        endpoint_mac(name, addr),
        Clock(Arc::new(move || start.elapsed().as_nanos() as u64)),
    );
    ep.mtu = spec.mtu;
    let ep = Arc::new(ep);
    reg.add(&ep);
    Ok(ep)
}

/// A `vxlan` or `gre` port's options, parsed: its configuration and the `local_ip` that
/// names its endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelSpec {
    /// What the datapath's tunnel port is configured with.
    pub config: TunnelConfig,
    /// `local_ip`: the endpoint to use (unset: the only one).
    pub local_ip: Option<Ipv4Addr>,
}

impl TunnelSpec {
    /// Parses the options of a `vxlan` or `gre` port: `remote_ip` (required: an address, or
    /// `flow`), `key` (VNI 0..=16777215 for VXLAN, any 32-bit GRE key, or `flow`; default
    /// 0), `local_ip`, `dst_port` (VXLAN: 4789), `tos`, `ttl` (64), `df` (true).
    pub fn parse(
        kind: TunnelKind,
        options: &HashMap<String, String>,
    ) -> Result<TunnelSpec, ApiError> {
        let remote = match opt(options, "remote_ip") {
            Some("flow") => None,
            Some(_) => Some(ip(options, "remote_ip")?.ok_or_else(|| bad("remote_ip", "required"))?),
            None => {
                return Err(bad(
                    "remote_ip",
                    "required: an IPv4 address, or `flow` to let flows choose it (set_field:IP->tun_dst)",
                ));
            }
        };
        if remote.is_some_and(|r| r.is_unspecified() || r.is_broadcast() || r.is_multicast()) {
            return Err(bad("remote_ip", "must be a unicast address (or `flow`)"));
        }
        let key = match opt(options, "key") {
            Some("flow") => None,
            _ => {
                let what = match kind {
                    TunnelKind::Vxlan => "a VNI 0..=16777215 or `flow`",
                    TunnelKind::Gre => "a 32-bit key or `flow`",
                };
                Some(num::<u32>(options, "key", what)?.unwrap_or(0))
            }
        };
        if kind == TunnelKind::Vxlan && key.is_some_and(|k| k > 0x00ff_ffff) {
            return Err(bad("key", "a VNI is 0..=16777215 (or `flow`)"));
        }
        let local = ip(options, "local_ip")?;
        let dst_port = num::<u16>(options, "dst_port", "a UDP port")?.unwrap_or(4789);
        if dst_port != 4789 {
            return Err(bad("dst_port", "only 4789 is supported for now"));
        }
        let df = match opt(options, "df") {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => return Err(bad("df", format!("{} is not true or false", quote(v)))),
        };
        let config = TunnelConfig {
            kind,
            remote,
            key,
            dst_port,
            tos: num(options, "tos", "a TOS byte 0..=255")?.unwrap_or(0),
            ttl: num(options, "ttl", "a TTL 1..=255")?.unwrap_or(64),
            df,
        };
        if config.ttl == 0 {
            return Err(bad("ttl", "must be 1..=255"));
        }
        Ok(TunnelSpec {
            config,
            local_ip: local,
        })
    }
}

/// Why a tunnel port cannot be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Its options are wrong: the port is refused.
    Bad(ApiError),
    /// No endpoint it can use exists (yet): the port can be configured and stay down.
    NoEndpoint(ApiError),
}

impl From<OpenError> for ApiError {
    fn from(e: OpenError) -> ApiError {
        match e {
            OpenError::Bad(e) | OpenError::NoEndpoint(e) => e,
        }
    }
}

/// The endpoint a tunnel port uses: the one `local_ip` names, else the only one.
pub fn find_endpoint(
    local_ip: Option<Ipv4Addr>,
    reg: &Registry,
) -> Result<Arc<TunnelEndpoint>, OpenError> {
    let eps = reg.live();
    match local_ip {
        Some(l) => eps.into_iter().find(|e| e.ip == l).ok_or_else(|| {
            OpenError::NoEndpoint(ApiError::precondition(
                "port.options.local_ip",
                format!("no tunnel endpoint has {l}: flowctl set-tunnel-ip BR {l}/PREFIX"),
            ))
        }),
        None => {
            let mut it = eps.into_iter();
            match (it.next(), it.next()) {
                (Some(e), None) => Ok(e),
                (None, _) => Err(OpenError::NoEndpoint(ApiError::precondition(
                    "port",
                    "no tunnel endpoint: give a bridge one with `flowctl set-tunnel-ip BR IP/PREFIX`",
                ))),
                (Some(_), Some(_)) => Err(OpenError::Bad(bad(
                    "local_ip",
                    "several tunnel endpoints exist: say which with local_ip",
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(kind: TunnelKind, kv: &[(&str, &str)]) -> (TunnelConfig, Option<Ipv4Addr>) {
        let s = TunnelSpec::parse(kind, &opts(kv)).unwrap();
        (s.config, s.local_ip)
    }

    fn err(kind: TunnelKind, kv: &[(&str, &str)]) -> String {
        let e = TunnelSpec::parse(kind, &opts(kv)).unwrap_err();
        format!("{}: {}", e.field, e.message)
    }

    #[test]
    fn flow_remote_and_key_parse() {
        for kind in [TunnelKind::Vxlan, TunnelKind::Gre] {
            let (c, l) = parse(kind, &[("remote_ip", "flow"), ("key", "flow")]);
            assert_eq!((c.remote, c.key, l), (None, None, None));
            let (c, l) = parse(
                kind,
                &[
                    ("remote_ip", " flow "),
                    ("key", "7"),
                    ("local_ip", "10.0.0.1"),
                ],
            );
            assert_eq!((c.remote, c.key), (None, Some(7)));
            assert_eq!(l, Some(Ipv4Addr::new(10, 0, 0, 1)));
            let (c, _) = parse(kind, &[("remote_ip", "10.0.0.2"), ("key", "flow")]);
            assert_eq!((c.remote, c.key), (Some(Ipv4Addr::new(10, 0, 0, 2)), None));
            let (c, _) = parse(kind, &[("remote_ip", "10.0.0.2")]);
            assert_eq!(
                (c.key, c.dst_port, c.tos, c.ttl, c.df),
                (Some(0), 4789, 0, 64, true)
            );
            let (c, _) = parse(
                kind,
                &[
                    ("remote_ip", "10.0.0.2"),
                    ("tos", "16"),
                    ("ttl", "9"),
                    ("df", "false"),
                    ("dst_port", "4789"),
                ],
            );
            assert_eq!((c.tos, c.ttl, c.df), (16, 9, false));
        }
        let (c, _) = parse(
            TunnelKind::Gre,
            &[("remote_ip", "10.0.0.2"), ("key", "4294967295")],
        );
        assert_eq!(c.key, Some(u32::MAX));
    }

    #[test]
    fn endpoint_options_parse_and_say_what_is_wrong() {
        let e = EndpointSpec::parse(&opts(&[("ip", " 10.0.0.1/24 ")])).unwrap();
        assert_eq!(
            e,
            EndpointSpec {
                ip: Ipv4Addr::new(10, 0, 0, 1),
                prefix: 24,
                gw: None,
                mtu: 1500
            }
        );
        let e = EndpointSpec::parse(&opts(&[
            ("ip", "10.0.0.1"),
            ("gw", "10.0.0.254"),
            ("mtu", "9000"),
        ]))
        .unwrap();
        assert_eq!(
            (e.prefix, e.gw, e.mtu),
            (32, Some(Ipv4Addr::new(10, 0, 0, 254)), 9000)
        );
        for (kv, want) in [
            (vec![], "port.options.ip: required"),
            (
                vec![("ip", "10.0.0/24")],
                "port.options.ip: \"10.0.0/24\" is not",
            ),
            (vec![("ip", "10.0.0.1/33")], "the prefix must be 0..=32"),
            (vec![("ip", "10.0.0.1/x")], "the prefix must be 0..=32"),
            (
                vec![("ip", "10.0.0.1/24"), ("gw", "gw")],
                "port.options.gw:",
            ),
            (
                vec![("ip", "10.0.0.1/24"), ("mtu", "575")],
                "port.options.mtu: must be",
            ),
            (
                vec![("ip", "10.0.0.1/24"), ("mtu", "9001")],
                "port.options.mtu: must be",
            ),
            (
                vec![("ip", "10.0.0.1/24"), ("mtu", "big")],
                "port.options.mtu: \"big\"",
            ),
        ] {
            let e = EndpointSpec::parse(&opts(&kv)).unwrap_err();
            let got = format!("{}: {}", e.field, e.message);
            assert!(got.starts_with(want) || got.contains(want), "{kv:?}: {got}");
        }
    }

    #[test]
    fn bad_tunnel_options_say_what_is_wrong() {
        let v = TunnelKind::Vxlan;
        assert!(err(v, &[]).starts_with("port.options.remote_ip: required"));
        assert!(err(v, &[("remote_ip", "Flow")]).contains("is not an IPv4 address"));
        assert!(err(v, &[("remote_ip", "flows")]).contains("\"flows\" is not an IPv4"));
        assert!(err(v, &[("remote_ip", "")]).contains("is not an IPv4 address"));
        assert!(err(v, &[("remote_ip", "0.0.0.0")]).contains("unicast"));
        assert!(err(v, &[("remote_ip", "224.0.0.1")]).contains("unicast"));
        assert!(
            err(v, &[("remote_ip", "flow"), ("key", "flow=1")])
                .starts_with("port.options.key: \"flow=1\" is not a VNI")
        );
        assert!(err(v, &[("remote_ip", "flow"), ("key", "16777216")]).contains("0..=16777215"));
        assert!(err(v, &[("remote_ip", "flow"), ("key", "-1")]).contains("is not a VNI"));
        assert!(
            err(
                TunnelKind::Gre,
                &[("remote_ip", "flow"), ("key", "4294967296")]
            )
            .contains("is not a 32-bit key or `flow`")
        );
        assert!(
            err(v, &[("remote_ip", "flow"), ("local_ip", "flow")])
                .starts_with("port.options.local_ip:")
        );
        assert!(err(v, &[("remote_ip", "flow"), ("ttl", "0")]).contains("1..=255"));
        assert!(err(v, &[("remote_ip", "flow"), ("df", "yes")]).contains("true or false"));
        assert!(err(v, &[("remote_ip", "flow"), ("dst_port", "4790")]).contains("4789"));
    }

    #[test]
    fn a_missing_endpoint_is_not_a_bad_option() {
        let reg = Registry::default();
        let find = |kv: &[(&str, &str)], reg: &Registry| {
            let s = TunnelSpec::parse(TunnelKind::Vxlan, &opts(kv)).unwrap();
            find_endpoint(s.local_ip, reg)
        };
        let o = [("remote_ip", "flow"), ("key", "flow")];
        assert!(matches!(find(&o, &reg), Err(OpenError::NoEndpoint(_))));
        let named = [("remote_ip", "flow"), ("local_ip", "10.0.0.9")];
        assert!(matches!(find(&named, &reg), Err(OpenError::NoEndpoint(_))));
        // An endpoint, retired: no longer found; a new one with its address can be made.
        let spec = EndpointSpec::parse(&opts(&[("ip", "10.0.0.1/24")])).unwrap();
        let ep = open_endpoint("tep", &spec, &reg).unwrap();
        let o = [("remote_ip", "flow")];
        assert!(find(&o, &reg).is_ok());
        // Its address is taken while it lives.
        let e = open_endpoint("tep2", &spec, &reg).unwrap_err();
        assert_eq!(e.field, "port.options.ip");
        ep.retire();
        assert!(matches!(find(&o, &reg), Err(OpenError::NoEndpoint(_))));
        let ep2 = open_endpoint("tep", &spec, &reg).unwrap();
        let got = find(&o, &reg).unwrap();
        assert!(Arc::ptr_eq(&got, &ep2));
        // Two endpoints: a port must say which.
        let spec3 = EndpointSpec::parse(&opts(&[("ip", "10.0.1.1/24")])).unwrap();
        let ep3 = open_endpoint("tep3", &spec3, &reg).unwrap();
        assert!(matches!(find(&o, &reg), Err(OpenError::Bad(_))));
        let named = [("remote_ip", "flow"), ("local_ip", "10.0.1.1")];
        assert!(Arc::ptr_eq(&find(&named, &reg).unwrap(), &ep3));
    }
}
