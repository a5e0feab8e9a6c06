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
//! - [`vswitch`]: the gRPC client side; [`server`]: the HTTP server on the plugin socket.
//!
//! Room for the multi-host overlay: networks have a [`options::Mode`], flows the plugin owns
//! carry a cookie with a kind ([`vswitch::cookie`]), and the request dispatch in [`server`]
//! is where an IPAM driver's methods (`IpamDriver.*`) join the network driver's.

pub mod api;
pub mod driver;
pub mod host;
pub mod names;
pub mod options;
pub mod reconcile;
pub mod server;
pub mod state;
pub mod vswitch;
