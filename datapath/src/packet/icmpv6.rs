//! ICMPv6 (RFC 4443): type, code, and a checksum over an IPv6 pseudo-header.

use std::net::Ipv6Addr;

use super::{Error, Result, be16, be32, checksum, ip_proto};

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
}

/// Header length (type, code, checksum, 4 bytes of message body).
pub const HEADER_LEN: usize = 8;

/// Echo request.
pub const ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const ECHO_REPLY: u8 = 129;

super::view!("A view of an ICMPv6 message (the checksum covers the whole buffer).");

impl<T: AsRef<[u8]>> Packet<T> {
    /// `Err` when shorter than the header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// First 4 bytes of the message body.
    pub fn rest(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST.start)
    }

    /// True when the checksum is right for this pseudo-header.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::finish(&[
            checksum::pseudo_ipv6(src, dst, ip_proto::ICMPV6, b.len() as u32),
            checksum::sum(b),
        ]) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets type, code and the first body word.
    pub fn set_header(&mut self, t: u8, c: u8, rest: u32) {
        let b = self.buffer.as_mut();
        b[field::TYPE] = t;
        b[field::CODE] = c;
        b[field::REST].copy_from_slice(&rest.to_be_bytes());
    }

    /// Computes the checksum over the message and a pseudo-header.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let b = self.buffer.as_ref();
        let c = checksum::finish(&[
            checksum::pseudo_ipv6(src, dst, ip_proto::ICMPV6, b.len() as u32),
            checksum::sum(b),
        ]);
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// An ICMPv6 header with the addresses its checksum covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Type.
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// First body word.
    pub rest: u32,
}

impl Repr {
    /// Parses; `Err` on a bad checksum for these addresses.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        p: &Packet<&T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) -> Result<Repr> {
        p.check_len()?;
        if !p.verify_checksum(src, dst) {
            return Err(Error);
        }
        Ok(Repr {
            msg_type: p.msg_type(),
            code: p.code(),
            rest: p.rest(),
        })
    }

    /// Header length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header and checksum (payload already in place).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
    ) {
        p.set_header(self.msg_type, self.code, self.rest);
        p.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testdata::ICMPV6_ECHO;
    use proptest::prelude::*;

    fn addrs() -> (Ipv6Addr, Ipv6Addr) {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    }

    #[test]
    fn read_parse_emit() {
        let (s, d) = addrs();
        let p = Packet::new_checked(&ICMPV6_ECHO[54..]).unwrap();
        assert_eq!(
            (p.msg_type(), p.code(), p.rest()),
            (ECHO_REQUEST, 0, 0x0007_0001)
        );
        let r = Repr::parse(&p, s, d).unwrap();
        let mut buf = ICMPV6_ECHO[54..].to_vec();
        buf[..8].fill(0);
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), s, d);
        assert_eq!(buf, ICMPV6_ECHO[54..]);
        assert!(
            Repr::parse(&p, d, s).is_ok(),
            "swapping addresses keeps the sum"
        );
        assert!(Repr::parse(&p, s, "2001:db8::3".parse().unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn emit_then_parse(t in any::<u8>(), c in any::<u8>(), rest in any::<u32>(), s in any::<[u8; 16]>(), d in any::<[u8; 16]>()) {
            let r = Repr { msg_type: t, code: c, rest };
            let mut buf = [0u8; 12];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]), s.into(), d.into());
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap(), s.into(), d.into()).unwrap(), r);
        }
    }
}
