//! `--format json`: the API messages as JSON values, built by hand with `serde_json`.
//!
//! Conventions: keys are the proto field names; enums are their proto names lowercased
//! without the type prefix (`GROUP_TYPE_SELECT` -> `"select"`, `RESERVED_PORT_NORMAL` ->
//! `"normal"`); integers are JSON numbers (64-bit values included); MAC addresses are
//! `"aa:bb:cc:dd:ee:ff"`, IPv4 addresses dotted, IPv6 addresses in RFC 5952 form; other
//! match / set-field values are numbers (or hex strings when wider than 64 bits); packet
//! data is a hex string. A port is a number, a name (string) or a reserved port name
//! (`"normal"`, `"controller"`, ...). Flows also carry `text`, the `add-flow` form.
//!
//! Each read command prints one document whose top-level key is the field of the RPC's
//! response message: `{"flows": [...]}`, `{"meters": [...]}`, `{"groups": [...]}`,
//! `{"bridges": [...]}`, `{"stats": [...]}`, `{"entries": [...]}`, `{"pmds": [...]}`.

use std::net::{Ipv4Addr, Ipv6Addr};

use proto::flow_text::{format_flow, format_group, format_meter};
use proto::v1::{
    Action, Band, BandType, Bridge, Bucket, FailMode, Field, FieldMatch, Flow, FlowRemovedReason,
    Group, GroupStats, GroupType, Instruction, MacEntry, MacTableStats, Match, Meter, MeterStats,
    MeterUnit, PacketInReason, PmdStats, PortDesc, PortRef, PortStats, PortStatusReason,
    QueueStats, ReservedPort, SelectionMethod, StreamMessageResponse, TableStats, action,
    instruction, port_ref, stream_message_response,
};
use serde_json::{Map, Value, json};

use crate::error::Result;

/// Prints one JSON document (pretty, then a newline).
pub fn print_json(out: &mut dyn std::io::Write, v: &Value) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, v).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `PREFIX_NAME` -> `name`; unknown enum values print as their number.
fn enum_name(full: Option<&'static str>, prefix: &str, value: i32) -> Value {
    match full {
        Some(f) => Value::from(f.strip_prefix(prefix).unwrap_or(f).to_ascii_lowercase()),
        None => Value::from(value),
    }
}

/// `aa:bb:cc:dd:ee:ff` (any length, colon separated).
pub fn mac_text(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Lower-case hex of a byte string.
pub fn hex_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The field's name without `FIELD_`, lowercased: `ipv4_dst`.
pub fn field_name(field: i32) -> Value {
    enum_name(
        Field::try_from(field).ok().map(|f| f.as_str_name()),
        "FIELD_",
        field,
    )
}

/// A match / set-field value (or mask) in the field's natural notation.
pub fn field_value(field: i32, bytes: &[u8]) -> Value {
    let f = Field::try_from(field).unwrap_or(Field::Unspecified);
    match (f, bytes.len()) {
        (Field::EthSrc | Field::EthDst | Field::ArpSha | Field::ArpTha, 6) => {
            Value::from(mac_text(bytes))
        }
        (
            Field::Ipv4Src
            | Field::Ipv4Dst
            | Field::ArpSpa
            | Field::ArpTpa
            | Field::TunSrc
            | Field::TunDst,
            4,
        ) => Value::from(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        (Field::Ipv6Src | Field::Ipv6Dst, 16) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            Value::from(Ipv6Addr::from(a).to_string())
        }
        (_, 1..=8) => Value::from(bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b))),
        _ => Value::from(hex_text(bytes)),
    }
}

/// A port reference: number, name, or reserved port name.
pub fn port_ref(p: &PortRef) -> Value {
    match &p.port {
        Some(port_ref::Port::Number(n)) => Value::from(*n),
        Some(port_ref::Port::Name(n)) => Value::from(n.as_str()),
        Some(port_ref::Port::Reserved(r)) => enum_name(
            ReservedPort::try_from(*r).ok().map(|r| r.as_str_name()),
            "RESERVED_PORT_",
            *r,
        ),
        None => Value::Null,
    }
}

fn field_match(m: &FieldMatch) -> Value {
    let mut o = Map::new();
    o.insert("field".into(), field_name(m.field));
    if !m.port_name.is_empty() {
        o.insert("port_name".into(), Value::from(m.port_name.as_str()));
    } else {
        o.insert("value".into(), field_value(m.field, &m.value));
    }
    if !m.mask.is_empty() {
        o.insert("mask".into(), field_value(m.field, &m.mask));
    }
    Value::Object(o)
}

/// A match as a list of `{field, value[, mask]}` (or `{field: "in_port", port_name}`).
pub fn match_json(m: Option<&Match>) -> Value {
    Value::Array(
        m.map(|m| m.fields.iter().map(field_match).collect())
            .unwrap_or_default(),
    )
}

/// One action as `{kind: ...}`.
pub fn action_json(a: &Action) -> Value {
    match &a.action {
        Some(action::Action::Output(o)) => {
            let mut v = Map::new();
            v.insert("port".into(), o.port.as_ref().map_or(Value::Null, port_ref));
            if let Some(l) = o.max_len {
                v.insert("max_len".into(), Value::from(l));
            }
            json!({ "output": v })
        }
        Some(action::Action::Group(g)) => json!({ "group": g }),
        Some(action::Action::SetField(s)) => {
            let mut v = Map::new();
            v.insert("field".into(), field_name(s.field));
            v.insert("value".into(), field_value(s.field, &s.value));
            if !s.mask.is_empty() {
                v.insert("mask".into(), field_value(s.field, &s.mask));
            }
            json!({ "set_field": v })
        }
        Some(action::Action::PushVlan(p)) => json!({ "push_vlan": { "ethertype": p.ethertype } }),
        Some(action::Action::PopVlan(_)) => json!({ "pop_vlan": {} }),
        Some(action::Action::DecTtl(_)) => json!({ "dec_ttl": {} }),
        Some(action::Action::SetQueue(q)) => json!({ "set_queue": q }),
        Some(action::Action::Enqueue(e)) => json!({ "enqueue": {
            "port": e.port.as_ref().map_or(Value::Null, port_ref),
            "queue_id": e.queue_id,
        } }),
        Some(action::Action::PopQueue(_)) => json!({ "pop_queue": {} }),
        Some(action::Action::PushMpls(p)) => json!({ "push_mpls": { "ethertype": p.ethertype } }),
        Some(action::Action::PopMpls(p)) => json!({ "pop_mpls": { "ethertype": p.ethertype } }),
        Some(action::Action::DecMplsTtl(_)) => json!({ "dec_mpls_ttl": {} }),
        Some(action::Action::SetVlanVid(v)) => {
            json!({ "set_vlan_vid": { "vid": v.vid } })
        }
        Some(action::Action::SetVlanPcp(p)) => {
            json!({ "set_vlan_pcp": { "pcp": p.pcp } })
        }
        Some(action::Action::Ct(c)) => json!({ "ct": {
            "commit": c.commit,
            "force": c.force,
            "zone": c.zone,
            "table": c.table,
            "text": proto::flow_text::format_actions(std::slice::from_ref(a)),
        } }),
        Some(action::Action::CtClear(_)) => json!({ "ct_clear": {} }),
        Some(action::Action::Move(m)) => json!({ "move": {
            "src": subfield_json(m.src.as_ref()),
            "dst": subfield_json(m.dst.as_ref()),
        } }),
        Some(action::Action::Resubmit(r)) => {
            let mut v = Map::new();
            if let Some(p) = &r.in_port {
                v.insert("in_port".into(), port_ref(p));
            }
            if let Some(t) = r.table {
                v.insert("table".into(), Value::from(t));
            }
            json!({ "resubmit": v })
        }
        Some(action::Action::Note(n)) => json!({ "note": hex_text(&n.data) }),
        Some(action::Action::Exit(_)) => json!({ "exit": {} }),
        Some(action::Action::OutputField(o)) => {
            json!({ "output_field": { "src": subfield_json(o.src.as_ref()) } })
        }
        Some(action::Action::StackPush(p)) => {
            json!({ "stack_push": { "src": subfield_json(p.src.as_ref()) } })
        }
        Some(action::Action::StackPop(p)) => {
            json!({ "stack_pop": { "dst": subfield_json(p.dst.as_ref()) } })
        }
        Some(action::Action::Multipath(m)) => json!({ "multipath": {
            "fields": proto::v1::HashFields::try_from(m.fields)
                .map_or("unknown", |f| f.as_str_name()),
            "basis": m.basis,
            "algorithm": proto::v1::MultipathAlgorithm::try_from(m.algorithm)
                .map_or("unknown", |a| a.as_str_name()),
            "n_links": m.n_links,
            "arg": m.arg,
            "dst": subfield_json(m.dst.as_ref()),
        } }),
        Some(action::Action::Conjunction(c)) => json!({ "conjunction": {
            "id": c.id,
            "clause": c.clause,
            "n_clauses": c.n_clauses,
        } }),
        Some(action::Action::Controller(c)) => json!({ "controller": {
            "max_len": c.max_len,
            "reason": c.reason
                .and_then(|r| proto::v1::PacketInReason::try_from(r).ok())
                .map(|r| r.as_str_name()),
            "id": c.id,
            "userdata": c.userdata.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join("."),
        } }),
        Some(action::Action::Clone(c)) => {
            json!({ "clone": c.actions.iter().map(action_json).collect::<Vec<_>>() })
        }
        None => Value::Null,
    }
}

/// A subfield as `{field, offset, n_bits}`.
fn subfield_json(s: Option<&proto::v1::Subfield>) -> Value {
    s.map_or(
        Value::Null,
        |s| json!({ "field": field_name(s.field), "offset": s.offset, "n_bits": s.n_bits }),
    )
}

/// Instructions as `[{meter: 1}, {apply_actions: [...]}, {clear_actions: {}},
/// {write_actions: [...]}, {write_metadata: {...}}, {goto_table: 1}]`.
pub fn instructions_json(ins: &[Instruction]) -> Value {
    Value::Array(
        ins.iter()
            .map(|i| match &i.instruction {
                Some(instruction::Instruction::Meter(m)) => json!({ "meter": m }),
                Some(instruction::Instruction::ApplyActions(a)) => json!({
                    "apply_actions": a.actions.iter().map(action_json).collect::<Vec<_>>()
                }),
                Some(instruction::Instruction::WriteMetadata(w)) => {
                    json!({ "write_metadata": { "value": w.value, "mask": w.mask } })
                }
                Some(instruction::Instruction::GotoTable(t)) => json!({ "goto_table": t }),
                Some(instruction::Instruction::ClearActions(_)) => json!({ "clear_actions": {} }),
                Some(instruction::Instruction::WriteActions(a)) => json!({
                    "write_actions": a.actions.iter().map(action_json).collect::<Vec<_>>()
                }),
                None => Value::Null,
            })
            .collect(),
    )
}

/// A flow, with `stats` when present and `text` (the add-flow form).
pub fn flow_json(f: &Flow) -> Value {
    let flags = f.flags.unwrap_or_default();
    let mut o = json!({
        "table_id": f.table_id,
        "priority": f.priority,
        "cookie": f.cookie,
        "idle_timeout": f.idle_timeout,
        "hard_timeout": f.hard_timeout,
        "flags": {
            "send_flow_rem": flags.send_flow_rem,
            "check_overlap": flags.check_overlap,
            "reset_counts": flags.reset_counts,
        },
        "match": match_json(f.r#match.as_ref()),
        "instructions": instructions_json(&f.instructions),
        "text": format_flow(f),
    });
    if let (Some(s), Some(obj)) = (&f.stats, o.as_object_mut()) {
        obj.insert(
            "stats".into(),
            json!({
                "duration_ns": s.duration_ns,
                "packet_count": s.packet_count,
                "byte_count": s.byte_count,
                "idle_ns": s.idle_ns,
            }),
        );
    }
    o
}

fn band_json(b: &Band) -> Value {
    json!({
        "type": enum_name(BandType::try_from(b.r#type).ok().map(|t| t.as_str_name()), "BAND_TYPE_", b.r#type),
        "rate": b.rate,
        "burst_size": b.burst_size,
        "prec_level": b.prec_level,
    })
}

/// A meter, with `text` (the add-meter form).
pub fn meter_json(m: &Meter) -> Value {
    json!({
        "id": m.id,
        "unit": enum_name(MeterUnit::try_from(m.unit).ok().map(|u| u.as_str_name()), "METER_UNIT_", m.unit),
        "burst": m.burst,
        "stats": m.stats,
        "bands": m.bands.iter().map(band_json).collect::<Vec<_>>(),
        "text": format_meter(m),
    })
}

fn bucket_json(b: &Bucket) -> Value {
    json!({
        "bucket_id": b.bucket_id,
        "weight": b.weight,
        "watch_port": b.watch_port.as_ref().map_or(Value::Null, port_ref),
        "watch_group": b.watch_group,
        "actions": b.actions.iter().map(action_json).collect::<Vec<_>>(),
    })
}

/// A group, with `text` (the add-group form).
pub fn group_json(g: &Group) -> Value {
    json!({
        "id": g.id,
        "type": enum_name(GroupType::try_from(g.r#type).ok().map(|t| t.as_str_name()), "GROUP_TYPE_", g.r#type),
        "selection_method": enum_name(
            SelectionMethod::try_from(g.selection_method).ok().map(|t| t.as_str_name()),
            "SELECTION_METHOD_",
            g.selection_method,
        ),
        "selection_method_param": g.selection_method_param,
        "fields": g.fields.iter().map(|f| {
            let mut o = Map::new();
            o.insert("field".into(), field_name(f.field));
            if !f.mask.is_empty() {
                o.insert("mask".into(), field_value(f.field, &f.mask));
            }
            Value::Object(o)
        }).collect::<Vec<_>>(),
        "buckets": g.buckets.iter().map(bucket_json).collect::<Vec<_>>(),
        "text": format_group(g),
    })
}

/// A port description.
pub fn port_desc_json(p: &PortDesc) -> Value {
    json!({
        "port_no": p.port_no,
        "name": p.name,
        "type": p.r#type,
        "options": p.options,
        "hw_addr": if p.hw_addr.is_empty() { Value::Null } else { Value::from(mac_text(&p.hw_addr)) },
        "mtu": p.mtu,
        "admin_up": p.admin_up,
        "openflow_config": p.openflow_config,
        "link_up": p.link_up,
        "speed_mbps": p.speed_mbps,
    })
}

/// A bridge (with its ports when the switch sent them).
pub fn bridge_json(b: &Bridge) -> Value {
    json!({
        "name": b.name,
        "datapath_id": b.datapath_id,
        "fail_mode": enum_name(FailMode::try_from(b.fail_mode).ok().map(|m| m.as_str_name()), "FAIL_MODE_", b.fail_mode),
        "fail_open": b.fail_open,
        "n_tables": b.n_tables,
        "ports": b.ports.iter().map(port_desc_json).collect::<Vec<_>>(),
        "controllers": b.controller_status.iter().map(crate::controllers::status_json).collect::<Vec<_>>(),
    })
}

/// One port's counters.
pub fn port_stats_json(s: &PortStats) -> Value {
    json!({
        "port_no": s.port_no,
        "name": s.name,
        "rx_packets": s.rx_packets,
        "rx_bytes": s.rx_bytes,
        "rx_dropped": s.rx_dropped,
        "rx_errors": s.rx_errors,
        "tx_packets": s.tx_packets,
        "tx_bytes": s.tx_bytes,
        "tx_dropped": s.tx_dropped,
        "tx_errors": s.tx_errors,
        "duration_ns": s.duration_ns,
        "link_resets": s.link_resets,
        "counters": s.counters,
    })
}

/// One tunnel endpoint with its neighbours and drops.
pub fn tunnel_endpoint_json(e: &proto::v1::TunnelEndpointInfo) -> Value {
    let mac = |m: &[u8]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    json!({
        "name": e.name,
        "ip": e.ip,
        "gw": e.gw,
        "mac": mac(&e.mac),
        "neighbours": e.neighbours.iter().map(|n| json!({
            "ip": n.ip,
            "mac": mac(&n.mac),
            "age_ms": n.age_ms,
        })).collect::<Vec<_>>(),
        "drops": e.drops,
    })
}

/// One egress queue's counters.
pub fn queue_stats_json(s: &QueueStats) -> Value {
    json!({
        "port_no": s.port_no,
        "port_name": s.port_name,
        "queue_id": s.queue_id,
        "tx_packets": s.tx_packets,
        "tx_bytes": s.tx_bytes,
        "tx_dropped": s.tx_dropped,
        "backlog_packets": s.backlog_packets,
    })
}

/// One table's counters.
pub fn table_stats_json(s: &TableStats) -> Value {
    json!({
        "table_id": s.table_id,
        "active_count": s.active_count,
        "lookup_count": s.lookup_count,
        "matched_count": s.matched_count,
    })
}

/// One meter's counters.
pub fn meter_stats_json(s: &MeterStats) -> Value {
    json!({
        "meter_id": s.meter_id,
        "flow_count": s.flow_count,
        "packet_in_count": s.packet_in_count,
        "byte_in_count": s.byte_in_count,
        "duration_ns": s.duration_ns,
        "bands": s.bands.iter().map(|b| json!({
            "packet_count": b.packet_count,
            "byte_count": b.byte_count,
        })).collect::<Vec<_>>(),
    })
}

/// One group's counters.
pub fn group_stats_json(s: &GroupStats) -> Value {
    json!({
        "group_id": s.group_id,
        "ref_count": s.ref_count,
        "packet_count": s.packet_count,
        "byte_count": s.byte_count,
        "duration_ns": s.duration_ns,
        "buckets": s.buckets.iter().map(|b| json!({
            "packet_count": b.packet_count,
            "byte_count": b.byte_count,
        })).collect::<Vec<_>>(),
    })
}

/// One learned MAC address.
pub fn mac_entry_json(e: &MacEntry) -> Value {
    json!({
        "port": e.port,
        "port_name": e.port_name,
        "vlan": e.vlan,
        "mac": mac_text(&e.mac),
        "age_sec": e.age_sec,
        "remote_ip": e.remote_ip,
        "tun_id": e.tun_id,
    })
}

/// A MAC table's counters.
pub fn mac_table_stats_json(s: &MacTableStats) -> Value {
    json!({
        "entries": s.entries,
        "capacity": s.capacity,
        "learned": s.learned,
        "moved": s.moved,
        "evicted": s.evicted,
        "aged": s.aged,
        "tunnel_sources_full": s.tunnel_sources_full,
    })
}

/// One poll-mode thread's counters.
pub fn pmd_stats_json(p: &PmdStats) -> Value {
    json!({
        "pmd_id": p.pmd_id,
        "core_id": p.core_id,
        "rx_packets": p.rx_packets,
        "emc_hit": p.emc_hit,
        "megaflow_hit": p.megaflow_hit,
        "slow_path": p.slow_path,
        "megaflow_installed": p.megaflow_installed,
        "megaflow_full": p.megaflow_full,
        "megaflow_removed": p.megaflow_removed,
        "cache_flush": p.cache_flush,
        "tx_packets": p.tx_packets,
        "drops": p.drops,
        "busy_ns": p.busy_ns,
        "idle_ns": p.idle_ns,
        "busy_cycles": p.busy_cycles,
        "idle_cycles": p.idle_cycles,
        "rx_batches": p.rx_batches,
        "bridge": p.bridge,
        "rxqs": p.rxqs.iter().map(|q| json!({
            "port_no": q.port_no,
            "port_name": q.port_name,
            "queue": q.queue,
        })).collect::<Vec<_>>(),
    })
}

/// One stream event as `{"event": KIND, ...fields}`; `None` for messages that are not
/// events (the arbitration answer).
pub fn event_json(ev: &StreamMessageResponse) -> Option<Value> {
    use stream_message_response::Update;
    let v = match ev.update.as_ref()? {
        Update::Arbitration(_) => return None,
        Update::PacketIn(p) => json!({
            "event": "packet_in",
            "bridge": p.bridge,
            "reason": enum_name(PacketInReason::try_from(p.reason).ok().map(|r| r.as_str_name()), "PACKET_IN_REASON_", p.reason),
            "table_id": p.table_id,
            "cookie": p.cookie,
            "in_port": p.in_port,
            "total_len": p.total_len,
            "match": match_json(p.r#match.as_ref()),
            "match_text": p.r#match.as_ref().map(proto::flow_text::format_match).unwrap_or_default(),
            "data": hex_text(&p.data),
            "controller_id": p.controller_id,
            "userdata": hex_text(&p.userdata),
        }),
        Update::FlowRemoved(f) => json!({
            "event": "flow_removed",
            "bridge": f.bridge,
            "reason": enum_name(FlowRemovedReason::try_from(f.reason).ok().map(|r| r.as_str_name()), "FLOW_REMOVED_REASON_", f.reason),
            "cookie": f.cookie,
            "priority": f.priority,
            "table_id": f.table_id,
            "match": match_json(f.r#match.as_ref()),
            "match_text": f.r#match.as_ref().map(proto::flow_text::format_match).unwrap_or_default(),
            "duration_ns": f.duration_ns,
            "idle_timeout": f.idle_timeout,
            "hard_timeout": f.hard_timeout,
            "packet_count": f.packet_count,
            "byte_count": f.byte_count,
        }),
        Update::PortStatus(s) => json!({
            "event": "port_status",
            "bridge": s.bridge,
            "reason": enum_name(PortStatusReason::try_from(s.reason).ok().map(|r| r.as_str_name()), "PORT_STATUS_REASON_", s.reason),
            "port": s.port.as_ref().map_or(Value::Null, port_desc_json),
        }),
        Update::MacLearned(m) => json!({
            "event": "mac_learned",
            "bridge": m.bridge,
            "vlan": m.vlan,
            "mac": mac_text(&m.mac),
            "port": m.port,
            "port_name": m.port_name,
        }),
        Update::MacAged(m) => json!({
            "event": "mac_aged",
            "bridge": m.bridge,
            "vlan": m.vlan,
            "mac": mac_text(&m.mac),
            "port": m.port,
            "port_name": m.port_name,
        }),
        Update::Error(e) => json!({
            "event": "error",
            "code": e.code,
            "message": e.message,
        }),
        Update::Controller(c) => json!({
            "event": if c.connected { "controller_connected" } else { "controller_disconnected" },
            "bridge": c.bridge,
            "target": c.target,
            "remote": c.remote,
            "error": c.error,
        }),
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::flow_text::{parse_flow, parse_group, parse_meter};
    use proto::v1::FlowStats;

    #[test]
    fn flow_fields_and_values() {
        let mut f = parse_flow(
            "table=1,priority=100,ip,in_port=3,dl_src=02:00:00:00:00:01,nw_dst=10.0.0.0/24,actions=mod_dl_dst:02:00:00:00:00:02,output:2,goto_table:2",
        )
        .unwrap();
        f.stats = Some(FlowStats {
            duration_ns: 1_500_000_000,
            packet_count: 3,
            byte_count: 180,
            idle_ns: 0,
        });
        let v = flow_json(&f);
        assert_eq!(v["table_id"], 1);
        assert_eq!(v["priority"], 100);
        assert_eq!(v["stats"]["packet_count"], 3);
        let m = v["match"].as_array().unwrap();
        let by = |name: &str| m.iter().find(|x| x["field"] == name).unwrap().clone();
        assert_eq!(by("in_port")["value"], 3);
        assert_eq!(by("eth_src")["value"], "02:00:00:00:00:01");
        assert_eq!(by("eth_type")["value"], 0x0800);
        assert_eq!(by("ipv4_dst")["value"], "10.0.0.0");
        assert_eq!(by("ipv4_dst")["mask"], "255.255.255.0");
        let ins = v["instructions"].as_array().unwrap();
        let apply = ins[0]["apply_actions"].as_array().unwrap();
        assert_eq!(apply[0]["set_field"]["field"], "eth_dst");
        assert_eq!(apply[0]["set_field"]["value"], "02:00:00:00:00:02");
        assert_eq!(apply[1]["output"]["port"], 2);
        assert_eq!(ins[1]["goto_table"], 2);
        // `text` reads back to the same flow.
        let mut back = parse_flow(v["text"].as_str().unwrap()).unwrap();
        back.stats = f.stats;
        assert_eq!(back, f);
    }

    #[test]
    fn named_and_reserved_ports() {
        let f = parse_flow("in_port=vm1,actions=NORMAL").unwrap();
        let v = flow_json(&f);
        assert_eq!(v["match"][0]["field"], "in_port");
        assert_eq!(v["match"][0]["port_name"], "vm1");
        assert_eq!(
            v["instructions"][0]["apply_actions"][0]["output"]["port"],
            "normal"
        );
        assert!(v.get("stats").is_none());
    }

    #[test]
    fn ipv6_values() {
        let f = parse_flow("ipv6,ipv6_dst=2001:db8::/32,actions=drop").unwrap();
        let v = flow_json(&f);
        let m = v["match"].as_array().unwrap();
        let dst = m.iter().find(|x| x["field"] == "ipv6_dst").unwrap();
        assert_eq!(dst["value"], "2001:db8::");
        assert_eq!(dst["mask"], "ffff:ffff::");
    }

    #[test]
    fn meter_and_group() {
        let m = parse_meter("meter=7,pktps,burst,stats,bands=type=drop,rate=100,burst_size=10")
            .unwrap();
        let v = meter_json(&m);
        assert_eq!(v["id"], 7);
        assert_eq!(v["unit"], "pktps");
        assert_eq!(v["bands"][0]["type"], "drop");
        assert_eq!(v["bands"][0]["rate"], 100);
        let g = parse_group("group_id=3,type=select,bucket=weight:10,actions=output:1").unwrap();
        let v = group_json(&g);
        assert_eq!(v["id"], 3);
        assert_eq!(v["type"], "select");
        assert_eq!(v["buckets"][0]["weight"], 10);
        assert_eq!(v["buckets"][0]["actions"][0]["output"]["port"], 1);
        assert_eq!(parse_group(v["text"].as_str().unwrap()).unwrap(), g);
    }

    #[test]
    fn mac_and_hex() {
        assert_eq!(mac_text(&[0xaa, 0xbb, 0, 1, 2, 0xff]), "aa:bb:00:01:02:ff");
        assert_eq!(hex_text(&[0, 0x1f, 0xa0]), "001fa0");
        assert_eq!(
            field_value(Field::TunId as i32, &[0, 0, 0, 0, 0, 0, 0, 42]),
            42
        );
        assert_eq!(field_name(999), 999);
    }

    #[test]
    fn events() {
        use proto::v1::{MacLearned, PacketIn, stream_message_response::Update};
        let ev = StreamMessageResponse {
            update: Some(Update::MacLearned(MacLearned {
                bridge: "br0".into(),
                vlan: 10,
                mac: vec![2, 0, 0, 0, 0, 1],
                port: 1,
                port_name: "p1".into(),
            })),
        };
        let v = event_json(&ev).unwrap();
        assert_eq!(v["event"], "mac_learned");
        assert_eq!(v["mac"], "02:00:00:00:00:01");
        let ev = StreamMessageResponse {
            update: Some(Update::PacketIn(PacketIn {
                bridge: "br0".into(),
                reason: PacketInReason::Action as i32,
                table_id: 0,
                cookie: 5,
                r#match: parse_flow("in_port=1,actions=drop").unwrap().r#match,
                in_port: 1,
                data: vec![1, 2],
                total_len: 60,
                ..Default::default()
            })),
        };
        let v = event_json(&ev).unwrap();
        assert_eq!(v["reason"], "action");
        assert_eq!(v["match_text"], "in_port=1");
        assert_eq!(v["data"], "0102");
        let arb = StreamMessageResponse {
            update: Some(Update::Arbitration(Default::default())),
        };
        assert!(event_json(&arb).is_none());
    }
}
