//! The instructions written among the actions: `drop`, `meter:N`, `goto_table:N` and
//! `write_metadata:V[/M]` (flows only; `instructions` puts them in OpenFlow order).

use crate::v1::WriteMetadata;

use super::super::lexer::Result;
use super::super::limits::{MAX_METER_ID, MAX_TABLE_ID};
use super::super::scalar::{num, num_u32};
use super::call::{Call, Item};

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
