//! The Docker plugin's request parsers (network and IPAM driver) and its uplink's ARP
//! parser on arbitrary bodies, as a hostile or buggy dockerd
//! could send them: nothing may panic, and an accepted request's values keep their
//! invariants (ids are hexadecimal, addresses inside their prefix length, gateways inside
//! their pools, port ranges ordered).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vswitch_docker::api;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = api::parse_create_network(data) {
        for d in r.ipv4.iter().chain(&r.ipv6_data) {
            if let Some(g) = d.gateway {
                assert!(d.pool.contains(g.addr));
            }
        }
        assert!(r.ipv4.iter().all(|d| d.pool.addr.is_ipv4()));
        assert!(r.ipv6_data.iter().all(|d| d.pool.addr.is_ipv6()));
        if let Some(id) = &r.network {
            assert!(id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        }
        // The options parser sees the same generic map.
        let _ = vswitch_docker::options::NetOptions::parse(&r.generic, "br-docker");
    }
    if let Ok(r) = api::parse_create_endpoint(data) {
        assert!(r.address.is_none_or(|a| a.addr.is_ipv4() && a.prefix <= 32));
        assert!(r.address_v6.is_none_or(|a| a.addr.is_ipv6() && a.prefix <= 128));
        assert!(r.mac.is_none_or(|m| m.0[0] & 1 == 0));
    }
    if let Ok(r) = api::parse_external(data) {
        assert!(r.port_map.iter().all(|m| m.host_port <= m.host_port_end));
    }
    // ARP and IPv4 frames from a network's uplink (the outside world writes them).
    if let Some(r) = vswitch_docker::neigh::parse_arp(data) {
        assert!(r.sha.0[0] & 1 == 0 && !r.spa.is_unspecified() && (r.op == 1 || r.op == 2));
        let reply =
            vswitch_docker::neigh::arp_reply(&r, vswitch_docker::publish::external_mac(r.tpa));
        assert_eq!(reply.len(), 60);
    }
    let _ = vswitch_docker::neigh::ipv4_dst(data);
    let _ = api::parse_endpoint_ref(data);
    let _ = api::parse_network_ref(data);
    let _ = api::parse_join(data);
    let _ = api::parse_empty(data);
    // The IPAM driver's requests.
    if let Ok(r) = api::ipam::parse_request_address(data) {
        assert!(r.address.is_none_or(|a| r.pool.contains(a)));
        assert!(r.pool.network() == r.pool);
    }
    if let Ok(r) = api::ipam::parse_request_pool(data) {
        assert!(r.pool.is_none_or(|p| p.network() == p && p.addr.is_ipv6() == r.v6));
    }
    let _ = api::ipam::parse_release_pool(data);
    let _ = api::ipam::parse_release_address(data);
});
