//! VXLAN decapsulation and the tunnel endpoint over arbitrary frames: never panics, a frame
//! it accepts has its outer headers removed and an inner Ethernet header left, and on
//! refusal the buffer is unchanged.
#![no_main]

use std::net::Ipv4Addr;

use datapath::packet::PacketBuf;
use datapath::tunnel::decap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(mut b) = PacketBuf::from_frame(data) else {
        return;
    };
    // The first four bytes choose the local address, so the fuzzer can reach the accept path.
    let local = if data.len() >= 34 {
        Ipv4Addr::new(data[30], data[31], data[32], data[33])
    } else {
        Ipv4Addr::new(172, 16, 0, 1)
    };
    match decap(&mut b, local) {
        Ok(_) => {
            assert!(b.len() >= 14);
            assert!(b.len() + 50 <= data.len());
        }
        Err(_) => assert_eq!(b.data(), data),
    }
});
