//! The control API of the switch and the flow text syntax every client shares.
//!
//! - [`v1`]: the `vswitch.v1` gRPC API (prost messages, tonic client and server), generated
//!   from `proto/vswitch/v1/vswitch.proto`. Read that file for the meaning of every field.
//! - [`flow_text`]: the ovs-ofctl flow, match, meter and group syntax, parsed into and
//!   printed from the [`v1`] messages.
//! - [`ct_timeouts`]: the tracker's timeout attributes by Open vSwitch's names.
//! - [`openflow`]: the OpenFlow 1.3 codec (zero-copy views and builders) the daemon's
//!   OpenFlow channel speaks; independent of the gRPC types.
//!
//! Layering: this crate never depends on `datapath`; the daemon converts these messages
//! into datapath configuration (docs/control-plane.md).

pub mod ct_timeouts;
pub mod flow_text;
pub mod ofapi;
pub mod openflow;

/// The `vswitch.v1` API: generated messages, `switch_client::SwitchClient` and
/// `switch_server::{Switch, SwitchServer}`.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod v1 {
    tonic::include_proto!("vswitch.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of the `vswitch.v1` API (with imports
/// and source info), for the gRPC reflection service
/// (`tonic_reflection::server::Builder::configure().register_encoded_file_descriptor_set`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/vswitch_v1_descriptor.bin"));
