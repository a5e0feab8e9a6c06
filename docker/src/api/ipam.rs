//! The libnetwork remote IPAM protocol (`IpamDriver.*`), parsed strictly: what dockerd sends
//! to an IPAM plugin (`docker network create --ipam-driver vswitch`) and the answers.
//!
//! Pool ids are the pools themselves (`10.200.0.0/16`): the same on every host, so a
//! request naming a pool means the same thing wherever it comes from. Untrusted input like
//! every request: the parsers never panic (property tests below, fuzz target
//! `docker_plugin`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

use super::{Cidr, Mac, RequestError, json};

/// `RequestAddressType` with this value asks for the network's gateway.
pub const GATEWAY_TYPE: &str = "com.docker.network.gateway";
/// Where Docker passes the endpoint's MAC address (when the driver asks for it).
pub const MAC_OPTION: &str = "com.docker.network.endpoint.macaddress";
/// `--ipam-opt vswitch.pool=NAME`: a pool chosen once, found by name on other hosts.
pub const POOL_NAME: &str = "vswitch.pool";

/// IpamDriver.RequestPool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPool {
    /// `--subnet`, canonical (host bits clear); `None`: the IPAM chooses.
    pub pool: Option<Cidr>,
    /// `--ipam-opt vswitch.pool=NAME`.
    pub name: Option<String>,
    /// An IPv6 pool.
    pub v6: bool,
}

/// IpamDriver.RequestAddress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAddress {
    /// The pool (its id).
    pub pool: Cidr,
    /// The address asked for (`--ip`, `--gateway`), inside the pool.
    pub address: Option<IpAddr>,
    /// The network's gateway is asked for.
    pub gateway: bool,
    /// The endpoint's MAC address, when Docker passed it.
    pub mac: Option<Mac>,
}

/// IpamDriver.ReleaseAddress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseAddress {
    /// The pool.
    pub pool: Cidr,
    /// The address, inside the pool.
    pub address: IpAddr,
}

#[derive(Deserialize)]
struct RawRequestPool {
    #[serde(rename = "Pool", default)]
    pool: Option<String>,
    #[serde(rename = "SubPool", default)]
    sub_pool: Option<String>,
    #[serde(rename = "Options", default)]
    options: Option<BTreeMap<String, Value>>,
    #[serde(rename = "V6", default)]
    v6: Option<bool>,
}

#[derive(Deserialize)]
struct RawPoolAddress {
    #[serde(rename = "PoolID", default)]
    pool: Option<String>,
    #[serde(rename = "Address", default)]
    address: Option<String>,
    #[serde(rename = "Options", default)]
    options: Option<BTreeMap<String, Value>>,
}

fn opt_string(field: &str, v: &Value) -> Result<Option<String>, RequestError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(RequestError::field(field, "not a string")),
    }
}

/// True for a valid pool name: 1-63 of a-z A-Z 0-9 . _ -.
pub fn valid_pool_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A pool id: a canonical prefix.
fn pool_id(v: Option<String>) -> Result<Cidr, RequestError> {
    let s = v.unwrap_or_default();
    let c: Cidr = s
        .parse()
        .map_err(|e| RequestError::field("PoolID", format!("{e} (not a pool of this IPAM)")))?;
    if c.network() != c {
        return Err(RequestError::field(
            "PoolID",
            format!("{s:?} is not a pool of this IPAM (host bits set)"),
        ));
    }
    Ok(c)
}

fn address_in(pool: &Cidr, v: Option<String>) -> Result<Option<IpAddr>, RequestError> {
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    // Docker sends a bare address; accept ADDR/LEN too.
    let a: IpAddr = match s.split_once('/') {
        Some((a, _)) => a.parse(),
        None => s.parse(),
    }
    .map_err(|_| RequestError::field("Address", format!("{s:?} is not an address")))?;
    if !pool.contains(a) {
        return Err(RequestError::field(
            "Address",
            format!("{a} is outside the pool {pool}"),
        ));
    }
    Ok(Some(a))
}

/// Parses IpamDriver.RequestPool.
pub fn parse_request_pool(body: &[u8]) -> Result<RequestPool, RequestError> {
    let raw: RawRequestPool = json(body)?;
    let v6 = raw.v6.unwrap_or(false);
    if raw.sub_pool.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(RequestError::field(
            "SubPool",
            "--ip-range is not supported by the vswitch IPAM (addresses come from the whole pool)",
        ));
    }
    let pool = match raw.pool.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let c: Cidr = s.parse().map_err(|e| RequestError::field("Pool", e))?;
            if c.addr.is_ipv6() != v6 {
                return Err(RequestError::field(
                    "Pool",
                    format!("{c} is not an IPv{} prefix", if v6 { 6 } else { 4 }),
                ));
            }
            Some(c.network())
        }
    };
    let mut name = None;
    for (k, v) in raw.options.unwrap_or_default() {
        let f = format!("Options.{k}");
        match k.as_str() {
            POOL_NAME => {
                let n = opt_string(&f, &v)?;
                if let Some(n) = &n
                    && !valid_pool_name(n)
                {
                    return Err(RequestError::field(
                        f,
                        format!("{n:?}: a pool name is 1-63 of a-z A-Z 0-9 . _ -"),
                    ));
                }
                name = n;
            }
            k if k.starts_with("com.docker.") => {}
            _ => {
                return Err(RequestError::field(
                    f,
                    format!("unknown option; the vswitch IPAM knows {POOL_NAME}"),
                ));
            }
        }
    }
    Ok(RequestPool { pool, name, v6 })
}

/// Parses IpamDriver.ReleasePool: the pool.
pub fn parse_release_pool(body: &[u8]) -> Result<Cidr, RequestError> {
    let raw: RawPoolAddress = json(body)?;
    pool_id(raw.pool)
}

/// Parses IpamDriver.RequestAddress.
pub fn parse_request_address(body: &[u8]) -> Result<RequestAddress, RequestError> {
    let raw: RawPoolAddress = json(body)?;
    let pool = pool_id(raw.pool)?;
    let address = address_in(&pool, raw.address)?;
    let mut gateway = false;
    let mut mac = None;
    for (k, v) in raw.options.unwrap_or_default() {
        let f = format!("Options.{k}");
        match k.as_str() {
            "RequestAddressType" => gateway = opt_string(&f, &v)?.as_deref() == Some(GATEWAY_TYPE),
            MAC_OPTION => {
                mac = opt_string(&f, &v)?
                    .map(|s| s.parse::<Mac>())
                    .transpose()
                    .map_err(|e| RequestError::field(f, e))?;
            }
            _ => {}
        }
    }
    Ok(RequestAddress {
        pool,
        address,
        gateway,
        mac,
    })
}

/// Parses IpamDriver.ReleaseAddress.
pub fn parse_release_address(body: &[u8]) -> Result<ReleaseAddress, RequestError> {
    let raw: RawPoolAddress = json(body)?;
    let pool = pool_id(raw.pool)?;
    let address =
        address_in(&pool, raw.address)?.ok_or_else(|| RequestError::field("Address", "missing"))?;
    Ok(ReleaseAddress { pool, address })
}

/// The answer to IpamDriver.GetCapabilities.
pub fn capabilities_response() -> Value {
    serde_json::json!({ "RequiresMACAddress": false, "RequiresRequestReplay": false })
}

/// The answer to IpamDriver.GetDefaultAddressSpaces.
pub fn address_spaces_response() -> Value {
    serde_json::json!({
        "LocalDefaultAddressSpace": "vswitch",
        "GlobalDefaultAddressSpace": "vswitch",
    })
}

/// The answer to RequestPool.
pub fn pool_response(pool: &Cidr) -> Value {
    serde_json::json!({ "PoolID": pool.to_string(), "Pool": pool.to_string(), "Data": {} })
}

/// The answer to RequestAddress.
pub fn address_response(address: &Cidr) -> Value {
    serde_json::json!({ "Address": address.to_string(), "Data": {} })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Bodies as dockerd 20.10 sends them.
    const REQUEST_POOL: &str = r#"{"AddressSpace":"vswitch","Pool":"10.200.0.0/16","SubPool":"","Options":{"vswitch.pool":"web"},"V6":false}"#;
    const REQUEST_GATEWAY: &str = r#"{"PoolID":"10.200.0.0/16","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#;
    const REQUEST_ADDRESS: &str =
        r#"{"PoolID":"10.200.0.0/16","Address":"10.200.0.7","Options":null}"#;

    #[test]
    fn docker_bodies() {
        let p = parse_request_pool(REQUEST_POOL.as_bytes()).unwrap();
        assert_eq!(p.pool.unwrap().to_string(), "10.200.0.0/16");
        assert_eq!(p.name.as_deref(), Some("web"));
        let g = parse_request_address(REQUEST_GATEWAY.as_bytes()).unwrap();
        assert!(g.gateway && g.address.is_none());
        let a = parse_request_address(REQUEST_ADDRESS.as_bytes()).unwrap();
        assert_eq!(a.address.unwrap().to_string(), "10.200.0.7");
        assert!(!a.gateway);
        let r = parse_release_address(REQUEST_ADDRESS.as_bytes()).unwrap();
        assert_eq!(r.address.to_string(), "10.200.0.7");
        assert_eq!(
            parse_release_pool(br#"{"PoolID":"10.200.0.0/16"}"#)
                .unwrap()
                .to_string(),
            "10.200.0.0/16"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let e = parse_request_address(br#"{"PoolID":"10.200.0.0/16","Address":"10.9.0.1"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Address") && e.contains("outside"), "{e}");
        let e = parse_release_pool(br#"{"PoolID":"10.200.0.1/16"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PoolID"), "{e}");
        let e = parse_request_pool(br#"{"Pool":"10.0.0.0/8","SubPool":"10.1.0.0/16"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ip-range"), "{e}");
        let e = parse_request_pool(br#"{"Pool":"fd00::/64","V6":false}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("IPv4"), "{e}");
        let e = parse_request_pool(br#"{"Options":{"vswitch.pool":"a/b"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pool name"), "{e}");
        let e = parse_request_pool(br#"{"Options":{"vswitch.colour":"red"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vswitch.colour"), "{e}");
    }

    proptest! {
        #[test]
        fn never_panic(b in proptest::collection::vec(any::<u8>(), 0..160)) {
            let _ = parse_request_pool(&b);
            let _ = parse_release_pool(&b);
            let _ = parse_request_address(&b);
            let _ = parse_release_address(&b);
        }

        #[test]
        fn accepted_addresses_are_in_their_pool(
            a in any::<u32>(), len in 0u8..=32, b in any::<u32>(),
        ) {
            let pool = Cidr { addr: IpAddr::V4(a.into()), prefix: len }.network();
            let ip = IpAddr::V4(b.into());
            let body = serde_json::json!({"PoolID": pool.to_string(), "Address": ip.to_string()});
            let r = parse_request_address(body.to_string().as_bytes());
            prop_assert_eq!(r.is_ok(), pool.contains(ip));
        }
    }
}
