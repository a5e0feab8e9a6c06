use super::*;
use datapath::actions::Instructions;
use proptest::prelude::*;
use proto::flow_text::parse_flow;
use proto::v1::instruction;

fn none(_: &str) -> Option<u32> {
    None
}

fn dp(text: &str) -> (DpMatch, Instructions) {
    let f = parse_flow(text).unwrap();
    let m = convert_match(f.r#match.as_ref().unwrap(), &none).unwrap();
    let ins = convert_instructions(&f.instructions, &none, &m.canonical).unwrap();
    (m, ins)
}

/// A flow with 100,000 outputs, a group with 100,000 buckets and a meter with
/// 1,000,000 bands were accepted; now each is refused naming its field, before any of
/// it is converted.
#[test]
fn actions_buckets_and_bands_are_bounded() {
    let out = |n: usize| -> Vec<v1::Action> {
        let f = parse_flow("actions=output:1").unwrap();
        let Some(instruction::Instruction::ApplyActions(a)) = &f.instructions[0].instruction else {
            unreachable!()
        };
        a.actions.iter().cloned().cycle().take(n).collect()
    };
    assert!(convert_actions(&out(MAX_ACTIONS), &none, Context::Bucket).is_ok());
    let e = convert_actions(&out(100_000), &none, Context::Bucket).unwrap_err();
    assert_eq!(e.field, "actions");
    use crate::meter_group::{convert_group, convert_meter};
    let bucket = |n| v1::Bucket {
        actions: out(n),
        ..Default::default()
    };
    let group = |buckets: Vec<v1::Bucket>| v1::Group {
        id: 1,
        r#type: v1::GroupType::All as i32,
        buckets,
        ..Default::default()
    };
    let e = convert_group(&group(vec![bucket(0); 100_000]), &none).unwrap_err();
    assert_eq!(e.field, "group.buckets");
    let e = convert_group(&group(vec![bucket(3); 2000]), &none).unwrap_err();
    assert!(e.message.contains("6000 actions"), "{e}");
    assert!(convert_group(&group(vec![bucket(2); 2000]), &none).is_ok());
    let mut m = proto::flow_text::parse_meter("meter=1,pktps,bands=type=drop,rate=10").unwrap();
    m.bands = vec![m.bands[0]; 1_000_000];
    let e = convert_meter(&m, 0).unwrap_err();
    assert_eq!(e.field, "meter.bands");
    m.bands.truncate(datapath::meter::MAX_BANDS);
    assert!(convert_meter(&m, 0).is_ok());
}

#[test]
fn fields_land_in_their_bits() {
    let (m, _) = dp("ip,nw_dst=10.0.0.0/24,nw_tos=0x20,actions=drop");
    assert_eq!(m.key.get(DpField::EthType), 0x0800);
    assert_eq!(m.key.get(DpField::Ipv4Dst), 0x0a00_0000);
    assert_eq!(m.mask.get(DpField::Ipv4Dst), 0xffff_ff00);
    assert_eq!(m.key.get(DpField::IpTos), 0x20);
    assert_eq!(m.mask.get(DpField::IpTos), 0xfc);
    let (m, _) = dp("dl_vlan=5,dl_vlan_pcp=3,actions=drop");
    assert_eq!(m.key.get(DpField::VlanTci), (3 << 13) | 0x1000 | 5);
    assert_eq!(m.mask.get(DpField::VlanTci), 0xffff);
    let (m, _) = dp("tcp,tp_dst=80,actions=drop");
    assert_eq!(m.key.get(DpField::TpDst), 80);
    assert_eq!(m.key.get(DpField::IpProto), 6);
    let (m, _) = dp("arp,arp_spa=1.2.3.4,actions=drop");
    assert_eq!(m.key.get(DpField::Ipv4Src), 0x0102_0304);
}

#[test]
fn untagged_vid_pins_the_tag_bit() {
    // Untagged is "no tag bit" (OpenFlow's OFPVID_NONE): the VID and the tag bit are
    // matched (vlan_tci=0x0000/0x1fff, as OVS models dl_vlan=0xffff).
    let (m, _) = dp("dl_vlan=0xffff,actions=drop");
    assert_eq!(m.key.get(DpField::VlanTci), 0);
    assert_eq!(m.mask.get(DpField::VlanTci), 0x1fff);
}

#[test]
fn set_fields_inside_a_byte_are_masked() {
    let (_, ins) = dp("ip,actions=mod_nw_tos:0x40,set_field:4103->vlan_vid,output:1");
    assert!(ins.apply.iter().any(|a| matches!(
        a,
        Action::SetFieldMasked {
            field: DpField::IpTos,
            value: 0x40,
            mask: 0xfc
        }
    )));
    assert!(ins.apply.iter().any(|a| matches!(
        a,
        Action::SetFieldMasked {
            field: DpField::VlanTci,
            value: 7,
            mask: 0xfff
        }
    )));
}

#[test]
fn openflow10_and_mpls_actions_reach_the_datapath() {
    let (_, ins) = dp(
        "actions=set_vlan_pcp:5,enqueue:in_port:2,enqueue:3:4,pop_queue,\
         push_mpls:0x8848,pop_mpls:0x0800,dec_mpls_ttl,output:1",
    );
    let want = [
        Action::SetVlan {
            value: 5 << 13,
            mask: 0xe000,
            push: true,
        },
        Action::Enqueue {
            port: PortNo::IN_PORT,
            queue: 2,
        },
        Action::Enqueue {
            port: PortNo(3),
            queue: 4,
        },
        Action::PopQueue,
        Action::PushMpls { ethertype: 0x8848 },
        Action::PopMpls { ethertype: 0x0800 },
        Action::DecMplsTtl,
        Action::Output(PortNo(1)),
    ];
    assert_eq!(&ins.apply[..], &want);
    let bad = |a: action::Action| {
        let a = v1::Action { action: Some(a) };
        convert_actions(&[a], &none, Context::Bucket).unwrap_err()
    };
    bad(action::Action::PushMpls(v1::PushMpls { ethertype: 0x800 }));
    bad(action::Action::SetVlanVid(v1::SetVlanVid { vid: 4096 }));
    let port = Some(v1::PortRef {
        port: Some(port_ref::Port::Number(0)),
    });
    bad(action::Action::Enqueue(v1::Enqueue { port, queue_id: 1 }));
}

#[test]
fn nicira_actions_reach_the_datapath_in_flows_only() {
    let sf = |field, shift, bits| DpSubfield::new(field, shift, bits).unwrap();
    let (m, ins) = dp(
        "ip,xreg1=0x500000006,actions=move:NXM_OF_VLAN_TCI[0..11]->reg14[4..15],note:01,\
         clone(load:3->ip_dscp),push:OXM_OF_IP_DSCP[],pop:xxreg3[100..105],\
         output:reg9[0..15],resubmit(3,2),exit",
    );
    assert_eq!(m.key.get(DpField::Reg(2)), 5);
    assert_eq!(m.key.get(DpField::Reg(3)), 6);
    let want = [
        Action::Move {
            src: sf(DpField::VlanTci, 0, 12),
            dst: sf(DpField::Reg(14), 4, 12),
        },
        Action::Clone { len: 1 },
        Action::SetFieldMasked {
            field: DpField::IpTos,
            value: 3 << 2,
            mask: 0x3f << 2,
        },
        Action::StackPush(sf(DpField::IpTos, 2, 6)),
        Action::StackPop(sf(DpField::Xxreg(3), 100, 6)),
        Action::OutputField(sf(DpField::Reg(9), 0, 16)),
        Action::Resubmit {
            in_port: Some(PortNo(3)),
            table: Some(TableId(2)),
        },
        Action::Exit,
    ];
    assert_eq!(&ins.apply[..], &want);
    // Not in buckets; nothing that reads fields after pop_mpls; in_port is read-only.
    let f = parse_flow("actions=resubmit(,1)").unwrap();
    let acts = match &f.instructions[0].instruction {
        Some(instruction::Instruction::ApplyActions(a)) => a.actions.clone(),
        other => panic!("{other:?}"),
    };
    assert!(convert_actions(&acts, &none, Context::Bucket).is_err());
    for text in [
        "mpls,actions=pop_mpls:0x0800,move:NXM_OF_IP_SRC[]->reg0[]",
        "mpls,actions=pop_mpls:0x0800,resubmit(,1)",
        "actions=load:1->NXM_OF_IN_PORT[]",
        "actions=move:reg0[0..15]->NXM_OF_IN_PORT[]",
    ] {
        let f = parse_flow(text).unwrap();
        let m = convert_match(f.r#match.as_ref().unwrap(), &none).unwrap();
        assert!(
            convert_instructions(&f.instructions, &none, &m.canonical).is_err(),
            "{text}"
        );
    }
}

#[test]
fn named_ports_resolve_or_fail_not_found() {
    let f = parse_flow("in_port=p1,actions=output:p2").unwrap();
    let names = |n: &str| match n {
        "p1" => Some(1),
        "p2" => Some(2),
        _ => None,
    };
    let m = convert_match(f.r#match.as_ref().unwrap(), &names).unwrap();
    assert_eq!(m.key.get(DpField::InPort), 1);
    let ins = convert_instructions(&f.instructions, &names, &m.canonical).unwrap();
    assert_eq!(&*ins.apply, &[Action::Output(PortNo(2))]);
    let e = convert_match(f.r#match.as_ref().unwrap(), &none).unwrap_err();
    assert_eq!(e.code, tonic::Code::NotFound);
    assert_eq!(e.field, "match.in_port");
}

#[test]
fn api_matches_are_checked() {
    let bad = Match {
        fields: vec![FieldMatch {
            field: Field::Ipv4Dst as i32,
            value: vec![10, 0, 0, 1],
            ..FieldMatch::default()
        }],
    };
    let e = convert_match(&bad, &none).unwrap_err();
    assert_eq!(e.code, tonic::Code::InvalidArgument);
    assert!(e.field.contains("ip_dst"), "{e:?}");
    let short = Match {
        fields: vec![FieldMatch {
            field: Field::EthType as i32,
            value: vec![8],
            ..FieldMatch::default()
        }],
    };
    assert!(convert_match(&short, &none).is_err());
}

fn field_strategy() -> impl Strategy<Value = FieldMatch> {
    let widths = prop::sample::select(vec![0usize, 1, 2, 4, 6, 8, 16]);
    (0i32..50, widths.clone(), widths, any::<u64>(), any::<u64>()).prop_map(
        |(field, vw, mw, v, m)| {
            let bytes = |n: usize, x: u64| -> Vec<u8> {
                (0..n)
                    .map(|i| (x.rotate_left(i as u32 * 8) & 0xff) as u8)
                    .collect()
            };
            FieldMatch {
                field,
                value: bytes(vw, v),
                mask: bytes(mw, m),
                port_name: String::new(),
            }
        },
    )
}

proptest! {
    /// Arbitrary API matches never panic; an accepted one is canonical: converting its
    /// canonical form again gives the same message, key and mask.
    #[test]
    fn api_matches_convert_or_fail_cleanly(fields in prop::collection::vec(field_strategy(), 0..6)) {
        let m = Match { fields };
        if let Ok(d) = convert_match(&m, &none) {
            let again = convert_match(&d.canonical, &none).unwrap();
            prop_assert_eq!(&again.canonical, &d.canonical);
            prop_assert_eq!((again.key, again.mask), (d.key, d.mask));
            prop_assert_eq!(d.key, d.key.masked(&d.mask));
        }
    }

    /// Arbitrary set-field and output actions never panic.
    #[test]
    fn api_actions_convert_or_fail_cleanly(
        f in field_strategy(),
        port in any::<u32>(),
        ctx in prop::collection::vec(field_strategy(), 0..4),
    ) {
        let ctx = Match { fields: ctx };
        let acts = vec![
            v1::Action {
                action: Some(action::Action::SetField(v1::SetField {
                    field: f.field,
                    value: f.value,
                    mask: f.mask,
                })),
            },
            v1::Action {
                action: Some(action::Action::Output(v1::Output {
                    port: Some(v1::PortRef { port: Some(port_ref::Port::Number(port)) }),
                    max_len: None,
                })),
            },
        ];
        let _ = convert_actions(&acts, &none, Context::Flow(&ctx));
        let _ = convert_actions(&acts, &none, Context::PacketOut);
    }
}

#[test]
fn identical_matches_have_one_identity() {
    let (a, _) = dp("priority=5,ip,nw_src=10.1.2.3/16,actions=drop");
    let (b, _) = dp("priority=5,nw_src=10.1.0.0/16,ip,actions=drop");
    assert_eq!(
        flow_ident(TableId(0), 5, &a.key, &a.mask),
        flow_ident(TableId(0), 5, &b.key, &b.mask)
    );
}

#[test]
fn the_action_set_converts_and_refuses_what_it_cannot_hold() {
    let (m, ins) = dp(
        "actset_output=unset,actions=output:1,clear_actions,write_actions(set_field:5->reg1,resubmit(,2),group:3),goto_table:1",
    );
    assert_eq!(
        m.key.get(DpField::ActsetOutput),
        0,
        "UNSET is the datapath's 0"
    );
    assert_eq!(m.mask.get(DpField::ActsetOutput), 0xffff_ffff);
    assert!(ins.clear_actions);
    assert_eq!(ins.write_actions.len(), 3);
    assert!(
        ins.uses_group(GroupId(3)),
        "out_group filters see the action set"
    );
    let (m, _) = dp("actset_output=LOCAL,actions=drop");
    assert_eq!(
        m.key.get(DpField::ActsetOutput),
        u128::from(PortNo::LOCAL.0)
    );
    // Through the API, an action the set cannot hold is refused by name.
    let f = parse_flow("actions=write_actions(output:1)").unwrap();
    let mut list = f.instructions.clone();
    if let Some(instruction::Instruction::WriteActions(w)) = &mut list[0].instruction {
        w.actions.push(
            proto::flow_text::parse_actions("note:01")
                .unwrap()
                .remove(0),
        );
    }
    let m = convert_match(f.r#match.as_ref().unwrap(), &none).unwrap();
    let e = convert_instructions(&list, &none, &m.canonical).unwrap_err();
    assert!(
        format!("{e:?}").contains("write_actions.actions[1]"),
        "{e:?}"
    );
}
