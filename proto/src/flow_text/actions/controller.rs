//! `controller[:max_len]` and `controller(key=value,...)`, Open vSwitch's packet-in action
//! with its arguments: `max_len`, `reason` (the packet-in's reason), `id` (the controller
//! connection it is for) and `userdata` (bytes the packet-in carries); printed back as
//! Open vSwitch prints them (`CONTROLLER:N` when only `max_len` is given). `pause` and
//! `meter_id` are refused: the switch has no packet-in continuations nor controller meters.

use crate::v1::{ControllerAction, PacketInReason, ReservedPort, action};

use super::super::lexer::{Result, split_tokens};
use super::super::ports::PortText;
use super::super::scalar::num_u32;
use super::call::{Call, Item, act, output as out};

/// Open vSwitch's names of the packet-in reasons.
const REASONS: &[(&str, PacketInReason)] = &[
    ("no_match", PacketInReason::NoMatch),
    ("action", PacketInReason::Action),
    ("invalid_ttl", PacketInReason::InvalidTtl),
    ("action_set", PacketInReason::ActionSet),
    ("group", PacketInReason::Group),
    ("packet_out", PacketInReason::PacketOut),
];

/// `controller`, `controller:N`, `controller(max_len=N,reason=R,id=I,userdata=XX.XX)`.
pub(super) fn controller(c: &Call<'_>) -> Result<Item> {
    let Some(a) = c.arg else {
        return Ok(out(PortText::Reserved(ReservedPort::Controller), None));
    };
    if !c.paren {
        let n = num_u32(a, 65535, "controller max_len")?;
        return Ok(out(
            PortText::Reserved(ReservedPort::Controller),
            Some(n).filter(|&n| n != 65535),
        ));
    }
    let mut o = ControllerAction::default();
    for opt in split_tokens(a.text, a.at, false) {
        match opt.key_value() {
            ("max_len", Some(v)) => o.max_len = Some(num_u32(v, 65535, "max_len")?),
            ("reason", Some(v)) => {
                let Some((_, r)) = REASONS.iter().find(|(n, _)| *n == v.text) else {
                    return Err(v.err(format!("{}: unknown controller reason", v.text)));
                };
                o.reason = Some(*r as i32);
            }
            ("id", Some(v)) => o.id = num_u32(v, 65535, "controller id")?,
            ("userdata", Some(v)) => o.userdata = hex_dotted(v)?,
            ("pause", None) => {
                return Err(opt.err(
                    "`controller(pause)` is not supported: this switch has no packet-in continuations (NXT_RESUME); see docs/flow-language.md",
                ));
            }
            ("meter_id", _) => {
                return Err(opt.err(
                    "`controller(meter_id=...)` is not supported: use a meter on the flow; see docs/flow-language.md",
                ));
            }
            _ => {
                return Err(opt.err(
                    "unsupported controller option (max_len=N, reason=R, id=N, userdata=XX.XX)",
                ));
            }
        }
    }
    // 65535 is OFPCML_NO_BUFFER: the whole packet, the same as no max_len; `action` is
    // the reason a controller action gives anyway.
    o.max_len = o.max_len.filter(|&n| n != 65535);
    if o.reason == Some(PacketInReason::Action as i32) {
        o.reason = None;
    }
    if o.reason.is_none() && o.id == 0 && o.userdata.is_empty() {
        return Ok(out(PortText::Reserved(ReservedPort::Controller), o.max_len));
    }
    Ok(act(action::Action::Controller(o)))
}

/// Hex bytes, optionally separated by periods (`01.02.03`, `010203`).
fn hex_dotted(v: super::super::lexer::Tok<'_>) -> Result<Vec<u8>> {
    let digits: Vec<u8> = v.text.bytes().filter(|b| *b != b'.').collect();
    if !digits.len().is_multiple_of(2) || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(v.err(format!(
            "{}: userdata is hex bytes, optionally separated by periods",
            v.text
        )));
    }
    Ok(digits
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).unwrap_or("00");
            u8::from_str_radix(s, 16).unwrap_or(0)
        })
        .collect())
}

/// `controller(...)` as Open vSwitch prints it (`format_CONTROLLER`).
pub(super) fn controller_text(o: &ControllerAction) -> String {
    let mut parts = Vec::new();
    if let Some(r) = o.reason
        && let Some((name, _)) = REASONS.iter().find(|(_, x)| *x as i32 == r)
        && *name != "action"
    {
        parts.push(format!("reason={name}"));
    }
    if let Some(n) = o.max_len.filter(|&n| n != 65535) {
        parts.push(format!("max_len={n}"));
    }
    if o.id != 0 {
        parts.push(format!("id={}", o.id));
    }
    if !o.userdata.is_empty() {
        let b: Vec<String> = o.userdata.iter().map(|b| format!("{b:02x}")).collect();
        parts.push(format!("userdata={}", b.join(".")));
    }
    format!("controller({})", parts.join(","))
}
