//! Every command, the dump-flows -> add-flows round trip, and a corpus of bad inputs.

use super::*;

#[test]
fn every_command_works_against_the_real_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path());

    // Bridges.
    assert_eq!(d.ok(&["list-br"]), "br0\n");
    d.ok(&["add-br", "br1"]);
    assert_eq!(d.ok(&["list-br"]), "br0\nbr1\n");
    d.ok(&["del-br", "br1"]);
    let o = d.fc(&["del-br", "br1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("NOT_FOUND"));
    d.ok(&["del-br", "--if-exists", "br1"]);

    // Ports.
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    d.ok(&["add-port", "br0", "p2", "type=memory", "ofport_request=5"]);
    let show = d.ok(&["show", "br0"]);
    assert!(show.contains("p1") && show.contains(" 5(p2)"), "{show}");
    d.ok(&["set-port", "br0", "p1", "tag=10"]);
    assert!(d.ok(&["show", "br0"]).contains("tag=10"));
    let ports = d.ok(&["dump-ports", "br0", "p2"]);
    assert!(ports.contains("port  5"), "{ports}");
    let o = d.fc(&["add-port", "br0", "p3", "type=afxdp-not-here"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("INVALID_ARGUMENT"));

    // Flows.
    d.ok(&["add-flow", "br0", "table=0,priority=100,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=mod_dl_dst:02:00:00:00:00:02,output:2"]);
    d.ok(&[
        "add-flow",
        "br0",
        "priority=90,in_port=p2,ip,actions=output:p1",
    ]);
    let o = d.with_stdin(
        &["add-flows", "br0", "-"],
        "# a comment\n\npriority=10,tcp,tp_dst=80,actions=drop\ncookie=0x5,priority=11,udp,tp_dst=53,actions=normal\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dump = d.ok(&["dump-flows", "br0"]);
    assert_eq!(dump.lines().count(), 5, "{dump}");
    assert!(
        dump.contains("in_port=5") && dump.contains("actions=output:1"),
        "{dump}"
    );
    assert_eq!(d.ok(&["dump-flows", "br0", "tcp"]).lines().count(), 1);
    d.ok(&["mod-flows", "br0", "tcp,actions=output:5"]);
    assert!(
        d.ok(&["dump-flows", "br0", "tcp"])
            .contains("actions=output:5")
    );
    d.ok(&[
        "mod-flows",
        "--strict",
        "br0",
        "priority=11,udp,tp_dst=53,actions=drop",
    ]);
    assert!(d.ok(&["dump-flows", "br0", "udp"]).contains("actions=drop"));
    // A strict delete with the wrong priority removes nothing; with the right one, the flow.
    d.ok(&["del-flows", "--strict", "br0", "priority=12,udp,tp_dst=53"]);
    assert_eq!(d.ok(&["dump-flows", "br0", "udp"]).lines().count(), 1);
    d.ok(&["del-flows", "--strict", "br0", "priority=11,udp,tp_dst=53"]);
    assert_eq!(d.ok(&["dump-flows", "br0", "udp"]).lines().count(), 0);
    let json = d.ok(&["--format", "json", "dump-flows", "br0"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("dump-flows json");
    assert!(v.to_string().contains("10.0.0.0"), "{json}");

    // Meters and groups.
    d.ok(&[
        "add-meter",
        "br0",
        "meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000",
    ]);
    assert!(d.ok(&["dump-meters", "br0"]).contains("meter=1"));
    d.ok(&["add-flow", "br0", "priority=5,arp,actions=meter:1,normal"]);
    assert!(d.ok(&["meter-stats", "br0", "1"]).contains('1'));
    d.ok(&[
        "add-group",
        "br0",
        "group_id=3,type=all,bucket=output:1,bucket=output:5",
    ]);
    assert!(d.ok(&["dump-groups", "br0"]).contains("group_id=3"));
    d.ok(&["add-flow", "br0", "priority=6,icmp,actions=group:3"]);
    d.ok(&["group-stats", "br0"]);
    d.ok(&["del-groups", "br0", "group_id=3"]);
    // OpenFlow 1.3: the flow using the group went with it.
    assert_eq!(d.ok(&["dump-flows", "br0", "icmp"]).lines().count(), 0);
    d.ok(&["del-meter", "br0", "1"]);
    assert_eq!(d.ok(&["dump-flows", "br0", "arp"]).lines().count(), 0);
    assert!(!d.ok(&["dump-meters", "br0"]).contains("meter=1"));

    // Stats and tables.
    d.ok(&["fdb-show", "br0"]);
    assert!(d.ok(&["dump-tables", "br0"]).contains('0'));
    assert!(d.ok(&["pmd-stats"]).contains("pmd"));
    d.ok(&["pmd-stats-clear"]);
    let v: serde_json::Value =
        serde_json::from_str(&d.ok(&["--format", "json", "dump-ports", "br0"])).expect("json");
    assert!(v.to_string().contains("p2"));

    // monitor streams events: a port added while it watches.
    let mut mon = Command::new(flowctl_binary())
        .arg("--server")
        .arg(d.server())
        .args(["monitor", "br0", "--count", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("monitor");
    // Wait until it is subscribed (it says so on stderr), then cause an event.
    std::thread::sleep(Duration::from_millis(500));
    d.ok(&["add-port", "br0", "p9", "type=memory"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(_)) = mon.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = mon.kill();
            panic!("monitor saw no event");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = mon.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("p9"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    d.ok(&["del-port", "br0", "p9"]);
    assert_eq!(d.fc(&["del-port", "br0", "p9"]).status.code(), Some(1));
    d.ok(&["del-port", "--if-exists", "br0", "p9"]);

    // A clean SIGTERM, then everything is back after a restart.
    let before = lines(&d.ok(&["dump-flows", "--no-stats", "br0"]));
    d.term();
    let d2 = Daemon::start(dir.path());
    assert_eq!(lines(&d2.ok(&["dump-flows", "--no-stats", "br0"])), before);
    assert!(d2.ok(&["show", "br0"]).contains("tag=10"));
}

#[test]
fn dump_flows_feeds_back_into_add_flows() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let flows = "\
table=0,priority=100,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=mod_dl_dst:02:00:00:00:00:02,output:2
priority=200,dl_vlan=10,dl_vlan_pcp=3,actions=pop_vlan,output:3
priority=201,tcp,nw_src=192.168.0.0/16,tp_dst=443,actions=set_field:10.1.1.1->ip_dst,dec_ttl,goto_table:4
table=4,priority=1,cookie=0xabc,idle_timeout=60,hard_timeout=600,actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:1
priority=7,arp,arp_tpa=10.0.0.1,arp_op=1,actions=controller
priority=8,ipv6,ipv6_src=2001:db8::/64,actions=flood
priority=9,udp6,tp_src=546,tp_dst=547,actions=all
priority=10,tun_id=0x42,metadata=0xff/0xff,reg3=7,actions=write_metadata:0x1/0x1,goto_table:9
priority=11,icmp,icmp_type=8,nw_tos=0x20,actions=mod_nw_tos:0x40,in_port
";
    let o = d.with_stdin(&["add-flows", "br0", "-"], flows);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dump = d.ok(&["dump-flows", "br0"]);
    assert_eq!(dump.lines().count(), flows.lines().count() + 1);
    d.ok(&["add-br", "copy"]);
    d.ok(&["del-flows", "copy"]);
    let o = d.with_stdin(&["add-flows", "copy", "-"], &dump);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        lines(&d.ok(&["dump-flows", "--no-stats", "copy"])),
        lines(&d.ok(&["dump-flows", "--no-stats", "br0"]))
    );
}

#[test]
fn bad_inputs_fail_clearly_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    let before = d.ok(&["dump-flows", "--no-stats", "br0"]);
    // Rejected by the parser: exit 2, a caret under the offending token.
    for bad in [
        "priority=100,ip,nw_dst=10.0.0.0/33,actions=output:2",
        "nw_dst=10.0.0.1,actions=drop",
        "tcp,tp_dst=99999,actions=drop",
        "priority=70000,actions=drop",
        "table=300,actions=drop",
        "ip,actions=output:",
        "actions=frobnicate(1)",
        "dl_vlan=70000,actions=drop",
        "ip,actions=drop,output:1",
        "in_port=1,in_port=2,actions=drop",
        "",
        "actions=goto_table:0",
        "dl_dst=01:02:03,actions=drop",
        "ip,nw_src=300.1.1.1,actions=drop",
        "cookie=zz,actions=drop",
        "actions=set_field:1->nosuchfield",
        "arp,actions=set_field:1->tcp_dst",
    ] {
        let o = d.fc(&["add-flow", "br0", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains('^') || bad.is_empty(),
            "{bad:?}: no caret in {err}"
        );
    }
    // A bad line in the middle of a file: nothing of the file is added.
    let o = d.with_stdin(
        &["add-flows", "br0", "-"],
        "priority=1,ip,actions=drop\npriority=2,ip,nw_dst=1.2.3.4/40,actions=drop\npriority=3,arp,actions=drop\n",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("-:2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Rejected by the daemon: exit 1, the status code named.
    for (bad, code) in [
        ("priority=1,actions=group:99", "NOT_FOUND"),
        ("priority=1,actions=meter:99,output:1", "NOT_FOUND"),
        ("priority=1,in_port=nosuch,actions=drop", "NOT_FOUND"),
        // A bare word is an output port by name, as Open vSwitch reads it: there is none.
        ("priority=1,actions=frobnicate", "NOT_FOUND"),
    ] {
        let o = d.fc(&["add-flow", "br0", bad]);
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(code),
            "{bad:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // A file whose third flow the daemon refuses: with one batch nothing is added.
    let o = d.with_stdin(
        &["add-flows", "br0", "-"],
        "priority=1,ip,actions=drop\npriority=2,arp,actions=drop\npriority=3,actions=group:5\n",
    );
    assert_eq!(o.status.code(), Some(1));
    for bad in [
        vec!["add-meter", "br0", "meter=0,kbps,bands=type=drop,rate=1"],
        vec!["add-meter", "br0", "meter=1,kbps,bands=type=drop"],
        vec!["add-group", "br0", "group_id=1,type=fancy,bucket=output:1"],
        vec!["dump-flows", "br0", "nw_dst=1.2.3.4"],
        vec!["add-port", "br0"],
    ] {
        let o = d.fc(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
    }
    assert_eq!(d.fc(&["dump-flows", "nosuchbridge"]).status.code(), Some(1));
    assert_eq!(d.ok(&["dump-flows", "--no-stats", "br0"]), before);
}
