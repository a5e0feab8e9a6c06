//! The real `vswitchd` binary on a temporary store and socket, driven by the real `flowctl`
//! binary: every command, the dump-flows -> add-flows round trip, `kill -9` in the middle of a
//! 10k-flow `add-flows` followed by a restart, and a corpus of bad inputs.

#[path = "../common/mod.rs"]
mod common;

mod commands;
mod daemon;
mod ports;
mod store;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, flowctl_binary, free_port, tls_file};

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}
