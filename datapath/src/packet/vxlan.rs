//! VXLAN headers (RFC 7348): 8 bytes after UDP port 4789.

use super::{Error, Result};

mod field {
    use core::ops::Range;
    pub const FLAGS: usize = 0;
    pub const VNI: Range<usize> = 4..7;
}

/// Header length.
pub const HEADER_LEN: usize = 8;
/// IANA UDP port.
pub const UDP_PORT: u16 = 4789;
/// The "VNI valid" flag.
pub const FLAG_I: u8 = 0x08;

super::view!("A view of a VXLAN header and the Ethernet frame it carries.");

impl<T: AsRef<[u8]>> Packet<T> {
    /// `Err` when shorter than the header.
    #[inline(always)]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Flags byte.
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// VXLAN network identifier (24 bits).
    #[inline(always)]
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Sets the VNI (its low 24 bits); flags and reserved fields stay.
    #[inline]
    pub fn set_vni(&mut self, vni: u32) {
        self.buffer.as_mut()[field::VNI].copy_from_slice(&vni.to_be_bytes()[1..]);
    }
}

/// A VXLAN header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The VNI (0..2^24).
    pub vni: u32,
}

impl Repr {
    /// Parses; `Err` when the I flag is clear (no valid VNI).
    #[inline]
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr> {
        p.check_len()?;
        if p.flags() & FLAG_I == 0 {
            return Err(Error);
        }
        Ok(Repr { vni: p.vni() })
    }

    /// Header length.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header: flags (I set), the VNI, zero reserved fields.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.buffer.as_mut()[..HEADER_LEN].fill(0);
        p.set_flags(FLAG_I);
        p.set_vni(self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testdata::{ICMP_ECHO, VXLAN};
    use proptest::prelude::*;

    #[test]
    fn read_parse_emit() {
        let p = Packet::new_checked(&VXLAN[42..]).unwrap();
        assert_eq!((p.flags(), p.vni()), (FLAG_I, 42));
        assert_eq!(p.payload(), &ICMP_ECHO[..]);
        let r = Repr::parse(&p).unwrap();
        let mut buf = [0xffu8; 8];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, VXLAN[42..50]);
    }

    #[test]
    fn missing_i_flag_is_refused() {
        let mut b = VXLAN[42..].to_vec();
        b[0] = 0;
        assert!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).is_err());
        assert!(Packet::new_checked(&b[..7]).is_err());
    }

    proptest! {
        #[test]
        fn emit_then_parse(vni in 0u32..(1 << 24)) {
            let r = Repr { vni };
            let mut buf = [0u8; 8];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p);
            }
        }
    }
}
