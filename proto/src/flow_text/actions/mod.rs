//! Actions: each action is parsed by name through one table ([`table::ACTIONS`]), one small
//! function per action in the file of its concern, and printed back by [`format`].
//!
//! - `call`: one action token split into name and argument, where it is parsed (a flow's
//!   action list or a group bucket), and what parsing yields (an action, or an instruction
//!   written among the actions: `meter`, `write_metadata`, `goto_table`, `drop`).
//! - `controller`: `controller(...)` with Open vSwitch's packet-in arguments.
//! - `output`: where the packet goes (`output`, reserved ports, `group`,
//!   `set_queue`, `enqueue`, `pop_queue`, a bare port number or name).
//! - `headers`: VLAN tags and TTL (`push_vlan`, `pop_vlan`, `dec_ttl`, the OpenFlow 1.0
//!   `mod_vlan_*` / `set_vlan_*`).
//! - `mpls`: MPLS headers (`push_mpls`, `pop_mpls`, `set_mpls_*`, `dec_mpls_ttl`).
//! - `set_field`: `set_field`, `load`, the `mod_*` spellings and `set_tunnel`.
//! - `conntrack`: `ct(...)` and `ct_clear` (syntax in `flow_text::ct`).
//! - `nicira`: the Nicira extensions over fields and tables (`move`, `load`, `push`,
//!   `pop`, `output:FIELD[..]`, `resubmit`, `note`, `exit`, `clone`).
//! - `conjunction`: `conjunction(id,k/n)` (its rules in `flow_text::conj`).
//! - `control`: the instructions written as actions (`drop`, `meter`, `goto_table`,
//!   `write_metadata`).
//! - `table`: the name table and the list parsers.
//! - `format`: actions as text.
//!
//! A new action is a function in the file of its concern and a row in [`table::ACTIONS`]
//! (and an arm in `format` when it has its own API message).

mod call;
mod conjunction;
mod conntrack;
mod control;
mod controller;
mod format;
mod headers;
mod mpls;
mod nicira;
mod output;
mod set_field;
mod table;

pub(super) use call::{ActionCtx, Item};
pub(super) use format::format_action;
pub use format::format_actions;
pub(super) use headers::normalize_vlan;
pub use table::parse_actions;
pub(super) use table::{parse_action_tokens, parse_one_action};
