//! (classifier: being written)
