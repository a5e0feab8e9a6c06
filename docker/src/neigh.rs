//! The uplink's neighbours: ARP for a network's external address, answered and resolved
//! by the plugin through the switch's packet-in and packet-out (its gRPC stream), as OVN's
//! gateway router answers for its NAT addresses and keeps MAC bindings.
//!
//! - **Answering**: a request for an external address A arriving on the uplink comes to
//!   the plugin (the flow of [`crate::publish::KIND_ARP`]); the plugin answers that A is
//!   at [`crate::publish::external_mac`] and learns the asker.
//! - **Resolving**: traffic leaving by the uplink (masqueraded, or replies of published
//!   ports) is addressed to a next hop: the destination itself when it is on the uplink's
//!   segment, else `vswitch.uplink_gateway`. With no MAC address known for it the packet
//!   comes to the plugin ([`crate::publish::KIND_RESOLVE`]; the packet is dropped, the
//!   sender retransmits), which asks by ARP from A out of the uplink, at most once a
//!   second per next hop; the reply is learned.
//! - **Keeping fresh**: the gateway and every next hop the plugin resolved are asked again
//!   every [`REFRESH`], so a router that changes its MAC address is followed within that.
//!
//! What is learned is a flow of table [`crate::publish::TABLE_NEIGH`] (kind
//! [`crate::publish::KIND_NEIGH`]): `ip,nw_src=A,nw_dst=X` for a neighbour X, and
//! `ip,nw_src=A` at a lower priority for the gateway. The flows are in the switch's store,
//! so traffic goes on while the plugin is down; they are removed with the network's uplink.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::v1::{self, stream_message_request as smq, stream_message_response as smr};
use tokio_stream::wrappers::ReceiverStream;

use crate::api::Mac;
use crate::options::prefix_of;
use crate::publish::{
    KIND_ARP, KIND_RESOLVE, external_mac, external_of, gateway_flow, kind_of, neighbour_flow,
};
use crate::vswitch::Switch;

const ETH_LEN: usize = 14;
const ARP_LEN: usize = 28;

/// An ARP request or reply for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 (request) or 2 (reply).
    pub op: u16,
    /// The sender's hardware address.
    pub sha: Mac,
    /// The sender's address.
    pub spa: Ipv4Addr,
    /// The target address (asked about, or answered to).
    pub tpa: Ipv4Addr,
}

/// Parses an untagged Ethernet frame holding an ARP request or reply for IPv4 over
/// Ethernet. `None` for anything else: short frames, other operations, hardware or
/// protocol types, a multicast or zero sender, a sender address 0.0.0.0 or broadcast (a
/// probe). Never panics.
pub fn parse_arp(frame: &[u8]) -> Option<Arp> {
    let f = frame.get(..ETH_LEN + ARP_LEN)?;
    let a = &f[ETH_LEN..];
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let op = be16(&a[6..8]);
    if be16(&f[12..14]) != 0x0806
        || be16(&a[0..2]) != 1
        || be16(&a[2..4]) != 0x0800
        || a[4] != 6
        || a[5] != 4
        || !(op == 1 || op == 2)
    {
        return None;
    }
    let mut sha = [0u8; 6];
    sha.copy_from_slice(&a[8..14]);
    let spa = Ipv4Addr::new(a[14], a[15], a[16], a[17]);
    let tpa = Ipv4Addr::new(a[24], a[25], a[26], a[27]);
    if sha[0] & 1 != 0 || sha == [0; 6] || spa.is_unspecified() || spa.is_broadcast() {
        return None;
    }
    Some(Arp {
        op,
        sha: Mac(sha),
        spa,
        tpa,
    })
}

/// The destination address of an untagged Ethernet frame holding IPv4; `None` otherwise.
pub fn ipv4_dst(frame: &[u8]) -> Option<Ipv4Addr> {
    let f = frame.get(..ETH_LEN + 20)?;
    if f[12..14] != [0x08, 0x00] || f[ETH_LEN] >> 4 != 4 {
        return None;
    }
    let d = &f[ETH_LEN + 16..ETH_LEN + 20];
    Some(Ipv4Addr::new(d[0], d[1], d[2], d[3]))
}

fn arp_frame(dst: Mac, op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&sha.0);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha.0);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha.0);
    f.extend_from_slice(&tpa.octets());
    f.resize(60, 0);
    f
}

/// The ARP reply to `req`: `req.tpa` is at `mac`. Padded to Ethernet's 60 bytes.
pub fn arp_reply(req: &Arp, mac: Mac) -> Vec<u8> {
    arp_frame(req.sha, 2, mac, req.tpa, req.sha, req.spa)
}

/// A broadcast ARP request from `spa` at `mac` for `tpa`.
pub fn arp_request(mac: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    arp_frame(Mac([0xff; 6]), 1, mac, spa, Mac([0; 6]), tpa)
}

/// What the resolver needs of one external address of a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uplink {
    /// The uplink's port number on the bridge.
    pub port: u32,
    /// `vswitch.uplink_gateway`.
    pub gateway: Option<Ipv4Addr>,
    /// The uplink segment's prefix length, when given (`external_ip=A/LEN`).
    pub prefix: Option<u8>,
}

impl Uplink {
    /// The next hop of traffic from `ext` to `dst`: `dst` itself when it is on the
    /// uplink's segment (or no gateway is given), else the gateway.
    pub fn next_hop(&self, ext: Ipv4Addr, dst: Ipv4Addr) -> Ipv4Addr {
        match (self.gateway, self.prefix) {
            (None, _) => dst,
            (Some(_), Some(len)) if prefix_of(dst, len) == prefix_of(ext, len) => dst,
            (Some(g), _) => g,
        }
    }
}

/// The bridges that have networks with uplinks, and their external addresses: the
/// resolver keeps one stream on each bridge.
pub type UplinkBridges = Arc<parking_lot::Mutex<BTreeMap<String, BTreeMap<Ipv4Addr, Uplink>>>>;

/// How long a learned neighbour is taken as written before a new answer writes it again.
const RELEARN: Duration = Duration::from_secs(10);
/// How often the gateway and resolved next hops are asked again.
pub const REFRESH: Duration = Duration::from_secs(10);
/// How often one next hop is asked at most while it does not answer.
const RETRY: Duration = Duration::from_secs(1);

/// Keeps a resolver on every bridge of `bridges` until the process ends.
pub async fn responder_loop(bridges: UplinkBridges, server: String) {
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        let want: Vec<String> = bridges.lock().keys().cloned().collect();
        running.retain(|b, h| {
            let keep = want.contains(b) && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        for b in want {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(b) {
                let (bridge, server, bridges) =
                    (slot.key().clone(), server.clone(), Arc::clone(&bridges));
                slot.insert(tokio::spawn(async move {
                    if let Err(e) = serve(&bridge, &server, bridges).await {
                        tracing::debug!(%bridge, "uplink resolver: {e}; reconnecting");
                    }
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One bridge's resolver: what it learned and asked.
struct Resolver {
    bridge: String,
    sw: Switch,
    tx: tokio::sync::mpsc::Sender<v1::StreamMessageRequest>,
    bridges: UplinkBridges,
    /// (external address, neighbour) → (MAC, port, when written).
    known: HashMap<(Ipv4Addr, Ipv4Addr), (Mac, u32, Instant)>,
    /// (external address, next hop) → when last asked; kept fresh by [`Resolver::tick`].
    asked: HashMap<(Ipv4Addr, Ipv4Addr), Instant>,
}

impl Resolver {
    fn uplink(&self, ext: Ipv4Addr) -> Option<Uplink> {
        self.bridges.lock().get(&self.bridge)?.get(&ext).copied()
    }

    async fn packet_out(&self, port: u32, data: Vec<u8>) -> Result<(), String> {
        let out = v1::PacketOut {
            bridge: String::new(),
            in_port: None,
            actions: vec![v1::Action {
                action: Some(v1::action::Action::Output(v1::Output {
                    port: Some(v1::PortRef {
                        port: Some(v1::port_ref::Port::Number(port)),
                    }),
                    max_len: None,
                })),
            }],
            data,
        };
        let msg = v1::StreamMessageRequest {
            update: Some(smq::Update::PacketOut(out)),
        };
        self.tx.send(msg).await.map_err(|e| e.to_string())
    }

    /// Asks who has `ip`, from `ext` out of its uplink.
    async fn ask(&mut self, ext: Ipv4Addr, ip: Ipv4Addr) -> Result<(), String> {
        let Some(up) = self.uplink(ext) else {
            return Ok(());
        };
        self.asked.insert((ext, ip), Instant::now());
        tracing::debug!(bridge = %self.bridge, %ext, next_hop = %ip, "uplink: asking by ARP");
        self.packet_out(up.port, arp_request(external_mac(ext), ext, ip))
            .await
    }

    async fn learn(&mut self, ext: Ipv4Addr, ip: Ipv4Addr, mac: Mac, port: u32) {
        if self
            .known
            .get(&(ext, ip))
            .is_some_and(|k| (k.0, k.1) == (mac, port) && k.2.elapsed() < RELEARN)
        {
            return;
        }
        let gateway = self.uplink(ext).and_then(|u| u.gateway) == Some(ip);
        let mut flows = vec![neighbour_flow(ext, ip, mac, port)];
        if gateway {
            flows.push(gateway_flow(ext, mac, port));
        }
        let updates = match flows.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(f) => f.iter().map(crate::overlay::flows::insert_of).collect(),
            Err(e) => {
                tracing::warn!(bridge = %self.bridge, "uplink neighbour {ip}: {e}");
                return;
            }
        };
        match self.sw.write(&self.bridge, updates).await {
            Ok(()) => {
                tracing::info!(bridge = %self.bridge, neighbour = %ip, %mac, %ext, gateway, "uplink neighbour learned");
                self.known.insert((ext, ip), (mac, port, Instant::now()));
            }
            Err(e) => tracing::warn!(bridge = %self.bridge, "uplink neighbour {ip}: {e}"),
        }
    }

    async fn packet_in(&mut self, pi: v1::PacketIn) -> Result<(), String> {
        let ext = external_of(pi.cookie);
        match kind_of(pi.cookie) {
            KIND_ARP => {
                let Some(arp) = parse_arp(&pi.data).filter(|r| r.tpa == ext) else {
                    return Ok(());
                };
                if arp.op == 1 {
                    self.packet_out(pi.in_port, arp_reply(&arp, external_mac(ext)))
                        .await?;
                } else {
                    // Only answers to what was asked (or from the gateway) are taken.
                    let gw = self.uplink(ext).and_then(|u| u.gateway);
                    if !self.asked.contains_key(&(ext, arp.spa)) && gw != Some(arp.spa) {
                        return Ok(());
                    }
                }
                self.learn(ext, arp.spa, arp.sha, pi.in_port).await;
            }
            KIND_RESOLVE => {
                let (Some(dst), Some(up)) = (ipv4_dst(&pi.data), self.uplink(ext)) else {
                    return Ok(());
                };
                let hop = up.next_hop(ext, dst);
                if self
                    .asked
                    .get(&(ext, hop))
                    .is_none_or(|t| t.elapsed() >= RETRY)
                {
                    self.ask(ext, hop).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Asks again for the gateways and the next hops resolved before, every [`REFRESH`]
    /// (every [`RETRY`] while one is not known); forgets those of addresses gone.
    async fn tick(&mut self) -> Result<(), String> {
        let uplinks = self
            .bridges
            .lock()
            .get(&self.bridge)
            .cloned()
            .unwrap_or_default();
        self.asked.retain(|(ext, _), _| uplinks.contains_key(ext));
        self.known.retain(|(ext, _), _| uplinks.contains_key(ext));
        let mut due = Vec::new();
        for (ext, up) in &uplinks {
            if let Some(g) = up.gateway {
                let long_ago = Instant::now()
                    .checked_sub(REFRESH)
                    .unwrap_or_else(Instant::now);
                self.asked.entry((*ext, g)).or_insert(long_ago);
            }
        }
        for ((ext, ip), when) in &self.asked {
            let every = if self.known.contains_key(&(*ext, *ip)) {
                REFRESH
            } else {
                RETRY
            };
            if when.elapsed() >= every {
                due.push((*ext, *ip));
            }
        }
        for (ext, ip) in due {
            self.ask(ext, ip).await?;
        }
        Ok(())
    }
}

async fn serve(bridge: &str, server: &str, bridges: UplinkBridges) -> Result<(), String> {
    let sw = Switch::new(server)?;
    let ep = crate::vswitch::parse_server(server)?;
    let channel = ep.connect().await.map_err(|e| e.to_string())?;
    let mut client = v1::switch_client::SwitchClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let hello = v1::StreamMessageRequest {
        update: Some(smq::Update::Arbitration(v1::Arbitration {
            bridge: bridge.to_string(),
            role: v1::Role::Equal as i32,
            election_id: 0,
        })),
    };
    tx.send(hello).await.map_err(|e| e.to_string())?;
    let mut events = client
        .stream(ReceiverStream::new(rx))
        .await
        .map_err(|e| e.message().to_string())?
        .into_inner();
    tracing::info!(%bridge, "uplink ARP responder connected to the switch");
    let mut r = Resolver {
        bridge: bridge.to_string(),
        sw,
        tx,
        bridges,
        known: HashMap::new(),
        asked: HashMap::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            m = events.message() => {
                let Some(m) = m.map_err(|e| e.message().to_string())? else {
                    return Err("stream ended".into());
                };
                if let Some(smr::Update::PacketIn(pi)) = m.update
                    && crate::publish::is_publish_cookie(pi.cookie)
                {
                    r.packet_in(pi).await?;
                }
            }
            _ = tick.tick() => r.tick().await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tpa: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&sha);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&sha);
        f.extend_from_slice(&spa);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&tpa);
        f
    }

    #[test]
    fn arp_requests_are_parsed_and_answered() {
        let sha = [0x02, 0, 0, 0, 0, 7];
        let f = arp(1, sha, [198, 19, 0, 2], [198, 19, 0, 1]);
        let r = parse_arp(&f).unwrap();
        assert_eq!((r.op, r.sha), (1, Mac(sha)));
        assert_eq!(r.spa, Ipv4Addr::new(198, 19, 0, 2));
        assert_eq!(r.tpa, Ipv4Addr::new(198, 19, 0, 1));
        let m = external_mac(r.tpa);
        let reply = arp_reply(&r, m);
        assert_eq!(reply.len(), 60);
        assert_eq!(&reply[0..6], &sha);
        assert_eq!(&reply[6..12], &m.0);
        assert_eq!(&reply[20..22], &[0, 2]);
        assert_eq!(&reply[22..28], &m.0);
        assert_eq!(&reply[28..32], &[198, 19, 0, 1]);
        assert_eq!(&reply[38..42], &[198, 19, 0, 2]);
        // The reply parses back as a reply from the external address.
        let back = parse_arp(&reply).unwrap();
        assert_eq!(
            (back.op, back.sha, back.spa, back.tpa),
            (2, m, r.tpa, r.spa)
        );
        // Not taken: another operation, a probe, a multicast sender, a short frame.
        assert!(parse_arp(&arp(3, sha, [198, 19, 0, 2], [198, 19, 0, 1])).is_none());
        assert!(parse_arp(&arp(1, sha, [0; 4], [198, 19, 0, 1])).is_none());
        assert!(parse_arp(&arp(1, [1, 0, 0, 0, 0, 1], [1; 4], [2; 4])).is_none());
        assert!(parse_arp(&f[..41]).is_none());
    }

    #[test]
    fn requests_ask_from_the_external_address() {
        let (ext, gw) = (Ipv4Addr::new(198, 19, 0, 1), Ipv4Addr::new(198, 19, 0, 254));
        let q = arp_request(external_mac(ext), ext, gw);
        assert_eq!(&q[0..6], &[0xff; 6]);
        let p = parse_arp(&q).unwrap();
        assert_eq!((p.op, p.sha, p.spa, p.tpa), (1, external_mac(ext), ext, gw));
    }

    #[test]
    fn next_hops() {
        let ext = Ipv4Addr::new(198, 19, 0, 1);
        let far = Ipv4Addr::new(203, 0, 113, 2);
        let near = Ipv4Addr::new(198, 19, 0, 77);
        let gw = Ipv4Addr::new(198, 19, 0, 254);
        let direct = Uplink {
            port: 1,
            gateway: None,
            prefix: None,
        };
        assert_eq!(direct.next_hop(ext, far), far);
        let routed = Uplink {
            gateway: Some(gw),
            prefix: Some(24),
            ..direct
        };
        assert_eq!(routed.next_hop(ext, far), gw);
        assert_eq!(routed.next_hop(ext, near), near);
        let host_route = Uplink {
            prefix: None,
            ..routed
        };
        assert_eq!(host_route.next_hop(ext, near), gw);
    }

    #[test]
    fn ipv4_destinations() {
        let mut f = vec![0u8; 34];
        f[12] = 8;
        f[14] = 0x45;
        f[30..34].copy_from_slice(&[203, 0, 113, 2]);
        assert_eq!(ipv4_dst(&f), Some(Ipv4Addr::new(203, 0, 113, 2)));
        f[12] = 0x86;
        assert_eq!(ipv4_dst(&f), None);
        assert_eq!(ipv4_dst(&f[..20]), None);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(f in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_arp(&f);
            let _ = ipv4_dst(&f);
        }

        #[test]
        fn an_answer_parses_back_as_what_it_answers(
            sha in any::<[u8; 6]>(), spa in any::<[u8; 4]>(), tpa in any::<[u8; 4]>()
        ) {
            let f = arp(1, sha, spa, tpa);
            if let Some(r) = parse_arp(&f) {
                let reply = arp_reply(&r, external_mac(r.tpa));
                prop_assert_eq!(&reply[32..38], &sha);
                prop_assert_eq!(&reply[28..32], &tpa);
                prop_assert_eq!(Ipv4Addr::new(reply[38], reply[39], reply[40], reply[41]), r.spa);
            }
        }
    }
}
