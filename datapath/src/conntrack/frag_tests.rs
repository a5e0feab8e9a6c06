//! Reassembly through `Conntrack::execute`: order, overlap, tiny fragments, timeouts, NAT.

use crate::conntrack::testpkt::*;
use crate::conntrack::tests::{H, commit};
use crate::conntrack::{CtAction, CtConfig, CtMeta, Nat, NatRange};
use crate::packet::checksum;

/// Splits IPv4 packet `p` into fragments carrying `chunk` payload bytes each (Ethernet
/// framed).
fn frag4(p: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let (hdr, payload) = p.split_at(20);
    let mut out = Vec::new();
    for (k, c) in payload.chunks(chunk).enumerate() {
        let mut h = hdr.to_vec();
        let more = (k + 1) * chunk < payload.len();
        let off = (k * chunk / 8) as u16 | if more { 0x2000 } else { 0 };
        h[2..4].copy_from_slice(&((20 + c.len()) as u16).to_be_bytes());
        h[6..8].copy_from_slice(&off.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let cs = checksum::data(&h);
        h[10..12].copy_from_slice(&cs.to_be_bytes());
        h.extend_from_slice(c);
        out.push(eth(&h));
    }
    out
}

/// Splits IPv6 packet `p` (no extension headers) into fragments with a fragment header.
fn frag6(p: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    let (hdr, payload) = p.split_at(40);
    let mut out = Vec::new();
    for (k, c) in payload.chunks(chunk).enumerate() {
        let mut h = hdr.to_vec();
        let more = (k + 1) * chunk < payload.len();
        h[4..6].copy_from_slice(&((8 + c.len()) as u16).to_be_bytes());
        h[6] = 44;
        let off = (k * chunk) as u16 | more as u16;
        h.extend_from_slice(&[hdr[6], 0]);
        h.extend_from_slice(&off.to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(c);
        out.push(eth(&h));
    }
    out
}

fn big_udp(src: A, dst: A, sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    ip(src, dst, 17, udp_l4(sport, dport, &payload), Some(6))
}

/// Per frame: its state if it stayed in the batch; then the released frames.
type Fed = (Vec<Option<String>>, Vec<(Vec<u8>, CtMeta)>);

/// Runs `act` over `frames` one at a time: for each, whether it stayed in the batch and its
/// state; then the released fragments.
fn feed(h: &mut H, act: &CtAction, frames: &[Vec<u8>]) -> Fed {
    let mut kept = Vec::new();
    for f in frames {
        let mut pkts = [Some(buf(f))];
        let mut md = [CtMeta::default()];
        h.ct.execute(&mut h.t, act, &mut pkts, &mut md, &[0], h.now);
        kept.push(pkts[0].as_ref().map(|_| md[0].state.to_string()));
    }
    let rel =
        h.t.drain_released()
            .map(|(b, m)| (b.data().to_vec(), m))
            .collect();
    (kept, rel)
}

#[test]
fn ipv4_fragments_in_any_order_are_tracked_as_one_datagram() {
    let mut h = H::new();
    let (a, b) = (v4("10.0.0.1"), v4("10.0.0.2"));
    let frags = frag4(&big_udp(a, b, 7000, 53, 3500), 1400);
    assert_eq!(frags.len(), 3);
    let mut order = frags.clone();
    order.reverse();
    let (kept, rel) = feed(&mut h, &commit(0), &order);
    assert_eq!(kept, [None, None, None], "all taken");
    assert_eq!(rel.len(), 3);
    for ((f, m), orig) in rel.iter().zip(&frags) {
        assert_eq!(f, orig, "released unchanged, in offset order");
        assert_eq!(m.state.to_string(), "+trk+new");
    }
    assert_eq!(
        h.dump(),
        [
            "udp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=7000,dport=53),reply=(src=10.0.0.2,dst=10.0.0.1,sport=53,dport=7000)"
        ]
    );
    assert_eq!(h.counter("frag_held"), 0);
    // The reply, fragmented too, is established.
    let (_, rel) = feed(
        &mut h,
        &commit(0),
        &frag4(&big_udp(b, a, 53, 7000, 2000), 1400),
    );
    assert_eq!(rel.len(), 2);
    assert_eq!(rel[1].1.state.to_string(), "+trk+est+rpl");
    assert_eq!(h.counter("frag_reassembled"), 2);
}

#[test]
fn overlapping_and_tiny_fragments_are_invalid() {
    let mut h = H::new();
    let (a, b) = (v4("10.0.0.1"), v4("10.0.0.2"));
    let frags = frag4(&big_udp(a, b, 7000, 53, 3500), 1400);
    let (kept, _) = feed(&mut h, &commit(0), &[frags[0].clone(), frags[0].clone()]);
    assert_eq!(
        kept,
        [None, Some("+trk+inv".into())],
        "a duplicate overlaps"
    );
    // Overlapping by part: a fragment at offset 1392 over the first's 0..1400.
    let shifted = frag4(&big_udp(a, b, 7000, 53, 3500), 1392);
    let (kept, _) = feed(&mut h, &commit(0), &[shifted[1].clone()]);
    assert_eq!(kept, [Some("+trk+inv".into())]);
    assert_eq!(h.counter("ct_invalid_frag_overlap"), 2);
    let tiny = frag4(&big_udp(a, b, 7001, 53, 300), 64);
    let (kept, _) = feed(&mut h, &commit(0), &tiny[..1]);
    assert_eq!(kept, [Some("+trk+inv".into())]);
    assert_eq!(h.counter("ct_invalid_frag_too_small"), 1);
}

#[test]
fn incomplete_datagrams_time_out_and_the_table_is_bounded() {
    let mut h = H::with(CtConfig {
        frag: crate::conntrack::FragConfig {
            max_frags: 2,
            ..Default::default()
        },
        ..CtConfig::default()
    });
    let (a, b) = (v4("10.0.0.1"), v4("10.0.0.2"));
    let f1 = frag4(&big_udp(a, b, 1, 53, 3500), 1400);
    let f2 = frag4(&big_udp(a, b, 2, 53, 3500), 1400);
    let (kept, _) = feed(
        &mut h,
        &commit(0),
        &[f1[0].clone(), f1[1].clone(), f2[0].clone()],
    );
    assert_eq!(kept, [None, None, Some("+trk+inv".into())]);
    assert_eq!(h.counter("frag_table_full"), 1);
    h.now += 16_000;
    h.ct.maintain(h.now, 0);
    assert_eq!(h.counter("frag_expired"), 2);
    assert_eq!(h.counter("frag_held"), 0);
}

#[test]
fn nat_reaches_every_fragment() {
    let mut h = H::new();
    let (a, b) = (v4("10.0.0.1"), v4("10.0.0.2"));
    let act = CtAction {
        nat: Some(Nat::Src(
            NatRange::addr("192.0.2.1".parse().expect("ip")).ports(9000, 9000),
        )),
        ..commit(0)
    };
    let (_, rel) = feed(&mut h, &act, &frag4(&big_udp(a, b, 7000, 53, 3000), 1400));
    assert_eq!(rel.len(), 3);
    let want = frag4(&big_udp(v4("192.0.2.1"), b, 9000, 53, 3000), 1400);
    for ((f, m), w) in rel.iter().zip(&want) {
        assert_eq!(f, w, "address, port and UDP checksum as if sent translated");
        assert_eq!(m.state.to_string(), "+trk+new+snat");
    }
}

#[test]
fn ipv6_fragments() {
    let mut h = H::new();
    let (x, y) = (v6("2001:db8::1"), v6("2001:db8::2"));
    let frags = frag6(&big_udp(x, y, 7000, 53, 3000), 1400, 77);
    let (kept, rel) = feed(&mut h, &commit(0), &frags);
    assert_eq!(kept, [None, None, None]);
    assert_eq!(rel.len(), 3);
    assert_eq!(rel[0].1.state.to_string(), "+trk+new");
    assert_eq!(
        h.dump()[0],
        "udp,orig=(src=2001:db8::1,dst=2001:db8::2,sport=7000,dport=53),reply=(src=2001:db8::2,dst=2001:db8::1,sport=53,dport=7000)"
    );
    h.ct.set_frag_config(crate::conntrack::FragConfig {
        enabled_v6: false,
        ..Default::default()
    });
    let (kept, _) = feed(&mut h, &commit(0), &frags[..1]);
    assert_eq!(kept, [Some("+trk+inv".into())]);
    assert_eq!(h.counter("ct_invalid_fragment"), 1);
}
