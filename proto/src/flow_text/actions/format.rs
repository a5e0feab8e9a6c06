//! Actions as text, in the spelling ovs-ofctl prints over OpenFlow 1.3, which
//! [`super::parse_actions`] and the flow parser read back.

use crate::v1::{Action, Field, ReservedPort, Resubmit, SetField, Subfield, action, port_ref};

use super::super::fields::{FieldDef, Syntax, field_def_i32, resolve_name, value_text};
use super::super::match_text::{c_hex, ip_masked};
use super::super::ports::{port_ref_text, reserved_text};
use super::super::protocol::Ctx;
use super::super::scalar::{be_u64, be_u128, c_hex128, hex_bytes};
use super::super::subfield::subfield_text;
use super::nicira::{HASH_FIELD_NAMES, MULTIPATH_NAMES};

/// Appends the text of one action to `out`, as `ovs-ofctl -O OpenFlow13 dump-flows` prints
/// it (OpenFlow 1.0's `mod_vlan_*` / `set_vlan_*` and `enqueue`, which OpenFlow 1.3 cannot
/// express the same way, keep their own names).
pub(in super::super) fn format_action(a: &Action, out: &mut Vec<String>) {
    let Some(a) = &a.action else {
        out.push("unspecified".to_string());
        return;
    };
    let text = match a {
        action::Action::Output(o) => {
            let reserved = o.port.as_ref().and_then(|p| match p.port {
                Some(port_ref::Port::Reserved(r)) => ReservedPort::try_from(r).ok(),
                _ => None,
            });
            match (reserved, o.max_len) {
                (Some(ReservedPort::Controller), n) => {
                    format!("CONTROLLER:{}", n.unwrap_or(65535))
                }
                (_, Some(n)) => {
                    format!(
                        "output(port={},max_len={n})",
                        port_ref_text(o.port.as_ref())
                    )
                }
                (Some(r), None) => reserved_text(r).to_string(),
                // A port named like a field: `output:NAME` would read as output:FIELD
                // (Open vSwitch's reading too), the bare name reads as the port.
                (None, None) => match o.port.as_ref().and_then(|p| p.port.as_ref()) {
                    Some(port_ref::Port::Name(n)) if resolve_name(n, Ctx::default()).is_ok() => {
                        n.clone()
                    }
                    _ => format!("output:{}", port_ref_text(o.port.as_ref())),
                },
            }
        }
        action::Action::Group(g) => format!("group:{g}"),
        action::Action::SetQueue(q) => format!("set_queue:{q}"),
        action::Action::PushVlan(p) => format!("push_vlan:0x{:04x}", p.ethertype),
        action::Action::PopVlan(_) => "pop_vlan".to_string(),
        action::Action::DecTtl(d) if d.controller_ids.is_empty() => "dec_ttl".to_string(),
        action::Action::DecTtl(d) => {
            let ids: Vec<String> = d.controller_ids.iter().map(u32::to_string).collect();
            format!("dec_ttl({})", ids.join(","))
        }
        action::Action::SetField(s) => format_set_field(s),
        action::Action::Enqueue(e) => {
            format!("enqueue:{}:{}", port_ref_text(e.port.as_ref()), e.queue_id)
        }
        action::Action::PopQueue(_) => "pop_queue".to_string(),
        action::Action::PushMpls(p) => format!("push_mpls:0x{:04x}", p.ethertype),
        action::Action::PopMpls(p) => format!("pop_mpls:0x{:04x}", p.ethertype),
        action::Action::DecMplsTtl(_) => "dec_mpls_ttl".to_string(),
        action::Action::SetVlanVid(v) => format!("mod_vlan_vid:{}", v.vid),
        action::Action::SetVlanPcp(p) => format!("mod_vlan_pcp:{}", p.pcp),
        action::Action::Ct(c) => super::super::ct::ct_text(c),
        action::Action::CtClear(_) => "ct_clear".to_string(),
        // Nicira extensions.
        action::Action::Move(m) => format!(
            "move:{}->{}",
            sub_text(m.src.as_ref()),
            sub_text(m.dst.as_ref())
        ),
        action::Action::Resubmit(r) => resubmit_text(r),
        action::Action::Note(n) => {
            let bytes: Vec<String> = n.data.iter().map(|b| format!("{b:02x}")).collect();
            format!("note:{}", bytes.join("."))
        }
        action::Action::Exit(_) => "exit".to_string(),
        action::Action::OutputField(o) => format!("output:{}", sub_text(o.src.as_ref())),
        action::Action::StackPush(p) => format!("push:{}", sub_text(p.src.as_ref())),
        action::Action::StackPop(p) => format!("pop:{}", sub_text(p.dst.as_ref())),
        action::Action::Multipath(m) => {
            format!(
                "multipath({},{},{},{},{},{})",
                HASH_FIELD_NAMES
                    .iter()
                    .find(|(_, f)| *f as i32 == m.fields)
                    .map_or("unspecified", |(n, _)| n),
                m.basis,
                MULTIPATH_NAMES
                    .iter()
                    .find(|(_, f)| *f as i32 == m.algorithm)
                    .map_or("unspecified", |(n, _)| n),
                m.n_links,
                m.arg,
                sub_text(m.dst.as_ref())
            )
        }
        action::Action::Conjunction(c) => super::super::conj::conjunction_text(c),
        action::Action::Controller(c) => super::controller::controller_text(c),
        action::Action::Clone(c) => {
            let mut inner = Vec::new();
            for a in &c.actions {
                format_action(a, &mut inner);
            }
            format!("clone({})", inner.join(","))
        }
    };
    out.push(text);
}

fn sub_text(s: Option<&Subfield>) -> String {
    s.map_or_else(|| "unspecified[]".to_string(), subfield_text)
}

/// `resubmit:PORT`, `resubmit(,TABLE)` or `resubmit(PORT,TABLE)`, as Open vSwitch prints them.
fn resubmit_text(r: &Resubmit) -> String {
    match (&r.in_port, r.table) {
        (Some(p), None) => format!("resubmit:{}", port_ref_text(Some(p))),
        (None, Some(t)) => format!("resubmit(,{t})"),
        (Some(p), Some(t)) => format!("resubmit({},{t})", port_ref_text(Some(p))),
        (None, None) => "resubmit(,)".to_string(),
    }
}

/// A set-field as Open vSwitch prints it over OpenFlow 1.3: `set_field:VALUE[/MASK]->FIELD`,
/// except the TTLs, which have their own OpenFlow actions (`mod_nw_ttl:N`,
/// `set_mpls_ttl(N)`).
fn format_set_field(s: &SetField) -> String {
    let Some(d) = field_def_i32(s.field) else {
        return format!("set_field:{}->field{}", hex_bytes(&s.value), s.field);
    };
    if s.mask.is_empty() && s.value.len() == d.width {
        match d.field {
            Field::IpTtl => return format!("mod_nw_ttl:{}", be_u64(&s.value)),
            Field::MplsTtl => return format!("set_mpls_ttl({})", be_u64(&s.value)),
            _ => {}
        }
    }
    format!(
        "set_field:{}->{}",
        set_value_text(d, &s.value, &s.mask),
        d.name
    )
}

/// A set-field value as Open vSwitch's `mf_format` prints it: decimal or `%#x` hexadecimal
/// numbers with a hexadecimal mask, addresses with a prefix length when the mask is one.
fn set_value_text(d: &FieldDef, v: &[u8], m: &[u8]) -> String {
    let bad = v.len() != d.width || (!m.is_empty() && m.len() != d.width);
    match d.syntax {
        Syntax::Int { .. } if !bad && d.width > 8 => {
            let value = c_hex128(be_u128(v));
            if m.is_empty() {
                value
            } else {
                format!("{value}/{}", c_hex128(be_u128(m)))
            }
        }
        Syntax::Int { hex, .. } if !bad => {
            let value = if hex {
                c_hex(be_u64(v))
            } else {
                be_u64(v).to_string()
            };
            if m.is_empty() {
                value
            } else {
                format!("{value}/{}", c_hex(be_u64(m)))
            }
        }
        Syntax::Ipv4 | Syntax::Ipv6 if !bad => ip_masked(v, m),
        _ => value_text(d, v, m),
    }
}

/// Prints an action list (group bucket, packet-out); `drop` when empty.
pub fn format_actions(actions: &[Action]) -> String {
    let mut out = Vec::new();
    for a in actions {
        format_action(a, &mut out);
    }
    if out.is_empty() {
        "drop".to_string()
    } else {
        out.join(",")
    }
}
