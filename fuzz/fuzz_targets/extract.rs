//! Flow key extraction over arbitrary frames: never panics, offsets stay in the frame, and
//! header rewrites (set-field of every packet field, VLAN and MPLS push and pop, TTLs) on
//! whatever parsed stay in bounds too.
#![no_main]

use datapath::actions::{mpls, rewrite};
use datapath::flow::{Field, FlowKey, extract};
use datapath::packet::PacketBuf;
use datapath::types::PortNo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut key = FlowKey::ZERO;
    if let Ok(mut lay) = extract(data, PortNo(1), &mut key) {
        assert!(lay.l3 as usize <= data.len());
        assert!(lay.l4 as usize <= data.len());
        let Some(mut buf) = PacketBuf::from_frame(data) else {
            return;
        };
        for f in [
            Field::EthDst,
            Field::Ipv4Src,
            Field::Ipv6Dst,
            Field::TpDst,
            Field::TpSrc,
            Field::IpTos,
            Field::ArpSha,
            Field::VlanTci,
            Field::NdTarget,
            Field::Ipv6Label,
            Field::MplsLabel,
            Field::MplsTtl,
        ] {
            rewrite::set_field(&mut buf, &mut key, &lay, f, 0x1234_5678);
        }
        let _ = rewrite::dec_ttl(&mut buf, &mut key, &lay);
        let _ = rewrite::push_vlan(&mut buf, &mut key, &mut lay, 0x8100);
        rewrite::pop_vlan(&mut buf, &mut key, &mut lay);
        let _ = rewrite::set_vlan(&mut buf, &mut key, &mut lay, 0xa005, 0xefff, true);
        let _ = mpls::dec_mpls_ttl(&mut buf, &mut key, &lay);
        let _ = mpls::pop_mpls(&mut buf, &mut key, &mut lay, 0x0800);
        let _ = mpls::push_mpls(&mut buf, &mut key, &mut lay, 0x8847);
        let mut again = FlowKey::ZERO;
        let _ = extract(buf.data(), PortNo(1), &mut again);
    }
});
