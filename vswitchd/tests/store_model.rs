//! Property test of the store mirroring the datapath: random sequences of writes (flow
//! inserts, modifies, deletes, meters and groups and their deletion, in both atomicity
//! modes, many of them refused) leave the daemon in a state where what `Read` returns is
//! exactly what the flow tables hold, and a restart from the store brings back exactly that.

use std::sync::Arc;

use proptest::prelude::*;
use proto::flow_text::{
    format_flow, parse_flow, parse_flow_modify, parse_group, parse_match, parse_meter,
};
use proto::v1::{self, entity, update};
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

const FLOWS: &[&str] = &[
    "priority=10,ip,nw_dst=10.0.0.0/24,actions=output:1",
    "priority=10,ip,nw_dst=10.0.0.0/24,actions=output:2",
    "priority=20,ip,nw_dst=10.0.0.1,actions=meter:1,output:2",
    "priority=30,tcp,tp_dst=80,actions=group:1",
    "table=1,priority=5,arp,actions=flood",
    "priority=5,cookie=0x7,udp,actions=goto_table:1",
    "priority=1,cookie=0x8,idle_timeout=600,actions=normal",
    "priority=40,dl_vlan=5,actions=pop_vlan,output:3",
    "priority=50,actions=group:2",
];
const MODS: &[&str] = &[
    "ip,actions=output:3",
    "cookie=0x7/0xff,actions=drop",
    "table=1,actions=normal",
];
const DELS: &[&str] = &[
    "ip",
    "cookie=0x8/-1",
    "table=1",
    "out_port=2",
    "tcp,tp_dst=80",
    "",
];

#[derive(Debug, Clone)]
enum Op {
    Flow(usize),
    Modify(usize, bool),
    Delete(usize, bool),
    Meter(bool),
    Group(u32, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..FLOWS.len()).prop_map(Op::Flow),
        1 => (0..MODS.len(), any::<bool>()).prop_map(|(i, s)| Op::Modify(i, s)),
        1 => (0..DELS.len(), any::<bool>()).prop_map(|(i, s)| Op::Delete(i, s)),
        1 => any::<bool>().prop_map(Op::Meter),
        1 => (1u32..3, any::<bool>()).prop_map(|(g, d)| Op::Group(g, d)),
    ]
}

fn to_update(op: &Op) -> v1::Update {
    let (t, e) = match op {
        Op::Flow(i) => (
            update::Type::Insert,
            entity::Entity::Flow(parse_flow(FLOWS[*i]).expect("flow")),
        ),
        Op::Modify(i, strict) => {
            let mut m = parse_flow_modify(MODS[*i]).expect("modify");
            if let Some(f) = m.filter.as_mut() {
                f.strict = *strict;
            }
            (update::Type::Modify, entity::Entity::FlowModify(m))
        }
        Op::Delete(i, strict) => {
            let mut f = if DELS[*i].is_empty() {
                v1::FlowFilter::default()
            } else {
                parse_match(DELS[*i]).expect("match")
            };
            f.strict = *strict;
            (update::Type::Delete, entity::Entity::FlowFilter(f))
        }
        Op::Meter(del) => (
            if *del {
                update::Type::Delete
            } else {
                update::Type::Insert
            },
            entity::Entity::Meter(
                parse_meter("meter=1,pktps,bands=type=drop,rate=1000").expect("meter"),
            ),
        ),
        Op::Group(id, del) => (
            if *del {
                update::Type::Delete
            } else {
                update::Type::Insert
            },
            entity::Entity::Group(
                parse_group(&format!("group_id={id},type=all,bucket=output:1")).expect("group"),
            ),
        ),
    };
    v1::Update {
        r#type: t as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

/// Flows as `Read` returns them, and as the datapath's tables hold them, as sorted texts.
fn state(sw: &Switch) -> (Vec<String>, usize, Vec<String>, Vec<String>) {
    let mut flows = Vec::new();
    let mut meters = Vec::new();
    let mut groups = Vec::new();
    let req = v1::ReadRequest {
        bridge: "br0".into(),
        filters: vec![
            v1::ReadFilter {
                filter: Some(v1::read_filter::Filter::Flows(v1::FlowFilter::default())),
            },
            v1::ReadFilter {
                filter: Some(v1::read_filter::Filter::Meters(v1::MeterFilter::default())),
            },
            v1::ReadFilter {
                filter: Some(v1::read_filter::Filter::Groups(v1::GroupFilter::default())),
            },
        ],
    };
    for r in sw.read(&req).expect("read") {
        for e in r.entities {
            match e.entity {
                Some(entity::Entity::Flow(f)) => flows.push(format_flow(&f)),
                Some(entity::Entity::Meter(m)) => meters.push(format!("{m:?}")),
                Some(entity::Entity::Group(g)) => groups.push(format!("{g:?}")),
                _ => {}
            }
        }
    }
    flows.sort();
    let in_tables = sw
        .datapath("br0")
        .expect("br0")
        .snapshot()
        .pipeline
        .rule_count();
    (flows, in_tables, meters, groups)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_store_mirrors_the_tables_through_any_sequence_of_writes(
        batches in prop::collection::vec((prop::collection::vec(op(), 1..6), any::<bool>()), 1..8)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf.db");
        let sw: Arc<Switch> = Switch::start(Store::open(&path).unwrap(), SwitchConfig::default()).unwrap();
        for (ops, atomic) in &batches {
            let req = v1::WriteRequest {
                bridge: "br0".into(),
                updates: ops.iter().map(to_update).collect(),
                atomicity: if *atomic { v1::Atomicity::AllOrNone as i32 } else { v1::Atomicity::ContinueOnError as i32 },
            };
            let before = state(&sw);
            match sw.write(req) {
                Ok(resp) => {
                    // Every refused update is reported once, by index.
                    let mut idx: Vec<u32> = resp.statuses.iter().map(|s| s.index).collect();
                    idx.dedup();
                    prop_assert_eq!(idx.len(), resp.statuses.len());
                }
                Err(_) => {
                    prop_assert!(*atomic, "continue-on-error failed as a whole");
                    prop_assert_eq!(state(&sw), before, "a refused all-or-none write changed something");
                }
            }
            let (flows, in_tables, _, _) = state(&sw);
            prop_assert_eq!(flows.len(), in_tables, "Read and the tables disagree: {:?}", flows);
        }
        let end = state(&sw);
        sw.shutdown();
        drop(sw);
        let sw2 = Switch::start(Store::open(&path).unwrap(), SwitchConfig::default()).unwrap();
        prop_assert_eq!(state(&sw2), end, "the restart did not bring back the same state");
        sw2.shutdown();
    }
}
