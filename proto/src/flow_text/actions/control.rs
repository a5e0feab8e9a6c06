//! The instructions written among the actions: `drop`, `meter:N`, `goto_table:N`,
//! `write_metadata:V[/M]`, `write_actions(...)` and `clear_actions` (flows only;
//! `instructions` puts them in OpenFlow order).

use crate::v1::WriteMetadata;

use super::super::actset::not_in_action_set;
use super::super::lexer::{Result, split_tokens};
use super::super::limits::{MAX_METER_ID, MAX_TABLE_ID};
use super::super::scalar::{num, num_u32};
use super::call::{ActionCtx, Call, Item};
use super::table::parse_one_action;

pub(super) fn drop(c: &Call<'_>) -> Result<Item> {
    c.none()?;
    Ok(Item::Drop)
}

pub(super) fn meter(c: &Call<'_>) -> Result<Item> {
    c.flow_only("meter")?;
    let a = c.need()?;
    let id = num_u32(a, MAX_METER_ID, "meter id")?;
    if id == 0 {
        return Err(a.err("meter ids start at 1"));
    }
    Ok(Item::Meter(id))
}

pub(super) fn goto_table(c: &Call<'_>) -> Result<Item> {
    c.flow_only("goto_table")?;
    let a = c.need()?;
    Ok(Item::Goto(num_u32(a, MAX_TABLE_ID, "goto_table")?))
}

pub(super) fn write_metadata(c: &Call<'_>) -> Result<Item> {
    c.flow_only("write_metadata")?;
    let a = c.need()?;
    let (value, mask) = match a.split_once("/") {
        Some((v, m)) => (
            num(v, u64::MAX, "metadata")?,
            num(m, u64::MAX, "metadata mask")?,
        ),
        None => (num(a, u64::MAX, "metadata")?, u64::MAX),
    };
    Ok(Item::WriteMetadata(WriteMetadata { value, mask }))
}

/// `apply_actions` is what an action list already is; Open vSwitch refuses the word.
pub(super) fn apply_actions(c: &Call<'_>) -> Result<Item> {
    Err(c.name_tok().err("apply_actions is the default instruction"))
}

/// `write_actions(ACTIONS)`: actions for the packet's action set (`drop` alone: none).
pub(super) fn write_actions(c: &Call<'_>) -> Result<Item> {
    c.flow_only("write_actions")?;
    let a = c.arg.unwrap_or(c.tok.with_text(""));
    let mut ctx = c.ctx;
    let mut actions = Vec::new();
    let mut dropped = false;
    for tok in split_tokens(a.text, a.at, true) {
        match parse_one_action(tok, ctx)? {
            Item::Action(inner) if !dropped => {
                if let Some(why) = not_in_action_set(&inner) {
                    return Err(tok.err(format!(
                        "{} cannot be inside write_actions(...): {why}",
                        tok.text
                    )));
                }
                if let ActionCtx::Flow(m) = ctx {
                    ctx = ActionCtx::Flow(m.after(&inner));
                }
                actions.push(inner);
            }
            Item::Drop if actions.is_empty() && !dropped => dropped = true,
            Item::Action(_) | Item::Drop => {
                return Err(tok.err("\"drop\" must not be accompanied by any other action"));
            }
            _ => {
                return Err(tok.err(format!(
                    "`{}` is not allowed inside write_actions(...)",
                    tok.text
                )));
            }
        }
    }
    Ok(Item::WriteActions(actions))
}

/// `clear_actions`: empties the packet's action set.
pub(super) fn clear_actions(c: &Call<'_>) -> Result<Item> {
    c.flow_only("clear_actions")?;
    c.none()?;
    Ok(Item::ClearActions)
}
