//! The connection tracker over arbitrary frames: a persistent tracker (small maximum, NAT
//! ranges, zones) sees each input as a run of frames, each preceded by a byte choosing the
//! action (zone, commit, force, source or destination NAT, plain `nat`) and one byte of
//! clock. No input may panic; a frame left in the batch keeps its length (NAT rewrites in
//! place); the table never holds more than its maximum; invalid packets carry no tuple.
#![no_main]

use std::cell::RefCell;

use datapath::conntrack::{
    Conntrack, CtAction, CtConfig, CtMeta, CtState, CtThread, Nat, NatRange,
};
use datapath::packet::PacketBuf;
use libfuzzer_sys::fuzz_target;

struct St {
    ct: Conntrack,
    t: CtThread,
    now: u64,
}

thread_local! {
    static ST: RefCell<Option<St>> = const { RefCell::new(None) };
}

fn action(sel: u8) -> CtAction {
    let snat = NatRange::addr("192.0.2.1".parse().expect("ip")).ports(1024, 1031);
    let dnat = NatRange::addr("10.0.0.80".parse().expect("ip")).ports(80, 81);
    let v6 = NatRange::addr("2001:db8::1".parse().expect("ip"));
    CtAction {
        zone: (sel & 3) as u16,
        commit: sel & 4 != 0,
        force: sel & 0x80 != 0,
        nat: match (sel >> 3) & 7 {
            1 => Some(Nat::Apply),
            2 => Some(Nat::Src(snat)),
            3 => Some(Nat::Dst(dnat)),
            4 => Some(Nat::Src(v6)),
            _ => None,
        },
        mark: (sel & 0x40 != 0).then_some((sel as u32, 0xff)),
        label: None,
    }
}

fuzz_target!(|data: &[u8]| {
    ST.with(|cell| {
        let mut g = cell.borrow_mut();
        let st = g.get_or_insert_with(|| {
            let ct = Conntrack::new(CtConfig {
                max_conns: 64,
                max_conns_ceiling: 64,
                ..CtConfig::default()
            });
            ct.set_zone_limit(3, Some(8));
            let t = ct.thread();
            St { ct, t, now: 0 }
        });
        let mut rest = data;
        while rest.len() >= 4 {
            let sel = rest[0];
            st.now += rest[1] as u64 * 997;
            let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(rest.len() - 4);
            let frame = &rest[4..4 + len];
            rest = &rest[4 + len..];
            let Some(b) = PacketBuf::from_frame(frame) else { continue };
            let mut pkts = [Some(b)];
            let mut md = [CtMeta {
                state: CtState(sel & 0xc0),
                zone: 0,
                ..CtMeta::default()
            }];
            st.ct.execute(&mut st.t, &action(sel), &mut pkts, &mut md, &[0], st.now);
            if let Some(b) = &pkts[0] {
                assert_eq!(b.len(), frame.len());
            }
            if md[0].state.has(CtState::INV) && !md[0].state.has(CtState::NEW) {
                assert!(md[0].state.has(CtState::TRK));
            }
            assert!(st.ct.len() <= 64);
            for (b, m) in st.t.drain_released() {
                assert!(m.state.has(CtState::TRK));
                assert!(!b.is_empty());
            }
        }
        st.ct.maintain(st.now, 256);
    });
});
