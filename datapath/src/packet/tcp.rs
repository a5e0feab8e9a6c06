//! TCP headers (RFC 9293). Options are carried as bytes (`header_len` covers them).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Error, Result, be16, be32, checksum, ip_proto};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const OFF_FLAGS: Range<usize> = 12..14;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// Flag bits (in the low 12 bits of the offset/flags word).
pub mod flags {
    /// FIN
    pub const FIN: u16 = 0x001;
    /// SYN
    pub const SYN: u16 = 0x002;
    /// RST
    pub const RST: u16 = 0x004;
    /// PSH
    pub const PSH: u16 = 0x008;
    /// ACK
    pub const ACK: u16 = 0x010;
    /// URG
    pub const URG: u16 = 0x020;
}

super::view!(
    "A view of a TCP segment. `new_checked` guarantees a data offset of at least 5 whose header fits the buffer."
);

impl<T: AsRef<[u8]>> Packet<T> {
    /// See [`Packet`].
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error);
        }
        let hl = self.header_len() as usize;
        if hl < HEADER_LEN || b.len() < hl {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ.start)
    }

    /// Acknowledgement number.
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK.start)
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::OFF_FLAGS.start] >> 4) * 4
    }

    /// The 12 flag bits.
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), field::OFF_FLAGS.start) & 0x0fff
    }

    /// Window.
    pub fn window_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW.start)
    }

    /// Checksum.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// Option bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len() as usize]
    }

    /// Payload (to the end of the buffer).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len() as usize..]
    }

    /// True when the checksum over the whole buffer and this IPv4 pseudo-header is right.
    pub fn verify_checksum_ipv4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::finish(&[
            checksum::pseudo_ipv4(src, dst, ip_proto::TCP, b.len() as u16),
            checksum::sum(b),
        ]) == 0
    }

    /// True when the checksum over the whole buffer and this IPv6 pseudo-header is right.
    pub fn verify_checksum_ipv6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::finish(&[
            checksum::pseudo_ipv6(src, dst, ip_proto::TCP, b.len() as u32),
            checksum::sum(b),
        ]) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the ports.
    pub fn set_ports(&mut self, src: u16, dst: u16) {
        let b = self.buffer.as_mut();
        b[field::SRC_PORT].copy_from_slice(&src.to_be_bytes());
        b[field::DST_PORT].copy_from_slice(&dst.to_be_bytes());
    }

    /// Sets sequence and acknowledgement numbers.
    pub fn set_numbers(&mut self, seq: u32, ack: u32) {
        let b = self.buffer.as_mut();
        b[field::SEQ].copy_from_slice(&seq.to_be_bytes());
        b[field::ACK].copy_from_slice(&ack.to_be_bytes());
    }

    /// Sets header length (bytes, multiple of 4) and flags.
    pub fn set_header_len_and_flags(&mut self, header_len: u8, flags: u16) {
        let v = ((header_len as u16 / 4) << 12) | (flags & 0x0fff);
        self.buffer.as_mut()[field::OFF_FLAGS].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets window and urgent pointer.
    pub fn set_window_and_urgent(&mut self, window: u16, urgent: u16) {
        let b = self.buffer.as_mut();
        b[field::WINDOW].copy_from_slice(&window.to_be_bytes());
        b[field::URGENT].copy_from_slice(&urgent.to_be_bytes());
    }

    /// Computes the checksum over the whole buffer and an IPv4 pseudo-header.
    pub fn fill_checksum_ipv4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let b = self.buffer.as_ref();
        let c = checksum::finish(&[
            checksum::pseudo_ipv4(src, dst, ip_proto::TCP, b.len() as u16),
            checksum::sum(b),
        ]);
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// A TCP header (options represented by their length only; `emit` writes them as zeros,
/// end-of-options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgement number.
    pub ack_number: u32,
    /// Flags (12 bits).
    pub flags: u16,
    /// Window.
    pub window_len: u16,
    /// Urgent pointer.
    pub urgent_at: u16,
    /// Header length including options (20..=60, multiple of 4).
    pub header_len: u8,
}

impl Repr {
    /// Parses a checked segment.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(p: &Packet<&T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq_number: p.seq_number(),
            ack_number: p.ack_number(),
            flags: p.flags(),
            window_len: p.window_len(),
            urgent_at: p.urgent_at(),
            header_len: p.header_len(),
        })
    }

    /// Header length.
    pub const fn buffer_len(&self) -> usize {
        self.header_len as usize
    }

    /// Writes the header (checksum zero; fill it once the payload is in place).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_ports(self.src_port, self.dst_port);
        p.set_numbers(self.seq_number, self.ack_number);
        p.set_header_len_and_flags(self.header_len, self.flags);
        p.set_window_and_urgent(self.window_len, self.urgent_at);
        p.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&[0, 0]);
        p.buffer.as_mut()[HEADER_LEN..self.header_len as usize].fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::testdata::TCP_SYN;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    #[test]
    fn read_fields() {
        let p = Packet::new_checked(&TCP_SYN[34..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number()),
            (40000, 80, 0x0102_0304, 0)
        );
        assert_eq!(
            (p.header_len(), p.flags(), p.window_len()),
            (40, flags::SYN, 64240)
        );
        assert_eq!(&p.options()[..4], &[2, 4, 0x05, 0xb4], "MSS 1460");
        assert!(p.verify_checksum_ipv4(SRC, DST));
        let e = etherparse::TcpHeaderSlice::from_slice(&TCP_SYN[34..]).unwrap();
        assert_eq!((e.syn(), e.checksum()), (true, p.checksum()));
    }

    #[test]
    fn build_matches_capture() {
        let p = Packet::new_checked(&TCP_SYN[34..]).unwrap();
        let r = Repr::parse(&p).unwrap();
        let mut buf = TCP_SYN[34..].to_vec();
        let mut q = Packet::new_unchecked(&mut buf[..]);
        r.emit(&mut q);
        q.buffer[HEADER_LEN..40].copy_from_slice(p.options());
        q.fill_checksum_ipv4(SRC, DST);
        assert_eq!(buf, TCP_SYN[34..]);
    }

    #[test]
    fn bad_data_offset() {
        let mut b = TCP_SYN[34..].to_vec();
        b[12] = 0x40;
        assert!(Packet::new_checked(&b[..]).is_err());
        b[12] = 0xf0;
        assert!(
            Packet::new_checked(&b[..]).is_err(),
            "60-byte header in a 40-byte buffer"
        );
    }

    proptest! {
        #[test]
        fn emit_then_parse(sp in any::<u16>(), dp in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(), fl in 0u16..0x1000, win in any::<u16>(), urg in any::<u16>(), opts in 0u8..11) {
            let r = Repr { src_port: sp, dst_port: dp, seq_number: seq, ack_number: ack, flags: fl, window_len: win, urgent_at: urg, header_len: 20 + opts * 4 };
            let mut buf = vec![0u8; r.buffer_len() + 5];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            r.emit(&mut p);
            p.fill_checksum_ipv4(SRC, DST);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum_ipv4(SRC, DST));
            prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..70)) {
            if let Ok(p) = Packet::new_checked(&b[..]) {
                let _ = Repr::parse(&p);
                let _ = (p.options(), p.payload());
            }
        }
    }
}
