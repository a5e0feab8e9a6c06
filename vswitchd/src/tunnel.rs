//! Tunnel ports in the daemon: the endpoint (`type=tunnel-endpoint`, what `flowctl
//! set-tunnel-ip` adds to the underlay bridge) and VXLAN ports (`type=vxlan`), from their
//! options, with errors that name the option at fault.
//!
//! Endpoints are found by VXLAN ports through a registry of weak references shared by the
//! whole switch: an endpoint lives as long as its port or a tunnel port uses it.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Weak};
use std::time::Instant;

use datapath::tunnel::{Clock, TunnelConfig, TunnelEndpoint, TunnelKind};
use parking_lot::Mutex;

use crate::error::ApiError;

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
pub struct Registry(Arc<Mutex<Vec<Weak<TunnelEndpoint>>>>);

impl Registry {
    /// The live endpoints.
    pub fn live(&self) -> Vec<Arc<TunnelEndpoint>> {
        let mut v = self.0.lock();
        v.retain(|w| w.strong_count() > 0);
        v.iter().filter_map(Weak::upgrade).collect()
    }

    fn add(&self, ep: &Arc<TunnelEndpoint>) {
        self.0.lock().push(Arc::downgrade(ep));
    }
}

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
                .map_err(|_| bad(k, format!("{v:?} is not an IPv4 address")))
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
                .map_err(|_| bad(k, format!("{v:?} is not {what}")))
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

/// Opens a `tunnel-endpoint` port: `ip=A.B.C.D/N` (required), `gw=IP`, `mtu=N`.
pub fn open_endpoint(
    name: &str,
    options: &HashMap<String, String>,
    reg: &Registry,
) -> Result<Arc<TunnelEndpoint>, ApiError> {
    let spec = opt(options, "ip").ok_or_else(|| bad("ip", "required: ip=A.B.C.D/PREFIX"))?;
    let (addr, prefix) = spec.split_once('/').unwrap_or((spec, "32"));
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| bad("ip", format!("{spec:?} is not A.B.C.D/PREFIX")))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| bad("ip", format!("{spec:?}: the prefix must be 0..=32")))?;
    let gw = ip(options, "gw")?;
    let mtu: u16 = num(options, "mtu", "an MTU 576..=9000")?.unwrap_or(1500);
    if !(576..=9000).contains(&mtu) {
        return Err(bad("mtu", "must be 576..=9000"));
    }
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
        prefix,
        gw,
        endpoint_mac(name, addr),
        Clock(Arc::new(move || start.elapsed().as_nanos() as u64)),
    );
    ep.mtu = mtu;
    let ep = Arc::new(ep);
    reg.add(&ep);
    Ok(ep)
}

/// The configuration of a `vxlan` or `gre` port and the endpoint it uses: `remote_ip`
/// (required), `key` (VNI 0..=16777215 for VXLAN, any 32-bit GRE key; default 0),
/// `local_ip` (which endpoint; default: the only one), `dst_port` (VXLAN: 4789), `tos`,
/// `ttl` (64), `df` (true).
pub fn tunnel_config(
    kind: TunnelKind,
    options: &HashMap<String, String>,
    reg: &Registry,
) -> Result<(TunnelConfig, Arc<TunnelEndpoint>), ApiError> {
    let remote = match opt(options, "remote_ip") {
        Some("flow") => {
            return Err(bad(
                "remote_ip",
                "remote_ip=flow is not supported yet: give the remote address",
            ));
        }
        _ => ip(options, "remote_ip")?.ok_or_else(|| bad("remote_ip", "required"))?,
    };
    let key = match opt(options, "key") {
        Some("flow") => {
            return Err(bad("key", "key=flow is not supported yet: give the VNI"));
        }
        _ => num::<u32>(options, "key", "a 32-bit key")?.unwrap_or(0),
    };
    if kind == TunnelKind::Vxlan && key > 0x00ff_ffff {
        return Err(bad("key", "a VNI is 0..=16777215"));
    }
    let local = ip(options, "local_ip")?;
    let eps = reg.live();
    let ep = match local {
        Some(l) => eps.into_iter().find(|e| e.ip == l).ok_or_else(|| {
            ApiError::precondition(
                "port.options.local_ip",
                format!("no tunnel endpoint has {l}: flowctl set-tunnel-ip BR {l}/PREFIX"),
            )
        })?,
        None => {
            let mut it = eps.into_iter();
            match (it.next(), it.next()) {
                (Some(e), None) => e,
                (None, _) => {
                    return Err(ApiError::precondition(
                        "port",
                        "no tunnel endpoint: give a bridge one with `flowctl set-tunnel-ip BR IP/PREFIX`",
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(bad(
                        "local_ip",
                        "several tunnel endpoints exist: say which with local_ip",
                    ));
                }
            }
        }
    };
    let dst_port = num::<u16>(options, "dst_port", "a UDP port")?.unwrap_or(4789);
    if dst_port != 4789 {
        return Err(bad("dst_port", "only 4789 is supported for now"));
    }
    let df = match opt(options, "df") {
        None | Some("true") => true,
        Some("false") => false,
        Some(v) => return Err(bad("df", format!("{v:?} is not true or false"))),
    };
    let config = TunnelConfig {
        kind,
        remote: Some(remote),
        key: Some(key),
        dst_port,
        tos: num(options, "tos", "a TOS byte 0..=255")?.unwrap_or(0),
        ttl: num(options, "ttl", "a TTL 1..=255")?.unwrap_or(64),
        df,
    };
    if config.ttl == 0 {
        return Err(bad("ttl", "must be 1..=255"));
    }
    Ok((config, ep))
}
