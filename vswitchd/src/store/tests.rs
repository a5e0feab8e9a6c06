//! The store's promises about files it did not write cleanly; the daemon-level cases (and
//! bit flips over many seeds) are in `vswitchd/tests/hostile/store.rs`.

use super::*;

fn bridge(name: &str) -> v1::Bridge {
    v1::Bridge {
        name: name.into(),
        ..Default::default()
    }
}

fn flow(p: u32) -> v1::Flow {
    v1::Flow {
        priority: p,
        cookie: u64::from(p) * 7,
        ..Default::default()
    }
}

/// A store with bridge br0, a port, `n` flows, a meter and a group.
fn populated(path: &Path, n: u32) -> Records {
    let s = Store::open(path).unwrap();
    assert!(s.created());
    let mut tx = s.begin().unwrap();
    tx.put_bridge(&bridge("br0")).unwrap();
    tx.put_port(
        "br0",
        &v1::PortDesc {
            name: "p1".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let flows: Vec<(Vec<u8>, v1::Flow)> = (0..n)
        .map(|i| (i.to_be_bytes().to_vec(), flow(i)))
        .collect();
    tx.put_flows("br0", flows.iter().map(|(k, f)| (k.as_slice(), Some(f))))
        .unwrap();
    tx.put_meter(
        "br0",
        &v1::Meter {
            id: 1,
            ..Default::default()
        },
    )
    .unwrap();
    tx.put_group(
        "br0",
        &v1::Group {
            id: 2,
            ..Default::default()
        },
    )
    .unwrap();
    tx.commit().unwrap();
    drop(s);
    let s = Store::open(path).unwrap();
    assert!(!s.created());
    s.load().unwrap()
}

#[test]
fn a_new_store_is_owner_only_and_fresh_until_its_first_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/conf.db");
    let s = Store::open(&path).unwrap();
    assert!(s.created());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert!(!sibling(&path, "new").exists());
    drop(s);
    // Nothing committed yet: still fresh (the default configuration was not written).
    let s = Store::open(&path).unwrap();
    assert!(s.created());
    s.begin().unwrap().commit().unwrap();
    drop(s);
    assert!(!Store::open(&path).unwrap().created());
}

#[test]
fn what_was_written_is_what_is_read_and_deletes_keep_the_digest_true() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.db");
    let r = populated(&path, 50);
    assert_eq!(r["br0"].flows.len(), 50);
    let s = Store::open(&path).unwrap();
    let mut tx = s.begin().unwrap();
    // Replace some, delete some, delete one that is not there.
    let f = flow(1000);
    tx.put_flows(
        "br0",
        [
            (&3u32.to_be_bytes()[..], Some(&f)),
            (&4u32.to_be_bytes()[..], None),
            (&9999u32.to_be_bytes()[..], None),
        ],
    )
    .unwrap();
    tx.del_port("br0", "p1").unwrap();
    tx.del_meter("br0", 1).unwrap();
    tx.put_bridge(&bridge("br1")).unwrap();
    tx.commit().unwrap();
    // An aborted transaction changes nothing, digest included.
    let mut tx = s.begin().unwrap();
    tx.del_bridge("br0").unwrap();
    drop(tx);
    drop(s);
    let s = Store::open(&path).unwrap();
    let r = s.load().unwrap();
    assert_eq!(r["br0"].flows.len(), 49);
    assert!(r["br0"].ports.is_empty());
    let mut tx = s.begin().unwrap();
    tx.del_bridge("br0").unwrap();
    tx.commit().unwrap();
    drop(s);
    let r = Store::open(&path).unwrap().load().unwrap();
    assert_eq!(r.keys().collect::<Vec<_>>(), ["br1"]);
}

#[test]
fn an_empty_file_is_damage_not_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.db");
    populated(&path, 3);
    std::fs::File::create(&path).unwrap(); // truncates to 0 bytes
    let e = Store::open(&path).unwrap_err();
    assert!(e.is_damage(), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("conf.db") && msg.contains("empty"), "{msg}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "the file was touched"
    );
}

#[test]
fn truncation_anywhere_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.db");
    let original = populated(&path, 200);
    let bytes = std::fs::read(&path).unwrap();
    for cut in [
        1,
        16,
        512,
        4096,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let p = dir.path().join(format!("cut{cut}.db"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        match Store::open(&p).and_then(|s| s.load()) {
            Ok(r) => assert_eq!(r, original, "cut at {cut}: silently different"),
            Err(e) => {
                let m = e.to_string();
                assert!(m.contains(&format!("cut{cut}.db")), "cut at {cut}: {m}");
            }
        }
    }
}

#[test]
fn a_lost_or_changed_record_is_found_by_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.db");
    populated(&path, 10);
    // Damage as a stray writer would: change a record without the digest.
    {
        let db = redb::Database::open(&path).unwrap();
        let wtx = db.begin_write().unwrap();
        wtx.open_table(FLOWS)
            .unwrap()
            .remove(("br0", &5u32.to_be_bytes()[..]))
            .unwrap();
        wtx.commit().unwrap();
    }
    let e = Store::open(&path).unwrap_err();
    assert!(e.is_damage());
    assert!(
        e.to_string()
            .contains("table flows holds 9 records where the last commit left 10"),
        "{e}"
    );
    // --repair keeps the rest and a copy; the store is whole again.
    let report = repair(&path).unwrap();
    assert_eq!(report.kept, [1, 1, 9, 1, 1]);
    assert!(report.copy.exists());
    assert_eq!(
        Store::open(&path).unwrap().load().unwrap()["br0"]
            .flows
            .len(),
        9
    );
    // The copy is the damaged file, still refused.
    assert!(Store::open(&report.copy).unwrap_err().is_damage());

    // A changed value with the count intact.
    {
        let db = redb::Database::open(&path).unwrap();
        let wtx = db.begin_write().unwrap();
        let f = flow(77).encode_to_vec();
        wtx.open_table(FLOWS)
            .unwrap()
            .insert(("br0", &6u32.to_be_bytes()[..]), f.as_slice())
            .unwrap();
        wtx.commit().unwrap();
    }
    let e = Store::open(&path).unwrap_err();
    assert!(e.to_string().contains("their contents differ"), "{e}");
    let kept = reset(&path).unwrap();
    assert!(kept.exists() && !path.exists());
    let s = Store::open(&path).unwrap();
    assert!(s.created() && s.load().unwrap().is_empty());
}

#[test]
fn a_format_1_store_is_upgraded_with_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.db");
    populated(&path, 4);
    {
        let db = redb::Database::open(&path).unwrap();
        let wtx = db.begin_write().unwrap();
        {
            let mut meta = wtx.open_table(META).unwrap();
            meta.insert(KEY_FORMAT, FORMAT_V1).unwrap();
            meta.remove(KEY_DIGEST).unwrap();
        }
        wtx.commit().unwrap();
    }
    assert_eq!(
        Store::open(&path).unwrap().load().unwrap()["br0"]
            .flows
            .len(),
        4
    );
    let db = redb::Database::open(&path).unwrap();
    let rtx = db.begin_read().unwrap();
    let meta = rtx.open_table(META).unwrap();
    assert_eq!(meta.get(KEY_FORMAT).unwrap().unwrap().value(), FORMAT);
    assert!(meta.get(KEY_DIGEST).unwrap().is_some());
}

#[test]
fn a_newer_or_garbled_format_marker_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conf.db");
    populated(&path, 1);
    for (marker, foreign) in [
        (&b"vswitchd-store/9"[..], true),
        (b"vswitchd-stpre/2", false),
    ] {
        {
            let db = redb::Database::open(&path).unwrap();
            let wtx = db.begin_write().unwrap();
            wtx.open_table(META)
                .unwrap()
                .insert(KEY_FORMAT, marker)
                .unwrap();
            wtx.commit().unwrap();
        }
        let e = Store::open(&path).unwrap_err();
        assert_eq!(matches!(e, StoreError::Foreign { .. }), foreign, "{e}");
        assert_eq!(e.is_damage(), !foreign, "{e}");
    }
}

#[test]
fn panics_are_quiet_errors_and_only_on_this_thread() {
    let r: Result<(), String> = quietly(|| panic!("redb says no"));
    assert_eq!(r.unwrap_err(), "redb says no");
    assert_eq!(quietly(|| 5).unwrap(), 5);
}

/// One bit flipped in each byte of the file header and in 700 other non-zero bytes of a
/// small store after a clean stop: each copy is refused, or opens with exactly what was
/// stored and then takes a write and closes (both allocate pages). A flip in redb's record
/// of which pages are in use, or in a commit record, once passed the record digest and
/// made redb panic at the next commit or on close.
#[test]
fn every_flipped_byte_is_refused_or_harmless() {
    // On tmpfs when there is one: 1,024 opens, writes and closes, each with fsync.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .unwrap();
    let path = dir.path().join("conf.db");
    let original = populated(&path, 20);
    let bytes = std::fs::read(&path).unwrap();
    let copy = dir.path().join("copy.db");
    let (mut refused, mut by_check) = (0, 0);
    let nonzero: Vec<usize> = (320..bytes.len()).filter(|&i| bytes[i] != 0).collect();
    let step = (nonzero.len() / 700).max(1);
    let offsets: Vec<usize> = (0..320).chain(nonzero.into_iter().step_by(step)).collect();
    for (n, &at) in offsets.iter().enumerate() {
        let mut b = bytes.clone();
        b[at] ^= 1 << (n % 8);
        std::fs::write(&copy, &b).unwrap();
        let r = quietly(|| -> Result<Records, StoreError> {
            let s = Store::open(&copy)?;
            let records = s.load()?;
            let mut tx = s.begin()?;
            tx.put_bridge(&bridge("br9"))?;
            tx.commit()?;
            Ok(records)
        });
        match r {
            Err(panic) => panic!("byte {at}: a panic escaped: {panic}"),
            Ok(Ok(records)) => assert_eq!(records, original, "byte {at}: opened different"),
            Ok(Err(e)) => {
                // A flip in redb's signature makes it someone else's file.
                let foreign = at < REDB_MAGIC.len() && matches!(e, StoreError::Foreign { .. });
                assert!(e.is_damage() || foreign, "byte {at}: {e}");
                refused += 1;
                let m = e.to_string();
                by_check += usize::from(m.contains("checksum"));
            }
        }
    }
    eprintln!(
        "{} bytes flipped: {refused} refused ({by_check} for a checksum)",
        offsets.len()
    );
    assert!(by_check > 0);
}
