//! OpenFlow 1.3 instructions: goto-table, write-metadata, write/apply/clear-actions, meter,
//! and experimenter instructions kept as bytes.

use super::actions::Actions;
use super::error::{OfpError, bad_instruction};
use super::ids::{MeterId, TableId};
use super::list::{Item, List};
use super::wire::{Put, Reader};

/// A checked list of instructions.
pub type Instructions<'a> = List<'a, Instruction<'a>>;

/// Instruction type numbers (ofp_instruction_type).
#[allow(missing_docs)]
pub mod kind {
    pub const GOTO_TABLE: u16 = 1;
    pub const WRITE_METADATA: u16 = 2;
    pub const WRITE_ACTIONS: u16 = 3;
    pub const APPLY_ACTIONS: u16 = 4;
    pub const CLEAR_ACTIONS: u16 = 5;
    pub const METER: u16 = 6;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// One instruction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Instruction<'a> {
    /// OFPIT_GOTO_TABLE.
    GotoTable(TableId),
    /// OFPIT_WRITE_METADATA.
    WriteMetadata {
        /// Value.
        metadata: u64,
        /// Bits to change.
        mask: u64,
    },
    /// OFPIT_WRITE_ACTIONS: merge into the action set.
    WriteActions(Actions<'a>),
    /// OFPIT_APPLY_ACTIONS: execute now.
    ApplyActions(Actions<'a>),
    /// OFPIT_CLEAR_ACTIONS.
    ClearActions,
    /// OFPIT_METER.
    Meter(MeterId),
    /// An experimenter instruction: id and the bytes after it.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Bytes after the id.
        data: &'a [u8],
    },
}

impl Instruction<'_> {
    /// The instruction type number.
    pub fn kind(&self) -> u16 {
        match self {
            Instruction::GotoTable(_) => kind::GOTO_TABLE,
            Instruction::WriteMetadata { .. } => kind::WRITE_METADATA,
            Instruction::WriteActions(_) => kind::WRITE_ACTIONS,
            Instruction::ApplyActions(_) => kind::APPLY_ACTIONS,
            Instruction::ClearActions => kind::CLEAR_ACTIONS,
            Instruction::Meter(_) => kind::METER,
            Instruction::Experimenter { .. } => kind::EXPERIMENTER,
        }
    }
}

impl<'a> Item<'a> for Instruction<'a> {
    const BAD_LEN: OfpError = bad_instruction::BAD_LEN;

    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_instruction::BAD_LEN);
        let k = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 || len > buf.len() {
            return Err(bad_instruction::BAD_LEN);
        }
        let fixed = |n: usize| {
            if len == n {
                Ok(())
            } else {
                Err(bad_instruction::BAD_LEN)
            }
        };
        let mut r = Reader::new(&buf[4..len], bad_instruction::BAD_LEN);
        let i = match k {
            kind::GOTO_TABLE => {
                fixed(8)?;
                Instruction::GotoTable(TableId(r.u8()?))
            }
            kind::WRITE_METADATA => {
                fixed(24)?;
                r.skip(4)?;
                Instruction::WriteMetadata {
                    metadata: r.u64()?,
                    mask: r.u64()?,
                }
            }
            kind::WRITE_ACTIONS | kind::APPLY_ACTIONS => {
                r.skip(4)?;
                let acts = Actions::new_checked(r.rest())?;
                if k == kind::WRITE_ACTIONS {
                    Instruction::WriteActions(acts)
                } else {
                    Instruction::ApplyActions(acts)
                }
            }
            kind::CLEAR_ACTIONS => {
                fixed(8)?;
                Instruction::ClearActions
            }
            kind::METER => {
                fixed(8)?;
                Instruction::Meter(MeterId(r.u32()?))
            }
            kind::EXPERIMENTER => Instruction::Experimenter {
                experimenter: r.u32()?,
                data: r.rest(),
            },
            _ => return Err(bad_instruction::UNKNOWN_INST),
        };
        Ok((i, len))
    }

    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.kind());
        out.put_u16(0);
        match *self {
            Instruction::GotoTable(t) => {
                out.put_u8(t.0);
                out.put_zeros(3);
            }
            Instruction::WriteMetadata { metadata, mask } => {
                out.put_zeros(4);
                out.put_u64(metadata);
                out.put_u64(mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                out.put_zeros(4);
                a.emit(out);
            }
            Instruction::ClearActions => out.put_zeros(4),
            Instruction::Meter(m) => out.put_u32(m.0),
            Instruction::Experimenter { experimenter, data } => {
                out.put_u32(experimenter);
                out.extend_from_slice(data);
            }
        }
        out.finish_aligned(start, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::actions::Action;
    use crate::openflow::ids::PortNo;
    use crate::openflow::list::encode;

    // apply_actions(output:1), goto_table:2
    static INSTRUCTIONS: [u8; 32] = [
        0x00, 0x04, 0x00, 0x18, 0, 0, 0, 0, //
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0, 0, 0, 0, 0, 0, //
        0x00, 0x01, 0x00, 0x08, 0x02, 0, 0, 0,
    ];

    #[test]
    fn read_build_parse_emit() {
        let l = Instructions::new_checked(&INSTRUCTIONS).expect("instructions");
        let v: Vec<_> = l.iter().collect();
        let Instruction::ApplyActions(a) = v[0] else {
            panic!("{:?}", v[0])
        };
        assert_eq!(
            a.iter().next(),
            Some(Action::Output {
                port: PortNo(1),
                max_len: 0
            })
        );
        assert_eq!(v[1], Instruction::GotoTable(TableId(2)));
        assert_eq!(encode(&v), INSTRUCTIONS);
    }

    #[test]
    fn malformed() {
        let mut b = INSTRUCTIONS;
        b[1] = 9;
        assert_eq!(
            Instructions::new_checked(&b).err(),
            Some(bad_instruction::UNKNOWN_INST)
        );
        let mut b = INSTRUCTIONS;
        b[27] = 16;
        assert_eq!(
            Instructions::new_checked(&b).err(),
            Some(bad_instruction::BAD_LEN)
        );
    }
}
