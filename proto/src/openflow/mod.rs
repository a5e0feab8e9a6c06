//! The OpenFlow codec: OpenFlow 1.3 (wire version 0x04) as a switch receives and sends it,
//! with the Nicira and ONF extensions ovs-ofctl and Faucet use, and the OpenFlow 1.4
//! messages the channel may negotiate (bundles).
//!
//! Reading is zero-copy and bounds-checked, smoltcp style: [`header::Header`] is a view with
//! `new_checked`; every message body parses into a small struct of values and borrowed,
//! already-checked views ([`list::List`] of actions, instructions, OXMs, buckets, bands,
//! properties, multipart entries) whose iterators cannot fail. Writing goes into a
//! `Vec<u8>`: each struct's `emit` computes lengths and padding. Untrusted input never
//! panics: a parse fails with the [`error::OfpError`] Open vSwitch would send back.
//!
//! Entry points: [`message::parse`] for one framed message, [`header::frame_len`] to cut a
//! stream, [`message::Message::emit`] or [`message::emit`] to write, and
//! [`multipart::ReplyWriter`] to split large multipart replies under 64 KiB.
//!
//! This codec knows nothing of the gRPC types: mapping OXMs and actions to the API's match
//! and action messages is the channel's job.

pub mod actions;
pub mod body;
pub mod bundle;
pub mod error;
pub mod error_msg;
pub mod fields;
pub mod flow;
pub mod group;
pub mod header;
pub mod hello;
pub mod ids;
pub mod instructions;
pub mod list;
pub mod message;
pub mod meter;
pub mod multipart;
pub mod nx_actions;
pub mod nx_ct;
pub mod nx_emit;
pub mod nx_learn;
pub mod oxm;
pub mod packet;
pub mod port;
pub mod stats;
pub mod switch;
pub mod table_features;
pub mod version;
pub mod wire;

#[cfg(test)]
mod tests;

pub use error::OfpError;
pub use header::MsgType;
pub use message::{Message, parse};
pub use version::Version;
