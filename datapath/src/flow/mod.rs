//! Flow keys and their extraction from packets.

pub mod key;

pub use key::{Field, FieldRange, FlowKey, FlowMask, KEY_WORDS, PKT_WORDS, hash_words};
