//! OpenFlow actions to the API's [`v1::Action`]s and back.
//!
//! One arm per wire action in [`to_api`]: an action the API has becomes its message; one it
//! lacks is refused with the error Open vSwitch sends for an action it does not know
//! (`BAD_ACTION/BAD_TYPE` for a standard action, `BAD_EXP_TYPE` for a Nicira or ONF one,
//! `BAD_EXPERIMENTER` for another vendor's). An action the flow language gains is one arm
//! here and one in [`put`].
//!
//! Set-field values go through the field table and the text syntax's checks: a field the
//! API lacks is `BAD_MATCH/BAD_FIELD` (what OVS's set-field decoder returns for an unknown
//! field), `in_port` and read-only fields `BAD_SET_ARGUMENT`, a missing prerequisite
//! `MATCH_INCONSISTENT`.

use crate::flow_text::{self, FieldErrorKind};
use crate::openflow::actions::{Action, Actions, CONTROLLER_MAX_LEN_NO_BUFFER};
use crate::openflow::error::{OfpError, bad_action};
use crate::openflow::fields::Field as Of;
use crate::openflow::ids::{GroupId, PortNo};
use crate::openflow::list::Item;
use crate::openflow::nx_actions::NxAction;
use crate::openflow::oxm::Oxm;
use crate::v1::{self, ReservedPort, action, port_ref};

use super::fields;
use super::matches::set_field_error;

/// Where an action list runs, which decides what is checked.
#[derive(Copy, Clone, Debug)]
pub enum Place<'m> {
    /// In a flow with this (canonical) match: set-field prerequisites are checked
    /// against it.
    Flow(&'m v1::Match),
    /// In a group bucket.
    Bucket,
    /// In a packet-out.
    PacketOut,
}

/// A wire port as the API names it: a number, or a reserved port. `BAD_OUT_PORT` for 0,
/// ANY and numbers between the last physical port and the reserved ones.
pub fn port_to_api(p: PortNo) -> Result<v1::PortRef, OfpError> {
    let reserved = |r: ReservedPort| port_ref::Port::Reserved(r as i32);
    let port = match p {
        PortNo::IN_PORT => reserved(ReservedPort::InPort),
        PortNo::TABLE => reserved(ReservedPort::Table),
        PortNo::NORMAL => reserved(ReservedPort::Normal),
        PortNo::FLOOD => reserved(ReservedPort::Flood),
        PortNo::ALL => reserved(ReservedPort::All),
        PortNo::CONTROLLER => reserved(ReservedPort::Controller),
        PortNo::LOCAL => reserved(ReservedPort::Local),
        PortNo(n) if n == 0 || n > PortNo::MAX.0 => return Err(bad_action::BAD_OUT_PORT),
        PortNo(n) => port_ref::Port::Number(n),
    };
    Ok(v1::PortRef { port: Some(port) })
}

/// An API port reference on the wire (a name, which a canonical message never holds,
/// is ANY).
pub fn port_to_wire(p: Option<&v1::PortRef>) -> PortNo {
    match p.and_then(|p| p.port.as_ref()) {
        Some(port_ref::Port::Number(n)) => PortNo(*n),
        Some(port_ref::Port::Reserved(r)) => match ReservedPort::try_from(*r) {
            Ok(ReservedPort::InPort) => PortNo::IN_PORT,
            Ok(ReservedPort::Table) => PortNo::TABLE,
            Ok(ReservedPort::Normal) => PortNo::NORMAL,
            Ok(ReservedPort::Flood) => PortNo::FLOOD,
            Ok(ReservedPort::All) => PortNo::ALL,
            Ok(ReservedPort::Controller) => PortNo::CONTROLLER,
            Ok(ReservedPort::Local) => PortNo::LOCAL,
            _ => PortNo::ANY,
        },
        Some(port_ref::Port::Name(_)) | None => PortNo::ANY,
    }
}

fn act(a: action::Action) -> v1::Action {
    v1::Action { action: Some(a) }
}

/// The API form of a set-field, checked against where it runs.
pub(super) fn set_field(o: &Oxm<'_>, at: Place<'_>) -> Result<v1::Action, OfpError> {
    let row = fields::row_of(o)?;
    if row.of == Of::InPort || row.of == Of::NxmInPort {
        return Err(bad_action::BAD_SET_ARGUMENT);
    }
    if row.of == Of::VlanVid && o.value.first().is_none_or(|b| b & 0x10 == 0) {
        // OpenFlow 1.3: a VLAN_VID set-field carries OFPVID_PRESENT.
        return Err(bad_action::BAD_SET_ARGUMENT);
    }
    let (value, mask) =
        fields::to_api(row, o.value, o.mask).map_err(|_| bad_action::BAD_SET_ARGUMENT)?;
    let sf = v1::SetField {
        field: row.api as i32,
        value,
        mask,
    };
    let checked = match at {
        Place::Flow(m) => flow_text::check_set_field(&sf, m),
        // Buckets and packet-outs have no match to check a set-field's prerequisites
        // against (the datapath skips a rewrite of a header the packet lacks); the field
        // must still exist, be writable and fit.
        Place::Bucket | Place::PacketOut => flow_text::check_set_field(&sf, &v1::Match::default())
            .or_else(|e| {
                if e.kind == FieldErrorKind::Prerequisite {
                    Ok(())
                } else {
                    Err(e)
                }
            }),
    };
    checked.map_err(|e| set_field_error(&e))?;
    Ok(act(action::Action::SetField(sf)))
}

/// One wire action as API actions (usually one).
pub(super) fn one(
    a: &Action<'_>,
    at: Place<'_>,
    out: &mut Vec<v1::Action>,
) -> Result<(), OfpError> {
    use action::Action as A;
    let x = match *a {
        Action::Output { port, max_len } => A::Output(v1::Output {
            port: Some(port_to_api(port)?),
            max_len: (port == PortNo::CONTROLLER && max_len != CONTROLLER_MAX_LEN_NO_BUFFER)
                .then_some(u32::from(max_len)),
        }),
        Action::Group(GroupId(g)) => {
            if g > GroupId::MAX.0 {
                return Err(bad_action::BAD_OUT_GROUP);
            }
            A::Group(g)
        }
        Action::SetField(ref o) => {
            out.push(set_field(o, at)?);
            return Ok(());
        }
        Action::PushVlan(e) => {
            if e != 0x8100 && e != 0x88a8 {
                return Err(bad_action::BAD_ARGUMENT);
            }
            A::PushVlan(v1::PushVlan {
                ethertype: u32::from(e),
            })
        }
        Action::PopVlan => A::PopVlan(v1::PopVlan {}),
        Action::DecNwTtl => A::DecTtl(v1::DecTtl::default()),
        Action::SetQueue(q) => A::SetQueue(q),
        Action::PushMpls(e) => {
            if e != 0x8847 && e != 0x8848 {
                return Err(bad_action::BAD_ARGUMENT);
            }
            A::PushMpls(v1::PushMpls {
                ethertype: u32::from(e),
            })
        }
        Action::PopMpls(e) => A::PopMpls(v1::PopMpls {
            ethertype: u32::from(e),
        }),
        Action::DecMplsTtl => A::DecMplsTtl(v1::DecMplsTtl {}),
        Action::Nx(ref nx) => return super::nx::to_api(nx, at, out),
        Action::Experimenter { .. } => {
            return Err(a.unsupported().unwrap_or(bad_action::BAD_EXPERIMENTER));
        }
        Action::OnfCopyField(_) => return Err(bad_action::BAD_EXP_TYPE),
        Action::CopyTtlOut
        | Action::CopyTtlIn
        | Action::SetMplsTtl(_)
        | Action::SetNwTtl(_)
        | Action::PushPbb(_)
        | Action::PopPbb
        | Action::CopyField(_)
        | Action::Meter(_) => return Err(bad_action::BAD_TYPE),
    };
    out.push(act(x));
    Ok(())
}

/// A wire action list in the API's form, refused with the first action's error.
pub fn to_api(actions: &Actions<'_>, at: Place<'_>) -> Result<Vec<v1::Action>, OfpError> {
    let mut out = Vec::new();
    for a in actions.iter() {
        one(&a, at, &mut out)?;
    }
    // The Nicira actions' bit ranges (inside their fields, destinations writable,
    // multipath wide enough, what a clone may hold) and, in a flow, their prerequisites
    // along the list, by the text syntax's rules.
    match at {
        Place::Flow(m) => flow_text::check_actions(&out, m).map_err(|(_, e)| check_error(&e))?,
        Place::Bucket | Place::PacketOut => {
            for a in &out {
                flow_text::check_subfields(a).map_err(|e| check_error(&e))?;
            }
        }
    }
    Ok(out)
}

/// The OpenFlow error for an action list the text syntax's checks refuse: Open vSwitch's
/// `mf_check_src`/`mf_check_dst` codes for bit ranges, `BAD_ARGUMENT` for a multipath or
/// clone it cannot run.
fn check_error(e: &flow_text::FieldError) -> OfpError {
    if e.kind == FieldErrorKind::Value && (e.field.starts_with("multipath") || e.field == "clone") {
        return bad_action::BAD_ARGUMENT;
    }
    set_field_error(e)
}

/// Writes one API action (actions the wire cannot carry, which a validated message never
/// holds, are left out).
fn put(a: &v1::Action, out: &mut Vec<u8>) {
    use action::Action as A;
    let Some(x) = &a.action else {
        return;
    };
    match x {
        A::Output(o) => {
            let port = port_to_wire(o.port.as_ref());
            let max_len = if port == PortNo::CONTROLLER {
                o.max_len
                    .map_or(CONTROLLER_MAX_LEN_NO_BUFFER, |l| l.min(0xffff) as u16)
            } else {
                0
            };
            Action::Output { port, max_len }.emit_item(out);
        }
        A::Group(g) => Action::Group(GroupId(*g)).emit_item(out),
        A::SetField(sf) => super::nx::put_set_field(sf, out),
        A::PushVlan(p) => Action::PushVlan(p.ethertype as u16).emit_item(out),
        A::PopVlan(_) => Action::PopVlan.emit_item(out),
        A::DecTtl(d) if d.controller_ids.is_empty() => Action::DecNwTtl.emit_item(out),
        A::DecTtl(d) => {
            let ids: Vec<u8> = d
                .controller_ids
                .iter()
                .flat_map(|id| (*id as u16).to_be_bytes())
                .collect();
            Action::Nx(NxAction::DecTtlCntIds(&ids)).emit_item(out);
        }
        A::SetQueue(q) => Action::SetQueue(*q).emit_item(out),
        A::PushMpls(p) => Action::PushMpls(p.ethertype as u16).emit_item(out),
        A::PopMpls(p) => Action::PopMpls(p.ethertype as u16).emit_item(out),
        A::DecMplsTtl(_) => Action::DecMplsTtl.emit_item(out),
        A::PopQueue(_) => Action::Nx(NxAction::PopQueue).emit_item(out),
        // OpenFlow 1.1 and later have no enqueue: Open vSwitch sends it as these three.
        A::Enqueue(e) => {
            Action::SetQueue(e.queue_id).emit_item(out);
            Action::Output {
                port: port_to_wire(e.port.as_ref()),
                max_len: 0xffff,
            }
            .emit_item(out);
            Action::Nx(NxAction::PopQueue).emit_item(out);
        }
        // OpenFlow 1.0's VLAN rewrites are set-fields in 1.3 (which leave untagged
        // packets untagged, where these tag them).
        A::SetVlanVid(v) => {
            let vid = (v.vid as u16 & 0x0fff) | 0x1000;
            Action::SetField(Oxm::new(Of::VlanVid, &vid.to_be_bytes())).emit_item(out);
        }
        A::SetVlanPcp(p) => {
            Action::SetField(Oxm::new(Of::VlanPcp, &[p.pcp as u8 & 7])).emit_item(out);
        }
        // The Nicira extensions (move, resubmit, note, exit, output:REG, push, pop,
        // clone, multipath, ct, ct_clear).
        other => {
            super::nx::emit(other, out);
        }
    }
}

/// Writes an API action list as wire actions.
pub fn emit(actions: &[v1::Action], out: &mut Vec<u8>) {
    for a in actions {
        put(a, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::error::bad_match;
    use crate::openflow::list::encode;

    fn api(acts: &[Action<'_>], at: Place<'_>) -> Result<Vec<v1::Action>, OfpError> {
        let bytes = encode(acts);
        to_api(&Actions::new_checked(&bytes).expect("framed"), at)
    }

    fn ip() -> v1::Match {
        flow_text::parse_flow("ip,actions=drop")
            .expect("flow")
            .r#match
            .expect("match")
    }

    #[test]
    fn actions_round_trip_through_the_api() {
        let m = ip();
        let wire = [
            Action::Output {
                port: PortNo(2),
                max_len: 0,
            },
            Action::Output {
                port: PortNo::CONTROLLER,
                max_len: 128,
            },
            Action::Group(GroupId(7)),
            Action::SetField(Oxm::new(Of::Ipv4Dst, &[10, 0, 0, 1])),
            Action::PushVlan(0x8100),
            Action::SetField(Oxm::new(Of::VlanVid, &[0x10, 0x05])),
            Action::PopVlan,
            Action::DecNwTtl,
            Action::SetQueue(3),
            Action::Nx(NxAction::PopQueue),
            Action::PushMpls(0x8847),
            Action::DecMplsTtl,
            Action::PopMpls(0x0800),
            Action::Output {
                port: PortNo::NORMAL,
                max_len: 0,
            },
        ];
        let a = api(&wire, Place::Flow(&m)).expect("supported");
        let text = flow_text::parse_actions(
            "output:2,controller:128,group:7,set_field:10.0.0.1->ip_dst,push_vlan:0x8100,\
             set_field:5->vlan_vid,pop_vlan,dec_ttl,set_queue:3,pop_queue,push_mpls:0x8847,\
             dec_mpls_ttl,pop_mpls:0x0800,normal",
        );
        if let Ok(t) = text {
            assert_eq!(a.len(), t.len());
        }
        let mut out = Vec::new();
        emit(&a, &mut out);
        assert_eq!(out, encode(&wire));
    }

    #[test]
    fn what_the_api_lacks_is_refused_as_ovs_refuses_the_unknown() {
        let m = ip();
        assert_eq!(
            api(&[Action::PushPbb(0x88e7)], Place::Flow(&m)),
            Err(bad_action::BAD_TYPE)
        );
        assert_eq!(
            api(&[Action::PushMpls(0x0800)], Place::Flow(&m)),
            Err(bad_action::BAD_ARGUMENT)
        );
        assert_eq!(
            api(&[Action::Nx(NxAction::SetTunnel(5))], Place::Flow(&m)),
            Err(bad_action::BAD_EXP_TYPE)
        );
        assert_eq!(
            api(
                &[Action::SetField(Oxm::new(Of::PbbIsid, &[0, 0, 5]))],
                Place::Bucket
            ),
            Err(bad_match::BAD_FIELD)
        );
        assert_eq!(
            api(
                &[Action::SetField(Oxm::new(Of::TcpDst, &[0, 80]))],
                Place::Flow(&m)
            ),
            Err(bad_action::MATCH_INCONSISTENT)
        );
        assert_eq!(
            api(
                &[Action::SetField(Oxm::new(Of::InPort, &[0, 0, 0, 1]))],
                Place::Bucket
            ),
            Err(bad_action::BAD_SET_ARGUMENT)
        );
        assert_eq!(
            api(
                &[Action::SetField(Oxm::new(Of::EthType, &[8, 0]))],
                Place::Bucket
            ),
            Err(bad_action::BAD_SET_ARGUMENT)
        );
        assert_eq!(
            api(
                &[Action::SetField(Oxm::new(Of::VlanVid, &[0, 5]))],
                Place::Bucket
            ),
            Err(bad_action::BAD_SET_ARGUMENT)
        );
        assert_eq!(
            api(
                &[Action::Output {
                    port: PortNo(0),
                    max_len: 0
                }],
                Place::Bucket
            ),
            Err(bad_action::BAD_OUT_PORT)
        );
        assert_eq!(
            api(&[Action::PushVlan(0x0800)], Place::Bucket),
            Err(bad_action::BAD_ARGUMENT)
        );
    }

    #[test]
    fn masked_set_fields_go_out_as_reg_load() {
        let a = vec![act(action::Action::SetField(v1::SetField {
            field: v1::Field::Reg0 as i32,
            value: vec![0, 0, 0, 0x10],
            mask: vec![0, 0, 0, 0xf0],
        }))];
        let mut out = Vec::new();
        emit(&a, &mut out);
        let parsed = Actions::new_checked(&out).expect("framed");
        assert!(matches!(
            parsed.iter().next(),
            Some(Action::Nx(NxAction::RegLoad { .. }))
        ));
    }
}
