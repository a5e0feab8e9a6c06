//! What one bridge may hold and what one Read may cost, against the daemon in process:
//! - flows per table and per bridge follow a model through random writes in both atomicity
//!   modes (a full table refuses only new flows, a refused all-or-none write changes
//!   nothing), and meters, groups, ports and bridges stop at their limits;
//! - a Read returns exactly the union of what its filters select, each entity once, in
//!   order, in bounded responses, and refuses more than `MAX_READ_FILTERS` filters;
//! - a Read that streams while flows or the bridge go away leaves out what went, or ends
//!   with NOT_FOUND.
// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use proto::flow_text::{format_flow, parse_flow, parse_group, parse_match, parse_meter};
use proto::v1::{self, entity, read_filter, update};
use vswitchd::store::Store;
use vswitchd::switch::{
    CHUNK_BYTES, CHUNK_ENTITIES, Capacity, MAX_READ_FILTERS, Switch, SwitchConfig,
};

fn start(dir: &std::path::Path, capacity: Capacity) -> Arc<Switch> {
    let cfg = SwitchConfig {
        capacity,
        ..SwitchConfig::default()
    };
    Switch::start(Store::open(&dir.join("conf.db")).unwrap(), cfg).unwrap()
}

fn update(t: update::Type, e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: t as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

fn write(
    sw: &Switch,
    updates: Vec<v1::Update>,
    atomic: bool,
) -> Result<v1::WriteResponse, vswitchd::error::ApiError> {
    sw.write(v1::WriteRequest {
        bridge: "br0".into(),
        updates,
        atomicity: if atomic {
            v1::Atomicity::AllOrNone as i32
        } else {
            v1::Atomicity::ContinueOnError as i32
        },
    })
}

fn add_port(sw: &Switch, name: &str) -> Result<v1::PortDesc, vswitchd::error::ApiError> {
    sw.add_port(v1::AddPortRequest {
        bridge: "br0".into(),
        port: Some(v1::PortConfig {
            name: name.into(),
            r#type: "memory".into(),
            ..Default::default()
        }),
    })
}

fn filter(f: read_filter::Filter) -> v1::ReadFilter {
    v1::ReadFilter { filter: Some(f) }
}

/// Flows of br0 as `(table, priority, text)`, in the order Read returns them.
fn flows(sw: &Switch) -> Vec<(u32, u32, String)> {
    let req = v1::ReadRequest {
        bridge: "br0".into(),
        filters: Vec::new(),
    };
    let mut out = Vec::new();
    for r in sw.read(&req).unwrap() {
        for e in r.entities {
            if let Some(entity::Entity::Flow(mut f)) = e.entity {
                f.stats = None;
                out.push((f.table_id, f.priority, format_flow(&f)));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Flows per table and per bridge, against a model.
// ---------------------------------------------------------------------------------------

const PER_TABLE: usize = 3;
const PER_BRIDGE: usize = 5;
const MATCHES: [&str; 3] = ["", "ip,", "arp,"];

#[derive(Debug, Clone)]
enum Op {
    /// Insert (table, priority, match).
    Add(u32, u32, usize),
    /// Strict delete of that identity.
    Del(u32, u32, usize),
    /// Delete every flow of a table.
    Clear(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u32..3, 1u32..3, 0..MATCHES.len()).prop_map(|(t, p, m)| Op::Add(t, p, m)),
        2 => (0u32..3, 1u32..3, 0..MATCHES.len()).prop_map(|(t, p, m)| Op::Del(t, p, m)),
        1 => (0u32..3).prop_map(Op::Clear),
    ]
}

fn to_update(op: &Op) -> v1::Update {
    match *op {
        Op::Add(t, p, m) => update(
            update::Type::Insert,
            entity::Entity::Flow(
                parse_flow(&format!(
                    "table={t},priority={p},{}actions=drop",
                    MATCHES[m]
                ))
                .unwrap(),
            ),
        ),
        Op::Del(t, p, m) => {
            let mut f = parse_match(&format!("table={t},priority={p},{}", MATCHES[m])).unwrap();
            f.strict = true;
            update(update::Type::Delete, entity::Entity::FlowFilter(f))
        }
        Op::Clear(t) => update(
            update::Type::Delete,
            entity::Entity::FlowFilter(parse_match(&format!("table={t}")).unwrap()),
        ),
    }
}

/// The model: the identities each table holds (table 0 starts with the NORMAL flow,
/// priority 0). Applies `op`; false when the switch must refuse it for lack of room.
fn model_apply(m: &mut BTreeMap<u32, BTreeSet<(u32, usize)>>, op: &Op) -> bool {
    match *op {
        Op::Add(t, p, k) => {
            let total: usize = m.values().map(BTreeSet::len).sum();
            let table = m.entry(t).or_default();
            if table.contains(&(p, k)) {
                return true;
            }
            if table.len() >= PER_TABLE || total >= PER_BRIDGE {
                return false;
            }
            table.insert((p, k));
        }
        Op::Del(t, p, k) => {
            m.entry(t).or_default().remove(&(p, k));
        }
        Op::Clear(t) => {
            m.entry(t).or_default().clear();
        }
    }
    true
}

fn model_flows(m: &BTreeMap<u32, BTreeSet<(u32, usize)>>) -> BTreeSet<(u32, u32, String)> {
    m.iter()
        .flat_map(|(t, s)| s.iter().map(move |x| (*t, *x)))
        .map(|(t, (p, k))| {
            let text = if (p, k) == (0, 0) {
                "priority=0,actions=NORMAL".to_string()
            } else {
                format!("table={t},priority={p},{}actions=drop", MATCHES[k])
            };
            let f = parse_flow(&text).unwrap();
            (t, p, format_flow(&f))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random writes against a bridge that holds at most 3 flows per table and 5 in all:
    /// exactly the inserts that would pass a limit are refused, with RESOURCE_EXHAUSTED;
    /// an all-or-none write with one of them changes nothing; replacing a flow of a full
    /// table is always allowed.
    #[test]
    fn flow_limits_follow_the_model(
        batches in prop::collection::vec((prop::collection::vec(op(), 1..7), any::<bool>()), 1..10)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sw = start(dir.path(), Capacity {
            flows_per_table: PER_TABLE,
            flows_per_bridge: PER_BRIDGE,
            ..Capacity::default()
        });
        let mut model: BTreeMap<u32, BTreeSet<(u32, usize)>> = BTreeMap::new();
        model.entry(0).or_default().insert((0, 0));
        for (ops, atomic) in &batches {
            let mut next = model.clone();
            let refused: Vec<u32> = ops
                .iter()
                .enumerate()
                .filter(|(_, o)| !model_apply(&mut next, o))
                .map(|(i, _)| i as u32)
                .collect();
            let res = write(&sw, ops.iter().map(to_update).collect(), *atomic);
            match (atomic, refused.first()) {
                (true, Some(first)) => {
                    let e = res.unwrap_err();
                    prop_assert_eq!(e.code, tonic::Code::ResourceExhausted);
                    prop_assert!(e.field.starts_with(&format!("updates[{first}]")), "{:?}", e);
                }
                _ => {
                    let statuses = res.unwrap().statuses;
                    let got: Vec<u32> = statuses.iter().map(|s| s.index).collect();
                    prop_assert_eq!(&got, &refused);
                    for s in &statuses {
                        prop_assert_eq!(s.code, tonic::Code::ResourceExhausted as i32);
                        prop_assert!(s.message.contains("--max-flows-per-"), "{}", s.message);
                    }
                    model = next;
                }
            }
            let have: BTreeSet<_> = flows(&sw).into_iter().collect();
            prop_assert_eq!(have, model_flows(&model));
        }
        sw.shutdown();
    }
}

#[test]
fn meters_groups_ports_and_bridges_stop_at_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    let sw = start(
        dir.path(),
        Capacity {
            meters_per_bridge: 2,
            groups_per_bridge: 2,
            ports_per_bridge: 2,
            bridges: 2,
            ..Capacity::default()
        },
    );
    let meter = |id: u32| {
        update(
            update::Type::Insert,
            entity::Entity::Meter(
                parse_meter(&format!("meter={id},pktps,bands=type=drop,rate=10")).unwrap(),
            ),
        )
    };
    let group = |id: u32| {
        update(
            update::Type::Insert,
            entity::Entity::Group(
                parse_group(&format!("group_id={id},type=all,bucket=actions=drop")).unwrap(),
            ),
        )
    };
    // One write that would make three: refused whole, nothing added.
    let e = write(&sw, vec![meter(1), meter(2), meter(3)], true).unwrap_err();
    assert_eq!(e.code, tonic::Code::ResourceExhausted);
    assert!(e.field.starts_with("updates[2]"), "{e:?}");
    assert!(e.message.contains("--max-meters-per-bridge"), "{e}");
    let e = write(&sw, vec![group(1), group(2), group(3)], true).unwrap_err();
    assert!(e.message.contains("--max-groups-per-bridge"), "{e}");
    let held = |sw: &Switch| {
        let req = v1::ReadRequest {
            bridge: "br0".into(),
            filters: vec![
                filter(read_filter::Filter::Meters(v1::MeterFilter::default())),
                filter(read_filter::Filter::Groups(v1::GroupFilter::default())),
            ],
        };
        sw.read(&req)
            .unwrap()
            .iter()
            .map(|r| r.entities.len())
            .sum::<usize>()
    };
    assert_eq!(held(&sw), 0);
    // Continue on error: the first two of each are added.
    let r = write(
        &sw,
        vec![meter(1), meter(2), meter(3), group(1), group(2), group(3)],
        false,
    )
    .unwrap();
    let refused: Vec<u32> = r.statuses.iter().map(|s| s.index).collect();
    assert_eq!(refused, [2, 5]);
    assert_eq!(held(&sw), 4);
    // Replacing one is not adding one; deleting one makes room in the same write.
    let mut m1 = parse_meter("meter=1,pktps,bands=type=drop,rate=20").unwrap();
    m1.id = 1;
    write(
        &sw,
        vec![
            update(update::Type::Modify, entity::Entity::Meter(m1)),
            update(
                update::Type::Delete,
                entity::Entity::Meter(v1::Meter {
                    id: 2,
                    ..Default::default()
                }),
            ),
            meter(3),
        ],
        true,
    )
    .unwrap();
    assert_eq!(held(&sw), 4);

    add_port(&sw, "p1").unwrap();
    add_port(&sw, "p2").unwrap();
    let e = add_port(&sw, "p3").unwrap_err();
    assert_eq!(e.code, tonic::Code::ResourceExhausted);
    assert!(e.message.contains("--max-ports-per-bridge"), "{e}");
    sw.add_bridge(v1::AddBridgeRequest {
        name: "br1".into(),
        ..Default::default()
    })
    .unwrap();
    let e = sw
        .add_bridge(v1::AddBridgeRequest {
            name: "br2".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code, tonic::Code::ResourceExhausted);
    assert!(e.message.contains("--max-bridges"), "{e}");
    sw.shutdown();
}

/// What a store holds beyond lowered limits is restored; only additions are refused.
#[test]
fn a_store_over_the_limits_is_restored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let sw = start(dir.path(), Capacity::default());
    let adds = (0..10)
        .map(|i| {
            update(
                update::Type::Insert,
                entity::Entity::Flow(
                    parse_flow(&format!("priority={},actions=drop", i + 1)).unwrap(),
                ),
            )
        })
        .collect();
    write(&sw, adds, true).unwrap();
    sw.shutdown();
    drop(sw);
    let sw = start(
        dir.path(),
        Capacity {
            flows_per_table: 4,
            ..Capacity::default()
        },
    );
    assert_eq!(flows(&sw).len(), 11);
    let add = update(
        update::Type::Insert,
        entity::Entity::Flow(parse_flow("priority=99,actions=drop").unwrap()),
    );
    let e = write(&sw, vec![add], true).unwrap_err();
    assert!(
        e.message.contains("table 0 is full: it holds 11 flows"),
        "{e}"
    );
    sw.shutdown();
}

// ---------------------------------------------------------------------------------------
// Reads.
// ---------------------------------------------------------------------------------------

const READ_FILTERS: [&str; 9] = [
    "",
    "ip",
    "table=1",
    "ip,nw_dst=10.0.0.0/16",
    "priority=20,ip,nw_dst=10.0.1.0/24",
    "tcp",
    "out_port=2",
    "table=0,arp",
    "cookie=0x5/0xf",
];

fn read_filter_of(i: usize) -> v1::ReadFilter {
    match i {
        i if i < READ_FILTERS.len() => {
            let mut f = parse_match(READ_FILTERS[i]).unwrap();
            // The fifth one as a strict filter.
            f.strict = i == 4;
            filter(read_filter::Filter::Flows(f))
        }
        9 => filter(read_filter::Filter::Meters(v1::MeterFilter { id: Some(1) })),
        10 => filter(read_filter::Filter::Meters(v1::MeterFilter::default())),
        11 => filter(read_filter::Filter::Groups(v1::GroupFilter { id: Some(2) })),
        12 => filter(read_filter::Filter::Groups(v1::GroupFilter {
            id: Some(77),
        })),
        13 => filter(read_filter::Filter::Ports(v1::PortFilter::default())),
        _ => filter(read_filter::Filter::Ports(v1::PortFilter {
            port: Some(v1::PortRef {
                port: Some(v1::port_ref::Port::Name("p2".into())),
            }),
        })),
    }
}

/// A bridge with flows in two tables, meters, groups and ports.
fn populated(dir: &std::path::Path) -> Arc<Switch> {
    let sw = start(dir, Capacity::default());
    add_port(&sw, "p1").unwrap();
    add_port(&sw, "p2").unwrap();
    let mut ups = Vec::new();
    for id in 1..=3 {
        ups.push(update(
            update::Type::Insert,
            entity::Entity::Meter(
                parse_meter(&format!("meter={id},pktps,bands=type=drop,rate=10")).unwrap(),
            ),
        ));
        ups.push(update(
            update::Type::Insert,
            entity::Entity::Group(
                parse_group(&format!("group_id={id},type=all,bucket=output:p1")).unwrap(),
            ),
        ));
    }
    for i in 0..40 {
        let text = match i % 5 {
            0 => format!(
                "priority={},ip,nw_dst=10.0.{i}.0/24,actions=output:p2",
                10 + i % 3 * 5
            ),
            1 => format!(
                "table=1,priority={i},tcp,tp_dst={},actions=output:p1",
                1000 + i
            ),
            2 => format!("cookie=0x{i:x},priority={i},arp,arp_tpa=10.1.0.{i},actions=normal"),
            3 => format!("priority=20,ip,nw_dst=10.0.{}.0/24,actions=group:2", i / 5),
            _ => format!("table=2,priority={i},udp,actions=meter:1,output:p2"),
        };
        ups.push(update(
            update::Type::Insert,
            entity::Entity::Flow(parse_flow(&text).unwrap()),
        ));
    }
    write(&sw, ups, true).unwrap();
    sw
}

/// Everything a Read returns: entity texts in order, and port numbers in order.
fn read_all(sw: &Switch, filters: Vec<v1::ReadFilter>) -> (Vec<String>, Vec<u32>) {
    let req = v1::ReadRequest {
        bridge: "br0".into(),
        filters,
    };
    let mut ents = Vec::new();
    let mut ports = Vec::new();
    for r in sw.read(&req).unwrap() {
        for e in r.entities {
            ents.push(match e.entity.unwrap() {
                entity::Entity::Flow(mut f) => {
                    f.stats = None;
                    format!(
                        "flow {:03} {:05} {}",
                        f.table_id,
                        65535 - f.priority,
                        format_flow(&f)
                    )
                }
                entity::Entity::Meter(m) => format!("meter {:05}", m.id),
                entity::Entity::Group(g) => format!("group {:05}", g.id),
                other => panic!("unexpected {other:?}"),
            });
        }
        ports.extend(r.ports.iter().map(|p| p.port_no));
    }
    (ents, ports)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A Read of several filters returns the union of what each returns alone: each
    /// entity once, flows by table then priority, then meters, groups, ports by number.
    #[test]
    fn a_read_returns_the_union_of_its_filters_once_each(
        picks in prop::collection::vec(0usize..15, 1..12)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sw = populated(dir.path());
        let (ents, ports) = read_all(&sw, picks.iter().map(|&i| read_filter_of(i)).collect());
        let mut want_ents = BTreeSet::new();
        let mut want_ports = BTreeSet::new();
        for &i in &picks {
            let (e, p) = read_all(&sw, vec![read_filter_of(i)]);
            want_ents.extend(e);
            want_ports.extend(p);
        }
        prop_assert_eq!(ents.iter().cloned().collect::<BTreeSet<_>>(), want_ents);
        prop_assert_eq!(ents.len(), ents.iter().collect::<BTreeSet<_>>().len());
        // Flows (by table, then priority; "flow TTT PPPPP" with PPPPP = 65535 - priority),
        // then meters, then groups, each by id.
        let order = |s: &String| match s.split(' ').next() {
            Some("flow") => (0, s[..14].to_string()),
            Some("meter") => (1, s.clone()),
            _ => (2, s.clone()),
        };
        prop_assert!(ents.windows(2).all(|w| order(&w[0]) <= order(&w[1])), "{:?}", ents);
        prop_assert_eq!(ports.clone(), want_ports.into_iter().collect::<Vec<_>>());
        sw.shutdown();
    }
}

#[test]
fn a_read_takes_a_bounded_number_of_filters_and_answers_in_bounded_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let sw = start(dir.path(), Capacity::default());
    add_port(&sw, "p1").unwrap();
    let req = |n: usize| v1::ReadRequest {
        bridge: "br0".into(),
        filters: vec![read_filter_of(0); n],
    };
    let e = sw.read(&req(MAX_READ_FILTERS + 1)).unwrap_err();
    assert_eq!(e.code, tonic::Code::InvalidArgument);
    assert_eq!(e.field, "filters");
    // 3,000 flows of 300 actions each (about 2 KB apiece): the responses stay near
    // CHUNK_BYTES, and every flow comes once however many filters select it.
    let mut ups = Vec::new();
    for i in 0..3000u32 {
        let mut f = parse_flow(&format!(
            "priority={},ip,nw_dst=10.{}.{}.0/24,actions=output:p1",
            100 + i % 11,
            i / 256,
            i % 256
        ))
        .unwrap();
        if let Some(v1::instruction::Instruction::ApplyActions(a)) =
            f.instructions[0].instruction.as_mut()
        {
            a.actions = vec![a.actions[0].clone(); 300];
        }
        ups.push(update(update::Type::Insert, entity::Entity::Flow(f)));
    }
    write(&sw, ups, true).unwrap();
    let out = sw.read(&req(MAX_READ_FILTERS)).unwrap();
    let n: usize = out.iter().map(|r| r.entities.len()).sum();
    assert_eq!(n, 3001);
    assert!(out.len() >= 3, "{} responses", out.len());
    for r in &out {
        assert!(r.entities.len() <= CHUNK_ENTITIES);
        let largest = r
            .entities
            .iter()
            .map(prost::Message::encoded_len)
            .max()
            .unwrap_or(0);
        assert!(prost::Message::encoded_len(r) <= CHUNK_BYTES + largest + 8);
    }
    sw.shutdown();
}

/// A Read streams from a selection made when it started: a flow deleted since is left
/// out, one added since is not sent, and a bridge deleted since ends it with NOT_FOUND.
#[test]
fn a_read_streaming_while_the_bridge_changes() {
    let dir = tempfile::tempdir().unwrap();
    let sw = start(dir.path(), Capacity::default());
    let adds = |from: u32, n: u32| {
        (from..from + n)
            .map(|i| {
                update(
                    update::Type::Insert,
                    entity::Entity::Flow(
                        parse_flow(&format!("priority=5,tcp,tp_dst={i},actions=drop")).unwrap(),
                    ),
                )
            })
            .collect()
    };
    write(&sw, adds(1, 3000), true).unwrap();
    let req = v1::ReadRequest {
        bridge: "br0".into(),
        filters: Vec::new(),
    };
    let mut r = sw.reader(&req).unwrap();
    let first = sw.read_chunk(&mut r).unwrap().unwrap();
    assert_eq!(first.entities.len(), CHUNK_ENTITIES);
    // Delete every flow with an odd port, add 500 more.
    let dels: Vec<v1::Update> = (1..=3000)
        .filter(|i| i % 2 == 1)
        .map(|i| {
            let mut f = parse_match(&format!("priority=5,tcp,tp_dst={i}")).unwrap();
            f.strict = true;
            update(update::Type::Delete, entity::Entity::FlowFilter(f))
        })
        .collect();
    write(&sw, dels, true).unwrap();
    write(&sw, adds(5000, 500), true).unwrap();
    let mut rest = 0;
    while let Some(c) = sw.read_chunk(&mut r).unwrap() {
        for e in c.entities {
            let Some(entity::Entity::Flow(f)) = e.entity else {
                panic!("not a flow")
            };
            let text = format_flow(&f);
            let port: u32 = text
                .split("tp_dst=")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            assert!(port.is_multiple_of(2) && port < 5000, "{text}");
            rest += 1;
        }
    }
    // Of the 3,001 selected, 1,024 (ports 1 to 1,024) were sent first; of the other
    // 1,977 (ports 1,025 to 3,000, then the NORMAL flow), the 988 odd ports went.
    assert_eq!(rest, 989);

    let mut r = sw.reader(&req).unwrap();
    sw.read_chunk(&mut r).unwrap().unwrap();
    sw.del_bridge(v1::DelBridgeRequest {
        name: "br0".into(),
        if_exists: false,
    })
    .unwrap();
    let e = sw.read_chunk(&mut r).unwrap_err();
    assert_eq!(e.code, tonic::Code::NotFound);
    assert!(e.message.contains("deleted during the Read"), "{e}");
    sw.shutdown();
}
