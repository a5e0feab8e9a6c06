//! ICMP for IPv4 (RFC 792): type, code, checksum and the 4-byte rest of header.

use super::{Error, Result, be16, be32, checksum};

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
}

/// Header length.
pub const HEADER_LEN: usize = 8;

/// Echo request.
pub const ECHO_REQUEST: u8 = 8;
/// Echo reply.
pub const ECHO_REPLY: u8 = 0;

super::view!("A view of an ICMP message (the checksum covers the whole buffer).");

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

    /// Rest of header (identifier and sequence for echo).
    pub fn rest(&self) -> u32 {
        be32(self.buffer.as_ref(), field::REST.start)
    }

    /// Payload.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True when the checksum over the whole message is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets type and code.
    pub fn set_type_code(&mut self, t: u8, c: u8) {
        self.buffer.as_mut()[field::TYPE] = t;
        self.buffer.as_mut()[field::CODE] = c;
    }

    /// Sets the rest of header.
    pub fn set_rest(&mut self, v: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&v.to_be_bytes());
    }

    /// Computes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let c = checksum::data(self.buffer.as_ref());
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// An ICMP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Type.
    pub msg_type: u8,
    /// Code.
    pub code: u8,
    /// Rest of header.
    pub rest: u32,
}

impl Repr {
    /// Parses; `Err` on a bad checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr> {
        p.check_len()?;
        if !p.verify_checksum() {
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

    /// Writes the header and the checksum over the buffer (payload already in place).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_type_code(self.msg_type, self.code);
        p.set_rest(self.rest);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testdata::ICMP_ECHO;
    use proptest::prelude::*;

    #[test]
    fn read_parse_emit() {
        let p = Packet::new_checked(&ICMP_ECHO[34..]).unwrap();
        assert_eq!(
            (p.msg_type(), p.code(), p.rest()),
            (ECHO_REQUEST, 0, 0x1234_0001)
        );
        assert_eq!(p.payload().len(), 56);
        let r = Repr::parse(&p).unwrap();
        let mut buf = ICMP_ECHO[34..].to_vec();
        buf[..8].fill(0);
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, ICMP_ECHO[34..]);
        let e = etherparse::Icmpv4Slice::from_slice(&ICMP_ECHO[34..]).unwrap();
        assert_eq!(e.checksum(), p.checksum());
    }

    proptest! {
        #[test]
        fn emit_then_parse(t in any::<u8>(), c in any::<u8>(), rest in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..20)) {
            let r = Repr { msg_type: t, code: c, rest };
            let mut buf = vec![0u8; 8];
            buf.extend(&payload);
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..20)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p);
            }
        }
    }
}
