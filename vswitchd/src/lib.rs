//! vswitchd: the switch daemon as a library, so tests and examples can run it in-process.
//!
//! - [`store`]: the durable configuration store (redb).
//! - [`convert`]: API messages to datapath configuration; [`meter_group`]: meters and groups.
//! - [`qos`]: rate-control port options, parsed, and the ingress policers and egress queues
//!   built from them.
//! - [`tunnel`]: tunnel endpoint and tunnel port options, and the switch's endpoints.
//! - [`switch`]: bridges, their datapaths and poll threads, and every control operation
//!   (one module per concern, in layers: see its documentation).
//! - [`service`]: the `vswitch.v1` gRPC service over [`switch::Switch`]; [`capture`]: its
//!   `Capture` stream (a port's frames, bounded, for `flowctl capture`).
//! - [`openflow`]: the OpenFlow 1.3 channel over [`switch::Switch`] (controllers, listeners
//!   for ovs-ofctl), a sibling of the gRPC service driving the switch the same way.
//! - [`owner_only`]: sockets and files only their owner can reach, from the first instant.
//! - [`client`]: dialing the daemon's unix socket.
//! - [`server`]: listeners (unix socket, TCP with TLS), health, reflection, shutdown.
//! - [`api_layer`]: what every API request passes through: its span (RPC, peer), latency,
//!   and its error logged once.
//! - [`metrics`]: the Prometheus endpoint and what it reports.
//! - [`logging`]: log output (text or JSON), filters, rate limits.
//!
//! Layering (docs/control-plane.md): proto messages stop here; the datapath sees plain Rust
//! types.

pub mod api_layer;
pub mod capture;
pub mod client;
pub mod convert;
mod convert_ct;
mod convert_ins;
pub mod error;
pub mod logging;
pub mod meter_group;
pub mod metrics;
pub mod openflow;
pub mod owner_only;
pub mod qos;
pub mod server;
pub mod service;
pub mod store;
pub mod switch;
pub mod tunnel;
