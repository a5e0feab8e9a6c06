//! The event stream: packet-in, packet-out, flow-removed, port-status and learned MACs.

use super::*;

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
