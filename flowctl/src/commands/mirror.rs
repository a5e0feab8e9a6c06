//! Port mirrors in Open vSwitch's terms (its Mirror table's columns): `add-mirror BR NAME
//! [select-src-port=P[,P]...] [select-dst-port=P[,P]...] [select-all] [select-vlan=V[,V]...]
//! output-port=P`, `del-mirror BR NAME`, `list-mirrors [BR]` (each mirror as the
//! `add-mirror` arguments that make it, with its statistics). Every argument is parsed
//! before anything is sent.

use std::io::Write;

use proto::v1::{AddMirrorRequest, DelMirrorRequest, ListMirrorsRequest, Mirror};
use serde_json::{Value, json};

use crate::cli::Format;
use crate::connect::Client;
use crate::error::{Error, Result};
use crate::json::print_json;

/// The syntax, for error messages.
const USAGE: &str = "add-mirror BR NAME [select-src-port=P[,P]...] [select-dst-port=P[,P]...] \
                     [select-all] [select-vlan=V[,V]...] output-port=P";

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

/// `P[,P]...` into port names.
fn ports(arg: &str, list: &str, into: &mut Vec<String>) -> Result<()> {
    for p in list.split(',') {
        if p.is_empty() {
            return Err(usage(format!("{arg}: empty port name")));
        }
        into.push(p.to_string());
    }
    Ok(())
}

/// `V[,V]...` into VLAN ids.
fn vlans(arg: &str, list: &str, into: &mut Vec<u32>) -> Result<()> {
    for v in list.split(',') {
        match v.parse::<u16>() {
            Ok(v) if v <= 4095 => into.push(u32::from(v)),
            _ => return Err(usage(format!("{arg}: {v:?} is not a VLAN id (0..=4095)"))),
        }
    }
    Ok(())
}

/// `add-mirror`'s arguments after `BR NAME`.
pub fn add_args(bridge: &str, name: &str, args: &[String]) -> Result<AddMirrorRequest> {
    let mut m = Mirror {
        name: name.to_string(),
        ..Mirror::default()
    };
    if name.is_empty() || name.contains('=') {
        return Err(usage(format!("{name:?}: expected a mirror name; {USAGE}")));
    }
    for a in args {
        let (key, value) = a.split_once('=').unwrap_or((a.as_str(), ""));
        match (key, a.contains('=')) {
            ("select-src-port", true) => ports(a, value, &mut m.select_src_port)?,
            ("select-dst-port", true) => ports(a, value, &mut m.select_dst_port)?,
            ("select-vlan", true) => vlans(a, value, &mut m.select_vlan)?,
            ("select-all", false) => m.select_all = true,
            ("output-port", true) => {
                if !m.output_port.is_empty() {
                    return Err(usage(format!("{a}: output-port given twice")));
                }
                if value.is_empty() || value.contains(',') {
                    return Err(usage(format!("{a}: expected one port")));
                }
                m.output_port = value.to_string();
            }
            ("output-vlan", true) => {
                return Err(usage(format!(
                    "{a}: mirroring to a VLAN is not supported; give output-port=P"
                )));
            }
            _ => return Err(usage(format!("{a}: unexpected argument; {USAGE}"))),
        }
    }
    if m.output_port.is_empty() {
        return Err(usage(format!("no output-port=P given; {USAGE}")));
    }
    if !m.select_all && m.select_src_port.is_empty() && m.select_dst_port.is_empty() {
        return Err(usage(format!(
            "the mirror selects nothing: give select-src-port=P, select-dst-port=P or select-all; {USAGE}"
        )));
    }
    Ok(AddMirrorRequest {
        bridge: bridge.to_string(),
        mirror: Some(m),
    })
}

/// A mirror as the `add-mirror` arguments that make it (without `BR`).
pub fn mirror_args(m: &Mirror) -> String {
    let mut s = m.name.clone();
    if !m.select_src_port.is_empty() {
        s += &format!(" select-src-port={}", m.select_src_port.join(","));
    }
    if !m.select_dst_port.is_empty() {
        s += &format!(" select-dst-port={}", m.select_dst_port.join(","));
    }
    if m.select_all {
        s += " select-all";
    }
    if !m.select_vlan.is_empty() {
        let v: Vec<String> = m.select_vlan.iter().map(u32::to_string).collect();
        s += &format!(" select-vlan={}", v.join(","));
    }
    s + &format!(" output-port={}", m.output_port)
}

/// Sends `add-mirror`.
pub async fn add(client: &mut Client, req: AddMirrorRequest) -> Result<()> {
    client.add_mirror(req).await?;
    Ok(())
}

/// Sends `del-mirror`.
pub async fn del(client: &mut Client, bridge: &str, name: &str) -> Result<()> {
    client
        .del_mirror(DelMirrorRequest {
            bridge: bridge.to_string(),
            name: name.to_string(),
        })
        .await?;
    Ok(())
}

/// `list-mirrors [BR]`: one line per mirror, `BR NAME ARGS... tx_packets=N tx_bytes=N`.
pub async fn list(
    client: &mut Client,
    bridge: Option<String>,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let req = ListMirrorsRequest {
        bridge: bridge.unwrap_or_default(),
    };
    let mirrors = client.list_mirrors(req).await?.into_inner().mirrors;
    if format == Format::Json {
        let v: Vec<Value> = mirrors
            .iter()
            .map(|m| {
                json!({
                    "bridge": m.bridge,
                    "name": m.name,
                    "select_src_port": m.select_src_port,
                    "select_dst_port": m.select_dst_port,
                    "select_all": m.select_all,
                    "select_vlan": m.select_vlan,
                    "output_port": m.output_port,
                    "tx_packets": m.tx_packets,
                    "tx_bytes": m.tx_bytes,
                })
            })
            .collect();
        return print_json(out, &json!({ "mirrors": v }));
    }
    for m in &mirrors {
        writeln!(
            out,
            "{} {} tx_packets={} tx_bytes={}",
            m.bridge,
            mirror_args(m),
            m.tx_packets,
            m.tx_bytes
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn err(s: &str) -> String {
        match add_args("br0", "m", &args(s)) {
            Err(Error::Usage(e)) => e,
            other => panic!("{s:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn ovs_column_names_parse() {
        let r = add_args(
            "br0",
            "m0",
            &args("select-src-port=p1,p2 select-dst-port=p2 select-src-port=p3 select-vlan=10,20 output-port=p4"),
        )
        .unwrap();
        let m = r.mirror.unwrap();
        assert_eq!(r.bridge, "br0");
        assert_eq!(m.select_src_port, ["p1", "p2", "p3"]);
        assert_eq!(m.select_dst_port, ["p2"]);
        assert_eq!(m.select_vlan, [10, 20]);
        assert_eq!(m.output_port, "p4");
        let m = add_args("br0", "all", &args("select-all output-port=p9"))
            .unwrap()
            .mirror
            .unwrap();
        assert!(m.select_all);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(err("select-src-port=p1").contains("no output-port"));
        assert!(err("output-port=p1").contains("selects nothing"));
        assert!(err("select-vlan=4096 select-all output-port=p1").contains("not a VLAN id"));
        assert!(err("select-vlan=x select-all output-port=p1").contains("not a VLAN id"));
        assert!(err("select-all output-port=p1 output-port=p2").contains("twice"));
        assert!(err("select-all output-port=p1,p2").contains("one port"));
        assert!(err("select-all output-vlan=5").contains("not supported"));
        assert!(err("select-all output-port=p1 bogus").contains("unexpected argument"));
        assert!(err("select-all=yes output-port=p1").contains("unexpected argument"));
        assert!(err("select-src-port=p1,,p2 output-port=p3").contains("empty port name"));
        assert!(add_args("br0", "x=y", &args("select-all output-port=p1")).is_err());
    }

    proptest! {
        /// What `list-mirrors` prints for a mirror parses back into the same mirror.
        #[test]
        fn printed_arguments_parse_back(
            name in "[a-z][a-z0-9_.-]{0,10}",
            src in proptest::collection::vec("[a-z][a-z0-9]{0,6}", 0..4),
            dst in proptest::collection::vec("[a-z][a-z0-9]{0,6}", 0..4),
            all in any::<bool>(),
            vlan in proptest::collection::vec(0u32..4096, 0..4),
            out in "[a-z][a-z0-9]{0,6}",
        ) {
            prop_assume!(all || !src.is_empty() || !dst.is_empty());
            let m = Mirror {
                name: name.clone(),
                select_src_port: src,
                select_dst_port: dst,
                select_all: all,
                select_vlan: vlan,
                output_port: out,
                ..Mirror::default()
            };
            let text = mirror_args(&m);
            let mut words = args(&text);
            let rest = words.split_off(1);
            let back = add_args("br0", &words[0], &rest).unwrap().mirror.unwrap();
            prop_assert_eq!(back, m);
        }

        /// Any arguments: a request or a usage error, never a panic.
        #[test]
        fn any_arguments_are_answered(words in proptest::collection::vec("[a-z=,0-9-]{0,20}", 0..6)) {
            let _ = add_args("br0", "m", &words);
        }
    }
}
