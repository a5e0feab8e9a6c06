use super::*;
use proptest::prelude::*;

/// Requests as dockerd 20.10 sent them to this plugin (logged with
/// `RUST_LOG=vswitch_docker=debug`), ids shortened; the whole bodies are the fuzz seeds in
/// `fuzz/seeds/docker_plugin/`.
const CREATE_NETWORK: &str = r#"{"NetworkID":"3f2a9c","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"vswitch.vlan":"12"}},"IPv4Data":[{"AddressSpace":"LocalDefault","Gateway":"172.30.0.1/16","Pool":"172.30.0.0/16"}],"IPv6Data":[]}"#;
/// An internal dual-stack network (IPv6 part and aux address written after Docker's shape).
const CREATE_INTERNAL_V6: &str = r#"{"NetworkID":"aa","Options":{"com.docker.network.enable_ipv6":true,"com.docker.network.generic":{},"com.docker.network.internal":true},"IPv4Data":[{"AddressSpace":"LocalDefault","AuxAddresses":{"r":"10.9.0.9/24"},"Gateway":"10.9.0.1/24","Pool":"10.9.0.0/24"}],"IPv6Data":[{"AddressSpace":"LocalDefault","Gateway":"fd00:9::1/64","Pool":"fd00:9::/64"}]}"#;
const CREATE_ENDPOINT: &str = r#"{"NetworkID":"3f2a9c","EndpointID":"77be01","Interface":{"Address":"172.30.0.2/16","AddressIPv6":"","MacAddress":""},"Options":{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}}"#;
const JOIN: &str = r#"{"NetworkID":"3f2a9c","EndpointID":"77be01","SandboxKey":"/var/run/docker/netns/5b1d","Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}],"com.docker.network.portmap":[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]}}"#;
const PROGRAM: &str = r#"{"NetworkID":"3f2a9c","EndpointID":"77be01","Options":{"com.docker.network.endpoint.exposedports":[{"Proto":6,"Port":80}],"com.docker.network.portmap":[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}]}}"#;

#[test]
fn create_network_as_dockerd_sends_it() {
    let r = parse_create_network(CREATE_NETWORK.as_bytes()).unwrap();
    assert_eq!(r.network.unwrap().as_str(), "3f2a9c");
    assert_eq!(
        r.generic.get("vswitch.vlan").map(String::as_str),
        Some("12")
    );
    assert!(!r.ipv6 && !r.internal);
    assert_eq!(r.ipv4.len(), 1);
    assert_eq!(r.ipv4[0].pool.to_string(), "172.30.0.0/16");
    assert_eq!(r.ipv4[0].gateway.unwrap().to_string(), "172.30.0.1/16");
    let r = parse_create_network(CREATE_INTERNAL_V6.as_bytes()).unwrap();
    assert!(r.ipv6 && r.internal);
    assert_eq!(r.ipv6_data[0].gateway.unwrap().to_string(), "fd00:9::1/64");
    assert_eq!(r.ipv4[0].aux["r"].to_string(), "10.9.0.9/24");
}

#[test]
fn endpoint_join_and_ports_as_dockerd_sends_them() {
    let e = parse_create_endpoint(CREATE_ENDPOINT.as_bytes()).unwrap();
    assert_eq!(e.address.unwrap().to_string(), "172.30.0.2/16");
    assert_eq!((e.address_v6, e.mac), (None, None));
    let j = parse_join(JOIN.as_bytes()).unwrap();
    assert_eq!(j.sandbox_key, "/var/run/docker/netns/5b1d");
    let p = parse_external(PROGRAM.as_bytes()).unwrap();
    assert_eq!(
        p.port_map,
        vec![PortMapping {
            proto: Proto::Tcp,
            port: 80,
            host_ip: None,
            host_port: 8080,
            host_port_end: 8080
        }]
    );
}

#[test]
fn missing_ids_are_tolerated() {
    for body in ["{}", r#"{"NetworkID":null,"EndpointID":""}"#] {
        let r = parse_endpoint_ref(body.as_bytes()).unwrap();
        assert_eq!((r.network, r.endpoint), (None, None));
        assert_eq!(
            parse_create_endpoint(body.as_bytes()).unwrap().endpoint,
            None
        );
        assert_eq!(parse_join(body.as_bytes()).unwrap().endpoint, None);
        assert_eq!(parse_create_network(body.as_bytes()).unwrap().network, None);
    }
    parse_empty(b"").unwrap();
    parse_empty(b"null").unwrap();
    parse_empty(b"{}").unwrap();
}

#[test]
fn bad_values_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"NetworkID":"XYZ"}"#, "NetworkID"),
        (
            r#"{"NetworkID":"ab","IPv4Data":[{"Pool":"10.0.0.0/33"}]}"#,
            "IPv4Data[0].Pool",
        ),
        (
            r#"{"NetworkID":"ab","IPv4Data":[{"Pool":"10.0.0.0/24","Gateway":"10.0.1.1/24"}]}"#,
            "IPv4Data[0].Gateway",
        ),
        (
            r#"{"NetworkID":"ab","IPv6Data":[{"Pool":"10.0.0.0/24"}]}"#,
            "IPv6Data",
        ),
        (
            r#"{"Options":{"com.docker.network.generic":{"a":[1]}}}"#,
            "com.docker.network.generic.a",
        ),
        (
            r#"{"Options":{"com.docker.network.internal":7}}"#,
            "internal",
        ),
    ];
    for (body, field) in cases {
        let e = parse_create_network(body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{body}: {e}");
    }
    let e = parse_create_endpoint(br#"{"Interface":{"MacAddress":"01:00:5e:00:00:01"}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("MacAddress") && e.contains("multicast"), "{e}");
    let e = parse_create_endpoint(br#"{"Interface":{"Address":"fd00::1/64"}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("Interface.Address"), "{e}");
    let e =
        parse_external(br#"{"Options":{"com.docker.network.portmap":[{"Proto":1,"Port":80}]}}"#)
            .unwrap_err()
            .to_string();
    assert!(e.contains("Proto"), "{e}");
    assert!(parse_empty(b"[1]").is_err());
    assert!(parse_join(b"not json").is_err());
}

#[test]
fn join_response_shape() {
    let r = JoinResponse {
        src_name: "vd12c".into(),
        dst_prefix: "eth".into(),
        gateway: Some("172.30.0.1".parse().unwrap()),
        gateway_v6: None,
        disable_gateway_service: false,
    };
    let v = r.to_json();
    assert_eq!(v["InterfaceName"]["SrcName"], "vd12c");
    assert_eq!(v["InterfaceName"]["DstPrefix"], "eth");
    assert_eq!(v["Gateway"], "172.30.0.1");
    assert!(v.get("GatewayIPv6").is_none());
}

fn arb_v4() -> impl Strategy<Value = Cidr> {
    (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, p)| Cidr {
        addr: IpAddr::from(a),
        prefix: p,
    })
}

fn arb_v6() -> impl Strategy<Value = Cidr> {
    (any::<[u8; 16]>(), 0u8..=128).prop_map(|(a, p)| Cidr {
        addr: IpAddr::from(a),
        prefix: p,
    })
}

fn arb_id() -> impl Strategy<Value = String> {
    "[0-9a-f]{1,64}"
}

proptest! {
    /// No input makes a parser panic.
    #[test]
    fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_create_network(&body);
        let _ = parse_create_endpoint(&body);
        let _ = parse_endpoint_ref(&body);
        let _ = parse_network_ref(&body);
        let _ = parse_join(&body);
        let _ = parse_external(&body);
        let _ = parse_empty(&body);
    }

    /// Nor does JSON of the right shape with arbitrary strings in it.
    #[test]
    fn shaped_json_never_panics(
        id in "\\PC{0,70}",
        pool in "\\PC{0,30}",
        gw in "\\PC{0,30}",
        mac in "\\PC{0,20}",
        k in "\\PC{0,10}",
        v in "\\PC{0,10}",
        port in any::<i64>(),
    ) {
        let net = serde_json::json!({"NetworkID": id, "Options": {GENERIC: {k.clone(): v}},
            "IPv4Data": [{"Pool": pool, "Gateway": gw}]});
        let _ = parse_create_network(net.to_string().as_bytes());
        let ep = serde_json::json!({"NetworkID": id, "EndpointID": id,
            "Interface": {"Address": pool, "AddressIPv6": gw, "MacAddress": mac}});
        let _ = parse_create_endpoint(ep.to_string().as_bytes());
        let pm = serde_json::json!({"EndpointID": id, "Options": {PORT_MAP:
            [{"Proto": 6, "Port": port, "HostPort": port, "HostIP": k}]}});
        let _ = parse_external(pm.to_string().as_bytes());
    }

    /// What dockerd would send for a valid network parses back to the same values.
    #[test]
    fn create_network_roundtrip(
        id in arb_id(),
        v4 in arb_v4(),
        v6 in arb_v6(),
        internal in any::<bool>(),
        ipv6 in any::<bool>(),
        opts in proptest::collection::btree_map("[a-z.]{1,12}", "[ -~]{0,12}", 0..4),
    ) {
        let pool4 = v4.network();
        let pool6 = v6.network();
        let body = serde_json::json!({
            "NetworkID": id,
            "Options": {GENERIC: opts, ENABLE_IPV6: ipv6, INTERNAL: internal},
            "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": pool4.to_string(), "Gateway": v4.to_string()}],
            "IPv6Data": [{"AddressSpace": "LocalDefault", "Pool": pool6.to_string(), "Gateway": v6.to_string()}],
        });
        let r = parse_create_network(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(r.network.unwrap().to_string(), id);
        prop_assert_eq!(r.generic, opts);
        prop_assert_eq!((r.internal, r.ipv6), (internal, ipv6));
        prop_assert_eq!(r.ipv4[0].pool, pool4);
        prop_assert_eq!(r.ipv4[0].gateway, Some(v4));
        prop_assert_eq!(r.ipv6_data[0].gateway, Some(v6));
    }

    /// Endpoints likewise, with and without the optional parts.
    #[test]
    fn create_endpoint_roundtrip(
        nid in arb_id(),
        eid in arb_id(),
        v4 in proptest::option::of(arb_v4()),
        v6 in proptest::option::of(arb_v6()),
        mac in proptest::option::of(any::<[u8; 6]>().prop_map(|mut m| { m[0] &= 0xfe; Mac(m) })),
    ) {
        let s = |c: Option<String>| c.unwrap_or_default();
        let body = serde_json::json!({"NetworkID": nid, "EndpointID": eid, "Interface": {
            "Address": s(v4.map(|c| c.to_string())),
            "AddressIPv6": s(v6.map(|c| c.to_string())),
            "MacAddress": s(mac.map(|m| m.to_string())),
        }, "Options": {}});
        let r = parse_create_endpoint(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(r.endpoint.unwrap().to_string(), eid);
        prop_assert_eq!((r.address, r.address_v6, r.mac), (v4, v6, mac));
    }

    /// Ids are accepted exactly when they are 1-64 lowercase hex digits.
    #[test]
    fn id_acceptance(s in "[0-9a-gA-F]{0,70}") {
        let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        prop_assert_eq!(s.parse::<Id>().is_ok(), ok);
    }

    /// Display then parse is the identity for addresses and MACs.
    #[test]
    fn cidr_and_mac_roundtrip(c in prop_oneof![arb_v4(), arb_v6()], m in any::<[u8; 6]>()) {
        prop_assert_eq!(c.to_string().parse::<Cidr>().unwrap(), c);
        let m = Mac([m[0] & 0xfe, m[1], m[2], m[3], m[4], m[5]]);
        prop_assert_eq!(m.to_string().parse::<Mac>().unwrap(), m);
        prop_assert!(c.contains(c.addr));
    }

    /// Port mappings: ranges are kept, an end before the start is refused.
    #[test]
    fn port_map_ranges(start in any::<u16>(), end in any::<u16>(), port in any::<u16>()) {
        let body = serde_json::json!({"EndpointID": "ab", "Options": {PORT_MAP:
            [{"Proto": 17, "Port": port, "HostPort": start, "HostPortEnd": end}]}});
        let r = parse_external(body.to_string().as_bytes());
        let end_eff = if end == 0 { start } else { end };
        if end_eff < start {
            prop_assert!(r.is_err());
        } else {
            let m = &r.unwrap().port_map[0];
            prop_assert_eq!((m.proto, m.port, m.host_port, m.host_port_end), (Proto::Udp, port, start, end_eff));
        }
    }
}
