//! OpenFlow 1.3 and the `vswitch.v1` API: the mapping between the codec's messages
//! ([`crate::openflow`]) and the API's flow types ([`crate::v1`]), so that what a
//! controller writes over OpenFlow is the same flow, meter or group a gRPC client writes,
//! validated by the same rules as the text syntax ([`crate::flow_text::check_match`] and
//! friends).
//!
//! Each direction is a table or a match with one arm per wire item, so a field or action
//! the flow language gains is one row: [`fields::FIELDS`] (OXM/NXM field to API field),
//! [`actions`] (one arm per wire action), [`instructions`]. Whatever the API does not
//! have yet is refused with the OpenFlow error Open vSwitch sends for something it does
//! not know (`BAD_MATCH/BAD_FIELD`, `BAD_ACTION/BAD_TYPE`, `BAD_EXP_TYPE`,
//! `BAD_INSTRUCTION/UNSUP_INST`).
//!
//! - [`matches`], [`actions`], [`instructions`]: both directions; the Nicira extension
//!   actions (move, load, resubmit, ct, ...) in `nx`, which [`actions`] calls.
//! - [`flows`]: FLOW_MOD to an update; flows back as FLOW stats entries and FLOW_REMOVED.
//! - [`groups`], [`meters`]: GROUP_MOD and METER_MOD to updates; descriptions and stats back.
//! - [`ports`]: port descriptions and stats, packet-in and packet-out, `OFPP_LOCAL`.
//! - [`features`]: table, group and meter features derived from the tables above.
//!
//! Layering: this module sits between [`crate::openflow`] (which knows nothing of the API)
//! and the daemon's channel; it never looks at the switch.

pub mod actions;
#[cfg(test)]
mod conj_tests;
#[cfg(test)]
mod controller_tests;
pub mod features;
pub mod fields;
pub mod flows;
pub mod groups;
pub mod instructions;
pub mod matches;
pub mod meters;
mod nx;
mod nx_controller;
pub mod ports;
