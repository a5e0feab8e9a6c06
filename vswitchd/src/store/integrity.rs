//! What the daemon does not take on trust from a store file that redb would: after a
//! clean stop redb loads its saved record of which pages are in use (the allocation state)
//! and uses the newest of the two commit records in the file header, checking neither the
//! record's checksum nor the pages' (it checks them only when it recovers from a crash). A
//! bit flipped there passed the record digest and made redb panic at the next commit or on
//! close, or could make it hand out a page still in use. So:
//!
//! - [`Rebuilding`] opens the file with the header's two-phase-commit mark hidden from
//!   redb, so that it never loads the saved allocation state but rebuilds it from the trees
//!   it walks, checking every page's checksum (and falling back to the commit before, said
//!   as after a crash, when the newest fails), and commits what it rebuilt;
//! - [`commit_records`] checks both commit records' checksums before that, on the header
//!   alone, by letting redb pick a record for recovery with the other one made invalid.
//!   After a clean stop a failing record is damage; after a crash a failing newest record
//!   is what a crash during a commit leaves, and redb falls back to the older one without
//!   saying so: the caller says it.
//!
//! Thread-safety: plain functions, and a backend redb calls from its own threads (it
//! delegates to redb's `FileBackend`).

use std::io;

use redb::StorageBackend;

use super::quietly;

/// redb 3's file header (`tree_store/page_store/header.rs` in its sources): after the
/// 9-byte signature, the "god byte" says which of the two commit records is the newest,
/// whether the file needs recovery, and whether the newest commit was made with two-phase
/// commit (only then does redb load the saved allocation state, and in recovery it then
/// trusts the newest record without looking at the other); each record is 128 bytes and
/// ends in its checksum.
const GOD_BYTE: usize = 9;
const PRIMARY_BIT: u8 = 1;
const RECOVERY_REQUIRED: u8 = 2;
const TWO_PHASE_COMMIT: u8 = 4;
const COMMIT_RECORDS: [usize; 2] = [64, 192];
const COMMIT_RECORD_BYTES: usize = 128;
const CHECKSUM_BYTES: usize = 16;
/// Bytes of the header.
pub(super) const HEADER_BYTES: usize = 320;

/// The store file through redb's own backend, with the header's two-phase-commit mark
/// hidden from redb when it reads it: see the module's documentation.
#[derive(Debug)]
pub(super) struct Rebuilding(pub(super) redb::backends::FileBackend);

impl StorageBackend for Rebuilding {
    fn len(&self) -> Result<u64, io::Error> {
        self.0.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.0.read(offset, out)?;
        let god = (GOD_BYTE as u64)
            .checked_sub(offset)
            .and_then(|i| usize::try_from(i).ok());
        if let Some(b) = god.and_then(|i| out.get_mut(i)) {
            *b &= !TWO_PHASE_COMMIT;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.0.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.0.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.0.close()
    }
}

/// What the header of a store file says about how it was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Records {
    /// The last stop was clean (else the file needs recovery, as after a crash).
    pub(super) clean_stop: bool,
    /// The newest commit record passes its checksum.
    pub(super) newest_sound: bool,
    /// The record of the commit before it passes its checksum.
    pub(super) older_sound: bool,
}

impl Records {
    /// Why a file with these records is damaged, if it is: after a clean stop both records
    /// must be sound. (After a crash an unsound newest record is what a crash during a
    /// commit leaves: redb falls back to the older one, which the caller says.)
    pub(super) fn damage(&self) -> Option<String> {
        let bad = match (self.newest_sound, self.older_sound) {
            _ if !self.clean_stop => return None,
            (false, _) => "newest",
            (true, false) => "older",
            (true, true) => return None,
        };
        Some(format!(
            "the record of its {bad} commit in the file header fails its checksum"
        ))
    }
}

/// Checks the checksums of both commit records in `header` (the file's first
/// [`HEADER_BYTES`], read before redb opened it; `file_len` its length). A header too short
/// to hold them is left to redb to refuse.
pub(super) fn commit_records(header: &[u8], file_len: u64) -> Records {
    if header.len() < HEADER_BYTES {
        return Records {
            clean_stop: true,
            newest_sound: true,
            older_sound: true,
        };
    }
    let newest = usize::from(header[GOD_BYTE] & PRIMARY_BIT != 0);
    Records {
        clean_stop: header[GOD_BYTE] & RECOVERY_REQUIRED == 0,
        newest_sound: record_sound(header, file_len, newest),
        older_sound: record_sound(header, file_len, 1 - newest),
    }
}

/// Whether the commit record in `slot` of `header` passes its checksum: redb, asked to
/// recover a file whose other record is made invalid, refuses exactly when this one is
/// damaged too. It reads nothing but the header before it decides, and is stopped there.
fn record_sound(header: &[u8], file_len: u64, slot: usize) -> bool {
    let mut h = header[..HEADER_BYTES].to_vec();
    let other = COMMIT_RECORDS[1 - slot] + COMMIT_RECORD_BYTES - CHECKSUM_BYTES;
    for x in &mut h[other..other + CHECKSUM_BYTES] {
        *x = !*x;
    }
    // Recovery, weighing both records (not trusting the newest as after two-phase commit).
    h[GOD_BYTE] = (h[GOD_BYTE] | RECOVERY_REQUIRED) & !TWO_PHASE_COMMIT;
    let opened = quietly(|| {
        redb::Builder::new()
            .set_repair_callback(|s| s.abort())
            .create_with_backend(HeaderOnly {
                header: h,
                len: file_len,
            })
            .map(std::mem::ManuallyDrop::new)
    });
    !matches!(
        opened,
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(m))))
            if m.contains("Both commit slots")
    )
}

/// A backend that holds a file's header and nothing else: reading anything beyond it, or
/// writing, fails (redb has decided on the commit records by then).
#[derive(Debug)]
struct HeaderOnly {
    header: Vec<u8>,
    len: u64,
}

impl StorageBackend for HeaderOnly {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let src = start
            .checked_add(out.len())
            .and_then(|end| self.header.get(start..end))
            .ok_or(io::ErrorKind::Unsupported)?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, _: u64) -> Result<(), io::Error> {
        Err(io::ErrorKind::Unsupported.into())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        Ok(())
    }

    fn write(&self, _: u64, _: &[u8]) -> Result<(), io::Error> {
        Err(io::ErrorKind::Unsupported.into())
    }
}
