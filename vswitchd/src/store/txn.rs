//! One atomic, durable change to the store, keeping the digest (`digest.rs`) in step: every
//! record written or removed is accounted for, and the new counts and sums are written in
//! the same redb transaction as the records.
//!
//! Thread-safety: a `StoreTxn` belongs to one thread; redb serialises write transactions.

use prost::Message;
use proto::v1;
use redb::ReadableTable;

use super::digest::{Digest, Table};
use super::{BRIDGES, FLOWS, GROUPS, KEY_DIGEST, KEY_FRESH, META, METERS, PORTS, StoreError, io};

/// One atomic, durable change to the store.
pub struct StoreTxn {
    pub(super) tx: redb::WriteTransaction,
    /// What this transaction adds to the recorded digest.
    pub(super) delta: Digest,
}

impl std::fmt::Debug for StoreTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreTxn")
    }
}

impl StoreTxn {
    pub(super) fn new(tx: redb::WriteTransaction) -> StoreTxn {
        StoreTxn {
            tx,
            delta: Digest::default(),
        }
    }

    /// Writes a bridge record.
    pub fn put_bridge(&mut self, b: &v1::Bridge) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(BRIDGES).map_err(io)?;
        let value = b.encode_to_vec();
        let key = [b.name.as_bytes()];
        if let Some(old) = t.insert(b.name.as_str(), value.as_slice()).map_err(io)? {
            self.delta.remove(Table::Bridges, &key, old.value());
        }
        self.delta.add(Table::Bridges, &key, &value);
        Ok(())
    }

    /// Removes a bridge and everything it holds.
    pub fn del_bridge(&mut self, name: &str) -> Result<(), StoreError> {
        let delta = &mut self.delta;
        if let Some(old) = self
            .tx
            .open_table(BRIDGES)
            .map_err(io)?
            .remove(name)
            .map_err(io)?
        {
            delta.remove(Table::Bridges, &[name.as_bytes()], old.value());
        }
        self.tx
            .open_table(PORTS)
            .map_err(io)?
            .retain_in((name, "")..=(name, "\u{10ffff}"), |(b, p), v| {
                delta.remove(Table::Ports, &[b.as_bytes(), p.as_bytes()], v);
                false
            })
            .map_err(io)?;
        let hi: &[u8] = &[0xff; 512];
        self.tx
            .open_table(FLOWS)
            .map_err(io)?
            .retain_in((name, &[][..])..=(name, hi), |(b, id), v| {
                delta.remove(Table::Flows, &[b.as_bytes(), id], v);
                false
            })
            .map_err(io)?;
        self.tx
            .open_table(METERS)
            .map_err(io)?
            .retain_in((name, 0)..=(name, u32::MAX), |(b, id), v| {
                delta.remove(Table::Meters, &[b.as_bytes(), &id.to_le_bytes()], v);
                false
            })
            .map_err(io)?;
        self.tx
            .open_table(GROUPS)
            .map_err(io)?
            .retain_in((name, 0)..=(name, u32::MAX), |(b, id), v| {
                delta.remove(Table::Groups, &[b.as_bytes(), &id.to_le_bytes()], v);
                false
            })
            .map_err(io)?;
        Ok(())
    }

    /// Writes a port record.
    pub fn put_port(&mut self, bridge: &str, p: &v1::PortDesc) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(PORTS).map_err(io)?;
        let value = p.encode_to_vec();
        let key = [bridge.as_bytes(), p.name.as_bytes()];
        if let Some(old) = t
            .insert((bridge, p.name.as_str()), value.as_slice())
            .map_err(io)?
        {
            self.delta.remove(Table::Ports, &key, old.value());
        }
        self.delta.add(Table::Ports, &key, &value);
        Ok(())
    }

    /// Removes a port record.
    pub fn del_port(&mut self, bridge: &str, name: &str) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(PORTS).map_err(io)?;
        if let Some(old) = t.remove((bridge, name)).map_err(io)? {
            self.delta.remove(
                Table::Ports,
                &[bridge.as_bytes(), name.as_bytes()],
                old.value(),
            );
        }
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
            let key = [bridge.as_bytes(), id];
            let old = match flow {
                Some(f) => {
                    buf.clear();
                    f.encode(&mut buf).map_err(io)?;
                    self.delta.add(Table::Flows, &key, &buf);
                    t.insert((bridge, id), buf.as_slice()).map_err(io)?
                }
                None => t.remove((bridge, id)).map_err(io)?,
            };
            if let Some(old) = old {
                self.delta.remove(Table::Flows, &key, old.value());
            }
        }
        Ok(())
    }

    /// Writes a meter.
    pub fn put_meter(&mut self, bridge: &str, m: &v1::Meter) -> Result<(), StoreError> {
        self.put_id(Table::Meters, bridge, m.id, &m.encode_to_vec())
    }

    /// Removes a meter.
    pub fn del_meter(&mut self, bridge: &str, id: u32) -> Result<(), StoreError> {
        self.del_id(Table::Meters, bridge, id)
    }

    /// Writes a group.
    pub fn put_group(&mut self, bridge: &str, g: &v1::Group) -> Result<(), StoreError> {
        self.put_id(Table::Groups, bridge, g.id, &g.encode_to_vec())
    }

    /// Removes a group.
    pub fn del_group(&mut self, bridge: &str, id: u32) -> Result<(), StoreError> {
        self.del_id(Table::Groups, bridge, id)
    }

    fn put_id(
        &mut self,
        which: Table,
        bridge: &str,
        id: u32,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let def = if which == Table::Meters {
            METERS
        } else {
            GROUPS
        };
        let mut t = self.tx.open_table(def).map_err(io)?;
        let idb = id.to_le_bytes();
        let key = [bridge.as_bytes(), &idb[..]];
        if let Some(old) = t.insert((bridge, id), value).map_err(io)? {
            self.delta.remove(which, &key, old.value());
        }
        self.delta.add(which, &key, value);
        Ok(())
    }

    fn del_id(&mut self, which: Table, bridge: &str, id: u32) -> Result<(), StoreError> {
        let def = if which == Table::Meters {
            METERS
        } else {
            GROUPS
        };
        let mut t = self.tx.open_table(def).map_err(io)?;
        if let Some(old) = t.remove((bridge, id)).map_err(io)? {
            self.delta
                .remove(which, &[bridge.as_bytes(), &id.to_le_bytes()], old.value());
        }
        Ok(())
    }

    /// Makes the transaction durable (fsync) and visible, with the digest updated in the
    /// same commit; returns only once it is on disk.
    pub fn commit(self) -> Result<(), StoreError> {
        {
            let mut meta = self.tx.open_table(META).map_err(io)?;
            let recorded = match meta.get(KEY_DIGEST).map_err(io)? {
                Some(v) => Digest::decode(v.value()).ok_or_else(|| {
                    StoreError::Io("the store's digest record is malformed".into())
                })?,
                None => Digest::default(),
            };
            let next = recorded.plus(&self.delta);
            meta.insert(KEY_DIGEST, next.encode().as_slice())
                .map_err(io)?;
            meta.remove(KEY_FRESH).map_err(io)?;
        }
        let start = std::time::Instant::now();
        let res = self.tx.commit().map_err(io);
        crate::metrics::instruments().commit_took(start.elapsed());
        res
    }
}
