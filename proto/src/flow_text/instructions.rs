//! A flow's `actions=` list as OpenFlow instructions, in the order OpenFlow runs them:
//! meter, apply-actions, clear-actions, write-actions, write-metadata, goto-table; and
//! instructions printed back as one `actions=` list.

use crate::v1::{
    ApplyActions, ClearActions, Instruction, Match, WriteActions, WriteMetadata, instruction,
};

use super::actions::{ActionCtx, Item, format_action, normalize_vlan, parse_one_action};
use super::lexer::{Result, Tok};
use super::protocol::Ctx;

/// Where in the instruction order the list has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Meter,
    Actions,
    Clear,
    Write,
    WriteMetadata,
    Goto,
}

/// The instructions of one flow, gathered from its action list.
#[derive(Default)]
struct Gathered {
    meter: Option<u32>,
    actions: Vec<crate::v1::Action>,
    clear: bool,
    write: Option<Vec<crate::v1::Action>>,
    write_md: Option<WriteMetadata>,
    goto: Option<u32>,
    dropped: bool,
}

impl Gathered {
    fn is_empty(&self) -> bool {
        self.actions.is_empty()
            && self.meter.is_none()
            && !self.clear
            && self.write.is_none()
            && self.write_md.is_none()
            && self.goto.is_none()
    }

    fn into_instructions(self) -> Vec<Instruction> {
        let wrap = |i| Instruction {
            instruction: Some(i),
        };
        let mut out = Vec::new();
        if let Some(id) = self.meter {
            out.push(wrap(instruction::Instruction::Meter(id)));
        }
        if !self.actions.is_empty() {
            out.push(wrap(instruction::Instruction::ApplyActions(ApplyActions {
                actions: self.actions,
            })));
        }
        if self.clear {
            out.push(wrap(instruction::Instruction::ClearActions(
                ClearActions {},
            )));
        }
        // An empty action list written to the set changes nothing: Open vSwitch prints
        // `write_actions(drop)` back as `drop`.
        if let Some(actions) = self.write.filter(|a| !a.is_empty()) {
            out.push(wrap(instruction::Instruction::WriteActions(WriteActions {
                actions,
            })));
        }
        if let Some(w) = self.write_md {
            out.push(wrap(instruction::Instruction::WriteMetadata(w)));
        }
        if let Some(t) = self.goto {
            out.push(wrap(instruction::Instruction::GotoTable(t)));
        }
        out
    }
}

/// Parses an `actions=` list into instructions in OpenFlow order. `m` is the flow's match
/// (for set-field prerequisites) and `table_id` its table (`goto_table` must go later).
pub(super) fn parse_instructions(
    list: &[Tok<'_>],
    m: &Match,
    table_id: u32,
) -> Result<Vec<Instruction>> {
    if list.is_empty() {
        return Ok(Vec::new()); // `actions=` alone drops, as in ovs-ofctl
    }
    let mut g = Gathered::default();
    let mut stage = Stage::Meter;
    let mut ctx = Ctx::of(m);
    let order_err = |tok: Tok<'_>, what: &str| {
        tok.err(format!(
            "invalid instruction ordering: `{what}` is out of order (instructions go meter, actions, clear_actions, write_actions, write_metadata, goto_table)"
        ))
    };
    let drop_err = |tok: Tok<'_>| {
        tok.err("\"drop\" must not be accompanied by any other action or instruction")
    };
    for &tok in list {
        let item = parse_one_action(tok, ActionCtx::Flow(ctx))?;
        if g.dropped {
            return Err(drop_err(tok));
        }
        match item {
            Item::Drop => {
                if !g.is_empty() {
                    return Err(drop_err(tok));
                }
                g.dropped = true;
            }
            Item::Meter(id) => {
                if stage > Stage::Meter || g.meter.is_some() {
                    return Err(order_err(tok, "meter"));
                }
                g.meter = Some(id);
            }
            Item::Action(a) => {
                if stage > Stage::Actions {
                    return Err(order_err(tok, tok.text));
                }
                stage = Stage::Actions;
                ctx = ctx.after(&a);
                g.actions.push(a);
            }
            Item::ClearActions => {
                if stage > Stage::Actions || g.clear {
                    return Err(order_err(tok, "clear_actions"));
                }
                stage = Stage::Clear;
                g.clear = true;
            }
            Item::WriteActions(w) => {
                if stage > Stage::Clear || g.write.is_some() {
                    return Err(order_err(tok, "write_actions"));
                }
                stage = Stage::Write;
                g.write = Some(w);
            }
            Item::WriteMetadata(w) => {
                if stage > Stage::Write || g.write_md.is_some() {
                    return Err(order_err(tok, "write_metadata"));
                }
                stage = Stage::WriteMetadata;
                g.write_md = Some(w);
            }
            Item::Goto(t) => {
                if g.goto.is_some() {
                    return Err(tok.err("duplicate goto_table instruction not allowed"));
                }
                if t <= table_id {
                    return Err(tok.err(format!(
                        "goto_table must go to a later table than this flow's table {table_id}"
                    )));
                }
                stage = Stage::Goto;
                g.goto = Some(t);
            }
        }
    }
    g.actions = normalize_vlan(std::mem::take(&mut g.actions), Some(m));
    Ok(g.into_instructions())
}

/// Prints instructions as an ovs-ofctl `actions=` value (without the `actions=`).
pub fn format_instructions(ins: &[Instruction]) -> String {
    let mut out = Vec::new();
    for i in ins {
        match &i.instruction {
            Some(instruction::Instruction::Meter(m)) => out.push(format!("meter:{m}")),
            Some(instruction::Instruction::ApplyActions(a)) => {
                for a in &a.actions {
                    format_action(a, &mut out);
                }
            }
            Some(instruction::Instruction::ClearActions(_)) => {
                out.push("clear_actions".to_string())
            }
            Some(instruction::Instruction::WriteActions(w)) => {
                let mut inner = Vec::new();
                for a in &w.actions {
                    format_action(a, &mut inner);
                }
                out.push(format!("write_actions({})", inner.join(",")));
            }
            Some(instruction::Instruction::WriteMetadata(w)) => {
                if w.mask == u64::MAX {
                    out.push(format!("write_metadata:0x{:x}", w.value));
                } else {
                    out.push(format!("write_metadata:0x{:x}/0x{:x}", w.value, w.mask));
                }
            }
            Some(instruction::Instruction::GotoTable(t)) => out.push(format!("goto_table:{t}")),
            None => {}
        }
    }
    if out.is_empty() {
        "drop".to_string()
    } else {
        out.join(",")
    }
}
