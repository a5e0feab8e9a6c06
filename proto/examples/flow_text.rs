//! Reads flows (one per line, as `add-flows` takes them; `#` comments and blank lines
//! skipped) and prints each as the switch will print it in `dump-flows --no-stats`, or the
//! parser's error: a check of a flow file without a switch, like `ovs-ofctl parse-flows`.
//!
//! ```sh
//! cargo run -p proto --example flow_text < flows.txt
//! ```

use std::io::BufRead;

use proto::flow_text::{format_flow, parse_flow};

fn main() {
    let stdin = std::io::stdin();
    let mut failed = false;
    for (n, line) in stdin.lock().lines().enumerate() {
        let Ok(line) = line else { break };
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        match parse_flow(text) {
            Ok(f) => println!("{}", format_flow(&f)),
            Err(e) => {
                failed = true;
                println!("line {}: error: {e}", n + 1);
            }
        }
    }
    std::process::exit(i32::from(failed));
}
