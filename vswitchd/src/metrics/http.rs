//! The metrics endpoint: HTTP/1.1 on a TCP address or a unix socket; `GET /metrics` is
//! answered with the registry in the Prometheus text format (version 0.0.4), anything else
//! with 404 (or 405 for another method on `/metrics`).
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (more are closed on arrival), a
//! request's headers must arrive within [`HEADER_TIMEOUT`], and one collection runs at a
//! time (scrapes that arrive meanwhile wait their turn): a misbehaving scraper costs a few
//! sockets, never a pile of concurrent reads of the switch.
//!
//! Thread-safety: runs on the tokio runtime; collecting runs on its blocking pool, because
//! reading the switch takes its lock, which a store commit may hold through an fsync.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use super::MetricsAddr;
use crate::owner_only;

/// Most connections open at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest wait for a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound metrics endpoint, not yet serving.
#[derive(Debug)]
pub struct Endpoint {
    listener: Listener,
    /// The unix socket's file, removed when the endpoint goes.
    file: Option<SocketFile>,
}

#[derive(Debug)]
enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// Removes the socket file (if it is still ours) when dropped.
#[derive(Debug)]
struct SocketFile(owner_only::SocketFile);

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.0.remove();
    }
}

impl Endpoint {
    /// Binds `addr` now (so a taken port stops the daemon before it announces anything).
    pub async fn bind(addr: &MetricsAddr) -> anyhow::Result<Endpoint> {
        Ok(match addr {
            MetricsAddr::Tcp(a) => Endpoint {
                listener: Listener::Tcp(
                    tokio::net::TcpListener::bind(a)
                        .await
                        .with_context(|| format!("metrics: binding tcp:{a}"))?,
                ),
                file: None,
            },
            MetricsAddr::Unix(p) => {
                let (l, f) = bind_unix(p)?;
                Endpoint {
                    listener: Listener::Unix(l),
                    file: Some(SocketFile(f)),
                }
            }
        })
    }

    /// Where it listens (for TCP, the port actually bound).
    pub fn local_addr(&self) -> String {
        match &self.listener {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| format!("tcp:? ({e})"), |a| format!("tcp:{a}")),
            Listener::Unix(_) => match &self.file {
                Some(f) => format!("unix:{}", f.0.path().display()),
                None => "unix:?".into(),
            },
        }
    }

    /// Serves `registry` until `shutdown` resolves.
    pub async fn serve(
        self,
        registry: Arc<Registry>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let conns = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let collecting = Arc::new(Semaphore::new(1));
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                a = self.accept() => a,
            };
            let io = match accepted {
                Ok(io) => io,
                Err(e) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    tracing::warn!("metrics: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&conns).try_acquire_owned() else {
                tracing::debug!("metrics: {MAX_CONNECTIONS} connections open; one more closed");
                continue;
            };
            let reg = Arc::clone(&registry);
            let gate = Arc::clone(&collecting);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    handle(req, Arc::clone(&reg), Arc::clone(&gate))
                });
                let r = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(io, svc)
                    .await;
                if let Err(e) = r {
                    tracing::debug!("metrics: connection: {e}");
                }
                drop(permit);
            });
        }
        drop(self.file);
    }

    async fn accept(&self) -> std::io::Result<TokioIo<Box<dyn Conn>>> {
        Ok(TokioIo::new(match &self.listener {
            Listener::Tcp(l) => Box::new(l.accept().await?.0) as Box<dyn Conn>,
            Listener::Unix(l) => Box::new(l.accept().await?.0) as Box<dyn Conn>,
        }))
    }
}

/// A connection of either kind.
trait Conn: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Conn for T {}

/// Answers one request.
async fn handle(
    req: Request<Incoming>,
    registry: Arc<Registry>,
    collecting: Arc<Semaphore>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() != "/metrics" {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "vswitchd serves its metrics at /metrics\n",
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let text = match collecting.acquire().await {
        Ok(_turn) => tokio::task::spawn_blocking(move || {
            let mut out = String::with_capacity(64 << 10);
            prometheus_text::encode(&mut out, &registry).map(|()| out)
        })
        .await
        .ok()
        .and_then(Result::ok),
        Err(_) => None,
    };
    let Some(text) = text else {
        return Ok(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "collecting the metrics failed\n",
        ));
    };
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
    );
    Ok(r)
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Binds a unix socket readable by its owner and group (a scraper's proxy in the group can
/// reach it), replacing a stale socket file but refusing one another process serves. It is
/// created owner-only ([`owner_only::bind_unix`]) and only then opened to the group: no one
/// else can reach it at any instant.
fn bind_unix(path: &Path) -> anyhow::Result<(tokio::net::UnixListener, owner_only::SocketFile)> {
    use std::os::unix::fs::PermissionsExt as _;
    let (l, file) = owner_only::bind_unix(path).with_context(|| "metrics: binding")?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("metrics: setting the mode of {}", path.display()))?;
    l.set_nonblocking(true)
        .with_context(|| format!("metrics: {}", path.display()))?;
    let l = tokio::net::UnixListener::from_std(l)
        .with_context(|| format!("metrics: listening on {}", path.display()))?;
    Ok((l, file))
}
