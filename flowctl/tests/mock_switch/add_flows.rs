//! add-flows: batching, failures with `FILE:LINE` and acknowledged counts, parse errors.

use super::*;
use proto::v1::Flow;

#[test]
fn add_flows_in_batches_of_5000_and_dump_round_trip() {
    let h = Harness::start();
    let file = h.write_file("flows.txt", &flows_text(12_001));
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(h.state.lock().unwrap().batches, [5000, 5000, 2001]);

    let dump = h.flowctl(&["dump-flows", "br0"]);
    assert_eq!(dump.status.code(), Some(0), "{}", stderr(&dump));
    let text = stdout(&dump);
    assert_eq!(text.lines().count(), 12_001);
    assert!(text.starts_with("cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=180, "));

    // The dump reads back (through stdin) to the same flows.
    let o = h.flowctl_stdin(&["add-flows", "br1", "-"], Some(&text));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st = h.state.lock().unwrap();
    let strip = |b: &str| -> Vec<Flow> {
        st.flows
            .iter()
            .filter(|(x, _)| x == b)
            .map(|(_, f)| f.clone())
            .collect()
    };
    assert_eq!(strip("br0"), strip("br1"));
}

#[test]
fn add_flows_failure_midway_reports_acknowledged_count() {
    let h = Harness::start();
    h.state.lock().unwrap().die_at_write = Some(1);
    let file = h.write_file("flows.txt", &flows_text(12_001));
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("flowctl: UNAVAILABLE: connection reset (5000 of 12001 flows were acknowledged before the failure)"),
        "{err}"
    );
    // It stops at the failure.
    assert_eq!(h.state.lock().unwrap().batches, [5000, 5000]);
}

#[test]
fn add_flows_refused_update_points_at_its_line() {
    let h = Harness::start();
    let mut text = flows_text(7000);
    text.push_str("\n# the bad one:\ncookie=0xbad,priority=1,actions=drop\n");
    let file = h.write_file("flows.txt", &text);
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    // 1 comment line + 7000 flows + blank + comment = line 7004.
    assert!(
        err.contains(&format!(
            "{file}:7004: update 2000: INVALID_ARGUMENT: bad cookie (field flow.cookie)"
        )),
        "{err}"
    );
    assert!(
        err.contains("(5000 of 7001 flows were acknowledged before the failure)"),
        "{err}"
    );
    assert!(
        err.contains("    cookie=0xbad,priority=1,actions=drop"),
        "{err}"
    );
}

#[test]
fn parse_errors_send_nothing() {
    let h = Harness::start();
    let mut text = flows_text(100);
    text.push_str("priority=1,tcp_dst=80,actions=drop\n");
    let file = h.write_file("flows.txt", &text);
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with(&format!("{file}:102: ")), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[1], "priority=1,tcp_dst=80,actions=drop");
    assert!(lines[2].starts_with("           ^"), "{err}");

    let o = h.flowctl(&["add-flow", "br0", "actions=output:"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(h.state.lock().unwrap().batches.is_empty());
}

#[test]
fn refused_update_in_a_full_batch_keeps_every_status() {
    // 5000 statuses in grpc-status-details-bin: a trailer well over hyper's 16 KiB default.
    let h = Harness::start();
    let mut text = flows_text(4999);
    text.push_str("cookie=0xbad,priority=1,actions=drop\n");
    let file = h.write_file("flows.txt", &text);
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{file}:5001: update 4999: INVALID_ARGUMENT")),
        "{err}"
    );
    assert!(
        err.contains("(0 of 5000 flows were acknowledged before the failure)"),
        "{err}"
    );
}
