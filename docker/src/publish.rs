//! Networks with an uplink: port publishing (`docker run -p 8080:80`), outbound
//! masquerade and hairpin, all served by the switch's own conntrack and NAT.
//!
//! Where the traffic enters the switch: the host's kernel delivers packets for its own
//! addresses locally, so traffic to a host address never crosses the switch. A network
//! created with `-o vswitch.uplink=IFACE -o vswitch.external_ip=A[/LEN]` has an uplink:
//! the host interface IFACE is a port of the network's bridge facing the outside (a NIC,
//! or a veth to a router), and A is the network's address there, owned by the switch, not
//! the kernel. The plugin answers ARP for A on the uplink and resolves the next hops of
//! what leaves by it ([`crate::neigh`]): the destination when on the segment A/LEN, else
//! `vswitch.uplink_gateway`. Nothing of it passes through the host's kernel or iptables.
//!
//! - **Published ports**: a new connection from the uplink to A:HOST_PORT is committed with
//!   destination NAT to the container (`ct(commit,nat(dst=C:PORT))`) in the network's zone
//!   (its VLAN id); later packets are translated by `ct(nat)`.
//! - **Masquerade**: what a container sends to its gateway's MAC address, other than to the
//!   gateway's own address, is committed with source NAT to A
//!   (`ct(commit,nat(src=A:1024-65535))`, the same zone, so a published connection's
//!   replies are un-DNATed by the same action) and leaves by the uplink towards its next
//!   hop. Replies from the uplink are un-NATed by `ct(nat)` and delivered to the container.
//! - **Hairpin**: a container (or the host, through its gateway port) reaching A is
//!   translated twice, as Docker's hairpin NAT does: DNAT to the published container in
//!   the network's zone, then SNAT to A in a second zone (VLAN + 4096: a connection is
//!   translated once per zone), so that the container's replies come back through the
//!   switch. The replies are un-SNATed first, then un-DNATed.
//!
//! Flows (every cookie is the plugin's, a kind below, and A in its low 32 bits; Zd is the
//! network's VLAN id, Zs = Zd + 4096, M the MAC address of A, G the gateway's; per
//! endpoint EP with address C and MAC Cm; per `-p` H -> C:P):
//!
//! | table | priority | match | actions |
//! | --- | --- | --- | --- |
//! | 0 | 400 | `in_port=U,arp,arp_op=1/2,arp_tpa=A` | `CONTROLLER` (answered, learned: `neigh`) |
//! | 0 | 300 | `in_port=U,ip,nw_dst=A` | `ct(zone=Zd,nat,table=22)` |
//! | 0 | 270 | `in_port=EP,ip,nw_dst=A` (and the gateway port) | `ct(zone=Zs,nat,table=23)` (hairpin) |
//! | 0 | 260 | `in_port=EP,ip,dl_dst=G,nw_dst=gateway` | `[set_queue:Q,]NORMAL` (the host) |
//! | 0 | 250 | `in_port=EP,ip,dl_dst=G` | `ct(commit,zone=Zd,nat(src=A:1024-65535),table=20)` |
//! | 0 | 1 | `in_port=U` | drop (nothing else enters from outside) |
//! | 20 | 100 | `ct_state=+trk,ct_zone=Zd,ip,nw_src=A` | `mod_dl_src:M,goto_table:21` |
//! | 21 | 100 | `ip,nw_src=A,nw_dst=X` (learned neighbour X) | `mod_dl_dst:Xm,output:U` |
//! | 21 | 60 | `ip,nw_src=A,nw_dst=A/LEN` (with a gateway) | `CONTROLLER` (resolve X) |
//! | 21 | 50 | `ip,nw_src=A` (gateway learned) | `mod_dl_dst:GWm,output:U` |
//! | 21 | 1 | `ip,nw_src=A` | `CONTROLLER` (resolve the next hop) |
//! | 22 | 200 | `ct_state=+trk+est` or `+trk+rel`, `ct_zone=Zd` | `goto_table:26` |
//! | 22 | 150 | `ct_state=+trk+dnat,ct_zone=Zd` (a retransmitted SYN, translated) | `goto_table:26` |
//! | 22 | 100 | `ct_state=+trk+new,ct_zone=Zd,tcp,nw_dst=A,tp_dst=H` (per `-p`) | `ct(commit,zone=Zd,nat(dst=C:P),table=26)` |
//! | 23 | 200 | `ct_state=+trk+est,ct_zone=Zs` (a hairpin reply, un-SNATed) | `ct(zone=Zd,nat,table=26)` |
//! | 23 | 100 | `ct_state=+trk,ct_zone=Zs` | `ct(zone=Zd,nat,table=24)` |
//! | 24 | 200 | `ct_state=+trk+est,ct_zone=Zd` | `goto_table:25` |
//! | 24 | 150 | `ct_state=+trk+dnat,ct_zone=Zd` | `goto_table:25` |
//! | 24 | 100 | `ct_state=+trk+new,ct_zone=Zd,tcp,nw_dst=A,tp_dst=H` (per `-p`) | `ct(commit,zone=Zd,nat(dst=C:P),table=25)` |
//! | 25 | 100 | `ct_zone=Zd,ip` | `ct(commit,zone=Zs,nat(src=A),table=26)` |
//! | 26 | 110 | `in_port=EP,ip,nw_dst=C` (hairpinned to itself) | `mod_dl_src:G,mod_dl_dst:Cm,in_port` |
//! | 26 | 100 | `ip,nw_dst=C` (and the gateway's address) | `mod_dl_src:G,mod_dl_dst:Cm,output:EP` |
//! | 20-26 | 0 | any | drop |
//!
//! The flows are computed from the state ([`desired`]) and written as a difference against
//! the plugin's flows read back from the switch (`Driver::sync_published`), after each
//! change and in every reconciliation pass; learned neighbours stay until their network's
//! uplink is gone. They live in the switch's store, so published ports and the way out
//! keep working while the plugin is down (new neighbours are not resolved until it is
//! back).

use std::net::{IpAddr, Ipv4Addr};

use crate::api::{Cidr, Id, Mac, PortMapping, Proto};
use crate::options::NetOptions;
use crate::state::{Endpoint, State};
use crate::vswitch::{COOKIE_BASE, COOKIE_KIND_MASK, cookie};

mod flows;
pub use flows::{MASQ_PORTS, desired, gateway_flow, hairpin_zone, nat_zone, neighbour_flow};

/// Per-network uplink flows (the drops, the un-NAT, the tables' defaults).
pub const KIND_UPLINK: u64 = 9;
/// The ARP flows of an external address: its packet-ins are answered and learned.
pub const KIND_ARP: u64 = 10;
/// A published port's flows.
pub const KIND_PUBLISH: u64 = 11;
/// A learned neighbour (or the gateway) on the uplink.
pub const KIND_NEIGH: u64 = 12;
/// Traffic leaving by the uplink to a next hop not known yet: its packet-ins are resolved.
pub const KIND_RESOLVE: u64 = 13;
/// An endpoint's masquerade, hairpin and delivery flows (and the host's).
pub const KIND_MASQ: u64 = 14;
/// Leaving by the uplink, after SNAT (or un-DNAT).
pub const TABLE_OUT: u32 = 20;
/// The uplink's neighbours.
pub const TABLE_NEIGH: u32 = 21;
/// Arriving from the uplink, after `ct(nat)`.
pub const TABLE_IN: u32 = 22;
/// Hairpin, after `ct(nat)` in the hairpin zone.
pub const TABLE_HAIRPIN_UNSNAT: u32 = 23;
/// Hairpin, after `ct(nat)` in the network's zone.
pub const TABLE_HAIRPIN_DNAT: u32 = 24;
/// Hairpin: SNAT to the external address.
pub const TABLE_HAIRPIN_SNAT: u32 = 25;
/// Delivery to an endpoint (or the host) by its address.
pub const TABLE_DELIVER: u32 = 26;

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

/// Why a network's uplink options cannot work, given the other networks of the state:
/// the message is what `docker network create` shows.
pub fn check_network(state: &State, id: &Id, o: &NetOptions, pools: &[Cidr]) -> Result<(), String> {
    let Some(ext) = o.external_ip else {
        return Ok(());
    };
    for p in pools {
        if p.contains(IpAddr::V4(ext)) {
            return Err(format!(
                "option vswitch.external_ip={ext}: inside the network's own subnet {p}; \
                 the external address is on the uplink's segment, outside the network"
            ));
        }
        if let Some(g) = o.uplink_gateway.filter(|g| p.contains(IpAddr::V4(*g))) {
            return Err(format!(
                "option vswitch.uplink_gateway={g}: inside the network's own subnet {p}; \
                 the uplink's gateway is a router on the uplink's segment"
            ));
        }
    }
    for (other_id, other) in &state.networks {
        if other_id != id && other.options.external_ip == Some(ext) {
            return Err(format!(
                "option vswitch.external_ip={ext}: network {other_id} has it already; each \
                 network needs its own external address (the switch tracks and translates \
                 its connections per network)"
            ));
        }
    }
    Ok(())
}

/// Selects every flow of the plugin (any kind) when reading.
pub const PLUGIN_MASK: u64 = 0xffff << 48;

/// Whether a cookie is one of this module's kinds.
pub fn is_publish_cookie(c: u64) -> bool {
    c & PLUGIN_MASK == COOKIE_BASE && (KIND_UPLINK..=KIND_MASQ).contains(&kind_of(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Cidr, IpamData};
    use crate::options::NetOptions;
    use crate::state::Network;
    use std::collections::HashMap;

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

    fn ports() -> HashMap<String, u32> {
        [
            ("eth9", 1),
            ("vd000000000002p", 2),
            ("vd000000000003p", 3),
            ("vdg0123456789ab", 4),
        ]
        .into_iter()
        .map(|(n, p)| (n.to_string(), p))
        .collect()
    }

    #[test]
    fn flows_of_an_uplink_parse_and_name_everything() {
        let mut s = State::default();
        let nid = id('a');
        s.networks.insert(nid.clone(), net(true));
        s.endpoints
            .insert(id('1'), ep(&nid, 2, vec![map(8080, 80)]));
        let mut idle = ep(&nid, 3, vec![map(8081, 80)]);
        idle.sandbox = None; // left: not served
        s.endpoints.insert(id('2'), idle);
        let ports = ports();
        let (flows, addrs) = desired(&s, "br-docker", &ports).unwrap();
        let ext = Ipv4Addr::new(192, 0, 2, 10);
        assert_eq!(addrs.keys().copied().collect::<Vec<_>>(), [ext]);
        assert_eq!(addrs[&ext].unwrap().port, 1);
        let text: Vec<String> = flows.iter().map(proto::flow_text::format_flow).collect();
        let all = text.join("\n");
        for want in [
            "ip,in_port=1,nw_dst=192.0.2.10 actions=ct(table=22,zone=7,nat)",
            "tcp,nw_dst=192.0.2.10,tp_dst=8080 actions=ct(commit,table=26,zone=7,nat(dst=172.30.0.2:80))",
            "ct(commit,table=25,zone=7,nat(dst=172.30.0.2:80))",
            "in_port=2,dl_dst=02:42:ac:1e:00:01 actions=ct(commit,table=20,zone=7,nat(src=192.0.2.10:1024-65535))",
            "ct(commit,table=26,zone=4103,nat(src=192.0.2.10))",
            "in_port=4,nw_dst=192.0.2.10 actions=ct(table=23,zone=4103,nat)",
            "nw_dst=172.30.0.1 actions=set_field:02:56:c0:00:02:0a->eth_src",
            "nw_dst=172.30.0.2 actions=set_field:02:42:ac:1e:00:01->eth_src",
        ] {
            assert!(all.contains(want), "{want} not in\n{all}");
        }
        assert!(!all.contains("8081") && !all.contains("in_port=3"), "{all}");
        assert!(flows.iter().all(|f| is_publish_cookie(f.cookie)));
        assert!(flows.iter().all(|f| external_of(f.cookie) == ext));
        // No two flows with one table, priority and match.
        let mut ids: Vec<_> = flows.iter().map(crate::overlay::flows::id_of).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), flows.len(), "{all}");
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
        let n =
            neighbour_flow(ext, Ipv4Addr::new(192, 0, 2, 1), Mac([2, 0, 0, 0, 0, 1]), 3).unwrap();
        assert_eq!(kind_of(n.cookie), KIND_NEIGH);
        let g = gateway_flow(ext, Mac([2, 0, 0, 0, 0, 1]), 3).unwrap();
        assert_eq!(kind_of(g.cookie), KIND_NEIGH);
    }

    #[test]
    fn a_gateway_off_the_segment_resolves_the_segment_directly() {
        let mut s = State::default();
        let mut n = net(true);
        n.options.external_prefix = Some(24);
        n.options.uplink_gateway = Some(Ipv4Addr::new(192, 0, 2, 254));
        s.networks.insert(id('a'), n);
        let (flows, addrs) = desired(&s, "br-docker", &ports()).unwrap();
        let up = addrs[&Ipv4Addr::new(192, 0, 2, 10)].unwrap();
        assert_eq!(up.gateway, Some(Ipv4Addr::new(192, 0, 2, 254)));
        let all: Vec<String> = flows.iter().map(proto::flow_text::format_flow).collect();
        assert!(
            all.iter()
                .any(|f| f.contains("nw_dst=192.0.2.0/24") && f.contains("CONTROLLER")),
            "{all:?}"
        );
    }

    #[test]
    fn uplink_networks_are_checked() {
        let mut s = State::default();
        s.networks.insert(id('a'), net(true));
        let pools: Vec<Cidr> = vec!["10.9.0.0/24".parse().unwrap()];
        let mut o = net(true).options;
        let e = check_network(&s, &id('b'), &o, &pools).unwrap_err();
        assert!(e.contains("has it already"), "{e}");
        assert!(check_network(&s, &id('a'), &o, &pools).is_ok());
        o.external_ip = Some(Ipv4Addr::new(10, 9, 0, 7));
        let e = check_network(&s, &id('b'), &o, &pools).unwrap_err();
        assert!(e.contains("own subnet"), "{e}");
        o.external_ip = Some(Ipv4Addr::new(192, 0, 2, 11));
        o.uplink_gateway = Some(Ipv4Addr::new(10, 9, 0, 1));
        let e = check_network(&s, &id('b'), &o, &pools).unwrap_err();
        assert!(e.contains("vswitch.uplink_gateway"), "{e}");
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
}
