//! Matches: the match fields of a flow or filter read from tokens (with protocol
//! shorthands, `dl_vlan`, `nw_tos`, `tcp_flags=+syn-ack` and prerequisite checks) and a
//! [`Match`] printed in ovs-ofctl's order and spelling.

use std::collections::BTreeMap;

use crate::v1::{Field, FieldMatch, Match};

use super::fields::{
    FieldDef, Named, canonical, field_def, field_def_i32, parse_value_mask, resolve_name,
    value_text,
};
use super::lexer::{ParseError, Result, Tok};
use super::ports::{in_port_text, parse_in_port};
use super::protocol::{Ctx, SHORTHANDS, prereq_text, shorthand};
use super::scalar::{be_bytes, be_u64, hex_bytes, num, parse_u64};

/// Collects match fields in canonical order and remembers where each came from.
#[derive(Default)]
pub(super) struct MatchBuilder<'a> {
    fields: BTreeMap<i32, (FieldMatch, Tok<'a>)>,
}

impl<'a> MatchBuilder<'a> {
    fn insert(&mut self, fm: FieldMatch, tok: Tok<'a>) -> Result<()> {
        if let Some((old, _)) = self.fields.get(&fm.field) {
            if *old != fm {
                let name = field_def_i32(fm.field).map_or("field", |d| d.name);
                return Err(tok.err(format!(
                    "conflicting values for {name}: it is already constrained by an earlier field"
                )));
            }
            return Ok(());
        }
        self.fields.insert(fm.field, (fm, tok));
        Ok(())
    }

    fn exact(&mut self, field: Field, v: u64, tok: Tok<'a>) -> Result<()> {
        let width = field_def(field).map_or(8, |d| d.width);
        self.insert(
            FieldMatch {
                field: field as i32,
                value: be_bytes(v, width),
                ..FieldMatch::default()
            },
            tok,
        )
    }

    /// Checks every field's prerequisites and returns the match.
    pub(super) fn finish(self) -> Result<Match> {
        let m = Match {
            fields: self.fields.values().map(|(f, _)| f.clone()).collect(),
        };
        let ctx = Ctx::of(&m);
        let has_vlan = self.fields.contains_key(&(Field::VlanVid as i32))
            || self.fields.contains_key(&(Field::VlanPcp as i32));
        for (field, (_, tok)) in &self.fields {
            if let Some(d) = field_def_i32(*field) {
                if !ctx.satisfies(d.prereq) {
                    let (key, _) = tok.key_value();
                    return Err(tok.err(format!("`{key}` requires {}", prereq_text(d.prereq))));
                }
                if d.field == Field::VlanTci && has_vlan {
                    return Err(tok
                        .err("vlan_tci cannot be combined with dl_vlan / vlan_vid / dl_vlan_pcp"));
                }
            }
        }
        Ok(m)
    }
}

/// The protocol the tokens pin (shorthands, `dl_type`, then `nw_proto`), so that names like
/// `nw_src` and `tp_dst` resolve whatever their position.
pub(super) fn protocol_context(tokens: &[Tok<'_>]) -> Ctx {
    let mut ctx = Ctx::default();
    for tok in tokens {
        let (key, value) = tok.key_value();
        if let (Some((e, p)), None) = (shorthand(key), value) {
            ctx.eth_type.get_or_insert(e);
            if let Some(p) = p {
                ctx.ip_proto.get_or_insert(p);
            }
        }
        if let (Some(v), "dl_type" | "eth_type") = (value, key)
            && let Some(e) = parse_u64(v.text)
        {
            ctx.eth_type.get_or_insert(e as u16);
        }
    }
    for tok in tokens {
        if let ("nw_proto" | "ip_proto", Some(v)) = tok.key_value()
            && ctx.ip()
            && let Some(p) = parse_u64(v.text)
        {
            ctx.ip_proto.get_or_insert(p as u8);
        }
    }
    ctx
}

/// One match token: a protocol shorthand or `FIELD=VALUE[/MASK]`, in the context `ctx`.
pub(super) fn match_token<'a>(mb: &mut MatchBuilder<'a>, tok: Tok<'a>, ctx: Ctx) -> Result<()> {
    let (key, value) = tok.key_value();
    if let (Some((e, proto)), None) = (shorthand(key), value) {
        mb.exact(Field::EthType, u64::from(e), tok)?;
        if let Some(proto) = proto {
            mb.exact(Field::IpProto, u64::from(proto), tok)?;
        }
        return Ok(());
    }
    let v = match value {
        Some(v) => v,
        None if resolve_name(key, Ctx::default()).is_ok() || matches!(key, "tp_src" | "tp_dst") => {
            return Err(tok.err(format!("`{key}` needs a value: `{key}=...`")));
        }
        None => return Err(tok.err(format!("unknown keyword `{key}`"))),
    };
    let key_tok = tok.with_text(key);
    match resolve_name(key, ctx).map_err(|m| key_tok.err(m))? {
        Named::Field(Field::InPort) => mb.insert(parse_in_port(v)?, tok),
        Named::Field(field) => {
            let Some(d) = field_def(field) else {
                return Err(key_tok.err(format!("unknown field `{key}`")));
            };
            let vm = if field == Field::TcpFlags {
                parse_tcp_flags(d, v)?
            } else {
                parse_value_mask(d, v)?
            };
            match vm {
                Some((value, mask)) => mb.insert(
                    FieldMatch {
                        field: field as i32,
                        value,
                        mask,
                        port_name: String::new(),
                    },
                    tok,
                ),
                None => Ok(()),
            }
        }
        Named::DlVlan => {
            let vid = num(v, 0xffff, "dl_vlan")?;
            let value = match vid {
                0xffff => 0,
                0..=0xfff => 0x1000 | vid,
                _ => {
                    return Err(v.err("dl_vlan must be a VLAN ID 0..=4095, or 0xffff for untagged"));
                }
            };
            mb.exact(Field::VlanVid, value, tok)
        }
        Named::NwTos => {
            let tos = num(v, 255, "nw_tos")?;
            if tos & 3 != 0 {
                return Err(v.err("nw_tos holds DSCP bits only: the low 2 (ECN) bits must be 0"));
            }
            mb.exact(Field::IpDscp, tos >> 2, tok)
        }
    }
}

/// `tcp_flags=VALUE[/MASK]` or the `+syn-ack` form (flags that must be set or clear).
fn parse_tcp_flags(d: &FieldDef, tok: Tok<'_>) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    const NAMES: &[(&str, u16)] = &[
        ("fin", 0x001),
        ("syn", 0x002),
        ("rst", 0x004),
        ("psh", 0x008),
        ("ack", 0x010),
        ("urg", 0x020),
        ("ece", 0x040),
        ("cwr", 0x080),
        ("ns", 0x100),
    ];
    if !tok.text.starts_with(['+', '-']) {
        return parse_value_mask(d, tok);
    }
    let (mut value, mut mask) = (0u16, 0u16);
    let mut rest = tok.text;
    let mut at = tok.at;
    while let Some(sign) = rest.chars().next() {
        if sign != '+' && sign != '-' {
            return Err(ParseError::new(
                at,
                rest,
                "expected + or - before a TCP flag",
            ));
        }
        let body = &rest[1..];
        let end = body.find(['+', '-']).unwrap_or(body.len());
        let name = &body[..end];
        let bit = NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                ParseError::new(
                    at,
                    &rest[..end + 1],
                    "unknown TCP flag (fin syn rst psh ack urg ece cwr ns)",
                )
            })?;
        mask |= bit;
        if sign == '+' {
            value |= bit;
        }
        at += end + 1;
        rest = &body[end..];
    }
    Ok(canonical(
        value.to_be_bytes().to_vec(),
        mask.to_be_bytes().to_vec(),
    ))
}

/// Order of match fields in printed flows (ovs-ofctl dump-flows order).
pub(super) const PRINT_ORDER: &[Field] = &[
    Field::TunId,
    Field::TunSrc,
    Field::TunDst,
    Field::Metadata,
    Field::Reg0,
    Field::Reg1,
    Field::Reg2,
    Field::Reg3,
    Field::Reg4,
    Field::Reg5,
    Field::Reg6,
    Field::Reg7,
    Field::InPort,
    Field::VlanVid,
    Field::VlanPcp,
    Field::VlanTci,
    Field::EthSrc,
    Field::EthDst,
    Field::EthType,
    Field::Ipv4Src,
    Field::Ipv4Dst,
    Field::ArpSpa,
    Field::ArpTpa,
    Field::Ipv6Src,
    Field::Ipv6Dst,
    Field::IpProto,
    Field::IpDscp,
    Field::IpEcn,
    Field::IpTtl,
    Field::ArpOp,
    Field::ArpSha,
    Field::ArpTha,
    Field::TcpSrc,
    Field::TcpDst,
    Field::UdpSrc,
    Field::UdpDst,
    Field::SctpSrc,
    Field::SctpDst,
    Field::Icmpv4Type,
    Field::Icmpv4Code,
    Field::Icmpv6Type,
    Field::Icmpv6Code,
    Field::TcpFlags,
];

/// The shorthand that covers the match's eth_type (and ip_proto): (name, covers ip_proto).
fn covering_shorthand(ctx: Ctx) -> Option<(&'static str, bool)> {
    let e = ctx.eth_type?;
    let with_proto = SHORTHANDS
        .iter()
        .find(|(_, se, sp)| *se == e && sp.is_some() && *sp == ctx.ip_proto);
    let bare = SHORTHANDS
        .iter()
        .find(|(_, se, sp)| *se == e && sp.is_none());
    with_proto
        .map(|(n, _, _)| (*n, true))
        .or_else(|| bare.map(|(n, _, _)| (*n, false)))
}

/// Prints a match as comma-separated ovs-ofctl fields (protocol shorthand first).
/// An empty match prints as an empty string.
pub fn format_match(m: &Match) -> String {
    let mut parts: Vec<String> = Vec::new();
    let ctx = Ctx::of(m);
    let shorthand = covering_shorthand(ctx);
    let implied_type = shorthand.is_some();
    let implied_proto = shorthand.is_some_and(|(_, proto)| proto);
    if let Some((name, _)) = shorthand {
        parts.push(name.to_string());
    }
    for &f in PRINT_ORDER {
        let Some(fm) = m.fields.iter().find(|x| x.field == f as i32) else {
            continue;
        };
        let Some(d) = field_def(f) else { continue };
        let implied = match f {
            Field::EthType => implied_type,
            Field::IpProto => implied_proto,
            _ => false,
        };
        if implied && fm.mask.is_empty() {
            continue;
        }
        parts.push(field_text(d, fm));
    }
    // Fields not in the print order (unknown numbers) are still shown, never dropped.
    for fm in &m.fields {
        if field_def_i32(fm.field).is_none() {
            parts.push(format!(
                "field{}={}",
                fm.field,
                if fm.mask.is_empty() {
                    hex_bytes(&fm.value)
                } else {
                    format!("{}/{}", hex_bytes(&fm.value), hex_bytes(&fm.mask))
                }
            ));
        }
    }
    parts.join(",")
}

/// One match field as `name=value[/mask]`, in the spelling ovs-ofctl prints.
fn field_text(d: &FieldDef, fm: &FieldMatch) -> String {
    let (v, mk) = (&fm.value[..], &fm.mask[..]);
    match d.field {
        Field::InPort => match in_port_text(fm) {
            Some(p) => format!("in_port={p}"),
            None => format!("in_port={}", value_text(d, v, mk)),
        },
        Field::EthSrc => format!("dl_src={}", value_text(d, v, mk)),
        Field::EthDst => format!("dl_dst={}", value_text(d, v, mk)),
        Field::EthType => format!("dl_type=0x{:04x}", be_u64(v)),
        Field::VlanVid if mk.is_empty() && v.len() == 2 => {
            let x = be_u64(v);
            if x == 0 {
                "dl_vlan=0xffff".to_string()
            } else if x & 0x1000 != 0 {
                format!("dl_vlan={}", x & 0xfff)
            } else {
                format!("vlan_vid=0x{x:x}")
            }
        }
        Field::VlanPcp => format!("dl_vlan_pcp={}", value_text(d, v, mk)),
        Field::VlanTci => {
            if mk.is_empty() && v.len() == 2 {
                format!("vlan_tci=0x{:04x}", be_u64(v))
            } else if v.len() == 2 && mk.len() == 2 {
                format!("vlan_tci=0x{:04x}/0x{:04x}", be_u64(v), be_u64(mk))
            } else {
                format!("vlan_tci={}", value_text(d, v, mk))
            }
        }
        Field::Ipv4Src => format!("nw_src={}", value_text(d, v, mk)),
        Field::Ipv4Dst => format!("nw_dst={}", value_text(d, v, mk)),
        Field::IpDscp if mk.is_empty() && v.len() == 1 => format!("nw_tos={}", be_u64(v) << 2),
        Field::TcpSrc | Field::UdpSrc | Field::SctpSrc => {
            format!("tp_src={}", value_text(d, v, mk))
        }
        Field::TcpDst | Field::UdpDst | Field::SctpDst => {
            format!("tp_dst={}", value_text(d, v, mk))
        }
        Field::TcpFlags if v.len() == 2 && (mk.is_empty() || mk.len() == 2) => {
            if mk.is_empty() {
                format!("tcp_flags=0x{:03x}", be_u64(v))
            } else {
                format!("tcp_flags=0x{:03x}/0x{:03x}", be_u64(v), be_u64(mk))
            }
        }
        _ => format!("{}={}", d.name, value_text(d, v, mk)),
    }
}
