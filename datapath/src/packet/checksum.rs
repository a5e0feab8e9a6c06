//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624); SCTP's CRC32c
//! (RFC 9260 appendix A).

use std::net::{Ipv4Addr, Ipv6Addr};

/// One's-complement sum of `data` as big-endian 16-bit words (odd byte padded with zero),
/// not yet folded.
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [b] = chunks.remainder() {
        acc += (*b as u64) << 8;
    }
    fold64(acc) as u32
}

fn fold64(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Folds partial sums into a 16-bit one's-complement sum.
pub fn combine(sums: &[u32]) -> u16 {
    fold64(sums.iter().map(|&s| s as u64).sum())
}

/// The checksum field value for data whose partial sums are `sums`.
pub fn finish(sums: &[u32]) -> u16 {
    !combine(sums)
}

/// Checksum of `data` alone.
pub fn data(data: &[u8]) -> u16 {
    finish(&[sum(data)])
}

/// Partial sum of the IPv4 pseudo-header.
pub fn pseudo_ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    sum(&src.octets()) + sum(&dst.octets()) + proto as u32 + len as u32
}

/// Partial sum of the IPv6 pseudo-header.
pub fn pseudo_ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    sum(&src.octets()) + sum(&dst.octets()) + next_header as u32 + (len >> 16) + (len & 0xffff)
}

/// A checksum updated for one 16-bit word changing from `old` to `new` (RFC 1624 eqn. 3).
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    let mut s = (!csum as u32) + (!old as u32) + new as u32;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

/// A checksum updated for `old` bytes replaced by `new` (same even length).
#[inline]
pub fn update(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut c = csum;
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        c = update16(
            c,
            u16::from_be_bytes([o[0], o[1]]),
            u16::from_be_bytes([n[0], n[1]]),
        );
    }
    c
}

/// CRC32c (Castagnoli, reflected polynomial 0x82f63b78), one table entry per byte value.
const CRC32C: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82f6_3b78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC32c of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &b| {
        CRC32C[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

/// Recomputes the checksum of the SCTP packet `sctp` (common header and chunks) in place:
/// CRC32c over the packet with the checksum field zero, stored least significant byte
/// first as RFC 9260 appendix A has it. Nothing for a packet shorter than its header.
pub fn sctp_update(sctp: &mut [u8]) {
    if sctp.len() < 12 {
        return;
    }
    sctp[8..12].fill(0);
    let c = crc32c(sctp);
    sctp[8..12].copy_from_slice(&c.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2.
        assert_eq!(
            combine(&[sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])]),
            0xddf2
        );
    }

    #[test]
    fn crc32c_check_value() {
        // The CRC catalogue's check value of CRC-32/ISCSI.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    proptest! {
        #[test]
        fn incremental_equals_recomputed(mut data in proptest::collection::vec(any::<u8>(), 2..64), at in 0usize..32, new in any::<[u8; 2]>()) {
            let at = (at % (data.len() / 2)) * 2;
            let before = self::data(&data);
            let old = [data[at], data[at + 1]];
            data[at..at + 2].copy_from_slice(&new);
            let after = self::data(&data);
            let inc = update(before, &old, &new);
            // 0x0000 and 0xffff are the same value in one's complement.
            prop_assert!(inc == after || (inc == 0xffff && after == 0) || (inc == 0 && after == 0xffff));
        }
    }
}
