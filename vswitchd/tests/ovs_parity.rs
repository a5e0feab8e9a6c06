//! What someone coming from Open vSwitch tries first works here as it does there, checked
//! against Open vSwitch 3.1 itself on this machine: a private instance (`common::ovs`, the
//! dummy datapath, every file in a temporary directory) next to our daemon, the same
//! commands given to both, the answers compared.

mod common;

use common::Daemon;
use common::ovs::Ovs;

/// The flows of a `dump-flows` listing (ovs-ofctl's or flowctl's), each reduced to what
/// the flow is: its fields without counters, durations and ages, then its actions, e.g.
/// `cookie=0x0 table=0 priority=0 actions=NORMAL`. Header lines (`NXST_FLOW reply`) go.
fn flows(dump: &str) -> Vec<String> {
    const VOLATILE: [&str; 5] = ["duration", "n_packets", "n_bytes", "idle_age", "hard_age"];
    let mut out: Vec<String> = dump
        .lines()
        .filter_map(|l| {
            let (fields, actions) = l.trim().split_once("actions=")?;
            let mut kept: Vec<&str> = fields
                .split([',', ' '])
                .filter(|f| !f.is_empty())
                .filter(|f| !VOLATILE.iter().any(|v| f.starts_with(&format!("{v}="))))
                .collect();
            kept.sort();
            Some(format!("{} actions={actions}", kept.join(" ")))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn add_br_gives_the_learning_switch_ovs_vsctl_add_br_gives() {
    let ovs = Ovs::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());

    ovs.add_br("br1");
    d.ok(&["add-br", "br1"]);
    let theirs = flows(&ovs.ofctl(&["dump-flows", "br1"]));
    let ours = flows(&d.ok(&["dump-flows", "br1"]));
    assert_eq!(
        theirs,
        ["cookie=0x0 priority=0 table=0 actions=NORMAL"],
        "Open vSwitch changed: {}",
        ovs.ofctl(&["dump-flows", "br1"])
    );
    assert_eq!(
        ours, theirs,
        "flowctl dump-flows br1 differs from ovs-ofctl's"
    );
    // `--no-stats` lists the same flow, in the same layout.
    assert!(
        ovs.ofctl(&["--no-stats", "dump-flows", "br1"])
            .contains("priority=0 actions=NORMAL")
    );
    assert_eq!(
        d.ok(&["dump-flows", "--no-stats", "br1"]),
        "priority=0 actions=NORMAL\n"
    );

    // The flow is an ordinary flow: deleted by del-flows, in both.
    ovs.ofctl(&["del-flows", "br1"]);
    d.ok(&["del-flows", "br1"]);
    assert_eq!(
        flows(&ovs.ofctl(&["dump-flows", "br1"])),
        Vec::<String>::new()
    );
    assert_eq!(flows(&d.ok(&["dump-flows", "br1"])), Vec::<String>::new());

    // A bridge whose controller is to program it: fail mode secure, no flow in either.
    ovs.vsctl(&[
        "add-br",
        "br2",
        "--",
        "set",
        "bridge",
        "br2",
        "datapath_type=dummy",
        "fail_mode=secure",
    ]);
    assert_eq!(
        flows(&ovs.ofctl(&["dump-flows", "br2"])),
        Vec::<String>::new()
    );
}
