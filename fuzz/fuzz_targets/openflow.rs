//! The OpenFlow codec on arbitrary bytes: framing, every message kind, every nested list.
//! Never panics; whatever parses re-emits to bytes that parse again and re-emit to the same
//! bytes (emission is a fixed point after one round, padding normalised to zeros).
//! A FLOW_MOD also goes through the mapping to the API (`proto::ofapi`, the Nicira
//! actions included): it never panics, an action list it takes goes back to the wire as
//! one it takes again, and after that round (a masked set-field of scattered bits becomes
//! one per run of bits) the API form is a fixed point; its instructions (apply- and
//! write-actions, clear-actions, write-metadata, meter, goto) reach a fixed point too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::openflow::hello::VersionSet;
use proto::openflow::message::{Frames, Message, parse};
use proto::ofapi::actions::{self, Place};
use proto::openflow::actions::Actions;
use proto::ofapi::instructions;
use proto::openflow::instructions::{Instruction, Instructions};
use proto::openflow::Version;

fuzz_target!(|data: &[u8]| {
    for frame in Frames::new(data) {
        let Ok(msg) = frame else { break };
        let Ok((h, m)) = parse(msg) else { continue };
        if let Message::Hello(hello) = m {
            let _ = hello.negotiate(h.version, VersionSet::of(&[Version::V1_3, Version::V1_4]));
        }
        if let Message::FlowMod(fm) = m {
            let _ = proto::ofapi::flows::to_api(&fm);
            // Instructions, the action set's included: what maps to the API goes back to
            // the wire as instructions that map to the same API instructions.
            let table = fm.table_id.0;
            if let Ok(api) = instructions::to_api(&fm.instructions, table, &Default::default()) {
                let round = |api: &[proto::v1::Instruction]| {
                    let mut wire = Vec::new();
                    instructions::emit(api, &mut wire);
                    let list =
                        Instructions::new_checked(&wire).expect("emitted instructions parse");
                    instructions::to_api(&list, table, &Default::default())
                        .expect("and map again")
                };
                let once = round(&api);
                assert_eq!(round(&once), once, "the instructions are not a fixed point");
            }
            for i in fm.instructions.iter() {
                let (Instruction::ApplyActions(list) | Instruction::WriteActions(list)) = i else {
                    continue;
                };
                let Ok(api) = actions::to_api(&list, Place::Bucket) else { continue };
                let round = |api: &[proto::v1::Action]| {
                    let mut wire = Vec::new();
                    actions::emit(api, &mut wire);
                    let list = Actions::new_checked(&wire).expect("emitted actions parse");
                    actions::to_api(&list, Place::Bucket).expect("and map again")
                };
                let once = round(&api);
                assert_eq!(round(&once), once, "the API form is not a fixed point");
            }
        }
        if let Message::BundleAdd(a) = m {
            let _ = parse(a.message);
        }
        let mut once = Vec::new();
        if m.emit(h.version, h.xid, &mut once).is_err() {
            continue;
        }
        let (h2, m2) = parse(&once).expect("re-emitted message parses");
        let mut twice = Vec::new();
        m2.emit(h2.version, h2.xid, &mut twice).expect("fits again");
        assert_eq!(once, twice, "emission is not a fixed point");
    }
});
