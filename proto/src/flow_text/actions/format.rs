//! Actions as text, in the spelling [`super::parse_actions`] and the flow parser read back:
//! the `mod_*` forms where ovs-ofctl prints them, `set_field:V->FIELD` otherwise.

use crate::v1::{Action, Field, ReservedPort, SetField, action, port_ref};

use super::super::fields::{field_def_i32, value_text};
use super::super::ports::{port_ref_text, reserved_text};
use super::super::scalar::{be_u64, hex_bytes};

/// The `mod_*` name ovs-ofctl prints for an unmasked set-field of these fields.
const MOD_NAMES: &[(Field, &str)] = &[
    (Field::EthSrc, "mod_dl_src"),
    (Field::EthDst, "mod_dl_dst"),
    (Field::Ipv4Src, "mod_nw_src"),
    (Field::Ipv4Dst, "mod_nw_dst"),
    (Field::TcpSrc, "mod_tp_src"),
    (Field::UdpSrc, "mod_tp_src"),
    (Field::SctpSrc, "mod_tp_src"),
    (Field::TcpDst, "mod_tp_dst"),
    (Field::UdpDst, "mod_tp_dst"),
    (Field::SctpDst, "mod_tp_dst"),
];

/// Appends the text of one action to `out`.
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
                (Some(ReservedPort::Controller), Some(n)) => format!("CONTROLLER:{n}"),
                (Some(r), _) => reserved_text(r).to_string(),
                (None, _) => format!("output:{}", port_ref_text(o.port.as_ref())),
            }
        }
        action::Action::Group(g) => format!("group:{g}"),
        action::Action::SetQueue(q) => format!("set_queue:{q}"),
        action::Action::PushVlan(p) => format!("push_vlan:0x{:04x}", p.ethertype),
        action::Action::PopVlan(_) => "pop_vlan".to_string(),
        action::Action::DecTtl(_) => "dec_ttl".to_string(),
        action::Action::SetField(s) => format_set_field(s),
    };
    out.push(text);
}

fn format_set_field(s: &SetField) -> String {
    let Some(d) = field_def_i32(s.field) else {
        return format!("set_field:{}->field{}", hex_bytes(&s.value), s.field);
    };
    if s.mask.is_empty() && s.value.len() == d.width {
        let v = &s.value;
        if let Some((_, alias)) = MOD_NAMES.iter().find(|(f, _)| *f == d.field) {
            return format!("{alias}:{}", value_text(d, v, &[]));
        }
        match d.field {
            Field::VlanVid if be_u64(v) & 0x1000 != 0 => {
                return format!("mod_vlan_vid:{}", be_u64(v) & 0xfff);
            }
            Field::IpDscp => return format!("mod_nw_tos:{}", be_u64(v) << 2),
            _ => {}
        }
    }
    format!("set_field:{}->{}", value_text(d, &s.value, &s.mask), d.name)
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
