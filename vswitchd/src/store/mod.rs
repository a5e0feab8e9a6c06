//! The durable configuration store: bridges, ports, flows, meters and groups on disk.
//!
//! What: a [redb](https://docs.rs/redb) database (one file, copy-on-write B-trees, checksummed
//! pages, fsync on commit). The daemon stages each API change on a draft datapath snapshot,
//! writes it here in one write transaction, and publishes the draft only after the commit
//! returned: a change is acknowledged only once it is on disk, and after `kill -9` at any
//! moment the store holds every acknowledged change and nothing half-written (redb commits
//! are atomic). See `docs/control-plane.md` for why redb and not a journal.
//!
//! Layout: every record is the `vswitch.v1` message the API speaks, prost-encoded, so the
//! store needs no second schema. Flows are keyed by their identity in the flow table
//! (table, priority, masked match), which is what OpenFlow's add/modify/delete address.
//!
//! What it promises about a file it did not write cleanly:
//! - a new store is created under a temporary name, owner-only (0600), and renamed into
//!   place once initialised, so a store file is never empty: an empty one is damage;
//! - a file that is not a redb database, or a redb database without our format marker, is
//!   [`StoreError::Foreign`], never touched;
//! - anything wrong inside one of ours (truncated, overwritten, a record that does not
//!   decode, the storage engine failing or panicking on it, a commit record in the file
//!   header failing its checksum after a clean stop (`integrity.rs`), or contents that
//!   differ from the record counts and hash sums the last commit wrote in the `meta`
//!   table: `digest.rs`) is [`StoreError::Damaged`] naming the file and what is wrong, and
//!   the file is closed without the commit redb makes on close; [`repair`] and [`reset`]
//!   are the operator's explicit ways out, and both keep a copy of the damaged file;
//! - redb's saved record of which pages are in use is never trusted: it is rebuilt from
//!   the trees at every open, every page's checksum checked (`integrity.rs`);
//! - a newest commit that a crash left incomplete (its record or its pages failing their
//!   checksums; redb falls back to the commit before, which holds every acknowledged
//!   change) is said on stderr, not silently used.
//!
//! [`Store::open`] reads and checks everything once; the daemon's first [`Store::load`]
//! gets what it read.
//!
//! Thread-safety: `Store` is `Send + Sync`; redb serialises write transactions.

mod digest;
mod integrity;
mod repair;
mod txn;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use prost::Message;
use proto::v1;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::owner_only;
use digest::{Digest, Table};

pub use repair::{RepairReport, repair, reset};
pub use txn::StoreTxn;

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const BRIDGES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("bridges");
const PORTS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("ports");
const FLOWS: TableDefinition<'_, (&str, &[u8]), &[u8]> = TableDefinition::new("flows");
const METERS: TableDefinition<'_, (&str, u32), &[u8]> = TableDefinition::new("meters");
const GROUPS: TableDefinition<'_, (&str, u32), &[u8]> = TableDefinition::new("groups");

/// redb page cache.
const CACHE_BYTES: usize = 64 << 20;

/// Value of the `format` key in the `meta` table: this version's.
const FORMAT: &[u8] = b"vswitchd-store/2";
/// The format before the digest: read, and upgraded in place on open.
const FORMAT_V1: &[u8] = b"vswitchd-store/1";
/// Prefix of every format marker we ever write.
const FORMAT_PREFIX: &str = "vswitchd-store/";
/// `meta` keys.
const KEY_FORMAT: &str = "format";
const KEY_DIGEST: &str = "digest";
/// Present from creation until the first commit: the daemon then writes its default
/// configuration (again, if it was interrupted before).
const KEY_FRESH: &str = "fresh";
/// redb's file signature (its first bytes).
const REDB_MAGIC: &[u8] = b"redb\x1A\x0A\xA9\x0D\x0A";

/// Errors of the configuration store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created (permissions, already in use, I/O).
    #[error("cannot open store {path}: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why (from redb or the OS).
        message: String,
    },
    /// The file is not a vswitchd store (or is one of a newer format).
    #[error("{path} is not a vswitchd store ({message}); refusing to touch it")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What was found.
        message: String,
    },
    /// The file is one of ours, but damaged: what it holds cannot be trusted.
    #[error(
        "store {path} is damaged: {message}. Nothing was changed. Restore it from a backup, \
         or start vswitchd with --repair (keep every record that can still be read) or \
         --reset-store (start from the default configuration); both keep a copy of the \
         damaged file"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A read or write failed.
    #[error("{0}")]
    Io(String),
}

impl StoreError {
    /// True for damage that `--repair` or `--reset-store` may deal with.
    pub fn is_damage(&self) -> bool {
        matches!(self, StoreError::Damaged { .. })
    }
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// Everything stored for one bridge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BridgeRecord {
    /// The bridge (its `ports` field empty).
    pub bridge: v1::Bridge,
    /// Ports by name.
    pub ports: BTreeMap<String, v1::PortDesc>,
    /// Flows by identity key.
    pub flows: Vec<(Vec<u8>, v1::Flow)>,
    /// Meters by id.
    pub meters: BTreeMap<u32, v1::Meter>,
    /// Groups by id.
    pub groups: BTreeMap<u32, v1::Group>,
}

/// Every bridge with everything it holds.
pub type Records = BTreeMap<String, BridgeRecord>;

/// The store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
    created: bool,
    /// redb fell back to the commit before an incomplete newest one on open.
    rolled_back: bool,
    /// What [`Store::open`] read and checked, for the first [`Store::load`].
    loaded: Mutex<Option<Records>>,
}

impl Store {
    /// Opens the store at `path`, creating it (and its directory) when missing, and reads
    /// and checks everything in it: a damaged file is [`StoreError::Damaged`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let created_now = if std::fs::symlink_metadata(path).is_err() {
            create(path)?
        } else {
            false
        };
        // The header as it is before redb opens the file (opening it rewrites the header).
        let (header, file_len) = read_header(path)?;
        let records = integrity::commit_records(&header, file_len);
        let (db, rolled_back) = open_db(path)?;
        // After a crash, redb falls back from a newest commit record that fails its
        // checksum without a word.
        let rolled_back = rolled_back || !(records.clean_stop || records.newest_sound);
        if rolled_back {
            tracing::warn!(
                store = %path.display(),
                "the newest commit was incomplete (as a crash during a write leaves it, before \
                 the write was acknowledged) or damaged; using the commit before it"
            );
        }
        // (Had another vswitchd been writing the header as it was read, opening the file
        // would have failed: it is locked.)
        if let Some(message) = records.damage() {
            close_untouched(db);
            return Err(StoreError::Damaged {
                path: path.to_path_buf(),
                message,
            });
        }
        let mut store = std::mem::ManuallyDrop::new(Store {
            db,
            path: path.to_path_buf(),
            created: created_now,
            rolled_back,
            loaded: Mutex::new(None),
        });
        // Everything that reads the file runs with the storage engine's panics caught. A
        // store it panicked on is leaked, not dropped: its state is unknown, and a second
        // panic while unwinding would abort the process.
        match quietly(|| store.check()) {
            Ok(Ok(())) => Ok(std::mem::ManuallyDrop::into_inner(store)),
            Ok(Err(e)) => {
                close_untouched(std::mem::ManuallyDrop::into_inner(store));
                Err(e)
            }
            Err(panic) => Err(StoreError::Damaged {
                path: path.to_path_buf(),
                message: format!(
                    "the storage engine failed reading it ({})",
                    crate::error::quote(&panic)
                ),
            }),
        }
    }

    /// Checks the format, reads every record and compares what was read with the digest
    /// the last commit wrote; keeps the records for the first [`Store::load`].
    fn check(&mut self) -> Result<(), StoreError> {
        let (recorded, fresh) = self.check_format()?;
        self.created |= fresh;
        // Ours: nobody else may read or change it (an older vswitchd created it with the
        // umask's mode).
        if let Err(e) = owner_only::check_owner_only(&self.path) {
            tracing::warn!("{e}; restricting it to its owner");
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600));
        }
        let (records, read) = self.read_all()?;
        match recorded {
            Some(recorded) => {
                let diff = read.differences(&recorded);
                if !diff.is_empty() {
                    return Err(self.damaged(diff.join("; ")));
                }
            }
            None => self.upgrade(&read)?,
        }
        *self.loaded.lock() = Some(records);
        Ok(())
    }

    /// True when this store is new (the daemon then writes its default configuration).
    pub fn created(&self) -> bool {
        self.created
    }

    /// True when the newest commit was incomplete on open (a crash during a write) and the
    /// one before it was used; said on stderr.
    pub fn rolled_back(&self) -> bool {
        self.rolled_back
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn damaged(&self, message: String) -> StoreError {
        StoreError::Damaged {
            path: self.path.clone(),
            message,
        }
    }

    /// Reads the format marker; returns the recorded digest (`None` for a format-1 store,
    /// which is upgraded once read) and whether the store is still fresh.
    fn check_format(&mut self) -> Result<(Option<Digest>, bool), StoreError> {
        let rtx = self.db.begin_read().map_err(io)?;
        let (found, digest, fresh) = match rtx.open_table(META) {
            Ok(t) => {
                let get = |k: &str| -> Result<Option<Vec<u8>>, StoreError> {
                    Ok(t.get(k).map_err(io)?.map(|v| v.value().to_vec()))
                };
                (
                    get(KEY_FORMAT)?,
                    get(KEY_DIGEST)?,
                    get(KEY_FRESH)?.is_some(),
                )
            }
            Err(redb::TableError::TableDoesNotExist(_)) => (None, None, false),
            Err(e) => return Err(self.damaged(format!("its meta table cannot be read: {e}"))),
        };
        drop(rtx);
        match found {
            Some(f) if f == FORMAT => match digest.as_deref().map(Digest::decode) {
                Some(Some(d)) => Ok((Some(d), fresh)),
                _ => Err(self.damaged("its digest record is missing or malformed".into())),
            },
            Some(f) if f == FORMAT_V1 => Ok((None, fresh)),
            Some(f) => {
                let text = String::from_utf8_lossy(&f);
                let newer = text
                    .strip_prefix(FORMAT_PREFIX)
                    .and_then(|v| v.parse::<u32>().ok())
                    .is_some_and(|v| v > 2);
                if newer {
                    Err(StoreError::Foreign {
                        path: self.path.clone(),
                        message: format!(
                            "format {text:?} is newer than this vswitchd reads \
                             ({FORMAT_PREFIX}1 and 2)"
                        ),
                    })
                } else {
                    Err(self.damaged(format!(
                        "its format marker reads {}, which no vswitchd writes",
                        crate::error::quote(&text)
                    )))
                }
            }
            None => {
                // A database without our marker: only an empty one may become ours.
                let rtx = self.db.begin_read().map_err(io)?;
                let tables = rtx.list_tables().map_err(io)?.count();
                drop(rtx);
                if tables > 0 {
                    return Err(StoreError::Foreign {
                        path: self.path.clone(),
                        message: format!("a redb database with {tables} foreign tables"),
                    });
                }
                initialise(&self.db)?;
                Ok((Some(Digest::default()), true))
            }
        }
    }

    /// Writes the digest of a format-1 store (read just now) and marks it format 2.
    fn upgrade(&self, read: &Digest) -> Result<(), StoreError> {
        let wtx = self.db.begin_write().map_err(io)?;
        {
            let mut meta = wtx.open_table(META).map_err(io)?;
            meta.insert(KEY_DIGEST, read.encode().as_slice())
                .map_err(io)?;
            meta.insert(KEY_FORMAT, FORMAT).map_err(io)?;
        }
        wtx.commit().map_err(io)?;
        tracing::info!(
            store = %self.path.display(),
            "upgraded to {} (record counts and digest added)",
            String::from_utf8_lossy(FORMAT)
        );
        Ok(())
    }

    /// Every bridge with everything it holds. The first call returns what [`Store::open`]
    /// read and checked; later calls read the file again (checked the same way).
    pub fn load(&self) -> Result<Records, StoreError> {
        if let Some(r) = self.loaded.lock().take() {
            return Ok(r);
        }
        let (records, read) = self.read_all()?;
        let rtx = self.db.begin_read().map_err(io)?;
        let recorded = rtx
            .open_table(META)
            .map_err(io)?
            .get(KEY_DIGEST)
            .map_err(io)?
            .and_then(|v| Digest::decode(v.value()));
        drop(rtx);
        let recorded = recorded
            .ok_or_else(|| self.damaged("its digest record is missing or malformed".into()))?;
        let diff = read.differences(&recorded);
        if !diff.is_empty() {
            return Err(self.damaged(diff.join("; ")));
        }
        Ok(records)
    }

    /// Reads every table, with the digest of what was read. Errors and panics of the
    /// storage engine are damage.
    fn read_all(&self) -> Result<(Records, Digest), StoreError> {
        match quietly(|| read_tables(&self.db, Salvage::No)) {
            Ok(Ok((records, digest, _))) => Ok((records, digest)),
            Ok(Err(e)) => Err(self.damaged(e)),
            Err(panic) => Err(self.damaged(format!(
                "the storage engine failed reading it ({})",
                crate::error::quote(&panic)
            ))),
        }
    }

    /// Opens a write transaction; nothing is visible or durable until [`StoreTxn::commit`].
    pub fn begin(&self) -> Result<StoreTxn, StoreError> {
        Ok(StoreTxn::new(self.db.begin_write().map_err(io)?))
    }
}

/// Creates a new, initialised store at `path` (owner-only) by way of a temporary file, so
/// that `path` never names an empty or half-initialised store. Returns false when another
/// process created `path` first.
fn create(path: &Path) -> Result<bool, StoreError> {
    let open_err = |message: String| StoreError::Open {
        path: path.to_path_buf(),
        message,
    };
    if let Some(dir) = path.parent() {
        owner_only::create_dir_all(dir)
            .map_err(|e| open_err(format!("creating {}: {e}", dir.display())))?;
    }
    let tmp = sibling(path, "new");
    // A leftover of an interrupted creation: ours, never acknowledged to anyone.
    let _ = std::fs::remove_file(&tmp);
    let file = owner_only::create_file(&tmp)
        .map_err(|e| open_err(format!("creating {}: {e}", tmp.display())))?;
    let init = || -> Result<(), StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create_file(file)
            .map_err(|e| open_err(e.to_string()))?;
        initialise(&db)?;
        drop(db);
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(open_err(format!(
                "moving {} into place: {e}",
                tmp.display()
            ))),
        }
    };
    let res = init();
    let _ = std::fs::remove_file(&tmp);
    res?;
    sync_dir(path);
    Ok(true)
}

/// Marks an empty database as a new store: format, an empty digest, `fresh`, every table.
fn initialise(db: &Database) -> Result<(), StoreError> {
    let wtx = db.begin_write().map_err(io)?;
    {
        let mut meta = wtx.open_table(META).map_err(io)?;
        meta.insert(KEY_FORMAT, FORMAT).map_err(io)?;
        meta.insert(KEY_DIGEST, Digest::default().encode().as_slice())
            .map_err(io)?;
        meta.insert(KEY_FRESH, &[][..]).map_err(io)?;
        // Create every table now so later read transactions find them.
        wtx.open_table(BRIDGES).map_err(io)?;
        wtx.open_table(PORTS).map_err(io)?;
        wtx.open_table(FLOWS).map_err(io)?;
        wtx.open_table(METERS).map_err(io)?;
        wtx.open_table(GROUPS).map_err(io)?;
    }
    wtx.commit().map_err(io)
}

/// `path` with `.suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Makes a rename or link in `path`'s directory durable.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Opens an existing store file with redb, turning every way it can fail (errors, panics)
/// into a clear error. The second value says redb found the newest commit incomplete (its
/// checksums fail) and fell back to the one before: what a crash during a commit leaves,
/// that commit never having been acknowledged.
fn open_db(path: &Path) -> Result<(Database, bool), StoreError> {
    let damaged = |message: String| StoreError::Damaged {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| StoreError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if meta.len() == 0 {
        return Err(damaged(
            "the file is empty (0 bytes), and a store never is, not even a new one".into(),
        ));
    }
    let ours = has_redb_magic(path);
    // redb calls this with progress 0.3 exactly when the newest commit's checksums fail and
    // it is about to fall back to the commit before (and with 0.0, 0.6 and 0.9 in every
    // recovery: those are not a fallback).
    let rolled_back = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&rolled_back);
    let opened = quietly(|| -> Result<Database, redb::DatabaseError> {
        let mut builder = redb::Builder::new();
        builder
            .set_cache_size(CACHE_BYTES)
            .set_repair_callback(move |s| {
                if (0.2..0.5).contains(&s.progress()) {
                    flag.store(true, Ordering::Relaxed);
                }
            });
        if !ours {
            return builder.open(path);
        }
        // Ours: opened so that redb rebuilds its allocation state from the trees, checking
        // every page (`integrity.rs`).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let backend = redb::backends::FileBackend::new(file)?;
        builder.create_with_backend(integrity::Rebuilding(backend))
    });
    let rolled_back = rolled_back.load(Ordering::Relaxed);
    match opened {
        Ok(Ok(db)) => Ok((db, rolled_back)),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => Err(StoreError::Open {
            path: path.to_path_buf(),
            message: "it is already open: another vswitchd is using this store".into(),
        }),
        // Reading past the end of its own file is damage (a record pointing outside it),
        // not a failure to open it.
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))))
            if !matches!(
                e.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Err(StoreError::Open {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
        Ok(Err(e)) if ours => Err(damaged(format!(
            "the storage engine cannot read it ({})",
            crate::error::quote(&e.to_string())
        ))),
        Ok(Err(e)) => Err(StoreError::Foreign {
            path: path.to_path_buf(),
            message: crate::error::quote(&e.to_string()),
        }),
        Err(panic) if ours => Err(damaged(format!(
            "the storage engine failed opening it ({}); it may be truncated or overwritten",
            crate::error::quote(&panic)
        ))),
        Err(panic) => Err(StoreError::Foreign {
            path: path.to_path_buf(),
            message: format!("not a redb database ({})", crate::error::quote(&panic)),
        }),
    }
}

/// The first [`integrity::HEADER_BYTES`] of the file (fewer if it is shorter) and its
/// length.
fn read_header(path: &Path) -> Result<(Vec<u8>, u64), StoreError> {
    use std::io::Read;
    let fail = |e: std::io::Error| StoreError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let f = std::fs::File::open(path).map_err(fail)?;
    let len = f.metadata().map_err(fail)?.len();
    let mut header = Vec::with_capacity(integrity::HEADER_BYTES);
    f.take(integrity::HEADER_BYTES as u64)
        .read_to_end(&mut header)
        .map_err(fail)?;
    Ok((header, len))
}

fn has_redb_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; REDB_MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head == REDB_MAGIC
}

/// Whether [`read_tables`] stops at the first bad record (`No`) or skips it and goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Salvage {
    No,
    Yes,
}

/// Reads every table. With `Salvage::No` the first problem is the error; with
/// `Salvage::Yes` problems are collected (third value) and reading goes on where it can.
fn read_tables(db: &Database, salvage: Salvage) -> Result<(Records, Digest, Vec<String>), String> {
    let mut out = Records::new();
    let mut digest = Digest::default();
    let mut problems = Vec::new();
    let mut problem = |p: String| -> Result<(), String> {
        if salvage == Salvage::No {
            return Err(p);
        }
        problems.push(p);
        Ok(())
    };
    let rtx = db.begin_read().map_err(|e| e.to_string())?;
    // Each table is read on its own, so a broken one does not hide the others.
    macro_rules! each_row {
        ($def:expr, $table:expr, |$k:ident, $v:ident| $body:block) => {
            match rtx.open_table($def) {
                Err(e) => problem(format!("table {} cannot be opened: {e}", $table.name()))?,
                Ok(t) => match t.iter() {
                    Err(e) => problem(format!("table {} cannot be read: {e}", $table.name()))?,
                    Ok(rows) => {
                        for row in rows {
                            match row {
                                Err(e) => {
                                    problem(format!(
                                        "table {} stops being readable: {e}",
                                        $table.name()
                                    ))?;
                                    break;
                                }
                                Ok(($k, $v)) => $body,
                            }
                        }
                    }
                },
            }
        };
    }
    each_row!(BRIDGES, Table::Bridges, |k, v| {
        let name = k.value();
        match v1::Bridge::decode(v.value()) {
            Ok(bridge) => {
                digest.add(Table::Bridges, &[name.as_bytes()], v.value());
                out.insert(
                    name.to_string(),
                    BridgeRecord {
                        bridge,
                        ..BridgeRecord::default()
                    },
                );
            }
            Err(e) => problem(bad_record(Table::Bridges, name, &e))?,
        }
    });
    each_row!(PORTS, Table::Ports, |k, v| {
        let (b, name) = k.value();
        digest.add(Table::Ports, &[b.as_bytes(), name.as_bytes()], v.value());
        match (out.get_mut(b), v1::PortDesc::decode(v.value())) {
            (Some(rec), Ok(p)) => {
                rec.ports.insert(name.to_string(), p);
            }
            (None, _) => problem(orphan(Table::Ports, b))?,
            (_, Err(e)) => problem(bad_record(Table::Ports, name, &e))?,
        }
    });
    each_row!(FLOWS, Table::Flows, |k, v| {
        let (b, id) = k.value();
        digest.add(Table::Flows, &[b.as_bytes(), id], v.value());
        match (out.get_mut(b), v1::Flow::decode(v.value())) {
            (Some(rec), Ok(f)) => rec.flows.push((id.to_vec(), f)),
            (None, _) => problem(orphan(Table::Flows, b))?,
            (_, Err(e)) => problem(bad_record(Table::Flows, b, &e))?,
        }
    });
    each_row!(METERS, Table::Meters, |k, v| {
        let (b, id) = k.value();
        digest.add(Table::Meters, &[b.as_bytes(), &id.to_le_bytes()], v.value());
        match (out.get_mut(b), v1::Meter::decode(v.value())) {
            (Some(rec), Ok(m)) => {
                rec.meters.insert(id, m);
            }
            (None, _) => problem(orphan(Table::Meters, b))?,
            (_, Err(e)) => problem(bad_record(Table::Meters, b, &e))?,
        }
    });
    each_row!(GROUPS, Table::Groups, |k, v| {
        let (b, id) = k.value();
        digest.add(Table::Groups, &[b.as_bytes(), &id.to_le_bytes()], v.value());
        match (out.get_mut(b), v1::Group::decode(v.value())) {
            (Some(rec), Ok(g)) => {
                rec.groups.insert(id, g);
            }
            (None, _) => problem(orphan(Table::Groups, b))?,
            (_, Err(e)) => problem(bad_record(Table::Groups, b, &e))?,
        }
    });
    Ok((out, digest, problems))
}

fn bad_record(t: Table, owner: &str, e: &prost::DecodeError) -> String {
    format!(
        "a record in table {} (of {}) does not decode: {e}",
        t.name(),
        crate::error::quote(owner)
    )
}

fn orphan(t: Table, bridge: &str) -> String {
    format!(
        "table {} holds a record for bridge {}, which is not stored",
        t.name(),
        crate::error::quote(bridge)
    )
}

thread_local! {
    /// Set while [`quietly`] runs on this thread: its panics are reported as errors.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err(its message)` without printing it. Only this thread's
/// panics are silenced, and only while `f` runs; other threads report theirs as usual.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// Drops `x` (a store or its database) without the commit redb makes when a database is
/// dropped (it writes its allocation state and may shrink the file): redb skips that while
/// the thread panics, so `x` is dropped as a caught, silent panic unwinds. For damaged
/// files, which must stay as they were found.
fn close_untouched<T>(x: T) {
    let _ = quietly(move || {
        let _closing = x;
        std::panic::panic_any("closing a damaged store untouched")
    });
}

#[cfg(test)]
mod tests;
