//! The packet engine of the switch.
//!
//! Packet life in one poll-thread iteration (see `docs/datapath.md`): a port fills a burst,
//! [`flow::extract()`] reads each packet once into a [`flow::FlowKey`], the exact-match cache,
//! then the megaflow cache, then the slow path (the OpenFlow tables in [`classifier`]) decide
//! an action list, packets are grouped by flow and each group's actions run once over its
//! sub-batch, and each output port sends its packets in one burst.
//!
//! This crate has no async runtime, no gRPC and no OpenFlow wire types: the daemon translates
//! its API into the plain types here.

pub mod actions;
pub mod cache;
pub mod classifier;
pub mod conntrack;
pub mod flow;
pub mod group;
pub mod l2;
pub mod log;
pub mod meter;
pub mod packet;
pub mod pipeline;
pub mod port;
pub mod qos;
pub mod stats;
pub mod tunnel;
pub mod types;
