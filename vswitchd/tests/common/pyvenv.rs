//! The Python OpenFlow controllers the system tests run: Faucet 1.10 and os-ken 3.1 (which
//! Faucet pins, the last with `osken-manager`), from PyPI into `target/openflow-venv`,
//! created once and reused by every test binary (a lock file keeps two binaries from
//! building it at once) and checked once per binary. Missing prerequisites fail the test
//! saying what to install.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What the venv holds (Faucet pins os-ken 3.1).
const PACKAGES: &[&str] = &["faucet==1.10.12"];
const NEED: &str =
    "Python 3.11 to 3.13 with venv (apt-get install python3-venv) and access to PyPI";

/// `target/` of this build (the test binary is `target/<profile>/deps/<name>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("target directory above the test binary")
        .to_path_buf()
}

/// A Python between 3.11 and 3.13 that can make a venv.
fn python() -> String {
    for py in [
        "python3.13",
        "python3.12",
        "python3.11",
        "python3",
        "/usr/bin/python3",
    ] {
        let ok = Command::new(py)
            .args([
                "-c",
                "import sys, venv, ensurepip; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 13) else 1)",
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return py.to_string();
        }
    }
    panic!("no usable Python for Faucet and os-ken: needs {NEED}");
}

fn ready(venv: &Path) -> bool {
    venv.join("bin/osken-manager").exists()
        && Command::new(venv.join("bin/python"))
            .args(["-c", "import faucet, os_ken"])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// The venv's directory (its `bin/` holds `faucet`, `gauge`, `osken-manager`), created
/// if needed; the first call in a test binary checks it, later ones reuse the answer.
pub fn openflow_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(make_venv).clone()
}

fn make_venv() -> PathBuf {
    let target = target_dir();
    let venv = target.join("openflow-venv");
    let lock = File::create(target.join("openflow-venv.lock")).expect("venv lock file");
    lock.lock().expect("locking the venv");
    if ready(&venv) {
        return venv;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let py = python();
    let o = Command::new(&py)
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap_or_else(|e| panic!("{py} -m venv: {e} (needs {NEED})"));
    assert!(
        o.status.success(),
        "{py} -m venv {}: {} (needs {NEED})",
        venv.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "--disable-pip-version-check"])
        .args(PACKAGES)
        .output()
        .expect("running pip");
    assert!(
        o.status.success() && ready(&venv),
        "pip install {PACKAGES:?} into {} failed (needs {NEED}):\n{}",
        venv.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    venv
}
