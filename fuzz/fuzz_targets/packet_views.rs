//! Every protocol view over arbitrary bytes: `new_checked` either refuses or every accessor
//! and `Repr::parse` stays in bounds; a parsed `Repr` emits and parses back to itself.
#![no_main]

use datapath::packet::{arp, ethernet, gre, icmp, icmpv6, ipv4, ipv6, tcp, udp, vlan, vxlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ethernet::Packet::new_checked(data) {
        let _ = (ethernet::Repr::parse(&p), p.payload());
    }
    if let Ok(p) = vlan::Packet::new_checked(data) {
        let _ = vlan::Repr::parse(&p);
    }
    if let Ok(p) = arp::Packet::new_checked(data)
        && let Ok(r) = arp::Repr::parse(&p)
    {
        let mut buf = [0u8; arp::PACKET_LEN];
        r.emit(&mut arp::Packet::new_unchecked(&mut buf[..]));
        assert_eq!(
            arp::Repr::parse(&arp::Packet::new_unchecked(&buf[..])),
            Ok(r)
        );
    }
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = p.payload();
        if let Ok(r) = ipv4::Repr::parse(&p) {
            let mut buf = vec![0u8; r.buffer_len() + r.payload_len as usize];
            r.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..]));
            assert_eq!(
                ipv4::Repr::parse(&ipv4::Packet::new_unchecked(&buf[..])),
                Ok(r)
            );
        }
    }
    if let Ok(p) = ipv6::Packet::new_checked(data) {
        let _ = (ipv6::Repr::parse(&p), p.payload());
    }
    if let Ok(p) = icmp::Packet::new_checked(data) {
        let _ = (icmp::Repr::parse(&p), p.payload());
    }
    if let Ok(p) = icmpv6::Packet::new_checked(data) {
        let _ = icmpv6::Repr::parse(
            &p,
            std::net::Ipv6Addr::LOCALHOST,
            std::net::Ipv6Addr::LOCALHOST,
        );
    }
    if let Ok(p) = udp::Packet::new_checked(data) {
        let _ = (
            udp::Repr::parse(&p),
            p.payload(),
            p.verify_checksum_ipv4(std::net::Ipv4Addr::LOCALHOST, std::net::Ipv4Addr::LOCALHOST),
        );
    }
    if let Ok(p) = tcp::Packet::new_checked(data) {
        let _ = (tcp::Repr::parse(&p), p.options(), p.payload());
    }
    if let Ok(p) = vxlan::Packet::new_checked(data) {
        let _ = (vxlan::Repr::parse(&p), p.payload());
    }
    if let Ok(p) = gre::Packet::new_checked(data) {
        let _ = (p.key(), p.seq(), p.checksum(), p.payload());
        if let Ok(r) = gre::Repr::parse(&p) {
            let mut buf = vec![0u8; r.buffer_len()];
            buf.extend_from_slice(p.payload());
            r.emit(&mut gre::Packet::new_unchecked(&mut buf[..]));
            assert_eq!(
                gre::Repr::parse(&gre::Packet::new_unchecked(&buf[..])),
                Ok(r)
            );
        }
    }
});
