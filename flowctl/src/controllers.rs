//! OpenFlow controllers and fail modes, as `ovs-vsctl` spells the commands:
//! `set-controller BR TARGET... [KEY=VALUE...]`, `del-controller BR`, `get-controller BR`,
//! `set-fail-mode BR standalone|secure`, `get-fail-mode BR`, `del-fail-mode BR`; and how
//! `show` prints a bridge's controllers and `monitor` their connect/disconnect events.
//!
//! Settings after the targets apply to every target of the command, with the names of
//! Open vSwitch's Controller table: `controller_rate_limit=N` (packet-ins per second),
//! `controller_burst_limit=N`, `inactivity_probe=MS`, `max_backoff=MS`.

use std::fmt::Write as _;
use std::io::Write;

use proto::v1::{
    Bridge, Controller, ControllerConnection, ControllerStatus, FailMode, GetBridgeRequest, Role,
    SetControllerRequest, SetFailModeRequest,
};
use serde_json::{Value, json};

use crate::connect::Client;
use crate::error::{Error, Result};

/// A controller or fail-mode command, built.
#[derive(Debug)]
pub enum Request {
    /// set-controller / del-controller.
    Set(SetControllerRequest),
    /// get-controller.
    Get(String),
    /// set-fail-mode / del-fail-mode.
    SetFailMode(SetFailModeRequest),
    /// get-fail-mode.
    GetFailMode(String),
}

fn number(key: &str, v: &str) -> Result<u32> {
    v.parse()
        .map_err(|_| Error::Usage(format!("{key}={v}: expected a non-negative integer")))
}

/// `set-controller BR TARGET... [KEY=VALUE...]`.
pub fn set_controller(bridge: &str, args: &[String]) -> Result<Request> {
    let mut targets = Vec::new();
    let mut settings = Controller::default();
    for a in args {
        match a.split_once('=') {
            Some(("controller_rate_limit", v)) => {
                settings.controller_rate_limit = number("controller_rate_limit", v)?;
            }
            Some(("controller_burst_limit", v)) => {
                settings.controller_burst_limit = number("controller_burst_limit", v)?;
            }
            Some(("inactivity_probe", v)) => {
                settings.inactivity_probe_ms = number("inactivity_probe", v)?;
            }
            Some(("max_backoff", v)) => settings.max_backoff_ms = number("max_backoff", v)?,
            Some((k, _)) if !a.contains(':') => {
                return Err(Error::Usage(format!(
                    "unknown controller setting {k:?} (controller_rate_limit, \
                     controller_burst_limit, inactivity_probe, max_backoff)"
                )));
            }
            _ => targets.push(a.clone()),
        }
    }
    if targets.is_empty() {
        return Err(Error::Usage(
            "set-controller needs at least one target (tcp:IP[:PORT], ptcp:[PORT][:IP], \
             punix:PATH, ...); del-controller removes them"
                .into(),
        ));
    }
    Ok(Request::Set(SetControllerRequest {
        bridge: bridge.to_string(),
        controllers: targets
            .into_iter()
            .map(|target| Controller {
                target,
                ..settings.clone()
            })
            .collect(),
    }))
}

/// `del-controller BR`.
pub fn del_controller(bridge: &str) -> Request {
    Request::Set(SetControllerRequest {
        bridge: bridge.to_string(),
        controllers: Vec::new(),
    })
}

/// `set-fail-mode BR MODE` (`None`: del-fail-mode, back to standalone).
pub fn set_fail_mode(bridge: &str, mode: Option<&str>) -> Result<Request> {
    let m = match mode {
        None | Some("standalone") => FailMode::Standalone,
        Some("secure") => FailMode::Secure,
        Some(o) => {
            return Err(Error::Usage(format!(
                "fail mode {o:?}: expected standalone or secure"
            )));
        }
    };
    Ok(Request::SetFailMode(SetFailModeRequest {
        bridge: bridge.to_string(),
        fail_mode: m as i32,
    }))
}

/// Runs a controller command.
pub async fn execute(client: &mut Client, req: Request, out: &mut dyn Write) -> Result<()> {
    match req {
        Request::Set(r) => {
            client.set_controller(r).await?;
        }
        Request::SetFailMode(r) => {
            client.set_fail_mode(r).await?;
        }
        Request::Get(bridge) => {
            let b = bridge_of(client, bridge).await?;
            for c in &b.controllers {
                writeln!(out, "{}", c.target)?;
            }
        }
        Request::GetFailMode(bridge) => {
            let b = bridge_of(client, bridge).await?;
            if b.fail_mode == FailMode::Secure as i32 {
                writeln!(out, "secure")?;
            } else {
                writeln!(out, "standalone")?;
            }
        }
    }
    Ok(())
}

async fn bridge_of(client: &mut Client, name: String) -> Result<Bridge> {
    Ok(client
        .get_bridge(GetBridgeRequest { name })
        .await?
        .into_inner()
        .bridge
        .unwrap_or_default())
}

fn role_name(r: i32) -> &'static str {
    match Role::try_from(r) {
        Ok(Role::Primary) => "master",
        Ok(Role::Secondary) => "slave",
        _ => "equal",
    }
}

/// The controller lines of `show`, one block per target:
///
/// ```text
///  controller "ptcp:6653": is_connected:true role:equal connections:1 remote:127.0.0.1:40412
///      packet_in_sent:10 packet_in_dropped:0
///      last_error: connection closed by peer (3s ago)
/// ```
pub fn status_text(b: &Bridge) -> String {
    let mut s = String::new();
    for c in &b.controller_status {
        let _ = write!(
            s,
            " controller \"{}\": is_connected:{} role:{} connections:{}",
            c.target,
            c.is_connected,
            role_name(c.role),
            c.connections
        );
        if !c.remote.is_empty() {
            let _ = write!(s, " remote:{}", c.remote);
        }
        let _ = writeln!(
            s,
            "\n     packet_in_sent:{} packet_in_dropped:{}",
            c.packet_in_sent, c.packet_in_dropped
        );
        if !c.last_error.is_empty() {
            let _ = writeln!(
                s,
                "     last_error: {} ({}s ago)",
                c.last_error, c.sec_since_change
            );
        }
    }
    s
}

/// A controller's status in JSON.
pub fn status_json(c: &ControllerStatus) -> Value {
    json!({
        "target": c.target,
        "is_connected": c.is_connected,
        "role": role_name(c.role),
        "connections": c.connections,
        "remote": c.remote,
        "last_error": c.last_error,
        "sec_since_change": c.sec_since_change,
        "packet_in_sent": c.packet_in_sent,
        "packet_in_dropped": c.packet_in_dropped,
    })
}

/// A controller connect/disconnect event, as `monitor` prints it.
pub fn event_text(c: &ControllerConnection) -> String {
    let mut s = format!(
        "controller {} target={} remote={}",
        if c.connected {
            "connected"
        } else {
            "disconnected"
        },
        c.target,
        c.remote
    );
    if !c.error.is_empty() {
        let _ = write!(s, " error={}", c.error);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_settings() {
        let args: Vec<String> = [
            "tcp:127.0.0.1:6653",
            "ptcp:6654",
            "controller_rate_limit=1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let Request::Set(r) = set_controller("br0", &args).unwrap() else {
            panic!("set");
        };
        assert_eq!(r.controllers.len(), 2);
        assert!(
            r.controllers
                .iter()
                .all(|c| c.controller_rate_limit == 1000)
        );
        assert!(set_controller("br0", &["bogus=1".into()]).is_err());
        assert!(set_controller("br0", &[]).is_err());
        assert!(set_fail_mode("br0", Some("open")).is_err());
    }
}
