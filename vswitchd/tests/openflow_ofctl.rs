//! `ovs-ofctl -O OpenFlow13` as a client of the switch's OpenFlow channel, compared with
//! Open vSwitch 3.1 itself: a private instance (`common::ovs`, the dummy datapath) and our
//! daemon get the same bridge (ports 1 and 2), the same commands through the same
//! `ovs-ofctl`, and print the same thing, volatile counters aside. Where they differ on
//! purpose (what each datapath supports), the test says so and checks our side.

mod common;

use std::time::{Duration, Instant};

use common::Daemon;
use common::ovs::Ovs;

/// Our daemon and a private Open vSwitch, each with bridge `br0` and ports `p1` (1) and
/// `p2` (2), ours reached on a `punix:` OpenFlow listener.
struct Pair {
    ovs: Ovs,
    d: Daemon,
    ours: String,
    theirs: String,
    dir: tempfile::TempDir,
}

impl Pair {
    fn start() -> Pair {
        let ovs = Ovs::start();
        ovs.add_br("br0");
        ovs.add_dummy_port("br0", "p1", 1);
        ovs.add_dummy_port("br0", "p2", 2);
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
        let theirs = format!("unix:{}", ovs.dir().join("br0.mgmt").display());
        Pair {
            ovs,
            d,
            ours: format!("unix:{}", sock.display()),
            theirs,
            dir,
        }
    }

    /// Runs `ovs-ofctl -O OpenFlow13 ARGS` with `SW` replaced by the target of `side`.
    fn ofctl(&self, target: &str, args: &[&str]) -> (bool, String) {
        let mut all = vec!["-O", "OpenFlow13"];
        let args: Vec<String> = args.iter().map(|a| a.replace("SW", target)).collect();
        all.extend(args.iter().map(String::as_str));
        self.ovs.ofctl_any(&all)
    }

    /// Ours, as `ovs-ofctl` prints it; must succeed.
    fn ours(&self, args: &[&str]) -> String {
        let (ok, out) = self.ofctl(&self.ours, args);
        assert!(ok, "ovs-ofctl {args:?} against our switch failed: {out}");
        out
    }

    /// Runs the command against both; asserts the same success and the same output
    /// (normalized); returns ours.
    fn same(&self, args: &[&str]) -> String {
        let (ok_t, theirs) = self.ofctl(&self.theirs, args);
        let (ok_o, ours) = self.ofctl(&self.ours, args);
        let (theirs, ours) = (
            theirs.replace(&self.theirs, "SW"),
            ours.replace(&self.ours, "SW"),
        );
        assert_eq!(
            (ok_o, normalize(&ours)),
            (ok_t, normalize(&theirs)),
            "ovs-ofctl {args:?}: ours (left) differs from Open vSwitch's (right)\n--- ours:\n{ours}\n--- Open vSwitch:\n{theirs}"
        );
        ours
    }

    /// As [`Pair::same`], and both must succeed.
    fn same_ok(&self, args: &[&str]) -> String {
        let (ok, theirs) = self.ofctl(&self.theirs, args);
        assert!(
            ok,
            "ovs-ofctl {args:?} against Open vSwitch failed: {theirs}"
        );
        self.same(args)
    }

    /// Writes a flow file in the test's directory; returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write flow file");
        p.display().to_string()
    }
}

fn wait_for_socket(p: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !p.exists() {
        assert!(
            Instant::now() < deadline,
            "the switch never listened on {}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What is compared: every line with durations and ages taken out, the lines sorted (the
/// two switches list flows, groups and ports in different orders).
fn normalize(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .map(|l| {
            l.split([',', ' '])
                .filter(|w| {
                    !["duration=", "duration:", "idle_age=", "hard_age="]
                        .iter()
                        .any(|p| w.starts_with(p))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    v.sort();
    v
}

const FLOWS: &str = "\
table=0,priority=100,ip,nw_dst=10.0.0.0/24,actions=output:2
table=0,priority=90,in_port=1,dl_vlan=5,actions=strip_vlan,output:2
table=0,priority=80,in_port=2,actions=mod_vlan_vid:7,output:1
table=0,priority=70,tcp,tp_dst=80,actions=goto_table:1
table=0,cookie=0x10,priority=60,arp,arp_tpa=10.0.0.1,actions=CONTROLLER:128
table=0,priority=50,ipv6,ipv6_src=2001:db8::/32,actions=dec_ttl,output:1
table=0,priority=40,udp,udp_dst=53,actions=set_field:10.0.0.53->ip_dst,output:2
table=1,priority=10,reg0=0x5,actions=set_queue:1,output:1
table=1,priority=5,metadata=0x1/0xff,actions=drop
table=1,priority=1,actions=write_metadata:0x2/0xff,goto_table:2
table=2,priority=0,actions=NORMAL
";

#[test]
fn flow_commands_print_what_open_vswitch_prints() {
    let p = Pair::start();
    p.same(&["del-flows", "SW"]);
    let f = p.file("flows.txt", FLOWS);
    p.same(&["add-flows", "SW", &f]);
    p.same(&["dump-flows", "SW"]);
    p.same(&["dump-flows", "SW", "table=1"]);
    p.same(&["dump-flows", "SW", "cookie=0x10/-1"]);
    p.same(&["dump-flows", "SW", "ip"]);
    p.same(&["dump-aggregate", "SW"]);
    p.same(&["dump-aggregate", "SW", "table=0"]);
    p.same(&["diff-flows", "SW", &f]);

    // One at a time, then changes.
    p.same(&["add-flow", "SW", "priority=200,in_port=1,actions=output:2"]);
    p.same(&["mod-flows", "SW", "in_port=1,actions=drop"]);
    p.same(&[
        "--strict",
        "mod-flows",
        "SW",
        "priority=200,in_port=1,actions=output:1",
    ]);
    p.same(&["dump-flows", "SW", "in_port=1"]);
    p.same(&["dump-flows", "SW", "out_port=1"]);
    p.same(&[
        "--strict",
        "del-flows",
        "SW",
        "priority=90,in_port=1,dl_vlan=5",
    ]);
    p.same(&["del-flows", "SW", "ip"]);
    p.same(&["dump-flows", "SW"]);
    // What differs from a file is listed the same way, and replace-flows makes it so.
    let g = p.file("g.txt", "priority=11,in_port=1,actions=output:2\n");
    p.same(&["diff-flows", "SW", &g]);
    p.same(&["replace-flows", "SW", &g]);
    p.same(&["dump-flows", "SW"]);
    // Bundles: all of a file or nothing.
    p.same(&["del-flows", "SW"]);
    p.same(&["--bundle", "add-flows", "SW", &f]);
    p.same(&["dump-flows", "SW"]);
    p.same(&["--bundle", "replace-flows", "SW", &g]);
    p.same(&["dump-flows", "SW"]);
    let bad = p.file(
        "bad.txt",
        "priority=3,actions=output:1\npriority=4,actions=meter:77,output:2\n",
    );
    p.same(&["--bundle", "add-flows", "SW", &bad]);
    p.same(&["dump-flows", "SW"]);

    // Refusals: the same error, with the same request echoed.
    p.same(&[
        "add-flow",
        "SW",
        "priority=7,in_port=1,actions=goto_table:0",
    ]);
    p.same(&["add-flow", "SW", "priority=7,actions=meter:9,output:2"]);
    p.same(&["add-flow", "SW", "priority=7,actions=group:9"]);
    p.same(&["add-flow", "SW", "table=300,actions=drop"]);
    p.same(&[
        "add-flow",
        "SW",
        "priority=7,ip,actions=set_field:1->tcp_dst",
    ]);
    p.same(&["dump-flows", "SW"]);

    // Flows written over OpenFlow are the flows flowctl lists, and the other way round.
    p.d.ok(&["add-flow", "br0", "table=3,priority=9,actions=drop"]);
    let listed = p.ours(&["dump-flows", "SW", "table=3"]);
    assert!(
        listed.contains("table=3, n_packets=0, n_bytes=0, priority=9 actions=drop"),
        "{listed}"
    );
    let fc = p.d.ok(&["dump-flows", "br0", "--no-stats"]);
    assert_eq!(
        fc,
        "priority=11,in_port=1 actions=output:2\ntable=3, priority=9 actions=drop\n"
    );
}

/// The Nicira extensions of the flow language, as `ovs-ofctl` writes them in OpenFlow 1.3
/// (reg_move, reg_load, set-field, resubmit, note, exit, output_reg, stack push/pop,
/// clone, multipath, ct with nat and exec, ct_clear), listed back as Open vSwitch lists
/// them.
const NICIRA_FLOWS: &str = "\
table=0,priority=100,in_port=1,actions=move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31],resubmit(,1)
table=0,priority=90,in_port=2,actions=set_field:0x5/0xff->reg2,set_field:7->reg3,load:0x3->NXM_NX_REG4[4..5],resubmit:1
table=0,priority=80,ip,actions=ct(commit,zone=5,table=1,nat(src=10.0.0.1-10.0.0.9:1000-2000,random),exec(set_field:0x7->ct_mark))
table=0,priority=75,ipv6,actions=ct(table=2,nat),ct_clear,resubmit(LOCAL,2)
table=0,priority=70,actions=note:01.02.03,exit
table=0,priority=60,reg0=1,actions=output:NXM_NX_REG1[16..31]
table=0,priority=50,reg0=2,actions=push:NXM_NX_REG3[],pop:NXM_NX_REG2[8..15]
table=0,priority=40,reg0=3,actions=clone(output:1),multipath(symmetric_l4,50,hrw,4,0,NXM_NX_REG0[0..1])
table=1,priority=1,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:0x1/0x1->xreg1,output:2
table=2,priority=1,ct_state=+trk,ip,actions=ct(commit,exec(set_field:0x2->ct_mark,set_field:0x1/0x1->ct_label)),output:2
";

#[test]
fn nicira_extensions_print_what_open_vswitch_prints() {
    let p = Pair::start();
    p.same(&["del-flows", "SW"]);
    let f = p.file("nicira.txt", NICIRA_FLOWS);
    p.same_ok(&["add-flows", "SW", &f]);
    let dump = p.same(&["dump-flows", "SW"]);
    for want in [
        "resubmit(,1)",
        "load:0x5->NXM_NX_REG2[0..7]",
        "nat(src=",
        "multipath(",
    ] {
        assert!(dump.contains(want), "dump-flows lacks {want}:\n{dump}");
    }
    p.same(&["diff-flows", "SW", &f]);
    // One at a time too, and the same refusals (ovs-ofctl's own checks: a pop into a
    // read-only field, ct without an IP match).
    p.same_ok(&[
        "add-flow",
        "SW",
        "priority=5,actions=move:NXM_NX_REG5[]->NXM_NX_REG6[],resubmit(,3)",
    ]);
    p.same(&["add-flow", "SW", "priority=5,actions=pop:NXM_OF_ETH_TYPE[]"]);
    p.same(&["add-flow", "SW", "priority=5,arp,actions=ct(commit)"]);
    p.same(&["dump-flows", "SW", "table=0"]);
    p.same(&["del-flows", "SW", "reg0=3"]);
    p.same(&["dump-flows", "SW"]);
}

#[test]
fn groups_meters_ports_and_tables_print_what_open_vswitch_prints() {
    let p = Pair::start();
    p.same(&[
        "add-group",
        "SW",
        "group_id=1,type=all,bucket=output:1,bucket=output:2",
    ]);
    p.same(&[
        "add-group",
        "SW",
        "group_id=2,type=select,selection_method=hash,bucket=weight:10,output:1,bucket=weight:20,output:2",
    ]);
    p.same(&[
        "add-group",
        "SW",
        "group_id=4,type=indirect,bucket=output:1",
    ]);
    p.same(&["add-group", "SW", "group_id=1,type=all,bucket=output:1"]);
    p.same(&["dump-groups", "SW"]);
    p.same(&["dump-group-stats", "SW"]);
    p.same(&["mod-group", "SW", "group_id=1,type=all,bucket=output:2"]);
    p.same(&["add-flow", "SW", "priority=5,actions=group:4"]);
    p.same(&["del-groups", "SW", "group_id=4"]);
    p.same(&["dump-groups", "SW"]);
    p.same(&["dump-flows", "SW"]);
    // Fast failover, liveness and chaining as Open vSwitch claims them.
    let ff =
        "group_id=3,type=fast_failover,bucket=watch_port:1,output:1,bucket=watch_port:2,output:2";
    p.same(&["add-group", "SW", ff]);
    p.same(&["dump-groups", "SW", "group_id=3"]);
    let feat = p.ours(&["dump-group-features", "SW"]);
    assert!(
        feat.contains("Types:  0xf") && feat.contains("Capabilities:  0x7"),
        "{feat}"
    );

    p.same(&[
        "add-meter",
        "SW",
        "meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=1000",
    ]);
    p.same(&["add-meter", "SW", "meter=1,kbps,bands=type=drop,rate=5"]);
    p.same(&["add-meter", "SW", "meter=3,pktps,bands=type=drop,rate=100"]);
    p.same(&["dump-meters", "SW"]);
    p.same(&["meter-stats", "SW"]);
    p.same(&["mod-meter", "SW", "meter=1,kbps,bands=type=drop,rate=500"]);
    p.same(&["dump-meter", "SW", "meter=1"]);
    p.same(&[
        "add-flow",
        "SW",
        "priority=7,in_port=1,actions=meter:1,output:2",
    ]);
    p.same(&["del-meter", "SW", "meter=3"]);
    p.same(&["dump-meters", "SW"]);
    p.same(&["del-meters", "SW"]);
    p.same(&["dump-flows", "SW"]);
    // Ours also remarks DSCP (Open vSwitch's userspace datapath does not).
    let f = p.ours(&["meter-features", "SW"]);
    assert!(f.contains("band_types: drop dscp_remark"), "{f}");

    p.same(&["dump-tables", "SW"]);
    p.same(&["get-frags", "SW"]);
    // Ports: the same numbers, names and states. Addresses, speeds and Open vSwitch's
    // LOCAL port (ours has none until an internal port named like the bridge is added)
    // differ by nature.
    let ports = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with(' ') && l.contains("): addr:") && !l.contains("LOCAL"))
            .map(|l| l.split(": addr:").next().unwrap_or("").to_string())
            .collect()
    };
    let (_, theirs) = p.ofctl(&p.theirs, &["show", "SW"]);
    assert_eq!(ports(&p.ours(&["show", "SW"])), ports(&theirs));
    assert_eq!(
        ports(&p.ours(&["dump-ports-desc", "SW"])),
        [" 1(p1)", " 2(p2)"]
    );
    let stats = p.ours(&["dump-ports", "SW", "2"]);
    assert!(stats.contains("port  2: rx pkts=0"), "{stats}");
    // ovs-ofctl decodes our eight required table properties for every table.
    let tf = p.ours(&["dump-table-features", "SW"]);
    for want in [
        "table 0:",
        "tables 1...253: ditto",
        "instructions: meter apply_actions clear_actions write_actions write_metadata goto_table",
        "supported on Set-Field:",
        "max_entries=1000000",
    ] {
        assert!(
            tf.contains(want),
            "dump-table-features lacks {want:?}:\n{tf}"
        );
    }
}

/// `ovs-ofctl monitor` gets packet-ins and flow-removed messages; a packet-out runs the
/// flow table or goes to a port.
#[test]
fn monitor_sees_packet_ins_and_flow_removed_of_packet_outs_and_timeouts() {
    let p = Pair::start();
    let arp =
        "ffffffffffff000000000001080600010800060400010000000000010a000001000000000000a0000002";
    // A controller's bridge: no NORMAL flow.
    p.ours(&["del-flows", "SW"]);
    p.ours(&[
        "add-flow",
        "SW",
        "priority=300,in_port=1,actions=controller",
    ]);
    p.ours(&[
        "add-flow",
        "SW",
        "send_flow_rem,hard_timeout=1,priority=9,in_port=2,actions=drop",
    ]);
    // monitor: 65535 bytes of each packet-in; it asks for flow-removed too by default.
    let mon = std::process::Command::new("timeout")
        .args([
            "3",
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            "monitor",
            &p.ours,
            "65535",
        ])
        .env("OVS_RUNDIR", p.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ovs-ofctl monitor");
    std::thread::sleep(Duration::from_millis(500));
    p.ours(&[
        "packet-out",
        "SW",
        &format!("in_port=1 packet={arp} actions=table"),
    ]);
    p.ours(&[
        "packet-out",
        "SW",
        &format!("in_port=controller packet={arp} actions=output:2"),
    ]);
    let out = mon.wait_with_output().expect("monitor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("OFPT_PACKET_IN (OF1.3) (xid=0x0): cookie=0x0 total_len=42 in_port=1 (via action) data_len=42 (unbuffered)"),
        "{text}"
    );
    assert!(
        text.contains("arp_spa=10.0.0.1,arp_tpa=160.0.0.2,arp_op=1"),
        "{text}"
    );
    assert!(
        text.contains(
            "OFPT_FLOW_REMOVED (OF1.3) (xid=0x0): priority=9,in_port=2 reason=hard table_id=0"
        ),
        "{text}"
    );
    let stats = p.ours(&["dump-ports", "SW", "2"]);
    assert!(stats.contains("tx pkts=1, bytes=42"), "{stats}");
}

/// What OpenFlow wrote is on disk within the group-commit window, whoever wrote it, and the
/// switch comes back with it after `kill -9`; `show` tells who is connected.
#[test]
fn openflow_flows_survive_kill_9_and_show_tells_the_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("br0.ofp");
    let target = format!("unix:{}", sock.display());
    let mut d = Daemon::start(dir.path());
    d.ok(&[
        "set-controller",
        "br0",
        &format!("punix:{}", sock.display()),
    ]);
    wait_for_socket(&sock);
    let ovs = Ovs::start();
    let f: String = (0..200)
        .map(|i| {
            format!(
                "priority=10,ip,nw_dst=10.1.{}.{}/32,actions=drop\n",
                i / 250,
                i % 250
            )
        })
        .collect();
    let path = dir.path().join("f.txt");
    std::fs::write(&path, f).expect("flows");
    let path = path.display().to_string();
    let (ok, out) = ovs.ofctl_any(&["-O", "OpenFlow13", "add-flows", &target, &path]);
    assert!(ok, "{out}");
    // Well past the 20 ms group commit.
    std::thread::sleep(Duration::from_millis(300));
    d.kill9();
    let d = Daemon::start(dir.path());
    let flows = d.ok(&["dump-flows", "br0", "--no-stats"]);
    assert_eq!(flows.lines().count(), 201, "200 flows and NORMAL:\n{flows}");
    wait_for_socket(&sock);
    // A connection held open shows in `show`, and goes when it closes.
    let mut mon = std::process::Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "monitor", &target])
        .env("OVS_RUNDIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ovs-ofctl monitor");
    let shown = wait_show(&d, "is_connected:true role:equal connections:1");
    assert!(
        shown.contains(&format!("controller \"punix:{}\"", sock.display())),
        "{shown}"
    );
    let _ = mon.kill();
    let _ = mon.wait();
    wait_show(&d, "is_connected:false");
}

fn wait_show(d: &Daemon, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = d.ok(&["show", "br0"]);
        if s.contains(want) {
            return s;
        }
        assert!(Instant::now() < deadline, "show never said {want:?}:\n{s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
