//! The listeners: the unix socket (owner-only from its first instant, the default), TCP with
//! TLS (client certificates required unless explicitly waived), each serving the
//! `vswitch.v1` service plus gRPC health and reflection under the limits of `limits.rs`,
//! all stopping together on one shutdown signal.
//!
//! Starting is two steps so that nothing is printed or served before every listener is
//! known to work: [`bind`] checks the configuration and binds every address, [`serve`]
//! serves what was bound.
//!
//! - `limits.rs`: what each client may use, and the descriptor budget.
//! - `conn.rs`: admission, accept loops, the sweeper, refusal counters and log.
//! - `layer.rs`: RPCs in flight and request bodies per connection.
//!
//! Thread-safety: runs on the tokio runtime; the switch it serves is `Send + Sync`.

mod conn;
mod layer;
mod limits;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use proto::v1::switch_server::SwitchServer;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

pub use conn::{Counters, Kind, LOG_EVERY};
pub use limits::{Limits, SWITCH_DESCRIPTORS, raise_nofile};

use crate::api_layer::ApiLayer;
use crate::owner_only::{self, SocketFile};
use crate::service::Service;
use crate::switch::Switch;
use conn::{Tracker, accept_loop};

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP address (TLS required).
    Tcp(SocketAddr),
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Listen, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a path".into());
            }
            Ok(Listen::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("tcp:") {
            a.parse()
                .map(Listen::Tcp)
                .map_err(|e| format!("tcp:{a}: {e} (expected tcp:HOST:PORT with a numeric host)"))
        } else {
            Err(format!("{s:?}: expected unix:PATH or tcp:HOST:PORT"))
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Unix(p) => write!(f, "unix:{}", p.display()),
            Listen::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// Who may connect over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// Clients must present a certificate signed by this CA (mutual TLS).
    Required(PathBuf),
    /// Anyone who reaches the port (`--tls-client-auth none`: an explicit choice).
    None,
}

/// TLS files for TCP listeners.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// Whom to let in; `None` here (no CA, no explicit waiver) refuses TCP listeners.
    pub client_auth: Option<ClientAuth>,
}

/// Checks that a TCP listener is allowed: TLS, and client certificates unless waived.
fn check_tcp(a: &SocketAddr, tls: Option<&TlsFiles>) -> anyhow::Result<()> {
    let Some(t) = tls else {
        bail!("--listen tcp:{a} needs --tls-cert and --tls-key (plain TCP is refused)");
    };
    if t.client_auth.is_none() {
        bail!(
            "--listen tcp:{a}: anyone reaching this port could reprogram the switch; give \
             --tls-client-ca FILE to require client certificates (mutual TLS), or \
             --tls-client-auth none to accept any client explicitly"
        );
    }
    Ok(())
}

fn tls_config(t: &TlsFiles, limits: &Limits) -> anyhow::Result<ServerTlsConfig> {
    let cert = std::fs::read(&t.cert).with_context(|| format!("reading {}", t.cert.display()))?;
    let key = std::fs::read(&t.key).with_context(|| format!("reading {}", t.key.display()))?;
    let mut c = ServerTlsConfig::new()
        .identity(Identity::from_pem(cert, key))
        .timeout(limits.handshake_timeout);
    if let Some(ClientAuth::Required(ca)) = &t.client_auth {
        let ca = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        c = c.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(c)
}

enum Bound {
    Unix(tokio::net::UnixListener, SocketFile),
    Tcp(tokio::net::TcpListener, ServerTlsConfig),
}

/// Every listener, bound and checked, not yet served.
pub struct Listeners {
    bound: Vec<(Listen, Bound)>,
    limits: Limits,
    /// For the OpenFlow channel's `ssl:`/`pssl:` targets.
    tls: Option<TlsFiles>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.bound.iter().map(|(l, _)| l.to_string()).collect();
        f.debug_struct("Listeners")
            .field("bound", &names)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Listeners {
    /// What is listened on, for a log line.
    pub fn names(&self) -> Vec<String> {
        self.bound.iter().map(|(l, _)| l.to_string()).collect()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for (_, b) in &self.bound {
            if let Bound::Unix(_, f) = b {
                f.remove();
            }
        }
    }
}

/// Checks the configuration (TCP without TLS, or without client certificates unless
/// waived, is refused) and binds every listener; nothing is served yet. Must run inside
/// the tokio runtime.
pub async fn bind(
    listen: &[Listen],
    tls: Option<&TlsFiles>,
    limits: Limits,
) -> anyhow::Result<Listeners> {
    if listen.is_empty() {
        bail!("nothing to listen on");
    }
    limits.check().map_err(anyhow::Error::msg)?;
    for l in listen {
        if let Listen::Tcp(a) = l {
            check_tcp(a, tls)?;
        }
    }
    let mut out = Listeners {
        bound: Vec::new(),
        limits,
        tls: tls.cloned(),
    };
    for l in listen {
        let b = match l {
            Listen::Unix(p) => {
                let (ul, file) = bind_unix(p)?;
                Bound::Unix(ul, file)
            }
            Listen::Tcp(a) => {
                let Some(t) = tls else {
                    bail!("--listen tcp:{a} needs --tls-cert and --tls-key");
                };
                let c = tls_config(t, &out.limits)?;
                let tl = tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding tcp:{a}"))?;
                Bound::Tcp(tl, c)
            }
        };
        out.bound.push((l.clone(), b));
    }
    Ok(out)
}

/// Binds a unix socket that only its owner can reach at any instant (see
/// [`crate::owner_only::bind_unix`]), replacing a stale socket file but refusing to steal one
/// a live daemon is serving.
fn bind_unix(path: &Path) -> anyhow::Result<(tokio::net::UnixListener, SocketFile)> {
    let (l, file) = owner_only::bind_unix(path)?;
    l.set_nonblocking(true).context("non-blocking listener")?;
    let l = tokio::net::UnixListener::from_std(l)
        .with_context(|| format!("listening on {}", path.display()))?;
    Ok((l, file))
}

/// Serves `sw` on every listener until `shutdown` resolves; unix socket files are removed
/// on the way out.
pub async fn serve(
    sw: Arc<Switch>,
    mut listeners: Listeners,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let limits = listeners.limits.clone();
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<SwitchServer<Service>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let openflow = tokio::spawn(crate::openflow::serve(
        Arc::clone(&sw),
        listeners.tls.clone(),
        stop_rx.clone(),
    ));
    let service = SwitchServer::new(Service::new(sw, stop_rx.clone(), limits.request_timeout))
        .max_decoding_message_size(limits.max_message_bytes);
    let tracker = Tracker::new(limits.clone());

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn({
        let t = Arc::clone(&tracker);
        let stop = stop_rx.clone();
        async move {
            t.sweeper(stop).await;
            Ok(())
        }
    });
    let bound = std::mem::take(&mut listeners.bound);
    let mut files = Vec::new();
    for (l, b) in bound {
        let mut stop = stop_rx.clone();
        let signal = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let builder = |b: Server| {
            b.max_concurrent_streams(limits.max_streams_per_connection)
                .http2_keepalive_interval(Some(limits.keepalive))
                .http2_keepalive_timeout(Some(limits.keepalive))
                .layer(layer::TrackLayer)
                .layer(ApiLayer)
        };
        let name = l.to_string();
        match b {
            Bound::Unix(ul, file) => {
                files.push(file);
                let (tx, rx) = mpsc::channel(16);
                tasks.spawn(accept_then_ok(accept_loop(
                    ul,
                    Kind::Unix,
                    Arc::clone(&tracker),
                    tx,
                    stop_rx.clone(),
                )));
                let router = builder(Server::builder())
                    .add_service(health_service.clone())
                    .add_service(reflection.clone())
                    .add_service(service.clone());
                tasks.spawn(async move {
                    router
                        .serve_with_incoming_shutdown(ReceiverStream::new(rx), signal)
                        .await
                        .with_context(|| format!("serving {name}"))
                });
            }
            Bound::Tcp(tl, tc) => {
                let (tx, rx) = mpsc::channel(16);
                tasks.spawn(accept_then_ok(accept_loop(
                    tl,
                    Kind::Tcp,
                    Arc::clone(&tracker),
                    tx,
                    stop_rx.clone(),
                )));
                let router = builder(
                    Server::builder()
                        .tls_config(tc)
                        .context("TLS configuration")?,
                )
                .add_service(health_service.clone())
                .add_service(reflection.clone())
                .add_service(service.clone());
                tasks.spawn(async move {
                    router
                        .serve_with_incoming_shutdown(ReceiverStream::new(rx), signal)
                        .await
                        .with_context(|| format!("serving {name}"))
                });
            }
        }
    }
    let result = tokio::select! {
        _ = shutdown => Ok(()),
        Some(r) = tasks.join_next() => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("listener task failed: {e}")),
        },
    };
    let _ = stop_tx.send(true);
    // Requests in flight get a moment to finish; then the listeners are dropped.
    let drained = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), openflow).await;
    for f in files {
        f.remove();
    }
    result
}

async fn accept_then_ok(f: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    f.await;
    Ok(())
}
