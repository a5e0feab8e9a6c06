//! Actions: multiple tables with set-field and goto, dec_ttl, VLAN push and pop, several
//! outputs and flood, groups, controller, and flow counters with idle timeouts.

use super::*;

#[test]
fn multi_table_set_field_and_goto() {
    let mut br = Bridge::new(3);
    // Table 0 rewrites the destination IP and continues; table 1 matches the new value.
    br.add(
        0,
        10,
        &[exact(Field::EthType, 0x0800)],
        Instructions {
            apply: vec![
                Action::SetField {
                    field: Field::Ipv4Dst,
                    value: 0x0a00_0063,
                },
                Action::DecTtl,
            ]
            .into(),
            write_metadata: Some((7, 0xff)),
            goto_table: Some(TableId(1)),
            ..Instructions::default()
        },
    );
    br.add(
        1,
        10,
        &[
            exact(Field::EthType, 0x0800),
            exact(Field::Ipv4Dst, 0x0a00_0063),
            exact(Field::Metadata, 7),
        ],
        out(&[3]),
    );
    br.send(1, &[udp(1, 2, 5)]);
    let got = br.port(3).drain();
    assert_eq!(got.len(), 1);
    let mut k = FlowKey::ZERO;
    extract(&got[0], PortNo(1), &mut k).unwrap();
    assert_eq!(k.get(Field::Ipv4Dst), 0x0a00_0063);
    assert_eq!(k.get(Field::IpTtl), 63);
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&got[0][14..])
        .unwrap()
        .to_header();
    assert_eq!(ip.calc_header_checksum(), ip.header_checksum);
}

#[test]
fn dec_ttl_expiry_is_counted() {
    let mut br = Bridge::new(2);
    br.add(
        0,
        10,
        &[],
        Instructions::actions(vec![Action::DecTtl, Action::Output(PortNo(2))]),
    );
    let mut f = udp(1, 2, 1);
    f[22] = 1;
    let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[14..])
        .unwrap()
        .to_header();
    let c = ip.calc_header_checksum();
    f[24..26].copy_from_slice(&c.to_be_bytes());
    br.send(1, &[f, udp(1, 2, 1)]);
    assert_eq!(br.drops(DropReason::TtlExceeded), 1);
    assert_eq!(br.port(2).drain().len(), 1);
}

#[test]
fn push_and_pop_vlan_actions() {
    let mut br = Bridge::new(3);
    br.add(
        0,
        10,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![
            Action::PushVlan { tpid: 0x8100 },
            Action::SetField {
                field: Field::VlanTci,
                value: 0x1000 | 42,
            },
            Action::Output(PortNo(2)),
        ]),
    );
    br.add(
        0,
        10,
        &[exact(Field::InPort, 2)],
        Instructions::actions(vec![Action::PopVlan, Action::Output(PortNo(3))]),
    );
    br.send(1, &[udp(1, 2, 1)]);
    let tagged = br.port(2).drain();
    assert_eq!(tagged, vec![udp_vlan(1, 2, 42)]);
    assert_eq!(tagged[0][12..16], [0x81, 0x00, 0x00, 42]);
    br.send(2, &tagged);
    assert_eq!(br.port(3).drain(), vec![udp(1, 2, 1)]);
}

#[test]
fn multiple_outputs_copy_and_flood_excludes_ingress() {
    let mut br = Bridge::new(4);
    br.add(0, 10, &[exact(Field::InPort, 1)], out(&[2, 3]));
    br.add(
        0,
        10,
        &[exact(Field::InPort, 2)],
        Instructions::actions(vec![Action::Flood]),
    );
    let frames: Vec<_> = (0..40).map(|i| udp(1, 2, i)).collect();
    br.send(1, &frames);
    assert_eq!(br.port(2).drain(), frames);
    assert_eq!(br.port(3).drain(), frames);
    br.send(2, &frames);
    assert_eq!(br.port(1).drain(), frames);
    assert_eq!(br.port(3).drain(), frames);
    assert_eq!(br.port(4).drain(), frames);
    assert!(br.port(2).drain().is_empty());
}

#[test]
fn groups_select_and_all() {
    let mut br = Bridge::new(4);
    br.dp
        .set_group(Group {
            id: GroupId(1),
            kind: GroupKind::Select,
            buckets: vec![
                Bucket::new(1, vec![Action::Output(PortNo(2))]),
                Bucket::new(1, vec![Action::Output(PortNo(3))]),
            ],
            selection: Selection::Default,
        })
        .unwrap();
    br.dp
        .set_group(Group {
            id: GroupId(2),
            kind: GroupKind::All,
            buckets: vec![
                Bucket::new(0, vec![Action::Output(PortNo(3))]),
                Bucket::new(0, vec![Action::Output(PortNo(4))]),
            ],
            selection: Selection::Default,
        })
        .unwrap();
    br.add(
        0,
        10,
        &[exact(Field::InPort, 1)],
        Instructions::actions(vec![Action::Group(GroupId(1))]),
    );
    br.add(
        0,
        10,
        &[exact(Field::InPort, 4)],
        Instructions::actions(vec![Action::Group(GroupId(2))]),
    );
    let frames: Vec<_> = (0..200).map(|i| udp(1, 2, i)).collect();
    br.send(1, &frames);
    let (a, b) = (br.port(2).drain(), br.port(3).drain());
    assert_eq!(
        a.len() + b.len(),
        200,
        "select sends each packet to exactly one bucket"
    );
    assert!(
        a.len() > 40 && b.len() > 40,
        "both buckets used: {} / {}",
        a.len(),
        b.len()
    );
    // Same flow, same bucket.
    br.send(1, &[udp(1, 2, 7), udp(1, 2, 7), udp(1, 2, 7)]);
    let (a, b) = (br.port(2).drain().len(), br.port(3).drain().len());
    assert!(a == 3 || b == 3);
    br.send(4, &frames[..5]);
    assert_eq!(br.port(3).drain().len(), 5);
    // Missing group: counted.
    br.add(
        0,
        10,
        &[exact(Field::InPort, 2)],
        Instructions::actions(vec![Action::Group(GroupId(9))]),
    );
    br.send(2, &frames[..3]);
    assert_eq!(br.drops(DropReason::NoSuchGroup), 3);
}

#[test]
fn controller_action_sends_packet_in() {
    let mut br = Bridge::new(2);
    br.add(
        0,
        10,
        &[],
        Instructions::actions(vec![Action::Controller { max_len: 20 }]),
    );
    br.send(1, &[udp(1, 2, 3)]);
    let pi = br.packet_in.try_recv().unwrap();
    assert_eq!(pi.in_port, PortNo(1));
    assert_eq!(pi.data, udp(1, 2, 3)[..20].to_vec());
    assert_eq!(pi.total_len, udp(1, 2, 3).len());
    assert_eq!(pi.key.get(Field::TpSrc), 3);
}

#[test]
fn flow_counters_and_idle_timeout() {
    let mut br = Bridge::new(2);
    let mut s = spec(0, 10, &[exact(Field::InPort, 1)], out(&[2]));
    s.idle_timeout_s = 1;
    br.dp
        .flow_mods(&[FlowMod::Add {
            spec: s,
            check_overlap: false,
        }])
        .unwrap();
    let frames: Vec<_> = (0..10).map(|i| udp(1, 2, i)).collect();
    br.send(1, &frames);
    let snap = br.dp.snapshot();
    let rule = snap
        .pipeline
        .rules(Some(TableId(0)))
        .next()
        .unwrap()
        .clone();
    let st = rule.stats.read();
    assert_eq!(st.packets, 10);
    assert_eq!(st.bytes, frames.iter().map(|f| f.len() as u64).sum::<u64>());
    assert!(br.dp.expire_flows().is_none(), "not idle yet");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(br.dp.expire_flows().is_some());
    assert_eq!(br.dp.snapshot().pipeline.rule_count(), 0);
    br.send(1, &frames[..1]);
    assert_eq!(
        br.drops(DropReason::TableMiss),
        1,
        "the cached megaflow died with the flow"
    );
}
