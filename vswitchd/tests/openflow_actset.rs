//! The action-set instructions over OpenFlow 1.3 with a real `ovs-ofctl`: flows written
//! with `write_actions(...)`, `clear_actions` and `write_metadata` through our OpenFlow
//! channel are stored as the same flows the text syntax writes (`flowctl dump-flows` shows
//! them) and are listed back over OpenFlow as Open vSwitch 3.1 lists the same flows
//! (a private instance on its dummy datapath gets the same commands from the same
//! `ovs-ofctl`); a write-actions holding what the action set cannot hold is refused.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;
use common::ovs::Ovs;

fn wait_for_socket(p: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        assert!(Instant::now() < deadline, "no listener at {}", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `ovs-ofctl -O OpenFlow13 ARGS` against `target` (`SW` in ARGS); must succeed.
fn ofctl(ovs: &Ovs, target: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.replace("SW", target)).collect();
    let mut all = vec!["-O", "OpenFlow13"];
    all.extend(args.iter().map(String::as_str));
    let (ok, out) = ovs.ofctl_any(&all);
    assert!(ok, "ovs-ofctl {all:?} failed: {out}");
    out
}

/// `dump-flows --no-stats`, the reply's header left out, lines sorted.
fn flows(ovs: &Ovs, target: &str) -> Vec<String> {
    let out = ofctl(ovs, target, &["--no-stats", "dump-flows", "SW"]);
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with("OFPST_FLOW") && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    v.sort();
    v
}

const FLOWS: &[&str] = &[
    "table=0,priority=10,in_port=1,actions=write_actions(output:2)",
    "table=0,priority=20,ip,actions=clear_actions,write_actions(set_field:10.0.0.9->ip_dst,output:2),write_metadata:0x5/0xff,goto_table:1",
    "table=0,priority=30,in_port=2,actions=output:1,write_actions(push_vlan:0x8100,set_field:4102->vlan_vid,output:1)",
    "table=1,priority=5,actions=clear_actions",
    "table=1,priority=6,metadata=0x5/0xff,actions=write_actions(set_field:7->reg0,resubmit(,2)),goto_table:2",
];

#[test]
fn write_and_clear_actions_travel_as_open_vswitch_lists_them() {
    let ovs = Ovs::start();
    ovs.add_br("br0");
    ovs.add_dummy_port("br0", "p1", 1);
    ovs.add_dummy_port("br0", "p2", 2);
    let theirs = format!("unix:{}", ovs.dir().join("br0.mgmt").display());
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let sock = dir.path().join("br0.ofp");
    d.ok(&[
        "set-controller",
        "br0",
        &format!("punix:{}", sock.display()),
    ]);
    d.ok(&["add-port", "br0", "p1", "type=memory", "ofport_request=1"]);
    d.ok(&["add-port", "br0", "p2", "type=memory", "ofport_request=2"]);
    wait_for_socket(&sock);
    let ours = format!("unix:{}", sock.display());
    for t in [&ours, &theirs] {
        ofctl(&ovs, t, &["del-flows", "SW"]);
        for f in FLOWS {
            ofctl(&ovs, t, &["add-flow", "SW", f]);
        }
    }
    let (o, t) = (flows(&ovs, &ours), flows(&ovs, &theirs));
    assert_eq!(o, t, "ours (left) and Open vSwitch's (right) differ");
    assert_eq!(o.len(), FLOWS.len(), "{o:?}");
    assert!(
        o.iter()
            .any(|l| l.contains("actions=write_actions(output:2)")),
        "{o:?}"
    );
    // The same flows in the one flow table: flowctl reads what OpenFlow wrote.
    let ctl = d.ok(&["dump-flows", "br0"]);
    assert!(
        ctl.contains("clear_actions,write_actions(set_field:10.0.0.9->ip_dst,output:2),write_metadata:0x5/0xff,goto_table:1"),
        "{ctl}"
    );
    // And what flowctl writes is listed over OpenFlow.
    d.ok(&[
        "add-flow",
        "br0",
        "table=2,priority=1,actions=write_actions(dec_ttl,output:1)",
    ]);
    let o = flows(&ovs, &ours);
    assert!(
        o.iter()
            .any(|l| l.contains("actions=write_actions(dec_ttl,output:1)")),
        "{o:?}"
    );
    // A FLOW_MOD whose write-actions holds an action the set cannot hold (a note) is
    // refused whole.
    let (ok, out) = ovs.ofctl_any(&[
        "-O",
        "OpenFlow13",
        "add-flow",
        &ours,
        "table=3,actions=write_actions(note:01)",
    ]);
    assert!(!ok && out.contains("OFPBAC_UNSUPPORTED_ORDER"), "{out}");
    assert!(!d.ok(&["dump-flows", "br0"]).contains("table=3"));
}
