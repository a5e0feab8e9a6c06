//! The action table: every action name and the function that parses it, and the parsers of
//! whole action lists built on it.

use crate::v1::Action;

use super::super::lexer::{Result, Tok, split_tokens};
use super::super::ports::parse_port_number;
use super::call::{ActionCtx, Call, Item, output};
use super::headers::normalize_vlan;
use super::{
    conjunction, conntrack, control, controller, headers, mpls, nicira, output as out, set_field,
};

/// Parses one action; errors point into the token.
type ParseFn = fn(&Call<'_>) -> Result<Item>;

/// Every action, by its lower-case names.
pub(super) const ACTIONS: &[(&[&str], ParseFn)] = &[
    (&["drop"], control::drop),
    (&["output"], out::output),
    (&["controller"], controller::controller),
    (
        &["in_port", "normal", "flood", "all", "local"],
        out::reserved,
    ),
    (&["group"], out::group),
    (&["set_queue"], out::set_queue),
    (&["push_vlan"], headers::push_vlan),
    (&["pop_vlan", "strip_vlan"], headers::pop_vlan),
    (&["dec_ttl"], headers::dec_ttl),
    (&["mod_vlan_vid", "set_vlan_vid"], headers::vlan_vid),
    (&["mod_vlan_pcp", "set_vlan_pcp"], headers::vlan_pcp),
    (&["enqueue"], out::enqueue),
    (&["pop_queue"], out::pop_queue),
    (&["push_mpls"], mpls::push_mpls),
    (&["pop_mpls"], mpls::pop_mpls),
    (&["dec_mpls_ttl"], mpls::dec_mpls_ttl),
    (
        &["set_mpls_label", "set_mpls_tc", "set_mpls_ttl"],
        mpls::set_mpls,
    ),
    (&["set_tunnel", "set_tunnel64"], set_field::set_tunnel),
    (&["mod_nw_ecn"], set_field::mod_nw_ecn),
    (&["apply_actions"], control::apply_actions),
    (&["meter"], control::meter),
    (&["goto_table"], control::goto_table),
    (&["write_metadata"], control::write_metadata),
    (&["write_actions"], control::write_actions),
    (&["clear_actions"], control::clear_actions),
    (&["set_field"], set_field::set_field),
    // Nicira extensions over fields and tables.
    (&["load"], nicira::load),
    (&["move"], nicira::r#move),
    (&["push"], nicira::push),
    (&["pop"], nicira::pop),
    (&["resubmit"], nicira::resubmit),
    (&["note"], nicira::note),
    (&["exit"], nicira::exit),
    (&["clone"], nicira::clone),
    (&["multipath"], nicira::multipath),
    (&["conjunction"], conjunction::conjunction),
    (
        &[
            "mod_dl_src",
            "mod_dl_dst",
            "mod_nw_src",
            "mod_nw_dst",
            "mod_tp_src",
            "mod_tp_dst",
            "mod_nw_ttl",
        ],
        set_field::mod_field,
    ),
    (&["mod_nw_tos"], set_field::mod_nw_tos),
    (&["ct"], conntrack::ct),
    (&["ct_clear"], conntrack::ct_clear),
];

/// Open vSwitch actions this switch does not execute, each with the reason given when a
/// flow uses it (so that an unknown word is not taken for a port name).
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "sample",
        "this switch exports no IPFIX or sFlow samples (no collector sets); see docs/flow-language.md",
    ),
    (
        "unroll_xlate",
        "UNROLL is an internal action that shouldn't be used via OpenFlow",
    ),
    (
        "encap",
        "this switch carries Ethernet frames only (no NSH or other packet types); see docs/flow-language.md",
    ),
    (
        "decap",
        "this switch carries Ethernet frames only (no NSH or other packet types); see docs/flow-language.md",
    ),
    (
        "dec_nsh_ttl",
        "this switch carries Ethernet frames only (no NSH); see docs/flow-language.md",
    ),
    (
        "fin_timeout",
        "flows here keep their timeouts when TCP FIN or RST passes; see docs/flow-language.md",
    ),
    (
        "debug_recirc",
        "a debugging action of Open vSwitch's own datapath",
    ),
    (
        "debug_slow",
        "a debugging action of Open vSwitch's own datapath",
    ),
];

/// Open vSwitch actions that another part of the flow language covers (Nicira extensions
/// and conntrack); until they are built a flow using one is refused as unsupported.
const NOT_YET: &[&str] = &[
    "learn",
    "nat",
    "bundle",
    "bundle_load",
    "check_pkt_larger",
    "delete_field",
];

/// Parses one token of an action list: `name`, `name:arg` or `name(args)`, or a bare port
/// number (`2` means `output:2`).
pub(in super::super) fn parse_one_action(tok: Tok<'_>, ctx: ActionCtx) -> Result<Item> {
    let call = Call::split(tok, ctx)?;
    if let Some((_, parse)) = ACTIONS
        .iter()
        .find(|(names, _)| names.contains(&call.lname.as_str()))
    {
        return parse(&call);
    }
    let name = call.name;
    if let Some((_, why)) = UNSUPPORTED.iter().find(|(n, _)| *n == call.lname) {
        return Err(call
            .name_tok()
            .err(format!("`{name}` is not supported: {why}")));
    }
    if NOT_YET.contains(&call.lname.as_str()) {
        return Err(call
            .name_tok()
            .err(format!("unknown or unsupported action `{name}`")));
    }
    // A bare word that is no action is a port, as in ovs-ofctl: `2` means `output:2`,
    // `p1` means `output:p1` (the switch resolves the name).
    if call.arg.is_none()
        && let Ok(p) = parse_port_number(tok)
    {
        return Ok(output(p, None));
    }
    Err(call.name_tok().err(format!("unknown action `{name}`")))
}

/// Parses a plain action list (group buckets, packet-out): `output:1,mod_vlan_vid:10`
/// (commas or spaces between actions). Instructions (meter, goto_table, write_metadata)
/// are rejected; `drop` gives an empty list. Set-field prerequisites cannot be checked here
/// (there is no match).
pub fn parse_actions(s: &str) -> Result<Vec<Action>> {
    parse_action_tokens(&split_tokens(s, 0, true))
}

/// [`parse_actions`] over tokens already split.
pub(in super::super) fn parse_action_tokens(list: &[Tok<'_>]) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    let mut dropped = false;
    for &tok in list {
        match parse_one_action(tok, ActionCtx::Bucket)? {
            Item::Action(a) if !dropped => out.push(a),
            Item::Drop if out.is_empty() && !dropped => dropped = true,
            Item::Action(_) | Item::Drop => {
                return Err(tok.err("\"drop\" must not be accompanied by any other action"));
            }
            _ => return Err(tok.err(format!("`{}` is not allowed in a group bucket", tok.text))),
        }
    }
    Ok(normalize_vlan(out, None))
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
