//! Why tunnel packets are dropped, and the counters by reason.
//!
//! Thread-safety: counters are relaxed atomics, shared by the poll threads of every bridge a
//! tunnel touches.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a tunnel packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum TunnelDrop {
    /// Outer headers cut short, inconsistent lengths, or a bad IPv4 header checksum.
    Malformed,
    /// VXLAN flags without the I bit or with others; GRE with routing, another version, or
    /// unknown flags.
    BadFlags,
    /// No tunnel port takes this VNI from this remote.
    UnknownTunnel,
    /// An IP fragment (tunnels never reassemble).
    Fragment,
    /// Addressed to the endpoint but neither VXLAN, GRE (Ethernet) nor ARP.
    NotTunnel,
    /// The next hop's MAC address is not resolved yet (an ARP request went out).
    NeighMiss,
    /// No route: the remote is outside the endpoint's subnet and there is no gateway.
    NoRoute,
    /// The encapsulated packet would exceed the underlay MTU.
    TooBig,
    /// No tunnel endpoint is configured.
    NoEndpoint,
    /// A hand-over ring between the bridges was full.
    RingFull,
    /// Sent to a `remote_ip=flow` port without a destination (`tun_dst` 0 or our own
    /// address): no `set_field:...->tun_dst` and no remote learned by `normal`.
    NoDestination,
}

impl TunnelDrop {
    /// Number of reasons.
    pub const COUNT: usize = 11;
    /// Every reason, in counter order.
    pub const ALL: [TunnelDrop; Self::COUNT] = [
        TunnelDrop::Malformed,
        TunnelDrop::BadFlags,
        TunnelDrop::UnknownTunnel,
        TunnelDrop::Fragment,
        TunnelDrop::NotTunnel,
        TunnelDrop::NeighMiss,
        TunnelDrop::NoRoute,
        TunnelDrop::TooBig,
        TunnelDrop::NoEndpoint,
        TunnelDrop::RingFull,
        TunnelDrop::NoDestination,
    ];

    /// The counter's name.
    pub const fn name(self) -> &'static str {
        match self {
            TunnelDrop::Malformed => "tunnel_malformed",
            TunnelDrop::BadFlags => "tunnel_bad_flags",
            TunnelDrop::UnknownTunnel => "tunnel_unknown_vni",
            TunnelDrop::Fragment => "tunnel_fragment",
            TunnelDrop::NotTunnel => "tunnel_not_tunnel",
            TunnelDrop::NeighMiss => "tunnel_neigh_miss",
            TunnelDrop::NoRoute => "tunnel_no_route",
            TunnelDrop::TooBig => "tunnel_too_big",
            TunnelDrop::NoEndpoint => "tunnel_no_endpoint",
            TunnelDrop::RingFull => "tunnel_ring_full",
            TunnelDrop::NoDestination => "tunnel_no_dst",
        }
    }
}

/// Drop counters by [`TunnelDrop`].
#[derive(Debug, Default)]
pub struct DropCounters([AtomicU64; TunnelDrop::COUNT]);

impl DropCounters {
    /// Counts `n` drops for `r`.
    pub fn add(&self, r: TunnelDrop, n: u64) {
        if n > 0 {
            self.0[r as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Drops counted for `r`.
    pub fn get(&self, r: TunnelDrop) -> u64 {
        self.0[r as usize].load(Ordering::Relaxed)
    }
}
