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
//! without it) `BAD_ARGUMENT`. What the API cannot hold (an ALG,
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
        // Open vSwitch's decode_NXAST_RAW_CONJUNCTION: 2..=64 clauses, a clause among them.
        NxAction::Conjunction {
            clause,
            n_clauses,
            id,
        } => {
            if !(2..=64).contains(&n_clauses) || clause >= n_clauses {
                return Err(crate::openflow::error::nicira::BAD_CONJUNCTION);
            }
            A::Conjunction(v1::Conjunction {
                id,
                clause: u32::from(clause) + 1,
                n_clauses: u32::from(n_clauses),
            })
        }
        NxAction::Controller {
            max_len,
            controller_id,
            reason,
        } => super::nx_controller::controller_to_api(max_len, controller_id, reason)?,
        NxAction::Controller2(props) => super::nx_controller::controller2_to_api(props)?,
        NxAction::Ct(ref ct) => A::Ct(ct_to_api(ct)?),
        NxAction::CtClear => A::CtClear(v1::CtClear {}),
        // dec_ttl(ids): the controllers told of an expired TTL (ids are 16 bits each).
        NxAction::DecTtlCntIds(ids) => A::DecTtl(v1::DecTtl {
            controller_ids: ids
                .chunks_exact(2)
                .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]])))
                .collect(),
        }),
        // nat outside ct, and what the API has no form for.
        _ => return Err(bad_action::BAD_EXP_TYPE),
    };
    out.push(act(x));
    Ok(())
}

fn ct_to_api(ct: &Ct<'_>) -> Result<v1::Ct, OfpError> {
    if ct.flags & !(CT_COMMIT | CT_FORCE) != 0
        || (ct.flags & CT_FORCE != 0 && ct.flags & CT_COMMIT == 0)
        || ct.alg != 0
    {
        return Err(bad_action::BAD_ARGUMENT);
    }
    // A zone from a field: `zone` is then the field's ofs_nbits.
    let zone_src = match ct.zone_src {
        0 => None,
        h => {
            // Sixteen bits, as Open vSwitch asks of a zone's source.
            let (ofs, n_bits) = ofs_nbits(ct.zone);
            if n_bits != 16 {
                return Err(bad_action::BAD_SET_LEN);
            }
            Some(subfield(nxm(h), ofs, n_bits, bad_action::BAD_ARGUMENT)?)
        }
    };
    let commit = ct.flags & CT_COMMIT != 0;
    let mut c = v1::Ct {
        commit,
        force: ct.flags & CT_FORCE != 0,
        zone: if zone_src.is_some() {
            0
        } else {
            u32::from(ct.zone)
        },
        zone_src,
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
        A::Conjunction(c) => nx(
            NxAction::Conjunction {
                clause: c.clause.saturating_sub(1).min(255) as u8,
                n_clauses: c.n_clauses.min(255) as u8,
                id: c.id,
            },
            out,
        ),
        A::Controller(c) => super::nx_controller::emit(c, out),
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
    match header_of(c.zone_src.as_ref()) {
        Some((id, sf)) => {
            out.put_u32(id.header);
            out.put_u16(encode_ofs_nbits(sf.offset, sf.n_bits));
        }
        None => {
            out.put_u32(0);
            out.put_u16(c.zone as u16);
        }
    }
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
#[path = "nx_tests.rs"]
mod tests;
