//! FLOW_MOD to an API update; flows and their counters back to FLOW stats entries and
//! FLOW_REMOVED messages.
//!
//! Checks in Open vSwitch's order (lib/ofp-flow.c): the match, then the table (`ALL` only
//! for deletes: `FLOW_MOD_FAILED/BAD_TABLE_ID`), the out port, the instructions and their
//! consistency with the match, then the flags (`BAD_FLAGS` for bits OpenFlow 1.3 does not
//! define). A delete's instructions are not looked at (OpenFlow ignores them).
//!
//! Commands: ADD is an insert (an identical flow is replaced, as OpenFlow says);
//! MODIFY/MODIFY_STRICT a `FlowModify` of the flows the cookie, match (and for strict, the
//! priority) select, which changes nothing when none is selected (OpenFlow 1.3: a modify
//! never adds), keeping their cookies; DELETE/DELETE_STRICT a `FlowFilter` delete, with
//! out_port and out_group.

use crate::openflow::error::{OfpError, flow_mod_failed};
use crate::openflow::flow::{Command, FlowMod, flags};
use crate::openflow::ids::{GroupId, PortNo, TableId};
use crate::openflow::oxm::Match;
use crate::openflow::wire::Put;
use crate::v1::{self, entity, update};

use super::actions::port_to_api;
use super::{instructions, matches};

/// The OFPFF_* bits OpenFlow 1.3 defines.
const KNOWN_FLAGS: u16 = flags::SEND_FLOW_REM
    | flags::CHECK_OVERLAP
    | flags::RESET_COUNTS
    | flags::NO_PKT_COUNTS
    | flags::NO_BYT_COUNTS;

fn update(ty: update::Type, e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: ty as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

/// The out_port of a filter: `None` for ANY; `BAD_OUT_PORT` for numbers that are not ports.
pub fn filter_port(p: PortNo) -> Result<Option<v1::PortRef>, OfpError> {
    if p == PortNo::ANY {
        return Ok(None);
    }
    port_to_api(p).map(Some)
}

/// The flow selection of a modify, a delete or a stats request.
pub fn filter(
    table_id: TableId,
    cookie: u64,
    cookie_mask: u64,
    out_port: PortNo,
    out_group: GroupId,
    m: v1::Match,
) -> Result<v1::FlowFilter, OfpError> {
    Ok(v1::FlowFilter {
        table_id: (table_id != TableId::ALL).then_some(u32::from(table_id.0)),
        cookie: cookie & cookie_mask,
        cookie_mask,
        out_port: filter_port(out_port)?,
        out_group: (out_group != GroupId::ANY).then_some(out_group.0),
        r#match: Some(m),
        strict: false,
        priority: None,
    })
}

/// The API update a FLOW_MOD asks for.
pub fn to_api(fm: &FlowMod<'_>) -> Result<v1::Update, OfpError> {
    let m = matches::to_api(&fm.match_)?;
    let delete = matches!(fm.command, Command::Delete | Command::DeleteStrict);
    if fm.table_id == TableId::ALL && !delete {
        return Err(flow_mod_failed::BAD_TABLE_ID);
    }
    // out_port and out_group select flows to delete; ADD and MODIFY ignore them (Faucet
    // sends 0 there), as the specification says and Open vSwitch does.
    let out_port = if delete {
        filter_port(fm.out_port)?
    } else {
        None
    };
    let ins = if delete {
        Vec::new()
    } else {
        instructions::to_api(&fm.instructions, fm.table_id.0, &m)?
    };
    if fm.flags & !KNOWN_FLAGS != 0 {
        return Err(flow_mod_failed::BAD_FLAGS);
    }
    let strict = matches!(fm.command, Command::ModifyStrict | Command::DeleteStrict);
    let priority = strict.then_some(u32::from(fm.priority));
    Ok(match fm.command {
        Command::Add => update(
            update::Type::Insert,
            entity::Entity::Flow(v1::Flow {
                table_id: u32::from(fm.table_id.0),
                priority: u32::from(fm.priority),
                cookie: fm.cookie,
                idle_timeout: u32::from(fm.idle_timeout),
                hard_timeout: u32::from(fm.hard_timeout),
                flags: Some(v1::FlowFlags {
                    send_flow_rem: fm.flags & flags::SEND_FLOW_REM != 0,
                    check_overlap: fm.flags & flags::CHECK_OVERLAP != 0,
                    reset_counts: fm.flags & flags::RESET_COUNTS != 0,
                }),
                r#match: Some(m),
                instructions: ins,
                stats: None,
                importance: u32::from(fm.importance),
            }),
        ),
        Command::Modify | Command::ModifyStrict => update(
            update::Type::Modify,
            entity::Entity::FlowModify(v1::FlowModify {
                filter: Some(v1::FlowFilter {
                    table_id: Some(u32::from(fm.table_id.0)),
                    cookie: fm.cookie & fm.cookie_mask,
                    cookie_mask: fm.cookie_mask,
                    out_port: None,
                    out_group: None,
                    r#match: Some(m),
                    strict,
                    priority,
                }),
                instructions: ins,
                reset_counts: fm.flags & flags::RESET_COUNTS != 0,
                new_cookie: None,
            }),
        ),
        Command::Delete | Command::DeleteStrict => update(
            update::Type::Delete,
            entity::Entity::FlowFilter(v1::FlowFilter {
                table_id: (fm.table_id != TableId::ALL).then_some(u32::from(fm.table_id.0)),
                cookie: fm.cookie & fm.cookie_mask,
                cookie_mask: fm.cookie_mask,
                out_port,
                out_group: (fm.out_group != GroupId::ANY).then_some(fm.out_group.0),
                r#match: Some(m),
                strict,
                priority,
            }),
        ),
    })
}

fn split_ns(ns: u64) -> (u32, u32) {
    (
        (ns / 1_000_000_000).min(u64::from(u32::MAX)) as u32,
        (ns % 1_000_000_000) as u32,
    )
}

fn flags_of(f: &v1::Flow) -> u16 {
    if f.flags.is_some_and(|x| x.send_flow_rem) {
        flags::SEND_FLOW_REM
    } else {
        0
    }
}

/// Writes one OFPMP_FLOW reply entry for a flow read with its counters.
pub fn put_flow_stats(f: &v1::Flow, out: &mut Vec<u8>) {
    let s = f.stats.unwrap_or_default();
    let (sec, nsec) = split_ns(s.duration_ns);
    let start = out.len();
    out.put_u16(0);
    out.put_u8(f.table_id as u8);
    out.put_u8(0);
    out.put_u32(sec);
    out.put_u32(nsec);
    out.put_u16(f.priority as u16);
    out.put_u16(f.idle_timeout as u16);
    out.put_u16(f.hard_timeout as u16);
    out.put_u16(flags_of(f));
    out.put_zeros(4);
    out.put_u64(f.cookie);
    out.put_u64(s.packet_count);
    out.put_u64(s.byte_count);
    matches::emit(f.r#match.as_ref().unwrap_or(&v1::Match::default()), out);
    instructions::emit(&f.instructions, out);
    out.finish_len(start, 0);
}

/// The OFPRR_* reason of a flow-removed event.
pub fn removed_reason(r: i32) -> u8 {
    use crate::openflow::flow::removed_reason as rr;
    match v1::FlowRemovedReason::try_from(r) {
        Ok(v1::FlowRemovedReason::IdleTimeout) => rr::IDLE_TIMEOUT,
        Ok(v1::FlowRemovedReason::HardTimeout) => rr::HARD_TIMEOUT,
        Ok(v1::FlowRemovedReason::GroupDelete) => rr::GROUP_DELETE,
        Ok(v1::FlowRemovedReason::MeterDelete) => rr::METER_DELETE,
        Ok(v1::FlowRemovedReason::Delete) | Err(_) => rr::DELETE,
    }
}

/// Writes the body of a FLOW_REMOVED message (after the header) for a flow-removed event.
pub fn put_flow_removed(r: &v1::FlowRemoved, out: &mut Vec<u8>) {
    let (sec, nsec) = split_ns(r.duration_ns);
    out.put_u64(r.cookie);
    out.put_u16(r.priority as u16);
    out.put_u8(removed_reason(r.reason));
    out.put_u8(r.table_id as u8);
    out.put_u32(sec);
    out.put_u32(nsec);
    out.put_u16(r.idle_timeout as u16);
    out.put_u16(r.hard_timeout as u16);
    out.put_u64(r.packet_count);
    out.put_u64(r.byte_count);
    matches::emit(r.r#match.as_ref().unwrap_or(&v1::Match::default()), out);
}

/// The match of a flow stats or aggregate request in the API's form.
pub fn stats_filter(
    table_id: TableId,
    cookie: u64,
    cookie_mask: u64,
    out_port: PortNo,
    out_group: GroupId,
    m: &Match<'_>,
) -> Result<v1::FlowFilter, OfpError> {
    filter(
        table_id,
        cookie,
        cookie_mask,
        out_port,
        out_group,
        matches::to_api(m)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::body::MessageBody;
    use crate::openflow::flow::FlowMod;
    use crate::openflow::instructions::Instructions;
    use crate::openflow::list::Item;
    use crate::openflow::stats::FlowStats;

    fn flow_mod(command: Command, table: u8, flags: u16) -> Vec<u8> {
        flow_mod_out(command, table, flags, PortNo::ANY)
    }

    fn flow_mod_out(command: Command, table: u8, flags: u16, out_port: PortNo) -> Vec<u8> {
        let mut m = Vec::new();
        crate::openflow::oxm::MatchBuilder::new(&mut m).finish();
        let fm = FlowMod {
            cookie: 0x10,
            cookie_mask: 0xff,
            table_id: TableId(table),
            command,
            idle_timeout: 5,
            hard_timeout: 0,
            priority: 100,
            buffer_id: crate::openflow::ids::BufferId::NO_BUFFER,
            out_port,
            out_group: GroupId::ANY,
            flags,
            importance: 0,
            match_: Match::all(),
            instructions: Instructions::default(),
        };
        let mut out = Vec::new();
        fm.emit_body(&mut out);
        out
    }

    fn parse(body: &[u8]) -> Result<v1::Update, OfpError> {
        to_api(&FlowMod::parse(body).expect("parses"))
    }

    #[test]
    fn commands_become_updates() {
        let add = parse(&flow_mod(Command::Add, 0, flags::SEND_FLOW_REM)).expect("add");
        assert_eq!(add.r#type, update::Type::Insert as i32);
        let Some(entity::Entity::Flow(f)) = add.entity.and_then(|e| e.entity) else {
            panic!("not a flow");
        };
        assert_eq!((f.priority, f.cookie, f.idle_timeout), (100, 0x10, 5));
        assert!(f.flags.is_some_and(|x| x.send_flow_rem));
        let del = parse(&flow_mod(Command::DeleteStrict, 255, 0)).expect("delete");
        let Some(entity::Entity::FlowFilter(ff)) = del.entity.and_then(|e| e.entity) else {
            panic!("not a filter");
        };
        assert_eq!(
            (ff.table_id, ff.strict, ff.priority),
            (None, true, Some(100))
        );
        assert_eq!((ff.cookie, ff.cookie_mask), (0x10, 0xff));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse(&flow_mod(Command::Add, 255, 0)),
            Err(flow_mod_failed::BAD_TABLE_ID)
        );
        assert_eq!(
            parse(&flow_mod(Command::Add, 0, 1 << 7)),
            Err(flow_mod_failed::BAD_FLAGS)
        );
        // out_port only selects flows to delete: an ADD with 0 there (Faucet's) is fine, a
        // delete that names port 0 is not.
        assert!(parse(&flow_mod_out(Command::Add, 0, 0, PortNo(0))).is_ok());
        assert_eq!(
            parse(&flow_mod_out(Command::Delete, 0, 0, PortNo(0))),
            Err(crate::openflow::error::bad_action::BAD_OUT_PORT)
        );
    }

    #[test]
    fn flow_stats_entries_parse_back() {
        let f = crate::flow_text::parse_flow(
            "table=2,priority=7,cookie=0x5,ip,nw_dst=10.0.0.0/8,actions=output:3",
        )
        .expect("flow");
        let mut out = Vec::new();
        put_flow_stats(&f, &mut out);
        let (fs, n) = FlowStats::parse_item(&out).expect("entry");
        assert_eq!(n, out.len());
        assert_eq!((fs.table_id, fs.priority, fs.cookie), (TableId(2), 7, 5));
        assert_eq!(
            matches::to_api(&fs.match_).expect("match"),
            f.r#match.expect("match")
        );
    }
}
