//! Ethernet II frames.

use super::{Error, Result, be16};
use crate::types::MacAddr;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: usize = 14;
}

/// Length of the Ethernet header.
pub const HEADER_LEN: usize = field::PAYLOAD;

super::view!("A view of an Ethernet frame.");

impl<T: AsRef<[u8]>> Packet<T> {
    /// `Err` when the buffer is shorter than the header.
    #[inline(always)]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(a)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(a)
    }

    /// Ethertype (or TPID of a VLAN tag).
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// The payload (after the header).
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }

    /// Sets the ethertype.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&t.to_be_bytes());
    }

    /// The payload, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// An Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source.
    pub src_addr: MacAddr,
    /// Destination.
    pub dst_addr: MacAddr,
    /// Ethertype.
    pub ethertype: u16,
}

impl Repr {
    /// Parses a checked packet.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            ethertype: p.ethertype(),
        })
    }

    /// Header length.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testdata::ICMP_ECHO;
    use proptest::prelude::*;

    #[test]
    fn read_fields() {
        let p = Packet::new_checked(&ICMP_ECHO[..]).unwrap();
        assert_eq!(p.dst_addr(), MacAddr([0x02, 0, 0, 0, 0, 0x02]));
        assert_eq!(p.src_addr(), MacAddr([0x02, 0, 0, 0, 0, 0x01]));
        assert_eq!(p.ethertype(), 0x0800);
        assert_eq!(p.payload().len(), ICMP_ECHO.len() - 14);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let p = Packet::new_checked(&ICMP_ECHO[..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        let mut buf = vec![0u8; ICMP_ECHO.len()];
        buf[14..].copy_from_slice(&ICMP_ECHO[14..]);
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, ICMP_ECHO);
    }

    #[test]
    fn short_is_an_error() {
        assert_eq!(Packet::new_checked(&ICMP_ECHO[..13]).unwrap_err(), Error);
    }

    proptest! {
        #[test]
        fn emit_then_parse(src in any::<[u8; 6]>(), dst in any::<[u8; 6]>(), ty in any::<u16>()) {
            let r = Repr { src_addr: MacAddr(src), dst_addr: MacAddr(dst), ethertype: ty };
            let mut buf = [0u8; HEADER_LEN];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p);
                let _ = p.payload();
            }
        }
    }
}
