//! The cluster-wide IPAM: address pools and addresses allocated in etcd transactions, so
//! two hosts never hand out the same address.
//!
//! - A **pool** is a record at `P/ipam/pools/POOL` holding its gateway and the hosts that
//!   requested it (a multiset: RequestPool adds this host once per request, ReleasePool
//!   takes one away; the last release removes the pool and its addresses). A requested
//!   pool (`--subnet`) is shared by every host that asks for the same one, and refused when
//!   it overlaps another; without `--subnet`, the lowest free /24 of `--ipam-range` is
//!   taken, or with `--ipam-opt vswitch.pool=NAME` the pool already allocated under NAME
//!   (so the same command on another host gets the same pool).
//! - An **address** is a key `P/ipam/addrs/POOL/IP` created only if absent (the
//!   transaction fails when another host took it first, and the next free one is tried).
//!   The gateway (the pool's first address unless `--gateway` says otherwise) is kept in
//!   the pool record and never handed out. Addresses are durable, not under the host's
//!   lease: a host cut off longer than its lease keeps its containers' addresses, and
//!   [`Ipam::reclaim`] frees those of a host that has been gone for `--reclaim-after`.

use std::collections::BTreeSet;
use std::net::IpAddr;

use etcd_client::{Txn, TxnOp};

use crate::api::{Cidr, Mac};
use crate::overlay::cluster::{Cluster, ClusterError, MAX_TRIES};
use crate::overlay::etcd::{absent, prefix_end, put, unchanged};
use crate::overlay::schema::{self, AddrRecord, FORMAT, HostId, PoolRecord};

/// The IPAM over a cluster connection, with the range pools are taken from.
#[derive(Debug, Clone)]
pub struct Ipam {
    /// The connection and this host.
    pub cluster: Cluster,
    /// Where pools without `--subnet` come from (`--ipam-range`); /24 each.
    pub range: Cidr,
}

fn add(ip: IpAddr, n: u128) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => u32::from(a)
            .checked_add(u32::try_from(n).ok()?)
            .map(|v| IpAddr::V4(v.into())),
        IpAddr::V6(a) => u128::from(a).checked_add(n).map(|v| IpAddr::V6(v.into())),
    }
}

/// The number of addresses in `c`, saturating.
fn size(c: &Cidr) -> u128 {
    let bits = if c.addr.is_ipv4() { 32 } else { 128 } - u32::from(c.prefix);
    1u128.checked_shl(bits).unwrap_or(u128::MAX)
}

/// The addresses of `pool` a container may get, in order: from the second (the first is
/// the usual gateway) to the last before the broadcast address (IPv4).
pub fn candidates(pool: &Cidr) -> impl Iterator<Item = IpAddr> {
    let base = pool.network().addr;
    let n = size(pool);
    let last = if base.is_ipv4() {
        n.saturating_sub(1)
    } else {
        n
    };
    (1..last).filter_map(move |i| add(base, i))
}

impl Ipam {
    fn keys(&self) -> &schema::Keys {
        &self.cluster.keys
    }

    async fn pool_record(&self, pool: &Cidr) -> Result<Option<(PoolRecord, i64)>, ClusterError> {
        let key = self.keys().pool(pool);
        match self.cluster.etcd.get(&key).await? {
            None => Ok(None),
            Some(kv) => Ok(Some((
                schema::parse_pool(&key, &kv.value)?,
                kv.mod_revision,
            ))),
        }
    }

    /// IpamDriver.RequestPool: `pool` as given (`--subnet`), or chosen; `name` from
    /// `--ipam-opt vswitch.pool=NAME`. Returns the pool.
    pub async fn request_pool(
        &self,
        pool: Option<Cidr>,
        name: Option<&str>,
        v6: bool,
    ) -> Result<Cidr, ClusterError> {
        for _ in 0..MAX_TRIES {
            let want = match pool {
                Some(p) => p.network(),
                None => match self.named_or_free(name, v6).await? {
                    Some(p) => p,
                    None => {
                        return Err(ClusterError::Exhausted(format!(
                            "no free /24 left in --ipam-range {}",
                            self.range
                        )));
                    }
                },
            };
            let key = self.keys().pool(&want);
            let (mut rec, rev) = match self.pool_record(&want).await? {
                Some(r) => r,
                None => {
                    self.check_overlap(&want).await?;
                    let rec = PoolRecord {
                        format: FORMAT,
                        gateway: None,
                        hosts: Vec::new(),
                        name: name.map(str::to_string),
                    };
                    (rec, 0)
                }
            };
            rec.hosts.push(self.cluster.host.clone());
            let mut ops = vec![put(&key, schema::to_bytes(&rec), 0)];
            let mut cmps = vec![unchanged(&key, rev)];
            if rev == 0
                && let Some(n) = name
            {
                let nk = self.keys().pool_name(n);
                cmps.push(absent(&nk));
                ops.push(put(&nk, want.to_string().into_bytes(), 0));
            }
            let r = self
                .cluster
                .etcd
                .txn(Txn::new().when(cmps).and_then(ops))
                .await?;
            if r.succeeded() {
                return Ok(want);
            }
        }
        Err(ClusterError::Busy("allocating a pool".into()))
    }

    /// The pool named `name` if one is, else the lowest free /24 of the range.
    async fn named_or_free(
        &self,
        name: Option<&str>,
        v6: bool,
    ) -> Result<Option<Cidr>, ClusterError> {
        if let Some(n) = name
            && let Some(kv) = self.cluster.etcd.get(&self.keys().pool_name(n)).await?
        {
            let s = String::from_utf8_lossy(&kv.value).to_string();
            return s.parse().map(Some).map_err(|_| {
                ClusterError::Corrupt(format!("pool name {n} points at {s:?}, not a prefix"))
            });
        }
        if v6 {
            return Err(ClusterError::Conflict(
                "IPv6 pools are not chosen by the vswitch IPAM: give --subnet with an IPv6 prefix"
                    .into(),
            ));
        }
        let taken = self.pools().await?;
        let base = self.range.network();
        let n = size(&base) / 256;
        for i in 0..n {
            let Some(addr) = add(base.addr, i * 256) else {
                break;
            };
            let c = Cidr { addr, prefix: 24 };
            if !taken
                .iter()
                .any(|t| t.contains(c.addr) || c.contains(t.addr))
            {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    async fn pools(&self) -> Result<Vec<Cidr>, ClusterError> {
        let (kvs, _) = self
            .cluster
            .etcd
            .range(&self.keys().pools(), 0, true)
            .await?;
        Ok(kvs
            .iter()
            .filter_map(|kv| {
                let k = std::str::from_utf8(&kv.key).ok()?;
                schema::parse_cidr_key(k.rsplit('/').next()?)
            })
            .collect())
    }

    async fn check_overlap(&self, want: &Cidr) -> Result<(), ClusterError> {
        for p in self.pools().await? {
            // Allocated meanwhile by another host: the transaction fails, the next round
            // finds it.
            if &p == want {
                continue;
            }
            if p.addr.is_ipv4() == want.addr.is_ipv4()
                && (p.contains(want.addr) || want.contains(p.addr))
            {
                return Err(ClusterError::Conflict(format!(
                    "pool {want} overlaps pool {p}, allocated cluster-wide"
                )));
            }
        }
        Ok(())
    }

    /// IpamDriver.ReleasePool: this host lets go of `pool` once; the last release removes
    /// the pool with every address left in it.
    pub async fn release_pool(&self, pool: &Cidr) -> Result<(), ClusterError> {
        let key = self.keys().pool(pool);
        for _ in 0..MAX_TRIES {
            let Some((mut rec, rev)) = self.pool_record(pool).await? else {
                return Ok(());
            };
            if let Some(i) = rec.hosts.iter().position(|h| h == &self.cluster.host) {
                rec.hosts.remove(i);
            }
            let mut ops = Vec::new();
            if rec.hosts.is_empty() {
                ops.push(TxnOp::delete(key.clone(), None));
                let a = self.keys().addrs(Some(pool));
                ops.push(TxnOp::delete(
                    a.clone(),
                    Some(etcd_client::DeleteOptions::new().with_range(prefix_end(a.as_bytes()))),
                ));
                if let Some(n) = &rec.name {
                    ops.push(TxnOp::delete(self.keys().pool_name(n), None));
                }
            } else {
                ops.push(put(&key, schema::to_bytes(&rec), 0));
            }
            let r = self
                .cluster
                .etcd
                .txn(Txn::new().when([unchanged(&key, rev)]).and_then(ops))
                .await?;
            if r.succeeded() {
                return Ok(());
            }
        }
        Err(ClusterError::Busy(format!("releasing pool {pool}")))
    }

    /// IpamDriver.RequestAddress for the gateway: the pool's gateway, set on first request
    /// (to `want`, else the pool's first address); a different `want` later is refused.
    pub async fn request_gateway(
        &self,
        pool: &Cidr,
        want: Option<IpAddr>,
    ) -> Result<Cidr, ClusterError> {
        let key = self.keys().pool(pool);
        for _ in 0..MAX_TRIES {
            let Some((mut rec, rev)) = self.pool_record(pool).await? else {
                return Err(ClusterError::Conflict(format!(
                    "pool {pool} is not allocated"
                )));
            };
            if let Some(w) = want
                && !pool.contains(w)
            {
                return Err(ClusterError::Conflict(format!(
                    "gateway {w} is outside pool {pool}"
                )));
            }
            if let Some(g) = rec.gateway {
                if want.is_some_and(|w| w != g) {
                    return Err(ClusterError::Conflict(format!(
                        "pool {pool} has gateway {g} cluster-wide (this request: {})",
                        want.map(|w| w.to_string()).unwrap_or_default()
                    )));
                }
                return Ok(Cidr {
                    addr: g,
                    prefix: pool.prefix,
                });
            }
            let g = match want {
                Some(w) => w,
                None => candidates(pool).next().ok_or_else(|| {
                    ClusterError::Exhausted(format!("pool {pool} has no address"))
                })?,
            };
            let taken = self.cluster.etcd.get(&self.keys().addr(pool, g)).await?;
            if taken.is_some() {
                return Err(ClusterError::Conflict(format!(
                    "gateway {g} is already given to a container"
                )));
            }
            rec.gateway = Some(g);
            let r = self
                .cluster
                .etcd
                .txn(Txn::new().when([unchanged(&key, rev)]).and_then([put(
                    &key,
                    schema::to_bytes(&rec),
                    0,
                )]))
                .await?;
            if r.succeeded() {
                return Ok(Cidr {
                    addr: g,
                    prefix: pool.prefix,
                });
            }
        }
        Err(ClusterError::Busy(format!(
            "choosing the gateway of {pool}"
        )))
    }

    /// IpamDriver.RequestAddress for a container: `want` (`--ip`) if free, else the lowest
    /// free address of the pool.
    pub async fn request_address(
        &self,
        pool: &Cidr,
        want: Option<IpAddr>,
        mac: Option<Mac>,
    ) -> Result<Cidr, ClusterError> {
        let Some((rec, _)) = self.pool_record(pool).await? else {
            return Err(ClusterError::Conflict(format!(
                "pool {pool} is not allocated"
            )));
        };
        let value = schema::to_bytes(&AddrRecord {
            format: FORMAT,
            host: self.cluster.host.clone(),
            mac,
        });
        if let Some(w) = want {
            if !pool.contains(w) || rec.gateway == Some(w) {
                return Err(ClusterError::Conflict(format!(
                    "address {w} is outside pool {pool} or is its gateway"
                )));
            }
            let key = self.keys().addr(pool, w);
            if self.cluster.etcd.create(&key, value, 0).await? {
                return Ok(Cidr {
                    addr: w,
                    prefix: pool.prefix,
                });
            }
            let holder = self.cluster.etcd.get(&key).await?;
            let who = holder
                .and_then(|kv| schema::parse_addr(&key, &kv.value).ok())
                .map(|a| a.host.to_string())
                .unwrap_or_default();
            return Err(ClusterError::Conflict(format!(
                "address {w} is in use (given to host {who})"
            )));
        }
        for attempt in 0..MAX_TRIES {
            let (kvs, _) = self
                .cluster
                .etcd
                .range(&self.keys().addrs(Some(pool)), 0, true)
                .await?;
            let used: BTreeSet<IpAddr> = kvs
                .iter()
                .filter_map(|kv| self.keys().parse_addr(&kv.key).map(|(_, ip)| ip))
                .collect();
            let free =
                || candidates(pool).filter(|ip| !used.contains(ip) && rec.gateway != Some(*ip));
            // The lowest free address first; after a lost race, one of the lowest 2^attempt
            // (at most 64) at random, so hosts racing for a pool stop colliding on one address.
            let spread = 1u64 << attempt.min(6);
            let pick = std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                attempt,
            ) % spread;
            let Some(ip) = free().nth(pick as usize).or_else(|| free().next()) else {
                return Err(ClusterError::Exhausted(format!("pool {pool} is full")));
            };
            if self
                .cluster
                .etcd
                .create(&self.keys().addr(pool, ip), value.clone(), 0)
                .await?
            {
                return Ok(Cidr {
                    addr: ip,
                    prefix: pool.prefix,
                });
            }
        }
        Err(ClusterError::Busy(format!(
            "allocating an address of {pool}"
        )))
    }

    /// IpamDriver.ReleaseAddress: frees `ip` if this host holds it (the gateway is kept
    /// with the pool).
    pub async fn release_address(&self, pool: &Cidr, ip: IpAddr) -> Result<(), ClusterError> {
        let key = self.keys().addr(pool, ip);
        let Some(kv) = self.cluster.etcd.get(&key).await? else {
            return Ok(());
        };
        match schema::parse_addr(&key, &kv.value) {
            Ok(a) if a.host != self.cluster.host => {
                tracing::warn!(%ip, holder = %a.host, "ReleaseAddress of an address another host holds: kept");
                Ok(())
            }
            _ => {
                self.cluster.etcd.delete_if(&key, kv.mod_revision).await?;
                Ok(())
            }
        }
    }

    /// Takes `ip` of `pool` back for this host if the pool is this IPAM's and nobody holds
    /// the address (it was reclaimed while this host was away). True if taken back; an
    /// address another host holds now is a conflict.
    pub async fn reclaim_own(&self, pool: &Cidr, ip: IpAddr) -> Result<bool, ClusterError> {
        let key = self.keys().addr(pool, ip);
        let value = schema::to_bytes(&AddrRecord {
            format: FORMAT,
            host: self.cluster.host.clone(),
            mac: None,
        });
        let pool_key = self.keys().pool(pool);
        let r = self
            .cluster
            .etcd
            .txn(
                Txn::new()
                    .when([
                        etcd_client::Compare::create_revision(
                            pool_key,
                            etcd_client::CompareOp::Greater,
                            0,
                        ),
                        absent(&key),
                    ])
                    .and_then([put(&key, value, 0)]),
            )
            .await?;
        if r.succeeded() {
            tracing::warn!(%ip, "address taken back from the IPAM (it was reclaimed while this host was away)");
            return Ok(true);
        }
        if let Some(kv) = self.cluster.etcd.get(&key).await?
            && let Ok(a) = schema::parse_addr(&key, &kv.value)
            && a.host != self.cluster.host
        {
            return Err(ClusterError::Conflict(format!(
                "address {ip} of a container here was reclaimed while this host was away and \
                 is now given to host {}",
                a.host
            )));
        }
        Ok(false)
    }

    /// Every host holding an address.
    pub async fn holders(&self) -> Result<BTreeSet<HostId>, ClusterError> {
        let (kvs, _) = self
            .cluster
            .etcd
            .range(&self.keys().addrs(None), 0, false)
            .await?;
        Ok(kvs
            .iter()
            .filter_map(|kv| schema::parse_addr("", &kv.value).ok().map(|a| a.host))
            .collect())
    }

    /// Frees every address held by a host for which `dead` is true, each only if it is
    /// unchanged and the host has not come back meanwhile (its host key is still absent).
    /// Returns how many were freed.
    pub async fn reclaim(&self, dead: impl Fn(&HostId) -> bool) -> Result<usize, ClusterError> {
        let (kvs, _) = self
            .cluster
            .etcd
            .range(&self.keys().addrs(None), 0, false)
            .await?;
        let mut freed = 0;
        for kv in kvs {
            let k = String::from_utf8_lossy(&kv.key).to_string();
            let Ok(a) = schema::parse_addr(&k, &kv.value) else {
                continue;
            };
            if a.host == self.cluster.host || !dead(&a.host) {
                continue;
            }
            let r = self
                .cluster
                .etcd
                .txn(
                    Txn::new()
                        .when([
                            unchanged(&k, kv.mod_revision),
                            absent(&self.keys().host(&a.host)),
                        ])
                        .and_then([TxnOp::delete(k.clone(), None)]),
                )
                .await?;
            if r.succeeded() {
                tracing::info!(address = %k, host = %a.host, "address reclaimed from a dead host");
                freed += 1;
            }
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_skip_network_gateway_and_broadcast() {
        let p: Cidr = "10.0.0.0/30".parse().unwrap();
        let v: Vec<String> = candidates(&p).map(|a| a.to_string()).collect();
        assert_eq!(v, ["10.0.0.1", "10.0.0.2"]);
        let p: Cidr = "fd00::/126".parse().unwrap();
        assert_eq!(candidates(&p).count(), 3);
        let p: Cidr = "10.0.0.0/32".parse().unwrap();
        assert_eq!(candidates(&p).count(), 0);
    }
}
