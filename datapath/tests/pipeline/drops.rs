//! Every drop reason can be provoked and is counted.

use super::*;

/// Every drop counter can be made to count (a counter nothing increments is a bug): each
/// reason is provoked through the pipeline and its counter checked. `NoHeadroom` cannot
/// happen with ports that leave headroom; `actions::rewrite`'s unit tests provoke it.
#[test]
fn every_drop_reason_is_reachable() {
    let config = DatapathConfig {
        slow_path_budget: 1,
        packet_in_queue: 1,
        pool_buffers: 0,
        ..DatapathConfig::default()
    };
    let mut br = Bridge::with_config(
        &[None, None, None, Some(VlanMode::Access(VlanId(5)))],
        config,
    );
    let good = udp(1, 2, 1);
    // Port 1: a classifier that sends by UDP source port to the interesting actions.
    let by_sport = |sport: u16, actions: Vec<Action>| {
        br.add(
            0,
            100,
            &[
                exact(Field::InPort, 1),
                exact(Field::EthType, 0x0800),
                exact(Field::IpProto, 17),
                exact(Field::TpSrc, sport as u128),
            ],
            Instructions::actions(actions),
        );
    };
    by_sport(10, vec![]);
    by_sport(11, vec![Action::DecTtl, Action::Output(PortNo(2))]);
    by_sport(13, vec![Action::Group(GroupId(77))]);
    by_sport(14, vec![Action::Output(PortNo(99))]);
    by_sport(15, vec![Action::Controller { max_len: 64 }]);
    // A flow that resubmits to its own table, forever.
    by_sport(
        17,
        vec![Action::Resubmit {
            in_port: None,
            table: None,
        }],
    );
    by_sport(
        16,
        vec![Action::Output(PortNo(2)), Action::Output(PortNo(3))],
    );
    br.add(
        0,
        100,
        &[
            exact(Field::InPort, 1),
            exact(Field::TpSrc, 12),
            exact(Field::EthType, 0x0800),
            exact(Field::IpProto, 17),
        ],
        Instructions {
            meter: Some(datapath::types::MeterId(9)),
            ..out(&[2])
        },
    );
    br.add(
        0,
        90,
        &[
            exact(Field::InPort, 1),
            exact(Field::EthType, 0x0800),
            exact(Field::IpProto, 17),
            exact(Field::TpSrc, 20),
        ],
        Instructions {
            meter: Some(datapath::types::MeterId(1)),
            ..out(&[2])
        },
    );
    br.dp
        .set_meter(
            datapath::meter::Meter::new(
                datapath::types::MeterId(1),
                datapath::meter::MeterUnit::Pktps,
                vec![datapath::meter::Band {
                    kind: datapath::meter::BandKind::Drop,
                    rate: 1,
                    burst: 1,
                }],
                br.dp.now_ns(),
            )
            .unwrap(),
        )
        .unwrap();
    // Port 2 sends through a 1 kbit/s shaper with a one-packet queue; port 3 is policed.
    br.add(
        0,
        90,
        &[
            exact(Field::InPort, 1),
            exact(Field::EthType, 0x0800),
            exact(Field::IpProto, 17),
            exact(Field::TpSrc, 21),
        ],
        out(&[2]),
    );
    let qos = datapath::qos::EgressQos::new(
        datapath::qos::QosConfig {
            max_rate_kbps: 1,
            burst_kb: 1,
            queues: vec![datapath::qos::QueueConfig {
                limit: 1,
                ..datapath::qos::QueueConfig::new(0)
            }],
        },
        br.dp.now_ns(),
    )
    .unwrap();
    let policer = datapath::qos::Policer::new(1, 1, br.dp.now_ns()).unwrap();
    br.dp
        .transaction(|t| {
            t.set_port_qos(PortNo(2), None, Some(Arc::new(qos)))?;
            t.set_port_qos(PortNo(3), Some(Arc::new(policer)), None)
        })
        .unwrap();
    // MPLS: each of tables 0..10 pops a label and goes on to the next table, each time
    // looking the packet up again (a recirculation), more often than the datapath follows.
    for table in 0..10u8 {
        br.add(
            table,
            100,
            &[exact(Field::InPort, 1), exact(Field::EthType, 0x8847)],
            Instructions {
                apply: vec![Action::PopMpls { ethertype: 0x8847 }].into(),
                goto_table: Some(TableId(table + 1)),
                ..Instructions::default()
            },
        );
    }
    // Ports 2..4: `normal`; port 1 has no miss flow.
    for port in 2..=4 {
        br.add(
            0,
            0,
            &[exact(Field::InPort, port)],
            Instructions::actions(vec![Action::Normal]),
        );
    }

    let mut cut_tag = good[..12].to_vec();
    cut_tag.extend_from_slice(&[0x81, 0x00, 0x00]);
    let mut frames = vec![vec![0u8; 10], cut_tag];
    let mut three_tags = udp_vlan(1, 2, 5);
    three_tags.splice(12..12, [0x81, 0x00, 0x00, 0x06, 0x81, 0x00, 0x00, 0x07]);
    frames.push(three_tags);
    let mut arp = good[..14].to_vec();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 10]);
    frames.push(arp);
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x43;
    frames.push(bad_ihl);
    let mut bad_len = good.clone();
    bad_len[16..18].copy_from_slice(&2000u16.to_be_bytes());
    frames.push(bad_len);
    let mut v6 = good[..14].to_vec();
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let mut short6 = v6.clone();
    short6.extend_from_slice(&[0x60; 20]);
    frames.push(short6);
    // IPv6 with a hop-by-hop header that claims more than the payload holds.
    let mut ext6 = v6.clone();
    ext6.extend_from_slice(&[0x60, 0, 0, 0, 0, 8, 0, 64]);
    ext6.extend_from_slice(&[0; 32]);
    ext6.extend_from_slice(&[17, 4, 0, 0, 0, 0, 0, 0]);
    frames.push(ext6);
    // UDP header cut short inside a consistent IPv4 datagram.
    let mut short_udp = good[..38].to_vec();
    short_udp[16..18].copy_from_slice(&24u16.to_be_bytes());
    frames.push(short_udp);
    let mut mpls = good[..12].to_vec();
    mpls.extend_from_slice(&[0x88, 0x47]);
    frames.push([mpls.as_slice(), &[0, 0]].concat()); // a cut label stack entry
    for _ in 0..12 {
        mpls.extend_from_slice(&[0, 0, 0, 64]);
    }
    frames.push(mpls); // twelve labels, popped one table after another
    frames.push(udp(1, 2, 999)); // table miss (no flow for port 1 sport 999)
    frames.push(udp(1, 2, 10)); // flow with no actions
    let mut ttl1 = udp(1, 2, 11);
    ttl1[22] = 1;
    frames.push(ttl1);
    frames.push(udp(1, 2, 12)); // missing meter
    frames.push(udp(1, 2, 13)); // missing group
    frames.push(udp(1, 2, 14)); // missing port
    for _ in 0..3 {
        frames.push(udp(1, 2, 15)); // the packet-in queue holds one
    }
    frames.push(udp(1, 2, 16)); // two outputs need a copy: the pool has no buffers
    frames.push(udp(1, 2, 17)); // resubmit loop
    for _ in 0..4 {
        frames.push(udp(1, 2, 20)); // a 1 pkt/s meter
    }
    for f in &frames {
        br.send(1, std::slice::from_ref(f));
    }
    br.send(1, &[udp(1, 2, 21), udp(1, 2, 21), udp(1, 2, 21)]);
    br.send(3, &[udp(9, 8, 1), udp(9, 8, 1), udp(9, 8, 1)]);
    // Two new flows in one burst with a slow-path budget of one.
    br.send(1, &[udp(1, 2, 30), udp(1, 2, 31)]);
    // `normal`: a tagged frame on an access port; then a destination learned on the ingress port.
    br.send(4, &[udp_vlan(7, 8, 5)]);
    br.send(2, &[udp(7, 8, 1)]);
    br.send(2, &[udp(8, 7, 1)]);

    // Copies past the bound: a bridge that allows none (this one's empty pool counts
    // every copy as drop_no_buffer first).
    let mut none = Bridge::with_config(
        &[None, None, None],
        DatapathConfig {
            max_copies_per_packet: 0,
            ..DatapathConfig::default()
        },
    );
    none.add(0, 1, &[], out(&[2, 3]));
    none.send(1, &[udp(1, 2, 1)]);

    let missing: Vec<_> = DropReason::ALL
        .iter()
        // A full recirculation queue takes connection tracking: tests/conntrack_pipeline.rs;
        // a mirror output port takes a mirror: tests/mirror.rs; the port configuration
        // drops take a PORT_MOD: tests/port_config.rs.
        .filter(|r| {
            **r != DropReason::NoHeadroom
                && **r != DropReason::RecircFull
                && **r != DropReason::MirrorPort
                && !r.name().starts_with("drop_port_")
                && br.drops(**r) + none.drops(**r) == 0
        })
        .map(|r| r.name())
        .collect();
    assert!(missing.is_empty(), "never counted: {missing:?}");
}
