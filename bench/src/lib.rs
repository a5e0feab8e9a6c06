//! Shared helpers for the benchmarks: synthetic frames and in-memory port loops.
//!
//! Frames are real, checksummed Ethernet/IPv4/UDP packets built here so the benchmarks need
//! no capture files; `frame_size` is the Ethernet frame without FCS (64-byte frames on the
//! wire are 60 bytes here).

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use datapath::packet::{PacketBuf, ethernet, ethertype, ip_proto, ipv4, udp};
use datapath::types::MacAddr;

/// True when the binary runs under `cargo bench` (full sizes) rather than `cargo test`
/// (each benchmark once, at small sizes, to prove it works).
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `full` under `cargo bench`, else `small`.
pub fn scale(full: usize, small: usize) -> usize {
    if full_run() { full } else { small }
}

/// An Ethernet/IPv4/UDP frame of `frame_size` bytes (at least 42), written through the
/// datapath's header views: DF set, TTL 64, the IPv4 checksum filled, no UDP checksum.
pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: u32,
    dst_ip: u32,
    sport: u16,
    dport: u16,
    frame_size: usize,
) -> Vec<u8> {
    let size = frame_size.max(42);
    let mut f = vec![0u8; size];
    ethernet::Repr {
        src_addr: MacAddr(src_mac),
        dst_addr: MacAddr(dst_mac),
        ethertype: ethertype::IPV4,
    }
    .emit(&mut ethernet::Packet::new_unchecked(&mut f[..]));
    let l4 = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
    ipv4::Repr {
        src_addr: Ipv4Addr::from(src_ip),
        dst_addr: Ipv4Addr::from(dst_ip),
        protocol: ip_proto::UDP,
        payload_len: (size - l4) as u16,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut ipv4::Packet::new_unchecked(
        &mut f[ethernet::HEADER_LEN..],
    ));
    udp::Repr {
        src_port: sport,
        dst_port: dport,
        payload_len: (size - l4 - udp::HEADER_LEN) as u16,
    }
    .emit(&mut udp::Packet::new_unchecked(&mut f[l4..]));
    f
}

/// A locally administered MAC address numbered `n`.
pub fn mac(n: u32) -> [u8; 6] {
    let b = n.to_be_bytes();
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

/// `n` frames of `size` bytes from `flows` distinct 5-tuples (10.0.x.y -> 10.1.x.y, UDP).
pub fn udp_flows(flows: u32, n: usize, size: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let f = (i as u32) % flows.max(1);
            udp_frame(
                mac(1),
                mac(2),
                0x0a00_0000 | f,
                0x0a01_0000 | f,
                1024 + (f % 50000) as u16,
                80,
                size,
            )
        })
        .collect()
}

/// Buffers holding `frames`, ready to be injected again and again.
pub fn bufs(frames: &[Vec<u8>]) -> VecDeque<PacketBuf> {
    frames
        .iter()
        .filter_map(|f| PacketBuf::from_frame(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_as_udp() {
        let f = udp_frame(mac(1), mac(2), 1, 2, 3, 4, 60);
        assert_eq!(f.len(), 60);
        let mut k = datapath::flow::FlowKey::ZERO;
        datapath::flow::extract(&f, datapath::types::PortNo(1), &mut k).unwrap();
        assert_eq!(k.get(datapath::flow::Field::TpDst), 4);
    }
}
