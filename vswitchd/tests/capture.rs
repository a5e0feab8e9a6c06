//! `flowctl capture` as an operator uses it: a ping between two namespaces through AF_XDP
//! ports captured into a pcapng file that tshark reads (both directions, times in order,
//! the count honoured), the same piped into `tshark -r -`, a reader that stops reading
//! (drops counted, forwarding unharmed), and the refusals and limits.
//!
//! Needs root (namespaces, veths, AF_XDP), tshark and ping. About 30 s.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Hosts, flowctl_binary};

/// Starts `flowctl capture ARGS` and waits until it says the capture started (so frames
/// sent afterwards are captured). Its standard error is given back as what it printed so
/// far plus the rest when it exits ([`finish_capture`]).
fn start_capture(d: &Daemon, args: &[&str], stdout: Stdio) -> (Child, String) {
    let mut c = Command::new(flowctl_binary())
        .arg("--server")
        .arg(d.server())
        .arg("capture")
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run flowctl capture");
    let mut err = BufReader::new(c.stderr.take().expect("stderr"));
    let mut first = String::new();
    err.read_line(&mut first).expect("read flowctl's stderr");
    assert!(
        first.contains("capturing on"),
        "flowctl capture {args:?} did not start: {first}"
    );
    // The rest of stderr is read when it exits.
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    CAPTURE_STDERR.with(|m| m.borrow_mut().push((c.id(), rest)));
    (c, first)
}

thread_local! {
    static CAPTURE_STDERR: std::cell::RefCell<Vec<(u32, std::thread::JoinHandle<String>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Waits for a capture started by [`start_capture`]; returns its exit success and what it
/// printed on standard error after starting.
fn finish_capture(mut c: Child, secs: u64) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = c.try_wait().expect("wait flowctl") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("flowctl capture still running after {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let id = c.id();
    let h = CAPTURE_STDERR.with(|m| {
        let mut v = m.borrow_mut();
        let i = v.iter().position(|(p, _)| *p == id).expect("started here");
        v.remove(i).1
    });
    (status.success(), h.join().expect("stderr reader"))
}

/// `tshark -r FILE -T fields -e ...`, one Vec per frame.
fn tshark_fields(file: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["-r", file, "-T", "fields", "-E", "separator=|"];
    for f in fields {
        args.extend_from_slice(&["-e", f]);
    }
    let o = Command::new("tshark")
        .args(&args)
        .output()
        .expect("tshark (apt-get install tshark)");
    assert!(
        o.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

/// Two hosts on AF_XDP ports of br0 (NORMAL), able to ping each other.
fn setup(prefix: &str, net: u8) -> (tempfile::TempDir, Daemon, Hosts) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    let h = Hosts::new_quiet(prefix, net, 2);
    for p in &h.ports {
        d.ok(&["add-port", "br0", p, "type=afxdp"]);
    }
    // Addresses learned, MACs learned: what follows is the ping alone.
    h.exec(1, &["ping", "-c", "2", "-i", "0.2", "-W", "2", &h.addr(2)]);
    (dir, d, h)
}

/// tshark's `frame.packet_flags_direction` (`0x00000001`): 1 inbound, 2 outbound.
fn direction(field: &str) -> u32 {
    u32::from_str_radix(field.trim_start_matches("0x"), 16).expect("direction flags")
}

/// Parses `N frames captured, M dropped by the switch`.
fn summary(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("frames captured"))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let n = words[0].parse().expect("frames");
    let m = words[3].parse().expect("dropped");
    (n, m)
}

#[test]
fn a_ping_through_afxdp_ports_is_captured_both_ways_in_time_order() {
    let (dir, d, h) = setup("cpa", 81);
    let file = dir.path().join("ping.pcapng");
    let file = file.to_str().expect("utf-8");
    let (c, _) = start_capture(
        &d,
        &[
            "br0",
            &h.ports[0],
            "--direction",
            "both",
            "--count",
            "6",
            "-w",
            file,
        ],
        Stdio::null(),
    );
    h.exec(1, &["ping", "-c", "5", "-i", "0.2", "-W", "2", &h.addr(2)]);
    let (ok, err) = finish_capture(c, 20);
    assert!(ok, "flowctl capture failed: {err}");
    assert_eq!(summary(&err), (6, 0), "{err}");
    let frames = tshark_fields(
        file,
        &[
            "frame.time_epoch",
            "icmp.type",
            "frame.packet_flags_direction",
            "frame.len",
            "frame.cap_len",
        ],
    );
    assert_eq!(frames.len(), 6, "--count 6: {frames:?}");
    let times: Vec<f64> = frames
        .iter()
        .map(|f| f[0].parse().expect("frame.time_epoch"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "times go back: {times:?}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        (now - times[0]).abs() < 60.0,
        "the first frame is dated {} s from now",
        now - times[0]
    );
    // Echo requests come in from host 1's port; the replies go out to it.
    let requests: Vec<_> = frames.iter().filter(|f| f[1] == "8").collect();
    let replies: Vec<_> = frames.iter().filter(|f| f[1] == "0").collect();
    assert!(
        requests.len() >= 2 && replies.len() >= 2,
        "both directions: {frames:?}"
    );
    assert!(
        requests.iter().all(|f| direction(&f[2]) == 1),
        "inbound: {frames:?}"
    );
    assert!(
        replies.iter().all(|f| direction(&f[2]) == 2),
        "outbound: {frames:?}"
    );
    // Whole frames by default.
    assert!(frames.iter().all(|f| f[3] == f[4]), "{frames:?}");

    // A snap length cuts frames and keeps their length; rx only sees the requests.
    let cut = dir.path().join("cut.pcapng");
    let cut = cut.to_str().expect("utf-8");
    let args = [
        "br0",
        &h.ports[0],
        "--direction",
        "rx",
        "-c",
        "2",
        "-s",
        "40",
        "-w",
        cut,
    ];
    let (c, _) = start_capture(&d, &args, Stdio::null());
    h.exec(1, &["ping", "-c", "3", "-i", "0.2", "-W", "2", &h.addr(2)]);
    let (ok, err) = finish_capture(c, 20);
    assert!(ok, "{err}");
    let frames = tshark_fields(
        cut,
        &["frame.len", "frame.cap_len", "frame.packet_flags_direction"],
    );
    assert_eq!(frames.len(), 2, "{frames:?}");
    for f in &frames {
        assert_eq!(f[1], "40", "{frames:?}");
        assert!(f[0].parse::<u32>().expect("len") > 40, "{frames:?}");
        assert_eq!(direction(&f[2]), 1, "rx only: {frames:?}");
    }
}

#[test]
fn dash_w_dash_pipes_into_tshark() {
    let (_dir, d, h) = setup("cpb", 82);
    let mut tshark = Command::new("tshark")
        .args(["-r", "-", "-T", "fields", "-e", "icmp.type"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark (apt-get install tshark)");
    let into = Stdio::from(tshark.stdin.take().expect("tshark stdin"));
    let args = ["br0", &h.ports[1], "--count", "4", "-w", "-"];
    let (c, _) = start_capture(&d, &args, into);
    h.exec(1, &["ping", "-c", "3", "-i", "0.2", "-W", "2", &h.addr(2)]);
    let (ok, err) = finish_capture(c, 20);
    assert!(ok, "{err}");
    let o = tshark.wait_with_output().expect("tshark");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let types: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(types.len(), 4, "{types:?}");
    assert!(
        types.iter().any(|t| t == "8") && types.iter().any(|t| t == "0"),
        "requests and replies on host 2's port: {types:?}"
    );
}

#[test]
fn a_reader_that_stops_reading_gets_drops_counted_and_forwarding_goes_on() {
    let (dir, d, h) = setup("cpc", 83);
    let file = dir.path().join("slow.pcapng");
    let file = file.to_str().expect("utf-8");
    // flowctl writes into a pipe nobody reads for 4 s: it blocks, stops taking responses,
    // and the switch's queue for it fills.
    let mut sink = Command::new("sh")
        .args(["-c", &format!("sleep 4; cat > {file}")])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh");
    let into = Stdio::from(sink.stdin.take().expect("sink stdin"));
    let args = ["br0", &h.ports[0], "--duration", "7", "-w", "-"];
    let (c, _) = start_capture(&d, &args, into);
    // Load: a flood of large pings; meanwhile, ordinary pings must all come back.
    let flood = h.spawn(
        1,
        &["ping", "-f", "-s", "1200", "-w", "5", "-q", &h.addr(2)],
    );
    let out = h.exec(1, &["ping", "-c", "10", "-i", "0.2", "-W", "2", &h.addr(2)]);
    assert!(
        out.contains(" 0% packet loss"),
        "pings lost while the capture's reader was stalled:\n{out}"
    );
    let _ = flood.wait_with_output();
    let (ok, err) = finish_capture(c, 30);
    assert!(ok, "{err}");
    assert!(sink.wait().expect("sink").success());
    let (n, m) = summary(&err);
    eprintln!("stalled reader: {err}");
    assert!(m > 0, "nothing dropped for a reader stalled 4 s: {err}");
    assert!(err.contains("(slow reader)"), "{err}");
    // What was captured is all in the file.
    let frames = tshark_fields(file, &["frame.number"]);
    assert_eq!(frames.len() as u64, n, "{err}");
}

#[test]
fn refusals_the_limit_and_a_port_going_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path());
    d.ok(&["add-port", "br0", "m1", "type=memory"]);
    let out = dir.path().join("x.pcapng");
    let out = out.to_str().expect("utf-8");
    for (args, want) in [
        (vec!["nosuch", "m1"], "no bridge"),
        (vec!["br0", "m9"], "no port"),
    ] {
        let mut all = vec!["capture"];
        all.extend(args.iter().copied());
        all.extend(["-w", out]);
        let o = d.fc(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(want), "{all:?}: {err}");
    }
    let o = d.fc(&["capture", "br0", "m1", "--snaplen", "0", "-w", out]);
    assert_eq!(o.status.code(), Some(2), "clap refuses a zero snap length");

    // Eight at once; the ninth is refused; one client going away makes room.
    let mut running: Vec<Child> = (0..8)
        .map(|i| {
            let f = dir.path().join(format!("c{i}.pcapng"));
            let f = f.to_str().expect("utf-8").to_string();
            start_capture(&d, &["br0", "m1", "-w", &f], Stdio::null()).0
        })
        .collect();
    let o = d.fc(&["capture", "br0", "m1", "-w", out]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("captures are running"),
        "{err}"
    );
    let mut gone = running.pop().expect("one");
    gone.kill().expect("kill flowctl");
    let _ = gone.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    let c = loop {
        let mut c = Command::new(flowctl_binary())
            .args(["--server", &d.server(), "capture", "br0", "m1", "-w", out])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flowctl");
        std::thread::sleep(Duration::from_millis(300));
        if c.try_wait().expect("wait").is_none() {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no room for a capture after a client went away"
        );
    };
    running.push(c);
    // Removing the port ends its captures with an error that says so.
    d.ok(&["del-port", "br0", "m1"]);
    let last = c_last(&mut running);
    for c in running {
        let (ok, err) = finish_capture(c, 10);
        assert!(!ok && err.contains("port was removed"), "{err}");
    }
    let o = last.wait_with_output().expect("flowctl");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("port was removed"),
        "{err}"
    );
}

/// Takes the last capture (started without [`start_capture`]) off the list.
fn c_last(running: &mut Vec<Child>) -> Child {
    running.pop().expect("the capture started last")
}
