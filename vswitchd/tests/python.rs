//! The API is usable outside Rust: `tests/python/run.sh` drives the real daemon from a
//! Python client built with grpcio from PyPI (it adds a flow and reads it back).

use std::path::Path;
use std::process::Command;

#[test]
fn a_python_grpc_client_adds_a_flow_and_reads_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("tests/python/run.sh"))
        .arg(env!("CARGO_BIN_EXE_vswitchd"))
        .output()
        .expect("running tests/python/run.sh (needs bash and python3)");
    assert!(
        out.status.success(),
        "python client test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("add-flow and read-back OK"));
}
