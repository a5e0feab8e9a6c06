//! The tracker's timeouts by Open vSwitch's attribute names (its zone timeout policies):
//! `ct-set-timeouts`, `ct-get-timeouts` (printed as `ovs-vsctl list-zone-tp` prints them,
//! with every attribute in effect) and `ct-del-timeouts`. Every argument is parsed before
//! anything is sent.

use std::io::Write;

use proto::ct_timeouts::NAMES;
use proto::v1::{ConntrackTimeouts, GetConntrackTimeoutsRequest, SetConntrackTimeoutsRequest};
use serde_json::{Map, Value, json};

use crate::cli::Format;
use crate::connect::Client;
use crate::error::{Error, Result};
use crate::json::print_json;

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

/// `[BR] [zone=N]` and the other arguments, in order.
fn bridge_zone(args: &[String]) -> Result<(String, Option<u32>, Vec<&str>)> {
    let (mut bridge, mut zone, mut rest) = (String::new(), None, Vec::new());
    for a in args {
        if let Some(z) = a.strip_prefix("zone=") {
            if zone.is_some() {
                return Err(usage(format!("{a}: zone given twice")));
            }
            let z = z
                .parse::<u16>()
                .map_err(|_| usage(format!("{a}: a zone is 0..=65535")))?;
            zone = Some(u32::from(z));
        } else if a.contains('=') {
            rest.push(a.as_str());
        } else if bridge.is_empty() {
            bridge = a.clone();
        } else {
            return Err(usage(format!("{a}: unexpected argument")));
        }
    }
    Ok((bridge, zone, rest))
}

/// `ct-set-timeouts [BR] [zone=N] NAME=SECS...`.
pub fn set_args(args: &[String]) -> Result<SetConntrackTimeoutsRequest> {
    let (bridge, zone, rest) = bridge_zone(args)?;
    let mut t = ConntrackTimeouts::default();
    for a in rest {
        let (name, v) = a.split_once('=').unwrap_or((a, ""));
        let secs = v
            .parse::<u32>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| usage(format!("{a}: a timeout is 1..=4294967295 seconds")))?;
        if let Some(i) = NAMES.iter().position(|n| *n == name)
            && t.attrs()[i].is_some()
        {
            return Err(usage(format!("{a}: {name} given twice")));
        }
        if !t.set(name, secs) {
            return Err(usage(format!(
                "{a}: no timeout {name} (one of {})",
                NAMES.join(", ")
            )));
        }
    }
    if t.is_empty() {
        return Err(usage(
            "ct-set-timeouts [BR] [zone=N] NAME=SECS...: no timeout given".into(),
        ));
    }
    Ok(SetConntrackTimeoutsRequest {
        bridge,
        zone,
        timeouts: Some(t),
        delete: false,
    })
}

/// `ct-get-timeouts [BR] [zone=N]`.
pub fn get_args(args: &[String]) -> Result<GetConntrackTimeoutsRequest> {
    match bridge_zone(args)? {
        (bridge, zone, rest) if rest.is_empty() => Ok(GetConntrackTimeoutsRequest { bridge, zone }),
        (_, _, rest) => Err(usage(format!("{}: unexpected argument", rest[0]))),
    }
}

/// `ct-del-timeouts [BR] [zone=N]`.
pub fn del_args(args: &[String]) -> Result<SetConntrackTimeoutsRequest> {
    match bridge_zone(args)? {
        (bridge, zone, rest) if rest.is_empty() => Ok(SetConntrackTimeoutsRequest {
            bridge,
            zone,
            timeouts: None,
            delete: true,
        }),
        (_, _, rest) => Err(usage(format!("{}: unexpected argument", rest[0]))),
    }
}

/// Sends a change.
pub async fn set(client: &mut Client, req: SetConntrackTimeoutsRequest) -> Result<()> {
    client.set_conntrack_timeouts(req).await?;
    Ok(())
}

fn json_of(t: &ConntrackTimeouts) -> Value {
    let m: Map<String, Value> = NAMES
        .iter()
        .zip(t.attrs())
        .filter_map(|(n, v)| v.map(|v| (n.to_string(), json!(v))))
        .collect();
    Value::Object(m)
}

/// `ct-get-timeouts`: `Zone:default, Timeout Policies: ...` for the bridge's (unless one
/// zone was asked for), then one line per zone; headed by the bridge's name when several.
pub async fn get(
    client: &mut Client,
    req: GetConntrackTimeoutsRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let one_zone = req.zone.is_some();
    let policies = client
        .get_conntrack_timeouts(req)
        .await?
        .into_inner()
        .policies;
    if format == Format::Json {
        let v: Vec<Value> = policies
            .iter()
            .map(|p| {
                json!({
                    "bridge": p.bridge,
                    "default": json_of(&p.default_timeouts.unwrap_or_default()),
                    "zones": p.zones.iter().map(|z| json!({
                        "zone": z.zone,
                        "timeouts": json_of(&z.timeouts.unwrap_or_default()),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        return print_json(out, &json!({ "timeouts": v }));
    }
    let several = policies.len() > 1;
    for p in &policies {
        if several {
            writeln!(out, "{}:", p.bridge)?;
        }
        if !one_zone {
            let d = p.default_timeouts.unwrap_or_default();
            writeln!(out, "Zone:default, Timeout Policies: {}", d.to_text())?;
        }
        for z in &p.zones {
            let t = z.timeouts.unwrap_or_default();
            writeln!(out, "Zone:{}, Timeout Policies: {}", z.zone, t.to_text())?;
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
    fn set_parses_ovs_names() {
        let r = set_args(&args("br0 zone=5 udp_first=2 tcp_established=100")).unwrap();
        assert_eq!(
            (r.bridge.as_str(), r.zone, r.delete),
            ("br0", Some(5), false)
        );
        let t = r.timeouts.unwrap();
        assert_eq!((t.udp_first, t.tcp_established), (Some(2), Some(100)));
        let r = set_args(&args("icmp_reply=9")).unwrap();
        assert_eq!((r.bridge.as_str(), r.zone), ("", None));
    }

    #[test]
    fn bad_input_is_refused_whole() {
        for bad in [
            "",
            "br0",
            "br0 zone=5",
            "zone=70000 udp_first=2",
            "udp_first=0",
            "udp_first=x",
            "udp_frist=2",
            "udp_first=2 udp_first=3",
            "zone=1 zone=2 udp_first=2",
            "br0 br1 udp_first=2",
        ] {
            assert!(set_args(&args(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(del_args(&args("br0 udp_first=2")).is_err());
        assert!(get_args(&args("br0 br1")).is_err());
        let r = del_args(&args("br0 zone=3")).unwrap();
        assert_eq!((r.zone, r.delete, r.timeouts), (Some(3), true, None));
    }
}
