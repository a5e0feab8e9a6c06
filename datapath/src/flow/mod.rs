//! Flow keys and their extraction from packets.

pub mod compose;
pub mod extract;
pub mod key;
pub mod nd;
pub mod subfield;

pub use compose::compose;
pub use extract::{Layout, extract};
pub use key::{
    CT_WORDS, FRAG_ANY, FRAG_LATER, Field, FieldRange, FlowKey, FlowMask, KEY_WORDS, PKT_WORDS,
    VLAN_CFI, hash_packet, hash_words,
};
pub use subfield::Subfield;
