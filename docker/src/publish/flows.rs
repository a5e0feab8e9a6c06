//! The flows of networks with an uplink: published ports (DNAT), outbound masquerade
//! (SNAT), hairpin, and the uplink's neighbours. Pure: computed from the state.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use proto::v1;

use super::{
    KIND_ARP, KIND_MASQ, KIND_NEIGH, KIND_PUBLISH, KIND_RESOLVE, KIND_UPLINK, TABLE_DELIVER,
    TABLE_HAIRPIN_DNAT, TABLE_HAIRPIN_SNAT, TABLE_HAIRPIN_UNSNAT, TABLE_IN, TABLE_NEIGH, TABLE_OUT,
    cookie_of, external_mac, proto_name,
};
use crate::api::{Mac, PortMapping};
use crate::neigh::Uplink;
use crate::options::prefix_of;
use crate::state::{Endpoint, Network, State};

/// The source ports masqueraded connections get (Linux's MASQUERADE takes the same class
/// for unprivileged source ports).
pub const MASQ_PORTS: &str = "1024-65535";

/// The conntrack zone of a network's NAT at its external address (published ports and
/// masquerade): its VLAN id.
pub fn nat_zone(net: &Network) -> u16 {
    net.vlan
}

/// The zone of the second translation of hairpinned connections (SNAT to the external
/// address after the DNAT of [`nat_zone`]): a connection is translated once per zone.
pub fn hairpin_zone(net: &Network) -> u16 {
    net.vlan + 4096
}

fn parse(text: &str) -> Result<v1::Flow, String> {
    proto::flow_text::parse_flow(text).map_err(|e| format!("{text}: {e}"))
}

/// What the flows of one network need.
struct Net<'a> {
    net: &'a Network,
    ext: Ipv4Addr,
    uplink: u32,
    gw_mac: Mac,
    gw_ip: Option<Ipv4Addr>,
    gw_port: Option<u32>,
}

impl Net<'_> {
    fn c(&self, kind: u64) -> String {
        format!("{:#x}", cookie_of(kind, self.ext))
    }

    /// The flows of the network itself (none of its endpoints').
    fn flows(&self, up: &Uplink) -> Vec<String> {
        let (a, u, m, g) = (self.ext, self.uplink, external_mac(self.ext), self.gw_mac);
        let (zd, zs) = (nat_zone(self.net), hairpin_zone(self.net));
        let (up_c, arp_c, res_c, masq_c) = (
            self.c(KIND_UPLINK),
            self.c(KIND_ARP),
            self.c(KIND_RESOLVE),
            self.c(KIND_MASQ),
        );
        let mut v = vec![
            format!(
                "cookie={arp_c},table=0,priority=400,in_port={u},arp,arp_op=1,arp_tpa={a},actions=controller"
            ),
            format!(
                "cookie={arp_c},table=0,priority=400,in_port={u},arp,arp_op=2,arp_tpa={a},actions=controller"
            ),
            format!(
                "cookie={up_c},table=0,priority=300,in_port={u},ip,nw_dst={a},actions=ct(zone={zd},nat,table={TABLE_IN})"
            ),
            format!("cookie={up_c},table=0,priority=1,in_port={u},actions=drop"),
            format!(
                "cookie={up_c},table={TABLE_OUT},priority=100,ct_state=+trk,ct_zone={zd},ip,nw_src={a},actions=mod_dl_src:{m},goto_table:{TABLE_NEIGH}"
            ),
            format!("cookie={up_c},table={TABLE_OUT},priority=0,actions=drop"),
            format!(
                "cookie={res_c},table={TABLE_NEIGH},priority=1,ip,nw_src={a},actions=controller"
            ),
            format!("cookie={up_c},table={TABLE_NEIGH},priority=0,actions=drop"),
            format!(
                "cookie={up_c},table={TABLE_IN},priority=200,ct_state=+trk+est,ct_zone={zd},ip,actions=goto_table:{TABLE_DELIVER}"
            ),
            format!(
                "cookie={up_c},table={TABLE_IN},priority=200,ct_state=+trk+rel,ct_zone={zd},ip,actions=goto_table:{TABLE_DELIVER}"
            ),
            // A retransmitted SYN of a published connection: translated, still +new.
            format!(
                "cookie={up_c},table={TABLE_IN},priority=150,ct_state=+trk+dnat,ct_zone={zd},ip,actions=goto_table:{TABLE_DELIVER}"
            ),
            format!("cookie={up_c},table={TABLE_IN},priority=0,actions=drop"),
            format!(
                "cookie={masq_c},table={TABLE_HAIRPIN_UNSNAT},priority=200,ct_state=+trk+est,ct_zone={zs},ip,actions=ct(zone={zd},nat,table={TABLE_DELIVER})"
            ),
            format!(
                "cookie={masq_c},table={TABLE_HAIRPIN_UNSNAT},priority=100,ct_state=+trk,ct_zone={zs},ip,actions=ct(zone={zd},nat,table={TABLE_HAIRPIN_DNAT})"
            ),
            format!(
                "cookie={masq_c},table={TABLE_HAIRPIN_DNAT},priority=200,ct_state=+trk+est,ct_zone={zd},ip,actions=goto_table:{TABLE_HAIRPIN_SNAT}"
            ),
            format!(
                "cookie={masq_c},table={TABLE_HAIRPIN_DNAT},priority=150,ct_state=+trk+dnat,ct_zone={zd},ip,actions=goto_table:{TABLE_HAIRPIN_SNAT}"
            ),
            format!("cookie={up_c},table={TABLE_HAIRPIN_DNAT},priority=0,actions=drop"),
            format!(
                "cookie={masq_c},table={TABLE_HAIRPIN_SNAT},priority=100,ct_zone={zd},ip,actions=ct(commit,zone={zs},nat(src={a}),table={TABLE_DELIVER})"
            ),
            format!("cookie={up_c},table={TABLE_DELIVER},priority=0,actions=drop"),
        ];
        if let (Some(len), Some(_)) = (up.prefix.filter(|l| *l < 32), up.gateway) {
            let net = prefix_of(a, len);
            v.push(format!(
                "cookie={res_c},table={TABLE_NEIGH},priority=60,ip,nw_src={a},nw_dst={net}/{len},actions=controller"
            ));
        }
        // The host reaches published ports at A through its gateway port (a route the
        // plugin puts on the gateway interface), hairpinned like a container.
        if let (Some(gp), Some(gip)) = (self.gw_port, self.gw_ip) {
            v.push(format!("cookie={masq_c},table=0,priority=270,in_port={gp},ip,nw_dst={a},actions=ct(zone={zs},nat,table={TABLE_HAIRPIN_UNSNAT})"));
            v.push(format!("cookie={masq_c},table={TABLE_DELIVER},priority=100,ip,nw_dst={gip},actions=mod_dl_src:{m},mod_dl_dst:{g},output:{gp}"));
        }
        v
    }

    /// One joined endpoint's flows: its way out (masquerade), to the external address
    /// (hairpin), and delivery to it.
    fn endpoint(&self, ep: &Endpoint, port: u32, addr: Ipv4Addr) -> Vec<String> {
        let (a, g) = (self.ext, self.gw_mac);
        let (zd, zs) = (nat_zone(self.net), hairpin_zone(self.net));
        let c = self.c(KIND_MASQ);
        let queue = self
            .net
            .options
            .priority
            .map_or(String::new(), |q| format!("set_queue:{q},"));
        let mut v = vec![
            format!(
                "cookie={c},table=0,priority=270,in_port={port},ip,nw_dst={a},actions=ct(zone={zs},nat,table={TABLE_HAIRPIN_UNSNAT})"
            ),
            format!(
                "cookie={c},table=0,priority=250,in_port={port},ip,dl_dst={g},actions=ct(commit,zone={zd},nat(src={a}:{MASQ_PORTS}),table={TABLE_OUT})"
            ),
            format!(
                "cookie={c},table={TABLE_DELIVER},priority=100,ip,nw_dst={addr},actions=mod_dl_src:{g},mod_dl_dst:{},output:{port}",
                ep.mac
            ),
            // Hairpinned to itself: OpenFlow drops an output to the port a packet came in on.
            format!(
                "cookie={c},table={TABLE_DELIVER},priority=110,in_port={port},ip,nw_dst={addr},actions=mod_dl_src:{g},mod_dl_dst:{},in_port",
                ep.mac
            ),
        ];
        if let Some(gip) = self.gw_ip {
            v.push(format!("cookie={c},table=0,priority=260,in_port={port},ip,dl_dst={g},nw_dst={gip},actions={queue}NORMAL"));
        }
        v
    }

    /// A published port's flows: DNAT of new connections from the uplink and from the
    /// network's containers and host (hairpin).
    fn mapping(&self, addr: Ipv4Addr, m: &PortMapping) -> Vec<String> {
        let c = self.c(KIND_PUBLISH);
        let (a, zd, p) = (self.ext, nat_zone(self.net), proto_name(m.proto));
        let (h, cp) = (m.host_port, m.port);
        vec![
            format!(
                "cookie={c},table={TABLE_IN},priority=100,ct_state=+trk+new,ct_zone={zd},{p},nw_dst={a},tp_dst={h},actions=ct(commit,zone={zd},nat(dst={addr}:{cp}),table={TABLE_DELIVER})"
            ),
            format!(
                "cookie={c},table={TABLE_HAIRPIN_DNAT},priority=100,ct_state=+trk+new,ct_zone={zd},{p},nw_dst={a},tp_dst={h},actions=ct(commit,zone={zd},nat(dst={addr}:{cp}),table={TABLE_HAIRPIN_SNAT})"
            ),
        ]
    }
}

/// A bridge's external addresses, with what the resolver needs of each (`None` while its
/// uplink is not a port of the bridge yet).
pub type Addresses = BTreeMap<Ipv4Addr, Option<Uplink>>;

/// The flows of bridge `bridge` that the state wants (every network with an uplink, every
/// joined endpoint of those), and the external addresses in use there with what the
/// resolver needs of each. Ports are written by number (`ports`: the bridge's, by name),
/// as the switch reads flows back, so that wanted and installed flows compare equal; a
/// flow of a port the bridge does not have (yet) is left out.
pub fn desired(
    state: &State,
    bridge: &str,
    ports: &HashMap<String, u32>,
) -> Result<(Vec<v1::Flow>, Addresses), String> {
    let mut text = Vec::new();
    let mut addrs = BTreeMap::new();
    let mut nets = BTreeMap::new();
    for (id, net) in &state.networks {
        let (Some(uplink), Some(ext)) = (&net.options.uplink, net.options.external_ip) else {
            continue;
        };
        if net.options.bridge != bridge {
            continue;
        }
        addrs.insert(ext, None);
        let (Some(&uplink), Some(gw_mac)) =
            (ports.get(uplink), crate::driver::Driver::gateway_mac(net))
        else {
            continue;
        };
        let n = Net {
            net,
            ext,
            uplink,
            gw_mac,
            gw_ip: net.ipv4.iter().find_map(|p| match p.gateway?.addr {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            }),
            gw_port: net
                .gateway_port
                .as_ref()
                .and_then(|g| ports.get(g).copied()),
        };
        let up = Uplink {
            port: uplink,
            gateway: net.options.uplink_gateway,
            prefix: net.options.external_prefix,
        };
        text.extend(n.flows(&up));
        addrs.insert(ext, Some(up));
        nets.insert(id, n);
    }
    for ep in state.endpoints.values() {
        let (Some(n), Some(&port), Some(IpAddr::V4(addr))) = (
            nets.get(&ep.network),
            ports.get(&ep.port),
            ep.address.map(|a| a.addr),
        ) else {
            continue;
        };
        if ep.sandbox.is_none() {
            continue;
        }
        text.extend(n.endpoint(ep, port, addr));
        for m in &ep.port_map {
            text.extend(n.mapping(addr, m));
        }
    }
    let flows = text.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
    Ok((flows, addrs))
}

/// The learned-neighbour flow: traffic from `ext` to `ip` goes to `mac` out of port
/// `uplink` (the port number the ARP came in on).
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

/// The learned gateway's flow: traffic from `ext` to anywhere else goes to `mac`.
pub fn gateway_flow(ext: Ipv4Addr, mac: Mac, uplink: u32) -> Result<v1::Flow, String> {
    parse(&format!(
        "cookie={:#x},table={TABLE_NEIGH},priority=50,ip,nw_src={ext},\
         actions=mod_dl_dst:{mac},output:{uplink}",
        cookie_of(KIND_NEIGH, ext)
    ))
}
