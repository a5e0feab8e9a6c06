//! Port mirrors (Open vSwitch's Mirror table): `add-mirror`, `del-mirror`, `list-mirrors`.
//!
//! What: a bridge's mirrors are stored with it (`Bridge.mirrors`, ports by name) and given
//! to its datapath by port number: when one is added or removed, when the bridge is
//! restored, and when a port they name is removed (it leaves their selections; a mirror
//! whose output it was, or that selects nothing after it, goes, as Open vSwitch's weak
//! references leave such a mirror without effect). A request is checked whole before
//! anything changes.

use datapath::pipeline::{MAX_MIRRORS, Mirror, MirrorError};
use datapath::types::{PortNo, VlanId};
use proto::v1;

use super::Switch;
use super::model::{Bridge, bridge_mut};
use crate::error::ApiError;

/// Longest mirror name.
const MAX_NAME_BYTES: usize = 64;

/// A mirror name: 1 to 64 printable characters without spaces (so it reads back from the
/// command line as it was given).
fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(ApiError::invalid(
            "mirror.name",
            format!("{name:?}: a mirror name is 1 to {MAX_NAME_BYTES} bytes"),
        ));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(
            "mirror.name",
            format!("{name:?}: a mirror name has no spaces or control characters"),
        ));
    }
    Ok(())
}

/// The mirror as stored: its configuration only, each port listed once.
fn canonical(m: &v1::Mirror) -> v1::Mirror {
    let dedup = |v: &[String]| {
        let mut out: Vec<String> = Vec::with_capacity(v.len());
        for p in v {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    };
    let mut vlans = m.select_vlan.clone();
    vlans.sort_unstable();
    vlans.dedup();
    v1::Mirror {
        name: m.name.clone(),
        select_src_port: dedup(&m.select_src_port),
        select_dst_port: dedup(&m.select_dst_port),
        select_all: m.select_all,
        select_vlan: vlans,
        output_port: m.output_port.clone(),
        ..v1::Mirror::default()
    }
}

/// The datapath's form of stored mirrors: ports by number (`names`: a port's number).
fn resolve(
    list: &[v1::Mirror],
    names: &dyn Fn(&str) -> Option<u32>,
) -> Result<Vec<Mirror>, ApiError> {
    let port = |field: &str, n: &str| {
        names(n)
            .map(PortNo)
            .ok_or_else(|| ApiError::not_found(field, format!("no port {n}")))
    };
    list.iter()
        .map(|m| {
            if m.output_port.is_empty() {
                return Err(ApiError::invalid(
                    "mirror.output_port",
                    format!("mirror {}: an output port is required", m.name),
                ));
            }
            let ports = |field: &str, v: &[String]| -> Result<Vec<PortNo>, ApiError> {
                v.iter().map(|n| port(field, n)).collect()
            };
            let vlans = (m.select_vlan.iter())
                .map(|&v| match u16::try_from(v) {
                    Ok(v) if v <= 0xfff => Ok(VlanId(v)),
                    _ => Err(ApiError::invalid(
                        "mirror.select_vlan",
                        format!("mirror {}: VLAN {v} is not in 0..=4095", m.name),
                    )),
                })
                .collect::<Result<_, _>>()?;
            Ok(Mirror {
                name: m.name.clone(),
                select_src: ports("mirror.select_src_port", &m.select_src_port)?,
                select_dst: ports("mirror.select_dst_port", &m.select_dst_port)?,
                select_all: m.select_all,
                select_vlans: vlans,
                output: port("mirror.output_port", &m.output_port)?,
            })
        })
        .collect()
}

/// Why the datapath refused mirrors, as an API error naming ports by name.
fn refused(e: MirrorError, name_of: &dyn Fn(u32) -> String) -> ApiError {
    match e {
        MirrorError::TooMany(_) => ApiError::exhausted("mirrors", e.to_string()),
        MirrorError::DuplicateName(_) => ApiError::exists("mirror.name", e.to_string()),
        MirrorError::NoSuchPort(m, p) => {
            ApiError::not_found("mirror", format!("mirror {m}: no port {}", name_of(p.0)))
        }
        MirrorError::OutputSelected(m, p) => ApiError::invalid(
            "mirror",
            format!(
                "mirror {m}: port {} is a mirror's output and cannot also be selected",
                name_of(p.0)
            ),
        ),
        MirrorError::NoName | MirrorError::NothingSelected(_) | MirrorError::BadVlan(..) => {
            ApiError::invalid("mirror", e.to_string())
        }
    }
}

/// `list` without port `port`: it leaves every selection, and the mirrors whose output it
/// was or that then select nothing go (what the datapath does when the port is removed).
/// `None` when no mirror names it.
pub(super) fn forget_port(list: &[v1::Mirror], port: &str) -> Option<Vec<v1::Mirror>> {
    let named = |m: &v1::Mirror| {
        m.output_port == port
            || m.select_src_port.iter().any(|p| p == port)
            || m.select_dst_port.iter().any(|p| p == port)
    };
    if !list.iter().any(named) {
        return None;
    }
    let mut out: Vec<v1::Mirror> = list
        .iter()
        .filter(|m| m.output_port != port)
        .cloned()
        .collect();
    for m in &mut out {
        m.select_src_port.retain(|p| p != port);
        m.select_dst_port.retain(|p| p != port);
    }
    out.retain(|m| m.select_all || !m.select_src_port.is_empty() || !m.select_dst_port.is_empty());
    Some(out)
}

/// Gives a restored bridge's stored mirrors to its datapath (a stored mirror that no longer
/// applies is logged and left out: the bridge comes up without mirrors).
pub(super) fn restore(
    txn: &mut datapath::pipeline::Txn<'_>,
    bridge: &str,
    list: &[v1::Mirror],
    names: &dyn Fn(&str) -> Option<u32>,
) {
    if list.is_empty() {
        return;
    }
    let applied = resolve(list, names).and_then(|m| {
        txn.set_mirrors(m)
            .map_err(|e| ApiError::invalid("mirrors", e.to_string()))
    });
    if let Err(e) = applied {
        tracing::warn!(bridge, "stored port mirrors not applied: {e}");
    }
}

impl Switch {
    /// `add-mirror`: checked whole, stored with the bridge, then given to its datapath.
    pub fn add_mirror(&self, req: &v1::AddMirrorRequest) -> Result<(), ApiError> {
        let m = req
            .mirror
            .as_ref()
            .ok_or_else(|| ApiError::invalid("mirror", "mirror is required"))?;
        check_name(&m.name)?;
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        if b.rec.mirrors.iter().any(|o| o.name == m.name) {
            return Err(ApiError::exists(
                "mirror.name",
                format!("bridge {} already has a mirror {}", req.bridge, m.name),
            ));
        }
        if b.rec.mirrors.len() >= MAX_MIRRORS {
            return Err(ApiError::exhausted(
                "mirror",
                format!(
                    "bridge {} has {MAX_MIRRORS} mirrors, the most a bridge has (as Open vSwitch)",
                    req.bridge
                ),
            ));
        }
        let mut mirrors = b.rec.mirrors.clone();
        mirrors.push(canonical(m));
        self.replace_mirrors(b, mirrors)
    }

    /// Gives `mirrors` to the bridge's datapath and stores them with it: both or neither.
    fn replace_mirrors(&self, b: &mut Bridge, mirrors: Vec<v1::Mirror>) -> Result<(), ApiError> {
        let list = resolve(&mirrors, &b.names())?;
        let rec = v1::Bridge {
            mirrors,
            ..b.rec.clone()
        };
        let name_of = |no: u32| b.port_name(no);
        b.dp.transaction(|txn| -> Result<(), ApiError> {
            txn.set_mirrors(list).map_err(|e| refused(e, &name_of))?;
            let mut tx = self.store_txn()?;
            tx.put_bridge(&rec)?;
            tx.commit()?;
            Ok(())
        })?;
        b.rec = rec;
        Ok(())
    }

    /// `del-mirror`.
    pub fn del_mirror(&self, req: &v1::DelMirrorRequest) -> Result<(), ApiError> {
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, &req.bridge)?;
        if !b.rec.mirrors.iter().any(|m| m.name == req.name) {
            return Err(ApiError::not_found(
                "name",
                format!("bridge {} has no mirror {}", req.bridge, req.name),
            ));
        }
        let mut mirrors = b.rec.mirrors.clone();
        mirrors.retain(|m| m.name != req.name);
        self.replace_mirrors(b, mirrors)
    }

    /// `list-mirrors [BR]`: each mirror with the copies it sent.
    pub fn list_mirrors(&self, bridge: &str) -> Result<Vec<v1::Mirror>, ApiError> {
        let per = self.each_bridge(bridge, |name, b| {
            let counts = b.dp.mirror_counts();
            b.rec
                .mirrors
                .iter()
                .map(|m| {
                    let (_, tx_packets, tx_bytes) = counts
                        .iter()
                        .find(|c| c.0 == m.name)
                        .cloned()
                        .unwrap_or_default();
                    v1::Mirror {
                        tx_packets,
                        tx_bytes,
                        bridge: name.to_string(),
                        ..m.clone()
                    }
                })
                .collect::<Vec<_>>()
        })?;
        Ok(per.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, src: &[&str], dst: &[&str], out: &str) -> v1::Mirror {
        let s = |v: &[&str]| v.iter().map(|p| p.to_string()).collect();
        v1::Mirror {
            name: name.into(),
            select_src_port: s(src),
            select_dst_port: s(dst),
            output_port: out.into(),
            ..v1::Mirror::default()
        }
    }

    #[test]
    fn a_removed_port_leaves_the_mirrors_as_the_datapath_does() {
        let list = [
            m("a", &["p1", "p2"], &[], "p4"),
            m("b", &["p2"], &[], "p3"),
            m("c", &["p1"], &[], "p2"),
        ];
        assert_eq!(forget_port(&list, "p9"), None);
        assert_eq!(
            forget_port(&list, "p2"),
            Some(vec![m("a", &["p1"], &[], "p4")])
        );
    }

    #[test]
    fn names_and_ports_are_checked() {
        assert!(check_name("m1").is_ok());
        for bad in ["", "a b", "x\u{7}", &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let names = |n: &str| (n == "p1").then_some(1);
        assert!(resolve(&[m("a", &["p1"], &[], "p2")], &names).is_err());
        assert!(resolve(&[m("a", &["p1"], &[], "")], &names).is_err());
        let mut v = m("a", &[], &[], "p1");
        v.select_vlan = vec![4096];
        assert!(resolve(&[v], &names).is_err());
        let c = canonical(&v1::Mirror {
            select_vlan: vec![7, 3, 7],
            tx_packets: 9,
            ..m("a", &["p1", "p1"], &[], "p2")
        });
        assert_eq!(
            (c.select_src_port, c.select_vlan, c.tx_packets),
            (vec!["p1".to_string()], vec![3, 7], 0)
        );
    }
}
