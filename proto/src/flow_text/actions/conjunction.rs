//! `conjunction(ID,K/N)`: the flow is clause K of N of conjunction ID (see `flow_text::conj`).

use crate::v1::{Conjunction, action};

use super::super::conj::conjunction_numbers_error;
use super::super::lexer::{Result, Tok};
use super::super::scalar::num_u32;
use super::call::{Call, Item, act};

/// `conjunction(ID,K/N)`, as Open vSwitch reads it.
pub(super) fn conjunction(c: &Call<'_>) -> Result<Item> {
    c.flow_only("conjunction")?;
    const SYNTAX: &str = "\"conjunction\" syntax is \"conjunction(id,i/n)\"";
    let a = c.need()?;
    let (id, kn) = a.split_once(",").ok_or_else(|| a.err(SYNTAX))?;
    let (k, n) = kn.split_once("/").ok_or_else(|| a.err(SYNTAX))?;
    let (id, k, n) = (trim(id), trim(k), trim(n));
    let conj = Conjunction {
        id: num_u32(id, u32::MAX, "conjunction id")?,
        clause: num_u32(k, 255, "clause index")?,
        n_clauses: num_u32(n, 255, "number of clauses")?,
    };
    if let Some(why) = conjunction_numbers_error(&conj) {
        return Err(a.err(why));
    }
    Ok(act(action::Action::Conjunction(conj)))
}

/// The token without the blanks around it (`conjunction(1, 2/3)` is Open vSwitch's too).
fn trim(t: Tok<'_>) -> Tok<'_> {
    let lead = t.text.len() - t.text.trim_start().len();
    Tok {
        at: t.at + lead,
        text: t.text.trim(),
    }
}
