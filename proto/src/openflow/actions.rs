//! Actions: every OpenFlow 1.3 standard action, the 1.5 copy-field and meter actions, the
//! ONF copy-field extension, the Nicira extensions (see [`super::nx_actions`]), and unknown
//! experimenter actions kept as bytes.
//!
//! Framing errors are `BAD_ACTION/BAD_LEN` (lengths not a multiple of 8, shorter than the
//! action, past the list). An unknown standard type is `BAD_TYPE`. Unknown experimenter ids
//! and subtypes parse as [`Action::Experimenter`], so a message that carries one still
//! decodes; [`Action::unsupported`] gives the error the channel answers with.

use super::error::{NX_VENDOR_ID, ONF_VENDOR_ID, OfpError, bad_action};
use super::ids::{GroupId, MeterId, PortNo};
use super::list::{Item, List};
use super::nx_actions::NxAction;
use super::oxm::{Oxm, OxmId};
use super::wire::{Put, Reader};

/// A checked list of actions.
pub type Actions<'a> = List<'a, Action<'a>>;

/// Action type numbers (ofp_action_type).
#[allow(missing_docs)]
pub mod kind {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    /// OpenFlow 1.5.
    pub const COPY_FIELD: u16 = 28;
    /// OpenFlow 1.5.
    pub const METER: u16 = 29;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// ONF experimenter action type of copy-field in OpenFlow 1.3 (ONF EXT-320).
pub const ONF_COPY_FIELD: u16 = 3200;
/// OFPCML_NO_BUFFER: send the whole packet to the controller.
pub const CONTROLLER_MAX_LEN_NO_BUFFER: u16 = 0xffff;

/// Source and destination of a copy-field (OpenFlow 1.5 or ONF 1.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CopyField {
    /// Bits to copy.
    pub n_bits: u16,
    /// First bit in the source.
    pub src_offset: u16,
    /// First bit in the destination.
    pub dst_offset: u16,
    /// Source field.
    pub src: OxmId,
    /// Destination field.
    pub dst: OxmId,
}

/// One action.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// OFPAT_OUTPUT: to a port; `max_len` bytes to the controller.
    Output {
        /// Output port.
        port: PortNo,
        /// Bytes of the packet sent to the controller (port CONTROLLER).
        max_len: u16,
    },
    /// OFPAT_COPY_TTL_OUT.
    CopyTtlOut,
    /// OFPAT_COPY_TTL_IN.
    CopyTtlIn,
    /// OFPAT_SET_MPLS_TTL.
    SetMplsTtl(u8),
    /// OFPAT_DEC_MPLS_TTL.
    DecMplsTtl,
    /// OFPAT_PUSH_VLAN with its ethertype.
    PushVlan(u16),
    /// OFPAT_POP_VLAN.
    PopVlan,
    /// OFPAT_PUSH_MPLS with its ethertype.
    PushMpls(u16),
    /// OFPAT_POP_MPLS with the ethertype of the payload.
    PopMpls(u16),
    /// OFPAT_SET_QUEUE.
    SetQueue(u32),
    /// OFPAT_GROUP.
    Group(GroupId),
    /// OFPAT_SET_NW_TTL.
    SetNwTtl(u8),
    /// OFPAT_DEC_NW_TTL.
    DecNwTtl,
    /// OFPAT_SET_FIELD: one unmasked OXM.
    SetField(Oxm<'a>),
    /// OFPAT_PUSH_PBB with its ethertype.
    PushPbb(u16),
    /// OFPAT_POP_PBB.
    PopPbb,
    /// OFPAT_COPY_FIELD (OpenFlow 1.5).
    CopyField(CopyField),
    /// OFPAT_METER (OpenFlow 1.5).
    Meter(MeterId),
    /// ONF copy-field (experimenter 0x4f4e4600, type 3200), OpenFlow 1.3.
    OnfCopyField(CopyField),
    /// A Nicira extension action.
    Nx(NxAction<'a>),
    /// An experimenter action this codec does not know: id and the bytes after it.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Everything after the experimenter id (subtype included).
        data: &'a [u8],
    },
}

impl Action<'_> {
    /// For an action the switch cannot execute because it does not know it, the error to
    /// send: `BAD_EXP_TYPE` for a known experimenter, `BAD_EXPERIMENTER` otherwise.
    pub fn unsupported(&self) -> Option<OfpError> {
        match self {
            Action::Experimenter { experimenter, .. } => Some(
                if *experimenter == NX_VENDOR_ID || *experimenter == ONF_VENDOR_ID {
                    bad_action::BAD_EXP_TYPE
                } else {
                    bad_action::BAD_EXPERIMENTER
                },
            ),
            _ => None,
        }
    }
}

/// Reads the 4-byte action header and the action's bytes; checks the length rules.
pub(crate) fn frame(buf: &[u8]) -> Result<(u16, &[u8]), OfpError> {
    let mut r = Reader::new(buf, bad_action::BAD_LEN);
    let kind = r.u16()?;
    let len = usize::from(r.u16()?);
    if len < 8 || len % 8 != 0 || len > buf.len() {
        return Err(bad_action::BAD_LEN);
    }
    Ok((kind, &buf[..len]))
}

fn fixed(body: &[u8], len: usize) -> Result<Reader<'_>, OfpError> {
    if body.len() != len {
        return Err(bad_action::BAD_LEN);
    }
    let mut r = Reader::new(body, bad_action::BAD_LEN);
    r.skip(4)?;
    Ok(r)
}

impl<'a> Item<'a> for Action<'a> {
    const BAD_LEN: OfpError = bad_action::BAD_LEN;

    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let (kind, body) = frame(buf)?;
        let a = match kind {
            kind::OUTPUT => {
                let mut r = fixed(body, 16)?;
                let port = PortNo(r.u32()?);
                Action::Output {
                    port,
                    max_len: r.u16()?,
                }
            }
            kind::COPY_TTL_OUT => fixed(body, 8).map(|_| Action::CopyTtlOut)?,
            kind::COPY_TTL_IN => fixed(body, 8).map(|_| Action::CopyTtlIn)?,
            kind::SET_MPLS_TTL => Action::SetMplsTtl(fixed(body, 8)?.u8()?),
            kind::DEC_MPLS_TTL => fixed(body, 8).map(|_| Action::DecMplsTtl)?,
            kind::PUSH_VLAN => Action::PushVlan(fixed(body, 8)?.u16()?),
            kind::POP_VLAN => fixed(body, 8).map(|_| Action::PopVlan)?,
            kind::PUSH_MPLS => Action::PushMpls(fixed(body, 8)?.u16()?),
            kind::POP_MPLS => Action::PopMpls(fixed(body, 8)?.u16()?),
            kind::SET_QUEUE => Action::SetQueue(fixed(body, 8)?.u32()?),
            kind::GROUP => Action::Group(GroupId(fixed(body, 8)?.u32()?)),
            kind::SET_NW_TTL => Action::SetNwTtl(fixed(body, 8)?.u8()?),
            kind::DEC_NW_TTL => fixed(body, 8).map(|_| Action::DecNwTtl)?,
            kind::SET_FIELD => Action::SetField(parse_set_field(&body[4..])?),
            kind::PUSH_PBB => Action::PushPbb(fixed(body, 8)?.u16()?),
            kind::POP_PBB => fixed(body, 8).map(|_| Action::PopPbb)?,
            kind::COPY_FIELD => {
                let mut r = Reader::new(&body[4..], bad_action::BAD_LEN);
                Action::CopyField(parse_copy_field(&mut r)?)
            }
            kind::METER => Action::Meter(MeterId(fixed(body, 8)?.u32()?)),
            kind::EXPERIMENTER => parse_experimenter(body)?,
            _ => return Err(bad_action::BAD_TYPE),
        };
        Ok((a, body.len()))
    }

    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let simple = |out: &mut Vec<u8>, kind: u16| {
            out.put_u16(kind);
            out.put_u16(8);
        };
        match *self {
            Action::Output { port, max_len } => {
                out.put_u16(kind::OUTPUT);
                out.put_u16(16);
                out.put_u32(port.0);
                out.put_u16(max_len);
                out.put_zeros(6);
            }
            Action::CopyTtlOut => simple(out, kind::COPY_TTL_OUT),
            Action::CopyTtlIn => simple(out, kind::COPY_TTL_IN),
            Action::SetMplsTtl(t) => {
                simple(out, kind::SET_MPLS_TTL);
                out.put_u8(t);
            }
            Action::DecMplsTtl => simple(out, kind::DEC_MPLS_TTL),
            Action::PushVlan(e) => {
                simple(out, kind::PUSH_VLAN);
                out.put_u16(e);
            }
            Action::PopVlan => simple(out, kind::POP_VLAN),
            Action::PushMpls(e) => {
                simple(out, kind::PUSH_MPLS);
                out.put_u16(e);
            }
            Action::PopMpls(e) => {
                simple(out, kind::POP_MPLS);
                out.put_u16(e);
            }
            Action::SetQueue(q) => {
                simple(out, kind::SET_QUEUE);
                out.put_u32(q);
            }
            Action::Group(g) => {
                simple(out, kind::GROUP);
                out.put_u32(g.0);
            }
            Action::SetNwTtl(t) => {
                simple(out, kind::SET_NW_TTL);
                out.put_u8(t);
            }
            Action::DecNwTtl => simple(out, kind::DEC_NW_TTL),
            Action::SetField(ref o) => {
                out.put_u16(kind::SET_FIELD);
                out.put_u16(0);
                o.emit_item(out);
            }
            Action::PushPbb(e) => {
                simple(out, kind::PUSH_PBB);
                out.put_u16(e);
            }
            Action::PopPbb => simple(out, kind::POP_PBB),
            Action::CopyField(ref c) => {
                out.put_u16(kind::COPY_FIELD);
                out.put_u16(0);
                emit_copy_field(c, out);
            }
            Action::Meter(m) => {
                simple(out, kind::METER);
                out.put_u32(m.0);
            }
            Action::OnfCopyField(ref c) => {
                out.put_u16(kind::EXPERIMENTER);
                out.put_u16(0);
                out.put_u32(ONF_VENDOR_ID);
                out.put_u16(ONF_COPY_FIELD);
                out.put_zeros(2);
                emit_copy_field(c, out);
            }
            Action::Nx(ref nx) => nx.emit(out),
            Action::Experimenter { experimenter, data } => {
                out.put_u16(kind::EXPERIMENTER);
                out.put_u16(0);
                out.put_u32(experimenter);
                out.extend_from_slice(data);
            }
        }
        out.finish_aligned(start, 2);
    }
}

fn parse_set_field(rest: &[u8]) -> Result<Oxm<'_>, OfpError> {
    let (oxm, used) = Oxm::parse_item(rest).map_err(|_| bad_action::BAD_SET_LEN)?;
    if rest.len() - used >= 8 {
        return Err(bad_action::BAD_SET_LEN);
    }
    if oxm.mask.is_some() {
        return Err(bad_action::BAD_SET_ARGUMENT);
    }
    oxm.check().map_err(|_| bad_action::BAD_SET_LEN)?;
    Ok(oxm)
}

fn parse_copy_field(r: &mut Reader<'_>) -> Result<CopyField, OfpError> {
    let n_bits = r.u16()?;
    let src_offset = r.u16()?;
    let dst_offset = r.u16()?;
    r.skip(2)?;
    let src = OxmId::parse(r)?;
    let dst = OxmId::parse(r)?;
    if r.remaining() >= 8 {
        return Err(bad_action::BAD_LEN);
    }
    Ok(CopyField {
        n_bits,
        src_offset,
        dst_offset,
        src,
        dst,
    })
}

fn emit_copy_field(c: &CopyField, out: &mut Vec<u8>) {
    out.put_u16(c.n_bits);
    out.put_u16(c.src_offset);
    out.put_u16(c.dst_offset);
    out.put_zeros(2);
    c.src.emit(out);
    c.dst.emit(out);
}

fn parse_experimenter(body: &[u8]) -> Result<Action<'_>, OfpError> {
    let mut r = Reader::new(&body[4..], bad_action::BAD_LEN);
    let experimenter = r.u32()?;
    let data = &body[8..];
    match experimenter {
        NX_VENDOR_ID => {
            Ok(NxAction::parse(body)?
                .map_or(Action::Experimenter { experimenter, data }, Action::Nx))
        }
        ONF_VENDOR_ID if r.u16()? == ONF_COPY_FIELD => {
            r.skip(2)?;
            Ok(Action::OnfCopyField(parse_copy_field(&mut r)?))
        }
        _ => Ok(Action::Experimenter { experimenter, data }),
    }
}

/// Reads an OpenFlow 1.3 action list of `len` bytes from `r` (instructions, buckets,
/// packet-out).
pub fn parse_actions<'a>(r: &mut Reader<'a>, len: usize) -> Result<Actions<'a>, OfpError> {
    let bytes = r.bytes(len).map_err(|_| bad_action::BAD_LEN)?;
    Actions::new_checked(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::fields::Field;

    // output:2 with max_len 0xffe5, then set_field:10.0.0.1->ipv4_dst, then group:7.
    static ACTIONS: [u8; 40] = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02, 0xff, 0xe5, 0, 0, 0, 0, 0, 0, //
        0x00, 0x19, 0x00, 0x10, 0x80, 0x00, 0x18, 0x04, 0x0a, 0x00, 0x00, 0x01, 0, 0, 0, 0, //
        0x00, 0x16, 0x00, 0x08, 0x00, 0x00, 0x00, 0x07,
    ];

    #[test]
    fn read_fields() {
        let l = Actions::new_checked(&ACTIONS).expect("actions");
        let v: Vec<_> = l.iter().collect();
        assert_eq!(
            v[0],
            Action::Output {
                port: PortNo(2),
                max_len: 0xffe5
            }
        );
        let Action::SetField(o) = v[1] else {
            panic!("{:?}", v[1])
        };
        assert_eq!(o.field(), Some(Field::Ipv4Dst));
        assert_eq!(o.value, [10, 0, 0, 1]);
        assert_eq!(v[2], Action::Group(GroupId(7)));
    }

    #[test]
    fn build_and_emit() {
        let acts = [
            Action::Output {
                port: PortNo(2),
                max_len: 0xffe5,
            },
            Action::SetField(Oxm::new(Field::Ipv4Dst, &[10, 0, 0, 1])),
            Action::Group(GroupId(7)),
        ];
        assert_eq!(crate::openflow::list::encode(&acts), ACTIONS);
        let mut out = Vec::new();
        Actions::new_checked(&ACTIONS)
            .expect("actions")
            .emit(&mut out);
        assert_eq!(out, ACTIONS);
    }

    #[test]
    fn malformed() {
        let mut b = ACTIONS;
        b[3] = 0x0c; // not a multiple of 8
        assert_eq!(Actions::new_checked(&b).err(), Some(bad_action::BAD_LEN));
        let mut b = ACTIONS;
        b[1] = 0x63;
        assert_eq!(Actions::new_checked(&b).err(), Some(bad_action::BAD_TYPE));
        assert_eq!(
            Actions::new_checked(&ACTIONS[..36]).err(),
            Some(bad_action::BAD_LEN)
        );
        let mut b = ACTIONS;
        b[23] = 0x05; // ipv4_dst of 5 bytes
        assert_eq!(
            Actions::new_checked(&b).err(),
            Some(bad_action::BAD_SET_LEN)
        );
    }

    #[test]
    fn unknown_experimenters_surface() {
        let b = [0xff, 0xff, 0, 16, 0, 0, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8];
        let a = Actions::new_checked(&b).expect("framed");
        let act = a.iter().next().expect("one");
        assert_eq!(act.unsupported(), Some(bad_action::BAD_EXPERIMENTER));
        assert_eq!(crate::openflow::list::encode(&[act]), b);
    }
}
