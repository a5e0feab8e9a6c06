//! Property tests: building then parsing gives back what was built, for generated
//! matches, actions, instructions and whole messages; arbitrary bytes never panic.

use crate::openflow::actions::{Action, Actions};
use crate::openflow::error::bad_match;
use crate::openflow::fields::{FIELDS, Field};
use crate::openflow::flow::{Command, FlowMod};
use crate::openflow::header::Version;
use crate::openflow::ids::{BufferId, GroupId, PortNo, TableId};
use crate::openflow::instructions::{Instruction, Instructions};
use crate::openflow::list::encode;
use crate::openflow::message::{Frames, Message, emit, parse};
use crate::openflow::nx_actions::NxAction;
use crate::openflow::oxm::{Match, MatchBuilder, Oxm};
use crate::openflow::wire::Reader;
use proptest::prelude::*;

/// A match field with a value (and mask) consistent with the table.
fn field() -> impl Strategy<Value = (Field, Vec<u8>, Option<Vec<u8>>)> {
    let fixed: Vec<Field> = FIELDS
        .iter()
        .filter(|d| d.size > 0)
        .map(|d| d.field)
        .collect();
    (
        proptest::sample::select(fixed),
        any::<bool>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
    )
        .prop_map(|(f, masked, v, m)| {
            let d = f.def();
            let n = usize::from(d.size);
            if masked && d.maskable {
                let mask = m[..n].to_vec();
                let value = v[..n].iter().zip(&mask).map(|(v, m)| v & m).collect();
                (f, value, Some(mask))
            } else {
                (f, v[..n].to_vec(), None)
            }
        })
}

fn fields() -> impl Strategy<Value = Vec<(Field, Vec<u8>, Option<Vec<u8>>)>> {
    proptest::collection::vec(field(), 0..8).prop_map(|mut v| {
        // One entry per datapath field (the NXM and OXM forms of a field are one field).
        let mut seen = std::collections::HashSet::new();
        v.retain(|(f, _, _)| seen.insert(f.def().name));
        v
    })
}

fn action() -> impl Strategy<Value = (u8, u32, u16)> {
    (0u8..9, any::<u32>(), any::<u16>())
}

/// Builds an action from generated numbers (set-field values live in `buf`).
fn make_action<'a>(k: u8, a: u32, b: u16, setf: &'a [u8; 4]) -> Action<'a> {
    match k {
        0 => Action::Output {
            port: PortNo(a),
            max_len: b,
        },
        1 => Action::Group(GroupId(a)),
        2 => Action::PushVlan(b),
        3 => Action::SetField(Oxm::new(Field::Ipv4Dst, setf)),
        4 => Action::Nx(NxAction::ResubmitTable {
            in_port: b,
            table: a as u8,
            ct: a & 256 != 0,
        }),
        5 => Action::Nx(NxAction::RegLoad {
            ofs_nbits: b,
            dst: 0x0001_0004,
            value: u64::from(a),
        }),
        6 => Action::Nx(NxAction::Conjunction {
            clause: a as u8,
            n_clauses: (a >> 8) as u8,
            id: a,
        }),
        7 => Action::DecNwTtl,
        _ => Action::SetQueue(a),
    }
}

proptest! {
    #[test]
    fn matches_build_then_parse(fs in fields()) {
        let mut out = Vec::new();
        let mut b = MatchBuilder::new(&mut out);
        for (f, v, m) in &fs {
            match m {
                Some(m) => b.field_masked(*f, v, m),
                None => b.field(*f, v),
            };
        }
        b.finish();
        prop_assert_eq!(out.len() % 8, 0);
        let mut r = Reader::new(&out, bad_match::BAD_LEN);
        let m = Match::parse(&mut r).expect("built match parses");
        prop_assert!(r.is_empty());
        let back: Vec<_> = m.iter().map(|o| (o.field().expect("known"), o.value.to_vec(), o.mask.map(<[u8]>::to_vec))).collect();
        prop_assert_eq!(back, fs);
        let mut again = Vec::new();
        m.emit(&mut again);
        prop_assert_eq!(again, out);
    }

    #[test]
    fn flow_mods_build_then_parse(
        fs in fields(),
        acts in proptest::collection::vec(action(), 0..6),
        goto in proptest::option::of(any::<u8>()),
        cookie in any::<u64>(), priority in any::<u16>(), cmd in 0u8..5, xid in any::<u32>(),
    ) {
        let setf = [10, 0, 0, 1];
        let mut mb = Vec::new();
        let mut b = MatchBuilder::new(&mut mb);
        for (f, v, m) in &fs {
            match m {
                Some(m) => b.field_masked(*f, v, m),
                None => b.field(*f, v),
            };
        }
        b.finish();
        let actions: Vec<Action<'_>> = acts.iter().map(|&(k, a, b)| make_action(k, a, b, &setf)).collect();
        let ab = encode(&actions);
        let mut ins = vec![Instruction::ApplyActions(Actions::new_checked(&ab).expect("actions"))];
        if let Some(t) = goto {
            ins.push(Instruction::GotoTable(TableId(t)));
        }
        let ib = encode(&ins);
        let mut r = Reader::new(&mb, bad_match::BAD_LEN);
        let fm = FlowMod {
            cookie,
            cookie_mask: 0,
            table_id: TableId(0),
            command: Command::from_u8(cmd).expect("command"),
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: BufferId::NO_BUFFER,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            flags: 0,
            importance: 0,
            match_: Match::parse(&mut r).expect("match"),
            instructions: Instructions::new_checked(&ib).expect("instructions"),
        };
        let mut out = Vec::new();
        emit(Version::V1_3, xid, &fm, &mut out).expect("fits");
        let (h, m) = parse(&out).expect("built flow_mod parses");
        prop_assert_eq!(h.xid, xid);
        let Message::FlowMod(back) = m else { panic!("{m:?}") };
        prop_assert_eq!(back, fm);
        let got: Vec<Instruction<'_>> = back.instructions.iter().collect();
        prop_assert_eq!(got, ins);
        let Some(Instruction::ApplyActions(a)) = back.instructions.iter().next() else { panic!() };
        prop_assert_eq!(a.iter().collect::<Vec<_>>(), actions);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        for f in Frames::new(&data) {
            let Ok(f) = f else { break };
            if let Ok((h, m)) = parse(f) {
                let mut out = Vec::new();
                if m.emit(h.version, h.xid, &mut out).is_ok() {
                    parse(&out).expect("re-emitted parses");
                }
            }
        }
    }

    #[test]
    fn mutated_flow_mods_never_panic(pos in 0usize..88, val in any::<u8>()) {
        let mut b = crate::openflow::flow::tests::ADD_FLOW;
        b[pos] = val;
        if let Ok((h, m)) = parse(&b) {
            let mut out = Vec::new();
            m.emit(h.version, h.xid, &mut out).expect("fits");
            parse(&out).expect("re-emitted parses");
        }
    }
}
