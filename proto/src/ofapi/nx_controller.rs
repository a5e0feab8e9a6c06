//! Open vSwitch's `controller(...)` on the wire: NXAST_CONTROLLER (max_len, controller id,
//! reason) and NXAST_CONTROLLER2 (the same as properties, plus userdata), to and from the
//! API's `ControllerAction` (a plain one is an output to CONTROLLER). `pause` and
//! `meter_id` properties are refused (`BAD_ARGUMENT`): the switch has neither.

use crate::openflow::actions::Action;
use crate::openflow::error::{OfpError, bad_action};
use crate::openflow::list::{Item, List, Prop, encode};
use crate::openflow::nx_actions::{NxAction, controller2};
use crate::openflow::packet::reason;
use crate::v1::{self, ReservedPort, action, port_ref};

/// OFPR_* on the wire to the API's reason (`None`: ACTION, the default).
fn reason_to_api(r: u8) -> Result<Option<i32>, OfpError> {
    Ok(Some(match r {
        reason::ACTION => return Ok(None),
        reason::NO_MATCH => v1::PacketInReason::NoMatch,
        reason::INVALID_TTL => v1::PacketInReason::InvalidTtl,
        3 => v1::PacketInReason::ActionSet,
        4 => v1::PacketInReason::Group,
        5 => v1::PacketInReason::PacketOut,
        _ => return Err(bad_action::BAD_ARGUMENT),
    } as i32))
}

fn reason_to_wire(r: Option<i32>) -> u8 {
    match r.map(v1::PacketInReason::try_from) {
        Some(Ok(v1::PacketInReason::NoMatch)) => reason::NO_MATCH,
        Some(Ok(v1::PacketInReason::InvalidTtl)) => reason::INVALID_TTL,
        Some(Ok(v1::PacketInReason::ActionSet)) => 3,
        Some(Ok(v1::PacketInReason::Group)) => 4,
        Some(Ok(v1::PacketInReason::PacketOut)) => 5,
        _ => reason::ACTION,
    }
}

/// The API form: an output to CONTROLLER when only `max_len` is given.
fn to_api(c: v1::ControllerAction) -> action::Action {
    if c.reason.is_none() && c.id == 0 && c.userdata.is_empty() {
        return action::Action::Output(v1::Output {
            port: Some(v1::PortRef {
                port: Some(port_ref::Port::Reserved(ReservedPort::Controller as i32)),
            }),
            max_len: c.max_len,
        });
    }
    action::Action::Controller(c)
}

fn max_len_to_api(n: u16) -> Option<u32> {
    (n != u16::MAX).then_some(u32::from(n))
}

/// NXAST_CONTROLLER.
pub(super) fn controller_to_api(max_len: u16, id: u16, r: u8) -> Result<action::Action, OfpError> {
    Ok(to_api(v1::ControllerAction {
        max_len: max_len_to_api(max_len),
        reason: reason_to_api(r)?,
        id: u32::from(id),
        userdata: Vec::new(),
    }))
}

/// NXAST_CONTROLLER2's properties.
pub(super) fn controller2_to_api(props: List<'_, Prop<'_>>) -> Result<action::Action, OfpError> {
    let mut c = v1::ControllerAction::default();
    let be16 = |v: &[u8]| -> Result<u16, OfpError> {
        match v {
            [a, b] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(bad_action::BAD_LEN),
        }
    };
    for p in props.iter() {
        match p.kind {
            controller2::MAX_LEN => c.max_len = max_len_to_api(be16(p.value)?),
            controller2::CONTROLLER_ID => c.id = u32::from(be16(p.value)?),
            controller2::REASON => match p.value {
                [r] => c.reason = reason_to_api(*r)?,
                _ => return Err(bad_action::BAD_LEN),
            },
            controller2::USERDATA => c.userdata = p.value.to_vec(),
            _ => return Err(bad_action::BAD_ARGUMENT),
        }
    }
    Ok(to_api(c))
}

/// Writes a `ControllerAction` as Open vSwitch does: NXAST_CONTROLLER2 when it has
/// userdata, NXAST_CONTROLLER otherwise.
pub(super) fn emit(c: &v1::ControllerAction, out: &mut Vec<u8>) {
    let max_len = c
        .max_len
        .map_or(u16::MAX, |n| n.min(u32::from(u16::MAX)) as u16);
    let id = c.id.min(u32::from(u16::MAX)) as u16;
    let r = reason_to_wire(c.reason);
    if c.userdata.is_empty() {
        Action::Nx(NxAction::Controller {
            max_len,
            controller_id: id,
            reason: r,
        })
        .emit_item(out);
        return;
    }
    let (ml, idb, rb) = (max_len.to_be_bytes(), id.to_be_bytes(), [r]);
    let mut props = Vec::new();
    if max_len != u16::MAX {
        props.push(Prop {
            kind: controller2::MAX_LEN,
            value: &ml,
        });
    }
    if id != 0 {
        props.push(Prop {
            kind: controller2::CONTROLLER_ID,
            value: &idb,
        });
    }
    if r != reason::ACTION {
        props.push(Prop {
            kind: controller2::REASON,
            value: &rb,
        });
    }
    props.push(Prop {
        kind: controller2::USERDATA,
        value: &c.userdata,
    });
    let bytes = encode(&props);
    if let Ok(list) = List::new_checked(&bytes) {
        Action::Nx(NxAction::Controller2(list)).emit_item(out);
    }
}
