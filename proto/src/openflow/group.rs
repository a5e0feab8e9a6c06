//! GROUP_MOD and group buckets (also the entries of GROUP_DESC replies).

use super::actions::Actions;
use super::body::MessageBody;
use super::error::{OfpError, bad_request, group_mod_failed};
use super::header::MsgType;
use super::ids::{GroupId, PortNo};
use super::list::{Item, List};
use super::wire::{Put, Reader};

/// Group-mod commands (OFPGC_*).
#[allow(missing_docs)]
pub mod command {
    pub const ADD: u16 = 0;
    pub const MODIFY: u16 = 1;
    pub const DELETE: u16 = 2;
}

/// Group types (ofp_group_type).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum GroupType {
    /// OFPGT_ALL: every bucket (multicast, flooding).
    All = 0,
    /// OFPGT_SELECT: one bucket (load balancing).
    Select = 1,
    /// OFPGT_INDIRECT: the single bucket.
    Indirect = 2,
    /// OFPGT_FF: the first live bucket (fast failover).
    FastFailover = 3,
}

impl GroupType {
    /// From the wire; `GROUP_MOD_FAILED/BAD_TYPE` for others.
    pub fn from_u8(v: u8) -> Result<Self, OfpError> {
        Ok(match v {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            3 => GroupType::FastFailover,
            _ => return Err(group_mod_failed::BAD_TYPE),
        })
    }
}

/// ofp_bucket.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Bucket<'a> {
    /// Relative weight (select groups).
    pub weight: u16,
    /// Port whose liveness gates the bucket (fast failover), or ANY.
    pub watch_port: PortNo,
    /// Group whose liveness gates the bucket (fast failover), or ANY.
    pub watch_group: GroupId,
    /// Actions.
    pub actions: Actions<'a>,
}

impl<'a> Item<'a> for Bucket<'a> {
    const BAD_LEN: OfpError = group_mod_failed::BAD_BUCKET;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, group_mod_failed::BAD_BUCKET);
        let len = usize::from(r.u16()?);
        if len < 16 || len > buf.len() {
            return Err(group_mod_failed::BAD_BUCKET);
        }
        let weight = r.u16()?;
        let watch_port = PortNo(r.u32()?);
        let watch_group = GroupId(r.u32()?);
        let b = Bucket {
            weight,
            watch_port,
            watch_group,
            actions: Actions::new_checked(&buf[16..len])?,
        };
        Ok((b, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u16(self.weight);
        out.put_u32(self.watch_port.0);
        out.put_u32(self.watch_group.0);
        out.put_zeros(4);
        self.actions.emit(out);
        out.finish_len(start, 0);
    }
}

/// OFPT_GROUP_MOD.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GroupMod<'a> {
    /// OFPGC_*.
    pub command: u16,
    /// Group type.
    pub group_type: GroupType,
    /// Group id.
    pub group_id: GroupId,
    /// Buckets.
    pub buckets: List<'a, Bucket<'a>>,
}

impl<'a> MessageBody<'a> for GroupMod<'a> {
    const TYPE: MsgType = MsgType::GROUP_MOD;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let command = r.u16()?;
        let group_type = r.u8()?;
        r.skip(1)?;
        let group_id = GroupId(r.u32()?);
        if command > command::DELETE {
            return Err(group_mod_failed::BAD_COMMAND);
        }
        Ok(GroupMod {
            command,
            group_type: GroupType::from_u8(group_type)?,
            group_id,
            buckets: List::new_checked(r.rest())?,
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command);
        out.put_u8(self.group_type as u8);
        out.put_u8(0);
        out.put_u32(self.group_id.0);
        self.buckets.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::actions::Action;
    use crate::openflow::header::Version;
    use crate::openflow::list::encode;
    use crate::openflow::message::{Message, emit, parse};

    #[test]
    fn select_group_build_parse_emit() {
        let a1 = encode(&[Action::Output {
            port: PortNo(1),
            max_len: 0,
        }]);
        let a2 = encode(&[Action::Output {
            port: PortNo(2),
            max_len: 0,
        }]);
        let buckets = encode(&[
            Bucket {
                weight: 10,
                watch_port: PortNo::ANY,
                watch_group: GroupId::ANY,
                actions: Actions::new_checked(&a1).expect("a1"),
            },
            Bucket {
                weight: 20,
                watch_port: PortNo::ANY,
                watch_group: GroupId::ANY,
                actions: Actions::new_checked(&a2).expect("a2"),
            },
        ]);
        let g = GroupMod {
            command: command::ADD,
            group_type: GroupType::Select,
            group_id: GroupId(1),
            buckets: List::new_checked(&buckets).expect("buckets"),
        };
        let mut out = Vec::new();
        emit(Version::V1_3, 1, &g, &mut out).expect("fits");
        assert_eq!(out.len(), 16 + 2 * 32);
        let (_, m) = parse(&out).expect("parses");
        assert_eq!(m, Message::GroupMod(g));
        let mut bad = out.clone();
        bad[10] = 9;
        assert_eq!(parse(&bad).err(), Some(group_mod_failed::BAD_TYPE));
        let mut bad = out.clone();
        bad[17] = 8;
        assert_eq!(parse(&bad).err(), Some(group_mod_failed::BAD_BUCKET));
    }
}
