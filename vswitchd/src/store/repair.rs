//! The operator's ways out of a damaged store, both explicit (`vswitchd --repair`,
//! `vswitchd --reset-store`) and both keeping the damaged file:
//!
//! - [`repair`] copies the file aside, reads every record that can still be read, writes them into a new store with
//!   a fresh digest, and renames that into place; it says what it kept and what it lost.
//! - [`reset`] renames the file aside; the next open creates a new store, which the daemon
//!   fills with its default configuration.
//!
//! Thread-safety: plain functions, to be run before anything else opens the store.

use std::path::{Path, PathBuf};

use super::digest::Table;
use super::{
    CACHE_BYTES, Records, Salvage, StoreError, StoreTxn, close_untouched, initialise, open_db,
    quietly, read_tables, sibling, sync_dir,
};
use crate::owner_only;

/// What [`repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// Where the damaged file was copied.
    pub copy: PathBuf,
    /// Records kept, per table (bridges, ports, flows, meters, groups).
    pub kept: [u64; 5],
    /// What could not be kept (at most [`MAX_PROBLEMS`] lines, then a count).
    pub lost: Vec<String>,
    /// The storage engine fell back to the commit before the newest (damaged) one.
    pub rolled_back: bool,
}

/// Problems listed one by one in a [`RepairReport`]; more are counted.
pub const MAX_PROBLEMS: usize = 20;

impl std::fmt::Display for RepairReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kept")?;
        for (i, t) in Table::ALL.iter().enumerate() {
            write!(
                f,
                "{} {} {}",
                if i == 0 { "" } else { "," },
                self.kept[i],
                t.name()
            )?;
        }
        write!(f, "; the damaged file is kept as {}", self.copy.display())?;
        if self.rolled_back {
            write!(
                f,
                "; the newest commit was incomplete and the one before it was used"
            )?;
        }
        if self.lost.is_empty() {
            write!(f, "; nothing else was lost")
        } else {
            write!(f, "; lost: {}", self.lost.join("; "))
        }
    }
}

/// A name for the copy of a damaged `path`: `PATH.damaged-UNIXTIME[-N]`, unused.
fn copy_name(path: &Path) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut n = 0;
    loop {
        let suffix = if n == 0 {
            format!("damaged-{secs}")
        } else {
            format!("damaged-{secs}-{n}")
        };
        let p = sibling(path, &suffix);
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
        n += 1;
    }
}

/// Moves the damaged store at `path` aside (to `PATH.damaged-UNIXTIME`) and returns where;
/// the next [`super::Store::open`] creates a new store.
pub fn reset(path: &Path) -> Result<PathBuf, StoreError> {
    let copy = copy_name(path);
    std::fs::rename(path, &copy).map_err(|e| StoreError::Open {
        path: path.to_path_buf(),
        message: format!("moving it to {}: {e}", copy.display()),
    })?;
    sync_dir(path);
    Ok(copy)
}

/// Keeps what can be read of the damaged store at `path`; see the module comment.
pub fn repair(path: &Path) -> Result<RepairReport, StoreError> {
    let fail = |message: String| StoreError::Open {
        path: path.to_path_buf(),
        message,
    };
    let copy = copy_name(path);
    {
        let mut from = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut to = owner_only::create_file(&copy)
            .map_err(|e| fail(format!("creating {}: {e}", copy.display())))?;
        std::io::copy(&mut from, &mut to)
            .and_then(|_| to.sync_all())
            .map_err(|e| fail(format!("copying it to {}: {e}", copy.display())))?;
    }
    let cannot = |why: String| StoreError::Damaged {
        path: path.to_path_buf(),
        message: format!(
            "{why}; nothing can be salvaged, so --repair stopped (the file is unchanged, and \
             also copied to {}); --reset-store starts from the default configuration",
            copy.display()
        ),
    };
    let (db, rolled_back) = match open_db(path) {
        Ok(x) => x,
        Err(StoreError::Damaged { message, .. }) => return Err(cannot(message)),
        Err(e) => return Err(e),
    };
    let db = std::mem::ManuallyDrop::new(db);
    let (records, problems) = match quietly(|| read_tables(&db, Salvage::Yes)) {
        Ok(Ok((r, _, p))) => (r, p),
        Ok(Err(e)) => return Err(cannot(e)),
        Err(panic) => {
            // Leaked: the storage engine's state is unknown after a panic.
            return Err(cannot(format!(
                "the storage engine failed reading it ({})",
                crate::error::quote(&panic)
            )));
        }
    };
    close_untouched(std::mem::ManuallyDrop::into_inner(db));
    let kept = write_new(path, &records)?;
    let mut lost: Vec<String> = problems.iter().take(MAX_PROBLEMS).cloned().collect();
    if problems.len() > MAX_PROBLEMS {
        lost.push(format!("and {} more", problems.len() - MAX_PROBLEMS));
    }
    Ok(RepairReport {
        copy,
        kept,
        lost,
        rolled_back,
    })
}

/// Writes `records` into a new store file and renames it over `path`.
fn write_new(path: &Path, records: &Records) -> Result<[u64; 5], StoreError> {
    let fail = |message: String| StoreError::Open {
        path: path.to_path_buf(),
        message,
    };
    let tmp = sibling(path, "new");
    let _ = std::fs::remove_file(&tmp);
    let file = owner_only::create_file(&tmp)
        .map_err(|e| fail(format!("creating {}: {e}", tmp.display())))?;
    let res = (|| {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create_file(file)
            .map_err(|e| fail(e.to_string()))?;
        initialise(&db)?;
        let mut tx = StoreTxn::new(db.begin_write().map_err(super::io)?);
        let mut kept = [0u64; 5];
        for (name, rec) in records {
            tx.put_bridge(&rec.bridge)?;
            kept[Table::Bridges as usize] += 1;
            for p in rec.ports.values() {
                tx.put_port(name, p)?;
                kept[Table::Ports as usize] += 1;
            }
            tx.put_flows(
                name,
                rec.flows.iter().map(|(id, f)| (id.as_slice(), Some(f))),
            )?;
            kept[Table::Flows as usize] += rec.flows.len() as u64;
            for m in rec.meters.values() {
                tx.put_meter(name, m)?;
                kept[Table::Meters as usize] += 1;
            }
            for g in rec.groups.values() {
                tx.put_group(name, g)?;
                kept[Table::Groups as usize] += 1;
            }
        }
        tx.commit()?;
        drop(db);
        std::fs::rename(&tmp, path)
            .map_err(|e| fail(format!("moving {} into place: {e}", tmp.display())))?;
        sync_dir(path);
        Ok(kept)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
