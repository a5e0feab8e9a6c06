//! OpenFlow ports in text: numbers, names and the reserved ports (`LOCAL`, `NORMAL`, ...),
//! read into and printed from the API's [`PortRef`], and the `in_port` match value.

use crate::v1::{Field, FieldMatch, PortRef, ReservedPort, port_ref};

use super::lexer::{Result, Tok};
use super::scalar::num;

/// Highest ordinary OpenFlow port number (OFPP_MAX).
pub const MAX_PORT_NO: u32 = 0xffff_ff00;
/// OpenFlow number of the LOCAL port, as carried in an `in_port` [`FieldMatch`].
pub const OFPP_LOCAL: u32 = 0xffff_fffe;
/// OpenFlow number of the CONTROLLER port, as carried in an `in_port` [`FieldMatch`].
pub const OFPP_CONTROLLER: u32 = 0xffff_fffd;
/// OpenFlow 1.5's "no port" (OFPP_UNSET): `actset_output` of an action set without output.
pub const OFPP_UNSET: u32 = 0xffff_fff7;

/// The reserved ports by OpenFlow number, as `actset_output` may hold them.
const RESERVED_NUMBERS: &[(u32, &str)] = &[
    (OFPP_UNSET, "UNSET"),
    (0xffff_fff8, "IN_PORT"),
    (0xffff_fff9, "TABLE"),
    (0xffff_fffa, "NORMAL"),
    (0xffff_fffb, "FLOOD"),
    (0xffff_fffc, "ALL"),
    (OFPP_CONTROLLER, "CONTROLLER"),
    (OFPP_LOCAL, "LOCAL"),
];

/// A port as written.
pub(super) enum PortText {
    Number(u32),
    Reserved(ReservedPort),
    Name(String),
}

/// The reserved port a keyword names (any case).
pub(super) fn reserved_by_name(s: &str) -> Option<ReservedPort> {
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

pub(super) fn reserved_text(r: ReservedPort) -> &'static str {
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
/// `.`, `+`, not starting with a digit, and not a reserved port keyword.
pub fn is_valid_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
        && !s.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && reserved_by_name(s).is_none()
}

/// A port number (0..=[`MAX_PORT_NO`]), a reserved port keyword or a port name. Port 0 is
/// no port, as in Open vSwitch: `in_port=0` matches nothing, `output:0` sends nowhere.
pub(super) fn parse_port_number(tok: Tok<'_>) -> Result<PortText> {
    if tok.text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let n = num(tok, u64::from(u32::MAX), "port number")? as u32;
        if n > MAX_PORT_NO {
            return Err(tok.err(format!(
                "port number must be 0..={MAX_PORT_NO} (use names for reserved ports)"
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
    Err(tok.err("bad port: expected a number, a name (letters, digits, `_-.+`) or a reserved port"))
}

pub(super) fn port_ref(p: PortText) -> PortRef {
    PortRef {
        port: Some(match p {
            PortText::Number(n) => port_ref::Port::Number(n),
            PortText::Reserved(r) => port_ref::Port::Reserved(r as i32),
            PortText::Name(s) => port_ref::Port::Name(s),
        }),
    }
}

pub(super) fn port_ref_text(p: Option<&PortRef>) -> String {
    match p.and_then(|p| p.port.as_ref()) {
        Some(port_ref::Port::Number(n)) => n.to_string(),
        Some(port_ref::Port::Name(s)) => s.clone(),
        Some(port_ref::Port::Reserved(r)) => ReservedPort::try_from(*r)
            .map_or_else(|_| format!("reserved{r}"), |r| reserved_text(r).to_string()),
        None => "NONE".to_string(),
    }
}

/// `in_port=` value: number, LOCAL/CONTROLLER, or a name.
pub(super) fn parse_in_port(tok: Tok<'_>) -> Result<FieldMatch> {
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

/// The `in_port=` text of a match value: the port's name, LOCAL, CONTROLLER or its number.
pub(super) fn in_port_text(fm: &FieldMatch) -> Option<String> {
    let v = &fm.value;
    if !fm.port_name.is_empty() {
        Some(fm.port_name.clone())
    } else if v.len() == 4 && v[..] == OFPP_LOCAL.to_be_bytes() {
        Some("LOCAL".to_string())
    } else if v.len() == 4 && v[..] == OFPP_CONTROLLER.to_be_bytes() {
        Some("CONTROLLER".to_string())
    } else {
        None
    }
}

/// `actset_output=` value: a port number, name or reserved port, or `UNSET` (any case).
pub(super) fn parse_actset_output(tok: Tok<'_>) -> Result<FieldMatch> {
    if let Some((_, m)) = tok.split_once("/") {
        return Err(m.err("`actset_output` does not take a mask"));
    }
    let mut fm = FieldMatch {
        field: Field::ActsetOutput as i32,
        ..FieldMatch::default()
    };
    if let Some((n, _)) = RESERVED_NUMBERS
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(tok.text))
    {
        fm.value = n.to_be_bytes().to_vec();
        return Ok(fm);
    }
    match parse_port_number(tok)? {
        PortText::Number(n) => fm.value = n.to_be_bytes().to_vec(),
        PortText::Name(s) => fm.port_name = s,
        PortText::Reserved(_) => return Err(tok.err("bad port for actset_output")),
    }
    Ok(fm)
}

/// The `actset_output=` text of a match value: a name, a reserved port or a number.
pub(super) fn actset_output_text(fm: &FieldMatch) -> String {
    if !fm.port_name.is_empty() {
        return fm.port_name.clone();
    }
    let n = match <[u8; 4]>::try_from(&fm.value[..]) {
        Ok(b) => u32::from_be_bytes(b),
        Err(_) => return super::scalar::hex_bytes(&fm.value),
    };
    RESERVED_NUMBERS
        .iter()
        .find(|(r, _)| *r == n)
        .map_or_else(|| n.to_string(), |(_, name)| (*name).to_string())
}
