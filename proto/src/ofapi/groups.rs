//! GROUP_MOD to an API update, and groups back to GROUP_DESC entries.
//!
//! Checks as Open vSwitch's `ofputil_decode_group_mod` makes them: an indirect group has
//! exactly one bucket, only select buckets carry a weight, all/indirect buckets watch
//! nothing (`WATCH_UNSUPPORTED`), fast-failover buckets watch something, a delete carries
//! no bucket (`INVALID_GROUP`), a group id above `MAX` is `INVALID_GROUP` except
//! `OFPG_ALL` in a delete (which the channel expands to every group).

use crate::openflow::error::{OfpError, group_mod_failed};
use crate::openflow::group::{Bucket, GroupMod, GroupType, command};
use crate::openflow::ids::{GroupId, PortNo};
use crate::openflow::wire::Put;
use crate::v1::{self, entity, update};

use super::actions::{self, Place, port_to_api, port_to_wire};

/// What a GROUP_MOD asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupChange {
    /// One update.
    One(v1::Update),
    /// Delete every group (OFPGC_DELETE of OFPG_ALL).
    DeleteAll,
}

fn group_type(t: GroupType) -> v1::GroupType {
    match t {
        GroupType::All => v1::GroupType::All,
        GroupType::Select => v1::GroupType::Select,
        GroupType::Indirect => v1::GroupType::Indirect,
        GroupType::FastFailover => v1::GroupType::FastFailover,
    }
}

fn wire_type(t: i32) -> GroupType {
    match v1::GroupType::try_from(t) {
        Ok(v1::GroupType::Select) => GroupType::Select,
        Ok(v1::GroupType::Indirect) => GroupType::Indirect,
        Ok(v1::GroupType::FastFailover) => GroupType::FastFailover,
        _ => GroupType::All,
    }
}

fn bucket(b: &Bucket<'_>, t: GroupType) -> Result<v1::Bucket, OfpError> {
    let live = b.watch_port != PortNo::ANY || b.watch_group != GroupId::ANY;
    if b.weight != 0 && t != GroupType::Select {
        return Err(group_mod_failed::INVALID_GROUP);
    }
    match t {
        GroupType::All | GroupType::Indirect if live => {
            return Err(group_mod_failed::WATCH_UNSUPPORTED);
        }
        GroupType::FastFailover if !live => return Err(group_mod_failed::INVALID_GROUP),
        _ => {}
    }
    let watch_port = if b.watch_port == PortNo::ANY {
        None
    } else {
        Some(port_to_api(b.watch_port).map_err(|_| group_mod_failed::BAD_WATCH)?)
    };
    Ok(v1::Bucket {
        weight: u32::from(b.weight),
        watch_port,
        watch_group: (b.watch_group != GroupId::ANY).then_some(b.watch_group.0),
        actions: actions::to_api(&b.actions, Place::Bucket)?,
        // OpenFlow 1.3 buckets have no id: the switch gives each the lowest free one.
        bucket_id: None,
    })
}

/// The API change a GROUP_MOD asks for.
pub fn to_api(gm: &GroupMod<'_>) -> Result<GroupChange, OfpError> {
    let t = gm.group_type;
    if t == GroupType::Indirect && gm.command != command::DELETE && gm.buckets.count() != 1 {
        return Err(group_mod_failed::INVALID_GROUP);
    }
    if gm.command == command::DELETE {
        if !gm.buckets.is_empty() {
            return Err(group_mod_failed::INVALID_GROUP);
        }
        if gm.group_id == GroupId::ALL {
            return Ok(GroupChange::DeleteAll);
        }
    }
    if gm.group_id.0 > GroupId::MAX.0 {
        return Err(group_mod_failed::INVALID_GROUP);
    }
    let mut buckets = Vec::new();
    for b in gm.buckets.iter() {
        buckets.push(bucket(&b, t)?);
    }
    let g = v1::Group {
        id: gm.group_id.0,
        r#type: group_type(t) as i32,
        buckets,
        // OpenFlow 1.3 has no selection method: the switch's default.
        ..Default::default()
    };
    let ty = match gm.command {
        command::ADD => update::Type::Insert,
        command::MODIFY => update::Type::Modify,
        _ => update::Type::Delete,
    };
    Ok(GroupChange::One(v1::Update {
        r#type: ty as i32,
        entity: Some(v1::Entity {
            entity: Some(entity::Entity::Group(g)),
        }),
    }))
}

/// Writes one bucket.
fn put_bucket(b: &v1::Bucket, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u16(0);
    out.put_u16(b.weight as u16);
    out.put_u32(if b.watch_port.is_some() {
        port_to_wire(b.watch_port.as_ref()).0
    } else {
        PortNo::ANY.0
    });
    out.put_u32(b.watch_group.unwrap_or(GroupId::ANY.0));
    out.put_zeros(4);
    actions::emit(&b.actions, out);
    out.finish_len(start, 0);
}

/// Writes one OFPMP_GROUP_DESC reply entry.
pub fn put_group_desc(g: &v1::Group, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u16(0);
    out.put_u8(wire_type(g.r#type) as u8);
    out.put_u8(0);
    out.put_u32(g.id);
    for b in &g.buckets {
        put_bucket(b, out);
    }
    out.finish_len(start, 0);
}

/// Writes one OFPMP_GROUP reply entry.
pub fn put_group_stats(s: &v1::GroupStats, n_buckets: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u16(0);
    out.put_zeros(2);
    out.put_u32(s.group_id);
    out.put_u32(s.ref_count);
    out.put_zeros(4);
    out.put_u64(s.packet_count);
    out.put_u64(s.byte_count);
    out.put_u32((s.duration_ns / 1_000_000_000) as u32);
    out.put_u32((s.duration_ns % 1_000_000_000) as u32);
    for i in 0..n_buckets.max(s.buckets.len()) {
        let b = s.buckets.get(i).copied().unwrap_or_default();
        out.put_u64(b.packet_count);
        out.put_u64(b.byte_count);
    }
    out.finish_len(start, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::actions::{Action, Actions};
    use crate::openflow::body::MessageBody;
    use crate::openflow::list::Item;
    use crate::openflow::list::{List, encode};
    use crate::openflow::stats::GroupDesc;

    fn group_mod(command: u16, t: GroupType, id: u32, buckets: &[Bucket<'_>]) -> Vec<u8> {
        let b = encode(buckets);
        let gm = GroupMod {
            command,
            group_type: t,
            group_id: GroupId(id),
            buckets: List::new_checked(&b).expect("buckets"),
        };
        let mut out = Vec::new();
        gm.emit_body(&mut out);
        out
    }

    fn parse(body: &[u8]) -> Result<GroupChange, OfpError> {
        to_api(&GroupMod::parse(body).expect("parses"))
    }

    #[test]
    fn groups_map_and_print_back() {
        let acts = encode(&[Action::Output {
            port: PortNo(2),
            max_len: 0,
        }]);
        let b = Bucket {
            weight: 0,
            watch_port: PortNo::ANY,
            watch_group: GroupId::ANY,
            actions: Actions::new_checked(&acts).expect("actions"),
        };
        let body = group_mod(command::ADD, GroupType::All, 5, &[b, b]);
        let GroupChange::One(u) = parse(&body).expect("add") else {
            panic!("one update");
        };
        let Some(entity::Entity::Group(g)) = u.entity.and_then(|e| e.entity) else {
            panic!("a group");
        };
        assert_eq!((g.id, g.buckets.len()), (5, 2));
        let mut out = Vec::new();
        put_group_desc(&g, &mut out);
        let (d, _) = GroupDesc::parse_item(&out).expect("desc");
        assert_eq!(
            (d.group_id, d.group_type, d.buckets.count()),
            (GroupId(5), GroupType::All, 2)
        );
        assert_eq!(d.buckets.iter().next(), Some(b));
    }

    #[test]
    fn refusals() {
        let acts = encode(&[Action::PopVlan]);
        let b = Bucket {
            weight: 3,
            watch_port: PortNo::ANY,
            watch_group: GroupId::ANY,
            actions: Actions::new_checked(&acts).expect("actions"),
        };
        assert_eq!(
            parse(&group_mod(command::ADD, GroupType::All, 1, &[b])),
            Err(group_mod_failed::INVALID_GROUP)
        );
        assert_eq!(
            parse(&group_mod(command::ADD, GroupType::Indirect, 1, &[])),
            Err(group_mod_failed::INVALID_GROUP)
        );
        assert_eq!(
            parse(&group_mod(
                command::DELETE,
                GroupType::All,
                GroupId::ALL.0,
                &[]
            )),
            Ok(GroupChange::DeleteAll)
        );
        assert_eq!(
            parse(&group_mod(command::ADD, GroupType::All, 0xffff_ff01, &[])),
            Err(group_mod_failed::INVALID_GROUP)
        );
    }
}
