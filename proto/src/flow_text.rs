//! The ovs-ofctl flow text syntax, parsed into and printed from the `vswitch.v1` messages.
//!
//! ```text
//! table=0,priority=100,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=mod_dl_dst:02:00:00:00:00:02,output:2
//! ```
//!
//! - [`parse_flow`] / [`format_flow`]: add-flow(s) lines. [`format_flow_dump`] prints the
//!   dump-flows form with counters, which [`parse_flow`] also reads back (the counters are
//!   ignored, as ovs-ofctl does).
//! - [`parse_match`]: del-flows / dump-flows filters; [`parse_flow_modify`]: mod-flows.
//! - [`parse_meter`] / [`format_meter`], [`parse_group`] / [`format_group`].
//!
//! Contract: every parser is a pure function over untrusted text. It never panics, and a
//! rejected input yields a [`ParseError`] with the byte offset and text of the offending
//! token. Parsed messages are canonical: match fields sorted by `Field` number, values
//! masked, all-ones masks written as empty, all-zero masks dropped, instructions in OpenFlow
//! order. So `parse_flow(&format_flow(&f)) == f` for every canonical `f`.
//!
//! Prerequisites are checked as Open vSwitch does: a field needs the match to pin its
//! protocol (`nw_dst` needs `ip` or `arp`, `tp_dst` needs `tcp`/`udp`/`sctp`, ...), and so
//! does a `set_field` on it.
//!
//! Thread-safety: plain functions over values; no shared state.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::v1::{
    Action, ApplyActions, Band, BandType, Bucket, DecTtl, Field, FieldMatch, Flow, FlowFilter,
    FlowFlags, FlowModify, Group, GroupType, Instruction, Match, Meter, MeterUnit, Output, PopVlan,
    PortRef, PushVlan, ReservedPort, SetField, WriteMetadata, action, instruction, port_ref,
};

/// Priority of a flow whose text gives none (OFP_DEFAULT_PRIORITY).
pub const DEFAULT_PRIORITY: u32 = 32768;
/// Highest flow table id (255 means "all tables" in OpenFlow and is not a table).
pub const MAX_TABLE_ID: u32 = 254;
/// Highest ordinary OpenFlow port number (OFPP_MAX).
pub const MAX_PORT_NO: u32 = 0xffff_ff00;
/// OpenFlow number of the LOCAL port, as carried in an `in_port` [`FieldMatch`].
pub const OFPP_LOCAL: u32 = 0xffff_fffe;
/// OpenFlow number of the CONTROLLER port, as carried in an `in_port` [`FieldMatch`].
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
/// Highest meter id (OFPM_MAX).
pub const MAX_METER_ID: u32 = 0xffff_0000;
/// Highest group id (OFPG_MAX).
pub const MAX_GROUP_ID: u32 = 0xffff_ff00;

/// A rejected flow, match, meter or group string.
///
/// `offset` is the byte offset of `token` in the parsed string, so a CLI can print a caret
/// under it (see [`ParseError::caret`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at byte {offset}: `{token}`)")]
pub struct ParseError {
    /// Byte offset of the offending token in the input.
    pub offset: usize,
    /// The offending token (may be empty when something is missing at the end).
    pub token: String,
    /// What is wrong, and how to fix it where that is known.
    pub message: String,
}

impl ParseError {
    fn new(offset: usize, token: &str, message: impl Into<String>) -> Self {
        ParseError {
            offset,
            token: token.to_string(),
            message: message.into(),
        }
    }

    /// Two lines for a terminal: the input, then a caret line under the offending token.
    pub fn caret(&self, input: &str) -> String {
        let col = input
            .get(..self.offset.min(input.len()))
            .map_or(0, |s| s.chars().count());
        let width = self.token.chars().count().max(1);
        format!("{input}\n{}{}", " ".repeat(col), "^".repeat(width))
    }
}

type Result<T> = std::result::Result<T, ParseError>;

// ---------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------

/// A token and its byte offset in the whole input.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    at: usize,
    text: &'a str,
}

impl<'a> Tok<'a> {
    /// Splits `key=value` at the first `=`: (key, Some(value token)).
    fn key_value(self) -> (&'a str, Option<Tok<'a>>) {
        match self.text.find('=') {
            Some(i) => (
                &self.text[..i],
                Some(Tok {
                    at: self.at + i + 1,
                    text: &self.text[i + 1..],
                }),
            ),
            None => (self.text, None),
        }
    }

    /// Splits at the first occurrence of `sep` (a char boundary by construction).
    fn split_once(self, sep: &str) -> Option<(Tok<'a>, Tok<'a>)> {
        let i = self.text.find(sep)?;
        Some((
            Tok {
                at: self.at,
                text: &self.text[..i],
            },
            Tok {
                at: self.at + i + sep.len(),
                text: &self.text[i + sep.len()..],
            },
        ))
    }

    fn err(self, message: impl Into<String>) -> ParseError {
        ParseError::new(self.at, self.text, message)
    }
}

fn is_sep(c: char, with_space: bool) -> bool {
    c == ',' || (with_space && c.is_whitespace())
}

/// Splits `s` (starting at byte `base` of the input) at separators outside parentheses.
/// Empty tokens are skipped. Whitespace around tokens is trimmed.
fn split_tokens(s: &str, base: usize, with_space: bool) -> Vec<Tok<'_>> {
    fn push<'a>(s: &'a str, base: usize, from: usize, to: usize, out: &mut Vec<Tok<'a>>) {
        if let Some(raw) = s.get(from..to) {
            let lead = raw.len() - raw.trim_start().len();
            let text = raw.trim();
            if !text.is_empty() {
                out.push(Tok {
                    at: base + from + lead,
                    text,
                });
            }
        }
    }
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && is_sep(c, with_space) => {
                push(s, base, start, i, &mut out);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    push(s, base, start, s.len(), &mut out);
    out
}

/// The flow part of a flow string (before `actions=`) as tokens, and the actions part.
fn split_flow(s: &str) -> (Vec<Tok<'_>>, Option<Tok<'_>>) {
    // Find `actions=` as a token start at paren depth 0.
    let mut depth = 0usize;
    let mut token_start = true;
    for (i, c) in s.char_indices() {
        if depth == 0 && token_start && s[i..].starts_with("actions=") {
            let head = split_tokens(&s[..i], 0, true);
            let value_at = i + "actions=".len();
            let value = s[value_at..].trim_end();
            return (
                head,
                Some(Tok {
                    at: value_at,
                    text: value,
                }),
            );
        }
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        token_start = depth == 0 && is_sep(c, true);
    }
    (split_tokens(s, 0, true), None)
}

// ---------------------------------------------------------------------------------------
// Numbers and addresses
// ---------------------------------------------------------------------------------------

fn parse_u64(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    } else {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
}

fn num(tok: Tok<'_>, max: u64, what: &str) -> Result<u64> {
    match parse_u64(tok.text) {
        Some(v) if v <= max => Ok(v),
        Some(_) => Err(tok.err(format!("{what} must be at most {max} (0x{max:x})"))),
        None => Err(tok.err(format!(
            "{what}: expected a decimal or 0x-prefixed hexadecimal number"
        ))),
    }
}

fn num_u32(tok: Tok<'_>, max: u32, what: &str) -> Result<u32> {
    num(tok, u64::from(max), what).map(|v| v as u32)
}

fn parse_mac(tok: Tok<'_>) -> Result<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut n = 0usize;
    for part in tok.text.split(':') {
        let slot = out.get_mut(n).ok_or_else(|| {
            tok.err("bad Ethernet address: expected six hex bytes like 02:00:00:00:00:01")
        })?;
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(
                tok.err("bad Ethernet address: expected six hex bytes like 02:00:00:00:00:01")
            );
        }
        *slot = u8::from_str_radix(part, 16).map_err(|_| tok.err("bad Ethernet address"))?;
        n += 1;
    }
    if n != 6 {
        return Err(tok.err("bad Ethernet address: expected six hex bytes like 02:00:00:00:00:01"));
    }
    Ok(out)
}

fn parse_ipv4(tok: Tok<'_>) -> Result<Ipv4Addr> {
    tok.text
        .parse::<Ipv4Addr>()
        .map_err(|_| tok.err("bad IPv4 address: expected dotted quad like 10.0.0.1"))
}

fn parse_ipv6(tok: Tok<'_>) -> Result<Ipv6Addr> {
    tok.text
        .parse::<Ipv6Addr>()
        .map_err(|_| tok.err("bad IPv6 address: expected e.g. 2001:db8::1"))
}

fn prefix_mask(bits: usize, prefix: usize) -> Vec<u8> {
    (0..bits / 8)
        .map(|i| {
            let lo = i * 8;
            if prefix >= lo + 8 {
                0xff
            } else if prefix <= lo {
                0
            } else {
                0xffu8 << (8 - (prefix - lo))
            }
        })
        .collect()
}

/// The prefix length if `mask` is a CIDR mask.
fn mask_prefix(mask: &[u8]) -> Option<usize> {
    let ones: usize = mask.iter().map(|b| b.count_ones() as usize).sum();
    (prefix_mask(mask.len() * 8, ones) == mask).then_some(ones)
}

fn be_bytes(v: u64, width: usize) -> Vec<u8> {
    let all = v.to_be_bytes();
    all.get(8usize.saturating_sub(width)..)
        .unwrap_or(&all)
        .to_vec()
}

fn be_u64(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
}

fn hex_bytes(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn mac_text(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

// ---------------------------------------------------------------------------------------
// Fields
// ---------------------------------------------------------------------------------------

/// How a field's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// Unsigned integer of `bits` bits; `hex` chooses how it is printed.
    Int {
        bits: u32,
        hex: bool,
    },
    Mac,
    Ipv4,
    Ipv6,
    /// An OpenFlow port: number, name or LOCAL/CONTROLLER.
    Port,
}

/// What the match must pin for a field to be usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prereq {
    None,
    Ip,
    Ipv4,
    Ipv6,
    Arp,
    Tcp,
    Udp,
    Sctp,
    Icmp4,
    Icmp6,
}

/// Static facts about one [`Field`].
#[derive(Debug, Clone, Copy)]
struct FieldDef {
    field: Field,
    /// Value width in bytes.
    width: usize,
    syntax: Syntax,
    maskable: bool,
    settable: bool,
    prereq: Prereq,
    /// Name used in `set_field:V->NAME` output and in messages.
    name: &'static str,
}

const fn def(
    field: Field,
    width: usize,
    syntax: Syntax,
    maskable: bool,
    settable: bool,
    prereq: Prereq,
    name: &'static str,
) -> FieldDef {
    FieldDef {
        field,
        width,
        syntax,
        maskable,
        settable,
        prereq,
        name,
    }
}

const fn int(bits: u32) -> Syntax {
    Syntax::Int { bits, hex: false }
}
const fn hex(bits: u32) -> Syntax {
    Syntax::Int { bits, hex: true }
}

/// Every field, in `Field` number order (which is also the canonical match order).
#[rustfmt::skip]
const FIELDS: &[FieldDef] = &[
    def(Field::InPort, 4, Syntax::Port, false, true, Prereq::None, "in_port"),
    def(Field::EthSrc, 6, Syntax::Mac, true, true, Prereq::None, "eth_src"),
    def(Field::EthDst, 6, Syntax::Mac, true, true, Prereq::None, "eth_dst"),
    def(Field::EthType, 2, hex(16), false, false, Prereq::None, "eth_type"),
    def(Field::VlanVid, 2, hex(13), true, true, Prereq::None, "vlan_vid"),
    def(Field::VlanPcp, 1, int(3), false, true, Prereq::None, "vlan_pcp"),
    def(Field::VlanTci, 2, hex(16), true, true, Prereq::None, "vlan_tci"),
    def(Field::IpDscp, 1, int(6), false, true, Prereq::Ip, "ip_dscp"),
    def(Field::IpEcn, 1, int(2), false, true, Prereq::Ip, "nw_ecn"),
    def(Field::IpProto, 1, int(8), false, false, Prereq::Ip, "nw_proto"),
    def(Field::IpTtl, 1, int(8), false, true, Prereq::Ip, "nw_ttl"),
    def(Field::Ipv4Src, 4, Syntax::Ipv4, true, true, Prereq::Ipv4, "ip_src"),
    def(Field::Ipv4Dst, 4, Syntax::Ipv4, true, true, Prereq::Ipv4, "ip_dst"),
    def(Field::Ipv6Src, 16, Syntax::Ipv6, true, true, Prereq::Ipv6, "ipv6_src"),
    def(Field::Ipv6Dst, 16, Syntax::Ipv6, true, true, Prereq::Ipv6, "ipv6_dst"),
    def(Field::TcpSrc, 2, int(16), true, true, Prereq::Tcp, "tcp_src"),
    def(Field::TcpDst, 2, int(16), true, true, Prereq::Tcp, "tcp_dst"),
    def(Field::UdpSrc, 2, int(16), true, true, Prereq::Udp, "udp_src"),
    def(Field::UdpDst, 2, int(16), true, true, Prereq::Udp, "udp_dst"),
    def(Field::SctpSrc, 2, int(16), true, true, Prereq::Sctp, "sctp_src"),
    def(Field::SctpDst, 2, int(16), true, true, Prereq::Sctp, "sctp_dst"),
    def(Field::TcpFlags, 2, hex(12), true, false, Prereq::Tcp, "tcp_flags"),
    def(Field::Icmpv4Type, 1, int(8), false, true, Prereq::Icmp4, "icmp_type"),
    def(Field::Icmpv4Code, 1, int(8), false, true, Prereq::Icmp4, "icmp_code"),
    def(Field::Icmpv6Type, 1, int(8), false, true, Prereq::Icmp6, "icmpv6_type"),
    def(Field::Icmpv6Code, 1, int(8), false, true, Prereq::Icmp6, "icmpv6_code"),
    def(Field::ArpOp, 2, int(16), false, true, Prereq::Arp, "arp_op"),
    def(Field::ArpSpa, 4, Syntax::Ipv4, true, true, Prereq::Arp, "arp_spa"),
    def(Field::ArpTpa, 4, Syntax::Ipv4, true, true, Prereq::Arp, "arp_tpa"),
    def(Field::ArpSha, 6, Syntax::Mac, true, true, Prereq::Arp, "arp_sha"),
    def(Field::ArpTha, 6, Syntax::Mac, true, true, Prereq::Arp, "arp_tha"),
    def(Field::TunId, 8, hex(64), true, true, Prereq::None, "tun_id"),
    def(Field::TunSrc, 4, Syntax::Ipv4, true, true, Prereq::None, "tun_src"),
    def(Field::TunDst, 4, Syntax::Ipv4, true, true, Prereq::None, "tun_dst"),
    def(Field::Metadata, 8, hex(64), true, true, Prereq::None, "metadata"),
    def(Field::Reg0, 4, hex(32), true, true, Prereq::None, "reg0"),
    def(Field::Reg1, 4, hex(32), true, true, Prereq::None, "reg1"),
    def(Field::Reg2, 4, hex(32), true, true, Prereq::None, "reg2"),
    def(Field::Reg3, 4, hex(32), true, true, Prereq::None, "reg3"),
    def(Field::Reg4, 4, hex(32), true, true, Prereq::None, "reg4"),
    def(Field::Reg5, 4, hex(32), true, true, Prereq::None, "reg5"),
    def(Field::Reg6, 4, hex(32), true, true, Prereq::None, "reg6"),
    def(Field::Reg7, 4, hex(32), true, true, Prereq::None, "reg7"),
];

fn field_def(field: Field) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|d| d.field == field)
}

fn field_def_i32(field: i32) -> Option<&'static FieldDef> {
    Field::try_from(field).ok().and_then(field_def)
}

/// Width in bytes of a field's value, and whether it takes a mask; `None` for
/// `FIELD_UNSPECIFIED` and unknown numbers. For the daemon's own validation of API input.
pub fn field_width(field: Field) -> Option<(usize, bool)> {
    field_def(field).map(|d| (d.width, d.maskable))
}

/// An API match or set-field refused by [`check_match`] or [`check_set_field`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Where: the field's name (`ip_dst`) or number when unknown.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn field_err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The text name of a field (`ip_dst`, `vlan_vid`, ...), as `set_field` prints it.
pub fn field_name(field: Field) -> &'static str {
    field_def(field).map_or("unknown", |d| d.name)
}

/// Validates a match received through the API and returns its canonical form (fields
/// sorted, values masked, all-ones masks empty, all-zero masks dropped), or the first
/// problem: an unknown field, a value or mask of the wrong width, a mask on a field that
/// takes none, a value wider than the field, a field given twice, a missing prerequisite
/// (as Open vSwitch checks them), or `vlan_tci` mixed with `vlan_vid`/`vlan_pcp`.
/// A `port_name` is allowed only on `in_port`, with an empty value.
pub fn check_match(m: &Match) -> std::result::Result<Match, FieldError> {
    let mut out: BTreeMap<i32, FieldMatch> = BTreeMap::new();
    for fm in &m.fields {
        let d = field_def_i32(fm.field)
            .ok_or_else(|| field_err(format!("field {}", fm.field), "unknown field number"))?;
        if out.contains_key(&fm.field) {
            return Err(field_err(d.name, "given twice"));
        }
        if !fm.port_name.is_empty() {
            if d.field != Field::InPort || !fm.value.is_empty() || !fm.mask.is_empty() {
                return Err(field_err(
                    d.name,
                    "port_name is only valid on in_port, without value or mask",
                ));
            }
            out.insert(fm.field, fm.clone());
            continue;
        }
        if fm.value.len() != d.width {
            return Err(field_err(
                d.name,
                format!("value must be {} bytes, got {}", d.width, fm.value.len()),
            ));
        }
        if !fm.mask.is_empty() && fm.mask.len() != d.width {
            return Err(field_err(
                d.name,
                format!(
                    "mask must be empty or {} bytes, got {}",
                    d.width,
                    fm.mask.len()
                ),
            ));
        }
        if let Syntax::Int { bits, .. } = d.syntax
            && bits < 64
            && be_u64(&fm.value) >> bits != 0
        {
            return Err(field_err(
                d.name,
                format!("value does not fit in {bits} bits"),
            ));
        }
        let all_ones = fm.mask.iter().all(|&b| b == 0xff);
        let all_zero = !fm.mask.is_empty() && fm.mask.iter().all(|&b| b == 0);
        if all_zero {
            continue;
        }
        if !all_ones && !d.maskable {
            return Err(field_err(d.name, "this field cannot be masked"));
        }
        let (value, mask) = if all_ones {
            (fm.value.clone(), Vec::new())
        } else {
            let v = fm.value.iter().zip(&fm.mask).map(|(v, m)| v & m).collect();
            (v, fm.mask.clone())
        };
        out.insert(
            fm.field,
            FieldMatch {
                field: fm.field,
                value,
                mask,
                port_name: String::new(),
            },
        );
    }
    let m = Match {
        fields: out.into_values().collect(),
    };
    let ctx = Ctx::of(&m);
    let has = |f: Field| m.fields.iter().any(|x| x.field == f as i32);
    for fm in &m.fields {
        if let Some(d) = field_def_i32(fm.field) {
            if !ctx.satisfies(d.prereq) {
                return Err(field_err(
                    d.name,
                    format!("requires {}", prereq_text(d.prereq)),
                ));
            }
            if d.field == Field::VlanTci && (has(Field::VlanVid) || has(Field::VlanPcp)) {
                return Err(field_err(
                    d.name,
                    "vlan_tci cannot be combined with vlan_vid / vlan_pcp",
                ));
            }
        }
    }
    Ok(m)
}

/// Validates a set-field action received through the API against the match context it
/// runs in (`ctx_match`: the flow's match): the field must exist and be settable, the
/// value and mask the field's width, and the field's protocol pinned by the match.
pub fn check_set_field(sf: &SetField, ctx_match: &Match) -> std::result::Result<(), FieldError> {
    let d = field_def_i32(sf.field)
        .ok_or_else(|| field_err(format!("field {}", sf.field), "unknown field number"))?;
    if !d.settable {
        return Err(field_err(d.name, "this field cannot be set"));
    }
    if sf.value.len() != d.width {
        return Err(field_err(
            d.name,
            format!("value must be {} bytes, got {}", d.width, sf.value.len()),
        ));
    }
    if !sf.mask.is_empty() && sf.mask.len() != d.width {
        return Err(field_err(
            d.name,
            format!(
                "mask must be empty or {} bytes, got {}",
                d.width,
                sf.mask.len()
            ),
        ));
    }
    if let Syntax::Int { bits, .. } = d.syntax
        && bits < 64
        && be_u64(&sf.value) >> bits != 0
    {
        return Err(field_err(
            d.name,
            format!("value does not fit in {bits} bits"),
        ));
    }
    if !Ctx::of(ctx_match).satisfies(d.prereq) {
        return Err(field_err(
            d.name,
            format!("set_field on it requires {}", prereq_text(d.prereq)),
        ));
    }
    Ok(())
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;
const ETH_RARP: u16 = 0x8035;

/// The protocol context of a match: its exact eth_type and ip_proto.
#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    eth_type: Option<u16>,
    ip_proto: Option<u8>,
}

impl Ctx {
    fn of(m: &Match) -> Ctx {
        let mut ctx = Ctx::default();
        for f in &m.fields {
            if f.mask.is_empty() {
                if f.field == Field::EthType as i32 && f.value.len() == 2 {
                    ctx.eth_type = Some(be_u64(&f.value) as u16);
                }
                if f.field == Field::IpProto as i32 && f.value.len() == 1 {
                    ctx.ip_proto = Some(be_u64(&f.value) as u8);
                }
            }
        }
        ctx
    }
    fn ip4(self) -> bool {
        self.eth_type == Some(ETH_IPV4)
    }
    fn ip6(self) -> bool {
        self.eth_type == Some(ETH_IPV6)
    }
    fn ip(self) -> bool {
        self.ip4() || self.ip6()
    }
    fn arp(self) -> bool {
        matches!(self.eth_type, Some(ETH_ARP | ETH_RARP))
    }
    fn proto(self, p: u8) -> bool {
        self.ip() && self.ip_proto == Some(p)
    }
    fn satisfies(self, p: Prereq) -> bool {
        match p {
            Prereq::None => true,
            Prereq::Ip => self.ip(),
            Prereq::Ipv4 => self.ip4(),
            Prereq::Ipv6 => self.ip6(),
            Prereq::Arp => self.arp(),
            Prereq::Tcp => self.proto(6),
            Prereq::Udp => self.proto(17),
            Prereq::Sctp => self.proto(132),
            Prereq::Icmp4 => self.ip4() && self.ip_proto == Some(1),
            Prereq::Icmp6 => self.ip6() && self.ip_proto == Some(58),
        }
    }
}

fn prereq_text(p: Prereq) -> &'static str {
    match p {
        Prereq::None => "nothing",
        Prereq::Ip => "an IP match: add `ip` or `ipv6` (or dl_type=0x0800 / 0x86dd)",
        Prereq::Ipv4 => "an IPv4 match: add `ip` (or dl_type=0x0800); for ARP use `arp`",
        Prereq::Ipv6 => "an IPv6 match: add `ipv6` (or dl_type=0x86dd)",
        Prereq::Arp => "an ARP match: add `arp` (or dl_type=0x0806)",
        Prereq::Tcp => "a TCP match: add `tcp` or `tcp6` (or nw_proto=6 with ip/ipv6)",
        Prereq::Udp => "a UDP match: add `udp` or `udp6` (or nw_proto=17 with ip/ipv6)",
        Prereq::Sctp => "an SCTP match: add `sctp` or `sctp6` (or nw_proto=132 with ip/ipv6)",
        Prereq::Icmp4 => "an ICMP match: add `icmp` (or ip,nw_proto=1)",
        Prereq::Icmp6 => "an ICMPv6 match: add `icmp6` (or ipv6,nw_proto=58)",
    }
}

/// What a text field name means in a given protocol context.
enum Named {
    Field(Field),
    /// `dl_vlan`: 12-bit VID, 0xffff for "no tag"; stored as VLAN_VID.
    DlVlan,
    /// `nw_tos`: TOS byte with DSCP bits; stored as IP_DSCP (value >> 2).
    NwTos,
}

/// Resolves a match / set_field field name. `Err` carries the message for unknown names or
/// names that need a protocol the context lacks.
fn resolve_name(name: &str, ctx: Ctx) -> std::result::Result<Named, String> {
    let name = nxm_alias(name).unwrap_or(name);
    let f = |f| Ok(Named::Field(f));
    let tp = |src: bool| -> std::result::Result<Named, String> {
        match (ctx.ip(), ctx.ip_proto) {
            (true, Some(6)) => f(if src { Field::TcpSrc } else { Field::TcpDst }),
            (true, Some(17)) => f(if src { Field::UdpSrc } else { Field::UdpDst }),
            (true, Some(132)) => f(if src { Field::SctpSrc } else { Field::SctpDst }),
            _ => Err(format!(
                "`{name}` needs a TCP, UDP or SCTP match: add `tcp`, `udp` or `sctp` (or their IPv6 forms)"
            )),
        }
    };
    match name {
        "in_port" => f(Field::InPort),
        "dl_src" | "eth_src" => f(Field::EthSrc),
        "dl_dst" | "eth_dst" => f(Field::EthDst),
        "dl_type" | "eth_type" => f(Field::EthType),
        "dl_vlan" => Ok(Named::DlVlan),
        "vlan_vid" => f(Field::VlanVid),
        "dl_vlan_pcp" | "vlan_pcp" => f(Field::VlanPcp),
        "vlan_tci" => f(Field::VlanTci),
        "nw_src" | "ip_src" if ctx.arp() => f(Field::ArpSpa),
        "nw_dst" | "ip_dst" if ctx.arp() => f(Field::ArpTpa),
        "nw_src" | "ip_src" => f(Field::Ipv4Src),
        "nw_dst" | "ip_dst" => f(Field::Ipv4Dst),
        "ipv6_src" => f(Field::Ipv6Src),
        "ipv6_dst" => f(Field::Ipv6Dst),
        "nw_proto" | "ip_proto" if ctx.arp() => f(Field::ArpOp),
        "nw_proto" | "ip_proto" => f(Field::IpProto),
        "nw_tos" => Ok(Named::NwTos),
        "ip_dscp" => f(Field::IpDscp),
        "nw_ecn" | "ip_ecn" => f(Field::IpEcn),
        "nw_ttl" => f(Field::IpTtl),
        "tp_src" => tp(true),
        "tp_dst" => tp(false),
        "tcp_src" => f(Field::TcpSrc),
        "tcp_dst" => f(Field::TcpDst),
        "udp_src" => f(Field::UdpSrc),
        "udp_dst" => f(Field::UdpDst),
        "sctp_src" => f(Field::SctpSrc),
        "sctp_dst" => f(Field::SctpDst),
        "tcp_flags" => f(Field::TcpFlags),
        "icmp_type" if ctx.ip6() => f(Field::Icmpv6Type),
        "icmp_code" if ctx.ip6() => f(Field::Icmpv6Code),
        "icmp_type" | "icmpv4_type" => f(Field::Icmpv4Type),
        "icmp_code" | "icmpv4_code" => f(Field::Icmpv4Code),
        "icmpv6_type" => f(Field::Icmpv6Type),
        "icmpv6_code" => f(Field::Icmpv6Code),
        "arp_op" => f(Field::ArpOp),
        "arp_spa" => f(Field::ArpSpa),
        "arp_tpa" => f(Field::ArpTpa),
        "arp_sha" => f(Field::ArpSha),
        "arp_tha" => f(Field::ArpTha),
        "tun_id" | "tunnel_id" => f(Field::TunId),
        "tun_src" => f(Field::TunSrc),
        "tun_dst" => f(Field::TunDst),
        "metadata" => f(Field::Metadata),
        "reg0" => f(Field::Reg0),
        "reg1" => f(Field::Reg1),
        "reg2" => f(Field::Reg2),
        "reg3" => f(Field::Reg3),
        "reg4" => f(Field::Reg4),
        "reg5" => f(Field::Reg5),
        "reg6" => f(Field::Reg6),
        "reg7" => f(Field::Reg7),
        _ => Err(format!("unknown field `{name}`")),
    }
}

/// The Nicira/OXM names that `load:` users write, for the fields this syntax has.
fn nxm_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "NXM_OF_IN_PORT" => "in_port",
        "NXM_OF_ETH_SRC" | "OXM_OF_ETH_SRC" => "eth_src",
        "NXM_OF_ETH_DST" | "OXM_OF_ETH_DST" => "eth_dst",
        "NXM_OF_VLAN_TCI" => "vlan_tci",
        "NXM_OF_IP_SRC" | "OXM_OF_IPV4_SRC" => "ip_src",
        "NXM_OF_IP_DST" | "OXM_OF_IPV4_DST" => "ip_dst",
        "NXM_NX_TUN_ID" | "OXM_OF_TUNNEL_ID" => "tun_id",
        "NXM_NX_TUN_IPV4_SRC" => "tun_src",
        "NXM_NX_TUN_IPV4_DST" => "tun_dst",
        "OXM_OF_METADATA" => "metadata",
        "NXM_NX_REG0" => "reg0",
        "NXM_NX_REG1" => "reg1",
        "NXM_NX_REG2" => "reg2",
        "NXM_NX_REG3" => "reg3",
        "NXM_NX_REG4" => "reg4",
        "NXM_NX_REG5" => "reg5",
        "NXM_NX_REG6" => "reg6",
        "NXM_NX_REG7" => "reg7",
        _ => return None,
    })
}

/// Parses one value (no mask) of a field.
fn parse_value(d: &FieldDef, tok: Tok<'_>) -> Result<Vec<u8>> {
    match d.syntax {
        Syntax::Int { bits, .. } => {
            let max = if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            num(tok, max, d.name).map(|v| be_bytes(v, d.width))
        }
        Syntax::Mac => parse_mac(tok).map(|m| m.to_vec()),
        Syntax::Ipv4 => parse_ipv4(tok).map(|a| a.octets().to_vec()),
        Syntax::Ipv6 => parse_ipv6(tok).map(|a| a.octets().to_vec()),
        Syntax::Port => match parse_port_number(tok)? {
            PortText::Number(n) => Ok(n.to_be_bytes().to_vec()),
            _ => Err(tok.err("expected a port number")),
        },
    }
}

/// Parses `VALUE[/MASK]` for a field into canonical (value, mask).
/// Returns `None` for an all-zero mask (the field is wildcarded).
fn parse_value_mask(d: &FieldDef, tok: Tok<'_>) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let Some((vtok, mtok)) = tok.split_once("/") else {
        return Ok(Some((parse_value(d, tok)?, Vec::new())));
    };
    if !d.maskable {
        return Err(mtok.err(format!("`{}` does not take a mask", d.name)));
    }
    let value = parse_value(d, vtok)?;
    let prefix_ok = matches!(d.syntax, Syntax::Ipv4 | Syntax::Ipv6);
    let mask = if prefix_ok && !mtok.text.contains(['.', ':']) {
        let bits = d.width * 8;
        match mtok.text.parse::<usize>() {
            Ok(p) if p <= bits && mtok.text.bytes().all(|b| b.is_ascii_digit()) => {
                prefix_mask(bits, p)
            }
            _ => return Err(mtok.err(format!("bad prefix length: expected 0..={bits}"))),
        }
    } else {
        parse_value(d, mtok)?
    };
    Ok(canonical(value, mask))
}

/// value &= mask; all-ones mask -> empty; all-zero mask -> None.
fn canonical(mut value: Vec<u8>, mask: Vec<u8>) -> Option<(Vec<u8>, Vec<u8>)> {
    if mask.iter().all(|b| *b == 0) {
        return None;
    }
    for (v, m) in value.iter_mut().zip(&mask) {
        *v &= *m;
    }
    if mask.iter().all(|b| *b == 0xff) {
        Some((value, Vec::new()))
    } else {
        Some((value, mask))
    }
}

// ---------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------

enum PortText {
    Number(u32),
    Reserved(ReservedPort),
    Name(String),
}

fn reserved_by_name(s: &str) -> Option<ReservedPort> {
    Some(match s.to_ascii_lowercase().as_str() {
        "in_port" => ReservedPort::InPort,
        "table" => ReservedPort::Table,
        "normal" => ReservedPort::Normal,
        "flood" => ReservedPort::Flood,
        "all" => ReservedPort::All,
        "controller" => ReservedPort::Controller,
        "local" => ReservedPort::Local,
        _ => return None,
    })
}

fn reserved_text(r: ReservedPort) -> &'static str {
    match r {
        ReservedPort::Unspecified => "UNSPECIFIED",
        ReservedPort::InPort => "IN_PORT",
        ReservedPort::Table => "TABLE",
        ReservedPort::Normal => "NORMAL",
        ReservedPort::Flood => "FLOOD",
        ReservedPort::All => "ALL",
        ReservedPort::Controller => "CONTROLLER",
        ReservedPort::Local => "LOCAL",
    }
}

/// Whether `s` can be written as a port name in flow text: ASCII letters, digits, `_`, `-`,
/// `.`, not starting with a digit, and not a reserved port keyword.
pub fn is_valid_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !s.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && reserved_by_name(s).is_none()
}

fn parse_port_number(tok: Tok<'_>) -> Result<PortText> {
    if tok.text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let n = num(tok, u64::from(u32::MAX), "port number")? as u32;
        if n == 0 || n > MAX_PORT_NO {
            return Err(tok.err(format!(
                "port number must be 1..={MAX_PORT_NO} (use names for reserved ports)"
            )));
        }
        return Ok(PortText::Number(n));
    }
    if let Some(r) = reserved_by_name(tok.text) {
        return Ok(PortText::Reserved(r));
    }
    if is_valid_port_name(tok.text) {
        return Ok(PortText::Name(tok.text.to_string()));
    }
    Err(tok.err("bad port: expected a number, a name (letters, digits, `_-.`) or a reserved port"))
}

fn port_ref(p: PortText) -> PortRef {
    PortRef {
        port: Some(match p {
            PortText::Number(n) => port_ref::Port::Number(n),
            PortText::Reserved(r) => port_ref::Port::Reserved(r as i32),
            PortText::Name(s) => port_ref::Port::Name(s),
        }),
    }
}

fn port_ref_text(p: Option<&PortRef>) -> String {
    match p.and_then(|p| p.port.as_ref()) {
        Some(port_ref::Port::Number(n)) => n.to_string(),
        Some(port_ref::Port::Name(s)) => s.clone(),
        Some(port_ref::Port::Reserved(r)) => ReservedPort::try_from(*r)
            .map_or_else(|_| format!("reserved{r}"), |r| reserved_text(r).to_string()),
        None => "NONE".to_string(),
    }
}

/// `in_port=` value: number, LOCAL/CONTROLLER, or a name.
fn parse_in_port(tok: Tok<'_>) -> Result<FieldMatch> {
    if let Some((_, m)) = tok.split_once("/") {
        return Err(m.err("`in_port` does not take a mask"));
    }
    let mut fm = FieldMatch {
        field: Field::InPort as i32,
        ..FieldMatch::default()
    };
    match parse_port_number(tok)? {
        PortText::Number(n) => fm.value = n.to_be_bytes().to_vec(),
        PortText::Reserved(ReservedPort::Local) => fm.value = OFPP_LOCAL.to_be_bytes().to_vec(),
        PortText::Reserved(ReservedPort::Controller) => {
            fm.value = OFPP_CONTROLLER.to_be_bytes().to_vec()
        }
        PortText::Reserved(_) => {
            return Err(tok.err("in_port may only be a port number, a name, LOCAL or CONTROLLER"));
        }
        PortText::Name(s) => fm.port_name = s,
    }
    Ok(fm)
}

// ---------------------------------------------------------------------------------------
// Matches
// ---------------------------------------------------------------------------------------

/// What a flow-ish string may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// add-flow: actions required, no out_port, cookie mask only all-ones.
    Add,
    /// del-flows / dump-flows: no actions, out_port and cookie masks allowed.
    Filter,
    /// mod-flows: actions required, cookie masks select.
    Modify,
}

/// Everything a flow-ish string can say.
#[derive(Debug, Default)]
struct Parsed {
    table_id: Option<u32>,
    priority: Option<u32>,
    cookie: Option<(u64, Option<u64>)>,
    idle_timeout: u32,
    hard_timeout: u32,
    flags: FlowFlags,
    out_port: Option<PortRef>,
    out_group: Option<u32>,
    m: Match,
    instructions: Vec<Instruction>,
}

/// Collects match fields in canonical order and remembers where each came from.
#[derive(Default)]
struct MatchBuilder<'a> {
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
    fn finish(self) -> Result<Match> {
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

const SHORTHANDS: &[(&str, u16, Option<u8>)] = &[
    ("ip", ETH_IPV4, None),
    ("ipv6", ETH_IPV6, None),
    ("icmp", ETH_IPV4, Some(1)),
    ("icmp6", ETH_IPV6, Some(58)),
    ("tcp", ETH_IPV4, Some(6)),
    ("tcp6", ETH_IPV6, Some(6)),
    ("udp", ETH_IPV4, Some(17)),
    ("udp6", ETH_IPV6, Some(17)),
    ("sctp", ETH_IPV4, Some(132)),
    ("sctp6", ETH_IPV6, Some(132)),
    ("arp", ETH_ARP, None),
    ("rarp", ETH_RARP, None),
];

fn shorthand(name: &str) -> Option<(u16, Option<u8>)> {
    SHORTHANDS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, e, p)| (*e, *p))
}

/// Counters printed by dump-flows that a parser ignores, as ovs-ofctl does.
const IGNORED_KEYS: &[&str] = &["duration", "n_packets", "n_bytes", "idle_age", "hard_age"];

fn parse_parts<'a>(tokens: &[Tok<'a>], actions: Option<Tok<'a>>, mode: Mode) -> Result<Parsed> {
    // Pass 1: the protocol context, so that names like nw_src and tp_dst resolve whatever
    // their position.
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

    // Pass 2.
    let mut p = Parsed::default();
    let mut mb = MatchBuilder::default();
    let mut seen: Vec<&str> = Vec::new();
    for &tok in tokens {
        let (key, value) = tok.key_value();
        if matches!(
            key,
            "table"
                | "priority"
                | "cookie"
                | "idle_timeout"
                | "hard_timeout"
                | "out_port"
                | "out_group"
        ) {
            if seen.contains(&key) {
                return Err(tok.err(format!("`{key}` given twice")));
            }
            seen.push(key);
        }
        let need = |v: Option<Tok<'a>>| {
            v.ok_or_else(|| tok.err(format!("`{key}` needs a value: `{key}=...`")))
        };
        let no_value = |v: Option<Tok<'a>>| match v {
            Some(v) => Err(v.err(format!("`{key}` takes no value"))),
            None => Ok(()),
        };
        match key {
            "table" => p.table_id = Some(num_u32(need(value)?, MAX_TABLE_ID, "table")?),
            "priority" => p.priority = Some(num_u32(need(value)?, 65535, "priority")?),
            "idle_timeout" => p.idle_timeout = num_u32(need(value)?, 65535, "idle_timeout")?,
            "hard_timeout" => p.hard_timeout = num_u32(need(value)?, 65535, "hard_timeout")?,
            "cookie" => {
                let v = need(value)?;
                let (c, m) = match v.split_once("/") {
                    Some((c, m)) => {
                        let mask = if m.text == "-1" {
                            u64::MAX
                        } else {
                            num(m, u64::MAX, "cookie mask")?
                        };
                        if mode == Mode::Add && mask != u64::MAX {
                            return Err(m.err(
                                "a cookie mask selects flows: only valid in del-flows, dump-flows or mod-flows (or /-1)",
                            ));
                        }
                        (num(c, u64::MAX, "cookie")?, Some(mask))
                    }
                    None => (num(v, u64::MAX, "cookie")?, None),
                };
                p.cookie = Some((c, m));
            }
            "send_flow_rem" | "check_overlap" | "reset_counts" => {
                no_value(value)?;
                if mode == Mode::Filter {
                    return Err(tok.err(format!("`{key}` is not allowed in a match")));
                }
                match key {
                    "send_flow_rem" => p.flags.send_flow_rem = true,
                    "check_overlap" => p.flags.check_overlap = true,
                    _ => p.flags.reset_counts = true,
                }
            }
            "out_port" | "out_group" => {
                if mode != Mode::Filter {
                    return Err(tok.err(format!(
                        "`{key}` selects flows: only valid in del-flows or dump-flows"
                    )));
                }
                let v = need(value)?;
                if key == "out_port" {
                    p.out_port = Some(port_ref(parse_port_number(v)?));
                } else {
                    p.out_group = Some(num_u32(v, MAX_GROUP_ID, "out_group")?);
                }
            }
            k if IGNORED_KEYS.contains(&k) => {}
            _ => {
                if let (Some((e, proto)), None) = (shorthand(key), value) {
                    mb.exact(Field::EthType, u64::from(e), tok)?;
                    if let Some(proto) = proto {
                        mb.exact(Field::IpProto, u64::from(proto), tok)?;
                    }
                    continue;
                }
                let v = match value {
                    Some(v) => v,
                    None if resolve_name(key, Ctx::default()).is_ok()
                        || matches!(key, "tp_src" | "tp_dst") =>
                    {
                        return Err(tok.err(format!("`{key}` needs a value: `{key}=...`")));
                    }
                    None => {
                        return Err(tok.err(format!("unknown keyword `{key}`")));
                    }
                };
                let key_tok = Tok {
                    at: tok.at,
                    text: key,
                };
                match resolve_name(key, ctx).map_err(|m| key_tok.err(m))? {
                    Named::Field(Field::InPort) => mb.insert(parse_in_port(v)?, tok)?,
                    Named::Field(field) => {
                        let Some(d) = field_def(field) else {
                            return Err(key_tok.err(format!("unknown field `{key}`")));
                        };
                        let vm = if field == Field::TcpFlags {
                            parse_tcp_flags(v)?
                        } else {
                            parse_value_mask(d, v)?
                        };
                        if let Some((value, mask)) = vm {
                            mb.insert(
                                FieldMatch {
                                    field: field as i32,
                                    value,
                                    mask,
                                    port_name: String::new(),
                                },
                                tok,
                            )?;
                        }
                    }
                    Named::DlVlan => {
                        let vid = num(v, 0xffff, "dl_vlan")?;
                        let value = match vid {
                            0xffff => 0,
                            0..=0xfff => 0x1000 | vid,
                            _ => {
                                return Err(v.err(
                                    "dl_vlan must be a VLAN ID 0..=4095, or 0xffff for untagged",
                                ));
                            }
                        };
                        mb.exact(Field::VlanVid, value, tok)?;
                    }
                    Named::NwTos => {
                        let tos = num(v, 255, "nw_tos")?;
                        if tos & 3 != 0 {
                            return Err(v.err(
                                "nw_tos holds DSCP bits only: the low 2 (ECN) bits must be 0",
                            ));
                        }
                        mb.exact(Field::IpDscp, tos >> 2, tok)?;
                    }
                }
            }
        }
    }
    p.m = mb.finish()?;

    match (actions, mode) {
        (Some(a), Mode::Filter) => {
            return Err(Tok {
                at: a.at.saturating_sub("actions=".len()),
                text: "actions=",
            }
            .err("a match takes no actions"));
        }
        (None, Mode::Add | Mode::Modify) => {
            let end = tokens.last().map_or(0, |t| t.at + t.text.len());
            return Err(ParseError::new(
                end,
                "",
                "missing `actions=...` (use `actions=drop` to drop)",
            ));
        }
        (Some(a), _) => {
            let list = split_tokens(a.text, a.at, false);
            p.instructions = parse_instructions(&list, &p.m, p.table_id.unwrap_or(0))?;
        }
        (None, Mode::Filter) => {}
    }
    Ok(p)
}

fn parse_tcp_flags(tok: Tok<'_>) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
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
        let d = field_def(Field::TcpFlags).ok_or_else(|| tok.err("tcp_flags"))?;
        return parse_value_mask(d, tok);
    }
    // +syn-ack form.
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

// ---------------------------------------------------------------------------------------
// Actions and instructions
// ---------------------------------------------------------------------------------------

/// Where actions are parsed: a flow (with its match, for prerequisites) or a group bucket.
#[derive(Clone, Copy)]
enum ActionCtx<'m> {
    Flow(&'m Match),
    Bucket,
}

enum Parsed1 {
    Action(Action),
    Drop,
    Meter(u32),
    WriteMetadata(WriteMetadata),
    Goto(u32),
}

fn act(a: action::Action) -> Parsed1 {
    Parsed1::Action(Action { action: Some(a) })
}

fn output(p: PortText, max_len: Option<u32>) -> Parsed1 {
    act(action::Action::Output(Output {
        port: Some(port_ref(p)),
        max_len,
    }))
}

fn parse_one_action<'a>(tok: Tok<'a>, ctx: ActionCtx<'_>) -> Result<Parsed1> {
    // name[:arg] or name(args)
    let split = tok.text.find([':', '(']);
    let (name, arg, paren) = match split {
        Some(i) => {
            let name = &tok.text[..i];
            let is_paren = tok.text[i..].starts_with('(');
            let arg_text = &tok.text[i + 1..];
            let arg_text = if is_paren {
                match arg_text.strip_suffix(')') {
                    Some(a) => a,
                    None => return Err(tok.err("missing `)`")),
                }
            } else {
                arg_text
            };
            (
                name,
                Some(Tok {
                    at: tok.at + i + 1,
                    text: arg_text,
                }),
                is_paren,
            )
        }
        None => (tok.text, None, false),
    };
    let lname = name.to_ascii_lowercase();
    let need = |arg: Option<Tok<'a>>| -> Result<Tok<'a>> {
        arg.filter(|a| !a.text.is_empty())
            .ok_or_else(|| tok.err(format!("`{name}` needs an argument: `{name}:...`")))
    };
    let none = |arg: Option<Tok<'_>>| -> Result<()> {
        match arg {
            Some(a) => Err(a.err(format!("`{name}` takes no argument"))),
            None => Ok(()),
        }
    };
    let flow_only = |what: &str| -> Result<()> {
        match ctx {
            ActionCtx::Flow(_) => Ok(()),
            ActionCtx::Bucket => Err(tok.err(format!("`{what}` is not allowed in a group bucket"))),
        }
    };
    match lname.as_str() {
        "drop" => {
            none(arg)?;
            Ok(Parsed1::Drop)
        }
        "output" => {
            let a = need(arg)?;
            if paren {
                return Err(a.err("output takes `output:PORT`"));
            }
            match parse_port_number(a)? {
                PortText::Reserved(ReservedPort::Table) => {
                    Err(a.err("output to TABLE is only valid in a packet-out"))
                }
                p => Ok(output(p, None)),
            }
        }
        "controller" => {
            let max_len = match arg {
                None => None,
                Some(a) if paren => {
                    let mut max_len = None;
                    for opt in split_tokens(a.text, a.at, false) {
                        match opt.key_value() {
                            ("max_len", Some(v)) => {
                                max_len = Some(num_u32(v, 65535, "max_len")?);
                            }
                            _ => {
                                return Err(
                                    opt.err("unsupported controller option (only max_len=N)")
                                );
                            }
                        }
                    }
                    max_len
                }
                Some(a) => Some(num_u32(a, 65535, "controller max_len")?),
            };
            Ok(output(
                PortText::Reserved(ReservedPort::Controller),
                max_len,
            ))
        }
        "in_port" | "normal" | "flood" | "all" | "local" => {
            none(arg)?;
            let r = reserved_by_name(&lname).unwrap_or(ReservedPort::Unspecified);
            Ok(output(PortText::Reserved(r), None))
        }
        "group" => {
            let a = need(arg)?;
            Ok(act(action::Action::Group(num_u32(
                a,
                MAX_GROUP_ID,
                "group id",
            )?)))
        }
        "set_queue" => {
            let a = need(arg)?;
            Ok(act(action::Action::SetQueue(num_u32(
                a,
                u32::MAX,
                "queue id",
            )?)))
        }
        "push_vlan" => {
            let a = need(arg)?;
            let e = num_u32(a, 0xffff, "push_vlan ethertype")?;
            if e != 0x8100 && e != 0x88a8 {
                return Err(a.err("push_vlan takes 0x8100 (802.1Q) or 0x88a8 (802.1ad)"));
            }
            Ok(act(action::Action::PushVlan(PushVlan { ethertype: e })))
        }
        "pop_vlan" | "strip_vlan" => {
            none(arg)?;
            Ok(act(action::Action::PopVlan(PopVlan {})))
        }
        "dec_ttl" => {
            none(arg)?;
            Ok(act(action::Action::DecTtl(DecTtl {})))
        }
        "meter" => {
            flow_only("meter")?;
            let a = need(arg)?;
            let id = num_u32(a, MAX_METER_ID, "meter id")?;
            if id == 0 {
                return Err(a.err("meter ids start at 1"));
            }
            Ok(Parsed1::Meter(id))
        }
        "goto_table" => {
            flow_only("goto_table")?;
            let a = need(arg)?;
            Ok(Parsed1::Goto(num_u32(a, MAX_TABLE_ID, "goto_table")?))
        }
        "write_metadata" => {
            flow_only("write_metadata")?;
            let a = need(arg)?;
            let (value, mask) = match a.split_once("/") {
                Some((v, m)) => (
                    num(v, u64::MAX, "metadata")?,
                    num(m, u64::MAX, "metadata mask")?,
                ),
                None => (num(a, u64::MAX, "metadata")?, u64::MAX),
            };
            Ok(Parsed1::WriteMetadata(WriteMetadata { value, mask }))
        }
        "set_field" | "load" => {
            let a = need(arg)?;
            let Some((v, f)) = a.split_once("->") else {
                return Err(a.err(format!("`{name}` takes VALUE->FIELD")));
            };
            let f = if lname == "load" {
                match f.text.strip_suffix("[]") {
                    Some(t) => Tok { at: f.at, text: t },
                    None => {
                        return Err(f.err(
                            "load supports whole fields only (`load:V->FIELD[]`); use set_field",
                        ));
                    }
                }
            } else {
                f
            };
            set_field(f, f.text, v, ctx)
        }
        "mod_dl_src" | "mod_dl_dst" | "mod_nw_src" | "mod_nw_dst" | "mod_tp_src" | "mod_tp_dst"
        | "mod_vlan_vid" | "mod_vlan_pcp" | "mod_nw_tos" | "mod_nw_ttl" => {
            let a = need(arg)?;
            let field = match lname.as_str() {
                "mod_dl_src" => "eth_src",
                "mod_dl_dst" => "eth_dst",
                "mod_nw_src" => "ip_src",
                "mod_nw_dst" => "ip_dst",
                "mod_tp_src" => "tp_src",
                "mod_tp_dst" => "tp_dst",
                "mod_vlan_pcp" => "vlan_pcp",
                "mod_nw_ttl" => "nw_ttl",
                "mod_vlan_vid" => {
                    let vid = num(a, 0xfff, "mod_vlan_vid")?;
                    return set_field_value(
                        Tok {
                            at: tok.at,
                            text: name,
                        },
                        Field::VlanVid,
                        be_bytes(0x1000 | vid, 2),
                        Vec::new(),
                        ctx,
                    );
                }
                _ => {
                    let tos = num(a, 255, "mod_nw_tos")?;
                    if tos & 3 != 0 {
                        return Err(
                            a.err("mod_nw_tos sets DSCP bits only: the low 2 bits must be 0")
                        );
                    }
                    return set_field_value(
                        Tok {
                            at: tok.at,
                            text: name,
                        },
                        Field::IpDscp,
                        vec![(tos >> 2) as u8],
                        Vec::new(),
                        ctx,
                    );
                }
            };
            set_field(
                Tok {
                    at: tok.at,
                    text: name,
                },
                field,
                a,
                ctx,
            )
        }
        _ => {
            if name.as_bytes().first().is_some_and(u8::is_ascii_digit) && arg.is_none() {
                return Ok(output(parse_port_number(tok)?, None));
            }
            Err(Tok {
                at: tok.at,
                text: name,
            }
            .err(format!(
                "unknown or unsupported action `{name}` (for a named port write `output:{name}`)"
            )))
        }
    }
}

/// `set_field:VALUE[/MASK]->FIELD`, field named by `ftok`.
/// `ftok` is where errors point; `fname` is the field name to resolve (they differ for the
/// `mod_*` aliases).
fn set_field(ftok: Tok<'_>, fname: &str, vtok: Tok<'_>, ctx: ActionCtx<'_>) -> Result<Parsed1> {
    let mctx = match ctx {
        ActionCtx::Flow(m) => Ctx::of(m),
        ActionCtx::Bucket => Ctx::default(),
    };
    let field = match resolve_name(fname, mctx) {
        Ok(Named::Field(f)) => f,
        Ok(Named::DlVlan) => {
            let vid = num(vtok, 0xfff, "dl_vlan")?;
            return set_field_value(
                ftok,
                Field::VlanVid,
                be_bytes(0x1000 | vid, 2),
                Vec::new(),
                ctx,
            );
        }
        Ok(Named::NwTos) => {
            let tos = num(vtok, 255, "nw_tos")?;
            if tos & 3 != 0 {
                return Err(vtok.err("nw_tos holds DSCP bits only: the low 2 bits must be 0"));
            }
            return set_field_value(ftok, Field::IpDscp, vec![(tos >> 2) as u8], Vec::new(), ctx);
        }
        Err(m) => {
            let m = if matches!(ctx, ActionCtx::Bucket) && m.contains("needs a TCP") {
                format!("{m}; in a group bucket name the field: tcp_src, udp_dst, ...")
            } else {
                m
            };
            return Err(ftok.err(m));
        }
    };
    let Some(d) = field_def(field) else {
        return Err(ftok.err("unknown field"));
    };
    if !d.settable {
        return Err(ftok.err(format!("`{}` cannot be set", ftok.text)));
    }
    let (value, mask) = match parse_value_mask(d, vtok)? {
        Some(vm) => vm,
        None => return Err(vtok.err("a set_field with an all-zero mask writes nothing")),
    };
    set_field_value(ftok, field, value, mask, ctx)
}

fn set_field_value(
    ftok: Tok<'_>,
    field: Field,
    value: Vec<u8>,
    mask: Vec<u8>,
    ctx: ActionCtx<'_>,
) -> Result<Parsed1> {
    if let (ActionCtx::Flow(m), Some(d)) = (ctx, field_def(field))
        && !Ctx::of(m).satisfies(d.prereq)
    {
        return Err(ftok.err(format!(
            "setting `{}` requires the flow's match to have {}",
            ftok.text,
            prereq_text(d.prereq)
        )));
    }
    Ok(act(action::Action::SetField(SetField {
        field: field as i32,
        value,
        mask,
    })))
}

/// Parses an `actions=` list into instructions in OpenFlow order.
fn parse_instructions(list: &[Tok<'_>], m: &Match, table_id: u32) -> Result<Vec<Instruction>> {
    if list.is_empty() {
        return Ok(Vec::new()); // `actions=` alone drops, as in ovs-ofctl
    }
    let mut meter = None;
    let mut actions = Vec::new();
    let mut write_md = None;
    let mut goto = None;
    let mut dropped = false;
    // 0 meter, 1 actions, 2 write_metadata, 3 goto_table
    let mut stage = 0u8;
    let order_err = |tok: Tok<'_>, what: &str| {
        tok.err(format!(
            "`{what}` is out of order: instructions go meter, actions, write_metadata, goto_table"
        ))
    };
    for &tok in list {
        let p = parse_one_action(tok, ActionCtx::Flow(m))?;
        if dropped {
            return Err(tok.err("`drop` must be the only action"));
        }
        match p {
            Parsed1::Drop => {
                if !actions.is_empty() || meter.is_some() || write_md.is_some() || goto.is_some() {
                    return Err(tok.err("`drop` must be the only action"));
                }
                dropped = true;
            }
            Parsed1::Meter(id) => {
                if stage > 0 || meter.is_some() {
                    return Err(order_err(tok, "meter"));
                }
                meter = Some(id);
            }
            Parsed1::Action(a) => {
                if stage > 1 {
                    return Err(order_err(tok, tok.text));
                }
                stage = 1;
                actions.push(a);
            }
            Parsed1::WriteMetadata(w) => {
                if stage > 1 || write_md.is_some() {
                    return Err(order_err(tok, "write_metadata"));
                }
                stage = 2;
                write_md = Some(w);
            }
            Parsed1::Goto(t) => {
                if goto.is_some() {
                    return Err(order_err(tok, "goto_table"));
                }
                if t <= table_id {
                    return Err(tok.err(format!(
                        "goto_table must go to a later table than this flow's table {table_id}"
                    )));
                }
                stage = 3;
                goto = Some(t);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(id) = meter {
        out.push(Instruction {
            instruction: Some(instruction::Instruction::Meter(id)),
        });
    }
    if !actions.is_empty() {
        out.push(Instruction {
            instruction: Some(instruction::Instruction::ApplyActions(ApplyActions {
                actions,
            })),
        });
    }
    if let Some(w) = write_md {
        out.push(Instruction {
            instruction: Some(instruction::Instruction::WriteMetadata(w)),
        });
    }
    if let Some(t) = goto {
        out.push(Instruction {
            instruction: Some(instruction::Instruction::GotoTable(t)),
        });
    }
    Ok(out)
}

/// Parses a plain action list (group buckets, packet-out): `output:1,mod_vlan_vid:10`.
/// Instructions (meter, goto_table, write_metadata) are rejected; `drop` gives an empty list.
/// Set-field prerequisites cannot be checked here (there is no match).
pub fn parse_actions(s: &str) -> Result<Vec<Action>> {
    parse_action_tokens(&split_tokens(s, 0, false))
}

fn parse_action_tokens(list: &[Tok<'_>]) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    let mut dropped = false;
    for &tok in list {
        match parse_one_action(tok, ActionCtx::Bucket)? {
            Parsed1::Action(a) if !dropped => out.push(a),
            Parsed1::Drop if out.is_empty() && !dropped => dropped = true,
            _ => return Err(tok.err("`drop` must be the only action")),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Flows: public parsers
// ---------------------------------------------------------------------------------------

/// Parses an add-flow line (ovs-ofctl syntax) into a [`Flow`].
///
/// Defaults as ovs-ofctl: table 0, priority 32768, cookie 0, no timeouts. `cookie=X/-1` is
/// accepted (same as `cookie=X`); other cookie masks, `out_port` and `out_group` are
/// rejected (they select flows, see [`parse_match`]). The counters printed by dump-flows
/// (`duration`, `n_packets`, `n_bytes`, `idle_age`, `hard_age`) are ignored.
pub fn parse_flow(s: &str) -> Result<Flow> {
    let (tokens, actions) = split_flow(s);
    let p = parse_parts(&tokens, actions, Mode::Add)?;
    Ok(Flow {
        table_id: p.table_id.unwrap_or(0),
        priority: p.priority.unwrap_or(DEFAULT_PRIORITY),
        cookie: p.cookie.map_or(0, |(c, _)| c),
        idle_timeout: p.idle_timeout,
        hard_timeout: p.hard_timeout,
        flags: Some(p.flags),
        r#match: Some(p.m),
        instructions: p.instructions,
        stats: None,
    })
}

/// Parses a del-flows / dump-flows filter: match fields plus `table=` (default all tables),
/// `cookie=X[/MASK]` (no mask = exact), `out_port=`, `out_group=`, `priority=` (for strict
/// use). `strict` is left false; the caller sets it for `--strict`. An empty string selects
/// every flow.
pub fn parse_match(s: &str) -> Result<FlowFilter> {
    let (tokens, actions) = split_flow(s);
    let p = parse_parts(&tokens, actions, Mode::Filter)?;
    let (cookie, cookie_mask) = match p.cookie {
        Some((c, m)) => (c, m.unwrap_or(u64::MAX)),
        None => (0, 0),
    };
    Ok(FlowFilter {
        table_id: p.table_id,
        cookie: cookie & cookie_mask,
        cookie_mask,
        out_port: p.out_port,
        out_group: p.out_group,
        r#match: Some(p.m),
        strict: false,
        priority: p.priority,
    })
}

/// Parses a mod-flows line: a flow whose match (with `table=`, default all tables, and
/// `cookie=X/MASK`) selects flows and whose actions replace theirs. `cookie=X` without a
/// mask sets the modified flows' cookie, as in ovs-ofctl. `strict` is left false.
pub fn parse_flow_modify(s: &str) -> Result<FlowModify> {
    let (tokens, actions) = split_flow(s);
    let p = parse_parts(&tokens, actions, Mode::Modify)?;
    let (cookie, cookie_mask, new_cookie) = match p.cookie {
        Some((c, Some(m))) => (c & m, m, None),
        Some((c, None)) => (0, 0, Some(c)),
        None => (0, 0, None),
    };
    Ok(FlowModify {
        filter: Some(FlowFilter {
            table_id: p.table_id,
            cookie,
            cookie_mask,
            out_port: None,
            out_group: None,
            r#match: Some(p.m),
            strict: false,
            priority: p.priority,
        }),
        instructions: p.instructions,
        reset_counts: p.flags.reset_counts,
        new_cookie,
    })
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

fn find(m: &Match, f: Field) -> Option<&FieldMatch> {
    m.fields.iter().find(|x| x.field == f as i32)
}

fn int_text(v: u64, hex: bool) -> String {
    if hex {
        format!("0x{v:x}")
    } else {
        v.to_string()
    }
}

/// Prints a value[/mask] in a field's syntax. Values of the wrong width print as hex bytes.
fn value_text(d: &FieldDef, value: &[u8], mask: &[u8]) -> String {
    let bad = value.len() != d.width || (!mask.is_empty() && mask.len() != d.width);
    if bad {
        return if mask.is_empty() {
            hex_bytes(value)
        } else {
            format!("{}/{}", hex_bytes(value), hex_bytes(mask))
        };
    }
    match d.syntax {
        Syntax::Int { hex, .. } => {
            if mask.is_empty() {
                int_text(be_u64(value), hex)
            } else {
                format!("0x{:x}/0x{:x}", be_u64(value), be_u64(mask))
            }
        }
        Syntax::Port => be_u64(value).to_string(),
        Syntax::Mac => {
            if mask.is_empty() {
                mac_text(value)
            } else {
                format!("{}/{}", mac_text(value), mac_text(mask))
            }
        }
        Syntax::Ipv4 | Syntax::Ipv6 => {
            let addr = |b: &[u8]| -> String {
                if let Ok(a) = <[u8; 4]>::try_from(b) {
                    Ipv4Addr::from(a).to_string()
                } else if let Ok(a) = <[u8; 16]>::try_from(b) {
                    Ipv6Addr::from(a).to_string()
                } else {
                    hex_bytes(b)
                }
            };
            if mask.is_empty() {
                addr(value)
            } else if let Some(p) = mask_prefix(mask) {
                format!("{}/{p}", addr(value))
            } else {
                format!("{}/{}", addr(value), addr(mask))
            }
        }
    }
}

/// Order of match fields in printed flows (ovs-ofctl dump-flows order).
const PRINT_ORDER: &[Field] = &[
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

/// Prints a match as comma-separated ovs-ofctl fields (protocol shorthand first).
/// An empty match prints as an empty string.
pub fn format_match(m: &Match) -> String {
    let mut parts: Vec<String> = Vec::new();
    let ctx = Ctx::of(m);
    // The shorthand that covers eth_type (and ip_proto).
    let mut implied_proto = false;
    let mut implied_type = false;
    if let Some(e) = ctx.eth_type {
        let with_proto = SHORTHANDS
            .iter()
            .find(|(_, se, sp)| *se == e && sp.is_some() && *sp == ctx.ip_proto);
        let bare = SHORTHANDS
            .iter()
            .find(|(_, se, sp)| *se == e && sp.is_none());
        if let Some((n, _, _)) = with_proto {
            parts.push((*n).to_string());
            implied_proto = true;
            implied_type = true;
        } else if let Some((n, _, _)) = bare {
            parts.push((*n).to_string());
            implied_type = true;
        }
    }
    let arp = ctx.arp();
    for &f in PRINT_ORDER {
        let Some(fm) = find(m, f) else { continue };
        let Some(d) = field_def(f) else { continue };
        let (v, mk) = (&fm.value, &fm.mask);
        let text = match f {
            Field::EthType if implied_type && mk.is_empty() => continue,
            Field::IpProto if implied_proto && mk.is_empty() => continue,
            Field::InPort => {
                if !fm.port_name.is_empty() {
                    format!("in_port={}", fm.port_name)
                } else if v.len() == 4 && be_u64(v) == u64::from(OFPP_LOCAL) {
                    "in_port=LOCAL".to_string()
                } else if v.len() == 4 && be_u64(v) == u64::from(OFPP_CONTROLLER) {
                    "in_port=CONTROLLER".to_string()
                } else {
                    format!("in_port={}", value_text(d, v, mk))
                }
            }
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
            Field::ArpSpa => format!("arp_spa={}", value_text(d, v, mk)),
            Field::ArpTpa => format!("arp_tpa={}", value_text(d, v, mk)),
            Field::IpDscp if mk.is_empty() && v.len() == 1 => {
                format!("nw_tos={}", be_u64(v) << 2)
            }
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
            Field::ArpOp if arp => format!("arp_op={}", value_text(d, v, mk)),
            _ => format!("{}={}", d.name, value_text(d, v, mk)),
        };
        parts.push(text);
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

fn format_action(a: &Action, out: &mut Vec<String>) {
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
        let alias = match d.field {
            Field::EthSrc => Some("mod_dl_src"),
            Field::EthDst => Some("mod_dl_dst"),
            Field::Ipv4Src => Some("mod_nw_src"),
            Field::Ipv4Dst => Some("mod_nw_dst"),
            Field::TcpSrc | Field::UdpSrc | Field::SctpSrc => Some("mod_tp_src"),
            Field::TcpDst | Field::UdpDst | Field::SctpDst => Some("mod_tp_dst"),
            _ => None,
        };
        if let Some(alias) = alias {
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

/// Prints instructions as an ovs-ofctl `actions=` value (without the `actions=`).
pub fn format_instructions(ins: &[Instruction]) -> String {
    let mut out = Vec::new();
    for i in ins {
        match &i.instruction {
            Some(instruction::Instruction::Meter(m)) => out.push(format!("meter:{m}")),
            Some(instruction::Instruction::ApplyActions(a)) => {
                for a in &a.actions {
                    format_action(a, &mut out);
                }
            }
            Some(instruction::Instruction::WriteMetadata(w)) => {
                if w.mask == u64::MAX {
                    out.push(format!("write_metadata:0x{:x}", w.value));
                } else {
                    out.push(format!("write_metadata:0x{:x}/0x{:x}", w.value, w.mask));
                }
            }
            Some(instruction::Instruction::GotoTable(t)) => out.push(format!("goto_table:{t}")),
            None => {}
        }
    }
    if out.is_empty() {
        "drop".to_string()
    } else {
        out.join(",")
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

fn flow_head(flow: &Flow, parts: &mut Vec<String>) {
    if flow.idle_timeout != 0 {
        parts.push(format!("idle_timeout={}", flow.idle_timeout));
    }
    if flow.hard_timeout != 0 {
        parts.push(format!("hard_timeout={}", flow.hard_timeout));
    }
    if let Some(f) = &flow.flags {
        for (on, name) in [
            (f.send_flow_rem, "send_flow_rem"),
            (f.check_overlap, "check_overlap"),
            (f.reset_counts, "reset_counts"),
        ] {
            if on {
                parts.push(name.to_string());
            }
        }
    }
}

/// Prints a flow as an add-flow line that [`parse_flow`] reads back to the same [`Flow`]:
/// `cookie=0x5,table=0,priority=100,idle_timeout=10,ip,in_port=1,nw_dst=10.0.0.0/24,actions=output:2`.
/// `cookie` is printed only when non-zero; `table` and `priority` always. Stats are not
/// printed (see [`format_flow_dump`]).
pub fn format_flow(flow: &Flow) -> String {
    let mut parts = Vec::new();
    if flow.cookie != 0 {
        parts.push(format!("cookie=0x{:x}", flow.cookie));
    }
    parts.push(format!("table={}", flow.table_id));
    parts.push(format!("priority={}", flow.priority));
    flow_head(flow, &mut parts);
    if let Some(m) = &flow.r#match {
        let mt = format_match(m);
        if !mt.is_empty() {
            parts.push(mt);
        }
    }
    parts.push(format!(
        "actions={}",
        format_instructions(&flow.instructions)
    ));
    parts.join(",")
}

/// Prints a flow as ovs-ofctl dump-flows does, with its counters:
/// `cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=180, idle_timeout=10, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2`.
/// [`parse_flow`] reads it back (ignoring the counters). Unlike ovs-ofctl, `priority` is
/// printed even when it is the default 32768.
pub fn format_flow_dump(flow: &Flow) -> String {
    let stats = flow.stats.unwrap_or_default();
    let mut s = format!(
        "cookie=0x{:x}, duration={}.{:03}s, table={}, n_packets={}, n_bytes={}, ",
        flow.cookie,
        stats.duration_ns / 1_000_000_000,
        (stats.duration_ns / 1_000_000) % 1000,
        flow.table_id,
        stats.packet_count,
        stats.byte_count
    );
    let mut head = Vec::new();
    flow_head(flow, &mut head);
    for h in head {
        s.push_str(&h);
        s.push_str(", ");
    }
    if flow.stats.is_some() {
        let _ = write!(s, "idle_age={}, ", stats.idle_ns / 1_000_000_000);
    }
    let _ = write!(s, "priority={}", flow.priority);
    if let Some(m) = &flow.r#match {
        let mt = format_match(m);
        if !mt.is_empty() {
            s.push(',');
            s.push_str(&mt);
        }
    }
    let _ = write!(s, " actions={}", format_instructions(&flow.instructions));
    s
}

/// Prints a filter as del-flows / dump-flows text that [`parse_match`] reads back
/// (`strict` is not part of the text).
pub fn format_filter(f: &FlowFilter) -> String {
    let mut parts = Vec::new();
    if let Some(t) = f.table_id {
        parts.push(format!("table={t}"));
    }
    if let Some(p) = f.priority {
        parts.push(format!("priority={p}"));
    }
    if f.cookie_mask != 0 {
        if f.cookie_mask == u64::MAX {
            parts.push(format!("cookie=0x{:x}/-1", f.cookie));
        } else {
            parts.push(format!("cookie=0x{:x}/0x{:x}", f.cookie, f.cookie_mask));
        }
    }
    if let Some(p) = &f.out_port {
        parts.push(format!("out_port={}", port_ref_text(Some(p))));
    }
    if let Some(g) = f.out_group {
        parts.push(format!("out_group={g}"));
    }
    if let Some(m) = &f.r#match {
        let mt = format_match(m);
        if !mt.is_empty() {
            parts.push(mt);
        }
    }
    parts.join(",")
}

// ---------------------------------------------------------------------------------------
// Meters
// ---------------------------------------------------------------------------------------

/// Parses an add-meter string:
/// `meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000`. Each `type=`
/// after `bands=` starts a new band. The unit defaults to kbps. Commas and spaces both
/// separate, so dump-meters output reads back too.
pub fn parse_meter(s: &str) -> Result<Meter> {
    let tokens = split_tokens(s, 0, true);
    let mut meter = Meter::default();
    let mut id_seen = false;
    let mut in_bands = false;
    let mut band: Option<(Band, Tok<'_>)> = None;
    let mut bands_tok = None;
    let finish_band = |b: Option<(Band, Tok<'_>)>, out: &mut Vec<Band>| -> Result<()> {
        if let Some((b, tok)) = b {
            if b.rate == 0 {
                return Err(tok.err("a band needs `rate=N` (N > 0)"));
            }
            if b.r#type != BandType::DscpRemark as i32 && b.prec_level != 0 {
                return Err(tok.err("prec_level only applies to type=dscp_remark"));
            }
            out.push(b);
        }
        Ok(())
    };
    for tok in tokens {
        let (key, value) = tok.key_value();
        if in_bands {
            let v = value.ok_or_else(|| tok.err(format!("`{key}` needs a value")))?;
            if key == "type" {
                finish_band(band.take(), &mut meter.bands)?;
                let t = match v.text {
                    "drop" => BandType::Drop,
                    "dscp_remark" => BandType::DscpRemark,
                    _ => return Err(v.err("band type must be drop or dscp_remark")),
                };
                band = Some((
                    Band {
                        r#type: t as i32,
                        ..Band::default()
                    },
                    tok,
                ));
                continue;
            }
            let Some((b, _)) = band.as_mut() else {
                return Err(tok.err("a band starts with `type=drop` or `type=dscp_remark`"));
            };
            match key {
                "rate" => b.rate = num_u32(v, u32::MAX, "rate")?,
                "burst_size" => b.burst_size = num_u32(v, u32::MAX, "burst_size")?,
                "prec_level" => b.prec_level = num_u32(v, 63, "prec_level")?,
                _ => return Err(tok.err(format!("unknown band field `{key}`"))),
            }
            continue;
        }
        match (key, value) {
            ("meter" | "meter_id", Some(v)) => {
                let id = num_u32(v, MAX_METER_ID, "meter id")?;
                if id == 0 {
                    return Err(v.err("meter ids start at 1"));
                }
                meter.id = id;
                id_seen = true;
            }
            ("kbps" | "pktps", None) => {
                let u = if key == "kbps" {
                    MeterUnit::Kbps
                } else {
                    MeterUnit::Pktps
                };
                if meter.unit != MeterUnit::Unspecified as i32 && meter.unit != u as i32 {
                    return Err(tok.err("a meter is either kbps or pktps"));
                }
                meter.unit = u as i32;
            }
            ("burst", None) => meter.burst = true,
            ("stats", None) => meter.stats = true,
            ("bands", Some(v)) => {
                in_bands = true;
                bands_tok = Some(tok);
                if !v.text.is_empty() {
                    // `bands=type=drop` in one token.
                    let (k2, v2) = v.key_value();
                    if k2 != "type" {
                        return Err(v.err("a band starts with `type=drop` or `type=dscp_remark`"));
                    }
                    let v2 = v2.ok_or_else(|| v.err("band type needed"))?;
                    let t = match v2.text {
                        "drop" => BandType::Drop,
                        "dscp_remark" => BandType::DscpRemark,
                        _ => return Err(v2.err("band type must be drop or dscp_remark")),
                    };
                    band = Some((
                        Band {
                            r#type: t as i32,
                            ..Band::default()
                        },
                        v,
                    ));
                }
            }
            _ => return Err(tok.err(format!("unknown meter keyword `{key}`"))),
        }
    }
    finish_band(band, &mut meter.bands)?;
    if !id_seen {
        return Err(ParseError::new(
            0,
            s.get(..s.len().min(16)).unwrap_or(""),
            "missing `meter=ID`",
        ));
    }
    if meter.bands.is_empty() {
        let t = bands_tok.map_or((s.len(), ""), |t| (t.at, t.text));
        return Err(ParseError::new(
            t.0,
            t.1,
            "a meter needs at least one band: `bands=type=drop,rate=N`",
        ));
    }
    if meter.unit == MeterUnit::Unspecified as i32 {
        meter.unit = MeterUnit::Kbps as i32;
    }
    Ok(meter)
}

/// Prints a meter in the syntax [`parse_meter`] reads.
pub fn format_meter(m: &Meter) -> String {
    let mut parts = vec![format!("meter={}", m.id)];
    parts.push(
        match MeterUnit::try_from(m.unit) {
            Ok(MeterUnit::Pktps) => "pktps",
            _ => "kbps",
        }
        .to_string(),
    );
    if m.burst {
        parts.push("burst".into());
    }
    if m.stats {
        parts.push("stats".into());
    }
    let mut bands = Vec::new();
    for b in &m.bands {
        let t = match BandType::try_from(b.r#type) {
            Ok(BandType::DscpRemark) => "dscp_remark",
            _ => "drop",
        };
        let mut s = format!("type={t},rate={}", b.rate);
        if b.burst_size != 0 {
            let _ = write!(s, ",burst_size={}", b.burst_size);
        }
        if b.prec_level != 0 {
            let _ = write!(s, ",prec_level={}", b.prec_level);
        }
        bands.push(s);
    }
    format!("{},bands={}", parts.join(","), bands.join(","))
}

// ---------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------

/// Parses an add-group string:
/// `group_id=1,type=select,bucket=weight:10,actions=output:1,bucket=weight:10,output:2`.
/// Bucket parameters are `weight:N` (select only, default 1), `watch_port:P`,
/// `watch_group:N` (fast_failover, one of them required), `bucket_id:N` (ignored); the
/// remaining tokens (after an optional `actions=`) are the bucket's actions.
pub fn parse_group(s: &str) -> Result<Group> {
    let tokens = split_tokens(s, 0, true);
    let mut group = Group::default();
    let mut id_tok: Option<Tok<'_>> = None;
    let mut type_tok: Option<Tok<'_>> = None;
    let mut buckets: Vec<(Tok<'_>, Vec<Tok<'_>>)> = Vec::new();
    for tok in tokens {
        let (key, value) = tok.key_value();
        if key == "bucket" {
            let v = value.ok_or_else(|| tok.err("`bucket` needs a value"))?;
            let mut list = Vec::new();
            if !v.text.is_empty() {
                list.push(v);
            }
            buckets.push((tok, list));
            continue;
        }
        if let Some((_, list)) = buckets.last_mut() {
            list.push(tok);
            continue;
        }
        match (key, value) {
            ("group_id", Some(v)) => {
                group.id = num_u32(v, MAX_GROUP_ID, "group id")?;
                id_tok = Some(tok);
            }
            ("type", Some(v)) => {
                let t = match v.text {
                    "all" => GroupType::All,
                    "select" => GroupType::Select,
                    "indirect" => GroupType::Indirect,
                    "ff" | "fast_failover" => GroupType::FastFailover,
                    _ => return Err(v.err("group type must be all, select, indirect or ff")),
                };
                group.r#type = t as i32;
                type_tok = Some(tok);
            }
            _ => return Err(tok.err(format!("unknown group keyword `{key}`"))),
        }
    }
    if id_tok.is_none() {
        return Err(ParseError::new(0, "", "missing `group_id=ID`"));
    }
    let Some(type_tok) = type_tok else {
        return Err(ParseError::new(
            0,
            "",
            "missing `type=all|select|indirect|ff`",
        ));
    };
    let gt = GroupType::try_from(group.r#type).unwrap_or(GroupType::Unspecified);
    for (btok, list) in buckets {
        let mut bucket = Bucket::default();
        let mut weight_seen = false;
        let mut actions = Vec::new();
        let mut in_actions = false;
        for t in list {
            if in_actions {
                actions.push(t);
                continue;
            }
            if let Some(a) = t.text.strip_prefix("actions=") {
                in_actions = true;
                if !a.is_empty() {
                    actions.push(Tok {
                        at: t.at + "actions=".len(),
                        text: a,
                    });
                }
                continue;
            }
            let param = t.split_once(":").filter(|(k, _)| {
                matches!(
                    k.text,
                    "weight" | "watch_port" | "watch_group" | "bucket_id"
                )
            });
            match param {
                Some((k, v)) => match k.text {
                    "weight" => {
                        if gt != GroupType::Select {
                            return Err(k.err("only select groups have bucket weights"));
                        }
                        bucket.weight = num_u32(v, 65535, "weight")?;
                        weight_seen = true;
                    }
                    "watch_port" | "watch_group" => {
                        if gt != GroupType::FastFailover {
                            return Err(k.err(format!(
                                "{} only applies to ff (fast_failover) groups",
                                k.text
                            )));
                        }
                        if k.text == "watch_port" {
                            bucket.watch_port = Some(port_ref(parse_port_number(v)?));
                        } else {
                            bucket.watch_group = Some(num_u32(v, MAX_GROUP_ID, "watch_group")?);
                        }
                    }
                    _ => {
                        num_u32(v, u32::MAX, "bucket_id")?;
                    }
                },
                None => {
                    in_actions = true;
                    actions.push(t);
                }
            }
        }
        if gt == GroupType::Select && !weight_seen {
            bucket.weight = 1;
        }
        if gt == GroupType::FastFailover
            && bucket.watch_port.is_none()
            && bucket.watch_group.is_none()
        {
            return Err(btok.err("a fast_failover bucket needs watch_port:P or watch_group:N"));
        }
        bucket.actions = parse_action_tokens(&actions)?;
        group.buckets.push(bucket);
    }
    if gt == GroupType::Indirect && group.buckets.len() != 1 {
        return Err(type_tok.err("an indirect group has exactly one bucket"));
    }
    Ok(group)
}

/// Prints a group in the syntax [`parse_group`] reads.
pub fn format_group(g: &Group) -> String {
    let gt = GroupType::try_from(g.r#type).unwrap_or(GroupType::Unspecified);
    let t = match gt {
        GroupType::All => "all",
        GroupType::Select => "select",
        GroupType::Indirect => "indirect",
        GroupType::FastFailover => "ff",
        GroupType::Unspecified => "unspecified",
    };
    let mut s = format!("group_id={},type={t}", g.id);
    for b in &g.buckets {
        s.push_str(",bucket=");
        if gt == GroupType::Select {
            let _ = write!(s, "weight:{},", b.weight);
        }
        if let Some(p) = &b.watch_port {
            let _ = write!(s, "watch_port:{},", port_ref_text(Some(p)));
        }
        if let Some(w) = b.watch_group {
            let _ = write!(s, "watch_group:{w},");
        }
        let _ = write!(s, "actions={}", format_actions(&b.actions));
    }
    s
}

#[cfg(test)]
mod tests;
