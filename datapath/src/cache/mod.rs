//! Per-poll-thread flow caches: an exact-match cache in front of a megaflow cache.
//!
//! What: [`MegaflowCache`] maps (masked packet key, mask) to a value — the compiled action
//! list the slow path produced for every packet that agrees with the key on the mask. It is
//! a tuple-space search over the masks seen, subtables tried most-hit first. [`Emc`] maps a
//! full packet key to a megaflow slot; a hit skips the tuple-space search entirely.
//!
//! Correctness rule: a megaflow is installed with the union of the masks the slow path
//! consulted, so any packet that agrees with its key on its mask gets the same tables result.
//! An EMC entry names a megaflow slot and generation; removing a megaflow bumps the
//! generation, which invalidates every EMC entry pointing at it without touching the EMC.
//!
//! Thread-safety: owned by one poll thread; nothing here is shared.

pub mod emc;
pub mod megaflow;

pub use emc::Emc;
pub use megaflow::{FlowRef, MegaflowCache};
