//! The receive side of tunnel ports: each port's configuration and the ring its endpoint
//! delivers decapsulated packets into, and which port a decapsulated packet belongs to.
//!
//! Thread-safety: a [`TunnelRx`] is shared (`Arc`) by its tunnel port and the endpoint; its
//! ring sits behind a mutex taken once per burst on each side.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;

use parking_lot::Mutex;

use super::encap::{TunMeta, TunnelKind};
use crate::packet::PacketBuf;
use crate::port::Doorbell;

/// Frames waiting in each hand-over ring before new ones are dropped.
pub const RING: usize = 4096;

/// A tunnel port's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelConfig {
    /// VXLAN or GRE.
    pub kind: TunnelKind,
    /// Remote endpoint (`None`: `remote_ip=flow`: each packet's `tun_dst` says where it
    /// goes, and packets from any remote are taken in).
    pub remote: Option<Ipv4Addr>,
    /// VNI or GRE key (`None`: `key=flow`: each packet's `tun_id` is its key, and any key is
    /// taken in).
    pub key: Option<u32>,
    /// UDP destination port.
    pub dst_port: u16,
    /// Outer TOS.
    pub tos: u8,
    /// Outer TTL.
    pub ttl: u8,
    /// Set DF on the outer header.
    pub df: bool,
}

impl Default for TunnelConfig {
    fn default() -> Self {
        TunnelConfig {
            kind: TunnelKind::Vxlan,
            remote: None,
            key: None,
            dst_port: crate::packet::vxlan::UDP_PORT,
            tos: 0,
            ttl: 64,
            df: true,
        }
    }
}

/// What the endpoint knows of a tunnel port: its configuration (to pick the port a packet
/// belongs to) and its receive ring.
#[derive(Debug)]
pub(super) struct TunnelRx {
    pub(super) config: TunnelConfig,
    /// Decapsulated packets, each with its remote and key in the buffer.
    pub(super) rx: Mutex<VecDeque<PacketBuf>>,
    /// Rung when `rx` stops being empty.
    pub(super) bell: Option<Doorbell>,
}

/// The tunnel port a decapsulated packet belongs to, in the order Open vSwitch uses
/// (`ofproto/tunnel.c`, `tnl_find`): a fixed key before `key=flow`, then a fixed remote
/// before `remote_ip=flow`. So a port with this exact (remote, key) wins; then one with this
/// key and any remote; then this remote and any key; then a port taking anything. Among
/// ports of equal rank the first attached wins.
pub(super) fn select_tunnel<'a>(
    tunnels: &'a [Arc<TunnelRx>],
    meta: &TunMeta,
) -> Option<&'a TunnelRx> {
    let mut best: Option<(u8, &TunnelRx)> = None;
    for t in tunnels {
        let c = &t.config;
        if c.kind != meta.kind
            || c.key.is_some_and(|k| k != meta.id)
            || c.remote.is_some_and(|r| r != meta.src)
        {
            continue;
        }
        let rank = (c.key.is_none() as u8) << 1 | c.remote.is_none() as u8;
        if rank == 0 {
            return Some(t);
        }
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, t));
        }
    }
    best.map(|(_, t)| t)
}
