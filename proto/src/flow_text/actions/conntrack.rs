//! Connection tracking: `ct(...)` and `ct_clear` (their syntax is in `flow_text::ct`).

use crate::v1::action;

use super::super::check::CT_NEEDS_IP;
use super::super::ct::{ct_clear_action, parse_ct};
use super::super::lexer::Result;
use super::call::{ActionCtx, Call, Item, act};

/// `ct`, `ct(commit,zone=N,table=T,nat(...),exec(...),force)`.
pub(super) fn ct(c: &Call<'_>) -> Result<Item> {
    if c.arg.is_some() && !c.paren {
        return Err(c
            .tok
            .err("`ct` takes its arguments in parentheses: `ct(...)`"));
    }
    if let ActionCtx::Flow(ctx) = c.ctx
        && !ctx.ip()
    {
        return Err(c.name_tok().err(CT_NEEDS_IP));
    }
    Ok(act(action::Action::Ct(parse_ct(c.arg)?)))
}

/// `ct_clear`.
pub(super) fn ct_clear(c: &Call<'_>) -> Result<Item> {
    c.none()?;
    Ok(Item::Action(ct_clear_action()))
}
