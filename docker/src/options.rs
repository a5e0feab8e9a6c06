//! The network options users give with `docker network create -o vswitch.K=V`.
//!
//! What: [`NetOptions::parse`] turns the generic options of a CreateNetwork request into
//! typed settings. A bad option is refused with a message that names it and says what is
//! allowed, which is what the user sees from `docker network create`.

use std::collections::BTreeMap;

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The bridge every network shares unless `vswitch.bridge` says otherwise.
pub const DEFAULT_BRIDGE: &str = "br-docker";

/// Every option this driver reads, with what it accepts (for error messages).
pub const OPTIONS: &[(&str, &str)] = &[
    ("vswitch.bridge", "a bridge name, 1-15 of a-z A-Z 0-9 - _ ."),
    (
        "vswitch.vlan",
        "a VLAN id 1..=4094 not used by another network on the bridge",
    ),
    ("vswitch.mtu", "an MTU 68..=9000"),
    (
        "vswitch.ingress_kbps",
        "a rate in kbit/s 1..=100000000 (the port's ingress policer)",
    ),
    (
        "vswitch.priority",
        "a priority 0..=7 (the egress queue on shaped ports)",
    ),
    (
        "vswitch.mode",
        "bridge (this host only) or overlay (across hosts: VXLAN, state in etcd)",
    ),
    (
        "vswitch.uplink",
        "a host interface name, 1-15 of a-z A-Z 0-9 - _ . (the switch port facing the \
         outside; needs vswitch.external_ip)",
    ),
    (
        "vswitch.external_ip",
        "a unicast IPv4 address, optionally with the uplink's prefix length A/LEN (the \
         network's address on its uplink: -p ports are published there, outbound traffic \
         is masqueraded to it; needs vswitch.uplink)",
    ),
    (
        "vswitch.uplink_gateway",
        "a unicast IPv4 address on the uplink's segment (the next hop of outbound traffic \
         to destinations outside vswitch.external_ip's prefix; needs vswitch.uplink)",
    ),
];

/// Docker's own name for the MTU option (`-o com.docker.network.driver.mtu=N`), accepted
/// as `vswitch.mtu`.
pub const DOCKER_MTU: &str = "com.docker.network.driver.mtu";

/// How a network reaches its containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Containers of this host on a VLAN of a local bridge.
    #[default]
    Bridge,
    /// One network across hosts: defined in etcd, VXLAN between the hosts' switches
    /// (`crate::overlay`). Locally it is a VLAN of the plugin's bridge as well.
    Overlay,
}

/// A refused option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("option {key}={value:?}: {message}")]
pub struct OptionError {
    /// The option's key.
    pub key: String,
    /// The value given.
    pub value: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// A network's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetOptions {
    /// The bridge the network's ports are on.
    pub bridge: String,
    /// A VLAN id the user asked for; `None` lets the driver pick a free one.
    pub vlan: Option<u16>,
    /// MTU of the containers' interfaces and the gateway; `None` keeps the default (1500).
    pub mtu: Option<u32>,
    /// Ingress policing rate of every endpoint's port, kbit/s.
    pub ingress_kbps: Option<u64>,
    /// Egress queue (and its priority) of the network's traffic.
    pub priority: Option<u8>,
    /// The network's mode.
    pub mode: Mode,
    /// The host interface that is the network's uplink (a switch port facing the
    /// outside), where published ports (`-p`) are served.
    #[serde(default)]
    pub uplink: Option<String>,
    /// The network's address on its uplink: the switch answers ARP for it and DNATs
    /// published ports addressed to it.
    #[serde(default)]
    pub external_ip: Option<Ipv4Addr>,
    /// The prefix length of the uplink's segment (`external_ip=A/LEN`): destinations in
    /// A/LEN are resolved directly; `None` when not given.
    #[serde(default)]
    pub external_prefix: Option<u8>,
    /// The next hop on the uplink for destinations off its segment; without one every
    /// destination is taken as on the segment (resolved directly by ARP).
    #[serde(default)]
    pub uplink_gateway: Option<Ipv4Addr>,
}

impl Default for NetOptions {
    fn default() -> NetOptions {
        NetOptions {
            bridge: DEFAULT_BRIDGE.to_string(),
            vlan: None,
            mtu: None,
            ingress_kbps: None,
            priority: None,
            mode: Mode::Bridge,
            uplink: None,
            external_ip: None,
            external_prefix: None,
            uplink_gateway: None,
        }
    }
}

fn number<T: std::str::FromStr + PartialOrd + Copy>(
    key: &str,
    value: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, OptionError> {
    let allowed = OPTIONS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, a)| *a);
    value
        .trim()
        .parse::<T>()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| OptionError {
            key: key.to_string(),
            value: value.to_string(),
            message: format!("expected {allowed}"),
        })
}

/// A unicast IPv4 address (not 0.0.0.0, broadcast, multicast or loopback).
fn unicast(s: &str) -> Option<Ipv4Addr> {
    s.parse::<Ipv4Addr>().ok().filter(|a| {
        !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
    })
}

/// The network address of `a/len`.
pub fn prefix_of(a: Ipv4Addr, len: u8) -> Ipv4Addr {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(u32::from(a) & mask)
}

/// True for a valid bridge name (as the switch checks it).
pub fn valid_bridge_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl NetOptions {
    /// The uplink's next hop must be somewhere traffic can be sent: with an uplink, not
    /// the external address itself, and inside A/LEN when a prefix is given (a gateway
    /// the switch could not reach by ARP would black-hole every connection).
    fn check_gateway(&self) -> Result<(), OptionError> {
        let Some(gw) = self.uplink_gateway else {
            return Ok(());
        };
        let err = |message: String| OptionError {
            key: "vswitch.uplink_gateway".into(),
            value: gw.to_string(),
            message,
        };
        let Some(ext) = self.external_ip else {
            return Err(err(
                "needs vswitch.uplink=IFACE and vswitch.external_ip=A[/LEN] (the gateway is \
                 reached through the uplink)"
                    .into(),
            ));
        };
        if gw == ext {
            return Err(err(
                "is vswitch.external_ip itself; give the router's address on the uplink".into(),
            ));
        }
        if let Some(len) = self.external_prefix.filter(|l| *l < 32) {
            let net = prefix_of(ext, len);
            let broadcast = Ipv4Addr::from(
                u32::from(net) | !u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0),
            );
            if prefix_of(gw, len) != net || (len < 31 && (gw == net || gw == broadcast)) {
                return Err(err(format!(
                    "is not a host address of the uplink's segment {net}/{len} \
                     (vswitch.external_ip={ext}/{len}): the switch resolves the gateway by \
                     ARP on the uplink, so it must be on that segment"
                )));
            }
        }
        Ok(())
    }

    /// Reads the generic options; `default_bridge` is the plugin's `--bridge`.
    pub fn parse(
        generic: &BTreeMap<String, String>,
        default_bridge: &str,
    ) -> Result<NetOptions, OptionError> {
        let mut o = NetOptions {
            bridge: default_bridge.to_string(),
            ..NetOptions::default()
        };
        for (k, v) in generic {
            let err = |message: String| OptionError {
                key: k.clone(),
                value: v.clone(),
                message,
            };
            match k.as_str() {
                "vswitch.bridge" => {
                    if !valid_bridge_name(v) {
                        return Err(err(format!("expected {}", OPTIONS[0].1)));
                    }
                    o.bridge = v.clone();
                }
                "vswitch.vlan" => o.vlan = Some(number(k, v, 1..=4094)?),
                "vswitch.mtu" => o.mtu = Some(number(k, v, 68..=9000)?),
                DOCKER_MTU => o.mtu = Some(number("vswitch.mtu", v, 68..=9000)?),
                "vswitch.ingress_kbps" => {
                    o.ingress_kbps = Some(number(k, v, 1..=100_000_000)?);
                }
                "vswitch.priority" => o.priority = Some(number(k, v, 0..=7)?),
                "vswitch.mode" => match v.as_str() {
                    "bridge" => o.mode = Mode::Bridge,
                    "overlay" => o.mode = Mode::Overlay,
                    _ => return Err(err("expected bridge or overlay".into())),
                },
                "vswitch.uplink" => {
                    if !valid_bridge_name(v) {
                        return Err(err(format!("expected {}", OPTIONS[6].1)));
                    }
                    o.uplink = Some(v.clone());
                }
                "vswitch.external_ip" => {
                    let (a, len) = match v.trim().split_once('/') {
                        Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| (1..=32).contains(l))),
                        None => (v.trim(), Some(32)),
                    };
                    match (unicast(a), len) {
                        (Some(a), Some(len)) => {
                            o.external_ip = Some(a);
                            o.external_prefix = v.contains('/').then_some(len);
                        }
                        _ => return Err(err(format!("expected {}", OPTIONS[7].1))),
                    }
                }
                "vswitch.uplink_gateway" => match unicast(v.trim()) {
                    Some(a) => o.uplink_gateway = Some(a),
                    None => return Err(err(format!("expected {}", OPTIONS[8].1))),
                },
                // Options Docker itself adds for every driver (e.g. the bridge name it
                // would give a bridge network) mean nothing here.
                k if k.starts_with("com.docker.network.") => {}
                _ => {
                    return Err(err(format!(
                        "unknown option; this driver knows {}",
                        OPTIONS
                            .iter()
                            .map(|(k, _)| *k)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        match (&o.uplink, o.external_ip) {
            (Some(_), None) => {
                return Err(OptionError {
                    key: "vswitch.uplink".into(),
                    value: o.uplink.clone().unwrap_or_default(),
                    message: "needs vswitch.external_ip=A (the network's address on the uplink)"
                        .into(),
                });
            }
            (None, Some(a)) => {
                return Err(OptionError {
                    key: "vswitch.external_ip".into(),
                    value: a.to_string(),
                    message: "needs vswitch.uplink=IFACE (the interface it is reached on)".into(),
                });
            }
            _ => {}
        }
        o.check_gateway()?;
        if o.uplink.is_some() && o.mode == Mode::Overlay {
            return Err(OptionError {
                key: "vswitch.uplink".into(),
                value: o.uplink.clone().unwrap_or_default(),
                message: "not supported with vswitch.mode=overlay (bridge networks only)".into(),
            });
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opts(kv: &[(&str, &str)]) -> Result<NetOptions, OptionError> {
        let m = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NetOptions::parse(&m, DEFAULT_BRIDGE)
    }

    #[test]
    fn defaults() {
        assert_eq!(opts(&[]).unwrap(), NetOptions::default());
    }

    #[test]
    fn every_option() {
        let o = opts(&[
            ("vswitch.bridge", "br-x"),
            ("vswitch.vlan", "42"),
            ("vswitch.mtu", "1400"),
            ("vswitch.ingress_kbps", "10000"),
            ("vswitch.priority", "5"),
            ("vswitch.mode", "bridge"),
        ])
        .unwrap();
        assert_eq!(o.bridge, "br-x");
        assert_eq!(o.vlan, Some(42));
        assert_eq!(o.mtu, Some(1400));
        assert_eq!(o.ingress_kbps, Some(10000));
        assert_eq!(o.priority, Some(5));
        assert_eq!(opts(&[(DOCKER_MTU, "9000")]).unwrap().mtu, Some(9000));
    }

    #[test]
    fn errors_name_the_option_and_what_is_allowed() {
        let e = opts(&[("vswitch.vlan", "4095")]).unwrap_err().to_string();
        assert!(e.contains("vswitch.vlan") && e.contains("1..=4094"), "{e}");
        let e = opts(&[("vswitch.mtu", "abc")]).unwrap_err().to_string();
        assert!(e.contains("vswitch.mtu") && e.contains("68..=9000"), "{e}");
        let e = opts(&[("vswitch.colour", "red")]).unwrap_err().to_string();
        assert!(
            e.contains("vswitch.colour") && e.contains("vswitch.ingress_kbps"),
            "{e}"
        );
        let e = opts(&[("vswitch.bridge", "a/b")]).unwrap_err().to_string();
        assert!(e.contains("vswitch.bridge"), "{e}");
        assert_eq!(
            opts(&[("vswitch.mode", "overlay")]).unwrap().mode,
            Mode::Overlay
        );
        let e = opts(&[("vswitch.mode", "vxlan")]).unwrap_err().to_string();
        assert!(e.contains("bridge or overlay"), "{e}");
        let e = opts(&[("vswitch.priority", "8")]).unwrap_err().to_string();
        assert!(e.contains("0..=7"), "{e}");
    }

    #[test]
    fn uplink_and_external_ip_go_together() {
        let o = opts(&[
            ("vswitch.uplink", "eth1"),
            ("vswitch.external_ip", "192.0.2.10"),
        ])
        .unwrap();
        assert_eq!(o.uplink.as_deref(), Some("eth1"));
        assert_eq!(o.external_ip, Some(Ipv4Addr::new(192, 0, 2, 10)));
        let e = opts(&[("vswitch.uplink", "eth1")]).unwrap_err().to_string();
        assert!(e.contains("vswitch.external_ip"), "{e}");
        let e = opts(&[("vswitch.external_ip", "192.0.2.10")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("vswitch.uplink"), "{e}");
        for bad in ["224.0.0.1", "0.0.0.0", "::1", "x", "127.0.0.1"] {
            let e = opts(&[("vswitch.uplink", "eth1"), ("vswitch.external_ip", bad)])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("vswitch.external_ip") && e.contains("IPv4"),
                "{e}"
            );
        }
        let e = opts(&[
            ("vswitch.uplink", "a/b"),
            ("vswitch.external_ip", "192.0.2.1"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("vswitch.uplink") && e.contains("interface"),
            "{e}"
        );
        let e = opts(&[
            ("vswitch.uplink", "eth1"),
            ("vswitch.external_ip", "192.0.2.1"),
            ("vswitch.mode", "overlay"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("overlay"), "{e}");
    }

    #[test]
    fn uplink_gateways_must_be_reachable() {
        let base = [
            ("vswitch.uplink", "eth1"),
            ("vswitch.external_ip", "192.0.2.10/24"),
        ];
        let with = |gw: &str| {
            let mut kv = base.to_vec();
            kv.push(("vswitch.uplink_gateway", gw));
            opts(&kv)
        };
        let o = with("192.0.2.1").unwrap();
        assert_eq!(o.uplink_gateway, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(o.external_prefix, Some(24));
        for bad in [
            "198.51.100.1",
            "192.0.2.0",
            "192.0.2.255",
            "192.0.2.10",
            "x",
            "224.0.0.1",
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("vswitch.uplink_gateway"), "{bad}: {e}");
        }
        // Without a prefix the gateway is taken as on the segment (a host route).
        let o = opts(&[
            ("vswitch.uplink", "eth1"),
            ("vswitch.external_ip", "192.0.2.10"),
            ("vswitch.uplink_gateway", "198.51.100.1"),
        ])
        .unwrap();
        assert_eq!(o.external_prefix, None);
        let e = opts(&[("vswitch.uplink_gateway", "192.0.2.1")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs vswitch.uplink"), "{e}");
        for bad in ["192.0.2.10/0", "192.0.2.10/33", "192.0.2.10/x"] {
            let e = opts(&[("vswitch.uplink", "eth1"), ("vswitch.external_ip", bad)])
                .unwrap_err()
                .to_string();
            assert!(e.contains("A/LEN"), "{bad}: {e}");
        }
    }

    #[test]
    fn docker_options_are_ignored() {
        assert!(opts(&[("com.docker.network.bridge.name", "x")]).is_ok());
    }

    proptest! {
        #[test]
        fn vlan_accepted_exactly_in_range(n in 0u32..70000) {
            let r = opts(&[("vswitch.vlan", &n.to_string())]);
            prop_assert_eq!(r.is_ok(), (1..=4094).contains(&n));
        }

        #[test]
        fn never_panics(k in "(vswitch\\.)?[a-z_]{0,12}", v in "\\PC{0,12}") {
            let _ = opts(&[(&k, &v)]);
        }
    }
}
