//! Cluster changes: overlay network definitions (with their VNIs), which hosts have them,
//! and the endpoint registry. Each change is one etcd transaction guarded by what it read
//! (compare-and-swap), retried a bounded number of times when another host changed the same
//! keys in between; so two hosts racing to define one network get one VNI, and a MAC
//! address is registered once per network.

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use crate::api::{Cidr, Id, Mac};
use crate::overlay::etcd::{Etcd, EtcdError, absent, put, unchanged};
use crate::overlay::schema::{
    self, EndpointRecord, FORMAT, HostId, HostRecord, Keys, NetworkDef, VNI_MAX, VNI_MIN,
};

/// How many times a transaction is retried after another host's change got in first.
pub const MAX_TRIES: usize = 32;

/// Why a cluster change was not made. The message is what the Docker user sees.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// etcd could not be reached.
    #[error(
        "{0}; new endpoints and networks of overlay networks are refused until it is back (existing containers keep talking)"
    )]
    Etcd(#[from] EtcdError),
    /// The request disagrees with what the cluster holds.
    #[error("{0}")]
    Conflict(String),
    /// Nothing is left to allocate.
    #[error("{0}")]
    Exhausted(String),
    /// Other hosts kept changing the same keys.
    #[error("{0}: other hosts kept changing the same keys; try again")]
    Busy(String),
    /// A value in etcd does not parse (written by another version, or by hand).
    #[error("{0}")]
    Corrupt(String),
}

impl From<schema::SchemaError> for ClusterError {
    fn from(e: schema::SchemaError) -> ClusterError {
        ClusterError::Corrupt(format!("etcd holds a value this version cannot read: {e}"))
    }
}

/// The cluster as one host sees it: the etcd connection, the keys, this host's name.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The connection.
    pub etcd: Etcd,
    /// The key layout.
    pub keys: Keys,
    /// This host.
    pub host: HostId,
}

/// True when two prefixes share an address.
fn overlaps(a: &Cidr, b: &Cidr) -> bool {
    a.addr.is_ipv4() == b.addr.is_ipv4() && (a.contains(b.addr) || b.contains(a.addr))
}

impl Cluster {
    /// Defines the overlay network `want` cluster-wide, or finds it defined: returns the
    /// definition in force (with its VNI). A definition that differs from `want` in
    /// anything but the VNI and the host that made it is refused naming each difference;
    /// so is a pool that overlaps another overlay network's.
    pub async fn define_network(&self, want: &NetworkDef) -> Result<NetworkDef, ClusterError> {
        let nkey = want
            .key()
            .ok_or_else(|| ClusterError::Conflict("an overlay network needs a pool".into()))?;
        let key = self.keys.network(&nkey);
        for _ in 0..MAX_TRIES {
            if let Some(kv) = self.etcd.get(&key).await? {
                let have = schema::parse_network(&key, &kv.value)?;
                let mut cmp = want.clone();
                cmp.vni = have.vni;
                cmp.created_by = have.created_by.clone();
                let diff = have.differences(&cmp);
                if diff.is_empty() {
                    return Ok(have);
                }
                return Err(ClusterError::Conflict(format!(
                    "overlay network {} is defined cluster-wide (VNI {}, by host {}) with {}; \
                     give the same settings to attach this host to it",
                    nkey.replace('_', "/"),
                    have.vni,
                    have.created_by,
                    diff.join("; ")
                )));
            }
            let (nets, _) = self.etcd.range(&self.keys.networks(), 0, false).await?;
            for kv in &nets {
                // Defined meanwhile by another host: the transaction below fails, and the
                // next round finds it.
                if kv.key == key.as_bytes() {
                    continue;
                }
                let Ok(other) = schema::parse_network("", &kv.value) else {
                    continue;
                };
                for a in want.ipv4.iter().chain(&want.ipv6_data) {
                    for b in other.ipv4.iter().chain(&other.ipv6_data) {
                        if overlaps(&a.pool, &b.pool) {
                            return Err(ClusterError::Conflict(format!(
                                "pool {} overlaps {} of overlay network {} (VNI {})",
                                a.pool,
                                b.pool,
                                other.key().unwrap_or_default().replace('_', "/"),
                                other.vni
                            )));
                        }
                    }
                }
            }
            let (used, _) = self.etcd.range(&self.keys.vnis(), 0, true).await?;
            let used: std::collections::BTreeSet<u32> = used
                .iter()
                .filter_map(|kv| {
                    let k = std::str::from_utf8(&kv.key).ok()?;
                    k.rsplit('/').next()?.parse().ok()
                })
                .collect();
            let Some(vni) = (VNI_MIN..=VNI_MAX).find(|v| !used.contains(v)) else {
                return Err(ClusterError::Exhausted("every VNI is in use".into()));
            };
            let mut def = want.clone();
            def.vni = vni;
            def.created_by = self.host.clone();
            let vkey = self.keys.vni(vni);
            let r = self
                .etcd
                .txn(Txn::new().when([absent(&key), absent(&vkey)]).and_then([
                    put(&key, schema::to_bytes(&def), 0),
                    put(&vkey, nkey.clone().into_bytes(), 0),
                ]))
                .await?;
            if r.succeeded() {
                tracing::info!(network = %nkey, vni, "overlay network defined cluster-wide");
                return Ok(def);
            }
        }
        Err(ClusterError::Busy(format!(
            "defining overlay network {nkey}"
        )))
    }

    /// Records that this host has network `nkey`. Rewrites the definition in the same
    /// transaction, so a host removing the definition at that moment notices.
    pub async fn attach(&self, nkey: &str) -> Result<(), ClusterError> {
        let key = self.keys.network(nkey);
        for _ in 0..MAX_TRIES {
            let Some(kv) = self.etcd.get(&key).await? else {
                return Err(ClusterError::Conflict(format!(
                    "overlay network {} was removed cluster-wide meanwhile; create it again",
                    nkey.replace('_', "/")
                )));
            };
            let r = self
                .etcd
                .txn(
                    Txn::new()
                        .when([unchanged(&key, kv.mod_revision)])
                        .and_then([
                            put(&key, kv.value.clone(), 0),
                            put(&self.keys.attach(nkey, &self.host), b"{}".to_vec(), 0),
                        ]),
                )
                .await?;
            if r.succeeded() {
                return Ok(());
            }
        }
        Err(ClusterError::Busy(format!("attaching to {nkey}")))
    }

    /// Records that this host no longer has network `nkey`; the last host to leave removes
    /// the definition and frees its VNI. Returns true when it did.
    pub async fn detach(&self, nkey: &str) -> Result<bool, ClusterError> {
        self.etcd
            .delete(&self.keys.attach(nkey, &self.host))
            .await?;
        let key = self.keys.network(nkey);
        for _ in 0..MAX_TRIES {
            let Some(kv) = self.etcd.get(&key).await? else {
                return Ok(false);
            };
            let (hosts, _) = self.etcd.range(&self.keys.attached(nkey), 0, true).await?;
            if !hosts.is_empty() {
                return Ok(false);
            }
            let def = schema::parse_network(&key, &kv.value)?;
            let r = self
                .etcd
                .txn(
                    Txn::new()
                        .when([unchanged(&key, kv.mod_revision)])
                        .and_then([
                            TxnOp::delete(key.clone(), None),
                            TxnOp::delete(self.keys.vni(def.vni), None),
                        ]),
                )
                .await?;
            if r.succeeded() {
                tracing::info!(network = %nkey, vni = def.vni, "overlay network removed cluster-wide");
                return Ok(true);
            }
        }
        Err(ClusterError::Busy(format!("detaching from {nkey}")))
    }

    /// Publishes this host (its tunnel endpoint) under `lease`.
    pub async fn register_host(&self, rec: &HostRecord, lease: i64) -> Result<(), ClusterError> {
        let key = self.keys.host(&self.host);
        self.etcd
            .txn(Txn::new().and_then([put(&key, schema::to_bytes(rec), lease)]))
            .await?;
        Ok(())
    }

    /// Publishes endpoint `eid` of network `nkey` under `lease`, with its MAC address
    /// claimed for the network in the same transaction; a MAC another endpoint holds is
    /// refused.
    pub async fn register_endpoint(
        &self,
        nkey: &str,
        eid: &Id,
        rec: &EndpointRecord,
        lease: i64,
    ) -> Result<(), ClusterError> {
        let mkey = self.keys.mac(nkey, &rec.mac);
        let ekey = self.keys.endpoint(nkey, &self.host, eid);
        for _ in 0..MAX_TRIES {
            let owner = self.etcd.get(&mkey).await?;
            if let Some(o) = &owner
                && o.value != eid.as_str().as_bytes()
            {
                return Err(ClusterError::Conflict(format!(
                    "MAC address {} is used by endpoint {} on overlay network {}",
                    rec.mac,
                    String::from_utf8_lossy(&o.value),
                    nkey.replace('_', "/")
                )));
            }
            let rev = owner.map_or(0, |o| o.mod_revision);
            let r = self
                .etcd
                .txn(Txn::new().when([unchanged(&mkey, rev)]).and_then([
                    put(&mkey, eid.as_str().as_bytes().to_vec(), lease),
                    put(&ekey, schema::to_bytes(rec), lease),
                ]))
                .await?;
            if r.succeeded() {
                return Ok(());
            }
        }
        Err(ClusterError::Busy(format!("registering endpoint {eid}")))
    }

    /// Removes endpoint `eid` from the registry (and its MAC claim, if it is still its).
    pub async fn deregister_endpoint(
        &self,
        nkey: &str,
        eid: &Id,
        mac: &Mac,
    ) -> Result<(), ClusterError> {
        let mkey = self.keys.mac(nkey, mac);
        self.etcd
            .txn(
                Txn::new()
                    .when([Compare::value(
                        mkey.clone(),
                        CompareOp::Equal,
                        eid.as_str().as_bytes().to_vec(),
                    )])
                    .and_then([TxnOp::delete(mkey, None)]),
            )
            .await?;
        self.etcd
            .delete(&self.keys.endpoint(nkey, &self.host, eid))
            .await?;
        Ok(())
    }
}

/// A host record of this version.
pub fn host_record(vtep: std::net::Ipv4Addr) -> HostRecord {
    HostRecord {
        format: FORMAT,
        vtep,
    }
}
