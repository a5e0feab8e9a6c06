//! The daemon's logs as an operator reads them: JSON lines (`--log-format json`) that name
//! each API request's RPC and peer, every refused request logged once with its cause,
//! `--log-level` and `RUST_LOG` together, and a port going down and up logged once each.
//!
//! The port test needs root (namespaces, veths, AF_XDP). About 15 s.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Hosts};

/// The daemon's log as JSON objects (every line must be one).
fn json_lines(d: &Daemon) -> Vec<serde_json::Value> {
    d.log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Waits until the log has a line containing `needle`.
fn wait_for_log(d: &Daemon, needle: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !d.log().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log after {secs} s:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn json_lines_name_the_rpc_and_peer_and_each_api_error_is_logged_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start_logged(dir.path(), &["--log-format", "json"], &[]);
    d.ok(&["add-port", "br0", "m1", "type=memory"]);
    // Refused whole: logged by the API layer.
    let o = d.fc(&["add-port", "nosuch", "m2", "type=memory"]);
    assert!(!o.status.success());
    // Refused inside a Write.
    let o = d.fc(&["add-flow", "br0", "priority=5,in_port=m9,actions=drop"]);
    assert!(!o.status.success());
    wait_for_log(&d, "no bridge nosuch", 5);
    wait_for_log(&d, "m9", 5);
    let lines = json_lines(&d);
    let about = |needle: &str| -> Vec<&serde_json::Value> {
        lines
            .iter()
            .filter(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
            })
            .collect()
    };
    let refused = about("no bridge nosuch");
    assert_eq!(
        refused.len(),
        1,
        "logged {} times: {refused:?}",
        refused.len()
    );
    let r = refused[0];
    assert_eq!(r["level"], "WARN", "{r}");
    assert_eq!(r["fields"]["code"], "NOT_FOUND", "{r}");
    assert_eq!(r["span"]["name"], "api", "{r}");
    assert_eq!(r["span"]["rpc"], "AddPort", "{r}");
    let peer = r["span"]["peer"].as_str().unwrap_or_default();
    assert!(peer.starts_with("unix:pid="), "{r}");
    let flow = about("m9");
    assert_eq!(flow.len(), 1, "logged {} times: {flow:?}", flow.len());
    assert_eq!(flow[0]["span"]["rpc"], "Write", "{}", flow[0]);
    // A request that succeeds logs nothing as an error.
    assert!(lines.iter().all(|l| l["level"] != "ERROR"), "{}", d.log());
    assert!(about("serving on").len() == 1, "{}", d.log());
}

#[test]
fn log_level_and_rust_log_combine() {
    // The flag says errors only; RUST_LOG adds the API layer's warnings.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start_logged(
        dir.path(),
        &["--log-level", "error"],
        &[("RUST_LOG", "vswitchd::api_layer=warn")],
    );
    assert!(
        !d.fc(&["add-port", "nosuch", "m1", "type=memory"])
            .status
            .success()
    );
    wait_for_log(&d, "no bridge nosuch", 5);
    assert!(!d.log().contains("serving on"), "{}", d.log());
    // The flag alone: the refusal is not logged.
    let dir2 = tempfile::tempdir().expect("tempdir");
    let d2 = Daemon::start_logged(dir2.path(), &["--log-level", "error"], &[]);
    assert!(
        !d2.fc(&["add-port", "nosuch", "m1", "type=memory"])
            .status
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!d2.log().contains("nosuch"), "{}", d2.log());
    // A bad RUST_LOG is said and ignored.
    let dir3 = tempfile::tempdir().expect("tempdir");
    let d3 = Daemon::start_logged(dir3.path(), &[], &[("RUST_LOG", "=nonsense=")]);
    wait_for_log(&d3, "RUST_LOG", 5);
    wait_for_log(&d3, "serving on", 5);
}

#[test]
fn a_port_going_down_and_up_is_logged_once_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start_logged(dir.path(), &[], &[]);
    let h = Hosts::new("lgp", 78, 1);
    let p = h.ports[0].clone();
    d.ok(&["add-port", "br0", &p, "type=afxdp"]);
    h.unplug(1);
    wait_for_log(&d, "port is down", 10);
    h.plug(1);
    wait_for_log(&d, "port is up again", 10);
    // A few more link checks: nothing repeats.
    std::thread::sleep(Duration::from_secs(2));
    let log = d.log();
    let count = |needle: &str| {
        log.lines()
            .filter(|l| l.contains(needle) && l.contains(p.as_str()))
            .count()
    };
    assert_eq!(count("port is down: its interface is gone"), 1, "{log}");
    assert_eq!(count("port is up again"), 1, "{log}");
}
