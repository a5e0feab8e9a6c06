//! os-ken's binary OpenFlow 1.3 messages (`os_ken/tests/packet_data/of13/*`): every one
//! must decode and re-encode byte for byte, except those listed below with the reason.
//!
//! The files come from os-ken's source distribution on PyPI, fetched once with
//! `python3 -m pip download os-ken==VERSION --no-deps --no-binary :all:` into
//! `target/openflow-vectors/` and unpacked there. Without python3, pip or PyPI the test
//! fails and says so: it never passes without having read the vectors.

use super::round_trip;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The os-ken release whose vectors are read.
const OSKEN_VERSION: &str = "4.2.2";

/// Files that do not simply round-trip to "nothing opaque", and what is expected instead.
/// Opaque items are experimenter messages, actions and fields the codec does not know:
/// they still decode (as bytes) and re-encode exactly; the channel answers
/// BAD_EXPERIMENTER / BAD_EXP_TYPE / BAD_FIELD for them.
const EXPECTED: &[(&str, Result<&[&str], &str>)] = &[
    (
        // os-ken's own test cuts this message at 64 bytes: the header claims more.
        "libofproto-OFP13-flow_mod.truncated64",
        Err("parse: OFPBRC_BAD_LEN"),
    ),
    (
        // An experimenter action of a made-up experimenter, a Nicira action with an
        // unknown subtype (0x6578, the ASCII "ex" of its payload), and a set-field of ONF's pbb_uca in os-ken's private
        // OpenFlow 1.3 encoding (EXT-256: field 0 plus a 2-byte exp_type).
        "4-12-ofp_flow_stats_reply.packet",
        Ok(&[
            "experimenter action 0x5e30a78 subtype 0x6578",
            "experimenter action 0x2320 subtype 0x6578",
            "set_field of unknown field class 0xffff field 0 exp 0x4f4e4600",
        ]),
    ),
    (
        "4-16-ofp_experimenter.packet",
        Ok(&["experimenter message 0x5e30a78"]),
    ),
    (
        "4-2-ofp_flow_mod.packet",
        Ok(&[
            "experimenter action 0x65 subtype 0x0001",
            "set_field of unknown field class 0xffff field 0 exp 0x4f4e4600",
        ]),
    ),
    (
        "4-59-ofp_packet_in.packet",
        Ok(&["unknown field class 0xffff field 0 exp 0x4f4e4600"]),
    ),
    (
        "4-60-ofp_flow_mod.packet",
        Ok(&["unknown field class 0xffff field 0 exp 0x4f4e4600"]),
    ),
    (
        "4-61-ofp_experimenter_request.packet",
        Ok(&["experimenter multipart 0xdeadbeaf"]),
    ),
    (
        "4-62-ofp_experimenter_reply.packet",
        Ok(&["experimenter multipart 0xdeadbeaf"]),
    ),
    (
        // ONF EXT-187 flow monitoring: an experimenter multipart the codec keeps as bytes.
        "4-63-onf_flow_monitor_request.packet",
        Ok(&["experimenter multipart 0x4f4e4600"]),
    ),
];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

fn fetch() -> Result<PathBuf, String> {
    let root = target_dir().join("openflow-vectors");
    let top = format!("os_ken-{OSKEN_VERSION}");
    let of13 = root.join(&top).join("os_ken/tests/packet_data/of13");
    if of13.is_dir() {
        return Ok(of13);
    }
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let spec = format!("os-ken=={OSKEN_VERSION}");
    let pip = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            &spec,
            "--no-deps",
            "--no-binary",
            ":all:",
        ])
        .arg("-d")
        .arg(&root)
        .output()
        .map_err(|e| format!("running python3: {e} (install python3 and pip)"))?;
    if !pip.status.success() {
        return Err(format!(
            "`python3 -m pip download {spec} --no-deps --no-binary :all:` failed; the os-ken \
             vectors come from PyPI (is pip installed and PyPI reachable?):\n{}",
            String::from_utf8_lossy(&pip.stderr)
        ));
    }
    let tar = Command::new("tar")
        .arg("xzf")
        .arg(root.join(format!("{top}.tar.gz")))
        .arg("-C")
        .arg(&root)
        .arg(format!("{top}/os_ken/tests/packet_data/of13"))
        .status()
        .map_err(|e| format!("running tar: {e}"))?;
    if !tar.success() || !of13.is_dir() {
        return Err(format!("unpacking os-ken into {} failed", root.display()));
    }
    Ok(of13)
}

/// The directory of os-ken's OpenFlow 1.3 vectors, fetched on first use.
pub fn vectors() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(fetch) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn osken_vectors_decode_and_reencode_byte_for_byte() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors())
        .expect("vectors directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    assert!(files.len() >= 100, "only {} vectors found", files.len());
    let mut failures = Vec::new();
    let mut clean = 0;
    for path in &files {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(path).expect("read vector");
        let got = round_trip(&bytes);
        let want = EXPECTED
            .iter()
            .find(|e| e.0 == name)
            .map(|e| e.1.map(|v| v.to_vec()).map_err(str::to_string))
            .unwrap_or(Ok(Vec::new()));
        let got_cmp = got
            .clone()
            .map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let want_cmp = want.map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if got_cmp != want_cmp {
            failures.push(format!("{name}: got {got:?}, expected {want_cmp:?}"));
        }
        if matches!(got, Ok(ref v) if v.is_empty()) {
            clean += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every vector but the ten listed decodes to nothing opaque.
    assert_eq!(clean, files.len() - EXPECTED.len());
}
