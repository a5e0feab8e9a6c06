//! `vswitch-docker`: a Docker network plugin (libnetwork remote driver) that puts containers
//! on the switch.
//!
//! It is a controller of the switch like any other: it talks to `vswitchd` only through the
//! gRPC API. Modules:
//! - [`api`]: the libnetwork remote driver protocol, parsed strictly;
//! - [`options`]: `-o vswitch.*` network options;
//! - [`state`]: the durable state (dockerd does not replay networks after a plugin restart);
//! - [`driver`]: what each request does; [`reconcile`]: state against switch and host;
//! - [`names`]: deterministic interface names; [`host`]: veths, gateway addresses, NAT rules;
//! - [`publish`]: networks with an uplink: `-p`, masquerade and hairpin in the switch's NAT;
//!   [`neigh`]: ARP on the uplink (answered, next hops resolved) over packet-in/out;
//! - [`dockerd`]: networks dockerd removed while the plugin was down;
//! - [`vswitch`]: the gRPC client side; [`server`]: the HTTP server on the plugin socket;
//! - [`overlay`]: multi-host networks (`-o vswitch.mode=overlay`): the cluster in etcd, the
//!   cluster-wide IPAM, and the agent that programs this host's switch from it.

pub mod api;
pub mod dockerd;
pub mod driver;
pub mod host;
pub mod names;
pub mod neigh;
pub mod options;
pub mod overlay;
pub mod publish;
pub mod reconcile;
pub mod server;
pub mod state;
pub mod vswitch;
