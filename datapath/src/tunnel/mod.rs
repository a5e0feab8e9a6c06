//! VXLAN and GRE tunnels over an underlay the switch reaches through one of its own bridges.
//!
//! What: a [`TunnelEndpoint`] is the switch's own address on the underlay (`set-tunnel-ip`):
//! a port of the underlay bridge ([`EndpointPort`]) with its own MAC address, which answers
//! ARP for that address, resolves next hops by ARP into its [`NeighTable`], and takes in the
//! tunnel packets addressed to it. A [`TunnelPort`] (`type=vxlan`) is a port of any bridge:
//! what that bridge sends to it is encapsulated (a precomputed outer header written into the
//! headroom, no copy of the payload) and handed to the endpoint, which sends it into the
//! underlay bridge; what the endpoint decapsulates for it, it delivers as received packets
//! with their remote and key in the packet buffer ([`PacketBuf::tunnel`]), which the
//! pipeline reads into the flow key (`tun_src`, `tun_id`; `tun_dst` is the endpoint's
//! address, [`crate::port::TunnelInfo::local`]).
//!
//! The two bridges stay independent datapaths: the hand-over between them is a ring taken
//! once per burst in each direction, like a patch port.
//!
//! A flow-based port (`remote_ip=flow`, `key=flow`: [`TunnelConfig::remote`] or
//! [`TunnelConfig::key`] `None`) takes each packet's destination and key from the packet
//! buffer ([`PacketBuf::tunnel`], written by the pipeline from `tun_dst`/`tun_id` when it
//! stages the packet for this port), keeps one outer header per remote in a map bounded by
//! [`MAX_REMOTES`], and takes in packets from any remote / with any key. Which port a
//! decapsulated packet belongs to follows Open vSwitch's precedence: exact remote and key,
//! then a fixed key with any remote, then a fixed remote with any key, then both from flows.
//!
//! Malformed or unexpected tunnel traffic is dropped and counted by reason
//! ([`TunnelDrop`]), never forwarded half-parsed.
//!
//! Thread-safety: every piece is shared through `Arc` by the poll threads of both bridges
//! and the daemon; rings, the neighbour table and a port's per-remote headers sit behind
//! mutexes taken once per burst; counters are relaxed atomics.

pub mod encap;

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arrayvec::ArrayVec;
use parking_lot::Mutex;

use crate::packet::{BufPool, PacketBuf};
use crate::port::{BURST, Batch, Doorbell, Port, PortCounters, PortStats, TunnelInfo};

pub use encap::{EncapHeader, TunnelKind, decap};

/// Frames waiting in each hand-over ring before new ones are dropped.
pub const RING: usize = 4096;
/// How long a resolved neighbour is trusted, nanoseconds (as the kernel's default-ish).
pub const NEIGH_AGING_NS: u64 = 300_000_000_000;
/// How long a tunnel port trusts its outer header before looking at the neighbour table again.
const HEADER_RECHECK_NS: u64 = 100_000_000;
/// Least time between two ARP requests for the same next hop.
const ARP_RETRY_NS: u64 = 100_000_000;
/// Most remotes a `remote_ip=flow` port keeps an outer header for; a new remote beyond this
/// replaces the one resolved longest ago (so flows choosing ever new destinations cost
/// re-resolutions, never memory).
pub const MAX_REMOTES: usize = 256;

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

/// What decapsulation found in a packet's outer headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TunMeta {
    /// Encapsulation it arrived with.
    pub kind: TunnelKind,
    /// VNI.
    pub id: u32,
    /// Outer source address (the remote endpoint).
    pub src: Ipv4Addr,
    /// Outer destination address (ours).
    pub dst: Ipv4Addr,
}

impl Default for TunMeta {
    fn default() -> Self {
        TunMeta {
            kind: TunnelKind::Vxlan,
            id: 0,
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// A source of time in nanoseconds (the underlay datapath's clock), shared without a
/// reference to the datapath itself (which holds the endpoint: no cycle).
#[derive(Clone)]
pub struct Clock(pub Arc<dyn Fn() -> u64 + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// One resolved neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// When it was last confirmed (datapath nanoseconds).
    pub seen_ns: u64,
}

/// The endpoint's ARP cache: next-hop address to MAC, aged.
#[derive(Debug, Default)]
pub struct NeighTable {
    map: Mutex<HashMap<Ipv4Addr, Neighbour>>,
    asked: Mutex<HashMap<Ipv4Addr, u64>>,
}

impl NeighTable {
    /// The MAC of `ip` if resolved and fresh at `now_ns`.
    pub fn lookup(&self, ip: Ipv4Addr, now_ns: u64) -> Option<[u8; 6]> {
        self.map
            .lock()
            .get(&ip)
            .filter(|n| now_ns.saturating_sub(n.seen_ns) < NEIGH_AGING_NS)
            .map(|n| n.mac)
    }

    /// Records `ip` at `mac`.
    pub fn learn(&self, ip: Ipv4Addr, mac: [u8; 6], now_ns: u64) {
        self.map.lock().insert(
            ip,
            Neighbour {
                ip,
                mac,
                seen_ns: now_ns,
            },
        );
        self.asked.lock().remove(&ip);
    }

    /// True when an ARP request for `ip` should go out now (none in the last 100 ms).
    fn should_ask(&self, ip: Ipv4Addr, now_ns: u64) -> bool {
        let mut asked = self.asked.lock();
        match asked.get(&ip) {
            Some(&t) if now_ns.saturating_sub(t) < ARP_RETRY_NS => false,
            _ => {
                asked.insert(ip, now_ns);
                true
            }
        }
    }

    /// Forgets entries older than the aging time.
    pub fn age(&self, now_ns: u64) {
        self.map
            .lock()
            .retain(|_, n| now_ns.saturating_sub(n.seen_ns) < NEIGH_AGING_NS);
    }

    /// Every entry, by address.
    pub fn entries(&self) -> Vec<Neighbour> {
        let mut v: Vec<Neighbour> = self.map.lock().values().copied().collect();
        v.sort_by_key(|n| n.ip);
        v
    }
}

/// The switch's address on the underlay.
#[derive(Debug)]
pub struct TunnelEndpoint {
    /// Its name (the endpoint port's name in the underlay bridge).
    pub name: String,
    /// The address.
    pub ip: Ipv4Addr,
    /// Prefix length of its subnet.
    pub prefix: u8,
    /// Gateway for remotes outside the subnet.
    pub gw: Option<Ipv4Addr>,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Largest IP packet the underlay carries.
    pub mtu: u16,
    /// The ARP cache.
    pub neigh: NeighTable,
    /// Frames to send into the underlay bridge (encapsulated packets, ARP).
    to_bridge: Mutex<VecDeque<PacketBuf>>,
    /// Rung when `to_bridge` stops being empty.
    bell: Option<Doorbell>,
    /// Tunnel ports by VNI, for decapsulation.
    tunnels: Mutex<Vec<Arc<TunnelShared>>>,
    /// Drops by reason.
    pub drops: DropCounters,
    counters: PortCounters,
    clock: Clock,
    /// Set when the endpoint's port was removed: its tunnel ports drop what they are given
    /// (`tunnel_no_endpoint`) until the daemon moves them to another endpoint.
    retired: AtomicBool,
}

impl TunnelEndpoint {
    /// An endpoint at `ip/prefix` (gateway `gw`) with MAC `mac`, reading time from `clock`
    /// (nanoseconds, the datapath's clock).
    pub fn new(
        name: &str,
        ip: Ipv4Addr,
        prefix: u8,
        gw: Option<Ipv4Addr>,
        mac: [u8; 6],
        clock: Clock,
    ) -> TunnelEndpoint {
        TunnelEndpoint {
            name: name.to_string(),
            ip,
            prefix: prefix.min(32),
            gw,
            mac,
            mtu: 1500,
            neigh: NeighTable::default(),
            to_bridge: Mutex::new(VecDeque::with_capacity(RING)),
            bell: Doorbell::new().ok(),
            tunnels: Mutex::new(Vec::new()),
            drops: DropCounters::default(),
            counters: PortCounters::default(),
            clock,
            retired: AtomicBool::new(false),
        }
    }

    /// Marks the endpoint gone (its port was removed): tunnel ports on it stop sending and
    /// count `tunnel_no_endpoint`; it no longer takes in anything.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// True once [`TunnelEndpoint::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    fn now(&self) -> u64 {
        (self.clock.0)()
    }

    /// Forgets neighbours older than the aging time.
    pub fn age_neighbours(&self) {
        self.neigh.age(self.now());
    }

    /// How long ago `n` was confirmed, nanoseconds.
    pub fn age_of(&self, n: &Neighbour) -> u64 {
        self.now().saturating_sub(n.seen_ns)
    }

    /// The next hop towards `remote`: itself inside our subnet, else the gateway.
    pub fn next_hop(&self, remote: Ipv4Addr) -> Option<Ipv4Addr> {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix as u32)
        };
        if u32::from(remote) & mask == u32::from(self.ip) & mask {
            Some(remote)
        } else {
            self.gw
        }
    }

    /// Registers a tunnel port for decapsulation.
    pub fn attach(&self, t: &TunnelPort) {
        let mut v = self.tunnels.lock();
        v.retain(|x| !Arc::ptr_eq(x, &t.shared));
        v.push(Arc::clone(&t.shared));
    }

    /// Unregisters a tunnel port.
    pub fn detach(&self, t: &TunnelPort) {
        self.tunnels.lock().retain(|x| !Arc::ptr_eq(x, &t.shared));
    }

    /// Queues frames for the underlay bridge; counts what does not fit.
    fn push(&self, frames: &mut ArrayVec<PacketBuf, BURST>, pool: &mut BufPool) {
        let mut q = self.to_bridge.lock();
        for f in frames.drain(..) {
            if q.len() < RING {
                q.push_back(f);
            } else {
                self.drops.add(TunnelDrop::RingFull, 1);
                pool.put(f);
            }
        }
        if let Some(b) = &self.bell {
            b.notify();
        }
    }

    /// Sends an ARP request for `hop` unless one went out in the last 100 ms.
    #[cold]
    fn ask_slow(&self, hop: Ipv4Addr, now: u64, pool: &mut BufPool) {
        if self.neigh.should_ask(hop, now)
            && let Some(mut b) = pool.get()
        {
            if self.arp_request(hop, &mut b) {
                let mut v = ArrayVec::new();
                v.push(b);
                self.push(&mut v, pool);
            } else {
                pool.put(b);
            }
        }
    }

    /// An ARP request for `ip` into `b`.
    fn arp_request(&self, ip: Ipv4Addr, b: &mut PacketBuf) -> bool {
        let mut f = [0u8; 42];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&self.mac);
        f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&self.mac);
        f[28..32].copy_from_slice(&self.ip.octets());
        f[38..42].copy_from_slice(&ip.octets());
        b.set_frame(&f)
    }

    /// Handles one frame the underlay bridge delivered to the endpoint: ARP for us (answer,
    /// learn), VXLAN for us (decapsulate to its tunnel port); anything else is dropped.
    fn receive(
        &self,
        mut b: PacketBuf,
        replies: &mut ArrayVec<PacketBuf, BURST>,
        pool: &mut BufPool,
    ) {
        let now = self.now();
        let d = b.data();
        if d.len() >= 42 && d[12..14] == [0x08, 0x06] && d[14..22] == [0, 1, 8, 0, 6, 4, 0, d[21]] {
            let op = d[21];
            let sha: [u8; 6] = d[22..28].try_into().unwrap_or_default();
            let spa = Ipv4Addr::new(d[28], d[29], d[30], d[31]);
            let tpa = Ipv4Addr::new(d[38], d[39], d[40], d[41]);
            if tpa != self.ip {
                pool.put(b);
                return;
            }
            self.neigh.learn(spa, sha, now);
            if op == 1 && !replies.is_full() {
                // Answer in place: swap the addresses, op 2, our MAC.
                let f = b.data_mut();
                let mut reply = [0u8; 42];
                reply[0..6].copy_from_slice(&sha);
                reply[6..12].copy_from_slice(&self.mac);
                reply[12..14].copy_from_slice(&[0x08, 0x06]);
                reply[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
                reply[22..28].copy_from_slice(&self.mac);
                reply[28..32].copy_from_slice(&self.ip.octets());
                reply[32..38].copy_from_slice(&sha);
                reply[38..42].copy_from_slice(&spa.octets());
                f[..42].copy_from_slice(&reply);
                b.truncate(42);
                replies.push(b);
            } else {
                pool.put(b);
            }
            return;
        }
        match decap(&mut b, self.ip) {
            Ok(meta) => {
                let tunnels = self.tunnels.lock();
                match select_tunnel(&tunnels, &meta) {
                    Some(t) => {
                        b.set_tunnel(u32::from(meta.src), meta.id);
                        let mut q = t.rx.lock();
                        if q.len() < RING {
                            q.push_back(b);
                        } else {
                            self.drops.add(TunnelDrop::RingFull, 1);
                            pool.put(b);
                        }
                        if let Some(bell) = &t.bell {
                            bell.notify();
                        }
                    }
                    None => {
                        self.drops.add(TunnelDrop::UnknownTunnel, 1);
                        pool.put(b);
                    }
                }
            }
            Err(r) => {
                self.drops.add(r, 1);
                pool.put(b);
            }
        }
    }
}

/// The tunnel port a decapsulated packet belongs to, in the order Open vSwitch uses
/// (`ofproto/tunnel.c`, `tnl_find`): a fixed key before `key=flow`, then a fixed remote
/// before `remote_ip=flow`. So a port with this exact (remote, key) wins; then one with this
/// key and any remote; then this remote and any key; then a port taking anything. Among
/// ports of equal rank the first attached wins.
fn select_tunnel<'a>(tunnels: &'a [Arc<TunnelShared>], meta: &TunMeta) -> Option<&'a TunnelShared> {
    let mut best: Option<(u8, &TunnelShared)> = None;
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

/// The endpoint as a port of the underlay bridge.
#[derive(Debug)]
pub struct EndpointPort(pub Arc<TunnelEndpoint>);

impl Port for EndpointPort {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn retire(&self) -> bool {
        self.0.retire();
        true
    }

    fn rx_fd(&self, _queue: usize) -> Option<std::os::fd::RawFd> {
        self.0.bell.as_ref().map(Doorbell::fd)
    }

    fn arm_rx(&self, _queue: usize) -> bool {
        let q = self.0.to_bridge.lock();
        if let Some(b) = &self.0.bell
            && q.is_empty()
        {
            b.arm();
        }
        q.is_empty()
    }

    fn rx_burst(&self, _queue: usize, batch: &mut Batch, _pool: &mut BufPool) -> usize {
        if let Some(b) = &self.0.bell {
            b.ack();
        }
        let mut q = self.0.to_bridge.lock();
        let n = batch.remaining_capacity().min(q.len());
        let mut bytes = 0;
        for b in q.drain(..n) {
            bytes += b.len() as u64;
            batch.push(b);
        }
        drop(q);
        self.0.counters.rx(n as u64, bytes);
        n
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        let n = batch.len() as u64;
        let bytes: u64 = batch.iter().map(|b| b.len() as u64).sum();
        if self.0.is_retired() {
            self.0.counters.tx_dropped(n);
            pool.put_batch(batch);
            return;
        }
        let mut replies: ArrayVec<PacketBuf, BURST> = ArrayVec::new();
        for b in batch.drain(..) {
            self.0.receive(b, &mut replies, pool);
        }
        self.0.counters.tx(n, bytes);
        if !replies.is_empty() {
            self.0.push(&mut replies, pool);
        }
    }

    fn stats(&self) -> PortStats {
        self.0.counters.read()
    }
}

/// What stands in for a tunnel port that has no endpoint (none configured yet, or its
/// endpoint's port was removed): it drops what it is given, counting `tunnel_no_endpoint`
/// in the switch-wide `drops` and its own `tx_dropped`.
#[derive(Debug)]
pub struct NoEndpointPort {
    name: String,
    drops: Arc<DropCounters>,
    counters: PortCounters,
}

impl NoEndpointPort {
    /// A placeholder named `name` counting into `drops`.
    pub fn new(name: &str, drops: Arc<DropCounters>) -> NoEndpointPort {
        NoEndpointPort {
            name: name.to_string(),
            drops,
            counters: PortCounters::default(),
        }
    }
}

impl Port for NoEndpointPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&self, _queue: usize, _batch: &mut Batch, _pool: &mut BufPool) -> usize {
        0
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        let n = batch.len() as u64;
        self.drops.add(TunnelDrop::NoEndpoint, n);
        self.counters.tx_dropped(n);
        pool.put_batch(batch);
    }

    fn link_up(&self) -> Option<bool> {
        Some(false)
    }

    fn stats(&self) -> PortStats {
        self.counters.read()
    }
}

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

#[derive(Debug)]
struct TunnelShared {
    config: TunnelConfig,
    /// Decapsulated packets, each with its remote and key in the buffer.
    rx: Mutex<VecDeque<PacketBuf>>,
    /// Rung when `rx` stops being empty.
    bell: Option<Doorbell>,
}

/// A VXLAN tunnel port.
#[derive(Debug)]
pub struct TunnelPort {
    name: String,
    shared: Arc<TunnelShared>,
    endpoint: Arc<TunnelEndpoint>,
    /// The outer header for the configured remote and when its next hop was last looked
    /// up; rebuilt when the next hop's MAC changes.
    header: Mutex<Option<(EncapHeader, u64)>>,
    /// `remote_ip=flow`: the outer header per remote (at most [`MAX_REMOTES`]), each with
    /// when its next hop was last looked up.
    remotes: Mutex<HashMap<Ipv4Addr, (EncapHeader, u64)>>,
    /// Remotes' headers replaced to stay within [`MAX_REMOTES`].
    remotes_evicted: AtomicU64,
    counters: PortCounters,
}

impl TunnelPort {
    /// A tunnel port on `endpoint`, registered with it for decapsulation.
    pub fn new(name: &str, config: TunnelConfig, endpoint: Arc<TunnelEndpoint>) -> TunnelPort {
        let t = TunnelPort {
            name: name.to_string(),
            shared: Arc::new(TunnelShared {
                config,
                rx: Mutex::new(VecDeque::with_capacity(RING)),
                bell: Doorbell::new().ok(),
            }),
            endpoint,
            header: Mutex::new(None),
            remotes: Mutex::new(HashMap::new()),
            remotes_evicted: AtomicU64::new(0),
            counters: PortCounters::default(),
        };
        t.endpoint.attach(&t);
        t
    }

    /// The configuration.
    pub fn config(&self) -> &TunnelConfig {
        &self.shared.config
    }

    /// The endpoint it uses.
    pub fn endpoint(&self) -> &Arc<TunnelEndpoint> {
        &self.endpoint
    }

    /// True when flows choose the remote or the key (`remote_ip=flow`, `key=flow`): the
    /// pipeline then writes `tun_dst`/`tun_id` into each packet it sends here.
    pub fn is_flow_based(&self) -> bool {
        self.shared.config.remote.is_none() || self.shared.config.key.is_none()
    }

    /// Remotes a `remote_ip=flow` port holds an outer header for now.
    pub fn remote_count(&self) -> usize {
        self.remotes.lock().len()
    }

    /// Remotes' headers replaced to stay within [`MAX_REMOTES`].
    pub fn remotes_evicted(&self) -> u64 {
        self.remotes_evicted.load(Ordering::Relaxed)
    }

    /// The outer header towards the configured remote, resolving the next hop (an ARP
    /// request goes out when it is unknown). `Err` says why packets cannot leave now.
    fn header(&self, pool: &mut BufPool) -> Result<EncapHeader, TunnelDrop> {
        let ep = &self.endpoint;
        let now = ep.now();
        // The neighbour table is consulted at most every 100 ms, not per burst.
        if let Some((h, at)) = self.header.lock().as_ref()
            && now.saturating_sub(*at) < HEADER_RECHECK_NS
        {
            return Ok(h.clone());
        }
        let remote = self.shared.config.remote.ok_or(TunnelDrop::NoDestination)?;
        let mac = self.resolve(remote, now, pool)?;
        let mut h = self.header.lock();
        if let Some((cur, at)) = h.as_mut()
            && cur.dst_mac() == mac
        {
            *at = now;
            return Ok(cur.clone());
        }
        let new = self.build(mac, remote);
        *h = Some((new.clone(), now));
        Ok(new)
    }

    /// The next hop's MAC towards `remote`; when unknown, an ARP request goes out (at most
    /// every 100 ms) and the packets are dropped.
    fn resolve(
        &self,
        remote: Ipv4Addr,
        now: u64,
        pool: &mut BufPool,
    ) -> Result<[u8; 6], TunnelDrop> {
        let ep = &self.endpoint;
        let hop = ep.next_hop(remote).ok_or(TunnelDrop::NoRoute)?;
        match ep.neigh.lookup(hop, now) {
            Some(mac) => Ok(mac),
            None => {
                ep.ask_slow(hop, now, pool);
                Err(TunnelDrop::NeighMiss)
            }
        }
    }

    /// The outer header towards `remote` through the next hop at `mac`, with the configured
    /// key (0 for `key=flow`: each packet's key is written after).
    fn build(&self, mac: [u8; 6], remote: Ipv4Addr) -> EncapHeader {
        let ep = &self.endpoint;
        let c = &self.shared.config;
        match c.kind {
            TunnelKind::Vxlan => EncapHeader::vxlan(
                mac,
                ep.mac,
                ep.ip,
                remote,
                c.key.unwrap_or(0),
                c.dst_port,
                c.tos,
                c.ttl,
                c.df,
            ),
            TunnelKind::Gre => EncapHeader::gre(
                mac,
                ep.mac,
                ep.ip,
                remote,
                c.key.unwrap_or(0),
                c.tos,
                c.ttl,
                c.df,
            ),
        }
    }

    /// `remote_ip=flow`: the outer header towards `remote` from the per-remote map (looked
    /// up in the neighbour table at most every 100 ms per remote, rebuilt when the next
    /// hop's MAC changes). A new remote in a full map replaces the one resolved longest ago.
    fn remote_header(
        &self,
        map: &mut HashMap<Ipv4Addr, (EncapHeader, u64)>,
        remote: Ipv4Addr,
        now: u64,
        pool: &mut BufPool,
    ) -> Result<EncapHeader, TunnelDrop> {
        if let Some((h, at)) = map.get(&remote)
            && now.saturating_sub(*at) < HEADER_RECHECK_NS
        {
            return Ok(h.clone());
        }
        self.remote_header_slow(map, remote, now, pool)
    }

    #[cold]
    fn remote_header_slow(
        &self,
        map: &mut HashMap<Ipv4Addr, (EncapHeader, u64)>,
        remote: Ipv4Addr,
        now: u64,
        pool: &mut BufPool,
    ) -> Result<EncapHeader, TunnelDrop> {
        let mac = self.resolve(remote, now, pool)?;
        if let Some((cur, at)) = map.get_mut(&remote) {
            if cur.dst_mac() != mac {
                *cur = self.build(mac, remote);
            }
            *at = now;
            return Ok(cur.clone());
        }
        if map.len() >= MAX_REMOTES
            && let Some(oldest) = map.iter().min_by_key(|(_, (_, at))| *at).map(|(r, _)| *r)
        {
            map.remove(&oldest);
            self.remotes_evicted.fetch_add(1, Ordering::Relaxed);
        }
        let h = self.build(mac, remote);
        map.insert(remote, (h.clone(), now));
        Ok(h)
    }

    /// Drops the whole burst for `r`.
    #[cold]
    fn drop_burst(&self, batch: &mut Batch, pool: &mut BufPool, r: TunnelDrop) {
        let n = batch.len() as u64;
        self.endpoint.drops.add(r, n);
        self.counters.tx_dropped(n);
        pool.put_batch(batch);
    }

    /// Encapsulates a burst for a flow-based port: each packet's destination (unless the
    /// remote is fixed) and key (unless fixed) come from the packet. `refused` marks the
    /// packets that cannot leave, `why` says why.
    fn encap_flow_burst(
        &self,
        batch: &mut Batch,
        pool: &mut BufPool,
        refused: &mut u64,
        why: &mut [TunnelDrop; BURST],
    ) -> u64 {
        let ep = &self.endpoint;
        let c = &self.shared.config;
        let now = ep.now();
        let fixed = c.remote.map(|_| self.header(pool));
        let mut map = self.remotes.lock();
        // One-entry cache in front of the map: bursts mostly go to one remote.
        let mut last: Option<(Ipv4Addr, EncapHeader)> = None;
        let mut bytes = 0;
        for (i, b) in batch.iter_mut().enumerate() {
            let (dst, id) = b.tunnel();
            let key = c.key.unwrap_or(id);
            let r = match &fixed {
                Some(Ok(h)) => h.push_key(b, ep.mtu, key),
                Some(Err(r)) => Err(*r),
                None if dst.is_unspecified() || dst == ep.ip => Err(TunnelDrop::NoDestination),
                None => {
                    let h = match &last {
                        Some((r, h)) if *r == dst => Ok(h),
                        _ => match self.remote_header(&mut map, dst, now, pool) {
                            Ok(h) => Ok(&last.insert((dst, h)).1),
                            Err(r) => Err(r),
                        },
                    };
                    h.and_then(|h| h.push_key(b, ep.mtu, key))
                }
            };
            match r {
                Ok(()) => bytes += (b.len() - ep_overhead(c.kind)) as u64,
                Err(r) => {
                    *refused |= 1 << i;
                    why[i] = r;
                }
            }
        }
        bytes
    }
}

/// Outer header bytes of `kind`.
fn ep_overhead(kind: TunnelKind) -> usize {
    match kind {
        TunnelKind::Vxlan => encap::VXLAN_OVERHEAD,
        TunnelKind::Gre => encap::GRE_OVERHEAD,
    }
}

impl Drop for TunnelPort {
    fn drop(&mut self) {
        self.endpoint.detach(self);
    }
}

impl Port for TunnelPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&self, _queue: usize, batch: &mut Batch, _pool: &mut BufPool) -> usize {
        if let Some(b) = &self.shared.bell {
            b.ack();
        }
        let mut q = self.shared.rx.lock();
        let n = batch.remaining_capacity().min(q.len());
        let mut bytes = 0;
        for b in q.drain(..n) {
            bytes += b.len() as u64;
            batch.push(b);
        }
        drop(q);
        self.counters.rx(n as u64, bytes);
        n
    }

    fn tunnel(&self) -> Option<TunnelInfo> {
        Some(TunnelInfo {
            local: self.endpoint.ip,
            flow_based: self.is_flow_based(),
        })
    }

    fn link_lost(&self) -> bool {
        self.endpoint.is_retired()
    }

    fn extra_stats(&self, out: &mut Vec<(&'static str, u64)>) {
        if self.shared.config.remote.is_none() {
            out.push(("tunnel_remotes", self.remote_count() as u64));
            out.push(("tunnel_remotes_evicted", self.remotes_evicted()));
        }
    }

    fn rx_fd(&self, _queue: usize) -> Option<std::os::fd::RawFd> {
        self.shared.bell.as_ref().map(Doorbell::fd)
    }

    fn arm_rx(&self, _queue: usize) -> bool {
        let q = self.shared.rx.lock();
        if let Some(b) = &self.shared.bell
            && q.is_empty()
        {
            b.arm();
        }
        q.is_empty()
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        if batch.is_empty() {
            return;
        }
        let ep = &self.endpoint;
        if ep.is_retired() {
            self.drop_burst(batch, pool, TunnelDrop::NoEndpoint);
            return;
        }
        // Encapsulate in place; what cannot leave is marked and taken out after.
        let mut refused = 0u64;
        let mut why = [TunnelDrop::TooBig; BURST];
        let bytes = if self.is_flow_based() {
            self.encap_flow_burst(batch, pool, &mut refused, &mut why)
        } else {
            let h = match self.header(pool) {
                Ok(h) => h,
                Err(r) => {
                    self.drop_burst(batch, pool, r);
                    return;
                }
            };
            let mut bytes = 0u64;
            for (i, b) in batch.iter_mut().enumerate() {
                let inner = b.len() as u64;
                match h.push(b, ep.mtu) {
                    Ok(()) => bytes += inner,
                    Err(_) => refused |= 1 << i,
                }
            }
            bytes
        };
        if refused != 0 {
            let mut keep = Batch::new();
            for (i, b) in batch.drain(..).enumerate() {
                if refused & (1 << i) == 0 {
                    keep.push(b);
                } else {
                    ep.drops.add(why[i], 1);
                    pool.put(b);
                }
            }
            *batch = keep;
            self.counters.tx_dropped(refused.count_ones() as u64);
        }
        self.counters.tx(batch.len() as u64, bytes);
        ep.push(batch, pool);
    }

    fn stats(&self) -> PortStats {
        self.counters.read()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn endpoint(clock: Arc<AtomicU64>) -> Arc<TunnelEndpoint> {
        Arc::new(TunnelEndpoint::new(
            "tep",
            Ipv4Addr::new(10, 0, 0, 1),
            8,
            None,
            [2, 0, 0, 0, 0, 1],
            Clock(Arc::new(move || clock.load(Ordering::Relaxed))),
        ))
    }

    fn flow_port(ep: &Arc<TunnelEndpoint>) -> TunnelPort {
        TunnelPort::new(
            "vxf",
            TunnelConfig {
                remote: None,
                key: None,
                ..TunnelConfig::default()
            },
            Arc::clone(ep),
        )
    }

    fn frame_to(dst: Ipv4Addr, key: u32) -> PacketBuf {
        let mut f = [0u8; 60];
        f[12] = 0x08;
        let mut b = PacketBuf::from_frame(&f).unwrap();
        b.set_tunnel(u32::from(dst), key);
        b
    }

    /// Sends one packet per destination; returns what reached the endpoint's ring.
    fn send(t: &TunnelPort, pool: &mut BufPool, dsts: &[(Ipv4Addr, u32)]) -> Vec<PacketBuf> {
        let mut out = Vec::new();
        for chunk in dsts.chunks(BURST) {
            let mut batch = Batch::new();
            for &(d, k) in chunk {
                batch.push(frame_to(d, k));
            }
            t.tx_burst(&mut batch, pool);
        }
        out.extend(t.endpoint.to_bridge.lock().drain(..));
        out
    }

    fn remote(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0a00_0000 | (i + 2))
    }

    proptest! {
        /// Whatever remotes flows choose, the map never exceeds its bound, every packet to
        /// a resolved remote leaves with that remote and its key, and evictions account for
        /// the difference.
        #[test]
        fn the_remote_map_stays_bounded(ids in proptest::collection::vec(0u32..600, 1..700)) {
            let clock = Arc::new(AtomicU64::new(1));
            let ep = endpoint(Arc::clone(&clock));
            for i in 0..600 {
                ep.neigh.learn(remote(i), [2, 0, 0, 0, (i >> 8) as u8, i as u8], 1);
            }
            let t = flow_port(&ep);
            let mut pool = BufPool::new(64);
            let dsts: Vec<(Ipv4Addr, u32)> = ids.iter().map(|&i| (remote(i), i * 3)).collect();
            let out = send(&t, &mut pool, &dsts);
            prop_assert_eq!(out.len(), dsts.len());
            for (b, (d, k)) in out.iter().zip(&dsts) {
                let v = b.data();
                prop_assert_eq!(&v[30..34], &d.octets());
                prop_assert_eq!(&v[46..49], &k.to_be_bytes()[1..4]);
            }
            prop_assert!(t.remote_count() <= MAX_REMOTES);
            let distinct: std::collections::HashSet<_> = ids.iter().collect();
            prop_assert!(t.remotes_evicted() as usize + t.remote_count() >= distinct.len());
        }
    }

    #[test]
    fn a_decapsulated_packet_carries_its_remote_and_key_in_its_buffer() {
        let clock = Arc::new(AtomicU64::new(1));
        let ep = endpoint(Arc::clone(&clock));
        let t = flow_port(&ep);
        let info = t.tunnel().unwrap();
        assert_eq!(info.local, ep.ip);
        assert!(info.flow_based);
        let mut inner = [0u8; 60];
        inner[12] = 0x08;
        let mut b = PacketBuf::from_frame(&inner).unwrap();
        EncapHeader::vxlan(ep.mac, [2; 6], remote(5), ep.ip, 77, 4789, 0, 64, true)
            .push(&mut b, 1500)
            .unwrap();
        let ep_port = EndpointPort(Arc::clone(&ep));
        let mut pool = BufPool::new(8);
        let mut batch = Batch::new();
        batch.push(b);
        ep_port.tx_burst(&mut batch, &mut pool);
        let mut got = Batch::new();
        assert_eq!(t.rx_burst(0, &mut got, &mut pool), 1);
        assert_eq!(got[0].data(), &inner[..]);
        assert_eq!(got[0].tunnel(), (remote(5), 77));
        // Removing the endpoint's port takes the tunnel port down.
        assert!(!t.link_lost());
        assert!(ep_port.retire());
        assert!(t.link_lost());
    }

    #[test]
    fn a_remote_is_re_resolved_when_its_neighbour_changes() {
        let clock = Arc::new(AtomicU64::new(1));
        let ep = endpoint(Arc::clone(&clock));
        let r = remote(1);
        ep.neigh.learn(r, [2, 0, 0, 0, 0, 0xaa], 1);
        let t = flow_port(&ep);
        let mut pool = BufPool::new(64);
        let out = send(&t, &mut pool, &[(r, 9)]);
        assert_eq!(&out[0].data()[0..6], &[2, 0, 0, 0, 0, 0xaa]);
        // The neighbour moves; within 100 ms the cached header is still used, after it the
        // new MAC is.
        ep.neigh.learn(r, [2, 0, 0, 0, 0, 0xbb], 2);
        let out = send(&t, &mut pool, &[(r, 9)]);
        assert_eq!(&out[0].data()[0..6], &[2, 0, 0, 0, 0, 0xaa]);
        clock.store(HEADER_RECHECK_NS + 10, Ordering::Relaxed);
        let out = send(&t, &mut pool, &[(r, 9)]);
        assert_eq!(&out[0].data()[0..6], &[2, 0, 0, 0, 0, 0xbb]);
        assert_eq!(t.remote_count(), 1);
        // Unresolved remotes: dropped and counted, an ARP request goes out.
        let out = send(&t, &mut pool, &[(remote(77), 1)]);
        assert_eq!(out.len(), 1, "the ARP request");
        assert_eq!(&out[0].data()[12..14], &[0x08, 0x06]);
        assert_eq!(ep.drops.get(TunnelDrop::NeighMiss), 1);
        // No destination, or our own address: tunnel_no_dst.
        let out = send(&t, &mut pool, &[(Ipv4Addr::UNSPECIFIED, 1), (ep.ip, 1)]);
        assert!(out.is_empty());
        assert_eq!(ep.drops.get(TunnelDrop::NoDestination), 2);
        // A retired endpoint: everything is tunnel_no_endpoint.
        ep.retire();
        let out = send(&t, &mut pool, &[(r, 9), (r, 9)]);
        assert!(out.is_empty());
        assert_eq!(ep.drops.get(TunnelDrop::NoEndpoint), 2);
    }
}
