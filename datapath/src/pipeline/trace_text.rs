//! How a trace writes fields, keys, masks and actions: Open vSwitch's names and value
//! syntax (`nw_dst=10.0.0.1`, `dl_src=02:00:00:00:00:01`, `set_field:...->eth_dst`), so a
//! trace reads like `ofproto/trace` and its `Datapath actions:` line as OVS prints it.
//!
//! What: text only, for the trace; the flow text syntax clients parse lives in `proto`.
//!
//! Thread-safety: pure functions.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::xlate::DpAction;
use crate::actions::Action;
use crate::conntrack::{CtAction, CtState};
use crate::flow::{Field, FlowKey, FlowMask, Subfield};
use crate::packet::ethertype;

/// How a field's value is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Dec,
    Hex,
    Mac,
    Ip4,
    Ip6,
}

/// Open vSwitch's name of `f` and how its value is written.
fn spec(f: Field) -> (String, Syntax) {
    use Syntax::*;
    let (n, s) = match f {
        Field::InPort => ("in_port", Dec),
        Field::EthType => ("dl_type", Hex),
        Field::VlanTci => ("vlan_tci", Hex),
        Field::VlanTci2 => ("vlan_tci2", Hex),
        Field::EthSrc => ("dl_src", Mac),
        Field::EthDst => ("dl_dst", Mac),
        Field::IpProto => ("nw_proto", Dec),
        Field::IpTos => ("nw_tos", Dec),
        Field::IpTtl => ("nw_ttl", Dec),
        Field::IpFrag => ("ip_frag", Hex),
        Field::Ipv4Src => ("nw_src", Ip4),
        Field::Ipv4Dst => ("nw_dst", Ip4),
        Field::Ipv6Src => ("ipv6_src", Ip6),
        Field::Ipv6Dst => ("ipv6_dst", Ip6),
        Field::TpSrc => ("tp_src", Dec),
        Field::TpDst => ("tp_dst", Dec),
        Field::TcpFlags => ("tcp_flags", Hex),
        Field::ArpOp => ("arp_op", Dec),
        Field::ArpSha => ("arp_sha", Mac),
        Field::ArpTha => ("arp_tha", Mac),
        Field::TunId => ("tun_id", Hex),
        Field::TunSrc => ("tun_src", Ip4),
        Field::TunDst => ("tun_dst", Ip4),
        Field::Metadata => ("metadata", Hex),
        Field::ActsetOutput => ("actset_output", Dec),
        Field::ConjId => ("conj_id", Dec),
        Field::Reg(i) => return (format!("reg{i}"), Hex),
        Field::Xreg(i) => return (format!("xreg{i}"), Hex),
        Field::Xxreg(i) => return (format!("xxreg{i}"), Hex),
        Field::TunFlags => ("tun_flags", Hex),
        Field::MplsLabel => ("mpls_label", Dec),
        Field::MplsTc => ("mpls_tc", Dec),
        Field::MplsBos => ("mpls_bos", Dec),
        Field::MplsTtl => ("mpls_ttl", Dec),
        Field::Ipv6Label => ("ipv6_label", Hex),
        Field::NdTarget => ("nd_target", Ip6),
        Field::PktMark => ("pkt_mark", Hex),
        Field::CtState => ("ct_state", Hex),
        Field::CtZone => ("ct_zone", Dec),
        Field::CtMark => ("ct_mark", Hex),
        Field::CtLabel => ("ct_label", Hex),
        Field::CtNwProto => ("ct_nw_proto", Dec),
        Field::CtNwSrc => ("ct_nw_src", Ip4),
        Field::CtNwDst => ("ct_nw_dst", Ip4),
        Field::CtIpv6Src => ("ct_ipv6_src", Ip6),
        Field::CtIpv6Dst => ("ct_ipv6_dst", Ip6),
        Field::CtTpSrc => ("ct_tp_src", Dec),
        Field::CtTpDst => ("ct_tp_dst", Dec),
        Field::RecircId => ("recirc_id", Hex),
    };
    (n.to_string(), s)
}

/// `f`'s value `v` in its syntax.
pub fn value(f: Field, v: u128) -> String {
    match spec(f).1 {
        Syntax::Dec => v.to_string(),
        Syntax::Hex => format!("{v:#x}"),
        Syntax::Mac => crate::types::MacAddr::from_u64(v as u64).to_string(),
        Syntax::Ip4 => Ipv4Addr::from(v as u32).to_string(),
        Syntax::Ip6 => Ipv6Addr::from(v).to_string(),
    }
}

/// Open vSwitch's name of `f`.
pub fn name(f: Field) -> String {
    spec(f).0
}

/// `name=value[/mask]` for `f` of `key` under mask bits `m` (all ones: no mask).
fn field_match(out: &mut String, f: Field, v: u128, m: u128) {
    if !out.is_empty() {
        out.push(',');
    }
    if f == Field::CtState && m == f.full_mask() {
        let _ = write!(out, "ct_state={}", CtState(v as u8));
        return;
    }
    let _ = write!(out, "{}={}", name(f), value(f, v & m));
    if m != f.full_mask() {
        match spec(f).1 {
            Syntax::Ip4 if (m as u32).leading_ones() + (m as u32).trailing_zeros() == 32 => {
                let _ = write!(out, "/{}", (m as u32).leading_ones());
            }
            _ => {
                let _ = write!(out, "/{}", value(f, m));
            }
        }
    }
}

/// The fields that apply to a packet of ethertype `eth`, in layout order.
fn fields_of(eth: u16) -> impl Iterator<Item = Field> {
    let overlays = Field::OVERLAYS
        .iter()
        .filter(move |(_, e)| e.contains(&eth))
        .map(|(f, _)| *f);
    let hidden: Vec<Field> = match eth {
        ethertype::MPLS | ethertype::MPLS_MCAST => vec![Field::Ipv4Src],
        ethertype::IPV6 => vec![Field::ArpOp],
        _ => Vec::new(),
    };
    Field::ALL
        .into_iter()
        .filter(move |f| !hidden.contains(f))
        .chain(overlays)
}

/// A key as Open vSwitch writes a flow: every field that is not zero (`in_port` always).
pub fn key(k: &FlowKey) -> String {
    let mut out = String::new();
    let eth = k.get(Field::EthType) as u16;
    for f in fields_of(eth) {
        let v = k.get(f);
        if v != 0 || f == Field::InPort {
            field_match(&mut out, f, v, f.full_mask());
        }
    }
    out
}

/// A megaflow: `key` under `mask`, every field the mask touches.
pub fn masked(k: &FlowKey, mask: &FlowMask) -> String {
    let mut out = String::new();
    let eth = k.get(Field::EthType) as u16;
    for f in fields_of(eth) {
        let m = mask.get(f);
        if m != 0 {
            field_match(&mut out, f, k.get(f), m);
        }
    }
    if out.is_empty() {
        out.push_str("(any packet)");
    }
    out
}

fn subfield(s: &Subfield) -> String {
    if s.shift == 0 && s.bits == s.field.bits() {
        format!("{}[]", name(s.field))
    } else {
        format!("{}[{}..{}]", name(s.field), s.shift, s.shift + s.bits - 1)
    }
}

/// A `ct(...)` action's arguments.
pub fn ct_args(ct: &CtAction, table: Option<crate::types::TableId>) -> String {
    let mut a = Vec::new();
    if ct.commit {
        a.push("commit".to_string());
    }
    if ct.force {
        a.push("force".to_string());
    }
    if ct.zone != 0 {
        a.push(format!("zone={}", ct.zone));
    }
    if let Some(t) = table {
        a.push(format!("table={}", t.0));
    }
    if ct.nat.is_some() {
        a.push("nat".to_string());
    }
    if let Some((v, m)) = ct.mark {
        a.push(format!("exec(set_field:{v:#x}/{m:#x}->ct_mark)"));
    }
    if let Some((v, m)) = ct.label {
        a.push(format!("exec(set_field:{v:#x}/{m:#x}->ct_label)"));
    }
    format!("ct({})", a.join(","))
}

/// An OpenFlow action as a trace shows it ran; `work`: the key it left (for the values a
/// move or multipath wrote).
pub fn action(a: &Action, work: &FlowKey) -> String {
    match *a {
        Action::Output(p) => format!("output:{p}"),
        Action::InPort => "in_port".into(),
        Action::Flood => "flood".into(),
        Action::All => "all".into(),
        Action::Normal => "NORMAL".into(),
        Action::Controller { max_len } => format!("controller(max_len={max_len})"),
        Action::ControllerWith {
            max_len,
            reason,
            id,
            userdata,
        } => format!(
            "controller(max_len={max_len},reason={reason:?},id={id}{})",
            if userdata == crate::actions::NO_USERDATA {
                ""
            } else {
                ",userdata"
            }
        ),
        Action::SetField { field, value: v } => {
            format!("set_field:{}->{}", value(field, v), name(field))
        }
        Action::SetFieldMasked {
            field,
            value: v,
            mask,
        } => format!(
            "set_field:{}/{}->{}",
            value(field, v),
            value(field, mask),
            name(field)
        ),
        Action::PushVlan { tpid } => format!("push_vlan:{tpid:#06x}"),
        Action::PopVlan => "pop_vlan".into(),
        Action::DecTtl => "dec_ttl".into(),
        Action::Group(g) => format!("group:{}", g.0),
        Action::SetQueue(q) => format!("set_queue:{q}"),
        Action::PopQueue => "pop_queue".into(),
        Action::Enqueue { port, queue } => format!("enqueue:{port}:{queue}"),
        Action::PushMpls { ethertype } => format!("push_mpls:{ethertype:#06x}"),
        Action::PopMpls { ethertype } => format!("pop_mpls:{ethertype:#06x}"),
        Action::DecMplsTtl => "dec_mpls_ttl".into(),
        Action::SetVlan { value, mask, push } => {
            let verb = if push { "mod_vlan" } else { "set_vlan" };
            format!("{verb}:{value:#x}/{mask:#x}")
        }
        Action::Ct {
            ref ct,
            table,
            zone_src: None,
        } => ct_args(ct, table),
        Action::Ct {
            ref ct,
            table,
            zone_src: Some(z),
        } => format!(
            "{} (zone from {} = {})",
            ct_args(ct, table),
            subfield(&z),
            z.read(work)
        ),
        Action::CtClear => "ct_clear".into(),
        Action::Move { src, dst } => format!(
            "move:{}->{} ({} = {:#x})",
            subfield(&src),
            subfield(&dst),
            subfield(&dst),
            dst.read(work)
        ),
        Action::Resubmit { in_port, table } => format!(
            "resubmit({},{})",
            in_port.map_or(String::new(), |p| p.to_string()),
            table.map_or(String::new(), |t| t.0.to_string())
        ),
        Action::Exit => "exit".into(),
        Action::OutputField(s) => format!("output:{} ({})", subfield(&s), s.read(work)),
        Action::StackPush(s) => format!("push:{}", subfield(&s)),
        Action::StackPop(s) => format!(
            "pop:{} ({} = {:#x})",
            subfield(&s),
            subfield(&s),
            s.read(work)
        ),
        Action::Clone { len } => format!("clone (the next {len} actions on a copy)"),
        Action::Multipath { dst, n_links, .. } => format!(
            "multipath(n_links={n_links},{}) -> link {}",
            subfield(&dst),
            dst.read(work)
        ),
        Action::Conjunction {
            id,
            clause,
            n_clauses,
        } => format!("conjunction({id},{}/{n_clauses})", u16::from(clause) + 1),
    }
}

/// A rewrite as Open vSwitch's datapath actions write it (`set(nw_dst=10.0.0.1)`).
pub fn dp_rewrite(op: &DpAction) -> Option<String> {
    Some(match *op {
        DpAction::SetField(f, v) => format!("set({}={})", name(f), value(f, v)),
        DpAction::SetFieldMasked(f, v, m) => {
            format!("set({}={}/{})", name(f), value(f, v), value(f, m))
        }
        DpAction::PushVlan(tpid) => format!("push_vlan(tpid={tpid:#06x})"),
        DpAction::PopVlan => "pop_vlan".into(),
        DpAction::DecTtl => "dec_ttl".into(),
        DpAction::SetQueue(q) => format!("set_queue({q})"),
        DpAction::PushMpls(t) => format!("push_mpls(eth_type={t:#06x})"),
        DpAction::PopMpls(t) => format!("pop_mpls(eth_type={t:#06x})"),
        DpAction::DecMplsTtl => "dec_mpls_ttl".into(),
        DpAction::SetVlan(v, m, push) => {
            format!("set_vlan({v:#x}/{m:#x}{})", if push { ",push" } else { "" })
        }
        DpAction::CtClear => "ct_clear".into(),
        _ => return None,
    })
}
