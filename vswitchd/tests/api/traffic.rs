//! Flow changes under traffic.

use super::*;

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
