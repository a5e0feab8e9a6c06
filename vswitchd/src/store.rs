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
//! A file that is not a redb database, or a redb database without our format marker, is
//! refused with [`StoreError::Foreign`]; never silently reset.
//!
//! Thread-safety: `Store` is `Send + Sync`; redb serialises write transactions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use prost::Message;
use proto::v1;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const BRIDGES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("bridges");
const PORTS: TableDefinition<'_, (&str, &str), &[u8]> = TableDefinition::new("ports");
const FLOWS: TableDefinition<'_, (&str, &[u8]), &[u8]> = TableDefinition::new("flows");
const METERS: TableDefinition<'_, (&str, u32), &[u8]> = TableDefinition::new("meters");
const GROUPS: TableDefinition<'_, (&str, u32), &[u8]> = TableDefinition::new("groups");

/// redb page cache.
const CACHE_BYTES: usize = 64 << 20;

/// Value of the `format` key in the `meta` table.
const FORMAT: &[u8] = b"vswitchd-store/1";

/// Errors of the configuration store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be opened or created as a database.
    #[error("cannot open store {path}: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why (from redb or the OS).
        message: String,
    },
    /// The file is a database, but not ours (or of a newer format).
    #[error("{path} is not a vswitchd store ({message}); refusing to touch it")]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What was found.
        message: String,
    },
    /// The file is a database whose structure is damaged (truncated, overwritten).
    #[error(
        "{path} is damaged (truncated or overwritten) and cannot be read; restore it from a \
         backup, or move it away to start with an empty configuration"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
    },
    /// A record does not decode.
    #[error("corrupt record in table {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The decode error.
        message: String,
    },
    /// A read or write failed.
    #[error("{0}")]
    Io(String),
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

/// Everything stored for one bridge.
#[derive(Debug, Clone, Default)]
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

/// The store.
#[derive(Debug)]
pub struct Store {
    db: Database,
    path: PathBuf,
    created: bool,
}

impl Store {
    /// Opens the store at `path`, creating it (and its directory) when missing.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        }
        let existed = path.exists()
            && std::fs::metadata(path)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
        // The store is read once at start and then only written: a small page cache is
        // enough (redb's default is 1 GiB). redb asserts on some damaged files (a truncated
        // one, say) instead of returning an error: catch that, quietly, and report it.
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let opened = std::panic::catch_unwind(|| {
            redb::Builder::new()
                .set_cache_size(CACHE_BYTES)
                .create(path)
        });
        std::panic::set_hook(quiet);
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(open_err(
                    "it is already open: another vswitchd is using this store".into(),
                ));
            }
            Ok(Err(e)) if existed => {
                return Err(StoreError::Foreign {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
            Ok(Err(e)) => return Err(open_err(e.to_string())),
            Err(_) => {
                return Err(StoreError::Damaged {
                    path: path.to_path_buf(),
                });
            }
        };
        let mut store = Store {
            db,
            path: path.to_path_buf(),
            created: false,
        };
        store.check_format()?;
        Ok(store)
    }

    /// True when this open created the store (the daemon then writes its default).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_format(&mut self) -> Result<(), StoreError> {
        let rtx = self.db.begin_read().map_err(io)?;
        let found = match rtx.open_table(META) {
            Ok(t) => t.get("format").map_err(io)?.map(|v| v.value().to_vec()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(io(e)),
        };
        drop(rtx);
        match found {
            Some(f) if f == FORMAT => Ok(()),
            Some(f) => Err(StoreError::Foreign {
                path: self.path.clone(),
                message: format!("format marker {:?}", String::from_utf8_lossy(&f)),
            }),
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
                let wtx = self.db.begin_write().map_err(io)?;
                {
                    let mut meta = wtx.open_table(META).map_err(io)?;
                    meta.insert("format", FORMAT).map_err(io)?;
                    // Create every table now so later read transactions find them.
                    wtx.open_table(BRIDGES).map_err(io)?;
                    wtx.open_table(PORTS).map_err(io)?;
                    wtx.open_table(FLOWS).map_err(io)?;
                    wtx.open_table(METERS).map_err(io)?;
                    wtx.open_table(GROUPS).map_err(io)?;
                }
                wtx.commit().map_err(io)?;
                self.created = true;
                Ok(())
            }
        }
    }

    /// Reads every bridge with everything it holds.
    pub fn load(&self) -> Result<BTreeMap<String, BridgeRecord>, StoreError> {
        let rtx = self.db.begin_read().map_err(io)?;
        let mut out: BTreeMap<String, BridgeRecord> = BTreeMap::new();
        for row in rtx.open_table(BRIDGES).map_err(io)?.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let bridge = decode::<v1::Bridge>("bridges", v.value())?;
            out.insert(
                k.value().to_string(),
                BridgeRecord {
                    bridge,
                    ..BridgeRecord::default()
                },
            );
        }
        let missing = |table: &'static str, b: &str| StoreError::Corrupt {
            table,
            message: format!("record for unknown bridge {b:?}"),
        };
        for row in rtx.open_table(PORTS).map_err(io)?.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let (b, name) = k.value();
            let rec = out.get_mut(b).ok_or_else(|| missing("ports", b))?;
            rec.ports
                .insert(name.to_string(), decode("ports", v.value())?);
        }
        for row in rtx.open_table(FLOWS).map_err(io)?.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let (b, id) = k.value();
            let rec = out.get_mut(b).ok_or_else(|| missing("flows", b))?;
            rec.flows.push((id.to_vec(), decode("flows", v.value())?));
        }
        for row in rtx.open_table(METERS).map_err(io)?.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let (b, id) = k.value();
            let rec = out.get_mut(b).ok_or_else(|| missing("meters", b))?;
            rec.meters.insert(id, decode("meters", v.value())?);
        }
        for row in rtx.open_table(GROUPS).map_err(io)?.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let (b, id) = k.value();
            let rec = out.get_mut(b).ok_or_else(|| missing("groups", b))?;
            rec.groups.insert(id, decode("groups", v.value())?);
        }
        Ok(out)
    }

    /// Opens a write transaction; nothing is visible or durable until [`StoreTxn::commit`].
    pub fn begin(&self) -> Result<StoreTxn, StoreError> {
        Ok(StoreTxn {
            tx: self.db.begin_write().map_err(io)?,
        })
    }
}

fn decode<M: Message + Default>(table: &'static str, bytes: &[u8]) -> Result<M, StoreError> {
    M::decode(bytes).map_err(|e| StoreError::Corrupt {
        table,
        message: e.to_string(),
    })
}

/// One atomic, durable change to the store.
pub struct StoreTxn {
    tx: redb::WriteTransaction,
}

impl std::fmt::Debug for StoreTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreTxn")
    }
}

impl StoreTxn {
    /// Writes a bridge record.
    pub fn put_bridge(&mut self, b: &v1::Bridge) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(BRIDGES).map_err(io)?;
        t.insert(b.name.as_str(), b.encode_to_vec().as_slice())
            .map_err(io)?;
        Ok(())
    }

    /// Removes a bridge and everything it holds.
    pub fn del_bridge(&mut self, name: &str) -> Result<(), StoreError> {
        self.tx
            .open_table(BRIDGES)
            .map_err(io)?
            .remove(name)
            .map_err(io)?;
        self.tx
            .open_table(PORTS)
            .map_err(io)?
            .retain_in((name, "")..=(name, "\u{10ffff}"), |_, _| false)
            .map_err(io)?;
        let hi: &[u8] = &[0xff; 512];
        self.tx
            .open_table(FLOWS)
            .map_err(io)?
            .retain_in((name, &[][..])..=(name, hi), |_, _| false)
            .map_err(io)?;
        self.tx
            .open_table(METERS)
            .map_err(io)?
            .retain_in((name, 0)..=(name, u32::MAX), |_, _| false)
            .map_err(io)?;
        self.tx
            .open_table(GROUPS)
            .map_err(io)?
            .retain_in((name, 0)..=(name, u32::MAX), |_, _| false)
            .map_err(io)?;
        Ok(())
    }

    /// Writes a port record.
    pub fn put_port(&mut self, bridge: &str, p: &v1::PortDesc) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(PORTS).map_err(io)?;
        t.insert((bridge, p.name.as_str()), p.encode_to_vec().as_slice())
            .map_err(io)?;
        Ok(())
    }

    /// Removes a port record.
    pub fn del_port(&mut self, bridge: &str, name: &str) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(PORTS).map_err(io)?;
        t.remove((bridge, name)).map_err(io)?;
        Ok(())
    }

    /// Writes (`Some`) or removes (`None`) flows by identity key.
    pub fn put_flows<'a>(
        &mut self,
        bridge: &str,
        flows: impl IntoIterator<Item = (&'a [u8], Option<&'a v1::Flow>)>,
    ) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(FLOWS).map_err(io)?;
        let mut buf = Vec::new();
        for (id, flow) in flows {
            match flow {
                Some(f) => {
                    buf.clear();
                    f.encode(&mut buf).map_err(io)?;
                    t.insert((bridge, id), buf.as_slice()).map_err(io)?;
                }
                None => {
                    t.remove((bridge, id)).map_err(io)?;
                }
            }
        }
        Ok(())
    }

    /// Writes a meter.
    pub fn put_meter(&mut self, bridge: &str, m: &v1::Meter) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(METERS).map_err(io)?;
        t.insert((bridge, m.id), m.encode_to_vec().as_slice())
            .map_err(io)?;
        Ok(())
    }

    /// Removes a meter.
    pub fn del_meter(&mut self, bridge: &str, id: u32) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(METERS).map_err(io)?;
        t.remove((bridge, id)).map_err(io)?;
        Ok(())
    }

    /// Writes a group.
    pub fn put_group(&mut self, bridge: &str, g: &v1::Group) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(GROUPS).map_err(io)?;
        t.insert((bridge, g.id), g.encode_to_vec().as_slice())
            .map_err(io)?;
        Ok(())
    }

    /// Removes a group.
    pub fn del_group(&mut self, bridge: &str, id: u32) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(GROUPS).map_err(io)?;
        t.remove((bridge, id)).map_err(io)?;
        Ok(())
    }

    /// Makes the transaction durable (fsync) and visible; returns only once it is on disk.
    pub fn commit(self) -> Result<(), StoreError> {
        let start = std::time::Instant::now();
        let res = self.tx.commit().map_err(io);
        crate::metrics::instruments().commit_took(start.elapsed());
        res
    }
}
