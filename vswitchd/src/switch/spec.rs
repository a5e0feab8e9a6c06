//! Port options: which port types this build creates, which options each accepts, and the
//! VLAN mode they describe.

use datapath::l2::{VlanMode, VlanSet};
use datapath::types::VlanId;

use crate::error::ApiError;

/// Port types this build can create.
pub const PORT_TYPES: &[&str] = &[
    "memory",
    "tap",
    "internal",
    "afpacket",
    "afxdp",
    "tunnel-endpoint",
    "vxlan",
    "gre",
    "vhost-user",
    #[cfg(feature = "dpdk")]
    "dpdk",
];

/// The `n-rxq` option: 1 to `max`, default 1.
pub(super) fn n_rxq_option(
    options: &std::collections::HashMap<String, String>,
    max: usize,
) -> Result<usize, ApiError> {
    match options.get("n-rxq") {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid("port.options.n-rxq", format!("must be 1..={max}"))),
        None => Ok(1),
    }
}

/// Options every port type accepts.
pub(super) const COMMON_OPTIONS: &[&str] = &["tag", "trunks"];

pub(super) fn check_options(
    ty: &str,
    options: &std::collections::HashMap<String, String>,
) -> Result<(), ApiError> {
    let own: &[&str] = match ty {
        "afxdp" => &["xdp-mode", "n-rxq"],
        "vhost-user" => &["path", "mode", "n-rxq"],
        "dpdk" => &["devargs", "n-rxq"],
        "tunnel-endpoint" => crate::tunnel::ENDPOINT_OPTIONS,
        "vxlan" => crate::tunnel::VXLAN_OPTIONS,
        "gre" => crate::tunnel::GRE_OPTIONS,
        _ => &[],
    };
    for k in options.keys() {
        if !COMMON_OPTIONS.contains(&k.as_str())
            && !own.contains(&k.as_str())
            && !crate::qos::is_rate_control_option(k)
        {
            return Err(ApiError::invalid(
                format!("port.options.{k}"),
                format!(
                    "unknown option for a {ty} port (known: {})",
                    COMMON_OPTIONS
                        .iter()
                        .chain(own)
                        .chain(crate::qos::RATE_CONTROL_OPTIONS)
                        .chain(&["queue.N"])
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn vlan_mode(
    options: &std::collections::HashMap<String, String>,
) -> Result<VlanMode, ApiError> {
    let vid = |s: &str, field: &str| -> Result<VlanId, ApiError> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|v| *v <= VlanId::MAX.0)
            .map(VlanId)
            .ok_or_else(|| ApiError::invalid(field, format!("{s:?} is not a VLAN id 0..=4095")))
    };
    match (options.get("tag"), options.get("trunks")) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "port.options.trunks",
            "a port is either an access port (tag) or a trunk (trunks), not both",
        )),
        (Some(t), None) => Ok(VlanMode::Access(vid(t, "port.options.tag")?)),
        (None, Some(list)) => {
            let mut allowed = VlanSet::default();
            for v in list.split(',').filter(|s| !s.trim().is_empty()) {
                allowed.insert(vid(v, "port.options.trunks")?);
            }
            Ok(VlanMode::Trunk {
                allowed,
                native: None,
            })
        }
        (None, None) => Ok(VlanMode::default()),
    }
}
