//! (meter: being written)
