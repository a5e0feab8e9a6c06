//! Subfields: a bit range of a field as Open vSwitch writes it (`NXM_NX_REG0[0..15]`,
//! `reg1[]`, `tp_src[5]`, or a bare field name for all of it), read in matches
//! (`reg0[0..3]=5`) and in the Nicira actions (`move`, `load`, `push`, `pop`,
//! `output:REG`), and printed with the field's Nicira/OXM name as Open vSwitch prints it.
//! Also the 64- and 128-bit registers of a match, which are the 32-bit registers they are
//! made of (`xreg0` is `reg0` and `reg1`), split into those.

use crate::v1::{Field, FieldMatch, Subfield};

use super::fields::{FieldDef, NXM_NAMES, Named, Syntax, field_def, field_def_i32, resolve_name};
use super::lexer::{Result, Tok};
use super::protocol::Ctx;

/// A field's width in bits as a subfield counts them. `in_port` is Open vSwitch's 16-bit
/// `NXM_OF_IN_PORT`.
pub(super) fn field_bits(d: &FieldDef) -> u32 {
    match (d.field, d.syntax) {
        (Field::InPort, _) => 16,
        (_, Syntax::Int { bits, .. }) => bits,
        _ => d.width as u32 * 8,
    }
}

/// The name a subfield of `field` is printed with: its Nicira name where it has one, else
/// its OXM name (the first of [`NXM_NAMES`] that stands for it), else its text name.
pub(super) fn nxm_name(d: &FieldDef) -> &'static str {
    NXM_NAMES
        .iter()
        .find(|(_, text)| *text == d.name || d.aliases.contains(text))
        .map_or(d.name, |(nxm, _)| nxm)
}

/// Reads `NAME`, `NAME[]`, `NAME[N]` or `NAME[START..END]` (END inclusive), with `NAME`
/// resolved in the protocol context `ctx`.
pub(super) fn parse_subfield(tok: Tok<'_>, ctx: Ctx) -> Result<Subfield> {
    let (name, range) = match tok.text.find('[') {
        Some(i) => {
            let Some(inner) = tok.text[i + 1..].strip_suffix(']') else {
                return Err(tok.err(format!("{}: missing `]` after the bit range", tok.text)));
            };
            let inner = Tok {
                at: tok.at + i + 1,
                text: inner,
            };
            (&tok.text[..i], Some(inner))
        }
        None => (tok.text, None),
    };
    let name_tok = tok.with_text(name);
    let field = match resolve_name(name, ctx) {
        Ok(Named::Field(f)) => f,
        Ok(_) => {
            return Err(name_tok.err(format!(
                "{name} is a shorthand: name the field (vlan_tci, ip_dscp)"
            )));
        }
        Err(m) => return Err(name_tok.err(m)),
    };
    let Some(d) = field_def(field) else {
        return Err(name_tok.err(format!("unknown field `{name}`")));
    };
    let bits = field_bits(d);
    let (offset, n_bits) = match range {
        None => (0, bits),
        Some(r) if r.text.is_empty() => (0, bits),
        Some(r) => {
            let (start, end) = match r.text.split_once("..") {
                Some((s, e)) => (bit(r, s)?, bit(r, e)?),
                None => {
                    let b = bit(r, r.text)?;
                    (b, b)
                }
            };
            if start > end {
                return Err(r.err(format!(
                    "{}: starting bit {start} is after ending bit {end}",
                    tok.text
                )));
            }
            if end >= bits {
                return Err(r.err(format!(
                    "{}: bit {end} is past the end of {name}, which has {bits} bits",
                    tok.text
                )));
            }
            (start, end - start + 1)
        }
    };
    Ok(Subfield {
        field: field as i32,
        offset,
        n_bits,
    })
}

fn bit(r: Tok<'_>, s: &str) -> Result<u32> {
    s.parse::<u32>()
        .ok()
        .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| r.err(format!("{s}: expected a bit number")))
}

/// A subfield as Open vSwitch prints it: `NXM_NX_REG0[]` for a whole field, else
/// `NXM_NX_REG0[START..END]` (or `[N]` for one bit).
pub(super) fn subfield_text(s: &Subfield) -> String {
    let Some(d) = field_def_i32(s.field) else {
        return format!("field{}[{}..{}]", s.field, s.offset, s.offset + s.n_bits);
    };
    let name = nxm_name(d);
    if s.offset == 0 && s.n_bits == field_bits(d) {
        format!("{name}[]")
    } else if s.n_bits == 1 {
        format!("{name}[{}]", s.offset)
    } else {
        format!(
            "{name}[{}..{}]",
            s.offset,
            s.offset + s.n_bits.saturating_sub(1)
        )
    }
}

/// Whether a subfield lies inside its field (for API input).
pub(super) fn subfield_fits(s: &Subfield) -> Option<&'static FieldDef> {
    let d = field_def_i32(s.field)?;
    (s.n_bits >= 1 && s.offset.checked_add(s.n_bits)? <= field_bits(d)).then_some(d)
}

/// `value` written into bits `offset..offset+n_bits` of a field `width` bytes wide: the
/// field's (value, mask) as big-endian bytes. `None` when the value does not fit.
pub(super) fn bits_value_mask(
    width: usize,
    offset: u32,
    n_bits: u32,
    value: u128,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let ones = if n_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << n_bits) - 1
    };
    if value & !ones != 0 || offset + n_bits > 128 {
        return None;
    }
    let bytes = |v: u128| v.to_be_bytes()[16 - width.min(16)..].to_vec();
    Some((bytes(value << offset), bytes(ones << offset)))
}

/// The registers an `xregN` / `xxregN` match is made of (`xreg0` is `reg0` high, `reg1`
/// low), each with its part of the value and mask; other fields as they are.
pub(super) fn split_wide_register(fm: FieldMatch) -> Vec<FieldMatch> {
    const REGS: [Field; 16] = [
        Field::Reg0,
        Field::Reg1,
        Field::Reg2,
        Field::Reg3,
        Field::Reg4,
        Field::Reg5,
        Field::Reg6,
        Field::Reg7,
        Field::Reg8,
        Field::Reg9,
        Field::Reg10,
        Field::Reg11,
        Field::Reg12,
        Field::Reg13,
        Field::Reg14,
        Field::Reg15,
    ];
    let first = match Field::try_from(fm.field) {
        Ok(
            f @ (Field::Xreg0
            | Field::Xreg1
            | Field::Xreg2
            | Field::Xreg3
            | Field::Xreg4
            | Field::Xreg5
            | Field::Xreg6
            | Field::Xreg7),
        ) => 2 * (f as usize - Field::Xreg0 as usize),
        Ok(f @ (Field::Xxreg0 | Field::Xxreg1 | Field::Xxreg2 | Field::Xxreg3)) => {
            4 * (f as usize - Field::Xxreg0 as usize)
        }
        _ => return vec![fm],
    };
    let n = fm.value.len() / 4;
    let mut out = Vec::new();
    for i in 0..n {
        let v = fm.value[4 * i..4 * i + 4].to_vec();
        let m = if fm.mask.is_empty() {
            vec![0xff; 4]
        } else {
            fm.mask[4 * i..4 * i + 4].to_vec()
        };
        if m.iter().all(|b| *b == 0) {
            continue;
        }
        let Some(reg) = REGS.get(first + i) else {
            continue;
        };
        out.push(FieldMatch {
            field: *reg as i32,
            value: v,
            mask: if m.iter().all(|b| *b == 0xff) {
                Vec::new()
            } else {
                m
            },
            port_name: String::new(),
        });
    }
    out
}
