//! The daemon's listeners (TCP needs TLS, mutual TLS checks client certificates) and its
//! idle CPU.

use super::*;

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
