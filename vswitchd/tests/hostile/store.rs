//! Damaged stores: a clear error naming the file, or the store as it was; never a panic.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Vswitchd, subnet_flows};

// ---------------------------------------------------------------------------------------
// Damaged stores (item 6).
// ---------------------------------------------------------------------------------------

/// A small deterministic generator for offsets and bits (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A store as the daemon writes it: bridges, ports, 2,000 flows, meters and groups, after
/// a clean stop (`clean`) or a kill -9.
fn daemon_store(dir: &std::path::Path, clean: bool) -> Vec<u8> {
    let d = Vswitchd::start(dir, &[], &[]);
    d.ok(&["add-br", "br1"]);
    d.ok(&["add-port", "br0", "p1", "type=memory"]);
    d.ok(&["add-port", "br1", "q1", "type=memory"]);
    d.ok(&[
        "add-meter",
        "br0",
        "meter=1,kbps,burst,bands=type=drop,rate=1000,burst_size=100",
    ]);
    d.ok(&["add-group", "br0", "group_id=5,type=all,bucket=output:p1"]);
    d.add_flows(&subnet_flows(2000));
    d.ok(&["add-flow", "br1", "priority=9,arp,actions=flood"]);
    let mut d = d;
    if clean {
        Command::new("kill")
            .args(["-TERM", &d.child.id().to_string()])
            .status()
            .unwrap();
        assert!(d.child.wait().unwrap().success());
    } else {
        d.child.kill().unwrap();
        d.child.wait().unwrap();
    }
    std::fs::read(dir.join("conf.db")).unwrap()
}

/// Opens `bytes` as a store in process (then writes to it and closes it): a clear error
/// naming the file, or exactly `original`, or, when the store said the newest commit was
/// incomplete (after a kill -9 redb cannot tell a commit cut short from a damaged one) and
/// fell back, exactly `previous`. Returns true for an error.
fn judge(
    path: &std::path::Path,
    bytes: &[u8],
    original: &vswitchd::store::Records,
    previous: &vswitchd::store::Records,
    what: &str,
) -> bool {
    std::fs::write(path, bytes).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    // Opened, it must also take a write and close (both allocate pages: a damaged record of
    // which pages are free once made redb panic there).
    let r = std::panic::catch_unwind(|| {
        vswitchd::store::Store::open(path).and_then(|s| {
            let loaded = (s.rolled_back(), s.load()?);
            let mut tx = s.begin()?;
            tx.put_bridge(&proto::v1::Bridge {
                name: "br9".into(),
                ..Default::default()
            })?;
            tx.commit()?;
            Ok(loaded)
        })
    });
    match r {
        Err(_) => panic!("{what}: a panic escaped Store::open, a write or the close"),
        Ok(Ok((rolled_back, records))) => {
            assert!(
                &records == original || (rolled_back && &records == previous),
                "{what}: opened with different contents (rolled back: {rolled_back})"
            );
            false
        }
        Ok(Err(e)) => {
            let m = e.to_string();
            assert!(
                m.contains(name),
                "{what}: the error does not name the file: {m}"
            );
            assert!(m.len() < 2048, "{what}: a {} byte error", m.len());
            true
        }
    }
}

/// Every way a store can be damaged is a clear error naming the file, or the store opens
/// with exactly what it held: zero length, truncated anywhere, zeroed pages, one bit
/// flipped at 400 random offsets (half of them in non-zero bytes), 64 bits flipped over 60
/// seeds, both after a clean stop and after kill -9. Never a panic, never a silent change.
/// Then through the binary: exit status 1 (not a panic's 101) with the file named, and
/// `--repair` / `--reset-store` keep a copy and start.
#[test]
fn damaged_stores_are_clear_errors_never_panics_or_silent_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut damaged = 0;
    let mut trials = 0;
    for clean in [true, false] {
        let sub = dir.path().join(if clean { "clean" } else { "killed" });
        std::fs::create_dir_all(&sub).unwrap();
        let bytes = daemon_store(&sub, clean);
        let original = vswitchd::store::Store::open(&sub.join("conf.db"))
            .and_then(|s| s.load())
            .unwrap();
        assert_eq!(original["br0"].flows.len(), 2001); // and the default normal flow
        // The last write was br1's ARP flow (next to its default NORMAL flow): the commit
        // before it lacks just that.
        let mut previous = original.clone();
        let br1 = &mut previous.get_mut("br1").unwrap().flows;
        assert_eq!(br1.len(), 2);
        br1.retain(|(_, f)| f.priority != 9);
        assert_eq!(br1.len(), 1);
        let path = sub.join("copy.db");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(clean));
        let mut case = |b: Vec<u8>, what: String| {
            trials += 1;
            damaged += usize::from(judge(&path, &b, &original, &previous, &what));
        };
        case(Vec::new(), "empty".into());
        for cut in [
            1,
            100,
            4096,
            4097,
            bytes.len() / 4,
            bytes.len() / 2,
            bytes.len() - 4096,
            bytes.len() - 1,
        ] {
            case(bytes[..cut].to_vec(), format!("truncated to {cut}"));
        }
        for _ in 0..20 {
            let page = rng.below(bytes.len() / 4096) * 4096;
            let mut b = bytes.clone();
            b[page..page + 4096].fill(0);
            case(b, format!("page at {page} zeroed"));
        }
        let nonzero: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != 0).collect();
        for i in 0..400 {
            let at = if i % 2 == 0 {
                rng.below(bytes.len())
            } else {
                nonzero[rng.below(nonzero.len())]
            };
            let bit = rng.below(8);
            let mut b = bytes.clone();
            b[at] ^= 1 << bit;
            case(
                b,
                format!("bit {bit} of byte {at} flipped (clean stop: {clean})"),
            );
        }
        for seed in 0..60u64 {
            let mut r = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut b = bytes.clone();
            for _ in 0..64 {
                let at = nonzero[r.below(nonzero.len())];
                b[at] ^= 1 << r.below(8);
            }
            case(
                b,
                format!("64 bits flipped, seed {seed} (clean stop: {clean})"),
            );
        }
    }
    eprintln!("{damaged} of {trials} damaged copies were refused; the rest opened unchanged");
    assert!(
        damaged > trials / 4,
        "too few damaged copies noticed: {damaged} of {trials}"
    );

    // Through the binary.
    let sub = dir.path().join("clean");
    let bytes = std::fs::read(sub.join("conf.db")).unwrap();
    let nonzero: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] != 0).collect();
    let run = |db: &std::path::Path, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vswitchd"))
            .arg("--db")
            .arg(db)
            .arg("--listen")
            .arg(format!("unix:{}", dir.path().join("bin.sock").display()))
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A damaged store stops it at once; a sound one serves (then we stop it).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(c.stderr.as_mut().unwrap(), &mut err).unwrap();
                return (st.code(), err);
            }
            if std::os::unix::net::UnixStream::connect(dir.path().join("bin.sock")).is_ok() {
                Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status()
                    .unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "vswitchd neither failed nor served"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let db = dir.path().join("bin.db");
    let mut rng = Rng(42);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("truncated".into(), bytes[..bytes.len() / 2].to_vec()),
    ];
    for s in 0..6 {
        let mut b = bytes.clone();
        for _ in 0..64 {
            let at = nonzero[rng.below(nonzero.len())];
            b[at] ^= 1 << rng.below(8);
        }
        cases.push((format!("64 flips #{s}"), b));
    }
    for (what, b) in &cases {
        std::fs::write(&db, b).unwrap();
        let (code, err) = run(&db, &[]);
        assert_ne!(code, Some(101), "{what}: vswitchd panicked: {err}");
        if code != Some(0) {
            assert_eq!(code, Some(1), "{what}: {err}");
            assert!(
                err.contains("bin.db") && !err.contains("panicked"),
                "{what}: {err}"
            );
            assert!(!err.contains("serving on"), "{what}: {err}");
        }
    }
    // The explicit ways out, each keeping the damaged file.
    let copies = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("bin.db.damaged-")
            })
            .count()
    };
    std::fs::write(&db, b"").unwrap();
    let (code, err) = run(&db, &["--reset-store"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("moved") && err.contains("damaged-"), "{err}");
    assert_eq!(copies(dir.path()), 1);
    // A sound store: the flag changes nothing.
    let (code, err) = run(&db, &["--repair"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("sound"), "{err}");
    assert_eq!(copies(dir.path()), 1);
    // A record lost behind the store's back: --repair keeps the rest.
    std::fs::write(&db, &bytes).unwrap();
    {
        let rdb = redb::Database::open(&db).unwrap();
        let w = rdb.begin_write().unwrap();
        {
            let mut t = w
                .open_table(redb::TableDefinition::<(&str, &[u8]), &[u8]>::new("flows"))
                .unwrap();
            let first = redb::ReadableTable::first(&t).unwrap().map(|(k, _)| {
                let (b, id) = k.value();
                (b.to_string(), id.to_vec())
            });
            let (b, id) = first.unwrap();
            t.remove((b.as_str(), id.as_slice())).unwrap();
        }
        w.commit().unwrap();
    }
    let (code, err) = run(&db, &[]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("table flows holds 2002 records where the last commit left 2003"),
        "{err}"
    );
    let (code, err) = run(&db, &["--repair"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("repaired") && err.contains("2002 flows"),
        "{err}"
    );
    assert_eq!(copies(dir.path()), 2);
    let (code, _) = run(&db, &[]);
    assert_eq!(code, Some(0));
}
