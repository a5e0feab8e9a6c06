//! The tracker's limits in Open vSwitch's terms: `ct-set-maxconns`, `ct-get-maxconns`,
//! `ct-set-limits`, `ct-get-limits` (printed as `ovs-appctl dpctl/ct-get-limits` prints
//! them) and `ct-del-limits`. Every argument is parsed before anything is sent.

use std::io::Write;

use proto::v1::{ConntrackZoneLimit, GetConntrackLimitsRequest, SetConntrackLimitsRequest};
use serde_json::{Value, json};

use crate::cli::Format;
use crate::connect::Client;
use crate::error::{Error, Result};
use crate::json::print_json;

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

fn number(arg: &str, v: &str, what: &str) -> Result<u32> {
    v.parse::<u32>()
        .map_err(|_| usage(format!("{arg}: {what} must be a number 0..=4294967295")))
}

fn zone(arg: &str, v: &str) -> Result<u32> {
    v.parse::<u16>()
        .map(u32::from)
        .map_err(|_| usage(format!("{arg}: a zone is 0..=65535")))
}

/// `zone=Z[,Z]...` into its zones.
fn zone_list(arg: &str, list: &str) -> Result<Vec<u32>> {
    list.split(',').map(|z| zone(arg, z)).collect()
}

/// The bridge: the one argument without `=`, at most one.
fn take_bridge(bridge: &mut String, arg: &str) -> Result<()> {
    if !bridge.is_empty() || arg.contains('=') {
        return Err(usage(format!("{arg}: unexpected argument")));
    }
    *bridge = arg.to_string();
    Ok(())
}

/// `ct-set-maxconns [BR] N`.
pub fn set_maxconns_args(args: &[String]) -> Result<SetConntrackLimitsRequest> {
    let (bridge, n) = match args {
        [n] => (String::new(), n),
        [b, n] => (b.clone(), n),
        _ => return Err(usage("ct-set-maxconns [BR] N".into())),
    };
    Ok(SetConntrackLimitsRequest {
        bridge,
        max_conns: Some(number(n, n, "N")?),
        ..Default::default()
    })
}

/// `ct-set-limits [BR] [default=N] [zone=Z,limit=N]...`.
pub fn set_limits_args(args: &[String]) -> Result<SetConntrackLimitsRequest> {
    let mut req = SetConntrackLimitsRequest::default();
    for a in args {
        if let Some(d) = a.strip_prefix("default=") {
            if req.default_limit.is_some() {
                return Err(usage(format!("{a}: default given twice")));
            }
            req.default_limit = Some(number(a, d, "the limit")?);
        } else if let Some(rest) = a.strip_prefix("zone=") {
            let (z, l) = rest
                .split_once(",limit=")
                .ok_or_else(|| usage(format!("{a}: expected zone=Z,limit=N")))?;
            let z = zone(a, z)?;
            if req.zones.iter().any(|o| o.zone == z) {
                return Err(usage(format!("{a}: zone {z} given twice")));
            }
            req.zones.push(ConntrackZoneLimit {
                zone: z,
                limit: number(a, l, "the limit")?,
                count: 0,
            });
        } else {
            take_bridge(&mut req.bridge, a)?;
        }
    }
    if req.default_limit.is_none() && req.zones.is_empty() {
        return Err(usage(
            "ct-set-limits [BR] [default=N] [zone=Z,limit=N]...: no limit given".into(),
        ));
    }
    Ok(req)
}

/// `[BR] zone=Z[,Z]...` (zones may also be given in several `zone=` arguments).
fn bridge_zones(args: &[String]) -> Result<(String, Vec<u32>)> {
    let (mut bridge, mut zones) = (String::new(), Vec::new());
    for a in args {
        match a.strip_prefix("zone=") {
            Some(list) => zones.extend(zone_list(a, list)?),
            None => take_bridge(&mut bridge, a)?,
        }
    }
    Ok((bridge, zones))
}

/// `ct-get-limits [BR] [zone=Z[,Z]...]`.
pub fn get_limits_args(args: &[String]) -> Result<GetConntrackLimitsRequest> {
    let (bridge, zones) = bridge_zones(args)?;
    Ok(GetConntrackLimitsRequest { bridge, zones })
}

/// `ct-del-limits [BR] zone=Z[,Z]...`.
pub fn del_limits_args(args: &[String]) -> Result<SetConntrackLimitsRequest> {
    let (bridge, del_zones) = bridge_zones(args)?;
    if del_zones.is_empty() {
        return Err(usage(
            "ct-del-limits [BR] zone=Z[,Z]...: no zone given".into(),
        ));
    }
    Ok(SetConntrackLimitsRequest {
        bridge,
        del_zones,
        ..Default::default()
    })
}

/// Sends a change.
pub async fn set(client: &mut Client, req: SetConntrackLimitsRequest) -> Result<()> {
    client.set_conntrack_limits(req).await?;
    Ok(())
}

/// `ct-get-limits` (`maxconns`: `ct-get-maxconns`): one block per bridge, headed by its
/// name when there are several.
pub async fn get(
    client: &mut Client,
    req: GetConntrackLimitsRequest,
    maxconns: bool,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let limits = client.get_conntrack_limits(req).await?.into_inner().limits;
    if format == Format::Json {
        let v: Vec<Value> = limits
            .iter()
            .map(|l| {
                json!({
                    "bridge": l.bridge,
                    "max_conns": l.max_conns.unwrap_or_default(),
                    "default_limit": l.default_limit,
                    "zones": l.zones.iter().map(|z| json!({
                        "zone": z.zone, "limit": z.limit, "count": z.count,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return print_json(out, &json!({ "limits": v }));
    }
    let several = limits.len() > 1;
    for l in &limits {
        if several {
            writeln!(out, "{}:", l.bridge)?;
        }
        if maxconns {
            writeln!(out, "{}", l.max_conns.unwrap_or_default())?;
            continue;
        }
        writeln!(out, "default limit={}", l.default_limit)?;
        for z in &l.zones {
            writeln!(out, "zone={},limit={},count={}", z.zone, z.limit, z.count)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn set_limits_parses_ovs_syntax() {
        let r = set_limits_args(&args("br0 default=10 zone=3,limit=2 zone=4,limit=0")).unwrap();
        assert_eq!(r.bridge, "br0");
        assert_eq!(r.default_limit, Some(10));
        assert_eq!(
            r.zones
                .iter()
                .map(|z| (z.zone, z.limit))
                .collect::<Vec<_>>(),
            [(3, 2), (4, 0)]
        );
    }

    #[test]
    fn bad_input_is_refused_whole() {
        for bad in [
            "",
            "br0",
            "zone=70000,limit=1",
            "zone=1",
            "zone=1,limit=x",
            "zone=1,limit=2 zone=1,limit=3",
            "default=1 default=2",
            "br0 br1 default=1",
            "limit=3",
        ] {
            assert!(set_limits_args(&args(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(del_limits_args(&args("br0")).is_err());
        assert!(del_limits_args(&args("zone=1,x")).is_err());
        assert!(set_maxconns_args(&args("br0 -1")).is_err());
        assert!(set_maxconns_args(&args("a b c")).is_err());
    }

    #[test]
    fn zone_lists() {
        let r = get_limits_args(&args("br0 zone=1,2 zone=7")).unwrap();
        assert_eq!((r.bridge.as_str(), r.zones), ("br0", vec![1, 2, 7]));
        let r = del_limits_args(&args("zone=5")).unwrap();
        assert_eq!((r.bridge.as_str(), r.del_zones), ("", vec![5]));
        let r = set_maxconns_args(&args("br0 100")).unwrap();
        assert_eq!((r.bridge.as_str(), r.max_conns), ("br0", Some(100)));
    }
}
