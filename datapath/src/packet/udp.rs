//! UDP headers (RFC 768).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Error, Result, be16, checksum, ip_proto};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Header length.
pub const HEADER_LEN: usize = 8;

super::view!(
    "A view of a UDP datagram. `new_checked` guarantees the length field covers the header and fits the buffer."
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// See [`Packet`].
    #[inline(always)]
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error);
        }
        let len = self.len() as usize;
        if len < HEADER_LEN || b.len() < len {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Length of header and payload.
    #[inline(always)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// True when the length field says there is no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() as usize <= HEADER_LEN
    }

    /// Checksum (0: none, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len() as usize]
    }

    fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.len() as usize]
    }

    /// True when the checksum is right for this IPv4 pseudo-header (or absent).
    #[inline]
    pub fn verify_checksum_ipv4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0
            || checksum::finish(&[
                checksum::pseudo_ipv4(src, dst, ip_proto::UDP, self.len()),
                checksum::sum(self.datagram()),
            ]) == 0
    }

    /// True when the checksum is right for this IPv6 pseudo-header.
    #[inline]
    pub fn verify_checksum_ipv6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::finish(&[
            checksum::pseudo_ipv6(src, dst, ip_proto::UDP, self.len() as u32),
            checksum::sum(self.datagram()),
        ]) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    fn fill(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let c = checksum::finish(&[pseudo, checksum::sum(self.datagram())]);
        // A computed zero is sent as all ones (zero means "no checksum").
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Computes the checksum over an IPv4 pseudo-header.
    #[inline]
    pub fn fill_checksum_ipv4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let p = checksum::pseudo_ipv4(src, dst, ip_proto::UDP, self.len());
        self.fill(p);
    }

    /// Computes the checksum over an IPv6 pseudo-header.
    #[inline]
    pub fn fill_checksum_ipv6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let p = checksum::pseudo_ipv6(src, dst, ip_proto::UDP, self.len() as u32);
        self.fill(p);
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.len() as usize;
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
}

/// A UDP header. `emit` leaves the checksum zero; fill it with the packet's
/// `fill_checksum_*` once the payload is in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length.
    pub payload_len: u16,
}

impl Repr {
    /// Parses a checked datagram (checksum not verified: that needs the IP header).
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            payload_len: p.len() - HEADER_LEN as u16,
        })
    }

    /// Header length.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header with a zero checksum.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(HEADER_LEN as u16 + self.payload_len);
        p.set_checksum(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testdata::{QINQ_UDP, UDP6, VXLAN};
    use proptest::prelude::*;

    #[test]
    fn read_and_verify() {
        let p = Packet::new_checked(&UDP6[54..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 19));
        assert_eq!(p.payload(), b"hello, ipv6");
        assert!(p.verify_checksum_ipv6(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap()
        ));
        let q = Packet::new_checked(&QINQ_UDP[42..]).unwrap();
        assert!(q.verify_checksum_ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)));
        let v = Packet::new_checked(&VXLAN[34..]).unwrap();
        assert_eq!((v.dst_port(), v.checksum()), (4789, 0));
        let e = etherparse::UdpHeaderSlice::from_slice(&UDP6[54..]).unwrap();
        assert_eq!(e.checksum(), p.checksum());
    }

    #[test]
    fn build_matches_capture() {
        let mut buf = UDP6[54..].to_vec();
        buf[..8].fill(0);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        Repr {
            src_port: 5353,
            dst_port: 53,
            payload_len: 11,
        }
        .emit(&mut p);
        p.fill_checksum_ipv6(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        assert_eq!(buf, UDP6[54..]);
        assert!(Packet::new_checked(&UDP6[54..60]).is_err());
    }

    proptest! {
        #[test]
        fn emit_then_parse(sp in any::<u16>(), dp in any::<u16>(), len in 0u16..64, src in any::<[u8; 4]>(), dst in any::<[u8; 4]>()) {
            let r = Repr { src_port: sp, dst_port: dp, payload_len: len };
            let mut buf = vec![0x5au8; 8 + len as usize];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            p.fill_checksum_ipv4(src.into(), dst.into());
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum_ipv4(src.into(), dst.into()));
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p);
                let _ = p.payload();
                let _ = p.verify_checksum_ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
            }
        }
    }
}
