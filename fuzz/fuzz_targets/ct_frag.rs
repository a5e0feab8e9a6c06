//! Fragment reassembly over arbitrary frames: each input is a run of frames (two bytes of
//! length before each) fed to a tracker whose reassembler is small and accepts tiny
//! fragments. No input may panic; fragments come back (released, or left in the batch as
//! `+inv`) with the length they had; the reassembler never holds more than its maximum.
#![no_main]

use std::cell::RefCell;

use datapath::conntrack::{Conntrack, CtAction, CtConfig, CtMeta, CtThread, FragConfig};
use datapath::packet::PacketBuf;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static ST: RefCell<Option<(Conntrack, CtThread, u64)>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    ST.with(|cell| {
        let mut g = cell.borrow_mut();
        let (ct, t, now) = g.get_or_insert_with(|| {
            let ct = Conntrack::new(CtConfig {
                max_conns: 256,
                max_conns_ceiling: 256,
                verify_checksums: false,
                frag: FragConfig {
                    max_frags: 16,
                    max_per_datagram: 8,
                    min_v4_size: 28,
                    min_v6_size: 48,
                    timeout_ms: 5_000,
                    ..FragConfig::default()
                },
                ..CtConfig::default()
            });
            let t = ct.thread();
            (ct, t, 0)
        });
        let act = CtAction {
            commit: true,
            ..CtAction::default()
        };
        let mut rest = data;
        while rest.len() >= 2 {
            let len = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
            let frame = &rest[2..2 + len];
            rest = &rest[2 + len..];
            *now += 300;
            let Some(b) = PacketBuf::from_frame(frame) else { continue };
            let mut pkts = [Some(b)];
            let mut md = [CtMeta::default()];
            ct.execute(t, &act, &mut pkts, &mut md, &[0], *now);
            if let Some(b) = &pkts[0] {
                assert_eq!(b.len(), frame.len());
            }
            for (b, _) in t.drain_released() {
                assert!(b.len() >= 14);
            }
            let held = ct
                .stats()
                .frags
                .iter()
                .find(|f| f.0 == "frag_held")
                .map_or(0, |f| f.1);
            assert!(held <= 16);
        }
        ct.maintain(*now, 64);
    });
});
