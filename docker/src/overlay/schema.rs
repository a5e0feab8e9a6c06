//! The overlay's keys and values in etcd, and their strict parsers.
//!
//! What: every key the plugin reads or writes under `--etcd-prefix` (default
//! `/vswitch-docker`), built by [`Keys`] and parsed back by [`Keys::parse_view`]; every value
//! is a small JSON document with a `format` number, parsed by `parse_*` functions that
//! check each field (VNI range, unicast MAC, address families, host names). Anything in etcd
//! may have been written by another version or by hand, so it is untrusted input: the
//! parsers never panic, and a value that does not parse is skipped and counted by the agent
//! (never half-applied). Property tests below, fuzz target `overlay_values`.
//!
//! Layout (`P` is the prefix):
//!
//! | key | value | lifetime |
//! | --- | --- | --- |
//! | `P/view/networks/NKEY` | [`NetworkDef`] | until the last host leaves it |
//! | `P/view/hosts/HOST` | [`HostRecord`] | the host's lease |
//! | `P/view/endpoints/NKEY/HOST/EID` | [`EndpointRecord`] | the host's lease |
//! | `P/vnis/VNI` | NKEY | with the network |
//! | `P/attach/NKEY/HOST` | `{}` | while HOST has the network |
//! | `P/macs/NKEY/MAC` | EID | the host's lease |
//! | `P/ipam/pools/POOL` | [`PoolRecord`] | until the last host releases it |
//! | `P/ipam/names/NAME` | POOL | with the pool |
//! | `P/ipam/addrs/POOL/IP` | [`AddrRecord`] | until released, or reclaimed from a dead host |
//!
//! The agent watches `P/view/` only: what it needs to program the switch. NKEY and POOL are a
//! prefix with `/` written as `_` (`10.200.0.0_16`).

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use crate::api::{Cidr, Id, IpamData, Mac};

/// The format of every value this version writes; others are refused.
pub const FORMAT: u32 = 1;
/// The lowest VNI the plugin allocates (lower ones are left to hand-made tunnels).
pub const VNI_MIN: u32 = 4096;
/// The highest VNI (24 bits).
pub const VNI_MAX: u32 = (1 << 24) - 1;

/// A value or key that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct SchemaError {
    /// The key (or the part of it) concerned.
    pub what: String,
    /// What is wrong.
    pub message: String,
}

fn bad(what: impl Into<String>, message: impl Into<String>) -> SchemaError {
    SchemaError {
        what: what.into(),
        message: message.into(),
    }
}

/// A host's name in the cluster (`--host-id`): 1-63 of `a-z A-Z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostId(String);

impl HostId {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for HostId {
    type Err = String;
    fn from_str(s: &str) -> Result<HostId, String> {
        if (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            Ok(HostId(s.to_string()))
        } else {
            Err(format!(
                "{s:?} is not a host id (1-63 of a-z A-Z 0-9 . _ -)"
            ))
        }
    }
}

impl TryFrom<String> for HostId {
    type Error = String;
    fn try_from(s: String) -> Result<HostId, String> {
        s.parse()
    }
}
impl From<HostId> for String {
    fn from(h: HostId) -> String {
        h.0
    }
}
impl std::fmt::Display for HostId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A prefix as a key component: `10.200.0.0/16` is `10.200.0.0_16`.
pub fn cidr_key(c: &Cidr) -> String {
    c.network().to_string().replace('/', "_")
}

/// The prefix a key component names; `None` unless it is a canonical one (host bits clear).
pub fn parse_cidr_key(s: &str) -> Option<Cidr> {
    let c: Cidr = s.replacen('_', "/", 1).parse().ok()?;
    (c.network() == c && cidr_key(&c) == s).then_some(c)
}

/// A cluster-wide overlay network, written once by the host that defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDef {
    /// [`FORMAT`].
    pub format: u32,
    /// The VXLAN network identifier, [`VNI_MIN`]..=[`VNI_MAX`].
    pub vni: u32,
    /// IPv4 pools with their gateways.
    pub ipv4: Vec<IpamData>,
    /// IPv6 pools.
    #[serde(default)]
    pub ipv6_data: Vec<IpamData>,
    /// `--ipv6`.
    #[serde(default)]
    pub ipv6: bool,
    /// `--internal`.
    #[serde(default)]
    pub internal: bool,
    /// MTU of the containers' interfaces (the underlay's less the 50 bytes of VXLAN).
    pub mtu: u32,
    /// The host that defined it.
    pub created_by: HostId,
}

impl NetworkDef {
    /// The network's key: its first IPv4 pool, else its first IPv6 pool.
    pub fn key(&self) -> Option<String> {
        self.ipv4
            .first()
            .or(self.ipv6_data.first())
            .map(|d| cidr_key(&d.pool))
    }

    /// What differs between this definition and `other` (a request), one phrase per field,
    /// naming the definition's value first. Empty when they agree.
    pub fn differences(&self, other: &NetworkDef) -> Vec<String> {
        let mut out = Vec::new();
        let pools = |v: &[IpamData]| {
            v.iter()
                .map(|d| match d.gateway {
                    Some(g) => format!("{} gateway {}", d.pool, g.addr),
                    None => d.pool.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.ipv4 != other.ipv4 {
            out.push(format!(
                "IPv4 {} (this request: {})",
                pools(&self.ipv4),
                pools(&other.ipv4)
            ));
        }
        if self.ipv6_data != other.ipv6_data || self.ipv6 != other.ipv6 {
            out.push(format!(
                "--ipv6={} {} (this request: --ipv6={} {})",
                self.ipv6,
                pools(&self.ipv6_data),
                other.ipv6,
                pools(&other.ipv6_data)
            ));
        }
        if self.internal != other.internal {
            out.push(format!(
                "--internal={} (this request: --internal={})",
                self.internal, other.internal
            ));
        }
        if self.mtu != other.mtu {
            out.push(format!(
                "vswitch.mtu={} (this request: {})",
                self.mtu, other.mtu
            ));
        }
        out
    }

    fn check(&self, what: &str) -> Result<(), SchemaError> {
        if self.format != FORMAT {
            return Err(bad(
                what,
                format!("format {} (this version reads {FORMAT})", self.format),
            ));
        }
        if !(VNI_MIN..=VNI_MAX).contains(&self.vni) {
            return Err(bad(
                what,
                format!("VNI {} outside {VNI_MIN}..={VNI_MAX}", self.vni),
            ));
        }
        if self.ipv4.is_empty() && self.ipv6_data.is_empty() {
            return Err(bad(what, "no address pool"));
        }
        for (list, v6) in [(&self.ipv4, false), (&self.ipv6_data, true)] {
            for d in list {
                let ok = d.pool.addr.is_ipv6() == v6
                    && d.gateway.is_none_or(|g| d.pool.contains(g.addr));
                if !ok {
                    return Err(bad(
                        what,
                        format!("pool {} or its gateway is malformed", d.pool),
                    ));
                }
            }
        }
        if !(68..=9000).contains(&self.mtu) {
            return Err(bad(what, format!("MTU {} outside 68..=9000", self.mtu)));
        }
        Ok(())
    }
}

/// A live host: its tunnel endpoint address. Under the host's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// [`FORMAT`].
    pub format: u32,
    /// The address of its tunnel endpoint (`flowctl set-tunnel-ip`) on the underlay.
    pub vtep: Ipv4Addr,
}

/// One container interface on an overlay network. Under its host's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// [`FORMAT`].
    pub format: u32,
    /// The interface's MAC address (unicast).
    pub mac: Mac,
    /// Its IPv4 address (no prefix).
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address.
    pub ipv6: Option<std::net::Ipv6Addr>,
    /// Its host's tunnel endpoint.
    pub vtep: Ipv4Addr,
}

/// An address pool of the cluster-wide IPAM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    /// [`FORMAT`].
    pub format: u32,
    /// The gateway address (the pool's first, unless a request named another).
    pub gateway: Option<IpAddr>,
    /// The hosts holding it (RequestPool without ReleasePool).
    pub hosts: Vec<HostId>,
    /// The `--ipam-opt vswitch.pool=NAME` it was allocated under, if any.
    #[serde(default)]
    pub name: Option<String>,
}

/// One allocated address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrRecord {
    /// [`FORMAT`].
    pub format: u32,
    /// The host it was given to.
    pub host: HostId,
    /// The MAC address Docker said it is for, if it said.
    #[serde(default)]
    pub mac: Option<Mac>,
}

fn json<'a, T: Deserialize<'a>>(what: &str, v: &'a [u8]) -> Result<T, SchemaError> {
    serde_json::from_slice(v).map_err(|e| bad(what, format!("not a value of this version: {e}")))
}

fn format_ok(what: &str, f: u32) -> Result<(), SchemaError> {
    if f == FORMAT {
        Ok(())
    } else {
        Err(bad(
            what,
            format!("format {f} (this version reads {FORMAT})"),
        ))
    }
}

/// Parses a network definition.
pub fn parse_network(what: &str, v: &[u8]) -> Result<NetworkDef, SchemaError> {
    let d: NetworkDef = json(what, v)?;
    d.check(what)?;
    Ok(d)
}

/// Parses a host record.
pub fn parse_host(what: &str, v: &[u8]) -> Result<HostRecord, SchemaError> {
    let h: HostRecord = json(what, v)?;
    format_ok(what, h.format)?;
    if h.vtep.is_unspecified() || h.vtep.is_multicast() || h.vtep.is_broadcast() {
        return Err(bad(
            what,
            format!("{} is not a tunnel endpoint address", h.vtep),
        ));
    }
    Ok(h)
}

/// Parses an endpoint record.
pub fn parse_endpoint(what: &str, v: &[u8]) -> Result<EndpointRecord, SchemaError> {
    let e: EndpointRecord = json(what, v)?;
    format_ok(what, e.format)?;
    if e.ipv4.is_none() && e.ipv6.is_none() {
        return Err(bad(what, "an endpoint without an address"));
    }
    if e.vtep.is_unspecified() || e.vtep.is_multicast() || e.vtep.is_broadcast() {
        return Err(bad(
            what,
            format!("{} is not a tunnel endpoint address", e.vtep),
        ));
    }
    Ok(e)
}

/// Parses a pool record.
pub fn parse_pool(what: &str, v: &[u8]) -> Result<PoolRecord, SchemaError> {
    let p: PoolRecord = json(what, v)?;
    format_ok(what, p.format)?;
    Ok(p)
}

/// Parses an address record.
pub fn parse_addr(what: &str, v: &[u8]) -> Result<AddrRecord, SchemaError> {
    let a: AddrRecord = json(what, v)?;
    format_ok(what, a.format)?;
    Ok(a)
}

/// Serializes a value (they cannot fail: plain structs of strings and numbers).
pub fn to_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// What a key under `P/view/` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewKey {
    /// `P/view/networks/NKEY`.
    Network(String),
    /// `P/view/hosts/HOST`.
    Host(HostId),
    /// `P/view/endpoints/NKEY/HOST/EID`.
    Endpoint {
        /// The network's key.
        network: String,
        /// The host.
        host: HostId,
        /// Docker's endpoint id (on that host).
        endpoint: Id,
    },
}

/// The key builder for one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`: it starts with `/`, has no trailing `/`, and at most 64 bytes of
    /// `a-z A-Z 0-9 / . _ -`.
    pub fn new(prefix: &str) -> Result<Keys, String> {
        let ok = prefix.starts_with('/')
            && !prefix.ends_with('/')
            && (2..=64).contains(&prefix.len())
            && !prefix.contains("//")
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'));
        if ok {
            Ok(Keys {
                prefix: prefix.to_string(),
            })
        } else {
            Err(format!(
                "--etcd-prefix {prefix:?}: expected /NAME[/NAME...] (a-z A-Z 0-9 . _ -, at most 64 bytes)"
            ))
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// `P/view/`: what the agent watches.
    pub fn view(&self) -> String {
        format!("{}/view/", self.prefix)
    }
    /// `P/view/networks/NKEY`.
    pub fn network(&self, nkey: &str) -> String {
        format!("{}/view/networks/{nkey}", self.prefix)
    }
    /// `P/view/networks/`.
    pub fn networks(&self) -> String {
        format!("{}/view/networks/", self.prefix)
    }
    /// `P/view/hosts/HOST`.
    pub fn host(&self, h: &HostId) -> String {
        format!("{}/view/hosts/{h}", self.prefix)
    }
    /// `P/view/endpoints/NKEY/HOST/EID`.
    pub fn endpoint(&self, nkey: &str, h: &HostId, eid: &Id) -> String {
        format!("{}/view/endpoints/{nkey}/{h}/{eid}", self.prefix)
    }
    /// `P/view/endpoints/NKEY/` (with a host: that host's endpoints on it).
    pub fn endpoints_of(&self, nkey: &str, h: Option<&HostId>) -> String {
        match h {
            Some(h) => format!("{}/view/endpoints/{nkey}/{h}/", self.prefix),
            None => format!("{}/view/endpoints/{nkey}/", self.prefix),
        }
    }
    /// `P/vnis/VNI`.
    pub fn vni(&self, vni: u32) -> String {
        format!("{}/vnis/{vni}", self.prefix)
    }
    /// `P/vnis/`.
    pub fn vnis(&self) -> String {
        format!("{}/vnis/", self.prefix)
    }
    /// `P/attach/NKEY/HOST`.
    pub fn attach(&self, nkey: &str, h: &HostId) -> String {
        format!("{}/attach/{nkey}/{h}", self.prefix)
    }
    /// `P/attach/NKEY/`.
    pub fn attached(&self, nkey: &str) -> String {
        format!("{}/attach/{nkey}/", self.prefix)
    }
    /// `P/macs/NKEY/MAC`.
    pub fn mac(&self, nkey: &str, mac: &Mac) -> String {
        format!("{}/macs/{nkey}/{mac}", self.prefix)
    }
    /// `P/ipam/pools/POOL`.
    pub fn pool(&self, pool: &Cidr) -> String {
        format!("{}/ipam/pools/{}", self.prefix, cidr_key(pool))
    }
    /// `P/ipam/pools/`.
    pub fn pools(&self) -> String {
        format!("{}/ipam/pools/", self.prefix)
    }
    /// `P/ipam/names/NAME`.
    pub fn pool_name(&self, name: &str) -> String {
        format!("{}/ipam/names/{name}", self.prefix)
    }
    /// `P/ipam/addrs/POOL/IP`.
    pub fn addr(&self, pool: &Cidr, ip: IpAddr) -> String {
        format!("{}/ipam/addrs/{}/{ip}", self.prefix, cidr_key(pool))
    }
    /// `P/ipam/addrs/POOL/` (without a pool: every address).
    pub fn addrs(&self, pool: Option<&Cidr>) -> String {
        match pool {
            Some(p) => format!("{}/ipam/addrs/{}/", self.prefix, cidr_key(p)),
            None => format!("{}/ipam/addrs/", self.prefix),
        }
    }

    /// What a key under `P/view/` names; `None` for any other key.
    pub fn parse_view(&self, key: &[u8]) -> Option<ViewKey> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix("/view/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["networks", n] => parse_cidr_key(n).map(|_| ViewKey::Network(n.to_string())),
            ["hosts", h] => h.parse().ok().map(ViewKey::Host),
            ["endpoints", n, h, e] => {
                parse_cidr_key(n)?;
                Some(ViewKey::Endpoint {
                    network: n.to_string(),
                    host: h.parse().ok()?,
                    endpoint: e.parse().ok()?,
                })
            }
            _ => None,
        }
    }

    /// The pool and address an address key names.
    pub fn parse_addr(&self, key: &[u8]) -> Option<(Cidr, IpAddr)> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key
            .strip_prefix(&self.prefix)?
            .strip_prefix("/ipam/addrs/")?;
        let (p, ip) = rest.split_once('/')?;
        let pool = parse_cidr_key(p)?;
        let ip: IpAddr = ip.parse().ok()?;
        pool.contains(ip).then_some((pool, ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn def() -> NetworkDef {
        NetworkDef {
            format: FORMAT,
            vni: 4096,
            ipv4: vec![IpamData {
                pool: "10.200.0.0/16".parse().unwrap(),
                gateway: Some("10.200.0.1/16".parse().unwrap()),
                aux: Default::default(),
            }],
            ipv6_data: Vec::new(),
            ipv6: false,
            internal: false,
            mtu: 1450,
            created_by: "a".parse().unwrap(),
        }
    }

    #[test]
    fn keys_round_trip() {
        let k = Keys::new("/vsd").unwrap();
        let h: HostId = "host-1".parse().unwrap();
        let e: Id = "ab12".parse().unwrap();
        assert_eq!(
            k.parse_view(k.network("10.200.0.0_16").as_bytes()),
            Some(ViewKey::Network("10.200.0.0_16".into()))
        );
        assert_eq!(
            k.parse_view(k.host(&h).as_bytes()),
            Some(ViewKey::Host(h.clone()))
        );
        assert_eq!(
            k.parse_view(k.endpoint("10.200.0.0_16", &h, &e).as_bytes()),
            Some(ViewKey::Endpoint {
                network: "10.200.0.0_16".into(),
                host: h,
                endpoint: e
            })
        );
        assert_eq!(k.parse_view(b"/vsd/view/networks/10.200.0.1_16"), None);
        assert_eq!(k.parse_view(b"/other/view/hosts/a"), None);
        let pool: Cidr = "fd00:1::/64".parse().unwrap();
        let ip: IpAddr = "fd00:1::5".parse().unwrap();
        assert_eq!(k.parse_addr(k.addr(&pool, ip).as_bytes()), Some((pool, ip)));
        for bad in ["", "/", "x", "/a/", "/a//b", "/a b"] {
            assert!(Keys::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn differences_name_each_field() {
        let a = def();
        let mut b = def();
        assert!(a.differences(&b).is_empty());
        b.internal = true;
        b.mtu = 1400;
        b.ipv4[0].gateway = Some("10.200.0.254/16".parse().unwrap());
        let d = a.differences(&b).join("; ");
        assert!(
            d.contains("gateway 10.200.0.1 (this request: 10.200.0.0/16 gateway 10.200.0.254)"),
            "{d}"
        );
        assert!(
            d.contains("--internal=false (this request: --internal=true)"),
            "{d}"
        );
        assert!(d.contains("vswitch.mtu=1450 (this request: 1400)"), "{d}");
    }

    #[test]
    fn values_are_checked() {
        let ok = to_bytes(&def());
        assert_eq!(parse_network("n", &ok).unwrap(), def());
        let mut d = def();
        d.vni = 5;
        assert!(
            parse_network("n", &to_bytes(&d))
                .unwrap_err()
                .message
                .contains("VNI 5")
        );
        d = def();
        d.format = 2;
        assert!(parse_network("n", &to_bytes(&d)).is_err());
        assert!(parse_host("h", br#"{"format":1,"vtep":"0.0.0.0"}"#).is_err());
        assert!(parse_host("h", br#"{"format":1,"vtep":"172.16.0.1"}"#).is_ok());
        assert!(
            parse_endpoint("e", br#"{"format":1,"mac":"02:42:0a:00:00:02","ipv4":null,"ipv6":null,"vtep":"172.16.0.1"}"#)
                .is_err()
        );
        assert!(
            parse_endpoint("e", br#"{"format":1,"mac":"03:42:0a:00:00:02","ipv4":"10.0.0.2","ipv6":null,"vtep":"172.16.0.1"}"#)
                .is_err(),
            "multicast MAC"
        );
    }

    fn arb_host() -> impl Strategy<Value = HostId> {
        "[a-zA-Z0-9._-]{1,20}".prop_map(|s| s.parse().unwrap())
    }

    proptest! {
        #[test]
        fn parsers_never_panic(v in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_network("x", &v);
            let _ = parse_host("x", &v);
            let _ = parse_endpoint("x", &v);
            let _ = parse_pool("x", &v);
            let _ = parse_addr("x", &v);
            let k = Keys::new("/p").unwrap();
            let _ = k.parse_view(&v);
            let _ = k.parse_addr(&v);
        }

        #[test]
        fn endpoint_round_trip(
            mac in any::<[u8; 6]>(),
            v4 in proptest::option::of(any::<u32>()),
            v6 in proptest::option::of(any::<u128>()),
            vtep in 1u32..0xe000_0000,
        ) {
            let mut m = mac;
            m[0] &= 0xfe;
            let e = EndpointRecord {
                format: FORMAT,
                mac: Mac(m),
                ipv4: v4.map(Ipv4Addr::from),
                ipv6: v6.map(std::net::Ipv6Addr::from),
                vtep: Ipv4Addr::from(vtep),
            };
            let r = parse_endpoint("e", &to_bytes(&e));
            prop_assert_eq!(r.is_ok(), v4.is_some() || v6.is_some());
            if let Ok(p) = r { prop_assert_eq!(p, e); }
        }

        #[test]
        fn view_keys_round_trip(
            a in any::<u32>(), len in 0u8..=32, h in arb_host(), e in "[0-9a-f]{1,64}",
        ) {
            let k = Keys::new("/x/y").unwrap();
            let pool = Cidr { addr: IpAddr::V4(Ipv4Addr::from(a)), prefix: len }.network();
            let nkey = cidr_key(&pool);
            prop_assert_eq!(parse_cidr_key(&nkey), Some(pool));
            let eid: Id = e.parse().unwrap();
            let key = k.endpoint(&nkey, &h, &eid);
            prop_assert_eq!(
                k.parse_view(key.as_bytes()),
                Some(ViewKey::Endpoint { network: nkey, host: h, endpoint: eid })
            );
        }
    }
}
