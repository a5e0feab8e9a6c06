//! The daemon in-process, driven through its real gRPC API over a real unix socket:
//! writes and reads, per-update errors and all-or-none, durability across restarts, the
//! event stream (packet-in, packet-out, flow-removed, port-status, MAC learned), health and
//! reflection, and 10k flow changes under traffic without losing an allowed packet.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proto::flow_text::{format_flow, parse_flow, parse_group, parse_match, parse_meter};
use proto::v1::switch_client::SwitchClient;
use proto::v1::{
    self, entity, stream_message_request as smq, stream_message_response as smr, update,
};
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;
use vswitchd::server::{self, Listen};
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

struct Daemon {
    sw: Arc<Switch>,
    sock: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    async fn start(dir: &Path) -> Daemon {
        let store = Store::open(&dir.join("conf.db")).expect("store");
        let sw = Switch::start(store, SwitchConfig::default()).expect("switch");
        let sock = dir.join("api.sock");
        let (tx, rx) = oneshot::channel::<()>();
        let listen = vec![Listen::Unix(sock.clone())];
        let sw2 = Arc::clone(&sw);
        let task = tokio::spawn(async move {
            let listeners = server::bind(&listen, None, server::Limits::default()).await?;
            server::serve(sw2, listeners, async {
                let _ = rx.await;
            })
            .await
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "daemon socket never appeared");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Daemon {
            sw,
            sock,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn client(&self) -> SwitchClient<Channel> {
        // The socket file appears at bind(), a moment before listen(): retry briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match vswitchd::client::connect_unix(&self.sock).await {
                Ok(c) => return c,
                Err(e) if Instant::now() >= deadline => panic!("connect: {e:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("serve");
        }
        self.sw.shutdown();
    }
}

fn ins(e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: update::Type::Insert as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

fn upd(t: update::Type, e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: t as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

fn flow(text: &str) -> v1::Update {
    ins(entity::Entity::Flow(parse_flow(text).expect(text)))
}

async fn write(
    c: &mut SwitchClient<Channel>,
    bridge: &str,
    updates: Vec<v1::Update>,
    atomic: bool,
) -> Result<v1::WriteResponse, tonic::Status> {
    c.write(v1::WriteRequest {
        bridge: bridge.into(),
        updates,
        atomicity: if atomic {
            v1::Atomicity::AllOrNone as i32
        } else {
            v1::Atomicity::ContinueOnError as i32
        },
    })
    .await
    .map(|r| r.into_inner())
}

async fn read_flows(c: &mut SwitchClient<Channel>, bridge: &str, filter: &str) -> Vec<v1::Flow> {
    let f = if filter.is_empty() {
        v1::FlowFilter::default()
    } else {
        parse_match(filter).expect(filter)
    };
    let mut s = c
        .read(v1::ReadRequest {
            bridge: bridge.into(),
            filters: vec![v1::ReadFilter {
                filter: Some(v1::read_filter::Filter::Flows(f)),
            }],
        })
        .await
        .expect("read")
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.message().await.expect("read stream") {
        for e in r.entities {
            if let Some(entity::Entity::Flow(f)) = e.entity {
                out.push(f);
            }
        }
    }
    out
}

fn normal_text() -> String {
    format_flow(&parse_flow("priority=0,actions=normal").expect("default flow"))
}

fn texts(flows: &[v1::Flow]) -> Vec<String> {
    let mut v: Vec<String> = flows.iter().map(format_flow).collect();
    v.sort();
    v
}

async fn add_memory_port(c: &mut SwitchClient<Channel>, bridge: &str, name: &str, no: u32) {
    c.add_port(v1::AddPortRequest {
        bridge: bridge.into(),
        port: Some(v1::PortConfig {
            name: name.into(),
            r#type: "memory".into(),
            requested_ofport: Some(no),
            ..Default::default()
        }),
    })
    .await
    .expect("add port");
}

fn udp_frame(src: u8, dst: u8, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, src]);
    f[30..34].copy_from_slice(&[10, 0, 0, dst]);
    let mut sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_starts_with_br0_and_normal() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    let bridges = c
        .list_bridges(v1::ListBridgesRequest {})
        .await
        .unwrap()
        .into_inner()
        .bridges;
    assert_eq!(bridges.len(), 1);
    assert_eq!(bridges[0].name, "br0");
    let flows = read_flows(&mut c, "br0", "").await;
    assert_eq!(texts(&flows), vec![normal_text()]);
    d.stop().await;
}

/// As `ovs-vsctl add-br`: a new bridge (standalone, the default) is a learning switch whose
/// table 0 holds `priority=0,actions=NORMAL`, stored like any flow and deletable for good;
/// a bridge in secure mode starts empty. (`tests/ovs_parity.rs` checks the same against
/// Open vSwitch itself.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_bridge_is_a_learning_switch_unless_secure() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    c.add_bridge(v1::AddBridgeRequest {
        name: "br1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.add_bridge(v1::AddBridgeRequest {
        name: "sec".into(),
        fail_mode: v1::FailMode::Secure as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(
        texts(&read_flows(&mut c, "br1", "").await),
        vec![normal_text()]
    );
    assert!(read_flows(&mut c, "sec", "").await.is_empty());
    // It switches: a frame to an unknown station floods, its answer goes back alone.
    for (i, name) in ["p1", "p2", "p3"].iter().enumerate() {
        add_memory_port(&mut c, "br1", name, i as u32 + 1).await;
    }
    let p: Vec<_> = ["p1", "p2", "p3"]
        .iter()
        .map(|n| d.sw.memory_port("br1", n).unwrap())
        .collect();
    let wait = |port: &datapath::port::MemPort, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            got.extend(port.drain());
            std::thread::sleep(Duration::from_millis(5));
        }
        got
    };
    p[0].inject([udp_frame(1, 2, 1000)]);
    assert_eq!(wait(&p[1], 1), vec![udp_frame(1, 2, 1000)]);
    assert_eq!(wait(&p[2], 1), vec![udp_frame(1, 2, 1000)]);
    p[1].inject([udp_frame(2, 1, 1000)]);
    assert_eq!(wait(&p[0], 1), vec![udp_frame(2, 1, 1000)]);
    assert!(
        wait(&p[2], 1).is_empty(),
        "a learned station's frame was flooded"
    );
    let dp = d.sw.datapath("br1").unwrap();
    let misses: u64 = dp
        .pmd_counters()
        .iter()
        .map(|c| c.drops_for(datapath::stats::DropReason::TableMiss))
        .sum();
    assert_eq!(misses, 0);
    // The MAC table's counters: two stations learned, then one seen on another port.
    p[2].inject([udp_frame(1, 2, 1001)]);
    assert_eq!(wait(&p[1], 1).len(), 1);
    let macs = c
        .get_mac_table(v1::GetMacTableRequest {
            bridge: "br1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let st = macs.stats.unwrap();
    assert_eq!(
        (st.entries, st.learned, st.moved, st.evicted, st.aged),
        (2, 2, 1, 0, 0),
        "{st:?}"
    );
    assert_eq!(st.capacity, dp.mac_table().capacity() as u64);
    // A flow added over traffic removes the megaflows it touches, and the poll thread's
    // counters say so.
    write(
        &mut c,
        "br1",
        vec![flow("priority=5,udp,actions=NORMAL")],
        true,
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let pmd = loop {
        let all = c
            .get_pmd_stats(v1::GetPmdStatsRequest {})
            .await
            .unwrap()
            .into_inner()
            .pmds;
        let pmd = all.into_iter().find(|p| p.bridge == "br1").unwrap();
        if pmd.megaflow_removed > 0 || Instant::now() > deadline {
            break pmd;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(pmd.megaflow_installed >= 1, "{pmd:?}");
    assert!(pmd.megaflow_removed >= 1, "{pmd:?}");
    assert_eq!(pmd.megaflow_full, 0, "{pmd:?}");
    // Deleted, it stays deleted across a restart; secure stays empty.
    let del = upd(
        update::Type::Delete,
        entity::Entity::FlowFilter(v1::FlowFilter::default()),
    );
    write(&mut c, "br1", vec![del], true).await.unwrap();
    assert!(read_flows(&mut c, "br1", "").await.is_empty());
    d.stop().await;
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    assert!(read_flows(&mut c, "br1", "").await.is_empty());
    assert!(read_flows(&mut c, "sec", "").await.is_empty());
    assert_eq!(
        texts(&read_flows(&mut c, "br0", "").await),
        vec![normal_text()]
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_meters_groups_and_ports_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let wanted = [
        "table=0,priority=100,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/24,actions=mod_dl_dst:02:00:00:00:00:02,output:2",
        "table=0,priority=50,tcp,tp_dst=80,actions=meter:1,goto_table:1",
        "table=1,priority=10,cookie=0x99,idle_timeout=300,ip,actions=group:7",
        "table=1,priority=9,arp,actions=FLOOD",
        "priority=8,udp6,ipv6_dst=2001:db8::/32,actions=dec_ttl,output:1",
    ];
    {
        let d = Daemon::start(dir.path()).await;
        let mut c = d.client().await;
        add_memory_port(&mut c, "br0", "p1", 1).await;
        add_memory_port(&mut c, "br0", "p2", 2).await;
        let mut ups = vec![
            ins(entity::Entity::Meter(
                parse_meter("meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000")
                    .unwrap(),
            )),
            ins(entity::Entity::Group(
                parse_group("group_id=7,type=select,bucket=output:1,bucket=output:2").unwrap(),
            )),
        ];
        ups.extend(wanted.iter().map(|t| flow(t)));
        let r = write(&mut c, "br0", ups, true).await.unwrap();
        assert!(r.statuses.is_empty(), "{:?}", r.statuses);
        d.stop().await;
    }
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    let got = texts(&read_flows(&mut c, "br0", "").await);
    let mut expect: Vec<String> = wanted
        .iter()
        .map(|t| format_flow(&parse_flow(t).unwrap()))
        .collect();
    expect.push(normal_text());
    expect.sort();
    assert_eq!(got, expect);
    let ports = c
        .list_ports(v1::ListPortsRequest {
            bridge: "br0".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .ports;
    assert_eq!(
        ports
            .iter()
            .map(|p| (p.port_no, p.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "p1"), (2, "p2")]
    );
    let meters = c
        .get_meter_stats(v1::GetMeterStatsRequest {
            bridge: "br0".into(),
            meter_id: None,
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(meters.len(), 1);
    assert_eq!(meters[0].flow_count, 1);
    let groups = c
        .get_group_stats(v1::GetGroupStatsRequest {
            bridge: "br0".into(),
            group_id: Some(7),
        })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(groups[0].ref_count, 1);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_or_none_refuses_the_whole_batch_and_names_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    let before = texts(&read_flows(&mut c, "br0", "").await);
    let ups = vec![
        flow("priority=5,ip,actions=drop"),
        flow("priority=6,ip,actions=group:42"),
        flow("priority=7,arp,actions=drop"),
    ];
    let e = write(&mut c, "br0", ups.clone(), true).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(e.message().contains("updates[1]"), "{}", e.message());
    assert!(e.message().contains("group"), "{}", e.message());
    assert_eq!(texts(&read_flows(&mut c, "br0", "").await), before);

    // Continue-on-error applies the others and reports the one.
    let r = write(&mut c, "br0", ups, false).await.unwrap();
    assert_eq!(r.statuses.len(), 1);
    assert_eq!(r.statuses[0].index, 1);
    assert_eq!(r.statuses[0].code, Code::NotFound as i32);
    assert!(r.statuses[0].field.contains("group"), "{:?}", r.statuses[0]);
    assert_eq!(read_flows(&mut c, "br0", "").await.len(), before.len() + 2);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_precise_statuses_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    let before = texts(&read_flows(&mut c, "br0", "").await);

    let e = write(&mut c, "nope", vec![flow("actions=drop")], true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("bridge"), "{}", e.message());

    // A field whose value has the wrong width.
    let mut f = parse_flow("ip,nw_dst=10.0.0.1,actions=drop").unwrap();
    f.r#match.as_mut().unwrap().fields[1].value = vec![10, 0, 0];
    let e = write(&mut c, "br0", vec![ins(entity::Entity::Flow(f))], true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("updates[0].flow.match.ip_dst"),
        "{}",
        e.message()
    );

    // A prerequisite the match does not meet.
    let mut f = parse_flow("ip,nw_dst=10.0.0.1,actions=drop").unwrap();
    f.r#match.as_mut().unwrap().fields.remove(0);
    let e = write(&mut c, "br0", vec![ins(entity::Entity::Flow(f))], true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("ip_dst"), "{}", e.message());

    // `ct` without an IPv4 or IPv6 match: the error the text parser gives, here for a
    // client that builds the message itself (its `ip` taken away, or made `arp`).
    for (eth, at) in [(None, "actions[1].ct"), (Some([8u8, 6]), "actions[1].ct")] {
        let mut f = parse_flow("ip,actions=set_field:1->reg0,ct(commit),output:1").unwrap();
        let fields = &mut f.r#match.as_mut().unwrap().fields;
        match eth {
            None => fields.clear(),
            Some(t) => fields[0].value = t.to_vec(),
        }
        let e = write(&mut c, "br0", vec![ins(entity::Entity::Flow(f))], true)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{eth:?}");
        assert!(
            e.message().contains(&format!("apply_actions.{at}"))
                && e.message().contains("`ct` needs a match on IPv4 or IPv6"),
            "{eth:?}: {}",
            e.message()
        );
    }
    // `ct(commit)` in a flow that matches `+inv`: refused as Open vSwitch refuses it.
    let mut f = parse_flow("ip,ct_state=+trk+inv,actions=ct(table=1)").unwrap();
    if let Some(v1::instruction::Instruction::ApplyActions(a)) =
        f.instructions[0].instruction.as_mut()
        && let Some(v1::action::Action::Ct(ct)) = a.actions[0].action.as_mut()
    {
        ct.commit = true;
    }
    let e = write(&mut c, "br0", vec![ins(entity::Entity::Flow(f))], true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("apply_actions.actions[0].ct")
            && e.message().contains("ct_state=+inv"),
        "{}",
        e.message()
    );
    // With the match, the same flows are taken.
    write(
        &mut c,
        "br0",
        vec![flow("ip,actions=set_field:1->reg0,ct(commit),output:1")],
        true,
    )
    .await
    .unwrap();
    write(
        &mut c,
        "br0",
        vec![upd(
            update::Type::Delete,
            entity::Entity::Flow(parse_flow("ip,actions=drop").unwrap()),
        )],
        true,
    )
    .await
    .unwrap();

    // goto_table backwards, a table out of range, an unknown named port.
    for (text, code, needle) in [
        ("in_port=nosuch,actions=drop", Code::NotFound, "in_port"),
        ("actions=output:nosuch", Code::NotFound, "output.port"),
        ("actions=meter:9,output:1", Code::NotFound, "meter"),
    ] {
        let e = write(&mut c, "br0", vec![flow(text)], true)
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{text}: {e:?}");
        assert!(e.message().contains(needle), "{text}: {}", e.message());
    }
    let mut f = parse_flow("table=3,actions=goto_table:4").unwrap();
    if let Some(v1::instruction::Instruction::GotoTable(t)) = &mut f.instructions[0].instruction {
        *t = 2;
    }
    let e = write(&mut c, "br0", vec![ins(entity::Entity::Flow(f))], true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("goto_table"), "{}", e.message());
    let mut f = parse_flow("actions=drop").unwrap();
    f.table_id = 254;
    let e = write(&mut c, "br0", vec![ins(entity::Entity::Flow(f))], true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("table_id"), "{}", e.message());

    // Meters: duplicate insert, modify/delete of a missing one, a zero rate.
    let m = parse_meter("meter=1,pktps,bands=type=drop,rate=100").unwrap();
    write(
        &mut c,
        "br0",
        vec![ins(entity::Entity::Meter(m.clone()))],
        true,
    )
    .await
    .unwrap();
    let e = write(
        &mut c,
        "br0",
        vec![ins(entity::Entity::Meter(m.clone()))],
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    let mut m2 = m.clone();
    m2.id = 2;
    let e = write(
        &mut c,
        "br0",
        vec![upd(update::Type::Modify, entity::Entity::Meter(m2.clone()))],
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    m2.bands[0].rate = 0;
    let e = write(&mut c, "br0", vec![ins(entity::Entity::Meter(m2))], true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("rate"), "{}", e.message());

    // An update with no entity, or the wrong type for its entity.
    let e = write(&mut c, "br0", vec![v1::Update::default()], true)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = write(
        &mut c,
        "br0",
        vec![upd(
            update::Type::Insert,
            entity::Entity::FlowFilter(v1::FlowFilter::default()),
        )],
        true,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Ports: an unknown type, a bad name, a duplicate.
    let e = c
        .add_port(v1::AddPortRequest {
            bridge: "br0".into(),
            port: Some(v1::PortConfig {
                name: "x1".into(),
                r#type: "warpdrive".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("port.type"), "{}", e.message());
    let e = c
        .add_port(v1::AddPortRequest {
            bridge: "br0".into(),
            port: Some(v1::PortConfig {
                name: "a name with spaces".into(),
                r#type: "memory".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    add_memory_port(&mut c, "br0", "p1", 1).await;
    let e = c
        .add_port(v1::AddPortRequest {
            bridge: "br0".into(),
            port: Some(v1::PortConfig {
                name: "p1".into(),
                r#type: "memory".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);

    assert_eq!(texts(&read_flows(&mut c, "br0", "").await), before);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modify_and_delete_follow_openflow_selection() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    add_memory_port(&mut c, "br0", "p1", 1).await;
    add_memory_port(&mut c, "br0", "p2", 2).await;
    let ups = vec![
        flow("priority=10,cookie=0x1,ip,nw_dst=10.0.0.0/8,actions=output:1"),
        flow("priority=20,cookie=0x2,ip,nw_dst=10.1.0.0/16,actions=output:1"),
        flow("priority=30,cookie=0x3,arp,actions=output:2"),
    ];
    write(&mut c, "br0", ups, true).await.unwrap();
    // Non-strict modify of ip,nw_dst=10.0.0.0/8 selects both IP flows.
    let m = proto::flow_text::parse_flow_modify("ip,nw_dst=10.0.0.0/8,actions=output:2").unwrap();
    write(
        &mut c,
        "br0",
        vec![upd(update::Type::Modify, entity::Entity::FlowModify(m))],
        true,
    )
    .await
    .unwrap();
    let ip = read_flows(&mut c, "br0", "ip").await;
    assert_eq!(ip.len(), 2);
    for f in &ip {
        assert!(
            format_flow(f).ends_with("actions=output:2"),
            "{}",
            format_flow(f)
        );
    }
    // Delete by cookie mask.
    let del = parse_match("cookie=0x2/-1").unwrap();
    write(
        &mut c,
        "br0",
        vec![upd(update::Type::Delete, entity::Entity::FlowFilter(del))],
        true,
    )
    .await
    .unwrap();
    assert_eq!(read_flows(&mut c, "br0", "ip").await.len(), 1);
    // Delete by out_port.
    let del = parse_match("out_port=2").unwrap();
    write(
        &mut c,
        "br0",
        vec![upd(update::Type::Delete, entity::Entity::FlowFilter(del))],
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        texts(&read_flows(&mut c, "br0", "").await),
        vec![normal_text()]
    );
    d.stop().await;
}

async fn next_event(
    s: &mut tonic::Streaming<v1::StreamMessageResponse>,
    want: impl Fn(&smr::Update) -> bool,
) -> smr::Update {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, s.message())
            .await
            .expect("timed out waiting for an event")
            .expect("stream")
            .expect("stream ended");
        if let Some(u) = m.update
            && want(&u)
        {
            return u;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_carries_packet_in_out_flow_removed_port_status_and_macs() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(v1::StreamMessageRequest {
        update: Some(smq::Update::Arbitration(v1::Arbitration {
            bridge: "br0".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut s = c
        .stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    next_event(&mut s, |u| matches!(u, smr::Update::Arbitration(_))).await;

    add_memory_port(&mut c, "br0", "p1", 1).await;
    add_memory_port(&mut c, "br0", "p2", 2).await;
    let u = next_event(&mut s, |u| matches!(u, smr::Update::PortStatus(p) if p.port.as_ref().is_some_and(|p| p.name == "p2"))).await;
    let smr::Update::PortStatus(ps) = u else {
        unreachable!()
    };
    assert_eq!(ps.reason, v1::PortStatusReason::Add as i32);

    // Traffic through `normal` teaches the MAC table; the stream reports it.
    let p1 = d.sw.memory_port("br0", "p1").unwrap();
    p1.inject([udp_frame(1, 2, 1000)]);
    let u = next_event(&mut s, |u| matches!(u, smr::Update::MacLearned(_))).await;
    let smr::Update::MacLearned(ml) = u else {
        unreachable!()
    };
    assert_eq!(ml.mac, vec![2, 0, 0, 0, 0, 1]);
    assert_eq!(ml.port_name, "p1");

    // Packet-in from a controller action, with table, cookie and the in_port match.
    write(
        &mut c,
        "br0",
        vec![flow(
            "priority=100,cookie=0x77,udp,tp_src=4242,actions=controller",
        )],
        true,
    )
    .await
    .unwrap();
    let frame = udp_frame(3, 4, 4242);
    p1.inject([frame.clone()]);
    let u = next_event(&mut s, |u| matches!(u, smr::Update::PacketIn(_))).await;
    let smr::Update::PacketIn(pi) = u else {
        unreachable!()
    };
    assert_eq!(pi.cookie, 0x77);
    assert_eq!(pi.in_port, 1);
    assert_eq!(pi.data, frame);
    assert_eq!(pi.reason, v1::PacketInReason::Action as i32);

    // Packet-out: the frame leaves p2 byte for byte.
    let p2 = d.sw.memory_port("br0", "p2").unwrap();
    p2.drain();
    tx.send(v1::StreamMessageRequest {
        update: Some(smq::Update::PacketOut(v1::PacketOut {
            bridge: "br0".into(),
            in_port: None,
            actions: proto::flow_text::parse_actions("output:p2").unwrap(),
            data: frame.clone(),
        })),
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let out = loop {
        let got = p2.drain();
        if !got.is_empty() {
            break got;
        }
        assert!(Instant::now() < deadline, "packet-out never left p2");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(out, vec![frame]);

    // A bad packet-out comes back as a stream error, the stream stays up.
    tx.send(v1::StreamMessageRequest {
        update: Some(smq::Update::PacketOut(v1::PacketOut {
            bridge: "br0".into(),
            in_port: None,
            actions: proto::flow_text::parse_actions("output:nosuch").unwrap(),
            data: vec![0; 60],
        })),
    })
    .await
    .unwrap();
    let u = next_event(&mut s, |u| matches!(u, smr::Update::Error(_))).await;
    let smr::Update::Error(e) = u else {
        unreachable!()
    };
    assert_eq!(e.code, Code::NotFound as i32);

    // Flow-removed on delete and on idle timeout, for flows that asked.
    let mut f = parse_flow("priority=5,cookie=0x55,arp,actions=drop").unwrap();
    f.flags.get_or_insert_default().send_flow_rem = true;
    write(&mut c, "br0", vec![ins(entity::Entity::Flow(f))], true)
        .await
        .unwrap();
    let del = parse_match("arp").unwrap();
    write(
        &mut c,
        "br0",
        vec![upd(update::Type::Delete, entity::Entity::FlowFilter(del))],
        true,
    )
    .await
    .unwrap();
    let u = next_event(&mut s, |u| matches!(u, smr::Update::FlowRemoved(_))).await;
    let smr::Update::FlowRemoved(fr) = u else {
        unreachable!()
    };
    assert_eq!(fr.cookie, 0x55);
    assert_eq!(fr.reason, v1::FlowRemovedReason::Delete as i32);

    let mut f = parse_flow("priority=5,cookie=0x56,idle_timeout=1,arp,actions=drop").unwrap();
    f.flags.get_or_insert_default().send_flow_rem = true;
    write(&mut c, "br0", vec![ins(entity::Entity::Flow(f))], true)
        .await
        .unwrap();
    let u = next_event(&mut s, |u| matches!(u, smr::Update::FlowRemoved(_))).await;
    let smr::Update::FlowRemoved(fr) = u else {
        unreachable!()
    };
    assert_eq!(fr.cookie, 0x56);
    assert_eq!(fr.reason, v1::FlowRemovedReason::IdleTimeout as i32);
    // ...and it is gone from the table and the store.
    assert!(read_flows(&mut c, "br0", "arp").await.is_empty());
    drop(tx);
    d.stop().await;
    let store = Store::open(&dir.path().join("conf.db")).unwrap();
    let rec = store.load().unwrap();
    assert!(
        rec["br0"].flows.iter().all(|(_, f)| f.cookie != 0x56),
        "expired flow still in the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let ch = vswitchd::client::channel_unix(&d.sock).await.unwrap();
    let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let r = h
        .check(tonic_health::pb::HealthCheckRequest {
            service: "vswitch.v1.Switch".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request, server_reflection_response,
    };
    let mut r = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut resp = r
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let m = resp.message().await.unwrap().unwrap();
    let Some(server_reflection_response::MessageResponse::ListServicesResponse(l)) =
        m.message_response
    else {
        panic!("unexpected reflection answer {m:?}");
    };
    let names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"vswitch.v1.Switch".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
    d.stop().await;
}

/// 10k flow changes land while traffic runs, and no packet that a flow allows is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_flow_changes_under_traffic_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    add_memory_port(&mut c, "br0", "p1", 1).await;
    add_memory_port(&mut c, "br0", "p2", 2).await;
    write(
        &mut c,
        "br0",
        vec![flow(
            "priority=1000,in_port=1,ip,nw_dst=10.0.0.2,actions=output:2",
        )],
        true,
    )
    .await
    .unwrap();
    let p1 = d.sw.memory_port("br0", "p1").unwrap();
    let p2 = d.sw.memory_port("br0", "p2").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let traffic = {
        let done = Arc::clone(&done);
        let (p1, p2) = (Arc::clone(&p1), Arc::clone(&p2));
        std::thread::spawn(move || {
            let (mut sent, mut got) = (0u64, 0u64);
            let frames: Vec<Vec<u8>> = (0..32).map(|i| udp_frame(1, 2, 1000 + i)).collect();
            while !done.load(Ordering::Acquire) {
                sent += p1.inject(frames.iter()) as u64;
                while p1.rx_pending() > 0 {
                    std::thread::yield_now();
                }
                got += p2.drain().len() as u64;
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while got < sent && Instant::now() < deadline {
                got += p2.drain().len() as u64;
                std::thread::sleep(Duration::from_millis(1));
            }
            (sent, got)
        })
    };
    // 10k changes: 5k adds and 5k deletes of other flows, in batches of 100, some of them
    // at a higher priority in a range the traffic does not use.
    let mut changes = 0;
    for batch in 0..50u32 {
        let adds: Vec<v1::Update> = (0..100u32)
            .map(|i| {
                let n = batch * 100 + i;
                flow(&format!(
                    "priority={},ip,nw_dst=10.{}.{}.{},actions=output:1",
                    1 + (n % 2000),
                    100 + (n >> 16) % 100,
                    (n >> 8) & 0xff,
                    n & 0xff
                ))
            })
            .collect();
        write(&mut c, "br0", adds, true).await.unwrap();
        changes += 100;
        let dels: Vec<v1::Update> = (0..100u32)
            .map(|i| {
                let n = batch * 100 + i;
                upd(
                    update::Type::Delete,
                    entity::Entity::FlowFilter(
                        parse_match(&format!(
                            "ip,nw_dst=10.{}.{}.{}",
                            100 + (n >> 16) % 100,
                            (n >> 8) & 0xff,
                            n & 0xff
                        ))
                        .unwrap(),
                    ),
                )
            })
            .collect();
        write(&mut c, "br0", dels, true).await.unwrap();
        changes += 100;
    }
    assert_eq!(changes, 10_000);
    done.store(true, Ordering::Release);
    let (sent, got) = traffic.join().unwrap();
    assert!(sent > 0);
    assert_eq!(got, sent, "allowed packets lost during flow changes");
    let dp = d.sw.datapath("br0").unwrap();
    let drops: u64 = dp.pmd_counters().iter().map(|c| c.total_drops()).sum();
    assert_eq!(drops, 0);
    // PMD statistics: packets, hits per class, busy and idle time; clear resets them.
    let mut c2 = d.client().await;
    let pmds = c2
        .get_pmd_stats(v1::GetPmdStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pmds;
    let br0 = pmds
        .iter()
        .find(|p| p.rx_packets > 0)
        .expect("a PMD with traffic");
    assert!(br0.rx_packets >= sent);
    assert_eq!(
        br0.emc_hit + br0.megaflow_hit + br0.slow_path,
        br0.rx_packets
    );
    assert!(br0.busy_ns > 0 && br0.idle_ns > 0, "{br0:?}");
    c2.clear_pmd_stats(v1::ClearPmdStatsRequest {})
        .await
        .unwrap();
    let after = c2
        .get_pmd_stats(v1::GetPmdStatsRequest {})
        .await
        .unwrap()
        .into_inner()
        .pmds;
    assert!(
        after
            .iter()
            .all(|p| p.rx_packets == 0 && p.busy_ns < br0.busy_ns)
    );
    d.stop().await;
}
