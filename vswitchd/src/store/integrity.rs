//! The storage engine's own check of a store file, made on copies in memory so that the
//! file is not written: every page's checksum, redb's allocation state (which pages are in
//! use, kept in the file at a clean stop) against what the trees really use, and the
//! checksum of the newest commit's record in the file header.
//!
//! Why: after a clean stop redb trusts the allocation state and the commit record it
//! saved, and checks neither them nor the pages' checksums on open. A bit flipped there
//! went unnoticed by the record digest (the records read fine) and made redb panic later,
//! when committing or closing, or could make it hand out a page still in use.
//! `Database::check_integrity` rebuilds the allocation state from the trees and compares,
//! but repairs the file in place when they differ; here it runs on a copy. The commit
//! record's checksum redb verifies only when it recovers a file after a crash: a second
//! copy is marked so, with the older commit's record made invalid, so that redb's recovery
//! fails or falls back exactly when the newest record is damaged.
//!
//! Thread-safety: plain functions; the copies live only during the call.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use redb::{Database, StorageBackend};

use super::quietly;

/// A redb backend over bytes in memory.
#[derive(Debug)]
struct Bytes(RwLock<Vec<u8>>);

impl StorageBackend for Bytes {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.0.read().len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let data = self.0.read();
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let src = start
            .checked_add(out.len())
            .and_then(|end| data.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        self.0.write().resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut mem = self.0.write();
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let end = start
            .checked_add(data.len())
            .ok_or(io::ErrorKind::InvalidInput)?;
        if end > mem.len() {
            mem.resize(end, 0);
        }
        mem[start..end].copy_from_slice(data);
        Ok(())
    }
}

/// redb 3's file header (`tree_store/page_store/header.rs` in its sources): after the
/// 9-byte signature, the "god byte" says which of the two commit records is the newest and
/// whether the file needs recovery; each record is 128 bytes and ends in its checksum.
const GOD_BYTE: usize = 9;
const PRIMARY_BIT: u8 = 1;
const RECOVERY_REQUIRED: u8 = 2;
/// Set when the newest commit was made with two-phase commit: redb's recovery then trusts
/// it and never looks at the older record.
const TWO_PHASE_COMMIT: u8 = 4;
const COMMIT_RECORDS: [usize; 2] = [64, 192];
const COMMIT_RECORD_BYTES: usize = 128;
const CHECKSUM_BYTES: usize = 16;

/// Checks the store whose bytes are `bytes` as redb would after opening it (a file a
/// crash left incomplete is first recovered, as opening it does). `Err` says what is wrong.
pub(super) fn check(bytes: Vec<u8>) -> Result<(), String> {
    let header = COMMIT_RECORDS[1] + COMMIT_RECORD_BYTES;
    // After a crash, opening the file recovers it and checks all of this anyway.
    let clean_stop = bytes.len() >= header && bytes[GOD_BYTE] & RECOVERY_REQUIRED == 0;
    if clean_stop {
        older_commit_record(invalidated(&bytes, Slot::Newest))?;
        newest_commit_record(invalidated(&bytes, Slot::Older))?;
    }
    pages_and_allocation(bytes)
}

/// `Database::check_integrity` on a copy of `bytes`.
fn pages_and_allocation(bytes: Vec<u8>) -> Result<(), String> {
    let mut opened: Option<std::mem::ManuallyDrop<Database>> = None;
    let checked = quietly(|| -> Result<bool, String> {
        let db = redb::Builder::new()
            .create_with_backend(Bytes(RwLock::new(bytes)))
            .map_err(|e| e.to_string())?;
        // Not dropped if redb panics below: its state is unknown then, and a second panic
        // while unwinding would abort.
        let db = opened.insert(std::mem::ManuallyDrop::new(db));
        db.check_integrity().map_err(|e| e.to_string())
    });
    let verdict = match checked {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(
            "its pages' checksums or the storage engine's record of which \
                              pages are in use do not agree with what it last wrote"
                .to_string(),
        ),
        Ok(Err(e)) => Err(format!(
            "the storage engine cannot check it ({})",
            crate::error::quote(&e)
        )),
        // The database (only the copy in memory) is leaked: see above.
        Err(panic) => {
            return Err(format!(
                "the storage engine failed checking it ({})",
                crate::error::quote(&panic)
            ));
        }
    };
    if let Some(db) = opened {
        let _ = quietly(move || drop(std::mem::ManuallyDrop::into_inner(db)));
    }
    verdict
}

/// The newest commit record, or the one before it.
#[derive(Clone, Copy)]
enum Slot {
    Newest,
    Older,
}

/// A copy of `bytes` marked as needing recovery, with one commit record's checksum made
/// invalid: recovering it checks the other record (and, for the newest, its pages). To
/// check the older record the newest is also marked as not made by two-phase commit, else
/// recovery would not look at the older one.
fn invalidated(bytes: &[u8], which: Slot) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let newest = usize::from(b[GOD_BYTE] & PRIMARY_BIT != 0);
    let slot = match which {
        Slot::Newest => newest,
        Slot::Older => 1 - newest,
    };
    let sum = COMMIT_RECORDS[slot] + COMMIT_RECORD_BYTES - CHECKSUM_BYTES;
    for x in &mut b[sum..sum + CHECKSUM_BYTES] {
        *x = !*x;
    }
    b[GOD_BYTE] |= RECOVERY_REQUIRED;
    if let Slot::Newest = which {
        b[GOD_BYTE] &= !TWO_PHASE_COMMIT;
    }
    b
}

/// Recovers `copy` (the newest record made invalid): redb refuses it exactly when the
/// older record's checksum fails too. (redb uses the older record to free what the newest
/// commit replaced: a damaged one made it panic at the next commit.)
fn older_commit_record(copy: Vec<u8>) -> Result<(), String> {
    let opened = quietly(|| {
        redb::Builder::new()
            .create_with_backend(Bytes(RwLock::new(copy)))
            .map(std::mem::ManuallyDrop::new)
    });
    match opened {
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(m))))
            if m.contains("Both commit slots") =>
        {
            Err("the record of its commit before the newest fails its checksum".into())
        }
        // Anything else is about that older commit's pages, which the newest may have
        // reused; only its record matters here.
        Ok(Ok(db)) => {
            let _ = quietly(move || drop(std::mem::ManuallyDrop::into_inner(db)));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Recovers `copy` (the older record made invalid) the way redb recovers a file after a
/// crash: it fails, or falls back, exactly when the newest record or its pages are damaged.
fn newest_commit_record(copy: Vec<u8>) -> Result<(), String> {
    // redb calls this with progress below 0.5 exactly when it falls back from the newest
    // commit.
    let fell_back = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&fell_back);
    let opened = quietly(|| {
        redb::Builder::new()
            .set_repair_callback(move |s| {
                if s.progress() < 0.5 {
                    flag.store(true, Ordering::Relaxed);
                }
            })
            .create_with_backend(Bytes(RwLock::new(copy)))
            .map(std::mem::ManuallyDrop::new)
    });
    let damaged = "its newest commit (the one a clean stop left) fails its checksums";
    match opened {
        Ok(Ok(db)) => {
            let _ = quietly(move || drop(std::mem::ManuallyDrop::into_inner(db)));
            if fell_back.load(Ordering::Relaxed) {
                Err(damaged.to_string())
            } else {
                Ok(())
            }
        }
        Ok(Err(e)) => Err(format!(
            "{damaged} ({})",
            crate::error::quote(&e.to_string())
        )),
        Err(panic) => Err(format!("{damaged} ({})", crate::error::quote(&panic))),
    }
}
