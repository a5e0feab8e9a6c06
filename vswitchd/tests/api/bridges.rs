//! Bridges as a new store and `add-br` make them, and everything surviving a restart.

use super::*;

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
