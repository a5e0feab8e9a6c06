//! The flows the agent keeps in the switch, computed from the cluster view and this host's
//! overlay networks and endpoints, and the difference against what the switch holds.
//!
//! Pure: [`desired`] builds the whole set, [`diff`] compares it with the flows read back
//! (by cookie) and says what to insert (an insert with the same table, priority and match
//! replaces the flow in place, so a changed flow never goes missing) and what to delete.
//! After an agent restart this is the reconciliation: nothing that is still right is
//! touched, so traffic sees no gap.
//!
//! The pipeline on the plugin's bridge (`metadata` carries the VNI between tables):
//!
//! | table | priority | match | actions | kind |
//! | --- | --- | --- | --- | --- |
//! | 0 | 200 | `in_port=VX,tun_id=V,dl_dst=M` (a local endpoint) | `output:P` | tunnel-in |
//! | 0 | 180 | `in_port=VX` | drop (unknown VNI or MAC) | tunnel-in |
//! | 0 | 200 | `in_port=P` (a local endpoint of V) | `[set_queue:Q,]write_metadata:V,goto_table:1` | port |
//! | 1 | 310 | `in_port=P,arp,arp_op=1,arp_tpa=IP_P` (asking for itself) | `NORMAL` | arp |
//! | 1 | 300 | `metadata=V,arp,arp_op=1,arp_tpa=IP` (every endpoint of V, and its gateway) | `set_field` eth_src, arp_op=2, arp_sha, arp_spa; `goto_table:2` | arp |
//! | 1 | 250 | `arp` | `NORMAL` (other ARP stays on this host) | egress |
//! | 1 | 245 | `icmp6,icmp_type=135,ipv6_src=::` | `NORMAL` (duplicate address detection stays here) | egress |
//! | 1 | 240 | `icmp6,icmp_type=135` | `CONTROLLER` (the agent answers from the registry) | nd |
//! | 1 | 200 | `metadata=V,dl_dst=M` (an endpoint on another host) | `set_field:VTEP->tun_dst,set_field:V->tun_id,output:VX` | unicast |
//! | 1 | 0 | any | `NORMAL` (this host's endpoints, its gateway; broadcast stays here) | egress |
//! | 2 | 100 | `in_port=P,arp` | `set_field` eth_dst, arp_tha, arp_tpa of P; `in_port` | arp |
//!
//! The ARP responder takes two tables because the switch has no `move:` action yet: table 1
//! writes what the answer says about the target, table 2 what it says about the asker,
//! which is always a local endpoint (known port, MAC and address). Broadcast and unknown
//! multicast other than ARP and neighbour solicitation do not cross hosts: every address is
//! in the registry, so nothing needs flooding (Docker's overlay driver does the same).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use proto::v1::{self, instruction, port_ref};

use crate::api::Mac;
use crate::overlay::schema::HostId;
use crate::overlay::view::View;
use crate::vswitch::{COOKIE_BASE, cookie};

/// Flows from the tunnel to local endpoints, and the tunnel's catch-all drop.
pub const KIND_TUNNEL_IN: u64 = 3;
/// Local endpoint ports into the overlay pipeline.
pub const KIND_PORT: u64 = 4;
/// The ARP responder.
pub const KIND_ARP: u64 = 5;
/// Table 1's local delivery.
pub const KIND_EGRESS: u64 = 6;
/// Neighbour solicitations to the agent.
pub const KIND_ND: u64 = 7;
/// Unicast to endpoints on other hosts.
pub const KIND_UNICAST: u64 = 8;
/// Every kind the agent owns.
pub const AGENT_KINDS: [u64; 6] = [
    KIND_TUNNEL_IN,
    KIND_PORT,
    KIND_ARP,
    KIND_EGRESS,
    KIND_ND,
    KIND_UNICAST,
];

/// True for a cookie of one of the agent's flows.
pub fn is_agent_cookie(c: u64) -> bool {
    c >> 48 == COOKIE_BASE >> 48 && AGENT_KINDS.contains(&((c >> 40) & 0xff))
}

/// An overlay network on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNet {
    /// Its key in etcd.
    pub nkey: String,
    /// Its VNI.
    pub vni: u32,
    /// Its gateway's IPv4 address and MAC, when it has one on this host.
    pub gateway: Option<(Ipv4Addr, Mac)>,
    /// `vswitch.priority`: the egress queue of its endpoints' traffic.
    pub queue: Option<u8>,
}

/// An endpoint of this host, with its switch port's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEp {
    /// Its network's key.
    pub nkey: String,
    /// OpenFlow port number of its veth.
    pub port: u32,
    /// Its MAC address.
    pub mac: Mac,
    /// Its IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
}

/// What [`desired`] is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The VXLAN port's number.
    pub vx: u32,
    /// This host's overlay networks.
    pub nets: &'a [LocalNet],
    /// This host's endpoints on them (with a port in the switch).
    pub eps: &'a [LocalEp],
    /// The cluster.
    pub view: &'a View,
    /// This host.
    pub me: &'a HostId,
}

fn fm(field: v1::Field, value: Vec<u8>, mask: Vec<u8>) -> v1::FieldMatch {
    v1::FieldMatch {
        field: field as i32,
        value,
        mask,
        port_name: String::new(),
    }
}

fn matching(mut fields: Vec<v1::FieldMatch>) -> v1::Match {
    fields.sort_by_key(|f| f.field);
    v1::Match { fields }
}

fn mac_bytes(m: &Mac) -> Vec<u8> {
    m.0.to_vec()
}

fn set(field: v1::Field, value: Vec<u8>) -> v1::Action {
    v1::Action {
        action: Some(v1::action::Action::SetField(v1::SetField {
            field: field as i32,
            value,
            mask: Vec::new(),
        })),
    }
}

fn out(p: port_ref::Port) -> v1::Action {
    v1::Action {
        action: Some(v1::action::Action::Output(v1::Output {
            port: Some(v1::PortRef { port: Some(p) }),
            max_len: None,
        })),
    }
}

fn out_no(n: u32) -> v1::Action {
    out(port_ref::Port::Number(n))
}

fn reserved(r: v1::ReservedPort) -> v1::Action {
    out(port_ref::Port::Reserved(r as i32))
}

fn apply(actions: Vec<v1::Action>) -> v1::Instruction {
    v1::Instruction {
        instruction: Some(instruction::Instruction::ApplyActions(v1::ApplyActions {
            actions,
        })),
    }
}

fn goto(t: u32) -> v1::Instruction {
    v1::Instruction {
        instruction: Some(instruction::Instruction::GotoTable(t)),
    }
}

fn flow(
    table: u32,
    priority: u32,
    kind: u64,
    m: Vec<v1::FieldMatch>,
    ins: Vec<v1::Instruction>,
) -> v1::Flow {
    v1::Flow {
        table_id: table,
        priority,
        cookie: cookie(kind),
        r#match: Some(matching(m)),
        instructions: ins,
        ..Default::default()
    }
}

use v1::Field as F;

fn in_port(p: u32) -> v1::FieldMatch {
    fm(F::InPort, p.to_be_bytes().to_vec(), Vec::new())
}
fn eth_type(t: u16) -> v1::FieldMatch {
    fm(F::EthType, t.to_be_bytes().to_vec(), Vec::new())
}
fn metadata(vni: u32) -> v1::FieldMatch {
    fm(
        F::Metadata,
        u64::from(vni).to_be_bytes().to_vec(),
        Vec::new(),
    )
}
fn tun_id(vni: u32) -> v1::FieldMatch {
    fm(F::TunId, u64::from(vni).to_be_bytes().to_vec(), Vec::new())
}
fn eth_dst(m: &Mac) -> v1::FieldMatch {
    fm(F::EthDst, mac_bytes(m), Vec::new())
}
fn arp_request() -> [v1::FieldMatch; 2] {
    [
        eth_type(0x0806),
        fm(F::ArpOp, 1u16.to_be_bytes().to_vec(), Vec::new()),
    ]
}
fn neighbour_solicitation() -> [v1::FieldMatch; 3] {
    [
        eth_type(0x86dd),
        fm(F::IpProto, vec![58], Vec::new()),
        fm(F::Icmpv6Type, vec![135], Vec::new()),
    ]
}

/// Every flow the agent wants, for one bridge.
pub fn desired(i: Inputs<'_>) -> Vec<v1::Flow> {
    let mut flows = Vec::new();
    if i.nets.is_empty() {
        return flows;
    }
    // Tunnel in: unknown VNI or MAC is dropped.
    flows.push(flow(
        0,
        180,
        KIND_TUNNEL_IN,
        vec![in_port(i.vx)],
        Vec::new(),
    ));
    // Table 1's fixed part.
    flows.push(flow(
        1,
        0,
        KIND_EGRESS,
        Vec::new(),
        vec![apply(vec![reserved(v1::ReservedPort::Normal)])],
    ));
    flows.push(flow(
        1,
        250,
        KIND_EGRESS,
        vec![eth_type(0x0806)],
        vec![apply(vec![reserved(v1::ReservedPort::Normal)])],
    ));
    let mut dad = neighbour_solicitation().to_vec();
    dad.push(fm(F::Ipv6Src, vec![0; 16], Vec::new()));
    flows.push(flow(
        1,
        245,
        KIND_EGRESS,
        dad,
        vec![apply(vec![reserved(v1::ReservedPort::Normal)])],
    ));
    flows.push(flow(
        1,
        240,
        KIND_ND,
        neighbour_solicitation().to_vec(),
        vec![apply(vec![reserved(v1::ReservedPort::Controller)])],
    ));
    for net in i.nets {
        network_flows(&i, net, &mut flows);
    }
    flows
}

/// The flows of one local endpoint `e` of network `net`: from the tunnel to it, its port
/// into the pipeline, and the ARP answer's half about it.
fn endpoint_flows(vx: u32, net: &LocalNet, e: &LocalEp, flows: &mut Vec<v1::Flow>) {
    let vni = net.vni;
    flows.push(flow(
        0,
        200,
        KIND_TUNNEL_IN,
        vec![in_port(vx), tun_id(vni), eth_dst(&e.mac)],
        vec![apply(vec![out_no(e.port)])],
    ));
    let mut acts = Vec::new();
    if let Some(q) = net.queue {
        acts.push(v1::Action {
            action: Some(v1::action::Action::SetQueue(u32::from(q))),
        });
    }
    let mut ins = Vec::new();
    if !acts.is_empty() {
        ins.push(apply(acts));
    }
    ins.push(v1::Instruction {
        instruction: Some(instruction::Instruction::WriteMetadata(v1::WriteMetadata {
            value: u64::from(vni),
            mask: u64::MAX,
        })),
    });
    ins.push(goto(1));
    flows.push(flow(0, 200, KIND_PORT, vec![in_port(e.port)], ins));
    if let Some(ip) = e.ipv4 {
        let mut m = arp_request().to_vec();
        m.push(in_port(e.port));
        m.push(fm(F::ArpTpa, ip.octets().to_vec(), Vec::new()));
        flows.push(flow(
            1,
            310,
            KIND_ARP,
            m,
            vec![apply(vec![reserved(v1::ReservedPort::Normal)])],
        ));
        flows.push(flow(
            2,
            100,
            KIND_ARP,
            vec![in_port(e.port), eth_type(0x0806)],
            vec![apply(vec![
                set(F::EthDst, mac_bytes(&e.mac)),
                set(F::ArpTha, mac_bytes(&e.mac)),
                set(F::ArpTpa, ip.octets().to_vec()),
                reserved(v1::ReservedPort::InPort),
            ])],
        ));
    }
}

/// The flows of overlay network `net` on this host.
fn network_flows(i: &Inputs<'_>, net: &LocalNet, flows: &mut Vec<v1::Flow>) {
    let vni = net.vni;
    let local: Vec<&LocalEp> = i.eps.iter().filter(|e| e.nkey == net.nkey).collect();
    for e in &local {
        endpoint_flows(i.vx, net, e, flows);
    }
    // The ARP responder: every address of the network, once.
    let mut answers: BTreeMap<Ipv4Addr, Mac> = BTreeMap::new();
    if let Some((ip, mac)) = net.gateway {
        answers.insert(ip, mac);
    }
    for e in &local {
        if let Some(ip) = e.ipv4 {
            answers.entry(ip).or_insert(e.mac);
        }
    }
    for ((_, _, _), r) in i.view.remote_endpoints(&net.nkey, i.me) {
        if let Some(ip) = r.ipv4 {
            answers.entry(ip).or_insert(r.mac);
        }
        flows.push(flow(
            1,
            200,
            KIND_UNICAST,
            vec![metadata(vni), eth_dst(&r.mac)],
            vec![apply(vec![
                set(F::TunDst, r.vtep.octets().to_vec()),
                set(F::TunId, u64::from(vni).to_be_bytes().to_vec()),
                out_no(i.vx),
            ])],
        ));
    }
    for (ip, mac) in answers {
        let mut m = arp_request().to_vec();
        m.push(metadata(vni));
        m.push(fm(F::ArpTpa, ip.octets().to_vec(), Vec::new()));
        flows.push(flow(
            1,
            300,
            KIND_ARP,
            m,
            vec![
                apply(vec![
                    set(F::EthSrc, mac_bytes(&mac)),
                    set(F::ArpOp, 2u16.to_be_bytes().to_vec()),
                    set(F::ArpSha, mac_bytes(&mac)),
                    set(F::ArpSpa, ip.octets().to_vec()),
                ]),
                goto(2),
            ],
        ));
    }
}

/// What identifies a flow in a table: table, priority, match.
pub type FlowId = (u32, u32, Vec<u8>);

/// The identity of `f`.
pub fn id_of(f: &v1::Flow) -> FlowId {
    use prost::Message as _;
    (
        f.table_id,
        f.priority,
        f.r#match.clone().unwrap_or_default().encode_to_vec(),
    )
}

fn body_of(f: &v1::Flow) -> (u64, Vec<Vec<u8>>) {
    use prost::Message as _;
    (
        f.cookie,
        f.instructions.iter().map(|i| i.encode_to_vec()).collect(),
    )
}

/// What to change to get from `installed` (the agent's flows as read back) to `want`:
/// inserts (new or changed flows) and deletes (flows no longer wanted).
pub fn diff(want: &[v1::Flow], installed: &[v1::Flow]) -> (Vec<v1::Flow>, Vec<v1::Flow>) {
    let have: BTreeMap<FlowId, &v1::Flow> = installed.iter().map(|f| (id_of(f), f)).collect();
    let mut wanted: BTreeMap<FlowId, &v1::Flow> = BTreeMap::new();
    for f in want {
        wanted.insert(id_of(f), f);
    }
    let inserts = wanted
        .iter()
        .filter(|(k, f)| have.get(*k).is_none_or(|h| body_of(h) != body_of(f)))
        .map(|(_, f)| (*f).clone())
        .collect();
    let deletes = have
        .iter()
        .filter(|(k, _)| !wanted.contains_key(*k))
        .map(|(_, f)| (*f).clone())
        .collect();
    (inserts, deletes)
}

/// A strict delete of exactly flow `f` (its table, priority, match and cookie).
pub fn delete_of(f: &v1::Flow) -> v1::Update {
    v1::Update {
        r#type: v1::update::Type::Delete as i32,
        entity: Some(v1::Entity {
            entity: Some(v1::entity::Entity::FlowFilter(v1::FlowFilter {
                table_id: Some(f.table_id),
                cookie: f.cookie,
                cookie_mask: u64::MAX,
                r#match: f.r#match.clone(),
                strict: true,
                priority: Some(f.priority),
                ..Default::default()
            })),
        }),
    }
}

/// An insert of flow `f`.
pub fn insert_of(f: &v1::Flow) -> v1::Update {
    v1::Update {
        r#type: v1::update::Type::Insert as i32,
        entity: Some(v1::Entity {
            entity: Some(v1::entity::Entity::Flow(f.clone())),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::schema::{self, EndpointRecord, FORMAT, Keys};
    use crate::overlay::view::Change;

    fn view_with(remote: usize) -> View {
        let keys = Keys::new("/t").unwrap();
        let mut v = View::default();
        for i in 0..remote {
            let h: HostId = format!("h{i}").parse().unwrap();
            let rec = EndpointRecord {
                format: FORMAT,
                mac: Mac([2, 0x42, 10, 0, 1, i as u8]),
                ipv4: Some(Ipv4Addr::new(10, 0, 1, i as u8)),
                ipv6: None,
                vtep: Ipv4Addr::new(172, 16, 0, 10 + i as u8),
            };
            let kv = crate::overlay::etcd::Kv {
                key: keys
                    .endpoint("10.0.0.0_16", &h, &format!("e{i:x}").parse().unwrap())
                    .into_bytes(),
                value: schema::to_bytes(&rec),
                mod_revision: 1,
                lease: 0,
            };
            v.apply(&keys, &Change::Put(kv), 1);
        }
        v
    }

    fn inputs_flows(remote: usize, local: usize) -> Vec<v1::Flow> {
        let v = view_with(remote);
        let me: HostId = "me".parse().unwrap();
        let nets = [LocalNet {
            nkey: "10.0.0.0_16".into(),
            vni: 4096,
            gateway: Some((Ipv4Addr::new(10, 0, 0, 1), Mac([2, 0x42, 10, 0, 0, 1]))),
            queue: None,
        }];
        let eps: Vec<LocalEp> = (0..local)
            .map(|i| LocalEp {
                nkey: "10.0.0.0_16".into(),
                port: 10 + i as u32,
                mac: Mac([2, 0x42, 10, 0, 2, i as u8]),
                ipv4: Some(Ipv4Addr::new(10, 0, 2, i as u8)),
            })
            .collect();
        desired(Inputs {
            vx: 1,
            nets: &nets,
            eps: &eps,
            view: &v,
            me: &me,
        })
    }

    #[test]
    fn flow_counts_are_linear() {
        // 5 fixed, per local endpoint 4, per address 1 ARP answer (the gateway's too), per
        // remote endpoint 1 unicast.
        let f = inputs_flows(3, 2);
        let expect = 5 + 2 * 4 + (3 + 2 + 1) + 3;
        assert_eq!(f.len(), expect);
        assert!(f.iter().all(|f| is_agent_cookie(f.cookie)));
        let ids: std::collections::BTreeSet<_> = f.iter().map(id_of).collect();
        assert_eq!(
            ids.len(),
            f.len(),
            "no two flows share table, priority and match"
        );
    }

    #[test]
    fn diff_touches_only_what_changed() {
        let a = inputs_flows(3, 2);
        let (ins, del) = diff(&a, &a);
        assert!(ins.is_empty() && del.is_empty());
        let b = inputs_flows(2, 2);
        let (ins, del) = diff(&b, &a);
        assert!(ins.is_empty());
        // One remote endpoint gone: its unicast and its ARP answer.
        assert_eq!(del.len(), 2);
        let (ins, del) = diff(&a, &b);
        assert_eq!((ins.len(), del.len()), (2, 0));
        assert!(diff(&[], &a).1.len() == a.len());
    }

    #[test]
    fn no_networks_no_flows() {
        let v = View::default();
        let me: HostId = "me".parse().unwrap();
        assert!(
            desired(Inputs {
                vx: 1,
                nets: &[],
                eps: &[],
                view: &v,
                me: &me
            })
            .is_empty()
        );
    }
}
