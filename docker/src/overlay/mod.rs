//! Multi-host overlay networks: one Docker network across hosts, VXLAN between their
//! switches, the cluster's state in etcd.
//!
//! - [`schema`]: the keys and values in etcd, parsed strictly;
//! - [`etcd`]: the client with deadlines and compare-and-swap shapes;
//! - [`cluster`]: network definitions (VNI allocation), attachments, the endpoint registry;
//! - [`ipam`]: the cluster-wide address pools and addresses;
//! - [`view`]: the agent's picture of the cluster; [`flows`]: the flows it implies;
//! - [`agent`]: the loops (lease, watch, flow programming, reclaim) that keep this host's
//!   switch matching the cluster; [`nd`]: IPv6 neighbour advertisements from the registry;
//! - [`status`]: what `overlay-status` shows.
//!
//! [`Overlay`] is the handle the driver and the loops share.

pub mod agent;
pub mod cluster;
pub mod etcd;
pub mod flows;
pub mod ipam;
pub mod nd;
pub mod schema;
pub mod status;
pub mod view;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::api::{Id, Mac};
use cluster::Cluster;
use ipam::Ipam;
use schema::HostId;
use view::View;

/// How the overlay is configured (the plugin's flags).
#[derive(Debug, Clone)]
pub struct OverlayConfig {
    /// The bridge whose tunnel endpoint (`flowctl set-tunnel-ip`) carries this host's
    /// VXLAN (`--vtep-bridge`).
    pub vtep_bridge: String,
    /// The bridge overlay networks are on (the plugin's `--bridge`).
    pub bridge: String,
    /// The VXLAN port's name on it.
    pub vx_port: String,
    /// The lease TTL of this host's registrations (`--lease-ttl`).
    pub lease_ttl: Duration,
    /// How long a host must be gone before its addresses are reclaimed
    /// (`--reclaim-after`).
    pub reclaim_after: Duration,
}

/// An overlay network on this host, as the agent needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNetSpec {
    /// VNI.
    pub vni: u32,
    /// The gateway's IPv4 address and MAC, if it has a gateway port here.
    pub gateway: Option<(Ipv4Addr, Mac)>,
    /// The gateway's IPv6 address and MAC, if any.
    pub gateway_v6: Option<(Ipv6Addr, Mac)>,
    /// `vswitch.priority`.
    pub queue: Option<u8>,
}

/// An endpoint of this host on an overlay network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEpSpec {
    /// The network's key.
    pub nkey: String,
    /// The switch port (veth host end).
    pub port: String,
    /// MAC address.
    pub mac: Mac,
    /// IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// Its addresses with their pools, to take back from the IPAM if they were reclaimed
    /// while this host was away.
    pub addresses: Vec<(crate::api::Cidr, std::net::IpAddr)>,
}

/// This host's part, as the driver last set it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// Overlay networks by key.
    pub nets: BTreeMap<String, LocalNetSpec>,
    /// Endpoints by Docker's id.
    pub eps: BTreeMap<Id, LocalEpSpec>,
}

/// What `overlay-status` reports about etcd and the agent's work.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// etcd answered the last check.
    pub etcd_ok: bool,
    /// The last error, if the last check failed.
    pub last_error: Option<String>,
    /// This host's tunnel endpoint, once found.
    pub vtep: Option<Ipv4Addr>,
    /// Why it was not found.
    pub vtep_error: Option<String>,
    /// Full reads of the view (start, compaction).
    pub resyncs: u64,
    /// Watch streams re-opened from the last revision.
    pub resumes: u64,
    /// Flows the agent has in the switch.
    pub flows: usize,
    /// Flow programming passes that changed something.
    pub programs: u64,
    /// The last flow programming error.
    pub program_error: Option<String>,
    /// Addresses reclaimed from dead hosts.
    pub reclaimed: u64,
    /// Neighbour solicitations answered.
    pub nd_answered: u64,
    /// Neighbour solicitations not answered (not an address of the network, malformed).
    pub nd_unanswered: u64,
    /// The newest revision of the cluster seen.
    pub etcd_revision: i64,
    /// Why this host's registrations are not all in etcd, if they are not.
    pub register_error: Option<String>,
}

/// State shared by the driver and the agent's loops.
#[derive(Debug, Default)]
pub struct Shared {
    /// The cluster as watched.
    pub view: Mutex<View>,
    /// This host's overlay networks and endpoints.
    pub local: Mutex<Local>,
    /// The current lease, 0 when there is none (etcd unreachable, or expired).
    pub lease: AtomicI64,
    /// Watch events applied.
    pub events: AtomicU64,
    /// Health and counters.
    pub health: Mutex<Health>,
    /// Wakes the flow programmer.
    pub dirty: Notify,
    /// Wakes the registration loop (a local endpoint was added or removed).
    pub republish: Notify,
    /// The overlay network (key) of each local endpoint's switch port number, as the flow
    /// programmer last found them: the neighbour responder's packet-ins name the port.
    pub port_nets: Mutex<std::collections::HashMap<u32, String>>,
    /// Networks this host left while etcd was unreachable: their attachments are removed
    /// when it is back.
    pub pending_detach: Mutex<std::collections::BTreeSet<String>>,
}

/// The overlay handle: cluster connection, IPAM, configuration, shared state.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// The cluster.
    pub cluster: Cluster,
    /// The IPAM.
    pub ipam: Ipam,
    /// Configuration.
    pub cfg: OverlayConfig,
    /// Shared state.
    pub shared: Arc<Shared>,
}

impl Overlay {
    /// This host.
    pub fn host(&self) -> &HostId {
        &self.cluster.host
    }

    /// The current lease, or why there is none (the message a refused request carries).
    pub fn lease(&self) -> Result<i64, String> {
        let l = self.shared.lease.load(Ordering::Acquire);
        if l != 0 {
            return Ok(l);
        }
        let h = self.shared.health.lock();
        Err(match (&h.vtep_error, &h.last_error) {
            (Some(v), _) => v.clone(),
            (None, Some(e)) => format!(
                "{e}; new endpoints on overlay networks are refused until etcd is back \
                 (existing containers keep talking)"
            ),
            (None, None) => "this host is not registered in etcd yet (starting)".into(),
        })
    }

    /// This host's tunnel endpoint, or why it is not known.
    pub fn vtep(&self) -> Result<Ipv4Addr, String> {
        let h = self.shared.health.lock();
        h.vtep.ok_or_else(|| {
            h.vtep_error
                .clone()
                .unwrap_or_else(|| "this host's tunnel endpoint is not known yet".into())
        })
    }

    /// Replaces this host's part and wakes the loops.
    pub fn set_local(&self, local: Local) {
        *self.shared.local.lock() = local;
        self.shared.dirty.notify_one();
        self.shared.republish.notify_one();
    }
}
