//! Matches: the match fields of a flow or filter read from tokens (with protocol
//! shorthands, the VLAN names as one TCI match, `nw_tos`, `tcp_flags=+syn-ack`,
//! `ip_frag=first`, `tun_flags=+oam`, `packet_type=(0,0)` and prerequisite checks).
//! Printing is in `match_text`.

use std::collections::BTreeMap;

use crate::v1::{Field, FieldMatch, Match};

use super::fields::{
    FieldDef, Named, canonical, field_def, field_def_i32, parse_value_mask, resolve_name,
};
use super::lexer::{ParseError, Result, Tok};
use super::ports::{parse_actset_output, parse_in_port};
use super::protocol::{Ctx, prereq_text, shorthand};
use super::scalar::{be_bytes, num, parse_u64, parse_u128};
use super::subfield::{bits_value_mask, parse_subfield, split_wide_register};
use super::vlan::{Tci, is_vlan_field};

/// Collects match fields in canonical order and remembers where each came from.
#[derive(Default)]
pub(super) struct MatchBuilder<'a> {
    fields: BTreeMap<i32, (FieldMatch, Tok<'a>)>,
    /// The VLAN names, applied in the order they are written (as Open vSwitch does).
    tci: Tci,
    tci_tok: Option<Tok<'a>>,
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
    pub(super) fn finish(mut self) -> Result<Match> {
        if let Some(tok) = self.tci_tok {
            for fm in self.tci.fields() {
                self.fields.insert(fm.field, (fm, tok));
            }
        }
        let m = Match {
            fields: self.fields.values().map(|(f, _)| f.clone()).collect(),
        };
        let ctx = Ctx::of(&m);
        for (field, (_, tok)) in &self.fields {
            if let Some(d) = field_def_i32(*field)
                && !ctx.satisfies(d.prereq)
            {
                let (key, _) = tok.key_value();
                return Err(tok.err(format!("`{key}` requires {}", prereq_text(d.prereq))));
            }
        }
        if let Some((name, why)) = super::ct::ct_tuple_prereq(&m.fields)
            && let Some((_, tok)) = self.fields.values().find(|(fm, _)| {
                super::fields::field_def_i32(fm.field).is_some_and(|d| d.name == name)
            })
        {
            return Err(tok.err(why));
        }
        Ok(m)
    }
}

/// The protocol the tokens pin (shorthands, `dl_type`, then `nw_proto`, then the ICMPv6
/// type), so that names like `nw_src`, `tp_dst` and `nd_target` resolve whatever their
/// position.
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
    for tok in tokens {
        if let ("icmp_type" | "icmpv6_type", Some(v)) = tok.key_value()
            && ctx.ip6()
            && let Some(t) = parse_u64(v.text)
        {
            ctx.icmp_type.get_or_insert(t as u8);
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
    if key == "packet_type" {
        return packet_type(v);
    }
    let key_tok = tok.with_text(key);
    if let Some((_, why)) = NOT_MATCHABLE.iter().find(|(n, _)| *n == key) {
        if let Some((_, m)) = v.split_once("/") {
            return Err(m.err(format!("{}: invalid mask for field {key}", v.text)));
        }
        return Err(key_tok.err(format!(
            "`{key}` cannot be matched in a flow: {why} (Open vSwitch refuses it too: actions are invalid with specified match)"
        )));
    }
    if key.contains('[') {
        return subfield_token(mb, key_tok, v, ctx, tok);
    }
    match resolve_name(key, ctx).map_err(|m| key_tok.err(m))? {
        Named::Field(Field::InPort) => mb.insert(parse_in_port(v)?, tok),
        Named::Field(Field::ActsetOutput) => mb.insert(parse_actset_output(v)?, tok),
        Named::Field(f @ (Field::VlanVid | Field::VlanPcp | Field::VlanTci)) => {
            vlan_token(mb, f, key, v, tok)
        }
        Named::DlVlan => {
            no_mask(v, key)?;
            mb.tci.set_dl_vlan(num(v, 0xffff, "dl_vlan")? as u16);
            mb.tci_tok = Some(tok);
            Ok(())
        }
        Named::Field(field) => {
            let Some(d) = field_def(field) else {
                return Err(key_tok.err(format!("unknown field `{key}`")));
            };
            let vm = match field {
                Field::TcpFlags => parse_tcp_flags(d, v)?,
                Field::IpFrag => parse_frag(d, v)?,
                Field::TunFlags => parse_tun_flags(d, v)?,
                Field::CtState => super::ct::parse_ct_state(d, v)?,
                _ => parse_value_mask(d, v)?,
            };
            match vm {
                Some((value, mask)) => {
                    let fm = FieldMatch {
                        field: field as i32,
                        value,
                        mask,
                        port_name: String::new(),
                    };
                    for fm in split_wide_register(fm) {
                        mb.insert(fm, tok)?;
                    }
                    Ok(())
                }
                None => Ok(()),
            }
        }
        Named::NwTos => {
            no_mask(v, key)?;
            let tos = num(v, 255, "nw_tos")?;
            if tos & 3 != 0 {
                return Err(v.err("nw_tos holds DSCP bits only: the low 2 (ECN) bits must be 0"));
            }
            mb.exact(Field::IpDscp, tos >> 2, tok)
        }
    }
}

/// `FIELD[START..END]=VALUE`: a match on some bits of a field, as that field's value and
/// mask (Open vSwitch prints it so: `tp_src[5]=1` is `tp_src=0x20/0x20`).
fn subfield_token<'a>(
    mb: &mut MatchBuilder<'a>,
    key: Tok<'a>,
    v: Tok<'a>,
    ctx: Ctx,
    tok: Tok<'a>,
) -> Result<()> {
    let sf = parse_subfield(key, ctx)?;
    let Some(d) = field_def_i32(sf.field) else {
        return Err(key.err("unknown field"));
    };
    if v.text.contains('/') {
        return Err(v.err(format!("{}: a subfield match takes no mask", v.text)));
    }
    let value = parse_u128(v.text).ok_or_else(|| {
        v.err(format!(
            "{}: expected a decimal or 0x-prefixed hexadecimal number",
            v.text
        ))
    })?;
    let Some((value, mask)) = bits_value_mask(d.width, sf.offset, sf.n_bits, value) else {
        return Err(v.err(format!(
            "{}: value does not fit in {} bits",
            v.text, sf.n_bits
        )));
    };
    let Some((value, mask)) = canonical(d, value, mask) else {
        return Ok(());
    };
    if !mask.is_empty() && !d.maskable {
        return Err(key.err(format!("`{}` cannot be matched on some bits only", d.name)));
    }
    let fm = FieldMatch {
        field: sf.field,
        value,
        mask,
        port_name: String::new(),
    };
    for fm in split_wide_register(fm) {
        mb.insert(fm, tok)?;
    }
    Ok(())
}

/// Open vSwitch fields that exist but that a flow cannot match, and why.
const NOT_MATCHABLE: &[(&str, &str)] = &[
    (
        "skb_priority",
        "it is the datapath's internal queue selection (set it with set_queue)",
    ),
    ("tun_tos", "a tunnel's TOS is set for output, not matched"),
    ("tun_ttl", "a tunnel's TTL is set for output, not matched"),
];

fn no_mask(v: Tok<'_>, key: &str) -> Result<()> {
    match v.split_once("/") {
        Some(_) => Err(v.err(format!("{}: invalid mask for field {key}", v.text))),
        None => Ok(()),
    }
}

/// `vlan_vid`, `vlan_pcp` / `dl_vlan_pcp` and `vlan_tci`: changes to the one TCI match.
fn vlan_token<'a>(
    mb: &mut MatchBuilder<'a>,
    f: Field,
    key: &str,
    v: Tok<'_>,
    tok: Tok<'a>,
) -> Result<()> {
    let (vt, mt) = match v.split_once("/") {
        Some((a, b)) => (a, Some(b)),
        None => (v, None),
    };
    match f {
        Field::VlanPcp => {
            no_mask(v, key)?;
            mb.tci.set_pcp(num(v, 7, key)? as u8);
        }
        Field::VlanVid => {
            let value = num(vt, 0x1fff, key)? as u16;
            let mask = mt.map_or(Ok(0x1fff), |m| num(m, 0x1fff, "vlan_vid mask"))? as u16;
            mb.tci.set_vlan_vid(value, mask);
        }
        _ => {
            let value = num(vt, 0xffff, key)? as u16;
            let mask = mt.map_or(Ok(0xffff), |m| num(m, 0xffff, "vlan_tci mask"))? as u16;
            mb.tci.set_tci(value, mask);
        }
    }
    mb.tci_tok = Some(tok);
    Ok(())
}

/// `packet_type=(NS,TYPE)`: this switch carries Ethernet frames only, so `(0,0)` (Ethernet,
/// the default) matches every packet and is not kept; other packet types are refused.
fn packet_type(v: Tok<'_>) -> Result<()> {
    let inner = v
        .text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| v.err("packet_type is written (NAMESPACE,TYPE), e.g. (0,0)"))?;
    let (ns, ty) = inner
        .split_once(',')
        .ok_or_else(|| v.err("packet_type is written (NAMESPACE,TYPE), e.g. (0,0)"))?;
    match (parse_u64(ns.trim()), parse_u64(ty.trim())) {
        (Some(0), Some(0)) => Ok(()),
        (Some(ns), Some(ty)) if ns <= 0xffff && ty <= 0xffff => Err(v.err(format!(
            "packet_type ({ns},{ty:#x}): this switch carries Ethernet frames only, packet_type=(0,0)"
        ))),
        _ => Err(v.err("packet_type: namespace and type are 16-bit numbers")),
    }
}

/// `ip_frag` / `nw_frag`: `no`, `yes`, `first`, `later`, `not_later` (bit 0: a fragment,
/// bit 1: not the first), or `VALUE[/MASK]`.
pub(super) const FRAG_NAMES: &[(&str, u8, u8)] = &[
    ("no", 0, 1),
    ("yes", 1, 1),
    ("first", 1, 3),
    ("later", 3, 3),
    ("not_later", 0, 2),
];

fn parse_frag(d: &FieldDef, tok: Tok<'_>) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    match FRAG_NAMES.iter().find(|(n, _, _)| *n == tok.text) {
        Some(&(_, v, m)) => Ok(canonical(d, vec![v], vec![m])),
        None if tok.text.starts_with(|c: char| c.is_ascii_digit()) => parse_value_mask(d, tok),
        None => Err(tok.err("ip_frag must be no, yes, first, later or not_later")),
    }
}

/// `tun_flags`: `+oam`, `-oam`, `oam`, `0`, or `VALUE[/MASK]` (bit 0 is OAM, the only
/// flag a match can test).
fn parse_tun_flags(d: &FieldDef, tok: Tok<'_>) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let (v, m) = match tok.text {
        "+oam" | "oam" => (1, 1),
        "-oam" => (0, 1),
        t if t.starts_with(|c: char| c.is_ascii_digit()) => return parse_value_mask(d, tok),
        _ => return Err(tok.err("tun_flags: +oam, -oam, oam or a number (bit 0 is OAM)")),
    };
    Ok(canonical(d, be_bytes(v, d.width), be_bytes(m, d.width)))
}

/// TCP flag names, by bit.
pub(super) const TCP_FLAG_NAMES: &[(&str, u16)] = &[
    ("fin", 0x001),
    ("syn", 0x002),
    ("rst", 0x004),
    ("psh", 0x008),
    ("ack", 0x010),
    ("urg", 0x020),
    ("ece", 0x040),
    ("cwr", 0x080),
    ("ns", 0x100),
    ("[200]", 0x200),
    ("[400]", 0x400),
    ("[800]", 0x800),
];

fn tcp_flag(name: &str) -> Option<u16> {
    TCP_FLAG_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, b)| *b)
}

/// `tcp_flags=VALUE[/MASK]`, the `+syn-ack` form (flags that must be set or clear, each
/// at most once) or the `syn|ack` form (exactly these flags).
fn parse_tcp_flags(d: &FieldDef, tok: Tok<'_>) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let bytes = |v: u16, m: u16| canonical(d, v.to_be_bytes().to_vec(), m.to_be_bytes().to_vec());
    if !tok.text.starts_with(['+', '-']) {
        if tok.text.starts_with(|c: char| c.is_ascii_digit()) {
            return parse_value_mask(d, tok);
        }
        let mut value = 0u16;
        for name in tok.text.split('|') {
            value |= tcp_flag(name).ok_or_else(|| {
                tok.err(format!(
                    "unknown TCP flag `{name}` (fin syn rst psh ack urg ece cwr ns)"
                ))
            })?;
        }
        return Ok(bytes(value, 0x0fff));
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
        let bit = tcp_flag(name).ok_or_else(|| {
            ParseError::new(
                at,
                &rest[..end + 1],
                "unknown TCP flag (fin syn rst psh ack urg ece cwr ns)",
            )
        })?;
        if mask & bit != 0 {
            return Err(ParseError::new(
                at,
                &rest[..end + 1],
                format!("{name}: each TCP flag can be specified only once"),
            ));
        }
        mask |= bit;
        if sign == '+' {
            value |= bit;
        }
        at += end + 1;
        rest = &body[end..];
    }
    Ok(bytes(value, mask))
}

/// Puts a match's VLAN fields in canonical form (see `vlan`): the API check canonicalizes
/// them the way the text parser does.
pub(super) fn canonical_vlan(fields: &mut Vec<FieldMatch>) {
    let t = Tci::of_fields(fields.iter().filter(|f| is_vlan_field(f.field)));
    fields.retain(|f| !is_vlan_field(f.field));
    fields.extend(t.fields());
    fields.sort_by_key(|f| f.field);
}

#[cfg(test)]
mod tests {
    use super::super::parse_flow;

    #[test]
    fn untagged_is_vlan_tci_zero() {
        let f = parse_flow("dl_vlan=0xffff,actions=drop").unwrap();
        let g = parse_flow("vlan_tci=0/0x1fff,actions=drop").unwrap();
        assert_eq!(f, g);
    }

    #[test]
    fn packet_type_ethernet_only() {
        let f = parse_flow("packet_type=(0,0),ip,actions=drop").unwrap();
        assert_eq!(f, parse_flow("ip,actions=drop").unwrap());
        let e = parse_flow("packet_type=(1,0x800),actions=drop").unwrap_err();
        assert!(e.message.contains("Ethernet frames only"), "{e}");
    }

    #[test]
    fn frag_and_flags() {
        for (text, ok) in [
            ("ip,ip_frag=later,actions=drop", true),
            ("ipv6,nw_frag=not_later,actions=drop", true),
            ("ip,ip_frag=sometimes,actions=drop", false),
            ("ip_frag=no,actions=drop", false),
            ("tun_flags=+oam,actions=drop", true),
            ("tcp,tcp_flags=+ack-ack,actions=drop", false),
            ("tcp,tcp_flags=syn|ack,actions=drop", true),
        ] {
            assert_eq!(parse_flow(text).is_ok(), ok, "{text}");
        }
    }
}
