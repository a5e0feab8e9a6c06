//! Writes: all-or-none batches, precise statuses for bad requests, and OpenFlow's
//! selection rules for modify and delete.

use super::*;

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
