//! Unit and property tests of the flow text syntax, one file per subject: lines that parse
//! (`parse.rs`), lines that do not (`errors.rs`), meters and groups, the field tables, and
//! the property tests (`props.rs`).

mod errors;
mod meters_groups;
mod parse;
mod props;
mod tables;

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::fields::{
    CONTEXTUAL, FIELDS, FieldDef, NXM_NAMES, Named, Syntax, canonical, field_def, field_def_i32,
    resolve_name,
};
use super::match_text::printed_fields;
use super::protocol::{Ctx, ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_MPLS, Prereq};
use super::*;
use crate::v1::{
    Action, ApplyActions, Band, BandType, Bucket, ClearActions, DecMplsTtl, DecTtl, Enqueue, Exit,
    Field, FieldMatch, Flow, FlowFilter, FlowFlags, Group, GroupType, HashField, Instruction,
    Match, Meter, MeterUnit, Move, Multipath, Note, Output, OutputField, PopMpls, PopQueue,
    PopVlan, PortRef, PushMpls, PushVlan, ReservedPort, Resubmit, SelectionMethod, SetField,
    SetVlanPcp, SetVlanVid, StackPop, StackPush, Subfield, WriteActions, WriteMetadata, action,
    instruction, port_ref,
};

fn fm(field: Field, value: &[u8], mask: &[u8]) -> FieldMatch {
    FieldMatch {
        field: field as i32,
        value: value.to_vec(),
        mask: mask.to_vec(),
        port_name: String::new(),
    }
}

fn apply(actions: Vec<Action>) -> Instruction {
    Instruction {
        instruction: Some(instruction::Instruction::ApplyActions(ApplyActions {
            actions,
        })),
    }
}

fn out_n(n: u32) -> Action {
    Action {
        action: Some(action::Action::Output(Output {
            port: Some(PortRef {
                port: Some(port_ref::Port::Number(n)),
            }),
            max_len: None,
        })),
    }
}

fn fields(f: &Flow) -> &[FieldMatch] {
    &f.r#match.as_ref().unwrap().fields
}

/// parse -> format -> parse gives the same flow, and the formatted text is stable.
fn round_trip(line: &str) -> Flow {
    let f = parse_flow(line).unwrap_or_else(|e| panic!("{line}: {e}\n{}", e.caret(line)));
    let text = format_flow(&f);
    let g = parse_flow(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(f, g, "{line} -> {text}");
    assert_eq!(format_flow(&g), text);
    let dump = format_flow_dump(&f);
    assert_eq!(parse_flow(&dump).unwrap(), f, "{dump}");
    f
}
