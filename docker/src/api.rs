//! The libnetwork remote driver protocol: the JSON requests dockerd sends to a network
//! plugin and the answers it expects, parsed strictly into typed requests.
//!
//! What: one `parse_*` function per request, from the raw body to a typed request, and the
//! response bodies. dockerd POSTs `/Plugin.Activate` and `/NetworkDriver.*` with bodies
//! whose field names are Go's (`NetworkID`, `IPv4Data`, ...); nil maps and slices arrive as
//! `null`. Strict: every value has its type (ids are hexadecimal like Docker's, addresses are
//! `ADDR/PREFIX`, MAC addresses six octets); unknown fields are ignored, since newer Docker
//! versions add some. Missing ids are tolerated here (they parse to `None`) and each
//! handler decides what a missing id means.
//!
//! Contract: the parsers never panic, whatever the bytes (`fuzz/fuzz_targets/docker_plugin.rs`,
//! and the property tests below); a bad request is a [`RequestError`] naming the field.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The content type of every answer (Docker's plugin protocol, version 1.2).
pub const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// The largest request body accepted. dockerd's requests are a few kilobytes at most.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Generic options (`docker network create -o K=V`) inside a request's `Options`.
pub const GENERIC: &str = "com.docker.network.generic";
/// Set by `docker network create --ipv6`.
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// Set by `docker network create --internal`.
pub const INTERNAL: &str = "com.docker.network.internal";
/// Port mappings (`docker run -p`) in ProgramExternalConnectivity.
pub const PORT_MAP: &str = "com.docker.network.portmap";
/// Exposed ports in ProgramExternalConnectivity.
pub const EXPOSED_PORTS: &str = "com.docker.network.endpoint.exposedports";

/// A request that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON of the request's shape.
    #[error("malformed request body: {0}")]
    Json(String),
    /// A field has a value of the wrong form.
    #[error("{field}: {message}")]
    Field {
        /// The field, e.g. `IPv4Data[0].Gateway`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl RequestError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> RequestError {
        RequestError::Field {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A Docker object id (network or endpoint): 1 to 64 lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

impl Id {
    /// The id as Docker spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first `n` digits (all of them when shorter): for interface names.
    pub fn short(&self, n: usize) -> &str {
        &self.0[..n.min(self.0.len())]
    }
}

impl FromStr for Id {
    type Err = String;
    fn from_str(s: &str) -> Result<Id, String> {
        if s.is_empty() || s.len() > 64 {
            return Err(format!(
                "{s:?} is not a Docker id (1-64 hexadecimal digits)"
            ));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "{s:?} is not a Docker id (lowercase hexadecimal digits only)"
            ));
        }
        Ok(Id(s.to_string()))
    }
}

impl TryFrom<String> for Id {
    type Error = String;
    fn try_from(s: String) -> Result<Id, String> {
        s.parse()
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address with its prefix length, `ADDR/PREFIX` (what Docker sends for pools, gateways
/// and interface addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    /// The address (host bits may be set: an interface address).
    pub addr: IpAddr,
    /// Prefix length, at most 32 for IPv4 and 128 for IPv6.
    pub prefix: u8,
}

impl Cidr {
    /// The network address (host bits cleared) with the same prefix.
    pub fn network(&self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr {
            addr,
            prefix: self.prefix,
        }
    }

    /// True if `ip` is inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let other = Cidr {
            addr: ip,
            prefix: self.prefix,
        };
        ip.is_ipv4() == self.addr.is_ipv4() && other.network() == self.network()
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?} is not ADDRESS/PREFIX");
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("{s:?}: prefix longer than {max}"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Cidr, String> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An Ethernet address, printed `02:42:ac:11:00:02`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A locally administered unicast address derived from an IPv4 address, as Docker's
    /// bridge driver makes them (`02:42` and the four octets), so addresses are stable
    /// across restarts and readable.
    pub fn from_ipv4(ip: std::net::Ipv4Addr) -> Mac {
        let o = ip.octets();
        Mac([0x02, 0x42, o[0], o[1], o[2], o[3]])
    }
}

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let bad = || format!("{s:?} is not a MAC address (six hex octets, a:b:c:d:e:f)");
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for o in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        if out[0] & 1 == 1 {
            return Err(format!("{s:?} is a multicast address, not an interface's"));
        }
        Ok(Mac(out))
    }
}

impl TryFrom<String> for Mac {
    type Error = String;
    fn try_from(s: String) -> Result<Mac, String> {
        s.parse()
    }
}

impl From<Mac> for String {
    fn from(m: Mac) -> String {
        m.to_string()
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// One address pool Docker's IPAM gave the network (`driverapi.IPAMData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    /// The pool, e.g. `172.18.0.0/16`.
    pub pool: Cidr,
    /// The gateway address with the pool's prefix, e.g. `172.18.0.1/16`.
    pub gateway: Option<Cidr>,
    /// Auxiliary addresses (`--aux-address`), by name.
    #[serde(default)]
    pub aux: BTreeMap<String, Cidr>,
}

/// NetworkDriver.CreateNetwork (and AllocateNetwork, which has the same shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateNetwork {
    /// The network; `None` when dockerd sent none.
    pub network: Option<Id>,
    /// `-o K=V` options, as given.
    pub generic: BTreeMap<String, String>,
    /// `--ipv6`.
    pub ipv6: bool,
    /// `--internal`.
    pub internal: bool,
    /// IPv4 pools.
    pub ipv4: Vec<IpamData>,
    /// IPv6 pools.
    pub ipv6_data: Vec<IpamData>,
}

/// A request naming only a network (DeleteNetwork, FreeNetwork).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRef {
    /// The network; `None` when dockerd sent none.
    pub network: Option<Id>,
}

/// A request naming an endpoint (DeleteEndpoint, EndpointOperInfo, Leave,
/// RevokeExternalConnectivity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRef {
    /// The network.
    pub network: Option<Id>,
    /// The endpoint.
    pub endpoint: Option<Id>,
}

/// NetworkDriver.CreateEndpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateEndpoint {
    /// The network.
    pub network: Option<Id>,
    /// The endpoint.
    pub endpoint: Option<Id>,
    /// IPv4 address from IPAM (`--ip`), with the pool's prefix.
    pub address: Option<Cidr>,
    /// IPv6 address from IPAM (`--ip6`).
    pub address_v6: Option<Cidr>,
    /// `--mac-address`, when given.
    pub mac: Option<Mac>,
}

/// NetworkDriver.Join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// The network.
    pub network: Option<Id>,
    /// The endpoint.
    pub endpoint: Option<Id>,
    /// The container's network namespace path.
    pub sandbox_key: String,
}

/// The transport protocol of a port mapping (IANA numbers, as libnetwork sends them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// 132.
    Sctp,
}

impl Proto {
    fn from_number(n: u64) -> Option<Proto> {
        match n {
            6 => Some(Proto::Tcp),
            17 => Some(Proto::Udp),
            132 => Some(Proto::Sctp),
            _ => None,
        }
    }
}

/// One `-p` mapping: the host's `host_ip:host_port[-host_port_end]` to the container's
/// `port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Protocol.
    pub proto: Proto,
    /// The container's port.
    pub port: u16,
    /// The host's address (`None`: every address).
    pub host_ip: Option<IpAddr>,
    /// The host's first port (0: Docker picks).
    pub host_port: u16,
    /// The host's last port of a range (equal to `host_port` for one port).
    pub host_port_end: u16,
}

/// NetworkDriver.ProgramExternalConnectivity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalConnectivity {
    /// The network.
    pub network: Option<Id>,
    /// The endpoint.
    pub endpoint: Option<Id>,
    /// `-p` mappings.
    pub port_map: Vec<PortMapping>,
}

// ---- raw shapes, as dockerd writes them ----

#[derive(Deserialize)]
struct RawIds {
    #[serde(rename = "NetworkID", default)]
    network: Option<String>,
    #[serde(rename = "EndpointID", default)]
    endpoint: Option<String>,
}

#[derive(Deserialize)]
struct RawIpam {
    #[serde(rename = "Pool", default)]
    pool: Option<String>,
    #[serde(rename = "Gateway", default)]
    gateway: Option<String>,
    #[serde(rename = "AuxAddresses", default)]
    aux: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct RawCreateNetwork {
    #[serde(rename = "NetworkID", default)]
    network: Option<String>,
    #[serde(rename = "Options", default)]
    options: Option<serde_json::Map<String, Value>>,
    #[serde(rename = "IPv4Data", default)]
    ipv4: Option<Vec<RawIpam>>,
    #[serde(rename = "IPv6Data", default)]
    ipv6: Option<Vec<RawIpam>>,
}

#[derive(Deserialize)]
struct RawInterface {
    #[serde(rename = "Address", default)]
    address: Option<String>,
    #[serde(rename = "AddressIPv6", default)]
    address_v6: Option<String>,
    #[serde(rename = "MacAddress", default)]
    mac: Option<String>,
}

#[derive(Deserialize)]
struct RawCreateEndpoint {
    #[serde(rename = "NetworkID", default)]
    network: Option<String>,
    #[serde(rename = "EndpointID", default)]
    endpoint: Option<String>,
    #[serde(rename = "Interface", default)]
    interface: Option<RawInterface>,
}

#[derive(Deserialize)]
struct RawJoin {
    #[serde(rename = "NetworkID", default)]
    network: Option<String>,
    #[serde(rename = "EndpointID", default)]
    endpoint: Option<String>,
    #[serde(rename = "SandboxKey", default)]
    sandbox_key: Option<String>,
}

#[derive(Deserialize)]
struct RawExternal {
    #[serde(rename = "NetworkID", default)]
    network: Option<String>,
    #[serde(rename = "EndpointID", default)]
    endpoint: Option<String>,
    #[serde(rename = "Options", default)]
    options: Option<serde_json::Map<String, Value>>,
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, RequestError> {
    serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))
}

/// An optional id: absent, `null` or empty is `None`; anything else must be an [`Id`].
fn opt_id(field: &str, v: Option<String>) -> Result<Option<Id>, RequestError> {
    match v {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| RequestError::field(field, e)),
    }
}

/// An optional `ADDR/PREFIX`: absent or empty is `None`.
fn opt_cidr(field: &str, v: Option<String>) -> Result<Option<Cidr>, RequestError> {
    match v {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|e| RequestError::field(field, e)),
    }
}

fn ipam(field: &str, raw: Option<Vec<RawIpam>>, v6: bool) -> Result<Vec<IpamData>, RequestError> {
    let mut out = Vec::new();
    for (i, r) in raw.unwrap_or_default().into_iter().enumerate() {
        let f = |name: &str| format!("{field}[{i}].{name}");
        let pool = opt_cidr(&f("Pool"), r.pool)?
            .ok_or_else(|| RequestError::field(f("Pool"), "missing"))?;
        let gateway = opt_cidr(&f("Gateway"), r.gateway)?;
        let mut aux = BTreeMap::new();
        for (k, v) in r.aux.unwrap_or_default() {
            let c = opt_cidr(&f(&format!("AuxAddresses.{k}")), Some(v))?
                .ok_or_else(|| RequestError::field(f("AuxAddresses"), "empty address"))?;
            aux.insert(k, c);
        }
        for c in std::iter::once(&pool).chain(&gateway).chain(aux.values()) {
            if c.addr.is_ipv6() != v6 {
                return Err(RequestError::field(
                    field,
                    format!("{c} is not an IPv{} address", if v6 { 6 } else { 4 }),
                ));
            }
        }
        if let Some(g) = &gateway
            && !pool.contains(g.addr)
        {
            return Err(RequestError::field(
                f("Gateway"),
                format!("{g} is outside the pool {pool}"),
            ));
        }
        out.push(IpamData { pool, gateway, aux });
    }
    Ok(out)
}

/// A JSON boolean option that Go may also have sent as a string.
fn flag(options: &serde_json::Map<String, Value>, key: &str) -> Result<bool, RequestError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| RequestError::field(format!("Options.{key}"), "not true or false")),
        Some(_) => Err(RequestError::field(
            format!("Options.{key}"),
            "not true or false",
        )),
    }
}

/// Parses NetworkDriver.CreateNetwork (or AllocateNetwork).
pub fn parse_create_network(body: &[u8]) -> Result<CreateNetwork, RequestError> {
    let raw: RawCreateNetwork = json(body)?;
    let options = raw.options.unwrap_or_default();
    let mut generic = BTreeMap::new();
    match options.get(GENERIC) {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(RequestError::field(
                            format!("Options.{GENERIC}.{k}"),
                            "not a string",
                        ));
                    }
                };
                generic.insert(k.clone(), v);
            }
        }
        Some(_) => {
            return Err(RequestError::field(
                format!("Options.{GENERIC}"),
                "not an object",
            ));
        }
    }
    Ok(CreateNetwork {
        network: opt_id("NetworkID", raw.network)?,
        ipv6: flag(&options, ENABLE_IPV6)?,
        internal: flag(&options, INTERNAL)?,
        generic,
        ipv4: ipam("IPv4Data", raw.ipv4, false)?,
        ipv6_data: ipam("IPv6Data", raw.ipv6, true)?,
    })
}

/// Parses a request naming a network (DeleteNetwork, FreeNetwork).
pub fn parse_network_ref(body: &[u8]) -> Result<NetworkRef, RequestError> {
    let raw: RawIds = json(body)?;
    Ok(NetworkRef {
        network: opt_id("NetworkID", raw.network)?,
    })
}

/// Parses a request naming an endpoint (DeleteEndpoint, EndpointOperInfo, Leave,
/// RevokeExternalConnectivity).
pub fn parse_endpoint_ref(body: &[u8]) -> Result<EndpointRef, RequestError> {
    let raw: RawIds = json(body)?;
    Ok(EndpointRef {
        network: opt_id("NetworkID", raw.network)?,
        endpoint: opt_id("EndpointID", raw.endpoint)?,
    })
}

/// Parses NetworkDriver.CreateEndpoint.
pub fn parse_create_endpoint(body: &[u8]) -> Result<CreateEndpoint, RequestError> {
    let raw: RawCreateEndpoint = json(body)?;
    let (mut address, mut address_v6, mut mac) = (None, None, None);
    if let Some(i) = raw.interface {
        address = opt_cidr("Interface.Address", i.address)?;
        address_v6 = opt_cidr("Interface.AddressIPv6", i.address_v6)?;
        mac = match i.mac {
            Some(s) if !s.is_empty() => Some(
                s.parse()
                    .map_err(|e| RequestError::field("Interface.MacAddress", e))?,
            ),
            _ => None,
        };
    }
    if address.is_some_and(|a| !a.addr.is_ipv4()) {
        return Err(RequestError::field(
            "Interface.Address",
            "not an IPv4 address",
        ));
    }
    if address_v6.is_some_and(|a| !a.addr.is_ipv6()) {
        return Err(RequestError::field(
            "Interface.AddressIPv6",
            "not an IPv6 address",
        ));
    }
    Ok(CreateEndpoint {
        network: opt_id("NetworkID", raw.network)?,
        endpoint: opt_id("EndpointID", raw.endpoint)?,
        address,
        address_v6,
        mac,
    })
}

/// Parses NetworkDriver.Join.
pub fn parse_join(body: &[u8]) -> Result<Join, RequestError> {
    let raw: RawJoin = json(body)?;
    Ok(Join {
        network: opt_id("NetworkID", raw.network)?,
        endpoint: opt_id("EndpointID", raw.endpoint)?,
        sandbox_key: raw.sandbox_key.unwrap_or_default(),
    })
}

fn port_number(field: &str, v: Option<&Value>) -> Result<u16, RequestError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| RequestError::field(field, format!("{n} is not a port 0..=65535"))),
        Some(_) => Err(RequestError::field(field, "not a number")),
    }
}

fn port_mapping(i: usize, v: &Value) -> Result<PortMapping, RequestError> {
    let f = |name: &str| format!("Options.{PORT_MAP}[{i}].{name}");
    let obj = v
        .as_object()
        .ok_or_else(|| RequestError::field(f(""), "not an object"))?;
    let proto = obj
        .get("Proto")
        .and_then(Value::as_u64)
        .and_then(Proto::from_number)
        .ok_or_else(|| RequestError::field(f("Proto"), "not 6 (tcp), 17 (udp) or 132 (sctp)"))?;
    let host_ip =
        match obj.get("HostIP") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.parse::<IpAddr>().map_err(|_| {
                RequestError::field(f("HostIP"), format!("{s:?} is not an address"))
            })?),
            Some(_) => return Err(RequestError::field(f("HostIP"), "not a string")),
        };
    let port = port_number(&f("Port"), obj.get("Port"))?;
    let host_port = port_number(&f("HostPort"), obj.get("HostPort"))?;
    let mut host_port_end = port_number(&f("HostPortEnd"), obj.get("HostPortEnd"))?;
    if host_port_end == 0 {
        host_port_end = host_port;
    }
    if host_port_end < host_port {
        return Err(RequestError::field(
            f("HostPortEnd"),
            "smaller than HostPort",
        ));
    }
    Ok(PortMapping {
        proto,
        port,
        host_ip,
        host_port,
        host_port_end,
    })
}

/// Parses NetworkDriver.ProgramExternalConnectivity.
pub fn parse_external(body: &[u8]) -> Result<ExternalConnectivity, RequestError> {
    let raw: RawExternal = json(body)?;
    let options = raw.options.unwrap_or_default();
    let port_map = match options.get(PORT_MAP) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| port_mapping(i, v))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(RequestError::field(
                format!("Options.{PORT_MAP}"),
                "not a list",
            ));
        }
    };
    Ok(ExternalConnectivity {
        network: opt_id("NetworkID", raw.network)?,
        endpoint: opt_id("EndpointID", raw.endpoint)?,
        port_map,
    })
}

/// Checks that a body with nothing to read (Activate, GetCapabilities, Discover*) is
/// empty, `null` or a JSON object.
pub fn parse_empty(body: &[u8]) -> Result<(), RequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Null | Value::Object(_)) => Ok(()),
        Ok(_) => Err(RequestError::Json("expected an object".into())),
        Err(e) => Err(RequestError::Json(e.to_string())),
    }
}

// ---- answers ----

/// The answer to Plugin.Activate: a network driver, and the cluster-wide IPAM driver of
/// overlay networks (`--ipam-driver`, `ipam`).
pub fn activate_response() -> Value {
    serde_json::json!({ "Implements": ["NetworkDriver", "IpamDriver"] })
}

/// The answer to NetworkDriver.GetCapabilities: networks are local to this host (the
/// overlay mode keeps its cluster state in etcd, not in Docker's global scope).
pub fn capabilities_response() -> Value {
    serde_json::json!({ "Scope": "local", "ConnectivityScope": "local" })
}

/// An error answer: `{"Err": "..."}` as the network driver protocol has it, and the same
/// as `Error`, which is where libnetwork's remote IPAM reads it.
pub fn error_response(message: &str) -> Value {
    serde_json::json!({ "Err": message, "Error": message })
}

/// The answer to CreateEndpoint: the MAC address when the plugin chose it (Docker refuses
/// an answer that changes what it sent).
pub fn create_endpoint_response(mac: Option<Mac>) -> Value {
    match mac {
        Some(m) => serde_json::json!({ "Interface": { "MacAddress": m.to_string() } }),
        None => serde_json::json!({}),
    }
}

/// The answer to Join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// The interface Docker moves into the container.
    pub src_name: String,
    /// Docker names it `{dst_prefix}N` inside (`eth0`, `eth1`, ...).
    pub dst_prefix: String,
    /// IPv4 default gateway, none for internal networks.
    pub gateway: Option<IpAddr>,
    /// IPv6 default gateway.
    pub gateway_v6: Option<IpAddr>,
    /// True for internal networks: no gateway, and Docker must not add one of its own.
    pub disable_gateway_service: bool,
}

impl JoinResponse {
    /// The JSON body.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({
            "InterfaceName": { "SrcName": self.src_name, "DstPrefix": self.dst_prefix },
            "DisableGatewayService": self.disable_gateway_service,
        });
        if let Some(g) = self.gateway {
            v["Gateway"] = Value::String(g.to_string());
        }
        if let Some(g) = self.gateway_v6 {
            v["GatewayIPv6"] = Value::String(g.to_string());
        }
        v
    }
}

pub mod ipam;

#[cfg(test)]
mod tests;
