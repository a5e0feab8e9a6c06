//! What the overlay agent reads that another host (or anyone with access to etcd) wrote, and
//! what a container sends it: etcd keys and values of every kind, and neighbour
//! solicitations from the switch's packet-ins. Nothing may panic; an accepted value keeps
//! its invariants (VNI in range, unicast MAC, an address, a canonical pool key).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_docker::overlay::{nd, schema};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = schema::parse_network("k", data) {
        assert!((schema::VNI_MIN..=schema::VNI_MAX).contains(&d.vni));
        assert!(d.key().is_some());
    }
    if let Ok(e) = schema::parse_endpoint("k", data) {
        assert!(e.mac.0[0] & 1 == 0);
        assert!(e.ipv4.is_some() || e.ipv6.is_some());
    }
    let _ = schema::parse_host("k", data);
    let _ = schema::parse_pool("k", data);
    let _ = schema::parse_addr("k", data);
    let keys = schema::Keys::new("/vswitch-docker").unwrap_or_else(|_| unreachable!());
    if let Some(schema::ViewKey::Network(n)) = keys.parse_view(data) {
        assert!(schema::parse_cidr_key(&n).is_some());
    }
    if let Some((pool, ip)) = keys.parse_addr(data) {
        assert!(pool.contains(ip));
    }
    if let Ok(ns) = nd::parse_solicitation(data) {
        assert!(!ns.src_ip.is_unspecified() && !ns.target.is_multicast());
        let _ = nd::advertisement(&ns, ns.src_mac);
    }
});
