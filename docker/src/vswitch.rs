//! The plugin's side of the switch's gRPC API (`vswitch.v1`): bridges, ports and the few
//! flows the plugin owns. The plugin is a controller like any other; it has no other door
//! into `vswitchd`.
//!
//! Every call has a deadline, so a switch that is down or stuck is reported within seconds
//! (Docker waits on the plugin's answer), naming the address and what to check.

use std::collections::HashMap;
use std::time::Duration;

use proto::v1::switch_client::SwitchClient;
use proto::v1::{self, entity, instruction, port_ref, update};
use tonic::transport::{Channel, Endpoint};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The cookie of every flow the plugin installs: `0x5644` ("VD") in the top 16 bits, the
/// kind of flow in the next 8 (1: the bridge's NORMAL table-miss, 2: an endpoint's queue
/// selection, 3 to 8: the overlay agent's, `overlay::flows`, 9 to 14: networks' uplinks (published ports,
/// masquerade, hairpin, neighbours),
/// `publish`, with the external address in the low 32 bits), the rest free.
pub const COOKIE_BASE: u64 = 0x5644 << 48;
/// Selects the plugin's flows of one kind (with [`COOKIE_BASE`] | kind << 40).
pub const COOKIE_KIND_MASK: u64 = 0xffff_ff00_0000_0000;
/// The kind of the bridge's table-miss flow.
pub const KIND_NORMAL: u64 = 1;
/// The kind of an endpoint's queue flow.
pub const KIND_QUEUE: u64 = 2;

/// A cookie of the plugin's flows of `kind`.
pub fn cookie(kind: u64) -> u64 {
    COOKIE_BASE | (kind << 40)
}

/// Why a call to the switch failed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The switch is not reachable (not running, wrong socket, stuck).
    #[error("the switch (vswitchd) is not reachable at {addr}: {message}; is vswitchd running?")]
    Down {
        /// The `--server` address.
        addr: String,
        /// What happened.
        message: String,
    },
    /// The switch refused the request.
    #[error("the switch refused {what}: {message}")]
    Refused {
        /// What was asked.
        what: String,
        /// The switch's gRPC status code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
}

impl SwitchError {
    /// True when the switch answered "not found".
    pub fn is_not_found(&self) -> bool {
        matches!(self, SwitchError::Refused { code, .. } if *code == tonic::Code::NotFound)
    }

    /// True when the switch answered "already exists".
    pub fn is_exists(&self) -> bool {
        matches!(self, SwitchError::Refused { code, .. } if *code == tonic::Code::AlreadyExists)
    }
}

/// A connection to the switch, made on first use and again after a failure.
#[derive(Debug)]
pub struct Switch {
    addr: String,
    client: Option<SwitchClient<Channel>>,
}

/// Turns `unix:PATH` or `http://HOST:PORT` into an endpoint.
pub fn parse_server(addr: &str) -> Result<Endpoint, String> {
    let uri = if let Some(path) = addr.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(format!("--server {addr}: missing socket path (unix:PATH)"));
        }
        format!("unix:{path}")
    } else if addr.starts_with("http://") {
        addr.to_string()
    } else {
        return Err(format!("--server {addr}: expected unix:PATH"));
    };
    Endpoint::from_shared(uri)
        .map(|e| e.connect_timeout(CONNECT_TIMEOUT))
        .map_err(|e| format!("--server {addr}: {e}"))
}

impl Switch {
    /// A switch at `addr` (`unix:PATH`); nothing is connected yet.
    pub fn new(addr: &str) -> Result<Switch, String> {
        parse_server(addr)?;
        Ok(Switch {
            addr: addr.to_string(),
            client: None,
        })
    }

    /// The address, for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn down(&self, message: impl Into<String>) -> SwitchError {
        SwitchError::Down {
            addr: self.addr.clone(),
            message: message.into(),
        }
    }

    async fn client(&mut self) -> Result<SwitchClient<Channel>, SwitchError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let ep = parse_server(&self.addr).map_err(|e| self.down(e))?;
        let channel = match tokio::time::timeout(CONNECT_TIMEOUT, ep.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.down(chain(&e))),
            Err(_) => return Err(self.down("no answer within 2 s")),
        };
        let c = SwitchClient::new(channel);
        self.client = Some(c.clone());
        Ok(c)
    }

    /// Runs one call with the deadline, turning failures into [`SwitchError`].
    async fn call<T, F, Fut>(&mut self, what: &str, f: F) -> Result<T, SwitchError>
    where
        F: FnOnce(SwitchClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let c = self.client().await?;
        match tokio::time::timeout(CALL_TIMEOUT, f(c)).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) if s.code() == tonic::Code::Unavailable => {
                self.client = None;
                Err(self.down(s.message().to_string()))
            }
            Ok(Err(s)) => Err(SwitchError::Refused {
                what: what.to_string(),
                code: s.code(),
                message: s.message().to_string(),
            }),
            Err(_) => {
                self.client = None;
                Err(self.down(format!("{what}: no answer within 10 s")))
            }
        }
    }

    /// Checks that the switch answers.
    pub async fn ping(&mut self) -> Result<(), SwitchError> {
        self.call("ListBridges", |mut c| async move {
            c.list_bridges(v1::ListBridgesRequest {}).await
        })
        .await
        .map(|_| ())
    }

    /// Makes sure bridge `name` exists and forwards by MAC learning (`NORMAL`) what no
    /// other flow takes. An existing bridge is kept as it is, apart from that flow.
    pub async fn ensure_bridge(&mut self, name: &str) -> Result<(), SwitchError> {
        let req = v1::AddBridgeRequest {
            name: name.to_string(),
            ..Default::default()
        };
        match self
            .call(&format!("bridge {name}"), |mut c| async move {
                c.add_bridge(req).await
            })
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e),
        }
        let normal = v1::Flow {
            table_id: 0,
            priority: 0,
            cookie: cookie(KIND_NORMAL),
            r#match: Some(v1::Match::default()),
            instructions: vec![apply(vec![output(port_ref::Port::Reserved(
                v1::ReservedPort::Normal as i32,
            ))])],
            ..Default::default()
        };
        self.write(name, vec![insert(entity::Entity::Flow(normal))])
            .await
    }

    /// The ports of `bridge`.
    pub async fn ports(&mut self, bridge: &str) -> Result<Vec<v1::PortDesc>, SwitchError> {
        let req = v1::ListPortsRequest {
            bridge: bridge.to_string(),
        };
        self.call(&format!("list ports of {bridge}"), |mut c| async move {
            c.list_ports(req).await
        })
        .await
        .map(|r| r.ports)
    }

    /// Adds a port.
    pub async fn add_port(
        &mut self,
        bridge: &str,
        name: &str,
        ty: &str,
        options: HashMap<String, String>,
    ) -> Result<(), SwitchError> {
        let req = v1::AddPortRequest {
            bridge: bridge.to_string(),
            port: Some(v1::PortConfig {
                name: name.to_string(),
                r#type: ty.to_string(),
                options,
                requested_ofport: None,
            }),
        };
        self.call(&format!("port {name} on {bridge}"), |mut c| async move {
            c.add_port(req).await
        })
        .await
        .map(|_| ())
    }

    /// Replaces a port's options (`set` added or overwritten, `remove` dropped).
    pub async fn set_port_options(
        &mut self,
        bridge: &str,
        name: &str,
        set: HashMap<String, String>,
        remove: Vec<String>,
    ) -> Result<(), SwitchError> {
        let req = v1::SetPortOptionsRequest {
            bridge: bridge.to_string(),
            name: name.to_string(),
            options: set,
            remove,
        };
        self.call(&format!("options of {name}"), |mut c| async move {
            c.set_port_options(req).await
        })
        .await
        .map(|_| ())
    }

    /// Removes a port; a missing port (or bridge) is not an error.
    pub async fn del_port(&mut self, bridge: &str, name: &str) -> Result<(), SwitchError> {
        let req = v1::DelPortRequest {
            bridge: bridge.to_string(),
            name: name.to_string(),
            if_exists: true,
        };
        match self
            .call(&format!("removing {name}"), |mut c| async move {
                c.del_port(req).await
            })
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// Applies updates to `bridge` all or nothing.
    pub async fn write(
        &mut self,
        bridge: &str,
        updates: Vec<v1::Update>,
    ) -> Result<(), SwitchError> {
        let req = v1::WriteRequest {
            bridge: bridge.to_string(),
            updates,
            atomicity: v1::Atomicity::AllOrNone as i32,
        };
        self.call(&format!("flows of {bridge}"), |mut c| async move {
            c.write(req).await
        })
        .await
        .map(|_| ())
    }

    /// The flows of `bridge` whose cookie, under `mask`, is `cookie`.
    pub async fn read_flows(
        &mut self,
        bridge: &str,
        cookie: u64,
        mask: u64,
    ) -> Result<Vec<v1::Flow>, SwitchError> {
        let req = v1::ReadRequest {
            bridge: bridge.to_string(),
            filters: vec![v1::ReadFilter {
                filter: Some(v1::read_filter::Filter::Flows(v1::FlowFilter {
                    cookie,
                    cookie_mask: mask,
                    ..Default::default()
                })),
            }],
        };
        let what = format!("reading the flows of {bridge}");
        let c = self.client().await?;
        let read = async move {
            let mut c = c;
            let mut stream = c.read(req).await?.into_inner();
            let mut out = Vec::new();
            while let Some(r) = stream.message().await? {
                out.extend(r.entities.into_iter().filter_map(|e| match e.entity {
                    Some(entity::Entity::Flow(f)) => Some(f),
                    _ => None,
                }));
            }
            Ok::<_, tonic::Status>(out)
        };
        match tokio::time::timeout(CALL_TIMEOUT, read).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(s)) if s.code() == tonic::Code::Unavailable => {
                self.client = None;
                Err(self.down(s.message().to_string()))
            }
            Ok(Err(s)) => Err(SwitchError::Refused {
                what,
                code: s.code(),
                message: s.message().to_string(),
            }),
            Err(_) => {
                self.client = None;
                Err(self.down(format!("{what}: no answer within 10 s")))
            }
        }
    }

    /// Selects, for an endpoint port, its queue flow (`in_port=PORT,actions=set_queue:Q,
    /// NORMAL`), or with `queue` `None` removes it.
    pub async fn set_queue_flow(
        &mut self,
        bridge: &str,
        port: &str,
        queue: Option<u8>,
    ) -> Result<(), SwitchError> {
        let m = v1::Match {
            fields: vec![v1::FieldMatch {
                field: v1::Field::InPort as i32,
                port_name: port.to_string(),
                ..Default::default()
            }],
        };
        let u = match queue {
            Some(q) => insert(entity::Entity::Flow(v1::Flow {
                table_id: 0,
                priority: 100,
                cookie: cookie(KIND_QUEUE),
                r#match: Some(m),
                instructions: vec![apply(vec![
                    v1::Action {
                        action: Some(v1::action::Action::SetQueue(u32::from(q))),
                    },
                    output(port_ref::Port::Reserved(v1::ReservedPort::Normal as i32)),
                ])],
                ..Default::default()
            })),
            None => v1::Update {
                r#type: update::Type::Delete as i32,
                entity: Some(v1::Entity {
                    entity: Some(entity::Entity::FlowFilter(v1::FlowFilter {
                        table_id: Some(0),
                        cookie: cookie(KIND_QUEUE),
                        cookie_mask: COOKIE_KIND_MASK,
                        r#match: Some(m),
                        ..Default::default()
                    })),
                }),
            },
        };
        match self.write(bridge, vec![u]).await {
            // Deleting a flow of a port that is gone already.
            Err(e) if queue.is_none() && e.is_not_found() => Ok(()),
            r => r,
        }
    }
}

fn insert(e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: update::Type::Insert as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

fn apply(actions: Vec<v1::Action>) -> v1::Instruction {
    v1::Instruction {
        instruction: Some(instruction::Instruction::ApplyActions(v1::ApplyActions {
            actions,
        })),
    }
}

fn output(p: port_ref::Port) -> v1::Action {
    v1::Action {
        action: Some(v1::action::Action::Output(v1::Output {
            port: Some(v1::PortRef { port: Some(p) }),
            max_len: None,
        })),
    }
}

/// An error with its sources, `a: b: c`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert!(parse_server("unix:/run/vswitch/vswitchd.sock").is_ok());
        assert!(parse_server("unix:").is_err());
        assert!(parse_server("/run/x.sock").is_err());
    }

    #[test]
    fn cookies_have_the_plugin_marker() {
        assert_eq!(cookie(KIND_QUEUE) & COOKIE_KIND_MASK, cookie(KIND_QUEUE));
        assert_eq!(cookie(KIND_NORMAL) >> 48, 0x5644);
        assert_ne!(cookie(KIND_NORMAL), cookie(KIND_QUEUE));
    }

    #[tokio::test]
    async fn a_missing_switch_is_reported_quickly() {
        let d = tempfile::tempdir().unwrap();
        let addr = format!("unix:{}", d.path().join("none.sock").display());
        let mut s = Switch::new(&addr).unwrap();
        let t = std::time::Instant::now();
        let e = s.ping().await.unwrap_err().to_string();
        assert!(t.elapsed() < Duration::from_secs(3));
        assert!(
            e.contains("not reachable") && e.contains("none.sock"),
            "{e}"
        );
    }
}
