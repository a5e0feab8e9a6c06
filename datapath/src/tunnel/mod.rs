//! VXLAN and GRE tunnels over an underlay the switch reaches through one of its own bridges.
//!
//! What: a [`TunnelEndpoint`] is the switch's own address on the underlay (`set-tunnel-ip`):
//! a port of the underlay bridge ([`EndpointPort`]) with its own MAC address, which answers
//! ARP for that address, resolves next hops by ARP into its [`NeighTable`], and takes in the
//! tunnel packets addressed to it. A [`TunnelPort`] (`type=vxlan` or `type=gre`) is a port of any bridge:
//! what that bridge sends to it is encapsulated (a precomputed outer header written into the
//! headroom, no copy of the payload) and handed to the endpoint, which sends it into the
//! underlay bridge; what the endpoint decapsulates for it, it delivers as received packets
//! with their remote and key in the packet buffer ([`crate::packet::PacketBuf::tunnel`]), which the
//! pipeline reads into the flow key (`tun_src`, `tun_id`; `tun_dst` is the endpoint's
//! address, [`crate::port::TunnelInfo::local`]).
//!
//! The two bridges stay independent datapaths: the hand-over between them is a ring taken
//! once per burst in each direction, like a patch port.
//!
//! A flow-based port (`remote_ip=flow`, `key=flow`: [`TunnelConfig::remote`] or
//! [`TunnelConfig::key`] `None`) takes each packet's destination and key from the packet
//! buffer ([`crate::packet::PacketBuf::tunnel`], written by the pipeline from `tun_dst`/`tun_id` when it
//! stages the packet for this port), keeps one outer header per remote in a map bounded by
//! [`MAX_REMOTES`], and takes in packets from any remote / with any key. Which port a
//! decapsulated packet belongs to follows Open vSwitch's precedence: exact remote and key,
//! then a fixed key with any remote, then a fixed remote with any key, then both from flows.
//!
//! Malformed or unexpected tunnel traffic is dropped and counted by reason
//! ([`TunnelDrop`]), never forwarded half-parsed.
//!
//! Files: `endpoint` (the endpoint and its port: ARP, decapsulation, hand-over into the
//! underlay), `neigh` (its neighbour table), `port` (tunnel ports: outer headers per remote,
//! encapsulation of a burst; the stand-in without an endpoint), `rx` (a tunnel port's
//! configuration and receive ring, and which port a packet belongs to), `encap` (header
//! templates, encapsulation, decapsulation), `drop` (drop reasons and their counters).
//!
//! Thread-safety: every piece is shared through `Arc` by the poll threads of both bridges
//! and the daemon; rings, the neighbour table and a port's per-remote headers sit behind
//! mutexes taken once per burst; counters are relaxed atomics.

mod drop;
pub mod encap;
mod endpoint;
mod neigh;
mod port;
mod rx;

pub use drop::{DropCounters, TunnelDrop};
pub use encap::{EncapHeader, Outer, TunMeta, TunnelKind, decap};
pub use endpoint::{Clock, EndpointPort, TunnelEndpoint};
pub use neigh::{NEIGH_AGING_NS, NeighTable, Neighbour};
pub use port::{MAX_REMOTES, NoEndpointPort, TunnelPort};
pub use rx::{RING, TunnelConfig};
