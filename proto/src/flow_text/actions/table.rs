//! The action table: every action name and the function that parses it, and the parsers of
//! whole action lists built on it.

use crate::v1::Action;

use super::super::lexer::{Result, Tok, split_tokens};
use super::super::ports::parse_port_number;
use super::call::{ActionCtx, Call, Item, output};
use super::{control, headers, output as out, set_field};

/// Parses one action; errors point into the token.
type ParseFn = fn(&Call<'_, '_>) -> Result<Item>;

/// Every action, by its lower-case names.
pub(super) const ACTIONS: &[(&[&str], ParseFn)] = &[
    (&["drop"], control::drop),
    (&["output"], out::output),
    (&["controller"], out::controller),
    (
        &["in_port", "normal", "flood", "all", "local"],
        out::reserved,
    ),
    (&["group"], out::group),
    (&["set_queue"], out::set_queue),
    (&["push_vlan"], headers::push_vlan),
    (&["pop_vlan", "strip_vlan"], headers::pop_vlan),
    (&["dec_ttl"], headers::dec_ttl),
    (&["meter"], control::meter),
    (&["goto_table"], control::goto_table),
    (&["write_metadata"], control::write_metadata),
    (&["set_field", "load"], set_field::set_field),
    (
        &[
            "mod_dl_src",
            "mod_dl_dst",
            "mod_nw_src",
            "mod_nw_dst",
            "mod_tp_src",
            "mod_tp_dst",
            "mod_vlan_pcp",
            "mod_nw_ttl",
        ],
        set_field::mod_field,
    ),
    (&["mod_vlan_vid"], set_field::mod_vlan_vid),
    (&["mod_nw_tos"], set_field::mod_nw_tos),
];

/// Parses one token of an action list: `name`, `name:arg` or `name(args)`, or a bare port
/// number (`2` means `output:2`).
pub(in super::super) fn parse_one_action(tok: Tok<'_>, ctx: ActionCtx<'_>) -> Result<Item> {
    let call = Call::split(tok, ctx)?;
    if let Some((_, parse)) = ACTIONS
        .iter()
        .find(|(names, _)| names.contains(&call.lname.as_str()))
    {
        return parse(&call);
    }
    let name = call.name;
    if name.as_bytes().first().is_some_and(u8::is_ascii_digit) && call.arg.is_none() {
        return Ok(output(parse_port_number(tok)?, None));
    }
    Err(call.name_tok().err(format!(
        "unknown or unsupported action `{name}` (for a named port write `output:{name}`)"
    )))
}

/// Parses a plain action list (group buckets, packet-out): `output:1,mod_vlan_vid:10`.
/// Instructions (meter, goto_table, write_metadata) are rejected; `drop` gives an empty list.
/// Set-field prerequisites cannot be checked here (there is no match).
pub fn parse_actions(s: &str) -> Result<Vec<Action>> {
    parse_action_tokens(&split_tokens(s, 0, false))
}

/// [`parse_actions`] over tokens already split.
pub(in super::super) fn parse_action_tokens(list: &[Tok<'_>]) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    let mut dropped = false;
    for &tok in list {
        match parse_one_action(tok, ActionCtx::Bucket)? {
            Item::Action(a) if !dropped => out.push(a),
            Item::Drop if out.is_empty() && !dropped => dropped = true,
            _ => return Err(tok.err("`drop` must be the only action")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::ACTIONS;

    #[test]
    fn every_action_name_is_lower_case_and_in_one_row() {
        let mut seen = std::collections::BTreeSet::new();
        for (names, _) in ACTIONS {
            for name in *names {
                assert_eq!(
                    *name,
                    name.to_ascii_lowercase(),
                    "the table matches lower case"
                );
                assert!(seen.insert(*name), "`{name}` is in two rows");
            }
        }
    }
}
