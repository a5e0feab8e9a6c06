//! (group: being written)
