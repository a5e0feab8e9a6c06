//! OFPMP_TABLE_FEATURES entries and their properties, and a builder for the reply a switch
//! sends: per table the eight properties OpenFlow 1.3 requires (instructions, next tables,
//! write and apply actions, match, wildcards, write and apply set-field).
//!
//! Entry: length, table_id, 5 pad, name[32], metadata_match, metadata_write, config,
//! max_entries, properties. Property: type, length (without padding), body, padding to 8.
//! Instruction and action ids are `type, len` (4 bytes, or longer for experimenters);
//! OXM ids are bare headers ([`OxmId`]); next tables are table ids, one byte each.

use super::error::{OfpError, table_features_failed};
use super::list::{Item, List};
use super::oxm::OxmId;
use super::wire::{Put, Reader, c_str, put_c_str};

/// Bytes of a table name (OFP_MAX_TABLE_NAME_LEN).
pub const TABLE_NAME_LEN: usize = 32;

/// Property types (ofp_table_feature_prop_type).
#[allow(missing_docs)]
pub mod prop {
    pub const INSTRUCTIONS: u16 = 0;
    pub const INSTRUCTIONS_MISS: u16 = 1;
    pub const NEXT_TABLES: u16 = 2;
    pub const NEXT_TABLES_MISS: u16 = 3;
    pub const WRITE_ACTIONS: u16 = 4;
    pub const WRITE_ACTIONS_MISS: u16 = 5;
    pub const APPLY_ACTIONS: u16 = 6;
    pub const APPLY_ACTIONS_MISS: u16 = 7;
    pub const MATCH: u16 = 8;
    pub const WILDCARDS: u16 = 10;
    pub const WRITE_SETFIELD: u16 = 12;
    pub const WRITE_SETFIELD_MISS: u16 = 13;
    pub const APPLY_SETFIELD: u16 = 14;
    pub const APPLY_SETFIELD_MISS: u16 = 15;
    pub const EXPERIMENTER: u16 = 0xfffe;
    pub const EXPERIMENTER_MISS: u16 = 0xffff;
}

const BAD_LEN: OfpError = table_features_failed::BAD_LEN;

/// An instruction or action id: its type and, for experimenters, the bytes after the
/// 4-byte type/length header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TypeId<'a> {
    /// Instruction or action type.
    pub kind: u16,
    /// Experimenter id and data (empty for standard types).
    pub data: &'a [u8],
}

impl<'a> TypeId<'a> {
    /// A standard type.
    pub const fn of(kind: u16) -> Self {
        TypeId { kind, data: &[] }
    }
}

impl<'a> Item<'a> for TypeId<'a> {
    const BAD_LEN: OfpError = BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, BAD_LEN);
        let kind = r.u16()?;
        let len = usize::from(r.u16()?);
        let data = r.bytes(len.checked_sub(4).ok_or(BAD_LEN)?)?;
        Ok((TypeId { kind, data }, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        out.put_u16(self.kind);
        out.put_u16((4 + self.data.len()) as u16);
        out.extend_from_slice(self.data);
    }
}

/// A property's content.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PropBody<'a> {
    /// INSTRUCTIONS(_MISS).
    Instructions(List<'a, TypeId<'a>>),
    /// NEXT_TABLES(_MISS): table ids.
    NextTables(&'a [u8]),
    /// WRITE/APPLY_ACTIONS(_MISS).
    Actions(List<'a, TypeId<'a>>),
    /// MATCH, WILDCARDS, WRITE/APPLY_SETFIELD(_MISS).
    Oxms(List<'a, OxmId>),
    /// EXPERIMENTER(_MISS).
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Data.
        data: &'a [u8],
    },
}

/// One table feature property.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TableFeatureProp<'a> {
    /// Property type (see [`prop`]).
    pub kind: u16,
    /// Content.
    pub body: PropBody<'a>,
}

impl<'a> Item<'a> for TableFeatureProp<'a> {
    const BAD_LEN: OfpError = BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, BAD_LEN);
        let kind = r.u16()?;
        let len = usize::from(r.u16()?);
        let b = r.bytes(len.checked_sub(4).ok_or(BAD_LEN)?)?;
        let padded = len.div_ceil(8) * 8;
        if padded > buf.len() {
            return Err(BAD_LEN);
        }
        let body = match kind {
            prop::INSTRUCTIONS | prop::INSTRUCTIONS_MISS => {
                PropBody::Instructions(List::new_checked(b)?)
            }
            prop::NEXT_TABLES | prop::NEXT_TABLES_MISS => PropBody::NextTables(b),
            prop::WRITE_ACTIONS..=prop::APPLY_ACTIONS_MISS => {
                PropBody::Actions(List::new_checked(b)?)
            }
            prop::MATCH
            | prop::WILDCARDS
            | prop::WRITE_SETFIELD
            | prop::WRITE_SETFIELD_MISS
            | prop::APPLY_SETFIELD
            | prop::APPLY_SETFIELD_MISS => {
                PropBody::Oxms(List::new_checked(b).map_err(|_| BAD_LEN)?)
            }
            prop::EXPERIMENTER | prop::EXPERIMENTER_MISS => {
                let mut e = Reader::new(b, BAD_LEN);
                PropBody::Experimenter {
                    experimenter: e.u32()?,
                    exp_type: e.u32()?,
                    data: e.rest(),
                }
            }
            _ => return Err(table_features_failed::BAD_TYPE),
        };
        Ok((TableFeatureProp { kind, body }, padded))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.kind);
        out.put_u16(0);
        match self.body {
            PropBody::Instructions(l) | PropBody::Actions(l) => l.emit(out),
            PropBody::NextTables(t) => out.extend_from_slice(t),
            PropBody::Oxms(l) => l.emit(out),
            PropBody::Experimenter {
                experimenter,
                exp_type,
                data,
            } => {
                out.put_u32(experimenter);
                out.put_u32(exp_type);
                out.extend_from_slice(data);
            }
        }
        out.finish_padded(start, 2);
    }
}

/// One table's features.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TableFeatures<'a> {
    /// Table.
    pub table_id: u8,
    /// Name, NUL-padded.
    pub name: &'a [u8],
    /// Metadata bits the table can match.
    pub metadata_match: u64,
    /// Metadata bits the table can write.
    pub metadata_write: u64,
    /// OFPTC_* (deprecated in 1.3).
    pub config: u32,
    /// Most flows.
    pub max_entries: u32,
    /// Properties.
    pub properties: List<'a, TableFeatureProp<'a>>,
}

impl<'a> TableFeatures<'a> {
    /// The name without padding.
    pub fn name(&self) -> &'a [u8] {
        c_str(self.name)
    }
}

impl<'a> Item<'a> for TableFeatures<'a> {
    const BAD_LEN: OfpError = BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, BAD_LEN);
        let len = usize::from(r.u16()?);
        if len < 64 || len > buf.len() {
            return Err(BAD_LEN);
        }
        let table_id = r.u8()?;
        r.skip(5)?;
        let t = TableFeatures {
            table_id,
            name: r.bytes(TABLE_NAME_LEN)?,
            metadata_match: r.u64()?,
            metadata_write: r.u64()?,
            config: r.u32()?,
            max_entries: r.u32()?,
            properties: List::new_checked(&buf[64..len])?,
        };
        Ok((t, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id);
        out.put_zeros(5);
        let k = self.name.len().min(TABLE_NAME_LEN);
        out.extend_from_slice(&self.name[..k]);
        out.put_zeros(TABLE_NAME_LEN - k);
        out.put_u64(self.metadata_match);
        out.put_u64(self.metadata_write);
        out.put_u32(self.config);
        out.put_u32(self.max_entries);
        self.properties.emit(out);
        out.finish_len(start, 0);
    }
}

/// What a switch reports for one table: the eight required properties from plain slices.
/// `emit` writes a whole table features entry (use it with
/// [`super::multipart::ReplyWriter::push_with`]).
#[derive(Copy, Clone, Debug)]
pub struct TableFeaturesBuilder<'s> {
    /// Table.
    pub table_id: u8,
    /// Name (cut to 31 bytes).
    pub name: &'s str,
    /// Metadata bits matchable.
    pub metadata_match: u64,
    /// Metadata bits writable.
    pub metadata_write: u64,
    /// Most flows.
    pub max_entries: u32,
    /// Instruction types supported (OFPIT_*).
    pub instructions: &'s [u16],
    /// Tables goto-table may name.
    pub next_tables: &'s [u8],
    /// Action types in write-actions.
    pub write_actions: &'s [TypeId<'s>],
    /// Action types in apply-actions.
    pub apply_actions: &'s [TypeId<'s>],
    /// Fields matchable.
    pub match_fields: &'s [OxmId],
    /// Fields that may be wildcarded.
    pub wildcards: &'s [OxmId],
    /// Fields set-field may write in write-actions.
    pub write_setfield: &'s [OxmId],
    /// Fields set-field may write in apply-actions.
    pub apply_setfield: &'s [OxmId],
}

impl TableFeaturesBuilder<'_> {
    /// Writes the table features entry with its eight properties.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id);
        out.put_zeros(5);
        put_c_str(out, self.name.as_bytes(), TABLE_NAME_LEN);
        out.put_u64(self.metadata_match);
        out.put_u64(self.metadata_write);
        out.put_u32(0);
        out.put_u32(self.max_entries);
        let prop = |out: &mut Vec<u8>, kind: u16, f: &dyn Fn(&mut Vec<u8>)| {
            let p = out.len();
            out.put_u16(kind);
            out.put_u16(0);
            f(out);
            out.finish_padded(p, 2);
        };
        prop(out, prop::INSTRUCTIONS, &|o| {
            for &k in self.instructions {
                TypeId::of(k).emit_item(o);
            }
        });
        prop(out, prop::NEXT_TABLES, &|o| {
            o.extend_from_slice(self.next_tables)
        });
        for (kind, ids) in [
            (prop::WRITE_ACTIONS, self.write_actions),
            (prop::APPLY_ACTIONS, self.apply_actions),
        ] {
            prop(out, kind, &|o| ids.iter().for_each(|i| i.emit_item(o)));
        }
        for (kind, ids) in [
            (prop::MATCH, self.match_fields),
            (prop::WILDCARDS, self.wildcards),
            (prop::WRITE_SETFIELD, self.write_setfield),
            (prop::APPLY_SETFIELD, self.apply_setfield),
        ] {
            prop(out, kind, &|o| ids.iter().for_each(|i| i.emit(o)));
        }
        out.finish_len(start, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::fields::Field;
    use crate::openflow::instructions::kind as it;

    #[test]
    fn builder_emits_eight_required_properties() {
        let fields = [OxmId::of(Field::InPort), OxmId::of(Field::EthDst)];
        let acts = [TypeId::of(0), TypeId::of(25)];
        let b = TableFeaturesBuilder {
            table_id: 0,
            name: "table0",
            metadata_match: u64::MAX,
            metadata_write: u64::MAX,
            max_entries: 1_000_000,
            instructions: &[it::GOTO_TABLE, it::APPLY_ACTIONS],
            next_tables: &[1, 2, 3],
            write_actions: &acts,
            apply_actions: &acts,
            match_fields: &fields,
            wildcards: &fields,
            write_setfield: &fields[1..],
            apply_setfield: &fields[1..],
        };
        let mut out = Vec::new();
        b.emit(&mut out);
        assert_eq!(out.len() % 8, 0);
        let (t, n) = TableFeatures::parse_item(&out).expect("parses");
        assert_eq!(n, out.len());
        assert_eq!(t.name(), b"table0");
        let kinds: Vec<u16> = t.properties.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [0, 2, 4, 6, 8, 10, 12, 14]);
        let mut again = Vec::new();
        t.emit_item(&mut again);
        assert_eq!(again, out);
    }
}
