//! The Nicira learn action (NXAST_LEARN, NXAST_LEARN2) and its flow_mod specs.
//!
//! Layout: the 10-byte Nicira header, then idle/hard timeout, priority, cookie, flags,
//! table, pad, fin idle/hard timeout (32 bytes in all); learn2 adds limit, result_dst_ofs,
//! pad and, with `NX_LEARN_F_WRITE_RESULT`, the result field's header. Specs follow until
//! the end or a zero spec header; the rest must be zero padding.
//!
//! A spec header is `src_type << 13 | dst_type << 11 | n_bits`: the source is a field
//! (header + bit offset) or an immediate of `ceil(n_bits / 16) * 2` bytes; the destination
//! a match field or a load (header + offset), or output.

use super::error::{OfpError, bad_action};
use super::list::{Item, List};
use super::oxm::OxmId;
use super::wire::{Put, Reader};

/// NX_LEARN_F_WRITE_RESULT: learn2 writes whether it learned into a field.
pub const WRITE_RESULT: u16 = 1 << 2;

/// The learn2 additions.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Learn2 {
    /// Most flows this action may learn (0: unlimited).
    pub limit: u32,
    /// Bit of `result_dst` written.
    pub result_dst_ofs: u16,
    /// Field written with the result (when flags has WRITE_RESULT).
    pub result_dst: Option<OxmId>,
}

/// A learn action.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Learn<'a> {
    /// Idle timeout of learned flows.
    pub idle_timeout: u16,
    /// Hard timeout of learned flows.
    pub hard_timeout: u16,
    /// Priority of learned flows.
    pub priority: u16,
    /// Cookie of learned flows.
    pub cookie: u64,
    /// NX_LEARN_F_* flags.
    pub flags: u16,
    /// Table learned flows go into.
    pub table_id: u8,
    /// fin_idle_timeout of learned flows.
    pub fin_idle_timeout: u16,
    /// fin_hard_timeout of learned flows.
    pub fin_hard_timeout: u16,
    /// learn2 fields; `None` for NXAST_LEARN.
    pub v2: Option<Learn2>,
    /// The specs.
    pub specs: List<'a, LearnSpec<'a>>,
}

/// Where a spec's bits come from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LearnSrc<'a> {
    /// Bits of a field of the packet being processed.
    Field {
        /// Field.
        field: OxmId,
        /// First bit.
        ofs: u16,
    },
    /// Immediate bits, big-endian, `ceil(n_bits / 16) * 2` bytes.
    Immediate(&'a [u8]),
}

/// What a spec does with its bits in the learned flow.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LearnDst {
    /// Match on the field.
    Match {
        /// Field.
        field: OxmId,
        /// First bit.
        ofs: u16,
    },
    /// Load into the field (an action of the learned flow).
    Load {
        /// Field.
        field: OxmId,
        /// First bit.
        ofs: u16,
    },
    /// Output to the port the bits name.
    Output,
}

/// One flow_mod spec of a learn action.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LearnSpec<'a> {
    /// Number of bits (1 to 2047).
    pub n_bits: u16,
    /// Source.
    pub src: LearnSrc<'a>,
    /// Destination.
    pub dst: LearnDst,
}

impl<'a> Item<'a> for LearnSpec<'a> {
    const BAD_LEN: OfpError = bad_action::BAD_LEN;

    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_action::BAD_LEN);
        let h = r.u16()?;
        let n_bits = h & 0x7ff;
        if n_bits == 0 {
            return Err(bad_action::BAD_ARGUMENT);
        }
        let src = if h & (1 << 13) == 0 {
            LearnSrc::Field {
                field: OxmId::parse(&mut r)?,
                ofs: r.u16()?,
            }
        } else {
            LearnSrc::Immediate(r.bytes(usize::from(n_bits).div_ceil(16) * 2)?)
        };
        let dst = match (h >> 11) & 3 {
            0 => LearnDst::Match {
                field: OxmId::parse(&mut r)?,
                ofs: r.u16()?,
            },
            1 => LearnDst::Load {
                field: OxmId::parse(&mut r)?,
                ofs: r.u16()?,
            },
            2 => LearnDst::Output,
            _ => return Err(bad_action::BAD_ARGUMENT),
        };
        if h & 0xc000 != 0 {
            return Err(bad_action::BAD_ARGUMENT);
        }
        Ok((LearnSpec { n_bits, src, dst }, r.pos()))
    }

    fn emit_item(&self, out: &mut Vec<u8>) {
        let src_bit = matches!(self.src, LearnSrc::Immediate(_)) as u16;
        let dst_bits = match self.dst {
            LearnDst::Match { .. } => 0,
            LearnDst::Load { .. } => 1,
            LearnDst::Output => 2,
        };
        out.put_u16((src_bit << 13) | (dst_bits << 11) | (self.n_bits & 0x7ff));
        match self.src {
            LearnSrc::Field { field, ofs } => {
                field.emit(out);
                out.put_u16(ofs);
            }
            LearnSrc::Immediate(b) => out.extend_from_slice(b),
        }
        match self.dst {
            LearnDst::Match { field, ofs } | LearnDst::Load { field, ofs } => {
                field.emit(out);
                out.put_u16(ofs);
            }
            LearnDst::Output => {}
        }
    }
}

impl<'a> Learn<'a> {
    /// Parses a learn action; `body` starts at the action's type field.
    pub fn parse(body: &'a [u8], v2: bool) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_action::BAD_LEN);
        r.skip(10)?;
        let (idle_timeout, hard_timeout, priority) = (r.u16()?, r.u16()?, r.u16()?);
        let cookie = r.u64()?;
        let flags = r.u16()?;
        let table_id = r.u8()?;
        r.skip(1)?;
        let (fin_idle_timeout, fin_hard_timeout) = (r.u16()?, r.u16()?);
        let v2 = if v2 {
            let limit = r.u32()?;
            let result_dst_ofs = r.u16()?;
            r.skip(2)?;
            let result_dst = if flags & WRITE_RESULT != 0 {
                Some(OxmId::parse(&mut r)?)
            } else {
                None
            };
            Some(Learn2 {
                limit,
                result_dst_ofs,
                result_dst,
            })
        } else {
            None
        };
        let rest = r.rest();
        let mut used = 0;
        while rest.len() - used >= 2 && rest[used..used + 2] != [0, 0] {
            used += LearnSpec::parse_item(&rest[used..])?.1;
        }
        if rest[used..].iter().any(|&b| b != 0) {
            return Err(bad_action::BAD_ARGUMENT);
        }
        Ok(Learn {
            idle_timeout,
            hard_timeout,
            priority,
            cookie,
            flags,
            table_id,
            fin_idle_timeout,
            fin_hard_timeout,
            v2,
            specs: List::new_checked(&rest[..used])?,
        })
    }

    /// Writes everything after the subtype; the caller pads and patches the length.
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u16(self.idle_timeout);
        out.put_u16(self.hard_timeout);
        out.put_u16(self.priority);
        out.put_u64(self.cookie);
        out.put_u16(self.flags);
        out.put_u8(self.table_id);
        out.put_u8(0);
        out.put_u16(self.fin_idle_timeout);
        out.put_u16(self.fin_hard_timeout);
        if let Some(v2) = self.v2 {
            out.put_u32(v2.limit);
            out.put_u16(v2.result_dst_ofs);
            out.put_zeros(2);
            if let Some(d) = v2.result_dst {
                d.emit(out);
            }
        }
        self.specs.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::actions::{Action, Actions};
    use crate::openflow::fields::Field;
    use crate::openflow::list::encode;
    use crate::openflow::nx_actions::NxAction;

    #[test]
    fn learn_round_trip() {
        // learn(table=10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0x1->NXM_NX_REG0[0..3],
        //       output:NXM_OF_IN_PORT[])
        let specs = encode(&[
            LearnSpec {
                n_bits: 48,
                src: LearnSrc::Field {
                    field: OxmId::of(Field::NxmEthSrc),
                    ofs: 0,
                },
                dst: LearnDst::Match {
                    field: OxmId::of(Field::NxmEthDst),
                    ofs: 0,
                },
            },
            LearnSpec {
                n_bits: 4,
                src: LearnSrc::Immediate(&[0, 1]),
                dst: LearnDst::Load {
                    field: OxmId::of(Field::Reg0),
                    ofs: 0,
                },
            },
            LearnSpec {
                n_bits: 16,
                src: LearnSrc::Field {
                    field: OxmId::of(Field::NxmInPort),
                    ofs: 0,
                },
                dst: LearnDst::Output,
            },
        ]);
        let learn = Learn {
            idle_timeout: 10,
            hard_timeout: 0,
            priority: 100,
            cookie: 7,
            flags: 0,
            table_id: 10,
            fin_idle_timeout: 0,
            fin_hard_timeout: 0,
            v2: None,
            specs: List::new_checked(&specs).expect("specs"),
        };
        let bytes = encode(&[Action::Nx(NxAction::Learn(learn))]);
        assert_eq!(bytes.len() % 8, 0);
        let l = Actions::new_checked(&bytes).expect("learn parses");
        let a = l.iter().next().expect("one");
        assert_eq!(a, Action::Nx(NxAction::Learn(learn)));
        assert_eq!(encode(&[a]), bytes);
    }

    #[test]
    fn reserved_destination_is_rejected() {
        let spec = [0x38, 0x10, 0, 1];
        assert_eq!(
            LearnSpec::parse_item(&spec).err(),
            Some(bad_action::BAD_ARGUMENT)
        );
    }
}
