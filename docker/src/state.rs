//! The plugin's durable state: the networks and endpoints Docker created through it.
//!
//! Why: dockerd does not replay CreateNetwork or CreateEndpoint after a plugin restart, so
//! the plugin must remember them itself, and it is also the list of everything the plugin
//! made on the host and in the switch (reconciliation removes what is not in it).
//!
//! How: one JSON file, `state.json`, in the state directory (mode 0700, the file 0600).
//! Every change rewrites it whole: written to a temporary file created owner-only, synced,
//! renamed over the old one, and the directory synced; so after a crash the file is the old
//! or the new state, never a torn one. Hundreds of endpoints make a file of tens of
//! kilobytes: rewriting it whole is cheaper than any journal.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::{Cidr, Id, IpamData, Mac, PortMapping};
use crate::options::NetOptions;

/// The file's format version; a newer or foreign file is refused, never overwritten.
const FORMAT: u32 = 1;

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a state file this version understands.
    #[error("{path}: {message} (not overwritten; move it away to start empty)")]
    Foreign {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Settings from `-o`.
    pub options: NetOptions,
    /// The VLAN the network's ports are access ports of.
    pub vlan: u16,
    /// `--internal`: no gateway, no way out.
    pub internal: bool,
    /// `--ipv6`.
    pub ipv6: bool,
    /// IPv4 pools from Docker's IPAM.
    pub ipv4: Vec<IpamData>,
    /// IPv6 pools.
    pub ipv6_data: Vec<IpamData>,
    /// The switch port (an `internal` port, a TAP in the host) holding the gateway
    /// addresses; `None` for internal networks.
    pub gateway_port: Option<String>,
    /// For an overlay network: its cluster-wide identity.
    #[serde(default)]
    pub overlay: Option<OverlayNet>,
}

/// What makes a local network the local part of an overlay network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayNet {
    /// Its key in etcd (its first pool, `10.200.0.0_16`).
    pub nkey: String,
    /// Its VXLAN network identifier, allocated cluster-wide.
    pub vni: u32,
}

impl Network {
    /// The gateway addresses (with prefixes) that go on the gateway port.
    pub fn gateways(&self) -> Vec<Cidr> {
        self.ipv4
            .iter()
            .chain(&self.ipv6_data)
            .filter_map(|d| d.gateway)
            .collect()
    }

    /// The IPv4 pools, for masquerading.
    pub fn v4_pools(&self) -> Vec<Cidr> {
        self.ipv4.iter().map(|d| d.pool.network()).collect()
    }
}

/// One endpoint (a container's interface on a network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Its network.
    pub network: Id,
    /// The switch port: the host end of the veth pair.
    pub port: String,
    /// The container end, as named in the host before Docker moves it.
    pub inner: String,
    /// The container interface's MAC address.
    pub mac: Mac,
    /// IPv4 address from IPAM.
    pub address: Option<Cidr>,
    /// IPv6 address from IPAM.
    pub address_v6: Option<Cidr>,
    /// The sandbox it joined, while joined.
    pub sandbox: Option<String>,
    /// `-p` mappings recorded by ProgramExternalConnectivity.
    #[serde(default)]
    pub port_map: Vec<PortMapping>,
}

/// Everything the plugin remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format marker.
    pub format: u32,
    /// Networks by id.
    #[serde(default)]
    pub networks: BTreeMap<Id, Network>,
    /// Endpoints by id.
    #[serde(default)]
    pub endpoints: BTreeMap<Id, Endpoint>,
    /// Host interfaces the plugin made ports of a bridge as networks' uplinks, by bridge:
    /// written before the port is added and removed after it is deleted, so an uplink left
    /// by a crash is found (its name is the user's, not the plugin's) and removed.
    #[serde(default)]
    pub uplinks: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl State {
    /// The lowest VLAN id no network on `bridge` uses.
    pub fn free_vlan(&self, bridge: &str) -> Option<u16> {
        (1..=4094).find(|v| self.vlan_owner(bridge, *v).is_none())
    }

    /// The network on `bridge` that uses VLAN `vlan`.
    pub fn vlan_owner(&self, bridge: &str, vlan: u16) -> Option<&Id> {
        self.networks
            .iter()
            .find(|(_, n)| n.options.bridge == bridge && n.vlan == vlan)
            .map(|(id, _)| id)
    }

    /// The endpoints of network `id`.
    pub fn endpoints_of<'a>(&'a self, id: &'a Id) -> impl Iterator<Item = (&'a Id, &'a Endpoint)> {
        self.endpoints.iter().filter(move |(_, e)| &e.network == id)
    }
}

/// The state file on disk.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
}

fn io(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Store {
    /// Opens (creating owner-only) the state directory.
    pub fn open(dir: &Path) -> Result<Store, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io(dir, e))?;
        // An existing directory keeps its mode; tighten it (the state names every port).
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| io(dir, e))?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Reads the state; a missing file is the empty state.
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    format: FORMAT,
                    ..State::default()
                });
            }
            Err(e) => return Err(io(&path, e)),
        };
        let state: State = serde_json::from_slice(&bytes).map_err(|e| StateError::Foreign {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        if state.format != FORMAT {
            return Err(StateError::Foreign {
                path: path.display().to_string(),
                message: format!("format {} (this version reads {FORMAT})", state.format),
            });
        }
        Ok(state)
    }

    /// Writes the state durably and atomically.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.path();
        let tmp = self
            .dir
            .join(format!("state.json.tmp{}", std::process::id()));
        let mut s = state.clone();
        s.format = FORMAT;
        let bytes = serde_json::to_vec_pretty(&s).map_err(|e| StateError::Foreign {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io(&path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let nid: Id = "ab12".parse().unwrap();
        let mut s = State {
            format: FORMAT,
            ..State::default()
        };
        s.networks.insert(
            nid.clone(),
            Network {
                options: NetOptions::default(),
                vlan: 7,
                internal: false,
                ipv6: false,
                ipv4: vec![IpamData {
                    pool: "172.30.0.0/16".parse().unwrap(),
                    gateway: Some("172.30.0.1/16".parse().unwrap()),
                    aux: BTreeMap::new(),
                }],
                ipv6_data: Vec::new(),
                gateway_port: Some("vdgab12".into()),
                overlay: None,
            },
        );
        s.endpoints.insert(
            "cd34".parse().unwrap(),
            Endpoint {
                network: nid,
                port: "vdcd34p".into(),
                inner: "vdcd34c".into(),
                mac: "02:42:ac:1e:00:02".parse().unwrap(),
                address: Some("172.30.0.2/16".parse().unwrap()),
                address_v6: None,
                sandbox: None,
                port_map: Vec::new(),
            },
        );
        s
    }

    #[test]
    fn save_then_load_is_identity_and_owner_only() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.load().unwrap().networks.len(), 0);
        let s = sample();
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap(), s);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("state.json")), 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn foreign_file_is_refused_not_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        fs::write(d.path().join("state.json"), b"{\"format\": 99}").unwrap();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("format 99"), "{e}");
        fs::write(d.path().join("state.json"), b"garbage").unwrap();
        assert!(store.load().is_err());
    }

    #[test]
    fn vlans_are_per_bridge() {
        let mut s = sample();
        assert_eq!(s.free_vlan("br-docker"), Some(1));
        s.networks.values_mut().next().unwrap().vlan = 1;
        assert_eq!(s.free_vlan("br-docker"), Some(2));
        assert_eq!(s.free_vlan("other"), Some(1));
    }
}
