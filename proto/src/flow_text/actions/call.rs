//! One action token as the table sees it: `name`, `name:arg` or `name(args)`, the context
//! it is parsed in, and what parsing yields.

use crate::v1::{Action, Output, WriteMetadata, action};

use super::super::lexer::{Result, Tok};
use super::super::ports::{PortText, port_ref};
use super::super::protocol::Ctx;

/// Where actions are parsed: a flow (with the protocol its match pins, as changed by the
/// actions before this one, for field names and prerequisites) or a group bucket.
#[derive(Clone, Copy)]
pub(in super::super) enum ActionCtx {
    Flow(Ctx),
    Bucket,
}

/// What one token of an action list means.
pub(in super::super) enum Item {
    Action(Action),
    Drop,
    Meter(u32),
    WriteMetadata(WriteMetadata),
    Goto(u32),
    /// `write_actions(...)`: actions for the action set.
    WriteActions(Vec<Action>),
    /// `clear_actions`.
    ClearActions,
}

pub(super) fn act(a: action::Action) -> Item {
    Item::Action(Action { action: Some(a) })
}

pub(super) fn output(p: PortText, max_len: Option<u32>) -> Item {
    act(action::Action::Output(Output {
        port: Some(port_ref(p)),
        max_len,
    }))
}

/// One action token, split.
pub(super) struct Call<'a> {
    /// The whole token.
    pub(super) tok: Tok<'a>,
    /// The action's name as written.
    pub(super) name: &'a str,
    /// The name in lower case, as the table knows it.
    pub(super) lname: String,
    /// What follows `:` or `=`, or what is inside `(...)`.
    pub(super) arg: Option<Tok<'a>>,
    /// Whether the argument was written in parentheses.
    pub(super) paren: bool,
    pub(super) ctx: ActionCtx,
}

impl<'a> Call<'a> {
    /// Splits `name[:arg]`, `name=arg` or `name(args)` (Open vSwitch reads all three).
    pub(super) fn split(tok: Tok<'a>, ctx: ActionCtx) -> Result<Self> {
        let Some(i) = tok.text.find([':', '(', '=']) else {
            return Ok(Call {
                tok,
                name: tok.text,
                lname: tok.text.to_ascii_lowercase(),
                arg: None,
                paren: false,
                ctx,
            });
        };
        let name = &tok.text[..i];
        let paren = tok.text[i..].starts_with('(');
        let arg_text = &tok.text[i + 1..];
        let arg_text = if paren {
            match arg_text.strip_suffix(')') {
                Some(a) => a,
                None => return Err(tok.err("missing `)`")),
            }
        } else {
            arg_text
        };
        Ok(Call {
            tok,
            name,
            lname: name.to_ascii_lowercase(),
            arg: Some(Tok {
                at: tok.at + i + 1,
                text: arg_text,
            }),
            paren,
            ctx,
        })
    }

    /// The name's position: where errors about the action as a whole point.
    pub(super) fn name_tok(&self) -> Tok<'a> {
        self.tok.with_text(self.name)
    }

    /// The argument, which this action requires.
    pub(super) fn need(&self) -> Result<Tok<'a>> {
        let name = self.name;
        self.arg.filter(|a| !a.text.is_empty()).ok_or_else(|| {
            self.tok
                .err(format!("`{name}` needs an argument: `{name}:...`"))
        })
    }

    /// This action takes no argument.
    pub(super) fn none(&self) -> Result<()> {
        match self.arg {
            Some(a) => Err(a.err(format!("`{}` takes no argument", self.name))),
            None => Ok(()),
        }
    }

    /// This action is an instruction of a flow, not allowed in a group bucket.
    pub(super) fn flow_only(&self, what: &str) -> Result<()> {
        match self.ctx {
            ActionCtx::Flow(_) => Ok(()),
            ActionCtx::Bucket => Err(self
                .tok
                .err(format!("`{what}` is not allowed in a group bucket"))),
        }
    }
}
