//! Walks a parsed message down to every OXM, instruction and action, and lists what the
//! codec kept as opaque bytes (unknown experimenter messages, actions, fields).

use crate::openflow::actions::{Action, Actions};
use crate::openflow::instructions::{Instruction, Instructions};
use crate::openflow::message::Message;
use crate::openflow::multipart::{ReplyBody, RequestBody};
use crate::openflow::nx_actions::NxAction;
use crate::openflow::oxm::Match;

/// Opaque things found in `m`, described.
pub fn opaque(m: &Message<'_>) -> Vec<String> {
    let mut v = Vec::new();
    match m {
        Message::Experimenter(e) => v.push(format!("experimenter message {:#x}", e.experimenter)),
        Message::FlowMod(f) => {
            matches(&f.match_, &mut v);
            instructions(&f.instructions, &mut v);
        }
        Message::FlowRemoved(f) => matches(&f.match_, &mut v),
        Message::PacketIn(p) => matches(&p.match_, &mut v),
        Message::PacketOut(p) => actions(&p.actions, &mut v),
        Message::GroupMod(g) => g.buckets.iter().for_each(|b| actions(&b.actions, &mut v)),
        Message::MultipartRequest(r) => match r.body {
            RequestBody::Flow(f) | RequestBody::Aggregate(f) => matches(&f.match_, &mut v),
            RequestBody::Experimenter(e) => {
                v.push(format!("experimenter multipart {:#x}", e.experimenter))
            }
            _ => {}
        },
        Message::MultipartReply(r) => match r.body {
            ReplyBody::Flow(l) => l.iter().for_each(|f| {
                matches(&f.match_, &mut v);
                instructions(&f.instructions, &mut v);
            }),
            ReplyBody::GroupDesc(l) => l
                .iter()
                .for_each(|g| g.buckets.iter().for_each(|b| actions(&b.actions, &mut v))),
            ReplyBody::Experimenter(e) => {
                v.push(format!("experimenter multipart {:#x}", e.experimenter))
            }
            _ => {}
        },
        _ => {}
    }
    v
}

fn matches(m: &Match<'_>, v: &mut Vec<String>) {
    for o in m.iter().filter(|o| o.field().is_none()) {
        v.push(format!(
            "unknown field class {:#x} field {} exp {:#x}",
            o.class, o.number, o.experimenter
        ));
    }
}

fn instructions(l: &Instructions<'_>, v: &mut Vec<String>) {
    for i in l.iter() {
        match i {
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => actions(&a, v),
            Instruction::Experimenter { experimenter, .. } => {
                v.push(format!("experimenter instruction {experimenter:#x}"))
            }
            _ => {}
        }
    }
}

fn actions(l: &Actions<'_>, v: &mut Vec<String>) {
    for a in l.iter() {
        match a {
            Action::Experimenter { experimenter, data } => v.push(format!(
                "experimenter action {experimenter:#x} subtype {:#06x}",
                u16::from_be_bytes([
                    data.first().copied().unwrap_or(0),
                    data.get(1).copied().unwrap_or(0)
                ])
            )),
            Action::SetField(o) if o.field().is_none() => v.push(format!(
                "set_field of unknown field class {:#x} field {} exp {:#x}",
                o.class, o.number, o.experimenter
            )),
            Action::Nx(NxAction::Clone(a)) => actions(&a, v),
            Action::Nx(NxAction::Ct(c)) => actions(&c.actions, v),
            _ => {}
        }
    }
}
