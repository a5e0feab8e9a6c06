//! Tunnel ports (`type=vxlan`, `type=gre`): ports of any bridge whose packets go through a
//! [`TunnelEndpoint`]. What a bridge sends to one is encapsulated in place (a precomputed
//! outer header per remote written into the headroom) and handed to the endpoint; what the
//! endpoint decapsulates for it, it delivers with the remote and key in each packet buffer.
//! [`NoEndpointPort`] stands in for one that has no endpoint.
//!
//! Thread-safety: shared (`Arc<dyn Port>`) by the poll threads; the outer headers sit
//! behind mutexes taken once per burst; counters are relaxed atomics.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::drop::{DropCounters, TunnelDrop};
use super::encap::{self, EncapHeader, Outer, TunnelKind};
use super::endpoint::TunnelEndpoint;
use super::rx::{RING, TunnelConfig, TunnelRx};
use crate::packet::BufPool;
use crate::port::{BURST, Batch, Doorbell, Port, PortCounters, PortStats, TunnelInfo};

/// How long a tunnel port trusts its outer header before looking at the neighbour table again.
const HEADER_RECHECK_NS: u64 = 100_000_000;
/// Most remotes a `remote_ip=flow` port keeps an outer header for; a new remote beyond this
/// replaces the one resolved longest ago (so flows choosing ever new destinations cost
/// re-resolutions, never memory).
pub const MAX_REMOTES: usize = 256;

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

/// A VXLAN tunnel port.
#[derive(Debug)]
pub struct TunnelPort {
    name: String,
    shared: Arc<TunnelRx>,
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
            shared: Arc::new(TunnelRx {
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
        t.endpoint.attach(&t.shared);
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
        let o = Outer {
            dst_mac: mac,
            src_mac: ep.mac,
            src_ip: ep.ip,
            dst_ip: remote,
            tos: c.tos,
            ttl: c.ttl,
            df: c.df,
        };
        match c.kind {
            TunnelKind::Vxlan => EncapHeader::vxlan(&o, c.key.unwrap_or(0), c.dst_port),
            TunnelKind::Gre => EncapHeader::gre(&o, c.key.unwrap_or(0)),
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
        self.endpoint.detach(&self.shared);
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
        let c = &self.shared.config;
        Some(TunnelInfo {
            local: self.endpoint.ip,
            flow_based: self.is_flow_based(),
            kind: match c.kind {
                TunnelKind::Vxlan => "vxlan",
                TunnelKind::Gre => "gre",
            },
            remote: c.remote,
            key: c.key,
            dst_port: c.dst_port,
        })
    }

    fn link_lost(&self) -> bool {
        self.endpoint.is_retired()
    }

    fn extra_stats(&self, out: &mut Vec<(&'static str, u64)>) {
        if self.shared.config.remote.is_none() {
            out.push(("remotes_evicted", self.remotes_evicted()));
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
    use crate::packet::PacketBuf;
    use crate::tunnel::{Clock, EndpointPort};
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
        EncapHeader::vxlan(&Outer::new(ep.mac, [2; 6], remote(5), ep.ip), 77, 4789)
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
