//! The OpenFlow error for a change the switch refused.
//!
//! The mapping layer (`proto::ofapi`) refuses what the wire itself gets wrong with Open
//! vSwitch's codes; what is left is what only the switch can judge (a meter or group that
//! does not exist, an overlap, a table or port the datapath does not have, the store
//! refusing a commit). Those come back from the switch as an [`ApiError`] naming the field
//! at fault; this table turns the code and field into the error OVS sends for the same
//! condition. Rows are tried in order; the first whose code matches and whose needle
//! appears in the field wins; each kind of message has a last resort.

use proto::openflow::error::{
    OfpError, bad_action, bad_instruction, bad_match, bad_request, flow_mod_failed,
    group_mod_failed, meter_mod_failed,
};
use tonic::Code;

use crate::error::ApiError;

/// What kind of message the refused change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// FLOW_MOD.
    Flow,
    /// GROUP_MOD.
    Group,
    /// METER_MOD.
    Meter,
    /// PACKET_OUT.
    PacketOut,
}

/// One row: kind (`None`: any), code (`None`: any), needle in the field path, error.
type Row = (Option<Kind>, Option<Code>, &'static str, OfpError);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Flows.
    (Some(Kind::Flow), Some(Code::AlreadyExists), "match", flow_mod_failed::OVERLAP),
    (Some(Kind::Flow), Some(Code::NotFound), "meter", meter_mod_failed::INVALID_METER),
    (Some(Kind::Flow), None, ".meter", meter_mod_failed::INVALID_METER),
    (Some(Kind::Flow), None, "goto_table", bad_instruction::BAD_TABLE_ID),
    (Some(Kind::Flow), None, "table_id", flow_mod_failed::BAD_TABLE_ID),
    (Some(Kind::Flow), None, "write_metadata", bad_instruction::UNSUP_METADATA),
    (Some(Kind::Flow), None, "match", bad_match::BAD_VALUE),
    // Groups.
    (Some(Kind::Group), Some(Code::AlreadyExists), "group.id", group_mod_failed::GROUP_EXISTS),
    (Some(Kind::Group), Some(Code::NotFound), "actions.group", bad_action::BAD_OUT_GROUP),
    (Some(Kind::Group), Some(Code::NotFound), "group.id", group_mod_failed::UNKNOWN_GROUP),
    (Some(Kind::Group), None, "group.type", group_mod_failed::BAD_TYPE),
    (Some(Kind::Group), None, "group.id", group_mod_failed::INVALID_GROUP),
    // Meters.
    (Some(Kind::Meter), Some(Code::AlreadyExists), "meter.id", meter_mod_failed::METER_EXISTS),
    (Some(Kind::Meter), Some(Code::NotFound), "meter.id", meter_mod_failed::UNKNOWN_METER),
    (Some(Kind::Meter), None, "meter.id", meter_mod_failed::INVALID_METER),
    (Some(Kind::Meter), None, "meter.unit", meter_mod_failed::BAD_FLAGS),
    (Some(Kind::Meter), None, ".rate", meter_mod_failed::BAD_RATE),
    (Some(Kind::Meter), None, ".burst", meter_mod_failed::BAD_BURST),
    (Some(Kind::Meter), None, "bands", meter_mod_failed::BAD_BAND),
    // Packet-outs.
    (Some(Kind::PacketOut), None, "in_port", bad_request::BAD_PORT),
    (Some(Kind::PacketOut), None, "data", bad_request::BAD_PACKET),
    // Actions, wherever they are.
    (None, Some(Code::NotFound), ".group", bad_action::BAD_OUT_GROUP),
    (None, None, "output", bad_action::BAD_OUT_PORT),
    (None, None, "out_port", bad_action::BAD_OUT_PORT),
    (None, None, "push_vlan", bad_action::BAD_ARGUMENT),
    (None, None, "set_field", bad_action::BAD_SET_ARGUMENT),
    (None, None, "set_queue", bad_action::BAD_QUEUE),
    (None, None, "actions", bad_action::BAD_ARGUMENT),
    (Some(Kind::Group), None, "buckets", group_mod_failed::BAD_BUCKET),
];

/// The error OVS sends when it cannot apply a change of this kind for another reason.
fn last_resort(kind: Kind) -> OfpError {
    match kind {
        Kind::Flow => flow_mod_failed::UNKNOWN,
        Kind::Group => group_mod_failed::BAD_BUCKET,
        Kind::Meter => meter_mod_failed::UNKNOWN,
        Kind::PacketOut => bad_request::EPERM,
    }
}

/// The OpenFlow error for the switch's refusal `e` of a change of `kind`.
pub fn of_error(kind: Kind, e: &ApiError) -> OfpError {
    ROWS.iter()
        .find(|(k, c, needle, _)| {
            k.is_none_or(|k| k == kind) && c.is_none_or(|c| c == e.code) && e.field.contains(needle)
        })
        .map_or_else(|| last_resort(kind), |r| r.3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_refusals_ovs_knows() {
        let e = |code, field: &str| ApiError {
            code,
            field: field.into(),
            message: String::new(),
        };
        assert_eq!(
            of_error(Kind::Flow, &e(Code::AlreadyExists, "updates[0].flow.match")),
            flow_mod_failed::OVERLAP
        );
        assert_eq!(
            of_error(
                Kind::Flow,
                &e(Code::NotFound, "updates[3].flow.instructions.meter")
            ),
            meter_mod_failed::INVALID_METER
        );
        assert_eq!(
            of_error(
                Kind::Flow,
                &e(
                    Code::NotFound,
                    "updates[0].flow.instructions.apply_actions.group"
                )
            ),
            bad_action::BAD_OUT_GROUP
        );
        assert_eq!(
            of_error(
                Kind::Flow,
                &e(
                    Code::InvalidArgument,
                    "updates[0].flow.instructions[1].apply_actions.actions[0].output.port"
                )
            ),
            bad_action::BAD_OUT_PORT
        );
        assert_eq!(
            of_error(Kind::Group, &e(Code::AlreadyExists, "updates[0].group.id")),
            group_mod_failed::GROUP_EXISTS
        );
        assert_eq!(
            of_error(
                Kind::Group,
                &e(Code::InvalidArgument, "updates[0].group.type")
            ),
            group_mod_failed::BAD_TYPE
        );
        assert_eq!(
            of_error(Kind::Meter, &e(Code::NotFound, "updates[0].meter.id")),
            meter_mod_failed::UNKNOWN_METER
        );
        assert_eq!(
            of_error(Kind::Flow, &e(Code::Unavailable, "")),
            flow_mod_failed::UNKNOWN
        );
    }
}
