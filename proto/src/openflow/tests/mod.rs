//! Codec tests on real bytes.
