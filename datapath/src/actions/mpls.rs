//! MPLS on a packet in place: push and pop a label stack entry, decrement its TTL, write
//! its fields, keeping the packet's [`FlowKey`] and [`Layout`] in step (as `rewrite` does for
//! the other headers).
//!
//! What Open vSwitch does, done here: `push_mpls` on an MPLS packet copies the outer entry
//! (bottom of stack clear); on anything else the entry is the bottom of the stack with label
//! 0 (IPv4 explicit null; 2 over IPv6), the IP TTL (64 without IP) and the low 3 bits of the
//! DSCP as TC, and the key forgets the L3 and L4 fields (the packet is MPLS now).
//! `pop_mpls` removes the outer entry of an MPLS packet and names what follows with the
//! given ethertype; the packet's words of the key are then read again from the frame, so
//! the rest of the pipeline sees the inner headers. Each needs the entry where the packet's
//! network header starts (after the VLAN tags).
//!
//! Thread-safety: functions over one packet.

use crate::flow::{Field, FlowKey, Layout, PKT_WORDS, extract};
use crate::packet::{PacketBuf, ethertype};
use crate::stats::DropReason;
use crate::types::PortNo;

/// The outer label stack entry as the key holds it (label, TC, BoS, TTL: the wire order).
#[inline]
fn lse(key: &FlowKey) -> u32 {
    key.get(Field::Ipv4Src) as u32
}

/// Writes the key's outer label stack entry into the frame; nothing for a non-MPLS packet
/// or a frame too short to hold one.
pub fn write_lse(frame: &mut [u8], key: &FlowKey, lay: &Layout) {
    if !ethertype::is_mpls(key.get(Field::EthType) as u16) {
        return;
    }
    let at = lay.l3 as usize;
    if let Some(b) = frame.get_mut(at..at + 4) {
        b.copy_from_slice(&lse(key).to_be_bytes());
    }
}

/// Sets the ethertype that names what starts at the network header (the last one before
/// it: after the VLAN tags).
fn set_ethertype(buf: &mut PacketBuf, lay: &Layout, t: u16) {
    let at = lay.l3 as usize - 2;
    buf.data_mut()[at..at + 2].copy_from_slice(&t.to_be_bytes());
}

/// The L3/L4 words of a key forgotten when the packet becomes MPLS: IP protocol, TOS,
/// TTL, fragment bits, the addresses, ports and flags, flow label, ARP and neighbour
/// discovery fields (not the VLANs, the tunnel metadata or the pipeline state).
fn forget_l3(key: &mut FlowKey) {
    for f in [
        Field::IpProto,
        Field::IpTos,
        Field::IpTtl,
        Field::IpFrag,
        Field::Ipv6Src,
        Field::Ipv6Dst,
        Field::TpSrc,
        Field::TpDst,
        Field::TcpFlags,
        Field::ArpOp,
        Field::Ipv6Label,
        Field::ArpSha,
        Field::ArpTha,
        Field::Ipv4Src,
        Field::Ipv4Dst,
    ] {
        key.set(f, 0);
    }
}

/// The label stack entry `push_mpls` adds to a packet with this key.
pub fn new_entry(key: &FlowKey) -> u32 {
    let eth = key.get(Field::EthType) as u16;
    if ethertype::is_mpls(eth) {
        return lse(key) & !0x100;
    }
    let (tc, ttl) = if eth == ethertype::IPV4 || eth == ethertype::IPV6 {
        let dscp = (key.get(Field::IpTos) as u32) >> 2;
        (dscp & 7, key.get(Field::IpTtl) as u32)
    } else {
        (0, 64)
    };
    let label: u32 = if eth == ethertype::IPV6 { 2 } else { 0 };
    label << 12 | tc << 9 | 1 << 8 | ttl
}

/// What `push_mpls` with ethertype `t` does to a key (the frame aside): the new entry
/// becomes the outer one and the L3 fields are forgotten.
pub fn push_key(key: &mut FlowKey, t: u16) {
    let entry = new_entry(key);
    forget_l3(key);
    key.set(Field::EthType, t as u128);
    key.set(Field::Ipv4Src, entry as u128);
}

/// Pushes an MPLS label stack entry with ethertype `t` (0x8847 or 0x8848).
pub fn push_mpls(
    buf: &mut PacketBuf,
    key: &mut FlowKey,
    lay: &mut Layout,
    t: u16,
) -> Result<(), DropReason> {
    let entry = new_entry(key);
    let at = lay.l3 as usize;
    let Some(gap) = buf.insert_gap(at, 4) else {
        return Err(DropReason::NoHeadroom);
    };
    gap.copy_from_slice(&entry.to_be_bytes());
    set_ethertype(buf, lay, t);
    push_key(key, t);
    lay.l4 = 0;
    Ok(())
}

/// Pops the outer MPLS entry of an MPLS packet, naming what follows `t`, and reads the
/// packet's key words again from the frame. A non-MPLS packet is left alone. `Err` when the
/// frame has no entry to pop or what follows is malformed (the reason `extract` gives).
pub fn pop_mpls(
    buf: &mut PacketBuf,
    key: &mut FlowKey,
    lay: &mut Layout,
    t: u16,
) -> Result<(), DropReason> {
    if !ethertype::is_mpls(key.get(Field::EthType) as u16) {
        return Ok(());
    }
    let at = lay.l3 as usize;
    if !buf.remove_gap(at, 4) {
        return Err(DropReason::BadMpls);
    }
    set_ethertype(buf, lay, t);
    reread(buf, key, lay)
}

/// Reads the packet words of `key` and the layout again from the frame, keeping the
/// ingress port, the tunnel metadata and the pipeline state.
pub(crate) fn reread(
    buf: &PacketBuf,
    key: &mut FlowKey,
    lay: &mut Layout,
) -> Result<(), DropReason> {
    let keep = *key;
    let in_port = PortNo(keep.get(Field::InPort) as u32);
    *lay = extract(buf.data(), in_port, key)?;
    for f in [Field::TunId, Field::TunSrc, Field::TunDst, Field::TunFlags] {
        key.set(f, keep.get(f));
    }
    key.w[PKT_WORDS..].copy_from_slice(&keep.w[PKT_WORDS..]);
    Ok(())
}

/// Decrements the outer MPLS TTL; `TtlExceeded` when it would reach zero. Non-MPLS packets
/// pass unchanged.
pub fn dec_mpls_ttl(
    buf: &mut PacketBuf,
    key: &mut FlowKey,
    lay: &Layout,
) -> Result<(), DropReason> {
    if !ethertype::is_mpls(key.get(Field::EthType) as u16) {
        return Ok(());
    }
    let ttl = key.get(Field::MplsTtl) as u8;
    if ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    key.set(Field::MplsTtl, (ttl - 1) as u128);
    write_lse(buf.data_mut(), key, lay);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp4(ttl: u8) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], ttl)
            .udp(1000, 53)
            .write(&mut out, b"query")
            .unwrap();
        out
    }

    fn parsed(frame: &[u8]) -> (PacketBuf, FlowKey, Layout) {
        let b = PacketBuf::from_frame(frame).unwrap();
        let mut k = FlowKey::ZERO;
        let lay = extract(b.data(), PortNo(1), &mut k).unwrap();
        (b, k, lay)
    }

    #[test]
    fn push_then_pop_gives_the_packet_back() {
        let frame = udp4(9);
        let (mut b, mut k, mut lay) = parsed(&frame);
        k.set(Field::Reg(0), 7);
        push_mpls(&mut b, &mut k, &mut lay, ethertype::MPLS).unwrap();
        assert_eq!(b.len(), frame.len() + 4);
        assert_eq!(&b.data()[12..14], &[0x88, 0x47]);
        // Label 0, TC 0, bottom of stack, the IP TTL.
        assert_eq!(&b.data()[14..18], &[0, 0, 1, 9]);
        assert_eq!(k.get(Field::EthType), 0x8847);
        assert_eq!(k.get(Field::MplsTtl), 9);
        assert_eq!(k.get(Field::MplsBos), 1);
        assert_eq!(k.get(Field::IpProto), 0, "L3 forgotten");
        // The key is what extract reads from the new frame.
        let (_, again, _) = parsed(b.data());
        let mut want = again;
        want.set(Field::Reg(0), 7);
        assert_eq!(k, want);
        // A second push copies the entry, bottom of stack clear.
        k.set(Field::MplsLabel, 99);
        write_lse(b.data_mut(), &k, &lay);
        push_mpls(&mut b, &mut k, &mut lay, ethertype::MPLS_MCAST).unwrap();
        assert_eq!(&b.data()[14..18], &[0, 0x06, 0x30, 9]);
        assert_eq!(&b.data()[18..22], &[0, 0x06, 0x31, 9]);
        pop_mpls(&mut b, &mut k, &mut lay, ethertype::MPLS).unwrap();
        assert_eq!(k.get(Field::MplsLabel), 99);
        pop_mpls(&mut b, &mut k, &mut lay, ethertype::IPV4).unwrap();
        assert_eq!(b.data(), &frame[..]);
        let (_, orig, orig_lay) = parsed(&frame);
        let mut want = orig;
        want.set(Field::Reg(0), 7);
        assert_eq!((k, lay), (want, orig_lay));
    }

    #[test]
    fn ttl_runs_out() {
        let (mut b, mut k, mut lay) = parsed(&udp4(2));
        push_mpls(&mut b, &mut k, &mut lay, ethertype::MPLS).unwrap();
        dec_mpls_ttl(&mut b, &mut k, &lay).unwrap();
        assert_eq!(b.data()[17], 1);
        assert_eq!(
            dec_mpls_ttl(&mut b, &mut k, &lay),
            Err(DropReason::TtlExceeded)
        );
        // Not MPLS: nothing to do.
        let (mut b, mut k, mut lay) = parsed(&udp4(2));
        let before = b.data().to_vec();
        dec_mpls_ttl(&mut b, &mut k, &lay).unwrap();
        pop_mpls(&mut b, &mut k, &mut lay, ethertype::IPV4).unwrap();
        assert_eq!(b.data(), &before[..]);
    }
}
