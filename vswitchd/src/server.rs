//! The listeners: the unix socket (owner-only, the default), TCP with TLS (optionally
//! mutual), each serving the `vswitch.v1` service plus gRPC health and reflection, all
//! stopping together on one shutdown signal.
//!
//! Thread-safety: runs on the tokio runtime; the switch it serves is `Send + Sync`.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use proto::v1::switch_server::SwitchServer;
use tokio::sync::watch;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::api_layer::ApiLayer;
use crate::service::Service;
use crate::switch::Switch;

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

/// TLS files for TCP listeners.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA that client certificates must chain to (mutual TLS), if any.
    pub client_ca: Option<PathBuf>,
}

/// Binds a unix socket with owner-only permissions, replacing a stale socket file but
/// refusing to steal one a live daemon is serving.
fn bind_unix(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "{} is in use: another vswitchd is listening there",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let l = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {} to its owner", path.display()))?;
    Ok(l)
}

/// Serves `sw` on every listener until `shutdown` resolves; unix socket files are removed
/// on the way out.
pub async fn serve(
    sw: Arc<Switch>,
    listen: &[Listen],
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    if listen.is_empty() {
        bail!("nothing to listen on");
    }
    let tls_config = match &tls {
        Some(t) => {
            let cert =
                std::fs::read(&t.cert).with_context(|| format!("reading {}", t.cert.display()))?;
            let key =
                std::fs::read(&t.key).with_context(|| format!("reading {}", t.key.display()))?;
            let mut c = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
            if let Some(ca) = &t.client_ca {
                let ca = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
                c = c.client_ca_root(Certificate::from_pem(ca));
            }
            Some(c)
        }
        None => None,
    };
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
        tls.clone(),
        stop_rx.clone(),
    ));
    let service =
        SwitchServer::new(Service::new(sw, stop_rx.clone())).max_decoding_message_size(64 << 20);

    let mut tasks = tokio::task::JoinSet::new();
    let mut sockets = Vec::new();
    for l in listen {
        let mut stop = stop_rx.clone();
        let signal = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let router = |b: &mut Server<_>| {
            b.add_service(health_service.clone())
                .add_service(reflection.clone())
                .add_service(service.clone())
        };
        match l {
            Listen::Unix(p) => {
                let ul = bind_unix(p)?;
                sockets.push(p.clone());
                let mut b = Server::builder().layer(ApiLayer);
                let r = router(&mut b);
                tasks.spawn(async move {
                    r.serve_with_incoming_shutdown(UnixListenerStream::new(ul), signal)
                        .await
                        .context("unix listener")
                });
            }
            Listen::Tcp(a) => {
                let Some(tc) = tls_config.clone() else {
                    bail!("--listen tcp:{a} needs --tls-cert and --tls-key (plain TCP is refused)");
                };
                let tl = tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding tcp:{a}"))?;
                let mut b = Server::builder()
                    .tls_config(tc)
                    .context("TLS configuration")?
                    .layer(ApiLayer);
                let r = router(&mut b);
                tasks.spawn(async move {
                    r.serve_with_incoming_shutdown(TcpListenerStream::new(tl), signal)
                        .await
                        .context("tcp listener")
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
    for p in sockets {
        let _ = std::fs::remove_file(p);
    }
    result
}
