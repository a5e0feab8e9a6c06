//! ARP for IPv4 over Ethernet (RFC 826).

use std::net::Ipv4Addr;

use super::{Error, Result, be16, ethertype};
use crate::types::MacAddr;

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// ARP request.
pub const OP_REQUEST: u16 = 1;
/// ARP reply.
pub const OP_REPLY: u16 = 2;

super::view!("A view of an ARP packet.");

impl<T: AsRef<[u8]>> Packet<T> {
    /// `Err` when shorter than 28 bytes.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Hardware type (1: Ethernet).
    pub fn htype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::HTYPE.start)
    }

    /// Protocol type (0x0800: IPv4).
    pub fn ptype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PTYPE.start)
    }

    /// Hardware address length.
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn plen(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation.
    pub fn operation(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OPER.start)
    }

    fn mac(&self, r: core::ops::Range<usize>) -> MacAddr {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[r]);
        MacAddr(a)
    }

    fn ip(&self, r: core::ops::Range<usize>) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[r];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Sender hardware address.
    pub fn sha(&self) -> MacAddr {
        self.mac(field::SHA)
    }

    /// Sender protocol address.
    pub fn spa(&self) -> Ipv4Addr {
        self.ip(field::SPA)
    }

    /// Target hardware address.
    pub fn tha(&self) -> MacAddr {
        self.mac(field::THA)
    }

    /// Target protocol address.
    pub fn tpa(&self) -> Ipv4Addr {
        self.ip(field::TPA)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed Ethernet/IPv4 fields (htype, ptype, hlen, plen).
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        b[field::HTYPE].copy_from_slice(&1u16.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, op: u16) {
        self.buffer.as_mut()[field::OPER].copy_from_slice(&op.to_be_bytes());
    }

    /// Sets the sender addresses.
    pub fn set_sender(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
        self.buffer.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    /// Sets the target addresses.
    pub fn set_target(&mut self, mac: MacAddr, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
        self.buffer.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Operation (request 1, reply 2, ...).
    pub operation: u16,
    /// Sender hardware address.
    pub sha: MacAddr,
    /// Sender IPv4 address.
    pub spa: Ipv4Addr,
    /// Target hardware address.
    pub tha: MacAddr,
    /// Target IPv4 address.
    pub tpa: Ipv4Addr,
}

impl Repr {
    /// Parses; `Err` for anything but Ethernet/IPv4 ARP.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr> {
        p.check_len()?;
        if p.htype() != 1 || p.ptype() != ethertype::IPV4 || p.hlen() != 6 || p.plen() != 4 {
            return Err(Error);
        }
        Ok(Repr {
            operation: p.operation(),
            sha: p.sha(),
            spa: p.spa(),
            tha: p.tha(),
            tpa: p.tpa(),
        })
    }

    /// Packet length.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_ethernet_ipv4();
        p.set_operation(self.operation);
        p.set_sender(self.sha, self.spa);
        p.set_target(self.tha, self.tpa);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testdata::ARP_REQUEST;
    use proptest::prelude::*;

    #[test]
    fn read_parse_emit() {
        let p = Packet::new_checked(&ARP_REQUEST[14..]).unwrap();
        assert_eq!(p.operation(), OP_REQUEST);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.spa, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(r.tpa, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(r.sha, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(r.tha, MacAddr([0; 6]));
        let mut buf = [0u8; PACKET_LEN];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, ARP_REQUEST[14..]);
        let e = etherparse::ArpPacketSlice::from_slice(&ARP_REQUEST[14..]).unwrap();
        assert_eq!(e.sender_protocol_addr(), &r.spa.octets());
    }

    #[test]
    fn non_ipv4_arp_is_refused() {
        let mut b = ARP_REQUEST[14..].to_vec();
        b[5] = 16;
        assert!(Repr::parse(&Packet::new_checked(&b[..]).unwrap()).is_err());
        assert!(Packet::new_checked(&b[..27]).is_err());
    }

    proptest! {
        #[test]
        fn emit_then_parse(op in any::<u16>(), sha in any::<[u8; 6]>(), spa in any::<[u8; 4]>(), tha in any::<[u8; 6]>(), tpa in any::<[u8; 4]>()) {
            let r = Repr { operation: op, sha: MacAddr(sha), spa: spa.into(), tha: MacAddr(tha), tpa: tpa.into() };
            let mut buf = [0u8; PACKET_LEN];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p);
            }
        }
    }
}
