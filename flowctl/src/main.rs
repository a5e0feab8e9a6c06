//! flowctl: the CLI (arrives with the control-plane issue).

fn main() {
    eprintln!("flowctl: no daemon API yet; see README.md");
    std::process::exit(2);
}
