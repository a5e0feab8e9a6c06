//! The Nicira extension actions over fields and tables: `move:SRC[..]->DST[..]`,
//! `load:VALUE->DST[..]` (a masked set-field), `push:SRC[..]`, `pop:DST[..]`,
//! `output:SRC[..]`, `resubmit`, `note`, `exit` and `clone(...)`.

use crate::v1::{
    Clone, Exit, HashFields, Move, Multipath, MultipathAlgorithm, Note, OutputField, Resubmit,
    StackPop, StackPush, Subfield, action,
};

use super::super::check::not_in_clone;
use super::super::fields::field_def_i32;
use super::super::lexer::{Result, Tok, split_tokens};
use super::super::limits::MAX_TABLE_ID;
use super::super::ports::{PortText, parse_port_number, port_ref};
use super::super::protocol::{Ctx, prereq_text};
use super::super::scalar::{num_u32, parse_u128};
use super::super::subfield::{bits_value_mask, parse_subfield};
use super::call::{ActionCtx, Call, Item, act};
use super::set_field::set_value;
use super::table::parse_one_action;

/// The protocol context a field name is read in (none in a group bucket).
fn ctx_of(c: &Call<'_>) -> Ctx {
    match c.ctx {
        ActionCtx::Flow(m) => m,
        ActionCtx::Bucket => Ctx::default(),
    }
}

/// A subfield whose field's prerequisites the flow's match meets; `write` also wants the
/// field writable.
fn subfield(c: &Call<'_>, tok: Tok<'_>, write: bool) -> Result<Subfield> {
    let sf = parse_subfield(tok, ctx_of(c))?;
    let Some(d) = field_def_i32(sf.field) else {
        return Err(tok.err("unknown field"));
    };
    if write && !d.settable {
        return Err(tok.err(format!("{}: {} is read-only", tok.text, d.name)));
    }
    if let ActionCtx::Flow(m) = c.ctx
        && !m.satisfies(d.prereq)
    {
        return Err(tok.err(format!(
            "{} requires the flow's match to have {}",
            tok.text,
            prereq_text(d.prereq)
        )));
    }
    Ok(sf)
}

/// `move:SRC[..]->DST[..]`.
pub(super) fn r#move(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let Some((s, d)) = a.split_once("->") else {
        return Err(a.err(format!("{}: missing `->`", a.text)));
    };
    let src = subfield(c, s, false)?;
    let dst = subfield(c, d, true)?;
    if src.n_bits != dst.n_bits {
        return Err(a.err(format!(
            "{}: source field is {} bits wide but destination is {} bits wide",
            a.text, src.n_bits, dst.n_bits
        )));
    }
    Ok(act(action::Action::Move(Move {
        src: Some(src),
        dst: Some(dst),
    })))
}

/// `load:VALUE->DST[..]`: the set-field of those bits (Open vSwitch prints it so).
pub(super) fn load(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let Some((v, d)) = a.split_once("->") else {
        return Err(a.err(format!("{}: missing `->`", a.text)));
    };
    if d.text.is_empty() {
        return Err(a.err(format!("{}: missing field name following `->`", a.text)));
    }
    let Some(value) = parse_u128(v.text) else {
        return Err(v.err(format!("{}: cannot parse integer value", a.text)));
    };
    let dst = subfield(c, d, true)?;
    let Some(def) = field_def_i32(dst.field) else {
        return Err(d.err("unknown field"));
    };
    let Some((value, mask)) = bits_value_mask(def.width, dst.offset, dst.n_bits, value) else {
        return Err(v.err(format!(
            "{}: value does not fit in the {} bits of {}",
            v.text, dst.n_bits, d.text
        )));
    };
    let whole = dst.offset == 0 && dst.n_bits == super::super::subfield::field_bits(def);
    let mask = if whole { Vec::new() } else { mask };
    set_value(d, def.field, value, mask, c.ctx)
}

/// `push:SRC[..]`.
pub(super) fn push(c: &Call<'_>) -> Result<Item> {
    let src = subfield(c, c.need()?, false)?;
    Ok(act(action::Action::StackPush(StackPush { src: Some(src) })))
}

/// `pop:DST[..]`.
pub(super) fn pop(c: &Call<'_>) -> Result<Item> {
    let dst = subfield(c, c.need()?, true)?;
    Ok(act(action::Action::StackPop(StackPop { dst: Some(dst) })))
}

/// `output:SRC[..]` (the output parser sends a field name here).
pub(super) fn output_field(c: &Call<'_>, a: Tok<'_>) -> Result<Item> {
    let src = subfield(c, a, false)?;
    Ok(act(action::Action::OutputField(OutputField {
        src: Some(src),
    })))
}

/// `resubmit:PORT`, `resubmit(PORT)`, `resubmit(,TABLE)`, `resubmit(PORT,TABLE)`.
pub(super) fn resubmit(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let mut parts = a.text.splitn(3, ',');
    let port_text = parts.next().unwrap_or("");
    let table_text = parts.next();
    if let Some(extra) = parts.next() {
        let at = Tok {
            at: a.at + a.text.len() - extra.len(),
            text: extra,
        };
        return Err(if extra == "ct" {
            at.err("resubmit(...,ct) (a lookup in the connection-tracking table) is not supported: use ct(table=N)")
        } else {
            at.err(format!("{extra}: unknown resubmit option"))
        });
    }
    let port_tok = a.with_text(port_text);
    let in_port = if port_text.is_empty() {
        None
    } else {
        match parse_port_number(port_tok)? {
            PortText::Reserved(r)
                if !matches!(
                    r,
                    crate::v1::ReservedPort::InPort | crate::v1::ReservedPort::Local
                ) =>
            {
                return Err(port_tok.err(format!("{port_text}: not a port to resubmit from")));
            }
            p => Some(port_ref(p)),
        }
    };
    let table = match table_text {
        None | Some("") => None,
        Some(t) => {
            let off = port_text.len() + 1;
            let t_tok = Tok {
                at: a.at + off,
                text: t,
            };
            Some(num_u32(t_tok, MAX_TABLE_ID, "resubmit table")?)
        }
    };
    if in_port.is_none() && table.is_none() {
        return Err(a.err("at least one of the port and the table must be given"));
    }
    Ok(act(action::Action::Resubmit(Resubmit { in_port, table })))
}

/// `note[:HEX[.HEX]...]`: the bytes, padded with zeros as Open vSwitch encodes them.
pub(super) fn note(c: &Call<'_>) -> Result<Item> {
    let mut data = Vec::new();
    if let Some(a) = c.arg {
        let digits: Vec<u8> = a.text.bytes().filter(|b| *b != b'.').collect();
        if !digits.len().is_multiple_of(2) || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(a.err(format!(
                "{}: a note is hex bytes, optionally separated by periods",
                a.text
            )));
        }
        for pair in digits.chunks(2) {
            let s = std::str::from_utf8(pair).unwrap_or("00");
            data.push(u8::from_str_radix(s, 16).unwrap_or(0));
        }
    }
    // NXAST_NOTE is 10 bytes of header and the note, padded to a multiple of 8.
    let padded = (10 + data.len()).div_ceil(8) * 8 - 10;
    data.resize(padded, 0);
    Ok(act(action::Action::Note(Note { data })))
}

/// `exit`.
pub(super) fn exit(c: &Call<'_>) -> Result<Item> {
    c.none()?;
    Ok(act(action::Action::Exit(Exit {})))
}

/// `clone(ACTIONS)`: the actions run on a copy of the packet.
pub(super) fn clone(c: &Call<'_>) -> Result<Item> {
    let a = c.arg.unwrap_or(c.tok.with_text(""));
    let mut ctx = c.ctx;
    let mut actions = Vec::new();
    for tok in split_tokens(a.text, a.at, true) {
        match parse_one_action(tok, ctx)? {
            Item::Action(inner) => {
                if let Some(why) = not_in_clone(&inner) {
                    return Err(tok.err(format!("{} cannot be inside clone(...): {why}", tok.text)));
                }
                if let ActionCtx::Flow(m) = ctx {
                    ctx = ActionCtx::Flow(m.after(&inner));
                }
                actions.push(inner);
            }
            _ => return Err(tok.err(format!("`{}` is not allowed inside clone(...)", tok.text))),
        }
    }
    Ok(act(action::Action::Clone(Clone { actions })))
}

/// Open vSwitch's names of the multipath hash fields.
pub(in super::super) const HASH_FIELD_NAMES: &[(&str, HashFields)] = &[
    ("eth_src", HashFields::EthSrc),
    ("symmetric_l4", HashFields::SymmetricL4),
    ("symmetric_l3l4", HashFields::SymmetricL3l4),
    ("symmetric_l3l4+udp", HashFields::SymmetricL3l4Udp),
    ("nw_src", HashFields::NwSrc),
    ("nw_dst", HashFields::NwDst),
    ("symmetric_l3", HashFields::SymmetricL3),
];

/// Open vSwitch's names of the multipath algorithms.
pub(in super::super) const MULTIPATH_NAMES: &[(&str, MultipathAlgorithm)] = &[
    ("modulo_n", MultipathAlgorithm::ModuloN),
    ("hash_threshold", MultipathAlgorithm::HashThreshold),
    ("hrw", MultipathAlgorithm::Hrw),
    ("iter_hash", MultipathAlgorithm::IterHash),
];

/// `multipath(FIELDS, BASIS, ALGORITHM, N_LINKS, ARG, DST[..])`.
pub(super) fn multipath(c: &Call<'_>) -> Result<Item> {
    let a = c.need()?;
    let parts = split_tokens(a.text, a.at, false);
    let [fields, basis, algorithm, n_links, arg, dst] = parts.as_slice() else {
        return Err(a.err(format!(
            "{}: multipath takes 6 arguments: fields, basis, algorithm, n_links, arg, destination",
            a.text
        )));
    };
    let Some((_, f)) = HASH_FIELD_NAMES.iter().find(|(n, _)| *n == fields.text) else {
        return Err(fields.err(format!("{}: unknown fields", fields.text)));
    };
    let Some((_, alg)) = MULTIPATH_NAMES.iter().find(|(n, _)| *n == algorithm.text) else {
        return Err(algorithm.err(format!("{}: unknown algorithm", algorithm.text)));
    };
    let basis = num_u32(*basis, 0xffff, "multipath basis")?;
    let n = num_u32(*n_links, 65536, "multipath n_links")?;
    if n == 0 {
        return Err(n_links.err("multipath n_links must be at least 1"));
    }
    let arg = num_u32(*arg, u32::MAX, "multipath arg")?;
    let dst_sf = subfield(c, *dst, true)?;
    if dst_sf.n_bits < 32 && u64::from(n - 1) >> dst_sf.n_bits != 0 {
        return Err(dst.err(format!(
            "{}: {}-bit destination field has {} possible values, less than specified n_links {n}",
            dst.text,
            dst_sf.n_bits,
            1u64 << dst_sf.n_bits
        )));
    }
    Ok(act(action::Action::Multipath(Multipath {
        fields: *f as i32,
        basis,
        algorithm: *alg as i32,
        n_links: n,
        arg,
        dst: Some(dst_sf),
    })))
}
