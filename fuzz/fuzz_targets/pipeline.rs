//! The whole pipeline over arbitrary frames (first byte: ingress port): a bridge with flows
//! that rewrite, tag, untag,
//! decrement TTL, group, send to the controller and learn (`normal`). No input may panic.
#![no_main]

use std::cell::RefCell;
use std::sync::Arc;

use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::{Field, FlowKey};
use datapath::group::{Bucket, Group, GroupKind, Selection};
use datapath::l2::VlanMode;
use datapath::pipeline::{Datapath, DatapathConfig, PacketIn, Pmd};
use datapath::port::{MemPort, Port};
use datapath::types::{GroupId, PortNo, TableId, VlanId};
use libfuzzer_sys::fuzz_target;

struct Bridge {
    _dp: Datapath,
    pmd: Pmd,
    ports: Vec<Arc<MemPort>>,
    _packet_in: std::sync::mpsc::Receiver<PacketIn>,
}

fn flow(table: u8, priority: u16, m: &[(Field, u128)], ins: Instructions) -> FlowMod {
    let mut key = FlowKey::ZERO;
    let mut mask = FlowKey::ZERO;
    for &(f, v) in m {
        key.set(f, v);
        mask.set(f, f.full_mask());
    }
    FlowMod::Add {
        spec: FlowSpec {
            table: TableId(table),
            priority,
            key,
            mask,
            cookie: 0,
            idle_timeout_s: 0,
            hard_timeout_s: 0,
            send_flow_removed: false,
            instructions: ins,
        },
        check_overlap: false,
    }
}

fn bridge() -> Bridge {
    let (dp, packet_in) = Datapath::new(DatapathConfig {
        packet_in_queue: 4,
        ..DatapathConfig::default()
    });
    let ports: Vec<_> = (1..=3)
        .map(|i| Arc::new(MemPort::new(format!("p{i}"), 64)))
        .collect();
    for (i, p) in ports.iter().enumerate() {
        let mode = if i == 2 {
            VlanMode::Access(VlanId(5))
        } else {
            VlanMode::default()
        };
        dp.add_port(PortNo(i as u32 + 1), p.clone() as Arc<dyn Port>, mode)
            .expect("port");
    }
    dp.set_group(Group {
        id: GroupId(1),
        kind: GroupKind::All,
        buckets: vec![
            Bucket::new(0, vec![Action::DecTtl, Action::Output(PortNo(2))]),
            Bucket::new(0, vec![Action::Normal]),
        ],
        selection: Selection::Default,
    })
    .expect("group");
    let set = |field, value| Action::SetField { field, value };
    dp.flow_mods(&[
        flow(0, 0, &[], Instructions::actions(vec![Action::Normal])),
        flow(
            0,
            10,
            &[(Field::EthType, 0x0800)],
            Instructions {
                apply: vec![
                    set(Field::Ipv4Dst, 0x0a00_0001),
                    set(Field::TpDst, 99),
                    Action::DecTtl,
                ]
                .into(),
                goto_table: Some(TableId(1)),
                ..Instructions::default()
            },
        ),
        flow(
            1,
            0,
            &[],
            Instructions::actions(vec![
                Action::PushVlan { tpid: 0x8100 },
                set(Field::VlanTci, 0x1000 | 7),
                Action::Output(PortNo(2)),
                Action::PopVlan,
                Action::Group(GroupId(1)),
            ]),
        ),
        flow(
            0,
            10,
            &[(Field::EthType, 0x86dd)],
            Instructions::actions(vec![
                set(Field::Ipv6Src, 1),
                Action::Controller { max_len: 64 },
                Action::Flood,
            ]),
        ),
        flow(
            0,
            10,
            &[(Field::EthType, 0x0806)],
            Instructions::actions(vec![
                set(Field::ArpSha, 0x0200_0000_0009),
                Action::InPort,
                Action::All,
            ]),
        ),
    ])
    .expect("flows");
    let pmd = dp.new_pmd();
    Bridge {
        _dp: dp,
        pmd,
        ports,
        _packet_in: packet_in,
    }
}

thread_local! {
    static BRIDGE: RefCell<Bridge> = RefCell::new(bridge());
}

fuzz_target!(|data: &[u8]| {
    let Some((&port, frame)) = data.split_first() else {
        return;
    };
    BRIDGE.with(|b| {
        let mut b = b.borrow_mut();
        let b = &mut *b;
        let port = port as usize % b.ports.len();
        b.ports[port].inject([frame]);
        b.pmd.poll_until_idle();
        for p in &b.ports {
            p.drain();
        }
    });
});
