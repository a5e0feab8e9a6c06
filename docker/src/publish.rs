//! Port publishing (`docker run -p 8080:80`) served by the switch's own conntrack and NAT,
//! on a network's uplink.
//!
//! Where published traffic enters the switch: the host's kernel delivers packets for its
//! own addresses locally, so traffic to a host address never crosses the switch. A network
//! created with `-o vswitch.uplink=IFACE -o vswitch.external_ip=A` has an uplink: the host
//! interface IFACE is a port of the network's bridge facing the outside (a NIC, or a veth
//! to a router), and A is the network's address there, owned by the switch, not the
//! kernel. The plugin answers ARP for A on the uplink and learns who asked (as OVN's
//! gateway router learns its MAC bindings), and every `-p` of a container on the network is
//! a pair of flows: traffic arriving on the uplink for A:HOST_PORT is committed with
//! destination NAT to the container (`ct(commit,nat(dst=C:PORT))`), and the container's
//! replies are un-NATed (`ct(nat)`) back to A:HOST_PORT, addressed to the asker's MAC and
//! sent out of the uplink. Nothing of it passes through the host's kernel or iptables.
//!
//! Flows (every cookie is the plugin's, a kind below, and A in its low 32 bits; zone Z is
//! the network's VLAN id, M the MAC address of A, G the gateway's):
//!
//! | table | priority | match | actions |
//! | --- | --- | --- | --- |
//! | 0 | 400 | `in_port=U,arp,arp_op=1,arp_tpa=A` | `CONTROLLER` (answered and learned by the plugin) |
//! | 0 | 300 | `in_port=U,tcp,nw_dst=A,tp_dst=H` (per `-p`) | `ct(commit,zone=Z,nat(dst=C:P)),mod_dl_src:G,mod_dl_dst:Cmac,output:EP` |
//! | 0 | 300 | `in_port=EP,tcp,nw_src=C,tp_src=P` (per `-p`) | `ct(zone=Z,nat,table=20)` |
//! | 0 | 1 | `in_port=U` | drop (nothing else enters from outside) |
//! | 20 | 100 | `ct_state=+trk+est,ip,nw_src=A` (a reply, un-NATed) | `mod_dl_src:M,goto_table:21` |
//! | 20 | 0 | any (the container's own traffic from that port) | `NORMAL` |
//! | 21 | 100 | `ip,nw_src=A,nw_dst=X` (per learned neighbour X) | `mod_dl_dst:Xmac,output:U` |
//! | 21 | 0 | any (no neighbour known) | drop |
//!
//! The flows are computed from the state ([`desired`]) and written as a difference against
//! the plugin's flows read back from the switch ([`crate::driver::Driver::sync_published`]),
//! after each change and in every reconciliation pass; learned neighbours stay until their
//! network's uplink is gone. They live in the switch's store, so published ports keep
//! working while the plugin is down (new askers get no ARP answer until it is back).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::v1::{self, stream_message_request as smq, stream_message_response as smr};
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{Id, Mac, PortMapping, Proto};
use crate::state::{Endpoint, Network, State};
use crate::vswitch::{COOKIE_BASE, COOKIE_KIND_MASK, Switch, cookie};

/// Per-network uplink flows (the drop, the un-NAT, the tables' defaults).
pub const KIND_UPLINK: u64 = 9;
/// The ARP flow of an external address: its packet-ins are answered.
pub const KIND_ARP: u64 = 10;
/// A published port's pair of flows.
pub const KIND_PUBLISH: u64 = 11;
/// A learned neighbour on the uplink.
pub const KIND_NEIGH: u64 = 12;
/// Replies after `ct(nat)`.
pub const TABLE_UNNAT: u32 = 20;
/// The uplink's neighbours.
pub const TABLE_NEIGH: u32 = 21;

/// The MAC address the switch answers ARP with for external address `a`: locally
/// administered, `02:56` ("V") and the four octets, stable across restarts.
pub fn external_mac(a: Ipv4Addr) -> Mac {
    let o = a.octets();
    Mac([0x02, 0x56, o[0], o[1], o[2], o[3]])
}

/// The cookie of a flow of `kind` for external address `a`.
pub fn cookie_of(kind: u64, a: Ipv4Addr) -> u64 {
    cookie(kind) | u64::from(u32::from(a))
}

/// The external address a cookie of these kinds carries.
pub fn external_of(c: u64) -> Ipv4Addr {
    Ipv4Addr::from((c & 0xffff_ffff) as u32)
}

/// The kind of one of the plugin's cookies.
pub fn kind_of(c: u64) -> u64 {
    (c & COOKIE_KIND_MASK & !(0xffff << 48)) >> 40
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Sctp => "sctp",
    }
}

/// Why a `-p` mapping cannot be served; the message is what `docker run` shows.
pub fn check_mappings(
    state: &State,
    nid: &Id,
    eid: &Id,
    ep: &Endpoint,
    maps: &[PortMapping],
) -> Result<(), String> {
    if maps.is_empty() {
        return Ok(());
    }
    let Some(net) = state.networks.get(nid) else {
        return Err(format!("network {nid} is not known"));
    };
    let (Some(_), Some(ext)) = (&net.options.uplink, net.options.external_ip) else {
        return Err(
            "port publishing (-p) on this network needs an uplink: create the network \
                    with -o vswitch.uplink=IFACE -o vswitch.external_ip=ADDRESS (published \
                    ports are served at that address by the switch's NAT; the host's own \
                    addresses are not used)"
                .into(),
        );
    };
    if !matches!(ep.address, Some(a) if a.addr.is_ipv4()) {
        return Err("port publishing (-p) needs the container's IPv4 address".into());
    }
    for m in maps {
        if m.proto == Proto::Sctp {
            return Err("-p .../sctp is not supported on vswitch networks (tcp, udp)".into());
        }
        if m.host_port == 0 {
            return Err(format!(
                "-p {}: give the host port (-p HOST:{}); vswitch networks do not pick one",
                m.port, m.port
            ));
        }
        if let Some(h) = m.host_ip
            && !h.is_unspecified()
            && h != IpAddr::V4(ext)
        {
            return Err(format!(
                "-p {h}:{}:{}: published ports of this network are at its \
                 vswitch.external_ip {ext}; leave the address out or give {ext}",
                m.host_port, m.port
            ));
        }
        for (other_id, other) in &state.endpoints {
            if other_id == eid {
                continue;
            }
            let Some(on) = state.networks.get(&other.network) else {
                continue;
            };
            if on.options.external_ip != Some(ext) || on.options.bridge != net.options.bridge {
                continue;
            }
            if other
                .port_map
                .iter()
                .any(|o| o.proto == m.proto && o.host_port == m.host_port)
            {
                return Err(format!(
                    "{ext}:{}/{} is already published by endpoint {other_id}",
                    m.host_port,
                    proto_name(m.proto)
                ));
            }
        }
    }
    Ok(())
}

fn parse(text: &str) -> Result<v1::Flow, String> {
    proto::flow_text::parse_flow(text).map_err(|e| format!("{text}: {e}"))
}

fn network_flows(net: &Network, uplink: u32, ext: Ipv4Addr) -> Vec<String> {
    let m = external_mac(ext);
    let c = |k| format!("{:#x}", cookie_of(k, ext));
    vec![
        format!(
            "cookie={},table=0,priority=400,in_port={uplink},arp,arp_op=1,arp_tpa={ext},\
             actions=controller",
            c(KIND_ARP)
        ),
        format!(
            "cookie={},table=0,priority=1,in_port={uplink},actions=drop",
            c(KIND_UPLINK)
        ),
        format!(
            "cookie={},table={TABLE_UNNAT},priority=100,ct_state=+trk+est,ct_zone={},ip,\
             nw_src={ext},actions=mod_dl_src:{m},goto_table:{TABLE_NEIGH}",
            c(KIND_UPLINK),
            net.vlan
        ),
        format!(
            "cookie={},table={TABLE_UNNAT},priority=0,actions=NORMAL",
            c(KIND_UPLINK)
        ),
        format!(
            "cookie={},table={TABLE_NEIGH},priority=0,actions=drop",
            c(KIND_UPLINK)
        ),
    ]
}

fn mapping_flows(
    net: &Network,
    uplink: u32,
    ext: Ipv4Addr,
    gw: Mac,
    ep: (&Endpoint, u32),
    m: &PortMapping,
) -> Vec<String> {
    let (ep, ep_port) = ep;
    let Some(IpAddr::V4(addr)) = ep.address.map(|a| a.addr) else {
        return Vec::new();
    };
    let c = format!("{:#x}", cookie_of(KIND_PUBLISH, ext));
    let (p, z) = (proto_name(m.proto), net.vlan);
    vec![
        format!(
            "cookie={c},table=0,priority=300,in_port={uplink},{p},nw_dst={ext},tp_dst={},\
             actions=ct(commit,zone={z},nat(dst={addr}:{})),mod_dl_src:{gw},\
             mod_dl_dst:{},output:{ep_port}",
            m.host_port, m.port, ep.mac
        ),
        format!(
            "cookie={c},table=0,priority=300,in_port={ep_port},{p},nw_src={addr},tp_src={},\
             actions=ct(zone={z},nat,table={TABLE_UNNAT})",
            m.port
        ),
    ]
}

/// The flows of bridge `bridge` that the state wants (every network with an uplink, every
/// joined endpoint's `-p`), and the external addresses in use there. Ports are written
/// by number (`ports`: the bridge's, by name), as the switch reads flows back, so that
/// wanted and installed flows compare equal; a flow of a port the bridge does not have
/// (yet) is left out.
pub fn desired(
    state: &State,
    bridge: &str,
    ports: &HashMap<String, u32>,
) -> Result<(Vec<v1::Flow>, BTreeSet<Ipv4Addr>), String> {
    let mut text = Vec::new();
    let mut addrs = BTreeSet::new();
    let mut gw_macs: BTreeMap<&Id, Mac> = BTreeMap::new();
    for (id, net) in &state.networks {
        let (Some(uplink), Some(ext)) = (&net.options.uplink, net.options.external_ip) else {
            continue;
        };
        if net.options.bridge != bridge {
            continue;
        }
        addrs.insert(ext);
        let Some(&uplink) = ports.get(uplink) else {
            continue;
        };
        text.extend(network_flows(net, uplink, ext));
        if let Some(m) = crate::driver::Driver::gateway_mac(net) {
            gw_macs.insert(id, m);
        }
    }
    for ep in state.endpoints.values() {
        let Some(net) = state.networks.get(&ep.network) else {
            continue;
        };
        let (Some(uplink), Some(ext), Some(gw)) = (
            &net.options.uplink,
            net.options.external_ip,
            gw_macs.get(&ep.network),
        ) else {
            continue;
        };
        let (Some(&uplink), Some(&ep_port)) = (ports.get(uplink), ports.get(&ep.port)) else {
            continue;
        };
        if ep.sandbox.is_none() {
            continue;
        }
        for m in &ep.port_map {
            text.extend(mapping_flows(net, uplink, ext, *gw, (ep, ep_port), m));
        }
    }
    let flows = text.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
    Ok((flows, addrs))
}

/// The learned-neighbour flow: replies from `ext` to `ip` go to `mac` out of port `uplink`
/// (the port number the ARP request came in on).
pub fn neighbour_flow(
    ext: Ipv4Addr,
    ip: Ipv4Addr,
    mac: Mac,
    uplink: u32,
) -> Result<v1::Flow, String> {
    parse(&format!(
        "cookie={:#x},table={TABLE_NEIGH},priority=100,ip,nw_src={ext},nw_dst={ip},\
         actions=mod_dl_dst:{mac},output:{uplink}",
        cookie_of(KIND_NEIGH, ext)
    ))
}

/// Selects every flow of the plugin (any kind) when reading.
pub const PLUGIN_MASK: u64 = 0xffff << 48;

/// Whether a cookie is one of this module's (publishing) kinds.
pub fn is_publish_cookie(c: u64) -> bool {
    c & PLUGIN_MASK == COOKIE_BASE && (KIND_UPLINK..=KIND_NEIGH).contains(&kind_of(c))
}

// ---- ARP on the uplink ----

const ETH_LEN: usize = 14;
const ARP_LEN: usize = 28;

/// An ARP request, as far as answering and learning need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRequest {
    /// The asker's hardware address (ARP sender).
    pub sha: Mac,
    /// The asker's address (ARP sender).
    pub spa: Ipv4Addr,
    /// The address asked about.
    pub tpa: Ipv4Addr,
}

/// Parses an untagged Ethernet frame holding an ARP request for IPv4 over Ethernet.
/// `None` for anything else: short frames, replies, other hardware or protocol types, a
/// multicast or zero sender, a probe (sender address 0.0.0.0). Never panics.
pub fn parse_arp_request(frame: &[u8]) -> Option<ArpRequest> {
    let f = frame.get(..ETH_LEN + ARP_LEN)?;
    let a = &f[ETH_LEN..];
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    if be16(&f[12..14]) != 0x0806
        || be16(&a[0..2]) != 1
        || be16(&a[2..4]) != 0x0800
        || a[4] != 6
        || a[5] != 4
        || be16(&a[6..8]) != 1
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
    Some(ArpRequest {
        sha: Mac(sha),
        spa,
        tpa,
    })
}

/// The ARP reply to `req`: `req.tpa` is at `mac`. Padded to Ethernet's 60 bytes.
pub fn arp_reply(req: &ArpRequest, mac: Mac) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&req.sha.0);
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&req.tpa.octets());
    f.extend_from_slice(&req.sha.0);
    f.extend_from_slice(&req.spa.octets());
    f.resize(60, 0);
    f
}

/// How long a learned neighbour is taken as written before a new request writes it again.
const RELEARN: Duration = Duration::from_secs(10);

/// The bridges that have networks with uplinks: the responder keeps one stream on each.
pub type UplinkBridges = Arc<parking_lot::Mutex<BTreeSet<String>>>;

/// Keeps an ARP responder on every bridge of `bridges` until the process ends.
pub async fn responder_loop(bridges: UplinkBridges, server: String) {
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        let want = bridges.lock().clone();
        running.retain(|b, h| {
            let keep = want.contains(b) && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        for b in want {
            if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(b) {
                let (bridge, server) = (slot.key().clone(), server.clone());
                slot.insert(tokio::spawn(async move {
                    if let Err(e) = serve(&bridge, &server).await {
                        tracing::debug!(%bridge, "uplink ARP responder: {e}; reconnecting");
                    }
                }));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn serve(bridge: &str, server: &str) -> Result<(), String> {
    let mut sw = Switch::new(server)?;
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
    // What was learned and written when, so a repeated request costs no write; written
    // again after [`RELEARN`] in case the flow was removed meanwhile (its network went and
    // came back with the same address).
    let mut known: HashMap<(Ipv4Addr, Ipv4Addr), (Mac, u32, Instant)> = HashMap::new();
    while let Some(m) = events
        .message()
        .await
        .map_err(|e| e.message().to_string())?
    {
        let Some(smr::Update::PacketIn(pi)) = m.update else {
            continue;
        };
        if pi.cookie & !0xffff_ffff != cookie(KIND_ARP) {
            continue;
        }
        let ext = external_of(pi.cookie);
        let Some(req) = parse_arp_request(&pi.data).filter(|r| r.tpa == ext) else {
            tracing::debug!(%bridge, "uplink: a packet-in that is no ARP request for {ext}");
            continue;
        };
        let out = v1::PacketOut {
            bridge: String::new(),
            in_port: None,
            actions: vec![v1::Action {
                action: Some(v1::action::Action::Output(v1::Output {
                    port: Some(v1::PortRef {
                        port: Some(v1::port_ref::Port::Number(pi.in_port)),
                    }),
                    max_len: None,
                })),
            }],
            data: arp_reply(&req, external_mac(ext)),
        };
        let msg = v1::StreamMessageRequest {
            update: Some(smq::Update::PacketOut(out)),
        };
        tx.send(msg).await.map_err(|e| e.to_string())?;
        if known
            .get(&(ext, req.spa))
            .is_some_and(|k| (k.0, k.1) == (req.sha, pi.in_port) && k.2.elapsed() < RELEARN)
        {
            continue;
        }
        let flow = neighbour_flow(ext, req.spa, req.sha, pi.in_port)?;
        match sw
            .write(bridge, vec![crate::overlay::flows::insert_of(&flow)])
            .await
        {
            Ok(()) => {
                tracing::info!(%bridge, neighbour = %req.spa, mac = %req.sha, %ext, "uplink neighbour learned");
                known.insert((ext, req.spa), (req.sha, pi.in_port, Instant::now()));
            }
            Err(e) => tracing::warn!(%bridge, "uplink neighbour {}: {e}", req.spa),
        }
    }
    Err("stream ended".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Cidr, IpamData};
    use crate::options::NetOptions;
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
        let r = parse_arp_request(&f).unwrap();
        assert_eq!(r.sha, Mac(sha));
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
        // Not requests: a reply, a probe, a multicast sender, a short frame.
        assert!(parse_arp_request(&arp(2, sha, [198, 19, 0, 2], [198, 19, 0, 1])).is_none());
        assert!(parse_arp_request(&arp(1, sha, [0; 4], [198, 19, 0, 1])).is_none());
        assert!(parse_arp_request(&arp(1, [1, 0, 0, 0, 0, 1], [1; 4], [2; 4])).is_none());
        assert!(parse_arp_request(&f[..41]).is_none());
    }

    fn net(uplink: bool) -> Network {
        Network {
            options: NetOptions {
                uplink: uplink.then(|| "eth9".to_string()),
                external_ip: uplink.then(|| Ipv4Addr::new(192, 0, 2, 10)),
                ..NetOptions::default()
            },
            vlan: 7,
            internal: false,
            ipv6: false,
            ipv4: vec![IpamData {
                pool: "172.30.0.0/24".parse().unwrap(),
                gateway: Some("172.30.0.1/24".parse().unwrap()),
                aux: Default::default(),
            }],
            ipv6_data: Vec::new(),
            gateway_port: Some("vdg0123456789ab".into()),
            overlay: None,
        }
    }

    fn ep(nid: &Id, n: u8, maps: Vec<PortMapping>) -> Endpoint {
        Endpoint {
            network: nid.clone(),
            port: format!("vd00000000000{n}p"),
            inner: format!("vd00000000000{n}c"),
            mac: Mac([2, 0x42, 172, 30, 0, n]),
            address: Some(Cidr {
                addr: IpAddr::V4(Ipv4Addr::new(172, 30, 0, n)),
                prefix: 24,
            }),
            address_v6: None,
            sandbox: Some("/var/run/docker/netns/x".into()),
            port_map: maps,
        }
    }

    fn map(host: u16, port: u16) -> PortMapping {
        PortMapping {
            proto: Proto::Tcp,
            port,
            host_ip: None,
            host_port: host,
            host_port_end: host,
        }
    }

    fn id(c: char) -> Id {
        c.to_string().repeat(64).parse().unwrap()
    }

    #[test]
    fn flows_of_a_published_port_parse_and_name_everything() {
        let mut s = State::default();
        let nid = id('a');
        s.networks.insert(nid.clone(), net(true));
        s.endpoints
            .insert(id('1'), ep(&nid, 2, vec![map(8080, 80)]));
        let mut idle = ep(&nid, 3, vec![map(8081, 80)]);
        idle.sandbox = None; // left: not served
        s.endpoints.insert(id('2'), idle);
        let ports: HashMap<String, u32> =
            [("eth9", 1), ("vd000000000002p", 2), ("vd000000000003p", 3)]
                .into_iter()
                .map(|(n, p)| (n.to_string(), p))
                .collect();
        let (flows, addrs) = desired(&s, "br-docker", &ports).unwrap();
        assert_eq!(
            addrs.into_iter().collect::<Vec<_>>(),
            [Ipv4Addr::new(192, 0, 2, 10)]
        );
        assert_eq!(flows.len(), 5 + 2);
        let text: Vec<String> = flows.iter().map(proto::flow_text::format_flow).collect();
        let all = text.join("\n");
        assert!(
            all.contains("tcp,in_port=1,nw_dst=192.0.2.10,tp_dst=8080"),
            "{all}"
        );
        assert!(all.contains("output:2"), "{all}");
        assert!(all.contains("nat(dst=172.30.0.2:80)"), "{all}");
        assert!(!all.contains("8081"), "{all}");
        assert!(flows.iter().all(|f| is_publish_cookie(f.cookie)));
        assert!(
            flows
                .iter()
                .all(|f| external_of(f.cookie) == Ipv4Addr::new(192, 0, 2, 10))
        );
        // Another bridge, or no uplink: nothing.
        assert!(desired(&s, "br-other", &ports).unwrap().0.is_empty());
        assert!(
            desired(&s, "br-docker", &HashMap::new())
                .unwrap()
                .0
                .is_empty()
        );
        s.networks.insert(nid, net(false));
        assert!(desired(&s, "br-docker", &ports).unwrap().0.is_empty());
        let n = neighbour_flow(
            Ipv4Addr::new(192, 0, 2, 10),
            Ipv4Addr::new(192, 0, 2, 1),
            Mac([2, 0, 0, 0, 0, 1]),
            3,
        )
        .unwrap();
        assert_eq!(kind_of(n.cookie), KIND_NEIGH);
    }

    #[test]
    fn mappings_are_checked() {
        let mut s = State::default();
        let nid = id('a');
        s.networks.insert(nid.clone(), net(true));
        let e1 = ep(&nid, 2, vec![map(8080, 80)]);
        s.endpoints.insert(id('1'), e1.clone());
        let e2 = ep(&nid, 3, Vec::new());
        assert!(check_mappings(&s, &nid, &id('2'), &e2, &[map(8081, 80)]).is_ok());
        let e = check_mappings(&s, &nid, &id('2'), &e2, &[map(8080, 80)]).unwrap_err();
        assert!(e.contains("already published"), "{e}");
        assert!(check_mappings(&s, &nid, &id('1'), &e1, &[map(8080, 80)]).is_ok());
        let e = check_mappings(&s, &nid, &id('2'), &e2, &[map(0, 80)]).unwrap_err();
        assert!(e.contains("host port"), "{e}");
        let mut m = map(9000, 80);
        m.host_ip = Some("127.0.0.1".parse().unwrap());
        let e = check_mappings(&s, &nid, &id('2'), &e2, &[m]).unwrap_err();
        assert!(e.contains("192.0.2.10"), "{e}");
        s.networks.insert(nid.clone(), net(false));
        let e = check_mappings(&s, &nid, &id('2'), &e2, &[map(8081, 80)]).unwrap_err();
        assert!(
            e.contains("vswitch.uplink") && e.contains("vswitch.external_ip"),
            "{e}"
        );
        assert!(check_mappings(&s, &nid, &id('2'), &e2, &[]).is_ok());
    }

    proptest! {
        #[test]
        fn arp_parsing_never_panics(f in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_arp_request(&f);
        }

        #[test]
        fn an_answer_parses_back_as_what_it_answers(
            sha in any::<[u8; 6]>(), spa in any::<[u8; 4]>(), tpa in any::<[u8; 4]>()
        ) {
            let f = arp(1, sha, spa, tpa);
            if let Some(r) = parse_arp_request(&f) {
                let reply = arp_reply(&r, external_mac(r.tpa));
                prop_assert_eq!(&reply[32..38], &sha);
                prop_assert_eq!(&reply[28..32], &tpa);
                prop_assert_eq!(Ipv4Addr::new(reply[38], reply[39], reply[40], reply[41]), r.spa);
            }
        }
    }
}
