//! The agent's picture of the cluster: overlay networks, live hosts and every endpoint, as
//! read from `P/view/` and kept current by the watch.
//!
//! Pure data, no I/O: [`View::load`] replaces everything from a read at one revision,
//! [`View::apply`] takes one watch event. A value that does not parse is not applied (the
//! key is treated as absent) and counted in [`View::bad_values`], with the last reason kept
//! for `overlay-status`.

use std::collections::BTreeMap;

use crate::api::Id;
use crate::overlay::etcd::Kv;
use crate::overlay::schema::{self, EndpointRecord, HostId, HostRecord, Keys, NetworkDef, ViewKey};

/// One endpoint's place: network key, host, endpoint id.
pub type EndpointKey = (String, HostId, Id);

/// The cluster as the watch has shown it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Overlay networks by key.
    pub networks: BTreeMap<String, NetworkDef>,
    /// Live hosts.
    pub hosts: BTreeMap<HostId, HostRecord>,
    /// Every endpoint.
    pub endpoints: BTreeMap<EndpointKey, EndpointRecord>,
    /// The revision this view is at.
    pub revision: i64,
    /// Values that did not parse, in total.
    pub bad_values: u64,
    /// The last of them, with why.
    pub last_bad: Option<String>,
}

/// One change seen by the watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key was written.
    Put(Kv),
    /// A key was deleted (its lease expired, or it was removed).
    Delete(Vec<u8>),
}

impl View {
    /// Replaces the view with the keys read at `revision`.
    pub fn load(&mut self, keys: &Keys, kvs: &[Kv], revision: i64) {
        let (bad, last) = (self.bad_values, self.last_bad.take());
        *self = View {
            revision,
            bad_values: bad,
            last_bad: last,
            ..View::default()
        };
        for kv in kvs {
            self.put(keys, kv);
        }
    }

    /// Applies one change at `revision`. Returns true if the view changed.
    pub fn apply(&mut self, keys: &Keys, change: &Change, revision: i64) -> bool {
        self.revision = self.revision.max(revision);
        match change {
            Change::Put(kv) => self.put(keys, kv),
            Change::Delete(k) => self.remove(keys, k),
        }
    }

    fn bad(&mut self, e: schema::SchemaError) {
        self.bad_values += 1;
        tracing::warn!("etcd: {e} (ignored)");
        self.last_bad = Some(e.to_string());
    }

    fn put(&mut self, keys: &Keys, kv: &Kv) -> bool {
        let Some(vk) = keys.parse_view(&kv.key) else {
            return false;
        };
        let what = String::from_utf8_lossy(&kv.key).to_string();
        match vk {
            ViewKey::Network(n) => match schema::parse_network(&what, &kv.value) {
                Ok(d) => self.networks.insert(n, d.clone()) != Some(d),
                Err(e) => {
                    self.bad(e);
                    self.networks.remove(&n).is_some()
                }
            },
            ViewKey::Host(h) => match schema::parse_host(&what, &kv.value) {
                Ok(r) => self.hosts.insert(h, r.clone()) != Some(r),
                Err(e) => {
                    self.bad(e);
                    self.hosts.remove(&h).is_some()
                }
            },
            ViewKey::Endpoint {
                network,
                host,
                endpoint,
            } => {
                let k = (network, host, endpoint);
                match schema::parse_endpoint(&what, &kv.value) {
                    Ok(r) => self.endpoints.insert(k, r.clone()) != Some(r),
                    Err(e) => {
                        self.bad(e);
                        self.endpoints.remove(&k).is_some()
                    }
                }
            }
        }
    }

    fn remove(&mut self, keys: &Keys, key: &[u8]) -> bool {
        match keys.parse_view(key) {
            Some(ViewKey::Network(n)) => self.networks.remove(&n).is_some(),
            Some(ViewKey::Host(h)) => self.hosts.remove(&h).is_some(),
            Some(ViewKey::Endpoint {
                network,
                host,
                endpoint,
            }) => self.endpoints.remove(&(network, host, endpoint)).is_some(),
            None => false,
        }
    }

    /// The endpoints of network `nkey` on hosts other than `me`.
    pub fn remote_endpoints<'a>(
        &'a self,
        nkey: &'a str,
        me: &'a HostId,
    ) -> impl Iterator<Item = (&'a EndpointKey, &'a EndpointRecord)> {
        self.endpoints
            .range((nkey.to_string(), HostId::min(), Id::min())..)
            .take_while(move |((n, _, _), _)| n == nkey)
            .filter(move |((_, h, _), _)| h != me)
    }
}

impl HostId {
    /// The smallest host id (for ranges).
    fn min() -> HostId {
        // "-" is the smallest byte a host id may hold.
        "-".parse().unwrap_or_else(|_| unreachable!())
    }
}

impl Id {
    /// The smallest id (for ranges).
    fn min() -> Id {
        "0".parse().unwrap_or_else(|_| unreachable!())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::schema::FORMAT;
    use proptest::prelude::*;

    fn kv(key: String, value: Vec<u8>) -> Kv {
        Kv {
            key: key.into_bytes(),
            value,
            mod_revision: 1,
            lease: 0,
        }
    }

    fn ep(i: u8, host: &str) -> (String, Vec<u8>) {
        let keys = Keys::new("/t").unwrap();
        let h: HostId = host.parse().unwrap();
        let id: Id = format!("{i:02x}").parse().unwrap();
        let rec = EndpointRecord {
            format: FORMAT,
            mac: crate::api::Mac([2, 0x42, 10, 0, 0, i]),
            ipv4: Some(std::net::Ipv4Addr::new(10, 0, 0, i)),
            ipv6: None,
            vtep: "172.16.0.1".parse().unwrap(),
        };
        (
            keys.endpoint("10.0.0.0_24", &h, &id),
            schema::to_bytes(&rec),
        )
    }

    #[test]
    fn puts_deletes_and_bad_values() {
        let keys = Keys::new("/t").unwrap();
        let mut v = View::default();
        let (k1, v1) = ep(2, "a");
        let (k2, v2) = ep(3, "b");
        v.load(&keys, &[kv(k1.clone(), v1), kv(k2.clone(), v2)], 10);
        assert_eq!(v.endpoints.len(), 2);
        let me: HostId = "a".parse().unwrap();
        assert_eq!(v.remote_endpoints("10.0.0.0_24", &me).count(), 1);
        assert!(v.apply(&keys, &Change::Delete(k2.into_bytes()), 11));
        assert_eq!(v.revision, 11);
        // A bad value replaces a good one: the key counts as absent.
        assert!(v.apply(&keys, &Change::Put(kv(k1, b"junk".to_vec())), 12));
        assert!(v.endpoints.is_empty());
        assert_eq!(v.bad_values, 1);
        // Keys outside the view are ignored.
        assert!(!v.apply(&keys, &Change::Put(kv("/t/ipam/x".into(), vec![])), 13));
    }

    proptest! {
        /// Applying events one by one gives what loading their end state gives.
        #[test]
        fn events_equal_load(ops in proptest::collection::vec((0u8..6, any::<bool>(), 0u8..2), 0..40)) {
            let keys = Keys::new("/t").unwrap();
            let mut live = View::default();
            let mut end: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for (i, (n, put, h)) in ops.iter().enumerate() {
                let (k, val) = ep(*n + 2, if *h == 0 { "a" } else { "b" });
                let c = if *put {
                    end.insert(k.clone(), val.clone());
                    Change::Put(kv(k, val))
                } else {
                    end.remove(&k);
                    Change::Delete(k.into_bytes())
                };
                live.apply(&keys, &c, i as i64 + 1);
            }
            let mut loaded = View::default();
            let kvs: Vec<Kv> = end.into_iter().map(|(k, v)| kv(k, v)).collect();
            loaded.load(&keys, &kvs, live.revision);
            prop_assert_eq!(live.endpoints, loaded.endpoints);
        }
    }
}
