//! IPv6 neighbour discovery answered from the registry: the IPv6 half of the overlay's
//! neighbour responder (ARP is answered by flows alone, `flows.rs`).
//!
//! Why here and not in flows: the switch can match and rewrite ARP's fields, but not
//! ICMPv6's neighbour discovery target (no `nd_target` field, no `move:` action), so a
//! flow sends neighbour solicitations of overlay endpoints to the controller (this agent,
//! over the switch's gRPC stream), which answers with a neighbour advertisement sent back
//! out of the asking port. No solicitation crosses the underlay. Duplicate address
//! detection (source `::`) stays on the host.
//!
//! The frames are untrusted (a container wrote them): [`parse_solicitation`] checks every
//! length, the hop limit (255, RFC 4861 7.1.1), the ICMPv6 checksum and the target, and
//! never panics (property tests below, fuzz target `overlay_values`).

use std::net::Ipv6Addr;

use proto::v1::{self, stream_message_request as smq, stream_message_response as smr};
use tokio_stream::wrappers::ReceiverStream;

use crate::api::Mac;
use crate::overlay::Overlay;
use crate::overlay::flows::{KIND_ND, is_agent_cookie};
use crate::vswitch::cookie;

const ETH_LEN: usize = 14;
const IPV6_LEN: usize = 40;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ICMPV6: u8 = 58;
const NS: u8 = 135;
const NA: u8 = 136;

/// A neighbour solicitation, as far as the answer needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    /// The asker's MAC address (Ethernet source).
    pub src_mac: Mac,
    /// The asker's address (never `::`: duplicate address detection is not answered).
    pub src_ip: Ipv6Addr,
    /// The address asked about.
    pub target: Ipv6Addr,
}

/// Why a frame is not a solicitation to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSolicitation {
    /// Shorter than its headers say.
    Truncated,
    /// Not IPv6 / ICMPv6 / type 135 code 0 without extension headers.
    NotNs,
    /// Hop limit not 255: it crossed a router.
    HopLimit,
    /// Wrong ICMPv6 checksum.
    Checksum,
    /// Source `::` (duplicate address detection) or a multicast target or source.
    Addresses,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn addr_at(b: &[u8], at: usize) -> Option<Ipv6Addr> {
    let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(s))
}

/// The ICMPv6 checksum over the pseudo-header and `icmp` (RFC 4443 2.3).
fn checksum(src: &Ipv6Addr, dst: &Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            sum += u32::from(w);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    let len = u32::try_from(icmp.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, ICMPV6]);
    add(icmp);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Reads a neighbour solicitation from an Ethernet frame.
pub fn parse_solicitation(f: &[u8]) -> Result<Solicitation, NotSolicitation> {
    use NotSolicitation as E;
    if f.len() < ETH_LEN + IPV6_LEN + 24 {
        return Err(E::Truncated);
    }
    if u16_at(f, 12) != Some(ETHERTYPE_IPV6) || f[ETH_LEN] >> 4 != 6 || f[ETH_LEN + 6] != ICMPV6 {
        return Err(E::NotNs);
    }
    let payload = usize::from(u16_at(f, ETH_LEN + 4).ok_or(E::Truncated)?);
    let icmp = f
        .get(ETH_LEN + IPV6_LEN..ETH_LEN + IPV6_LEN + payload)
        .ok_or(E::Truncated)?;
    if icmp.len() < 24 {
        return Err(E::Truncated);
    }
    if icmp[0] != NS || icmp[1] != 0 {
        return Err(E::NotNs);
    }
    if f[ETH_LEN + 7] != 255 {
        return Err(E::HopLimit);
    }
    let src = addr_at(f, ETH_LEN + 8).ok_or(E::Truncated)?;
    let dst = addr_at(f, ETH_LEN + 24).ok_or(E::Truncated)?;
    if checksum(&src, &dst, icmp) != 0 {
        return Err(E::Checksum);
    }
    let target = addr_at(icmp, 8).ok_or(E::Truncated)?;
    if src.is_unspecified() || src.is_multicast() || target.is_multicast() {
        return Err(E::Addresses);
    }
    let mut m = [0u8; 6];
    m.copy_from_slice(&f[6..12]);
    if m[0] & 1 == 1 {
        return Err(E::Addresses);
    }
    Ok(Solicitation {
        src_mac: Mac(m),
        src_ip: src,
        target,
    })
}

/// The neighbour advertisement answering `ns`: `target` is at `mac` (solicited, override,
/// with the target link-layer address option).
pub fn advertisement(ns: &Solicitation, mac: Mac) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_LEN + IPV6_LEN + 32);
    f.extend_from_slice(&ns.src_mac.0);
    f.extend_from_slice(&mac.0);
    f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    // IPv6: version 6, payload 32, ICMPv6, hop limit 255.
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, ICMPV6, 255]);
    f.extend_from_slice(&ns.target.octets());
    f.extend_from_slice(&ns.src_ip.octets());
    let mut icmp = vec![NA, 0, 0, 0, 0x60, 0, 0, 0];
    icmp.extend_from_slice(&ns.target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac.0);
    let c = checksum(&ns.target, &ns.src_ip, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&icmp);
    f
}

/// The MAC address of `target` on overlay network `nkey`, from this host's endpoints and
/// gateway and the registry.
fn lookup(ov: &Overlay, nkey: &str, target: Ipv6Addr) -> Option<Mac> {
    let local = ov.shared.local.lock();
    let net = local.nets.get(nkey)?;
    if let Some((g, m)) = net.gateway_v6
        && g == target
    {
        return Some(m);
    }
    if let Some(e) = local
        .eps
        .values()
        .find(|e| e.nkey == nkey && e.ipv6 == Some(target))
    {
        return Some(e.mac);
    }
    let v = ov.shared.view.lock();
    v.remote_endpoints(nkey, ov.host())
        .find(|(_, r)| r.ipv6 == Some(target))
        .map(|(_, r)| r.mac)
}

/// The answer to one packet-in of the responder's flow, or why there is none. The network
/// is the asking port's (the switch's packet-ins do not carry the metadata the pipeline
/// wrote).
fn answer(ov: &Overlay, pi: &v1::PacketIn) -> Result<v1::PacketOut, String> {
    let nkey = ov
        .shared
        .port_nets
        .lock()
        .get(&pi.in_port)
        .cloned()
        .ok_or_else(|| format!("port {} is no endpoint of an overlay network", pi.in_port))?;
    let ns = parse_solicitation(&pi.data).map_err(|e| format!("{e:?}"))?;
    let mac = lookup(ov, &nkey, ns.target)
        .ok_or_else(|| format!("{} is not an address of {nkey}", ns.target))?;
    Ok(v1::PacketOut {
        bridge: String::new(),
        in_port: Some(v1::PortRef {
            port: Some(v1::port_ref::Port::Number(pi.in_port)),
        }),
        actions: vec![v1::Action {
            action: Some(v1::action::Action::Output(v1::Output {
                port: Some(v1::PortRef {
                    port: Some(v1::port_ref::Port::Reserved(
                        v1::ReservedPort::InPort as i32,
                    )),
                }),
                max_len: None,
            })),
        }],
        data: advertisement(&ns, mac),
    })
}

/// Serves the switch's packet-ins of neighbour solicitations until the process ends,
/// reconnecting when the switch goes away.
pub async fn responder_loop(ov: Overlay, server: String) {
    loop {
        if ov.shared.local.lock().nets.is_empty() {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        if let Err(e) = serve(&ov, &server).await {
            tracing::debug!("neighbour responder: {e}; reconnecting");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn serve(ov: &Overlay, server: &str) -> Result<(), String> {
    let ep = crate::vswitch::parse_server(server)?;
    let channel = ep.connect().await.map_err(|e| e.to_string())?;
    let mut client = v1::switch_client::SwitchClient::new(channel);
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let hello = v1::StreamMessageRequest {
        update: Some(smq::Update::Arbitration(v1::Arbitration {
            bridge: ov.cfg.bridge.clone(),
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
    tracing::info!(bridge = %ov.cfg.bridge, "neighbour responder connected to the switch");
    while let Some(m) = events
        .message()
        .await
        .map_err(|e| e.message().to_string())?
    {
        match m.update {
            Some(smr::Update::PacketIn(pi)) => {
                if !is_agent_cookie(pi.cookie) || pi.cookie != cookie(KIND_ND) {
                    continue;
                }
                let out = match answer(ov, &pi) {
                    Ok(out) => out,
                    Err(why) => {
                        tracing::debug!("neighbour solicitation not answered: {why}");
                        ov.shared.health.lock().nd_unanswered += 1;
                        continue;
                    }
                };
                let msg = v1::StreamMessageRequest {
                    update: Some(smq::Update::PacketOut(out)),
                };
                tx.send(msg).await.map_err(|e| e.to_string())?;
                ov.shared.health.lock().nd_answered += 1;
            }
            Some(smr::Update::Arbitration(a)) if a.code != 0 => {
                return Err(format!("arbitration refused: {}", a.message));
            }
            _ => {}
        }
    }
    Err("stream ended".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A solicitation as a host's kernel sends it (to the solicited-node address).
    fn solicitation(src_mac: Mac, src: Ipv6Addr, target: Ipv6Addr, hop: u8) -> Vec<u8> {
        let t = target.octets();
        let dst = Ipv6Addr::new(
            0xff02,
            0,
            0,
            0,
            0,
            1,
            0xff00 | u16::from(t[13]),
            u16::from_be_bytes([t[14], t[15]]),
        );
        let mut f = vec![0x33, 0x33, 0xff, t[13], t[14], t[15]];
        f.extend_from_slice(&src_mac.0);
        f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, ICMPV6, hop]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&dst.octets());
        let mut icmp = vec![NS, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&t);
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&src_mac.0);
        let c = checksum(&src, &dst, &icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&icmp);
        f
    }

    #[test]
    fn answers_what_was_asked() {
        let mac = Mac([2, 0x42, 0, 0, 0, 2]);
        let src: Ipv6Addr = "fd00:1::2".parse().unwrap();
        let target: Ipv6Addr = "fd00:1::3".parse().unwrap();
        let f = solicitation(mac, src, target, 255);
        let ns = parse_solicitation(&f).unwrap();
        assert_eq!(ns.src_mac, mac);
        assert_eq!((ns.src_ip, ns.target), (src, target));
        let other = Mac([2, 0x42, 0, 0, 0, 3]);
        let na = advertisement(&ns, other);
        assert_eq!(&na[0..6], &mac.0);
        assert_eq!(&na[6..12], &other.0);
        let icmp = &na[ETH_LEN + IPV6_LEN..];
        assert_eq!(icmp[0], NA);
        assert_eq!(checksum(&target, &src, icmp), 0, "the checksum verifies");
        assert_eq!(&icmp[8..24], &target.octets());
        assert_eq!(&icmp[26..32], &other.0);
        // Bad hop limit, bad checksum, DAD.
        assert_eq!(
            parse_solicitation(&solicitation(mac, src, target, 64)),
            Err(NotSolicitation::HopLimit)
        );
        let mut bad = f.clone();
        bad[ETH_LEN + IPV6_LEN + 10] ^= 1;
        assert_eq!(parse_solicitation(&bad), Err(NotSolicitation::Checksum));
        let dad = solicitation(mac, Ipv6Addr::UNSPECIFIED, target, 255);
        assert_eq!(parse_solicitation(&dad), Err(NotSolicitation::Addresses));
        assert_eq!(
            parse_solicitation(&f[..60]),
            Err(NotSolicitation::Truncated)
        );
    }

    /// A solicitation scapy built (`fuzz/seeds/overlay_values/ns.bin`): an independent
    /// encoder agrees with the parser.
    #[test]
    fn scapy_solicitation_parses() {
        let f = include_bytes!("../../../fuzz/seeds/overlay_values/ns.bin");
        let ns = parse_solicitation(f).unwrap();
        assert_eq!(ns.target, "fd00:201::3".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ns.src_ip, "fd00:201::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ns.src_mac.to_string(), "02:42:0a:c9:00:02");
    }

    proptest! {
        #[test]
        fn never_panics(f in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_solicitation(&f);
        }

        #[test]
        fn built_solicitations_parse(m in any::<[u8; 6]>(), s in any::<u128>(), t in any::<u128>()) {
            let mut m = m;
            m[0] &= 0xfe;
            let (src, target) = (Ipv6Addr::from(s), Ipv6Addr::from(t));
            let r = parse_solicitation(&solicitation(Mac(m), src, target, 255));
            let addresses_ok = !src.is_unspecified() && !src.is_multicast() && !target.is_multicast();
            prop_assert_eq!(r.is_ok(), addresses_ok);
            if let Ok(ns) = r {
                prop_assert_eq!(ns.target, target);
                let na = advertisement(&ns, Mac(m));
                prop_assert_eq!(checksum(&target, &src, &na[ETH_LEN + IPV6_LEN..]), 0);
            }
        }

        #[test]
        fn corrupted_solicitations_never_panic(
            s in any::<u128>(), t in any::<u128>(), at in 0usize..86, x in 1u8..=255,
        ) {
            let mut f = solicitation(Mac([2, 0, 0, 0, 0, 1]), Ipv6Addr::from(s), Ipv6Addr::from(t), 255);
            f[at] ^= x;
            let _ = parse_solicitation(&f);
        }
    }
}
