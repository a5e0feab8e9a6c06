//! Shared helpers for the benchmarks: synthetic frames and in-memory port loops.
//!
//! Frames are real, checksummed Ethernet/IPv4/UDP packets built here so the benchmarks need
//! no capture files; `frame_size` is the Ethernet frame without FCS (64-byte frames on the
//! wire are 60 bytes here).

use std::collections::VecDeque;

use datapath::packet::PacketBuf;

/// True when the binary runs under `cargo bench` (full sizes) rather than `cargo test`
/// (each benchmark once, at small sizes, to prove it works).
pub fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `full` under `cargo bench`, else `small`.
pub fn scale(full: usize, small: usize) -> usize {
    if full_run() { full } else { small }
}

fn csum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        s += w as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4/UDP frame of `frame_size` bytes (at least 42).
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
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (size - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src_ip.to_be_bytes());
    ip[16..20].copy_from_slice(&dst_ip.to_be_bytes());
    let c = csum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
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
