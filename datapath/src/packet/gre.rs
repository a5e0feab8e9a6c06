//! GRE headers (RFC 2784, with the key and sequence number of RFC 2890).
//!
//! Layout: flags and version (C 0x8000, K 0x2000, S 0x1000, version in the low 3 bits, 0),
//! protocol type, then optionally checksum + reserved (C), key (K), sequence number (S).
//! `new_checked` guarantees version 0, no unknown flag bits, and that the optional fields
//! the flags announce fit.

use super::{Error, Result, be16, be32, checksum};

mod field {
    use core::ops::Range;
    pub const FLAGS: Range<usize> = 0..2;
    pub const PROTOCOL: Range<usize> = 2..4;
}

/// Checksum present.
pub const FLAG_C: u16 = 0x8000;
/// Key present.
pub const FLAG_K: u16 = 0x2000;
/// Sequence number present.
pub const FLAG_S: u16 = 0x1000;
/// Bits that must be zero (routing, strict source route, recursion, flags, version).
const MUST_BE_ZERO: u16 = 0x4fff;

super::view!("A view of a GRE header and its payload.");

/// Header length for these flags.
pub const fn header_len_for(flags: u16) -> usize {
    4 + if flags & FLAG_C != 0 { 4 } else { 0 }
        + if flags & FLAG_K != 0 { 4 } else { 0 }
        + if flags & FLAG_S != 0 { 4 } else { 0 }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// See the module documentation.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < 4 || self.flags() & MUST_BE_ZERO != 0 || b.len() < self.header_len() {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// The flags-and-version word.
    #[inline]
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS.start)
    }

    /// Protocol type of the payload (0x6558 for Ethernet).
    #[inline]
    pub fn protocol(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PROTOCOL.start)
    }

    /// Header length including optional fields.
    #[inline]
    pub fn header_len(&self) -> usize {
        header_len_for(self.flags())
    }

    /// Checksum field, if present.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        (self.flags() & FLAG_C != 0).then(|| be16(self.buffer.as_ref(), 4))
    }

    /// Key, if present.
    #[inline]
    pub fn key(&self) -> Option<u32> {
        let f = self.flags();
        let at = 4 + if f & FLAG_C != 0 { 4 } else { 0 };
        (f & FLAG_K != 0).then(|| be32(self.buffer.as_ref(), at))
    }

    /// Sequence number, if present.
    #[inline]
    pub fn seq(&self) -> Option<u32> {
        let f = self.flags();
        let at = 4 + if f & FLAG_C != 0 { 4 } else { 0 } + if f & FLAG_K != 0 { 4 } else { 0 };
        (f & FLAG_S != 0).then(|| be32(self.buffer.as_ref(), at))
    }

    /// True when there is no checksum, or it is right over header and payload.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        self.flags() & FLAG_C == 0 || checksum::data(self.buffer.as_ref()) == 0
    }

    /// The payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Replaces the key of a header that carries one (K set); without one, nothing.
    #[inline]
    pub fn set_key(&mut self, key: u32) {
        let f = self.flags();
        if f & FLAG_K != 0 {
            let at = 4 + if f & FLAG_C != 0 { 4 } else { 0 };
            self.buffer.as_mut()[at..at + 4].copy_from_slice(&key.to_be_bytes());
        }
    }
}

/// A GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Payload protocol type.
    pub protocol: u16,
    /// Carry a checksum.
    pub checksum: bool,
    /// Key.
    pub key: Option<u32>,
    /// Sequence number.
    pub seq: Option<u32>,
}

impl Repr {
    /// Parses; `Err` on a bad checksum.
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr> {
        p.check_len()?;
        if !p.verify_checksum() {
            return Err(Error);
        }
        Ok(Repr {
            protocol: p.protocol(),
            checksum: p.checksum().is_some(),
            key: p.key(),
            seq: p.seq(),
        })
    }

    fn flags(&self) -> u16 {
        (if self.checksum { FLAG_C } else { 0 })
            | (if self.key.is_some() { FLAG_K } else { 0 })
            | (if self.seq.is_some() { FLAG_S } else { 0 })
    }

    /// Header length.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        4 + if self.checksum { 4 } else { 0 }
            + if self.key.is_some() { 4 } else { 0 }
            + if self.seq.is_some() { 4 } else { 0 }
    }

    /// Writes the header; with `checksum`, the sum covers the whole buffer, so put the
    /// payload in place first.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        let b = p.buffer.as_mut();
        b[field::FLAGS].copy_from_slice(&self.flags().to_be_bytes());
        b[field::PROTOCOL].copy_from_slice(&self.protocol.to_be_bytes());
        let mut at = 4;
        if self.checksum {
            b[4..8].fill(0);
            at += 4;
        }
        if let Some(k) = self.key {
            b[at..at + 4].copy_from_slice(&k.to_be_bytes());
            at += 4;
        }
        if let Some(s) = self.seq {
            b[at..at + 4].copy_from_slice(&s.to_be_bytes());
        }
        if self.checksum {
            let c = checksum::data(b);
            b[4..6].copy_from_slice(&c.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testdata::{GRE_CSUM_KEY_SEQ, GRE_KEY, ICMP_ECHO};
    use crate::packet::{ethertype, ipv4};
    use proptest::prelude::*;

    #[test]
    fn key_only_as_ovs_sends_it() {
        let ip = ipv4::Packet::new_checked(&GRE_KEY[14..]).unwrap();
        assert_eq!(ip.protocol(), 47);
        let p = Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (p.protocol(), p.key(), p.checksum(), p.seq()),
            (ethertype::TEB, Some(42), None, None)
        );
        assert_eq!(p.payload(), &ICMP_ECHO[..]);
        let r = Repr::parse(&p).unwrap();
        let mut buf = ip.payload().to_vec();
        buf[..8].fill(0);
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, ip.payload());
    }

    #[test]
    fn checksum_key_and_sequence() {
        let ip = ipv4::Packet::new_checked(&GRE_CSUM_KEY_SEQ[14..]).unwrap();
        let p = Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((p.key(), p.seq(), p.header_len()), (Some(7), Some(99), 16));
        assert!(p.verify_checksum());
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr {
                protocol: ethertype::TEB,
                checksum: true,
                key: Some(7),
                seq: Some(99)
            }
        );
        let mut bad = ip.payload().to_vec();
        bad[20] ^= 1;
        assert!(Repr::parse(&Packet::new_checked(&bad[..]).unwrap()).is_err());
    }

    #[test]
    fn bad_version_flags_and_lengths() {
        let ip = ipv4::Packet::new_checked(&GRE_KEY[14..]).unwrap();
        let mut b = ip.payload().to_vec();
        b[1] |= 1;
        assert!(Packet::new_checked(&b[..]).is_err(), "version 1");
        let mut b = ip.payload().to_vec();
        b[0] |= 0x40;
        assert!(Packet::new_checked(&b[..]).is_err(), "routing bit");
        assert!(
            Packet::new_checked(&ip.payload()[..7]).is_err(),
            "key cut short"
        );
    }

    proptest! {
        #[test]
        fn emit_then_parse(proto in any::<u16>(), csum in any::<bool>(), key in proptest::option::of(any::<u32>()), seq in proptest::option::of(any::<u32>()), payload in proptest::collection::vec(any::<u8>(), 0..20)) {
            let r = Repr { protocol: proto, checksum: csum, key, seq };
            let mut buf = vec![0u8; r.buffer_len()];
            buf.extend(&payload);
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p);
                let _ = (p.key(), p.seq(), p.checksum(), p.payload());
            }
        }
    }
}
