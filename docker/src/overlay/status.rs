//! `overlay-status`: this host's view of the cluster (networks, hosts, endpoints), etcd's
//! health and revision, and the agent's counters, as JSON (the plugin's
//! `Vswitch.OverlayStatus` method) and as text (the `overlay-status` command).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::overlay::Overlay;

/// At most this many endpoints are listed (all are counted).
pub const MAX_LISTED: usize = 1000;

fn net_name(nkey: &str) -> String {
    nkey.replacen('_', "/", 1)
}

/// The status as JSON.
pub fn status(ov: &Overlay) -> Value {
    let h = ov.shared.health.lock().clone();
    let local = ov.shared.local.lock().clone();
    let v = ov.shared.view.lock();
    let lease = ov.shared.lease.load(Ordering::Acquire);
    let mut per_net: BTreeMap<&str, (BTreeSet<&str>, usize)> = BTreeMap::new();
    for (n, host, _) in v.endpoints.keys() {
        let e = per_net.entry(n.as_str()).or_default();
        e.0.insert(host.as_str());
        e.1 += 1;
    }
    let networks: Vec<Value> = v
        .networks
        .iter()
        .map(|(k, d)| {
            let (hosts, count) = per_net.remove(k.as_str()).unwrap_or_default();
            json!({
                "network": net_name(k),
                "vni": d.vni,
                "local": local.nets.contains_key(k),
                "hosts": hosts.into_iter().collect::<Vec<_>>(),
                "endpoints": count,
                "created_by": d.created_by.as_str(),
            })
        })
        .collect();
    let hosts: Vec<Value> = v
        .hosts
        .iter()
        .map(|(k, r)| json!({ "host": k.as_str(), "vtep": r.vtep.to_string() }))
        .collect();
    let endpoints: Vec<Value> = v
        .endpoints
        .iter()
        .take(MAX_LISTED)
        .map(|((n, host, e), r)| {
            json!({
                "network": net_name(n),
                "host": host.as_str(),
                "endpoint": e.as_str(),
                "mac": r.mac.to_string(),
                "ipv4": r.ipv4.map(|a| a.to_string()),
                "ipv6": r.ipv6.map(|a| a.to_string()),
                "vtep": r.vtep.to_string(),
            })
        })
        .collect();
    json!({
        "host": ov.host().as_str(),
        "vtep": h.vtep.map(|a| a.to_string()),
        "vtep_error": h.vtep_error,
        "lease": (lease != 0).then(|| format!("{lease:x}")),
        "etcd": {
            "endpoints": ov.cluster.etcd.endpoints(),
            "prefix": ov.cluster.keys.prefix(),
            "healthy": h.etcd_ok,
            "revision": h.etcd_revision,
            "error": h.last_error,
        },
        "agent": {
            "view_revision": v.revision,
            "resyncs": h.resyncs,
            "resumes": h.resumes,
            "events": ov.shared.events.load(Ordering::Relaxed),
            "flows": h.flows,
            "programs": h.programs,
            "program_error": h.program_error,
            "register_error": h.register_error,
            "reclaimed": h.reclaimed,
            "nd_answered": h.nd_answered,
            "nd_unanswered": h.nd_unanswered,
            "bad_values": v.bad_values,
            "last_bad_value": v.last_bad,
        },
        "networks": networks,
        "hosts": hosts,
        "endpoints": endpoints,
        "endpoints_total": v.endpoints.len(),
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// The status as text, from its JSON.
pub fn render(v: &Value) -> String {
    let mut o = String::new();
    let e = &v["etcd"];
    let _ = writeln!(
        o,
        "host {}  vtep {}  lease {}",
        s(&v["host"]),
        s(&v["vtep"]),
        s(&v["lease"])
    );
    if !v["vtep_error"].is_null() {
        let _ = writeln!(o, "  tunnel endpoint: {}", s(&v["vtep_error"]));
    }
    let health = if e["healthy"] == true {
        "healthy"
    } else {
        "UNREACHABLE"
    };
    let _ = writeln!(
        o,
        "etcd {health} at revision {} ({}, prefix {})",
        s(&e["revision"]),
        s(&e["endpoints"]),
        s(&e["prefix"])
    );
    if !e["error"].is_null() {
        let _ = writeln!(o, "  {}", s(&e["error"]));
    }
    let a = &v["agent"];
    let _ = writeln!(
        o,
        "agent: view at revision {}, {} full reads, {} watch resumes, {} events, {} flows \
         ({} programming passes), {} addresses reclaimed, {} neighbour solicitations answered \
         ({} not)",
        s(&a["view_revision"]),
        s(&a["resyncs"]),
        s(&a["resumes"]),
        s(&a["events"]),
        s(&a["flows"]),
        s(&a["programs"]),
        s(&a["reclaimed"]),
        s(&a["nd_answered"]),
        s(&a["nd_unanswered"]),
    );
    for (k, what) in [
        ("program_error", "switch"),
        ("register_error", "registry"),
        ("last_bad_value", "bad value in etcd"),
    ] {
        if !a[k].is_null() {
            let _ = writeln!(o, "  {what}: {}", s(&a[k]));
        }
    }
    let _ = writeln!(o, "networks:");
    for n in v["networks"].as_array().into_iter().flatten() {
        let hosts: Vec<String> = n["hosts"].as_array().into_iter().flatten().map(s).collect();
        let _ = writeln!(
            o,
            "  {}  vni {}  {}  endpoints {}  on {}",
            s(&n["network"]),
            s(&n["vni"]),
            if n["local"] == true {
                "here"
            } else {
                "elsewhere"
            },
            s(&n["endpoints"]),
            if hosts.is_empty() {
                "-".into()
            } else {
                hosts.join(",")
            }
        );
    }
    let _ = writeln!(o, "hosts:");
    for h in v["hosts"].as_array().into_iter().flatten() {
        let _ = writeln!(o, "  {}  {}", s(&h["host"]), s(&h["vtep"]));
    }
    let _ = writeln!(o, "endpoints ({}):", s(&v["endpoints_total"]));
    for e in v["endpoints"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "  {}  {}  {}  {}  {} {}  via {}",
            s(&e["network"]),
            s(&e["host"]),
            &s(&e["endpoint"]).chars().take(12).collect::<String>(),
            s(&e["mac"]),
            s(&e["ipv4"]),
            s(&e["ipv6"]),
            s(&e["vtep"])
        );
    }
    o
}

/// Asks the plugin on `socket` for its status (HTTP/1.1 POST over the unix socket).
pub fn query(socket: &std::path::Path) -> Result<Value, String> {
    use std::io::{Read as _, Write as _};
    let mut c = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("{}: {e} (is the plugin running?)", socket.display()))?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let req = "POST /Vswitch.OverlayStatus HTTP/1.1\r\nHost: plugin\r\nContent-Length: 2\r\n\
               Connection: close\r\n\r\n{}";
    c.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    c.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or("the plugin's answer has no body")?;
    let v: Value = serde_json::from_str(body).map_err(|e| format!("the plugin's answer: {e}"))?;
    if let Some(err) = v.get("Err").and_then(Value::as_str) {
        return Err(err.to_string());
    }
    Ok(v)
}
