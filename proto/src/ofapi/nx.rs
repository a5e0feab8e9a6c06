//! The Nicira extension actions to the API's actions and back: move, load (and OpenFlow
//! 1.3 set-field on registers with masks), resubmit, note, exit, output:REG, push/pop,
//! clone, multipath, ct (with nat and the ct_mark/ct_label writes inside it) and ct_clear,
//! in Open vSwitch 3.1's layouts.
//!
//! Bit ranges travel as a field header with an offset and a width. Headers are read by
//! the field table ([`fields::FIELDS`]); they are written as Open vSwitch writes them: the
//! Nicira NXM header where the field has one, else its OXM header
//! ([`fields::subfield_row`]). A masked set-field goes out as Open vSwitch sends it in
//! OpenFlow 1.3: one `NXAST_REG_LOAD` per run of contiguous mask bits (at most 64 each),
//! or `NXAST_REG_LOAD2` for a field that only has an experimenter header; a set-field of
//! a whole field as `OFPAT_SET_FIELD`.
//!
//! Refusals are Open vSwitch's for the same input: an unknown field in a move, push, pop
//! or output_reg2 `BAD_MATCH/BAD_FIELD`, in a load, output_reg or multipath
//! `BAD_SET_TYPE`, a masked header `BAD_MASK`, bits outside the field `BAD_SET_LEN`, a
//! destination that cannot be written `BAD_SET_ARGUMENT`, a bad argument (an unknown hash,
//! algorithm or ct flag, a load value wider than its bits, ct actions that need commit
//! without it) `BAD_ARGUMENT`. What the API cannot hold (a zone from a field, an ALG,
//! resubmit's ct tuple) is `BAD_ARGUMENT` too, so nothing is dropped silently.

use crate::openflow::error::{NX_VENDOR_ID, OfpError, bad_action, bad_match};
use crate::openflow::fields::Field as Of;
use crate::openflow::ids::PortNo;
use crate::openflow::list::Item;
use crate::openflow::nx_actions::{NxAction, subtype};
use crate::openflow::nx_ct::{Ct, Nat};
use crate::openflow::oxm::{Oxm, OxmId};
use crate::openflow::wire::Put;
use crate::v1::{self, Field as Api, action, nat};

use super::actions::{Place, port_to_api, port_to_wire, set_field};
use super::fields::{self, Conv, Row};

/// OFPP_IN_PORT in OpenFlow 1.0 numbering: resubmit keeps the packet's in_port.
const IN_PORT_16: u16 = 0xfff8;
/// ct's "no recirculation table".
const CT_RECIRC_NONE: u8 = 0xff;
const CT_COMMIT: u16 = 1;
const CT_FORCE: u16 = 2;
const NAT_SRC: u16 = 1;
const NAT_DST: u16 = 2;
const NAT_PERSISTENT: u16 = 4;
const NAT_PROTO_HASH: u16 = 8;
const NAT_PROTO_RANDOM: u16 = 16;

fn act(a: action::Action) -> v1::Action {
    v1::Action { action: Some(a) }
}

/// `(ofs << 6) | (n_bits - 1)` split.
fn ofs_nbits(v: u16) -> (u32, u32) {
    (u32::from(v >> 6), u32::from(v & 0x3f) + 1)
}

fn encode_ofs_nbits(ofs: u32, n_bits: u32) -> u16 {
    ((ofs as u16) << 6) | (n_bits.saturating_sub(1) as u16 & 0x3f)
}

/// The API field a header names, for a subfield (`unknown` is the error for a field the
/// codec or the API lacks).
fn field_of(id: OxmId, unknown: OfpError) -> Result<&'static Row, OfpError> {
    if id.has_mask() {
        return Err(bad_match::BAD_MASK);
    }
    let row = id.field().and_then(fields::by_wire).ok_or(unknown)?;
    if row.conv == Conv::TosDscp {
        // NXM_OF_IP_TOS holds the DSCP in its high six bits; the API's ip_dscp is those
        // bits alone, so a range of one is not a range of the other.
        return Err(bad_action::BAD_ARGUMENT);
    }
    Ok(row)
}

/// A subfield read from the wire (its bits are checked against the API's field later,
/// with the text syntax's rules).
fn subfield(id: OxmId, ofs: u32, n_bits: u32, unknown: OfpError) -> Result<v1::Subfield, OfpError> {
    let row = field_of(id, unknown)?;
    if n_bits == 0 {
        return Err(bad_action::BAD_SET_LEN);
    }
    Ok(v1::Subfield {
        field: row.api as i32,
        offset: ofs,
        n_bits,
    })
}

/// A 32-bit NXM header (the older actions carry no experimenter id).
fn nxm(header: u32) -> OxmId {
    OxmId {
        header,
        experimenter: 0,
    }
}

/// The header a subfield of an API field is written with.
fn header_of(sf: Option<&v1::Subfield>) -> Option<(OxmId, &v1::Subfield)> {
    let sf = sf?;
    let row = fields::subfield_row(Api::try_from(sf.field).ok()?)?;
    Some((OxmId::of(row.of), sf))
}

fn hash_fields_to_api(f: u16) -> Result<i32, OfpError> {
    let api = i32::from(f) + 1;
    v1::HashFields::try_from(api)
        .map(|h| h as i32)
        .map_err(|_| bad_action::BAD_ARGUMENT)
}

fn algorithm_to_api(a: u16) -> Result<i32, OfpError> {
    let api = i32::from(a) + 1;
    v1::MultipathAlgorithm::try_from(api)
        .map(|h| h as i32)
        .map_err(|_| bad_action::BAD_ARGUMENT)
}

/// A resubmit's in_port (OpenFlow 1.0 numbering) as the API names it.
fn resubmit_port(in_port: u16) -> Result<Option<v1::PortRef>, OfpError> {
    if in_port == IN_PORT_16 {
        return Ok(None);
    }
    port_to_api(fields::port_from_16(in_port)).map(Some)
}

/// A 32-bit port number in OpenFlow 1.0's 16 bits (reserved ports move down).
fn port_to_16(p: PortNo) -> u16 {
    if p.0 >= 0xffff_ff00 {
        p.0 as u16
    } else {
        p.0.min(0xff00) as u16
    }
}

/// A load's field, its wire value and its mask (`None`: the whole field).
type Load = (Of, Vec<u8>, Option<Vec<u8>>);

/// NXAST_REG_LOAD: `value` into bits `ofs..ofs+n_bits` of the field `dst` names, as
/// the field's wire value and mask (the mask `None` when it covers the whole field).
fn load_bits(ofs_nbits_v: u16, dst: u32, value: u64) -> Result<Load, OfpError> {
    let (ofs, n_bits) = ofs_nbits(ofs_nbits_v);
    let of = nxm(dst).field().ok_or(bad_action::BAD_SET_TYPE)?;
    let row = fields::by_wire(of).ok_or(bad_action::BAD_SET_TYPE)?;
    if !matches!(row.conv, Conv::Same | Conv::Low8of32) {
        return Err(bad_action::BAD_SET_ARGUMENT);
    }
    let size = usize::from(of.def().size);
    if size > 16 || ofs + n_bits > size as u32 * 8 {
        return Err(bad_action::BAD_SET_LEN);
    }
    if n_bits < 64 && value >> n_bits != 0 {
        return Err(bad_action::BAD_ARGUMENT);
    }
    let ones = if n_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << n_bits) - 1
    };
    let bytes = |v: u128| v.to_be_bytes()[16 - size..].to_vec();
    let (v, m) = (bytes(u128::from(value) << ofs), bytes(ones << ofs));
    let full = m.iter().all(|b| *b == 0xff);
    Ok((of, v, (!full).then_some(m)))
}

/// NXAST_REG_LOAD as a (masked) set-field.
fn reg_load(ofs_nbits_v: u16, dst: u32, value: u64, at: Place<'_>) -> Result<v1::Action, OfpError> {
    let (of, v, m) = load_bits(ofs_nbits_v, dst, value)?;
    match m {
        None => set_field(&Oxm::new(of, &v), at),
        Some(m) => set_field(&Oxm::masked(of, &v, &m), at),
    }
}

/// One Nicira action in the API's form, or the error Open vSwitch sends for it.
pub(super) fn to_api(
    nx: &NxAction<'_>,
    at: Place<'_>,
    out: &mut Vec<v1::Action>,
) -> Result<(), OfpError> {
    use action::Action as A;
    let x = match *nx {
        NxAction::PopQueue => A::PopQueue(v1::PopQueue {}),
        NxAction::RegLoad {
            ofs_nbits,
            dst,
            value,
        } => {
            out.push(reg_load(ofs_nbits, dst, value, at)?);
            return Ok(());
        }
        NxAction::RegLoad2(ref o) => {
            out.push(set_field(o, at)?);
            return Ok(());
        }
        NxAction::RegMove {
            n_bits,
            src_ofs,
            dst_ofs,
            src,
            dst,
        } => {
            let n = u32::from(n_bits);
            A::Move(v1::Move {
                src: Some(subfield(src, src_ofs.into(), n, bad_match::BAD_FIELD)?),
                dst: Some(subfield(dst, dst_ofs.into(), n, bad_match::BAD_FIELD)?),
            })
        }
        NxAction::Resubmit { in_port } => A::Resubmit(v1::Resubmit {
            in_port: resubmit_port(in_port)?,
            table: None,
        }),
        NxAction::ResubmitTable { ct: true, .. } => return Err(bad_action::BAD_ARGUMENT),
        NxAction::ResubmitTable { in_port, table, .. } => A::Resubmit(v1::Resubmit {
            in_port: resubmit_port(in_port)?,
            table: (table != 0xff).then_some(u32::from(table)),
        }),
        NxAction::Note(data) => A::Note(v1::Note {
            data: data.to_vec(),
        }),
        NxAction::Exit => A::Exit(v1::Exit {}),
        NxAction::OutputReg {
            ofs_nbits: v, src, ..
        } => {
            let (ofs, n) = ofs_nbits(v);
            A::OutputField(v1::OutputField {
                src: Some(subfield(nxm(src), ofs, n, bad_action::BAD_SET_TYPE)?),
            })
        }
        NxAction::OutputReg2 {
            ofs_nbits: v, src, ..
        } => {
            let (ofs, n) = ofs_nbits(v);
            A::OutputField(v1::OutputField {
                src: Some(subfield(src, ofs, n, bad_match::BAD_FIELD)?),
            })
        }
        NxAction::Stack {
            pop,
            offset,
            field,
            n_bits,
        } => {
            let sf = subfield(field, offset.into(), n_bits.into(), bad_match::BAD_FIELD)?;
            if pop {
                A::StackPop(v1::StackPop { dst: Some(sf) })
            } else {
                A::StackPush(v1::StackPush { src: Some(sf) })
            }
        }
        NxAction::Clone(ref inner) => {
            let mut actions = Vec::new();
            for a in inner.iter() {
                super::actions::one(&a, at, &mut actions)?;
            }
            A::Clone(v1::Clone { actions })
        }
        NxAction::Multipath {
            fields: f,
            basis,
            algorithm,
            max_link,
            arg,
            ofs_nbits: v,
            dst,
        } => {
            let (ofs, n) = ofs_nbits(v);
            let dst = subfield(nxm(dst), ofs, n, bad_action::BAD_SET_TYPE)?;
            let n_links = u32::from(max_link) + 1;
            if n < 32 && (n_links - 1) >> n != 0 {
                return Err(bad_action::BAD_ARGUMENT);
            }
            A::Multipath(v1::Multipath {
                fields: hash_fields_to_api(f)?,
                basis: u32::from(basis),
                algorithm: algorithm_to_api(algorithm)?,
                n_links,
                arg,
                dst: Some(dst),
            })
        }
        NxAction::Ct(ref ct) => A::Ct(ct_to_api(ct)?),
        NxAction::CtClear => A::CtClear(v1::CtClear {}),
        // dec_ttl with the one controller id 0 is plain dec_ttl.
        NxAction::DecTtlCntIds(ids) if ids == [0, 0] => A::DecTtl(v1::DecTtl {}),
        // nat outside ct, and what the API has no form for.
        _ => return Err(bad_action::BAD_EXP_TYPE),
    };
    out.push(act(x));
    Ok(())
}

fn ct_to_api(ct: &Ct<'_>) -> Result<v1::Ct, OfpError> {
    if ct.flags & !(CT_COMMIT | CT_FORCE) != 0
        || (ct.flags & CT_FORCE != 0 && ct.flags & CT_COMMIT == 0)
        || ct.zone_src != 0
        || ct.alg != 0
    {
        return Err(bad_action::BAD_ARGUMENT);
    }
    let commit = ct.flags & CT_COMMIT != 0;
    let mut c = v1::Ct {
        commit,
        force: ct.flags & CT_FORCE != 0,
        zone: u32::from(ct.zone),
        table: (ct.recirc_table != CT_RECIRC_NONE).then_some(u32::from(ct.recirc_table)),
        ..v1::Ct::default()
    };
    let (mut mark, mut mark_mask) = (0u32, 0u32);
    let (mut label, mut label_mask) = (0u128, 0u128);
    for a in ct.actions.iter() {
        use crate::openflow::actions::Action as W;
        let (of, v, m) = match a {
            W::Nx(NxAction::Nat(n)) => {
                if c.nat.is_some() {
                    return Err(bad_action::BAD_ARGUMENT);
                }
                let n = nat_to_api(&n)?;
                if !commit && n.kind != nat::Kind::Apply as i32 {
                    return Err(bad_action::BAD_ARGUMENT);
                }
                c.nat = Some(n);
                continue;
            }
            W::SetField(o) | W::Nx(NxAction::RegLoad2(o)) => {
                let of = o.field().ok_or(bad_match::BAD_FIELD)?;
                (of, o.value.to_vec(), o.mask.map(<[u8]>::to_vec))
            }
            W::Nx(NxAction::RegLoad {
                ofs_nbits,
                dst,
                value,
            }) => load_bits(ofs_nbits, dst, value)?,
            _ => return Err(bad_action::BAD_ARGUMENT),
        };
        // Inside ct only the connection's mark and label are written, and only by a
        // committing ct.
        if !commit {
            return Err(bad_action::BAD_ARGUMENT);
        }
        let be = |b: &[u8]| b.iter().fold(0u128, |a, x| (a << 8) | u128::from(*x));
        let v = be(&v);
        let m = m.map_or(u128::MAX, |m| be(&m));
        match of {
            Of::CtMark => {
                let (v, m) = (v as u32, m as u32);
                mark = (mark & !m) | (v & m);
                mark_mask |= m;
            }
            Of::CtLabel => {
                label = (label & !m) | (v & m);
                label_mask |= m;
            }
            _ => return Err(bad_action::BAD_ARGUMENT),
        }
    }
    if mark_mask != 0 {
        c.mark = Some(mark);
        c.mark_mask = (mark_mask != u32::MAX).then_some(mark_mask);
    }
    if label_mask != 0 {
        c.label = label.to_be_bytes().to_vec();
        if label_mask != u128::MAX {
            c.label_mask = label_mask.to_be_bytes().to_vec();
        }
    }
    Ok(c)
}

fn nat_to_api(n: &Nat) -> Result<v1::Nat, OfpError> {
    let f = n.flags;
    if f & !0x1f != 0
        || (f & NAT_SRC != 0 && f & NAT_DST != 0)
        || (f & NAT_PROTO_HASH != 0 && f & NAT_PROTO_RANDOM != 0)
        || (n.ipv4_min.is_some() && (n.ipv6_min.is_some() || n.ipv6_max.is_some()))
        || (n.ipv4_max.is_some() && n.ipv4_min.is_none())
        || (n.ipv6_max.is_some() && n.ipv6_min.is_none())
        || (n.proto_max.is_some() && n.proto_min.is_none())
    {
        return Err(bad_action::BAD_ARGUMENT);
    }
    let kind = if f & NAT_SRC != 0 {
        nat::Kind::Src
    } else if f & NAT_DST != 0 {
        nat::Kind::Dst
    } else {
        nat::Kind::Apply
    };
    let (addr_min, addr_max) = match (n.ipv4_min, n.ipv4_max, n.ipv6_min, n.ipv6_max) {
        (Some(a), b, None, None) => (a.to_vec(), b.map(|b| b.to_vec()).unwrap_or_default()),
        (None, None, Some(a), b) => (a.to_vec(), b.map(|b| b.to_vec()).unwrap_or_default()),
        (None, None, None, None) => (Vec::new(), Vec::new()),
        _ => return Err(bad_action::BAD_ARGUMENT),
    };
    if addr_min.iter().all(|b| *b == 0) && !addr_min.is_empty()
        || (!addr_max.is_empty() && addr_max < addr_min)
        || (kind == nat::Kind::Apply) != addr_min.is_empty()
    {
        // Open vSwitch refuses a zero address; the API has no src/dst NAT without a
        // range, nor a range without src or dst.
        return Err(bad_action::BAD_ARGUMENT);
    }
    let port_min = u32::from(n.proto_min.unwrap_or(0));
    let port_max = n.proto_max.map_or(port_min, u32::from);
    if port_max < port_min
        || (port_min == 0 && port_max != 0)
        || (port_min != 0 && addr_min.is_empty())
    {
        return Err(bad_action::BAD_ARGUMENT);
    }
    Ok(v1::Nat {
        kind: kind as i32,
        addr_min,
        addr_max,
        port_min,
        port_max,
        persistent: f & NAT_PERSISTENT != 0,
        random: f & NAT_PROTO_RANDOM != 0,
        hash: f & NAT_PROTO_HASH != 0,
    })
}

/// Writes the Nicira form of an API action; false for an action that is not one.
pub(super) fn emit(a: &action::Action, out: &mut Vec<u8>) -> bool {
    use action::Action as A;
    let nx = |n: NxAction<'_>, out: &mut Vec<u8>| {
        crate::openflow::actions::Action::Nx(n).emit_item(out);
    };
    match a {
        A::Move(m) => {
            if let (Some((src, s)), Some((dst, d))) =
                (header_of(m.src.as_ref()), header_of(m.dst.as_ref()))
            {
                nx(
                    NxAction::RegMove {
                        n_bits: d.n_bits as u16,
                        src_ofs: s.offset as u16,
                        dst_ofs: d.offset as u16,
                        src,
                        dst,
                    },
                    out,
                );
            }
        }
        A::Resubmit(r) => {
            let in_port = r
                .in_port
                .as_ref()
                .map_or(IN_PORT_16, |p| port_to_16(port_to_wire(Some(p))));
            match r.table {
                None if in_port != IN_PORT_16 => nx(NxAction::Resubmit { in_port }, out),
                t => nx(
                    NxAction::ResubmitTable {
                        in_port,
                        table: t.map_or(0xff, |t| t as u8),
                        ct: false,
                    },
                    out,
                ),
            }
        }
        A::Note(n) => nx(NxAction::Note(&n.data), out),
        A::Exit(_) => nx(NxAction::Exit, out),
        A::CtClear(_) => nx(NxAction::CtClear, out),
        A::OutputField(o) => {
            if let Some((src, s)) = header_of(o.src.as_ref()) {
                let ofs_nbits = encode_ofs_nbits(s.offset, s.n_bits);
                if src.wire_len() == 4 {
                    nx(
                        NxAction::OutputReg {
                            ofs_nbits,
                            src: src.header,
                            max_len: 0xffff,
                        },
                        out,
                    );
                } else {
                    nx(
                        NxAction::OutputReg2 {
                            ofs_nbits,
                            max_len: 0xffff,
                            src,
                        },
                        out,
                    );
                }
            }
        }
        A::StackPush(p) => stack(false, p.src.as_ref(), out),
        A::StackPop(p) => stack(true, p.dst.as_ref(), out),
        A::Clone(c) => {
            let start = nx_header(subtype::CLONE, out);
            out.put_zeros(6);
            super::actions::emit(&c.actions, out);
            out.finish_aligned(start, 2);
        }
        A::Multipath(m) => {
            if let Some((dst, d)) = header_of(m.dst.as_ref()) {
                nx(
                    NxAction::Multipath {
                        fields: (m.fields - 1).clamp(0, 0xffff) as u16,
                        basis: m.basis as u16,
                        algorithm: (m.algorithm - 1).clamp(0, 0xffff) as u16,
                        max_link: m.n_links.saturating_sub(1) as u16,
                        arg: m.arg,
                        ofs_nbits: encode_ofs_nbits(d.offset, d.n_bits),
                        dst: dst.header,
                    },
                    out,
                );
            }
        }
        A::Ct(c) => emit_ct(c, out),
        _ => return false,
    }
    true
}

fn stack(pop: bool, sf: Option<&v1::Subfield>, out: &mut Vec<u8>) {
    if let Some((field, s)) = header_of(sf) {
        crate::openflow::actions::Action::Nx(NxAction::Stack {
            pop,
            offset: s.offset as u16,
            field,
            n_bits: s.n_bits as u16,
        })
        .emit_item(out);
    }
}

/// Starts a Nicira action (type, length placeholder, vendor, subtype); returns its start.
fn nx_header(st: u16, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.put_u16(0xffff);
    out.put_u16(0);
    out.put_u32(NX_VENDOR_ID);
    out.put_u16(st);
    start
}

fn emit_ct(c: &v1::Ct, out: &mut Vec<u8>) {
    let start = nx_header(subtype::CT, out);
    let mut flags = 0;
    if c.commit || c.force {
        flags |= CT_COMMIT;
    }
    if c.force {
        flags |= CT_FORCE;
    }
    out.put_u16(flags);
    out.put_u32(0);
    out.put_u16(c.zone as u16);
    out.put_u8(c.table.map_or(CT_RECIRC_NONE, |t| t as u8));
    out.put_zeros(3);
    out.put_u16(0);
    if let Some(n) = &c.nat {
        crate::openflow::actions::Action::Nx(NxAction::Nat(nat_to_wire(n))).emit_item(out);
    }
    if let Some(mark) = c.mark {
        let mask = c.mark_mask.filter(|m| *m != u32::MAX);
        put_set_field(
            &v1::SetField {
                field: Api::CtMark as i32,
                value: mark.to_be_bytes().to_vec(),
                mask: mask.map(|m| m.to_be_bytes().to_vec()).unwrap_or_default(),
            },
            out,
        );
    }
    if !c.label.is_empty() {
        put_set_field(
            &v1::SetField {
                field: Api::CtLabel as i32,
                value: c.label.clone(),
                mask: c.label_mask.clone(),
            },
            out,
        );
    }
    out.finish_aligned(start, 2);
}

fn nat_to_wire(n: &v1::Nat) -> Nat {
    let mut flags = match nat::Kind::try_from(n.kind) {
        Ok(nat::Kind::Src) => NAT_SRC,
        Ok(nat::Kind::Dst) => NAT_DST,
        _ => 0,
    };
    for (on, bit) in [
        (n.persistent, NAT_PERSISTENT),
        (n.hash, NAT_PROTO_HASH),
        (n.random, NAT_PROTO_RANDOM),
    ] {
        if on {
            flags |= bit;
        }
    }
    let mut w = Nat {
        flags,
        ..Nat::default()
    };
    let v4 = |b: &[u8]| <[u8; 4]>::try_from(b).ok();
    let v6 = |b: &[u8]| <[u8; 16]>::try_from(b).ok();
    w.ipv4_min = v4(&n.addr_min);
    w.ipv4_max = v4(&n.addr_max);
    w.ipv6_min = v6(&n.addr_min);
    w.ipv6_max = v6(&n.addr_max);
    if !n.addr_min.is_empty() {
        w.proto_min = (n.port_min != 0).then_some(n.port_min as u16);
        w.proto_max = (n.port_max != 0).then_some(n.port_max as u16);
    }
    w
}

/// A set-field as Open vSwitch 3.1 sends it in OpenFlow 1.3: `OFPAT_SET_FIELD` for the
/// whole field, else `NXAST_REG_LOAD` per run of contiguous mask bits (64 at most), or
/// `NXAST_REG_LOAD2` for a field with only an experimenter header.
pub(super) fn put_set_field(sf: &v1::SetField, out: &mut Vec<u8>) {
    let Some(api) = Api::try_from(sf.field).ok() else {
        return;
    };
    let Some(row) = fields::by_api(api) else {
        return;
    };
    let mut value = fields::to_wire(row, &sf.value);
    if row.of == Of::VlanVid
        && let Some(b) = value.first_mut()
    {
        *b |= 0x10;
    }
    let mask = fields::to_wire(row, &sf.mask);
    if sf.mask.is_empty() || mask.iter().all(|b| *b == 0xff) {
        crate::openflow::actions::Action::SetField(Oxm::new(row.of, &value)).emit_item(out);
        return;
    }
    let load_row = fields::subfield_row(api).filter(|r| r.conv == row.conv);
    let header = load_row.map(|r| OxmId::of(r.of));
    match header {
        Some(h) if h.wire_len() == 4 && value.len() <= 16 && mask.len() == value.len() => {
            let be = |b: &[u8]| b.iter().fold(0u128, |a, x| (a << 8) | u128::from(*x));
            let (v, m) = (be(&value), be(&mask));
            let width = value.len() as u32 * 8;
            let mut bit = 0;
            while bit < width {
                if m >> bit & 1 == 0 {
                    bit += 1;
                    continue;
                }
                let start = bit;
                while bit < width && bit - start < 64 && m >> bit & 1 == 1 {
                    bit += 1;
                }
                let n = bit - start;
                let ones = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
                crate::openflow::actions::Action::Nx(NxAction::RegLoad {
                    ofs_nbits: encode_ofs_nbits(start, n),
                    dst: h.header,
                    value: (v >> start) as u64 & ones,
                })
                .emit_item(out);
            }
        }
        _ => crate::openflow::actions::Action::Nx(NxAction::RegLoad2(Oxm::masked(
            row.of, &value, &mask,
        )))
        .emit_item(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow_text;
    use crate::openflow::actions::{Action, Actions};
    use crate::openflow::list::encode;
    use proptest::prelude::*;

    fn ip() -> v1::Match {
        flow_text::parse_flow("ip,actions=drop")
            .expect("flow")
            .r#match
            .expect("match")
    }

    fn api_of(bytes: &[u8], at: Place<'_>) -> Result<Vec<v1::Action>, OfpError> {
        let l = Actions::new_checked(bytes)?;
        super::super::actions::to_api(&l, at)
    }

    /// Wire to API and back gives the same bytes; returns the API form.
    fn round_trip(wire: &[Action<'_>]) -> Vec<v1::Action> {
        let m = ip();
        let bytes = encode(wire);
        let a = api_of(&bytes, Place::Flow(&m)).unwrap_or_else(|e| panic!("{wire:?}: {e:?}"));
        let mut out = Vec::new();
        super::super::actions::emit(&a, &mut out);
        assert_eq!(out, bytes, "{wire:?} -> {a:?}");
        a
    }

    fn nx(a: NxAction<'_>) -> Action<'_> {
        Action::Nx(a)
    }

    fn reg(n: u8) -> OxmId {
        let f = [Of::Reg0, Of::Reg1, Of::Reg2, Of::Reg3][usize::from(n)];
        OxmId::of(f)
    }

    fn ct_actions(ct: &[Action<'_>]) -> Vec<u8> {
        encode(ct)
    }

    #[test]
    fn each_nicira_action_round_trips_through_the_api() {
        let nat = Nat {
            flags: NAT_SRC | NAT_PROTO_RANDOM,
            ipv4_min: Some([10, 0, 0, 1]),
            ipv4_max: Some([10, 0, 0, 9]),
            proto_min: Some(1000),
            proto_max: Some(2000),
            ..Nat::default()
        };
        let inner = ct_actions(&[
            nx(NxAction::Nat(nat)),
            Action::SetField(Oxm::new(Of::CtMark, &[0, 0, 0, 7])),
            nx(NxAction::RegLoad {
                ofs_nbits: encode_ofs_nbits(0, 1),
                dst: OxmId::of(Of::CtLabel).header,
                value: 1,
            }),
        ]);
        let clone_inner = encode(&[
            Action::Output {
                port: PortNo(1),
                max_len: 0,
            },
            nx(NxAction::Exit),
        ]);
        let wire = [
            nx(NxAction::RegMove {
                n_bits: 16,
                src_ofs: 0,
                dst_ofs: 16,
                src: reg(0),
                dst: reg(1),
            }),
            nx(NxAction::RegMove {
                n_bits: 48,
                src_ofs: 0,
                dst_ofs: 0,
                src: OxmId::of(Of::NxmEthSrc),
                dst: OxmId::of(Of::NxmEthDst),
            }),
            nx(NxAction::RegLoad {
                ofs_nbits: encode_ofs_nbits(4, 8),
                dst: reg(2).header,
                value: 0x5a,
            }),
            nx(NxAction::Resubmit { in_port: 2 }),
            nx(NxAction::ResubmitTable {
                in_port: IN_PORT_16,
                table: 3,
                ct: false,
            }),
            nx(NxAction::ResubmitTable {
                in_port: 0xfffe,
                table: 4,
                ct: false,
            }),
            nx(NxAction::Note(&[1, 2, 3, 0, 0, 0])),
            nx(NxAction::OutputReg {
                ofs_nbits: encode_ofs_nbits(16, 16),
                src: reg(1).header,
                max_len: 0xffff,
            }),
            nx(NxAction::Stack {
                pop: false,
                offset: 0,
                field: reg(3),
                n_bits: 32,
            }),
            nx(NxAction::Stack {
                pop: true,
                offset: 8,
                field: reg(3),
                n_bits: 8,
            }),
            nx(NxAction::Clone(
                Actions::new_checked(&clone_inner).expect("clone body"),
            )),
            nx(NxAction::Multipath {
                fields: 1,
                basis: 50,
                algorithm: 2,
                max_link: 3,
                arg: 0,
                ofs_nbits: encode_ofs_nbits(0, 2),
                dst: reg(0).header,
            }),
            nx(NxAction::Ct(Ct {
                flags: CT_COMMIT,
                zone_src: 0,
                zone: 5,
                recirc_table: 1,
                alg: 0,
                actions: Actions::new_checked(&inner).expect("ct body"),
            })),
            nx(NxAction::CtClear),
            nx(NxAction::Exit),
        ];
        let a = round_trip(&wire);
        let text = flow_text::format_actions(&a);
        assert_eq!(
            text,
            "move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31],\
             move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],\
             set_field:0x5a0/0xff0->reg2,resubmit:2,resubmit(,3),resubmit(LOCAL,4),\
             note:01.02.03.00.00.00,output:NXM_NX_REG1[16..31],push:NXM_NX_REG3[],\
             pop:NXM_NX_REG3[8..15],clone(output:1,exit),\
             multipath(symmetric_l4,50,hrw,4,0,NXM_NX_REG0[0..1]),\
             ct(commit,table=1,zone=5,nat(src=10.0.0.1-10.0.0.9:1000-2000,random),\
             exec(set_field:0x7->ct_mark,set_field:0x1/0x1->ct_label)),ct_clear,exit"
        );
    }

    #[test]
    fn set_fields_go_out_as_open_vswitch_sends_them() {
        // A whole register: OFPAT_SET_FIELD; some bits: one reg_load per run of bits;
        // xreg has only an OXM header, which reg_load takes too.
        let sf = |f: Api, v: Vec<u8>, m: Vec<u8>| {
            vec![act(action::Action::SetField(v1::SetField {
                field: f as i32,
                value: v,
                mask: m,
            }))]
        };
        let wire = |a: &[v1::Action]| {
            let mut out = Vec::new();
            super::super::actions::emit(a, &mut out);
            out
        };
        assert_eq!(
            wire(&sf(Api::Reg0, vec![0, 0, 0, 5], vec![])),
            encode(&[Action::SetField(Oxm::new(Of::Reg0, &[0, 0, 0, 5]))])
        );
        assert_eq!(
            wire(&sf(Api::Reg0, vec![0, 1, 0, 5], vec![0, 0xff, 0, 0x0f])),
            encode(&[
                nx(NxAction::RegLoad {
                    ofs_nbits: encode_ofs_nbits(0, 4),
                    dst: reg(0).header,
                    value: 5
                }),
                nx(NxAction::RegLoad {
                    ofs_nbits: encode_ofs_nbits(16, 8),
                    dst: reg(0).header,
                    value: 1
                }),
            ])
        );
        let x = wire(&sf(Api::Xreg0, vec![0; 8], vec![0, 0, 0, 0, 0, 0, 0, 0xff]));
        assert_eq!(
            x,
            encode(&[nx(NxAction::RegLoad {
                ofs_nbits: encode_ofs_nbits(0, 8),
                dst: OxmId::of(Of::Xreg0).header,
                value: 0
            })])
        );
        // A 128-bit run is two loads of 64.
        let l = wire(&sf(Api::Xxreg0, vec![0; 16], vec![0xff; 16]));
        assert_eq!(Actions::new_checked(&l).expect("ok").count(), 1);
        let l = wire(&sf(Api::CtLabel, vec![0; 16], {
            let mut m = vec![0xff; 16];
            m[0] = 0x7f;
            m
        }));
        assert_eq!(Actions::new_checked(&l).expect("ok").count(), 2);
    }

    #[test]
    fn bad_nicira_actions_get_open_vswitch_errors() {
        let m = ip();
        let err = |w: &[Action<'_>]| api_of(&encode(w), Place::Flow(&m)).err();
        let mv = |src: OxmId, dst: OxmId, n: u16, dst_ofs: u16| {
            nx(NxAction::RegMove {
                n_bits: n,
                src_ofs: 0,
                dst_ofs,
                src,
                dst,
            })
        };
        let unknown = OxmId {
            header: 0x0001_7e04,
            experimenter: 0,
        };
        assert_eq!(
            err(&[mv(unknown, reg(1), 8, 0)]),
            Some(bad_match::BAD_FIELD)
        );
        assert_eq!(
            err(&[mv(reg(0), reg(1), 8, 30)]),
            Some(bad_action::BAD_SET_LEN)
        );
        assert_eq!(
            err(&[mv(reg(0), reg(1), 0, 0)]),
            Some(bad_action::BAD_SET_LEN)
        );
        assert_eq!(
            err(&[mv(reg(0), OxmId::of_masked(Of::Reg1), 8, 0)]),
            Some(bad_match::BAD_MASK)
        );
        assert_eq!(
            err(&[mv(reg(0), OxmId::of(Of::NxmEthType), 16, 0)]),
            Some(bad_action::BAD_SET_ARGUMENT)
        );
        // Needs tcp in the match.
        assert_eq!(
            err(&[mv(reg(0), OxmId::of(Of::NxmTcpDst), 16, 0)]),
            Some(bad_action::MATCH_INCONSISTENT)
        );
        let load = |v: u64, n: u32, dst: u32| {
            nx(NxAction::RegLoad {
                ofs_nbits: encode_ofs_nbits(0, n),
                dst,
                value: v,
            })
        };
        assert_eq!(
            err(&[load(0x100, 8, reg(0).header)]),
            Some(bad_action::BAD_ARGUMENT)
        );
        assert_eq!(
            err(&[load(1, 8, 0x0001_7e04)]),
            Some(bad_action::BAD_SET_TYPE)
        );
        assert_eq!(
            err(&[nx(NxAction::ResubmitTable {
                in_port: IN_PORT_16,
                table: 1,
                ct: true
            })]),
            Some(bad_action::BAD_ARGUMENT)
        );
        let mp = |fields: u16, algorithm: u16, max_link: u16| {
            nx(NxAction::Multipath {
                fields,
                basis: 0,
                algorithm,
                max_link,
                arg: 0,
                ofs_nbits: encode_ofs_nbits(0, 2),
                dst: reg(0).header,
            })
        };
        assert_eq!(err(&[mp(9, 0, 1)]), Some(bad_action::BAD_ARGUMENT));
        assert_eq!(err(&[mp(0, 9, 1)]), Some(bad_action::BAD_ARGUMENT));
        assert_eq!(err(&[mp(0, 0, 4)]), Some(bad_action::BAD_ARGUMENT));
        let empty: Vec<u8> = Vec::new();
        let ct = |flags: u16, zone_src: u32, alg: u16, inner: &[u8]| {
            encode(&[nx(NxAction::Ct(Ct {
                flags,
                zone_src,
                zone: 0,
                recirc_table: CT_RECIRC_NONE,
                alg,
                actions: Actions::new_checked(inner).expect("inner"),
            }))])
        };
        let ct_err = |b: Vec<u8>| api_of(&b, Place::Flow(&m)).err();
        assert_eq!(
            ct_err(ct(CT_FORCE, 0, 0, &empty)),
            Some(bad_action::BAD_ARGUMENT)
        );
        assert_eq!(
            ct_err(ct(0, reg(0).header, 0, &empty)),
            Some(bad_action::BAD_ARGUMENT)
        );
        assert_eq!(
            ct_err(ct(CT_COMMIT, 0, 21, &empty)),
            Some(bad_action::BAD_ARGUMENT)
        );
        // A port range that starts at 0 (Open vSwitch never sends one: 0 means none).
        let bad_nat = encode(&[nx(NxAction::Nat(Nat {
            flags: NAT_SRC,
            ipv4_min: Some([10, 0, 0, 1]),
            proto_min: Some(0),
            proto_max: Some(5),
            ..Nat::default()
        }))]);
        assert_eq!(
            ct_err(ct(CT_COMMIT, 0, 0, &bad_nat)),
            Some(bad_action::BAD_ARGUMENT)
        );
        let mark = encode(&[Action::SetField(Oxm::new(Of::CtMark, &[0, 0, 0, 1]))]);
        assert_eq!(ct_err(ct(0, 0, 0, &mark)), Some(bad_action::BAD_ARGUMENT));
        let out = encode(&[Action::Output {
            port: PortNo(1),
            max_len: 0,
        }]);
        assert_eq!(
            ct_err(ct(CT_COMMIT, 0, 0, &out)),
            Some(bad_action::BAD_ARGUMENT)
        );
        assert_eq!(
            err(&[nx(NxAction::Nat(Nat::default()))]),
            Some(bad_action::BAD_EXP_TYPE)
        );
        // What the API has no form for stays an unsupported experimenter action.
        assert_eq!(
            err(&[nx(NxAction::SetTunnel(5))]),
            Some(bad_action::BAD_EXP_TYPE)
        );
    }

    #[test]
    fn clone_keeps_its_actions_and_refuses_what_a_copy_cannot_do() {
        let m = ip();
        let inner = encode(&[Action::PopVlan]);
        let b = encode(&[nx(NxAction::Clone(
            Actions::new_checked(&inner).expect("inner"),
        ))]);
        assert_eq!(
            api_of(&b, Place::Flow(&m)).err(),
            Some(bad_action::BAD_ARGUMENT)
        );
    }

    proptest! {
        /// Generated Nicira actions either map to the API and come back as the same
        /// bytes, or are refused with an error; never a panic.
        #[test]
        fn generated_nicira_actions_round_trip_or_are_refused(
            kind in 0u8..8,
            r1 in 0u8..4,
            r2 in 0u8..4,
            ofs in 0u16..40,
            n in 0u16..40,
            v in any::<u64>(),
            table in any::<u8>(),
            port in any::<u16>(),
        ) {
            let a = match kind {
                0 => nx(NxAction::RegMove { n_bits: n, src_ofs: ofs, dst_ofs: 0, src: reg(r1), dst: reg(r2) }),
                1 => nx(NxAction::RegLoad { ofs_nbits: encode_ofs_nbits(ofs.into(), n.max(1).into()), dst: reg(r1).header, value: v }),
                2 => nx(NxAction::ResubmitTable { in_port: port, table, ct: false }),
                3 => nx(NxAction::Stack { pop: r1 & 1 == 0, offset: ofs, field: reg(r2), n_bits: n }),
                4 => nx(NxAction::OutputReg { ofs_nbits: encode_ofs_nbits(ofs.into(), n.max(1).into()), src: reg(r1).header, max_len: 0xffff }),
                5 => nx(NxAction::Multipath { fields: u16::from(r1), basis: port, algorithm: u16::from(r2), max_link: table.into(), arg: v as u32, ofs_nbits: encode_ofs_nbits(ofs.into(), n.max(1).into()), dst: reg(r1).header }),
                6 => nx(NxAction::Resubmit { in_port: port }),
                _ => nx(NxAction::Exit),
            };
            let m = ip();
            let bytes = encode(&[a]);
            if let Ok(api) = api_of(&bytes, Place::Flow(&m)) {
                let mut out = Vec::new();
                super::super::actions::emit(&api, &mut out);
                let again = api_of(&out, Place::Flow(&m)).expect("re-encoded actions map again");
                prop_assert_eq!(again, api);
            }
        }

        /// Arbitrary bytes after a Nicira action header never panic the mapping.
        #[test]
        fn arbitrary_nicira_bodies_never_panic(
            st in 0u16..60,
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut b = Vec::new();
            b.put_u16(0xffff);
            b.put_u16(0);
            b.put_u32(NX_VENDOR_ID);
            b.put_u16(st);
            b.extend_from_slice(&body);
            while b.len() % 8 != 0 {
                b.push(0);
            }
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            let m = ip();
            for at in [Place::Flow(&m), Place::Bucket, Place::PacketOut] {
                if let Ok(api) = api_of(&b, at) {
                    let mut out = Vec::new();
                    super::super::actions::emit(&api, &mut out);
                    prop_assert!(Actions::new_checked(&out).is_ok());
                }
            }
        }
    }
}
