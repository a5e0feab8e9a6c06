//! Shared helpers for the benchmarks: frame builders and pipeline setups.
