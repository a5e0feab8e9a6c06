//! The real `vswitchd` binary on a temporary store and socket, driven by the real `flowctl`
//! binary: every command, the dump-flows -> add-flows round trip, `kill -9` in the middle of a
//! 10k-flow `add-flows` followed by a restart, and a corpus of bad inputs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{Daemon, flowctl_binary};

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

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
fn kill_9_during_add_flows_keeps_every_acknowledged_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path());
    let file = dir.path().join("flows.txt");
    let all: Vec<String> = (0..10_000u32)
        .map(|i| {
            format!(
                "priority={},ip,nw_src=10.{}.{}.{},actions=output:{}",
                100 + i % 7,
                i >> 16,
                (i >> 8) & 0xff,
                i & 0xff,
                1 + i % 4
            )
        })
        .collect();
    std::fs::write(&file, all.join("\n")).unwrap();
    let add = Command::new(flowctl_binary())
        .arg("--server")
        .arg(d.server())
        .args(["add-flows", "--batch", "50", "br0"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("add-flows");
    // Kill once some but (on this machine) not all batches are in.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = d
            .ok(&["dump-flows", "--no-stats", "br0", "ip"])
            .lines()
            .count();
        if n >= 1000 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    d.kill9();
    let out = add.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let acked = if out.status.success() {
        all.len()
    } else {
        // "... (N of 10000 flows were acknowledged before the failure)"
        let at = err.find(" of 10000 flows were acknowledged").expect(&err);
        let start = err[..at].rfind('(').expect(&err) + 1;
        err[start..at].parse::<usize>().expect(&err)
    };
    let d = Daemon::start(dir.path());
    let got = lines(&d.ok(&["dump-flows", "--no-stats", "br0", "ip"]));
    eprintln!(
        "kill -9: {acked} flows acknowledged, {} back after restart",
        got.len()
    );
    // Every acknowledged flow is back; at most the one batch in flight beyond them; and
    // batches are whole (nothing half-written).
    assert!(
        got.len() >= acked,
        "{} flows back, {acked} acknowledged",
        got.len()
    );
    assert!(
        got.len() <= acked + 50,
        "{} flows back, {acked} acknowledged",
        got.len()
    );
    assert_eq!(
        got.len() % 50,
        0,
        "a batch was half-written: {} flows",
        got.len()
    );
    let o = d.with_stdin(&["add-flows", "br0", "-"], &all[..got.len()].join("\n"));
    assert!(o.status.success());
    d.ok(&["add-br", "ref"]);
    d.ok(&["del-flows", "ref"]);
    let o = d.with_stdin(&["add-flows", "ref", "-"], &all[..got.len()].join("\n"));
    assert!(o.status.success());
    assert_eq!(
        got,
        lines(&d.ok(&["dump-flows", "--no-stats", "ref", "ip"]))
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

fn tls_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flowctl/tests/tls")
        .join(name)
        .display()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn tcp_needs_tls_and_mutual_tls_checks_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    // Plain TCP is refused, with the reason.
    let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--db")
        .arg(dir.path().join("a.db"))
        .arg("--listen")
        .arg(format!("tcp:127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--tls-cert"), "{err}");
    // Only the error: nothing was served, so nothing says it was.
    assert!(!err.contains("serving on"), "{err}");

    // TLS without client certificates is refused too, unless asked for explicitly.
    let tls = [
        "--tls-cert",
        &tls_file("server.pem"),
        "--tls-key",
        &tls_file("server.key"),
    ];
    let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--db")
        .arg(dir.path().join("a.db"))
        .arg("--listen")
        .arg(format!("tcp:127.0.0.1:{}", free_port()))
        .args(tls)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--tls-client-ca") && err.contains("--tls-client-auth none"),
        "{err}"
    );
    assert!(!err.contains("serving on"), "{err}");
    let port = free_port();
    let mut anyone = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--db")
        .arg(dir.path().join("c.db"))
        .arg("--listen")
        .arg(format!("tcp:127.0.0.1:{port}"))
        .args(tls)
        .args(["--tls-client-auth", "none"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "vswitchd never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = Command::new(flowctl_binary())
        .args(["--server", &format!("https://127.0.0.1:{port}")])
        .args(["--tls-ca", &tls_file("ca.pem"), "list-br"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = anyone.kill();
    let _ = anyone.wait();

    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--db")
        .arg(dir.path().join("b.db"))
        .arg("--listen")
        .arg(format!("tcp:127.0.0.1:{port}"))
        .args(tls)
        .args(["--tls-client-ca", &tls_file("ca.pem")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "vswitchd never listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = |extra: &[&str]| {
        Command::new(flowctl_binary())
            .args(["--server", &server, "--tls-ca", &tls_file("ca.pem")])
            .args(extra)
            .arg("list-br")
            .output()
            .unwrap()
    };
    let ok = run(&[
        "--tls-cert",
        &tls_file("client.pem"),
        "--tls-key",
        &tls_file("client.key"),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "br0\n");
    let refused = run(&[]);
    assert!(
        !refused.status.success(),
        "a client without a certificate got in"
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_foreign_or_corrupt_store_is_refused_not_reset() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("conf.db");
    let junk = b"this is not a database, it is someone's notes\n".repeat(100);
    std::fs::write(&db, &junk).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--db")
        .arg(&db)
        .arg("--listen")
        .arg(format!("unix:{}", dir.path().join("s").display()))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not a vswitchd store") && err.contains("conf.db"),
        "{err}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), junk, "the file was modified");

    // A store truncated in the middle (a disk that lost its tail) is refused too.
    let good = dir.path().join("conf2.db");
    {
        let sub = dir.path().join("good");
        std::fs::create_dir_all(&sub).unwrap();
        let d = Daemon::start(&sub);
        d.ok(&["add-flow", "br0", "priority=5,ip,actions=drop"]);
        drop(d);
        std::fs::copy(sub.join("conf.db"), &good).unwrap();
    }
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&good, &bytes[..bytes.len() / 3]).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
        .arg("--db")
        .arg(&good)
        .arg("--listen")
        .arg(format!("unix:{}", dir.path().join("s2").display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a truncated store was accepted: {err}");
    assert!(
        err.contains("damaged") && !err.contains("panicked"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&good).unwrap(),
        bytes[..bytes.len() / 3],
        "the file was modified"
    );
}

/// CPU time (user + system) of a process in clock ticks (USER_HZ, 100 on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after ')'.
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

#[test]
fn an_idle_daemon_uses_almost_no_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    d.ok(&["add-br", "br1"]);
    let pid = d.pid();
    std::thread::sleep(Duration::from_secs(1));
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(10));
    let used = cpu_ticks(pid) - before;
    // 10 s at 100 ticks per second of one core: 5% is 50 ticks.
    assert!(
        used < 50,
        "idle vswitchd used {used} ticks of CPU in 10 s (limit 50: 5% of a core)"
    );
}

#[test]
fn namespaces_ping_through_tap_ports_added_with_flowctl() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsca{id}"), format!("vscb{id}"));
    let (ta, tb) = (format!("vca{id}"), format!("vcb{id}"));
    let ip = |args: &[&str]| {
        let o = Command::new("ip")
            .args(args)
            .output()
            .expect("`ip` (iproute2) is required");
        assert!(
            o.status.success(),
            "ip {args:?}: {} (needs root)",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    struct Ns(Vec<String>);
    impl Drop for Ns {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).output();
            }
        }
    }
    let _ns = Ns(vec![na.clone(), nb.clone()]);
    for n in [&na, &nb] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        ip(&["netns", "add", n]);
    }
    d.ok(&["add-port", "br0", &ta, "type=tap"]);
    d.ok(&["add-port", "br0", &tb, "type=internal"]);
    for (t, n, addr) in [(&ta, &na, "10.94.0.1/24"), (&tb, &nb, "10.94.0.2/24")] {
        ip(&["link", "set", t, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", t]);
        ip(&["-n", n, "link", "set", t, "up"]);
    }
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &na,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "10.94.0.2",
        ])
        .output()
        .expect("ping (iputils-ping)");
    assert!(
        out.status.success(),
        "ping through vswitchd failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let fdb = d.ok(&["fdb-show", "br0"]);
    assert!(fdb.lines().count() >= 3, "{fdb}");
    // The MAC table's counters: both stations learned, nothing moved, evicted or aged.
    let st = d.ok(&["fdb-stats-show", "br0"]);
    assert!(
        st.starts_with(
            "Statistics for bridge \"br0\":\n  Current/maximum MAC entries in the table: 2/"
        ),
        "{st}"
    );
    let st = d.json(&["fdb-stats-show", "br0"]);
    assert_eq!(st["stats"]["learned"], 2, "{st}");
    for k in ["moved", "evicted", "aged", "tunnel_sources_full"] {
        assert_eq!(st["stats"][k], 0, "{k}: {st}");
    }
    assert!(st["stats"]["capacity"].as_u64() >= Some(2), "{st}");
    assert_eq!(d.json(&["fdb-show", "br0"])["stats"], st["stats"]);
    let pmd = d.json(&["pmd-stats"]);
    for k in ["megaflow_full", "megaflow_removed", "cache_flush"] {
        assert!(pmd["pmds"][0][k].is_u64(), "{k}: {pmd}");
    }
    assert!(d.ok(&["pmd-stats"]).contains("  megaflows removed: "));
    let ports = d.ok(&["dump-ports", "br0"]);
    assert!(ports.contains("rx pkts="), "{ports}");
    // Removing a port under the switch: its device goes away with it.
    d.ok(&["del-port", "br0", &ta]);
    let o = Command::new("ip")
        .args(["-n", &na, "link", "show", &ta])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the TAP device outlived its port");
}

#[test]
fn namespaces_ping_through_af_packet_ports_added_with_flowctl() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsqa{id}"), format!("vsqb{id}"));
    let (va, vb) = (format!("vqa{id}"), format!("vqb{id}"));
    let ip = |args: &[&str]| {
        let o = Command::new("ip")
            .args(args)
            .output()
            .expect("`ip` (iproute2) is required");
        assert!(
            o.status.success(),
            "ip {args:?}: {} (needs root)",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    struct Cleanup(Vec<String>, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).output();
            }
            for v in &self.1 {
                let _ = Command::new("ip").args(["link", "del", v]).output();
            }
        }
    }
    let _c = Cleanup(vec![na.clone(), nb.clone()], vec![va.clone(), vb.clone()]);
    for (v, n, addr) in [(&va, &na, "10.96.0.1/24"), (&vb, &nb, "10.96.0.2/24")] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        ip(&["netns", "add", n]);
        let peer = format!("{v}p");
        ip(&["link", "add", v, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", &peer]);
        ip(&["-n", n, "link", "set", &peer, "up"]);
        ip(&["link", "set", v, "up"]);
        d.ok(&["add-port", "br0", v, "type=afpacket"]);
    }
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &na,
            "ping",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "10.96.0.2",
        ])
        .output()
        .expect("ping (iputils-ping)");
    assert!(
        out.status.success(),
        "ping through vswitchd AF_PACKET ports failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // An interface that does not exist is a clear refusal.
    let o = d.fc(&["add-port", "br0", "nosuchif0", "type=afpacket"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no interface named"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn namespaces_ping_through_af_xdp_ports_and_a_missing_interface_does_not_stop_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsxa{id}"), format!("vsxb{id}"));
    let (va, vb) = (format!("vxa{id}"), format!("vxb{id}"));
    let ip = |args: &[&str]| {
        let o = Command::new("ip")
            .args(args)
            .output()
            .expect("`ip` (iproute2) is required");
        assert!(
            o.status.success(),
            "ip {args:?}: {} (needs root)",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    struct Cleanup(Vec<String>, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).output();
            }
            for v in &self.1 {
                let _ = Command::new("ip").args(["link", "del", v]).output();
            }
        }
    }
    let _c = Cleanup(vec![na.clone(), nb.clone()], vec![va.clone(), vb.clone()]);
    for (v, n, addr, mode) in [
        (&va, &na, "10.99.0.1/24", "xdp-mode=native"),
        (&vb, &nb, "10.99.0.2/24", "xdp-mode=generic"),
    ] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        ip(&["netns", "add", n]);
        let peer = format!("{v}p");
        ip(&["link", "add", v, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", n]);
        ip(&["-n", n, "addr", "add", addr, "dev", &peer]);
        ip(&["-n", n, "link", "set", &peer, "up"]);
        ip(&["link", "set", v, "up"]);
        d.ok(&["add-port", "br0", v, "type=afxdp", mode]);
    }
    let ping = || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &na,
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                "10.99.0.2",
            ])
            .output()
            .expect("ping (iputils-ping)")
    };
    let out = ping();
    assert!(
        out.status.success(),
        "ping through vswitchd AF_XDP ports failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let o = d.fc(&["add-port", "br0", "x9", "type=afxdp", "xdp-mode=turbo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("xdp-mode"));
    // Restart: the ports come back and carry traffic again.
    d.term();
    let mut d = Daemon::start(dir.path());
    let out = ping();
    assert!(out.status.success(), "no traffic after a restart");
    // An interface gone while the daemon was down: it still starts, the port is down.
    d.term();
    ip(&["link", "del", &vb]);
    let d = Daemon::start(dir.path());
    let show = d.ok(&["show", "br0"]);
    assert!(show.contains(&vb), "{show}");
    assert!(d.ok(&["list-br"]).contains("br0"));
}

#[test]
fn an_iperf3_tcp_stream_crosses_af_xdp_ports() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("vsia{id}"), format!("vsib{id}"));
    let (va, vb) = (format!("via{id}"), format!("vib{id}"));
    let run = |cmd: &str, args: &[&str]| {
        let o = Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e} (apt-get install iproute2 ethtool iperf3)"));
        assert!(
            o.status.success(),
            "{cmd} {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    struct Cleanup(Vec<String>, Vec<String>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = Command::new("ip").args(["netns", "del", n]).output();
            }
            for v in &self.1 {
                let _ = Command::new("ip").args(["link", "del", v]).output();
            }
        }
    }
    let _c = Cleanup(vec![na.clone(), nb.clone()], vec![va.clone(), vb.clone()]);
    for (v, n, addr) in [(&va, &na, "10.92.0.1/24"), (&vb, &nb, "10.92.0.2/24")] {
        let _ = Command::new("ip").args(["netns", "del", n]).output();
        run("ip", &["netns", "add", n]);
        let peer = format!("{v}p");
        run(
            "ip",
            &["link", "add", v, "type", "veth", "peer", "name", &peer],
        );
        run("ip", &["link", "set", &peer, "netns", n]);
        run("ip", &["-n", n, "addr", "add", addr, "dev", &peer]);
        run("ip", &["-n", n, "link", "set", &peer, "up"]);
        run("ip", &["link", "set", v, "up"]);
        // veth leaves TCP checksums to an offload that a userspace switch never performs.
        run(
            "ip",
            &["netns", "exec", n, "ethtool", "-K", &peer, "tx", "off"],
        );
        d.ok(&["add-port", "br0", v, "type=afxdp"]);
    }
    run("ip", &["netns", "exec", &nb, "iperf3", "-s", "-1", "-D"]);
    std::thread::sleep(Duration::from_millis(500));
    let out = run(
        "ip",
        &[
            "netns",
            "exec",
            &na,
            "iperf3",
            "-c",
            "10.92.0.2",
            "-t",
            "2",
            "-J",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("iperf3 json");
    let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    assert!(
        bytes > 10_000_000,
        "iperf3 moved only {bytes} bytes through the switch"
    );
    // The MAC table learned both ends.
    let fdb = d.ok(&["fdb-show", "br0"]);
    assert!(fdb.lines().count() >= 3, "{fdb}");
}
