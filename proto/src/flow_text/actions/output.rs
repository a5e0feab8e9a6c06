//! Where the packet goes: `output:PORT` (and `output(port=P,max_len=N)`, truncating), the
//! reserved ports as actions (`normal`, `flood`, `all`, `local`, `in_port`),
//! `group:N`, `set_queue:N`,
//! `enqueue:PORT:QUEUE` and `pop_queue`.

use crate::v1::{Enqueue, PopQueue, ReservedPort, action};

use super::super::fields::resolve_name;
use super::super::lexer::{Result, Tok, split_tokens};
use super::super::limits::MAX_GROUP_ID;
use super::super::ports::{PortText, parse_port_number, port_ref, reserved_by_name};
use super::super::protocol::Ctx;
use super::super::scalar::num_u32;
use super::call::{Call, Item, act, output as out};
use super::nicira;

/// Smallest `max_len` of a truncating output: an Ethernet header (Open vSwitch's bound).
pub(in super::super) const MIN_TRUNCATE_BYTES: u32 = 14;

/// `output:PORT`, `output(PORT)`, or `output(port=PORT,max_len=N)`: send a copy truncated
/// to at most N bytes (N >= 14) to an ordinary port, `LOCAL` or `IN_PORT`.
pub(super) fn output(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    if c.paren && a.text.contains('=') {
        return output_truncated(c, a);
    }
    // A field (`output:NXM_NX_REG0[0..15]`, `output:reg1`) holds the port number; a name
    // that is no field is a port name.
    if a.text.contains('[') {
        return nicira::output_field(c, a);
    }
    match parse_port_number(a)? {
        PortText::Name(n) if resolve_name(&n, Ctx::default()).is_ok() => nicira::output_field(c, a),
        PortText::Reserved(ReservedPort::Table) => {
            Err(a.err("output to TABLE is only valid in a packet-out"))
        }
        p => Ok(out(p, None)),
    }
}

/// `output(port=PORT,max_len=N)`.
fn output_truncated(c: &Call<'_>, a: Tok<'_>) -> Result<Item> {
    let (mut port, mut max_len) = (None, None);
    for opt in split_tokens(a.text, a.at, false) {
        match opt.key_value() {
            ("port", Some(v)) => {
                let p = parse_port_number(v)?;
                if let PortText::Reserved(r) = p
                    && !matches!(r, ReservedPort::Local | ReservedPort::InPort)
                {
                    return Err(v.err(format!(
                        "output to unsupported truncate port: {} (only a port number or name, LOCAL or IN_PORT)",
                        v.text
                    )));
                }
                port = Some(p);
            }
            ("max_len", Some(v)) => {
                let n = num_u32(v, u32::MAX, "max_len")?;
                if n < MIN_TRUNCATE_BYTES {
                    return Err(v.err(format!(
                        "max_len {n} is less than the minimum value {MIN_TRUNCATE_BYTES} (an Ethernet header)"
                    )));
                }
                max_len = Some(n);
            }
            (k, _) => {
                return Err(opt.err(format!("invalid key `{k}` in output(port=...,max_len=...)")));
            }
        }
    }
    match (port, max_len) {
        (Some(p), Some(n)) => Ok(out(p, Some(n))),
        _ => Err(c
            .tok
            .err("a truncating output takes both: output(port=PORT,max_len=N)")),
    }
}

/// `in_port`, `normal`, `flood`, `all`, `local`: output to that reserved port.
pub(super) fn reserved(c: &Call<'_>) -> Result<Item> {
    c.none()?;
    let r = reserved_by_name(&c.lname).unwrap_or(ReservedPort::Unspecified);
    Ok(out(PortText::Reserved(r), None))
}

pub(super) fn group(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    Ok(act(action::Action::Group(num_u32(
        a,
        MAX_GROUP_ID,
        "group id",
    )?)))
}

pub(super) fn set_queue(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    Ok(act(action::Action::SetQueue(num_u32(
        a,
        u32::MAX,
        "queue id",
    )?)))
}

/// `enqueue:PORT:QUEUE` or `enqueue(PORT,QUEUE)`: output on a queue of that port.
pub(super) fn enqueue(c: &Call<'_>) -> Result<Item> {
    const SYNTAX: &str = "\"enqueue\" syntax is \"enqueue:PORT:QUEUE\" or \"enqueue(PORT,QUEUE)\"";
    let a = c.need()?;
    let sep = if c.paren { "," } else { ":" };
    let Some((p, q)) = a.split_once(sep) else {
        return Err(a.err(SYNTAX));
    };
    let port = match parse_port_number(p.with_text(p.text.trim()))? {
        p @ (PortText::Number(_)
        | PortText::Name(_)
        | PortText::Reserved(ReservedPort::Local | ReservedPort::InPort)) => p,
        PortText::Reserved(_) => {
            return Err(p.err(format!(
                "{}: enqueue to a port number or name, LOCAL or IN_PORT",
                p.text
            )));
        }
    };
    let queue_id = num_u32(q.with_text(q.text.trim()), u32::MAX, "queue id")?;
    Ok(act(action::Action::Enqueue(Enqueue {
        port: Some(port_ref(port)),
        queue_id,
    })))
}

/// `pop_queue`: later outputs use the queue the packet entered the pipeline with.
pub(super) fn pop_queue(c: &Call<'_>) -> Result<Item> {
    c.none()?;
    Ok(act(action::Action::PopQueue(PopQueue {})))
}
