//! The store across a `kill -9` in the middle of `add-flows`, and a foreign or corrupt store.

use super::*;

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
