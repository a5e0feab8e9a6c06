//! The ovs-ofctl flow text syntax, parsed into and printed from the `vswitch.v1` messages.
//!
//! ```text
//! table=0,priority=100,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=mod_dl_dst:02:00:00:00:00:02,output:2
//! ```
//!
//! - [`parse_flow`] / [`format_flow`]: add-flow(s) lines. [`format_flow_dump`] prints the
//!   dump-flows form with counters, which [`parse_flow`] also reads back (the counters are
//!   ignored, as ovs-ofctl does).
//! - [`parse_match`]: del-flows / dump-flows filters; [`parse_flow_modify`]: mod-flows.
//! - [`parse_meter`] / [`format_meter`], [`parse_group`] / [`format_group`].
//! - [`check_match`] / [`check_set_field`]: the same rules for messages that arrive through
//!   the API rather than as text.
//!
//! Contract: every parser is a pure function over untrusted text. It never panics, and a
//! rejected input yields a [`ParseError`] with the byte offset and text of the offending
//! token. Parsed messages are canonical: match fields sorted by `Field` number, values
//! masked, all-ones masks written as empty, all-zero masks dropped, instructions in OpenFlow
//! order. So `parse_flow(&format_flow(&f)) == f` for every canonical `f`.
//!
//! Prerequisites are checked as Open vSwitch does: a field needs the match to pin its
//! protocol (`nw_dst` needs `ip` or `arp`, `tp_dst` needs `tcp`/`udp`/`sctp`, ...), and so
//! does a `set_field` on it.
//!
//! Layers, each module using only those above it:
//!
//! | module | what |
//! | --- | --- |
//! | `lexer` | tokens with byte offsets, [`ParseError`] |
//! | `scalar` | numbers, MAC and IP addresses, big-endian bytes |
//! | `limits` | priority, table, meter and group id ranges |
//! | `ports` | port numbers, names, reserved ports |
//! | `protocol` | the protocol a match pins, shorthands (`tcp6`), prerequisites |
//! | `fields` | the field table (data), field names, values as text |
//! | `subfield` | bit ranges of fields (`reg0[0..15]`), wide registers split into registers |
//! | `check` | API matches and set-fields validated against the field table |
//! | `vlan` | the VLAN names as one TCI match, and its canonical fields |
//! | `ct` | `ct_state` flags, 128-bit labels, the `ct(...)` action's syntax |
//! | `matches` | match fields from tokens |
//! | `match_text` | a match printed as ovs-ofctl prints it |
//! | `actions/` | the action table: one parser per action, actions printed |
//! | `instructions` | an `actions=` list as OpenFlow instructions, and back |
//! | `flow` | add-flow, filter and mod-flows lines, flows printed |
//! | `meter`, `group` | add-meter and add-group text, and back |
//! | `size` | a flow's length as an OpenFlow message, and the bound on it |
//!
//! Thread-safety: plain functions over values; no shared state.

mod actions;
mod actset;
mod check;
mod conj;
mod ct;
mod fields;
mod flow;
mod group;
mod instructions;
mod lexer;
mod limits;
mod match_text;
mod matches;
mod meter;
mod ports;
mod protocol;
mod scalar;
mod size;
mod subfield;
mod vlan;

pub use actions::{format_actions, parse_actions};
pub use actset::{check_action_set, not_in_action_set};
pub use check::{
    FieldError, FieldErrorKind, check_actions, check_match, check_set_field, check_set_field_value,
    check_subfields,
};
pub use conj::{CONJUNCTION_CLAUSES, check_conjunctions, conjunction_numbers_error};
pub use fields::{field_name, field_width};
pub use flow::{
    format_filter, format_flow, format_flow_dump, parse_flow, parse_flow_modify, parse_match,
};
pub use group::{assign_bucket_ids, format_group, parse_group};
pub use instructions::format_instructions;
pub use lexer::ParseError;
pub use limits::{
    DEFAULT_PRIORITY, MAX_GROUP_ID, MAX_METER_ID, MAX_OPENFLOW_MESSAGE_BYTES, MAX_TABLE_ID,
    METER_CONTROLLER, METER_SLOWPATH,
};
pub use match_text::format_match;
pub use meter::{format_meter, parse_meter};
pub use ports::{MAX_PORT_NO, OFPP_CONTROLLER, OFPP_LOCAL, OFPP_UNSET, is_valid_port_name};
pub use size::{check_flow_size, flow_mod_bytes};

#[cfg(test)]
mod actset_tests;
#[cfg(test)]
mod conj_tests;
#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod nicira_tests;
#[cfg(test)]
mod tests;
