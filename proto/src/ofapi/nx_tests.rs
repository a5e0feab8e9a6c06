//! Tests of the Nicira actions' mapping (`nx.rs`).
use super::*;
use crate::flow_text;
use crate::openflow::actions::{Action, Actions};
use crate::openflow::list::encode;
use proptest::prelude::*;

fn ip() -> v1::Match {
    flow_text::parse_flow("ip,actions=drop")
        .expect("flow")
        .r#match
        .expect("match")
}

fn api_of(bytes: &[u8], at: Place<'_>) -> Result<Vec<v1::Action>, OfpError> {
    let l = Actions::new_checked(bytes)?;
    super::super::actions::to_api(&l, at)
}

/// Wire to API and back gives the same bytes; returns the API form.
fn round_trip(wire: &[Action<'_>]) -> Vec<v1::Action> {
    let m = ip();
    let bytes = encode(wire);
    let a = api_of(&bytes, Place::Flow(&m)).unwrap_or_else(|e| panic!("{wire:?}: {e:?}"));
    let mut out = Vec::new();
    super::super::actions::emit(&a, &mut out);
    assert_eq!(out, bytes, "{wire:?} -> {a:?}");
    a
}

fn nx(a: NxAction<'_>) -> Action<'_> {
    Action::Nx(a)
}

fn reg(n: u8) -> OxmId {
    let f = [Of::Reg0, Of::Reg1, Of::Reg2, Of::Reg3][usize::from(n)];
    OxmId::of(f)
}

fn ct_actions(ct: &[Action<'_>]) -> Vec<u8> {
    encode(ct)
}

#[test]
fn each_nicira_action_round_trips_through_the_api() {
    let nat = Nat {
        flags: NAT_SRC | NAT_PROTO_RANDOM,
        ipv4_min: Some([10, 0, 0, 1]),
        ipv4_max: Some([10, 0, 0, 9]),
        proto_min: Some(1000),
        proto_max: Some(2000),
        ..Nat::default()
    };
    let inner = ct_actions(&[
        nx(NxAction::Nat(nat)),
        Action::SetField(Oxm::new(Of::CtMark, &[0, 0, 0, 7])),
        nx(NxAction::RegLoad {
            ofs_nbits: encode_ofs_nbits(0, 1),
            dst: OxmId::of(Of::CtLabel).header,
            value: 1,
        }),
    ]);
    let clone_inner = encode(&[
        Action::Output {
            port: PortNo(1),
            max_len: 0,
        },
        nx(NxAction::Exit),
    ]);
    let wire = [
        nx(NxAction::RegMove {
            n_bits: 16,
            src_ofs: 0,
            dst_ofs: 16,
            src: reg(0),
            dst: reg(1),
        }),
        nx(NxAction::RegMove {
            n_bits: 48,
            src_ofs: 0,
            dst_ofs: 0,
            src: OxmId::of(Of::NxmEthSrc),
            dst: OxmId::of(Of::NxmEthDst),
        }),
        nx(NxAction::RegLoad {
            ofs_nbits: encode_ofs_nbits(4, 8),
            dst: reg(2).header,
            value: 0x5a,
        }),
        nx(NxAction::Resubmit { in_port: 2 }),
        nx(NxAction::ResubmitTable {
            in_port: IN_PORT_16,
            table: 3,
            ct: false,
        }),
        nx(NxAction::ResubmitTable {
            in_port: 0xfffe,
            table: 4,
            ct: false,
        }),
        nx(NxAction::Note(&[1, 2, 3, 0, 0, 0])),
        nx(NxAction::OutputReg {
            ofs_nbits: encode_ofs_nbits(16, 16),
            src: reg(1).header,
            max_len: 0xffff,
        }),
        nx(NxAction::Stack {
            pop: false,
            offset: 0,
            field: reg(3),
            n_bits: 32,
        }),
        nx(NxAction::Stack {
            pop: true,
            offset: 8,
            field: reg(3),
            n_bits: 8,
        }),
        nx(NxAction::Clone(
            Actions::new_checked(&clone_inner).expect("clone body"),
        )),
        nx(NxAction::Multipath {
            fields: 1,
            basis: 50,
            algorithm: 2,
            max_link: 3,
            arg: 0,
            ofs_nbits: encode_ofs_nbits(0, 2),
            dst: reg(0).header,
        }),
        nx(NxAction::Ct(Ct {
            flags: CT_COMMIT,
            zone_src: 0,
            zone: 5,
            recirc_table: 1,
            alg: 0,
            actions: Actions::new_checked(&inner).expect("ct body"),
        })),
        nx(NxAction::CtClear),
        nx(NxAction::Exit),
    ];
    let a = round_trip(&wire);
    let text = flow_text::format_actions(&a);
    assert_eq!(
        text,
        "move:NXM_NX_REG0[0..15]->NXM_NX_REG1[16..31],\
         move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],\
         set_field:0x5a0/0xff0->reg2,resubmit:2,resubmit(,3),resubmit(LOCAL,4),\
         note:01.02.03.00.00.00,output:NXM_NX_REG1[16..31],push:NXM_NX_REG3[],\
         pop:NXM_NX_REG3[8..15],clone(output:1,exit),\
         multipath(symmetric_l4,50,hrw,4,0,NXM_NX_REG0[0..1]),\
         ct(commit,table=1,zone=5,nat(src=10.0.0.1-10.0.0.9:1000-2000,random),\
         exec(set_field:0x7->ct_mark,set_field:0x1/0x1->ct_label)),ct_clear,exit"
    );
}

#[test]
fn set_fields_go_out_as_open_vswitch_sends_them() {
    // A whole register: OFPAT_SET_FIELD; some bits: one reg_load per run of bits;
    // xreg has only an OXM header, which reg_load takes too.
    let sf = |f: Api, v: Vec<u8>, m: Vec<u8>| {
        vec![act(action::Action::SetField(v1::SetField {
            field: f as i32,
            value: v,
            mask: m,
        }))]
    };
    let wire = |a: &[v1::Action]| {
        let mut out = Vec::new();
        super::super::actions::emit(a, &mut out);
        out
    };
    assert_eq!(
        wire(&sf(Api::Reg0, vec![0, 0, 0, 5], vec![])),
        encode(&[Action::SetField(Oxm::new(Of::Reg0, &[0, 0, 0, 5]))])
    );
    assert_eq!(
        wire(&sf(Api::Reg0, vec![0, 1, 0, 5], vec![0, 0xff, 0, 0x0f])),
        encode(&[
            nx(NxAction::RegLoad {
                ofs_nbits: encode_ofs_nbits(0, 4),
                dst: reg(0).header,
                value: 5
            }),
            nx(NxAction::RegLoad {
                ofs_nbits: encode_ofs_nbits(16, 8),
                dst: reg(0).header,
                value: 1
            }),
        ])
    );
    let x = wire(&sf(Api::Xreg0, vec![0; 8], vec![0, 0, 0, 0, 0, 0, 0, 0xff]));
    assert_eq!(
        x,
        encode(&[nx(NxAction::RegLoad {
            ofs_nbits: encode_ofs_nbits(0, 8),
            dst: OxmId::of(Of::Xreg0).header,
            value: 0
        })])
    );
    // A 128-bit run is two loads of 64.
    let l = wire(&sf(Api::Xxreg0, vec![0; 16], vec![0xff; 16]));
    assert_eq!(Actions::new_checked(&l).expect("ok").count(), 1);
    let l = wire(&sf(Api::CtLabel, vec![0; 16], {
        let mut m = vec![0xff; 16];
        m[0] = 0x7f;
        m
    }));
    assert_eq!(Actions::new_checked(&l).expect("ok").count(), 2);
}

#[test]
fn bad_nicira_actions_get_open_vswitch_errors() {
    let m = ip();
    let err = |w: &[Action<'_>]| api_of(&encode(w), Place::Flow(&m)).err();
    let mv = |src: OxmId, dst: OxmId, n: u16, dst_ofs: u16| {
        nx(NxAction::RegMove {
            n_bits: n,
            src_ofs: 0,
            dst_ofs,
            src,
            dst,
        })
    };
    let unknown = OxmId {
        header: 0x0001_7e04,
        experimenter: 0,
    };
    assert_eq!(
        err(&[mv(unknown, reg(1), 8, 0)]),
        Some(bad_match::BAD_FIELD)
    );
    assert_eq!(
        err(&[mv(reg(0), reg(1), 8, 30)]),
        Some(bad_action::BAD_SET_LEN)
    );
    assert_eq!(
        err(&[mv(reg(0), reg(1), 0, 0)]),
        Some(bad_action::BAD_SET_LEN)
    );
    assert_eq!(
        err(&[mv(reg(0), OxmId::of_masked(Of::Reg1), 8, 0)]),
        Some(bad_match::BAD_MASK)
    );
    assert_eq!(
        err(&[mv(reg(0), OxmId::of(Of::NxmEthType), 16, 0)]),
        Some(bad_action::BAD_SET_ARGUMENT)
    );
    // Needs tcp in the match.
    assert_eq!(
        err(&[mv(reg(0), OxmId::of(Of::NxmTcpDst), 16, 0)]),
        Some(bad_action::MATCH_INCONSISTENT)
    );
    let load = |v: u64, n: u32, dst: u32| {
        nx(NxAction::RegLoad {
            ofs_nbits: encode_ofs_nbits(0, n),
            dst,
            value: v,
        })
    };
    assert_eq!(
        err(&[load(0x100, 8, reg(0).header)]),
        Some(bad_action::BAD_ARGUMENT)
    );
    assert_eq!(
        err(&[load(1, 8, 0x0001_7e04)]),
        Some(bad_action::BAD_SET_TYPE)
    );
    assert_eq!(
        err(&[nx(NxAction::ResubmitTable {
            in_port: IN_PORT_16,
            table: 1,
            ct: true
        })]),
        Some(bad_action::BAD_ARGUMENT)
    );
    let mp = |fields: u16, algorithm: u16, max_link: u16| {
        nx(NxAction::Multipath {
            fields,
            basis: 0,
            algorithm,
            max_link,
            arg: 0,
            ofs_nbits: encode_ofs_nbits(0, 2),
            dst: reg(0).header,
        })
    };
    assert_eq!(err(&[mp(9, 0, 1)]), Some(bad_action::BAD_ARGUMENT));
    assert_eq!(err(&[mp(0, 9, 1)]), Some(bad_action::BAD_ARGUMENT));
    assert_eq!(err(&[mp(0, 0, 4)]), Some(bad_action::BAD_ARGUMENT));
    let empty: Vec<u8> = Vec::new();
    let ct = |flags: u16, zone_src: u32, alg: u16, inner: &[u8]| {
        encode(&[nx(NxAction::Ct(Ct {
            flags,
            zone_src,
            zone: 0,
            recirc_table: CT_RECIRC_NONE,
            alg,
            actions: Actions::new_checked(inner).expect("inner"),
        }))])
    };
    let ct_err = |b: Vec<u8>| api_of(&b, Place::Flow(&m)).err();
    assert_eq!(
        ct_err(ct(CT_FORCE, 0, 0, &empty)),
        Some(bad_action::BAD_ARGUMENT)
    );
    // A zone from a field takes exactly 16 bits (here `zone` 0 is ofs 0, one bit).
    assert_eq!(
        ct_err(ct(0, reg(0).header, 0, &empty)),
        Some(bad_action::BAD_SET_LEN)
    );
    let from_reg = encode(&[nx(NxAction::Ct(Ct {
        flags: CT_COMMIT,
        zone_src: reg(3).header,
        zone: encode_ofs_nbits(0, 16),
        recirc_table: 2,
        alg: 0,
        actions: Actions::new_checked(&empty).expect("inner"),
    }))]);
    let a = api_of(&from_reg, Place::Flow(&m)).expect("a zone from reg3");
    assert_eq!(
        flow_text::format_actions(&a),
        "ct(commit,table=2,zone=NXM_NX_REG3[0..15])"
    );
    let mut back = Vec::new();
    super::super::actions::emit(&a, &mut back);
    assert_eq!(
        back, from_reg,
        "a zone from a field goes back out as it came"
    );
    assert_eq!(
        ct_err(ct(CT_COMMIT, 0, 21, &empty)),
        Some(bad_action::BAD_ARGUMENT)
    );
    // A port range that starts at 0 (Open vSwitch never sends one: 0 means none).
    let bad_nat = encode(&[nx(NxAction::Nat(Nat {
        flags: NAT_SRC,
        ipv4_min: Some([10, 0, 0, 1]),
        proto_min: Some(0),
        proto_max: Some(5),
        ..Nat::default()
    }))]);
    assert_eq!(
        ct_err(ct(CT_COMMIT, 0, 0, &bad_nat)),
        Some(bad_action::BAD_ARGUMENT)
    );
    let mark = encode(&[Action::SetField(Oxm::new(Of::CtMark, &[0, 0, 0, 1]))]);
    assert_eq!(ct_err(ct(0, 0, 0, &mark)), Some(bad_action::BAD_ARGUMENT));
    let out = encode(&[Action::Output {
        port: PortNo(1),
        max_len: 0,
    }]);
    assert_eq!(
        ct_err(ct(CT_COMMIT, 0, 0, &out)),
        Some(bad_action::BAD_ARGUMENT)
    );
    assert_eq!(
        err(&[nx(NxAction::Nat(Nat::default()))]),
        Some(bad_action::BAD_EXP_TYPE)
    );
    // What the API has no form for stays an unsupported experimenter action.
    assert_eq!(
        err(&[nx(NxAction::SetTunnel(5))]),
        Some(bad_action::BAD_EXP_TYPE)
    );
}

#[test]
fn clone_keeps_its_actions_and_refuses_what_a_copy_cannot_do() {
    let m = ip();
    let inner = encode(&[Action::PopVlan]);
    let b = encode(&[nx(NxAction::Clone(
        Actions::new_checked(&inner).expect("inner"),
    ))]);
    assert_eq!(
        api_of(&b, Place::Flow(&m)).err(),
        Some(bad_action::BAD_ARGUMENT)
    );
}

proptest! {
    /// Generated Nicira actions either map to the API and come back as the same
    /// bytes, or are refused with an error; never a panic.
    #[test]
    fn generated_nicira_actions_round_trip_or_are_refused(
        kind in 0u8..8,
        r1 in 0u8..4,
        r2 in 0u8..4,
        ofs in 0u16..40,
        n in 0u16..40,
        v in any::<u64>(),
        table in any::<u8>(),
        port in any::<u16>(),
    ) {
        let a = match kind {
            0 => nx(NxAction::RegMove { n_bits: n, src_ofs: ofs, dst_ofs: 0, src: reg(r1), dst: reg(r2) }),
            1 => nx(NxAction::RegLoad { ofs_nbits: encode_ofs_nbits(ofs.into(), n.max(1).into()), dst: reg(r1).header, value: v }),
            2 => nx(NxAction::ResubmitTable { in_port: port, table, ct: false }),
            3 => nx(NxAction::Stack { pop: r1 & 1 == 0, offset: ofs, field: reg(r2), n_bits: n }),
            4 => nx(NxAction::OutputReg { ofs_nbits: encode_ofs_nbits(ofs.into(), n.max(1).into()), src: reg(r1).header, max_len: 0xffff }),
            5 => nx(NxAction::Multipath { fields: u16::from(r1), basis: port, algorithm: u16::from(r2), max_link: table.into(), arg: v as u32, ofs_nbits: encode_ofs_nbits(ofs.into(), n.max(1).into()), dst: reg(r1).header }),
            6 => nx(NxAction::Resubmit { in_port: port }),
            _ => nx(NxAction::Exit),
        };
        let m = ip();
        let bytes = encode(&[a]);
        if let Ok(api) = api_of(&bytes, Place::Flow(&m)) {
            let mut out = Vec::new();
            super::super::actions::emit(&api, &mut out);
            let again = api_of(&out, Place::Flow(&m)).expect("re-encoded actions map again");
            prop_assert_eq!(again, api);
        }
    }

    /// Arbitrary bytes after a Nicira action header never panic the mapping.
    #[test]
    fn arbitrary_nicira_bodies_never_panic(
        st in 0u16..60,
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut b = Vec::new();
        b.put_u16(0xffff);
        b.put_u16(0);
        b.put_u32(NX_VENDOR_ID);
        b.put_u16(st);
        b.extend_from_slice(&body);
        while b.len() % 8 != 0 {
            b.push(0);
        }
        let len = b.len() as u16;
        b[2..4].copy_from_slice(&len.to_be_bytes());
        let m = ip();
        for at in [Place::Flow(&m), Place::Bucket, Place::PacketOut] {
            if let Ok(api) = api_of(&b, at) {
                let mut out = Vec::new();
                super::super::actions::emit(&api, &mut out);
                prop_assert!(Actions::new_checked(&out).is_ok());
            }
        }
    }
}

#[test]
fn dec_ttl_with_controller_ids_goes_both_ways() {
    let ids = [0u8, 1, 0, 7];
    let a = round_trip(&[nx(NxAction::DecTtlCntIds(&ids))]);
    assert_eq!(flow_text::format_actions(&a), "dec_ttl(1,7)");
    let plain = flow_text::parse_actions("dec_ttl").expect("plain");
    let mut out = Vec::new();
    super::super::actions::emit(&plain, &mut out);
    assert_eq!(
        out,
        encode(&[Action::DecNwTtl]),
        "plain dec_ttl is OpenFlow's"
    );
}
