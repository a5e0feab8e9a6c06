//! IEEE 802.1Q / 802.1ad VLAN tags: the 4 bytes after a 0x8100 or 0x88a8 TPID (TCI and the
//! next ethertype). A double-tagged (QinQ) frame is two of these in a row.

use super::{Error, Result, be16};

mod field {
    use core::ops::Range;
    pub const TCI: Range<usize> = 0..2;
    pub const ETHERTYPE: Range<usize> = 2..4;
    pub const PAYLOAD: usize = 4;
}

/// Length of a tag (after the TPID).
pub const HEADER_LEN: usize = field::PAYLOAD;

super::view!("A view of a VLAN tag.");

impl<T: AsRef<[u8]>> Packet<T> {
    /// `Err` when shorter than a tag.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    fn tci(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TCI.start)
    }

    /// Priority code point (3 bits).
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// VLAN id (12 bits).
    pub fn vid(&self) -> u16 {
        self.tci() & 0x0fff
    }

    /// Ethertype of what follows (another TPID for a double tag).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// What follows the tag.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets PCP, DEI and VID at once.
    pub fn set_tci(&mut self, pcp: u8, dei: bool, vid: u16) {
        let tci = ((pcp as u16 & 7) << 13) | ((dei as u16) << 12) | (vid & 0x0fff);
        self.buffer.as_mut()[field::TCI].copy_from_slice(&tci.to_be_bytes());
    }

    /// Sets the inner ethertype.
    pub fn set_ethertype(&mut self, t: u16) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&t.to_be_bytes());
    }
}

/// A VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Priority (0..=7).
    pub pcp: u8,
    /// Drop eligible.
    pub dei: bool,
    /// VLAN id (0..=4095).
    pub vid: u16,
    /// Next ethertype.
    pub ethertype: u16,
}

impl Repr {
    /// Parses a tag.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            pcp: p.pcp(),
            dei: p.dei(),
            vid: p.vid(),
            ethertype: p.ethertype(),
        })
    }

    /// Tag length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the tag.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_tci(self.pcp, self.dei, self.vid);
        p.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{ethernet, testdata::QINQ_UDP};
    use proptest::prelude::*;

    #[test]
    fn double_tag() {
        let eth = ethernet::Packet::new_checked(&QINQ_UDP[..]).unwrap();
        assert_eq!(eth.ethertype(), 0x88a8);
        let outer = Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(
            (outer.pcp(), outer.dei(), outer.vid(), outer.ethertype()),
            (3, false, 100, 0x8100)
        );
        let inner = Packet::new_checked(outer.payload()).unwrap();
        assert_eq!(
            (inner.pcp(), inner.vid(), inner.ethertype()),
            (0, 200, 0x0800)
        );
        let mut buf = [0u8; 4];
        Repr::parse(&outer)
            .unwrap()
            .emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, QINQ_UDP[14..18]);
    }

    proptest! {
        #[test]
        fn emit_then_parse(pcp in 0u8..8, dei in any::<bool>(), vid in 0u16..4096, ty in any::<u16>()) {
            let r = Repr { pcp, dei, vid, ethertype: ty };
            let mut buf = [0u8; HEADER_LEN];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..8)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p);
            }
        }
    }
}
