//! OpenFlow controller targets as Open vSwitch writes them (`tcp:IP[:PORT]`,
//! `ptcp:[PORT][:IP]`, `punix:PATH`, ...), parsed once where a `SetController` request
//! enters, and the settings that go with them.
//!
//! What: [`Target`] and [`ControllerSpec`], plain data; nothing here refers to the rest of
//! the switch.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use proto::v1;

use crate::error::ApiError;

/// The OpenFlow port (IANA) targets default to.
pub const DEFAULT_PORT: u16 = 6653;

/// Where a bridge meets a controller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// `tcp:IP[:PORT]`: the switch connects.
    Tcp(SocketAddr),
    /// `ssl:IP[:PORT]`: the switch connects with TLS.
    Ssl(SocketAddr),
    /// `unix:PATH`: the switch connects to a unix socket.
    Unix(PathBuf),
    /// `ptcp:[PORT][:IP]`: the switch listens.
    Ptcp(SocketAddr),
    /// `pssl:[PORT][:IP]`: the switch listens with TLS.
    Pssl(SocketAddr),
    /// `punix:PATH`: the switch listens on an owner-only unix socket.
    Punix(PathBuf),
}

impl Target {
    /// True for targets the switch connects to (they decide fail-open), false for
    /// listeners.
    pub fn is_active(&self) -> bool {
        matches!(self, Target::Tcp(_) | Target::Ssl(_) | Target::Unix(_))
    }

    /// True for the TLS targets.
    pub fn is_tls(&self) -> bool {
        matches!(self, Target::Ssl(_) | Target::Pssl(_))
    }
}

fn ip(s: &str) -> Result<IpAddr, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse()
        .map_err(|_| format!("{s:?} is not a numeric IPv4 or IPv6 address"))
}

fn port(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a port number 0..=65535"))
}

/// `IP[:PORT]` of an active target; an IPv6 address with a port is bracketed.
fn active(rest: &str) -> Result<SocketAddr, String> {
    if rest.is_empty() {
        return Err("needs an address: IP[:PORT]".into());
    }
    if let Some(r) = rest.strip_prefix('[') {
        let (a, p) = r
            .split_once(']')
            .ok_or_else(|| format!("{rest:?}: unclosed ["))?;
        let p = match p.strip_prefix(':') {
            Some(p) => port(p)?,
            None if p.is_empty() => DEFAULT_PORT,
            None => return Err(format!("{rest:?}: expected :PORT after ]")),
        };
        return Ok(SocketAddr::new(ip(a)?, p));
    }
    match rest.rsplit_once(':') {
        Some((a, p)) if !a.contains(':') => Ok(SocketAddr::new(ip(a)?, port(p)?)),
        _ => Ok(SocketAddr::new(ip(rest)?, DEFAULT_PORT)),
    }
}

/// `[PORT][:IP]` of a passive target.
fn passive(rest: &str) -> Result<SocketAddr, String> {
    let (p, a) = match rest.split_once(':') {
        Some((p, a)) => (p, Some(a)),
        None => (rest, None),
    };
    let p = if p.is_empty() { DEFAULT_PORT } else { port(p)? };
    let a = match a {
        Some(a) if !a.is_empty() => ip(a)?,
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    };
    Ok(SocketAddr::new(a, p))
}

fn path(rest: &str) -> Result<PathBuf, String> {
    if rest.is_empty() {
        return Err("needs a path".into());
    }
    Ok(PathBuf::from(rest))
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected tcp:, ssl:, unix:, ptcp:, pssl: or punix:"))?;
        let t = match kind {
            "tcp" => Target::Tcp(active(rest)?),
            "ssl" => Target::Ssl(active(rest)?),
            "unix" => Target::Unix(path(rest)?),
            "ptcp" => Target::Ptcp(passive(rest)?),
            "pssl" => Target::Pssl(passive(rest)?),
            "punix" => Target::Punix(path(rest)?),
            _ => {
                return Err(format!(
                    "{s:?}: unknown kind {kind:?} (tcp, ssl, unix, ptcp, pssl, punix)"
                ));
            }
        };
        Ok(t)
    }
}

/// A controller target with its settings, checked and with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerSpec {
    /// The target as configured (what status reports and events name).
    pub text: String,
    /// The target.
    pub target: Target,
    /// Packet-ins per second (0: no limit).
    pub rate_limit: u32,
    /// Packet-ins above the rate at once.
    pub burst_limit: u32,
    /// Quiet time before an echo request, and again before giving up.
    pub inactivity_probe: Duration,
    /// Longest wait between connection attempts.
    pub max_backoff: Duration,
}

impl ControllerSpec {
    /// Checks one configured controller; errors name `controllers[i]`'s field.
    pub fn parse(c: &v1::Controller, i: usize) -> Result<ControllerSpec, ApiError> {
        let at = |f: &str| format!("controllers[{i}].{f}");
        let target = c
            .target
            .parse::<Target>()
            .map_err(|e| ApiError::invalid(at("target"), e))?;
        if c.controller_rate_limit != 0 && c.controller_rate_limit < 100 {
            return Err(ApiError::invalid(
                at("controller_rate_limit"),
                "must be 0 (no limit) or at least 100 packets per second",
            ));
        }
        if c.controller_burst_limit != 0 && c.controller_burst_limit < 25 {
            return Err(ApiError::invalid(
                at("controller_burst_limit"),
                "must be 0 (a quarter of the rate) or at least 25 packets",
            ));
        }
        let ms = |v: u32, default: u64| {
            Duration::from_millis(if v == 0 { default } else { u64::from(v) })
        };
        if c.inactivity_probe_ms != 0 && c.inactivity_probe_ms < 1000 {
            return Err(ApiError::invalid(
                at("inactivity_probe_ms"),
                "must be 0 (5000) or at least 1000 milliseconds",
            ));
        }
        if c.max_backoff_ms != 0 && c.max_backoff_ms < 1000 {
            return Err(ApiError::invalid(
                at("max_backoff_ms"),
                "must be 0 (8000) or at least 1000 milliseconds",
            ));
        }
        let burst = if c.controller_burst_limit == 0 {
            (c.controller_rate_limit / 4).max(25)
        } else {
            c.controller_burst_limit
        };
        Ok(ControllerSpec {
            text: c.target.clone(),
            target,
            rate_limit: c.controller_rate_limit,
            burst_limit: burst,
            inactivity_probe: ms(c.inactivity_probe_ms, 5000),
            max_backoff: ms(c.max_backoff_ms, 8000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Result<Target, String> {
        s.parse()
    }

    #[test]
    fn targets_as_ovs_writes_them() {
        let lo = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
        let any = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p);
        assert_eq!(t("tcp:127.0.0.1"), Ok(Target::Tcp(lo(6653))));
        assert_eq!(t("tcp:127.0.0.1:6633"), Ok(Target::Tcp(lo(6633))));
        assert_eq!(t("ssl:127.0.0.1:9"), Ok(Target::Ssl(lo(9))));
        assert_eq!(
            t("tcp:[::1]:7"),
            Ok(Target::Tcp(SocketAddr::new("::1".parse().unwrap(), 7)))
        );
        assert_eq!(t("ptcp:"), Ok(Target::Ptcp(any(6653))));
        assert_eq!(t("ptcp:6634"), Ok(Target::Ptcp(any(6634))));
        assert_eq!(t("ptcp:6634:127.0.0.1"), Ok(Target::Ptcp(lo(6634))));
        assert_eq!(
            t("ptcp:0:[::1]"),
            Ok(Target::Ptcp(SocketAddr::new("::1".parse().unwrap(), 0)))
        );
        assert_eq!(t("pssl:6635"), Ok(Target::Pssl(any(6635))));
        assert_eq!(
            t("punix:/run/x.sock"),
            Ok(Target::Punix("/run/x.sock".into()))
        );
        assert_eq!(
            t("unix:/run/c.sock"),
            Ok(Target::Unix("/run/c.sock".into()))
        );
        assert!(Target::Tcp(lo(1)).is_active() && !Target::Ptcp(lo(1)).is_active());
    }

    #[test]
    fn bad_targets_say_why() {
        assert!(t("tcp:").unwrap_err().contains("needs an address"));
        assert!(t("tcp:example.com").unwrap_err().contains("numeric"));
        assert!(t("ptcp:99999").unwrap_err().contains("port number"));
        assert!(t("udp:1.2.3.4").unwrap_err().contains("unknown kind"));
        assert!(t("punix:").unwrap_err().contains("path"));
        assert!(t("6653").unwrap_err().contains("expected"));
    }

    #[test]
    fn settings_get_ovs_defaults_and_bounds() {
        let c = v1::Controller {
            target: "ptcp:6653".into(),
            controller_rate_limit: 1000,
            ..Default::default()
        };
        let s = ControllerSpec::parse(&c, 0).unwrap();
        assert_eq!((s.rate_limit, s.burst_limit), (1000, 250));
        assert_eq!(s.inactivity_probe, Duration::from_secs(5));
        let low = v1::Controller {
            controller_rate_limit: 10,
            ..c
        };
        let e = ControllerSpec::parse(&low, 2).unwrap_err();
        assert_eq!(e.field, "controllers[2].controller_rate_limit");
    }
}
