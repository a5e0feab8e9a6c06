//! The tunnel endpoint: the switch's own address on the underlay, a port of the underlay
//! bridge with its own MAC address. It answers ARP for its address, resolves next hops by
//! ARP into its [`NeighTable`], takes in the tunnel packets addressed to it (decapsulating
//! each for the tunnel port it belongs to) and sends what its tunnel ports encapsulated
//! into the underlay bridge.
//!
//! Thread-safety: shared (`Arc`) by the poll threads of both bridges and the daemon; its
//! rings sit behind mutexes taken once per burst; counters are relaxed atomics.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrayvec::ArrayVec;
use parking_lot::Mutex;

use super::drop::{DropCounters, TunnelDrop};
use super::encap::decap;
use super::neigh::{NeighTable, Neighbour};
use super::rx::{RING, TunnelRx, select_tunnel};
use crate::packet::{BufPool, PacketBuf, arp, ethernet, ethertype};
use crate::port::{BURST, Batch, Doorbell, Port, PortCounters, PortStats};
use crate::types::MacAddr;

/// A source of time in nanoseconds (the underlay datapath's clock), shared without a
/// reference to the datapath itself (which holds the endpoint: no cycle).
#[derive(Clone)]
pub struct Clock(pub Arc<dyn Fn() -> u64 + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
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
    pub(super) to_bridge: Mutex<VecDeque<PacketBuf>>,
    /// Rung when `to_bridge` stops being empty.
    bell: Option<Doorbell>,
    /// Tunnel ports by VNI, for decapsulation.
    tunnels: Mutex<Vec<Arc<TunnelRx>>>,
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

    pub(super) fn now(&self) -> u64 {
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

    /// Registers a tunnel port's receive side for decapsulation.
    pub(super) fn attach(&self, t: &Arc<TunnelRx>) {
        let mut v = self.tunnels.lock();
        v.retain(|x| !Arc::ptr_eq(x, t));
        v.push(Arc::clone(t));
    }

    /// Unregisters a tunnel port's receive side.
    pub(super) fn detach(&self, t: &Arc<TunnelRx>) {
        self.tunnels.lock().retain(|x| !Arc::ptr_eq(x, t));
    }

    /// Queues frames for the underlay bridge; counts what does not fit.
    pub(super) fn push(&self, frames: &mut ArrayVec<PacketBuf, BURST>, pool: &mut BufPool) {
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
    pub(super) fn ask_slow(&self, hop: Ipv4Addr, now: u64, pool: &mut BufPool) {
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
        let req = arp::Repr {
            operation: arp::OP_REQUEST,
            sha: MacAddr(self.mac),
            spa: self.ip,
            tha: MacAddr([0; 6]),
            tpa: ip,
        };
        self.arp_frame(MacAddr::BROADCAST, &req, b)
    }

    /// Writes `arp` from our MAC to `dst` into `b` as the whole frame.
    fn arp_frame(&self, dst: MacAddr, arp: &arp::Repr, b: &mut PacketBuf) -> bool {
        let mut f = [0u8; ARP_FRAME];
        ethernet::Repr {
            src_addr: MacAddr(self.mac),
            dst_addr: dst,
            ethertype: ethertype::ARP,
        }
        .emit(&mut ethernet::Packet::new_unchecked(&mut f[..]));
        arp.emit(&mut arp::Packet::new_unchecked(
            &mut f[ethernet::HEADER_LEN..],
        ));
        b.set_frame(&f)
    }

    /// Handles one frame the underlay bridge delivered to the endpoint: ARP for us (answer,
    /// learn), VXLAN or GRE for us (decapsulate to its tunnel port); anything else is
    /// dropped.
    fn receive(
        &self,
        mut b: PacketBuf,
        replies: &mut ArrayVec<PacketBuf, BURST>,
        pool: &mut BufPool,
    ) {
        if let Some(a) = arp_of(b.data()) {
            if a.tpa == self.ip && (a.operation == arp::OP_REQUEST || a.operation == arp::OP_REPLY)
            {
                self.neigh.learn(a.spa, a.sha.0, self.now());
            }
            if a.tpa == self.ip && a.operation == arp::OP_REQUEST && !replies.is_full() {
                let reply = arp::Repr {
                    operation: arp::OP_REPLY,
                    sha: MacAddr(self.mac),
                    spa: self.ip,
                    tha: a.sha,
                    tpa: a.spa,
                };
                if self.arp_frame(a.sha, &reply, &mut b) {
                    replies.push(b);
                    return;
                }
            }
            pool.put(b);
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

/// Bytes of an ARP frame: Ethernet and Ethernet/IPv4 ARP.
const ARP_FRAME: usize = ethernet::HEADER_LEN + arp::PACKET_LEN;

/// The Ethernet/IPv4 ARP packet `frame` carries, if it is one.
fn arp_of(frame: &[u8]) -> Option<arp::Repr> {
    let eth = ethernet::Packet::new_checked(frame).ok()?;
    if eth.ethertype() != ethertype::ARP {
        return None;
    }
    arp::Repr::parse(&arp::Packet::new_checked(eth.payload()).ok()?).ok()
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
