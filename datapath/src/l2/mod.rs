//! (l2: being written)
