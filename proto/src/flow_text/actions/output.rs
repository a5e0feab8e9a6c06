//! Where the packet goes: `output:PORT`, the reserved ports as actions (`normal`, `flood`,
//! `all`, `local`, `in_port`), `controller[:max_len]` / `controller(max_len=N)`,
//! `group:N` and `set_queue:N`.

use crate::v1::{ReservedPort, action};

use super::super::lexer::{Result, split_tokens};
use super::super::limits::MAX_GROUP_ID;
use super::super::ports::{PortText, parse_port_number, reserved_by_name};
use super::super::scalar::num_u32;
use super::call::{Call, Item, act, output as out};

pub(super) fn output(c: &Call<'_, '_>) -> Result<Item> {
    let a = c.need()?;
    if c.paren {
        return Err(a.err("output takes `output:PORT`"));
    }
    match parse_port_number(a)? {
        PortText::Reserved(ReservedPort::Table) => {
            Err(a.err("output to TABLE is only valid in a packet-out"))
        }
        p => Ok(out(p, None)),
    }
}

pub(super) fn controller(c: &Call<'_, '_>) -> Result<Item> {
    let max_len = match c.arg {
        None => None,
        Some(a) if c.paren => {
            let mut max_len = None;
            for opt in split_tokens(a.text, a.at, false) {
                match opt.key_value() {
                    ("max_len", Some(v)) => max_len = Some(num_u32(v, 65535, "max_len")?),
                    _ => return Err(opt.err("unsupported controller option (only max_len=N)")),
                }
            }
            max_len
        }
        Some(a) => Some(num_u32(a, 65535, "controller max_len")?),
    };
    Ok(out(PortText::Reserved(ReservedPort::Controller), max_len))
}

/// `in_port`, `normal`, `flood`, `all`, `local`: output to that reserved port.
pub(super) fn reserved(c: &Call<'_, '_>) -> Result<Item> {
    c.none()?;
    let r = reserved_by_name(&c.lname).unwrap_or(ReservedPort::Unspecified);
    Ok(out(PortText::Reserved(r), None))
}

pub(super) fn group(c: &Call<'_, '_>) -> Result<Item> {
    let a = c.need()?;
    Ok(act(action::Action::Group(num_u32(
        a,
        MAX_GROUP_ID,
        "group id",
    )?)))
}

pub(super) fn set_queue(c: &Call<'_, '_>) -> Result<Item> {
    let a = c.need()?;
    Ok(act(action::Action::SetQueue(num_u32(
        a,
        u32::MAX,
        "queue id",
    )?)))
}
