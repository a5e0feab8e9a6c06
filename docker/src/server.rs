//! The plugin's HTTP server: Docker's plugin protocol (HTTP/1.1, JSON bodies, POST to
//! `/Plugin.Activate` and `/NetworkDriver.*`) on a unix socket, with hyper.
//!
//! The socket is made owner-only without a window where it is not: it is bound inside a
//! fresh directory of mode 0700 next to its final path, then renamed into place (which also
//! replaces a stale socket atomically). A live socket, another plugin answering on it, is
//! never replaced.
//!
//! Network driver requests are served one at a time (the driver is behind a mutex):
//! dockerd's requests for one network or endpoint depend on each other, and each takes
//! milliseconds. IPAM requests (`IpamDriver.*`, overlay networks' cluster-wide addresses)
//! go straight to etcd, whose transactions keep them apart. `Vswitch.OverlayStatus` is the
//! plugin's own method: what `vswitch-docker overlay-status` prints.

use std::convert::Infallible;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixListener;
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::api::{self, ipam};
use crate::driver::{Driver, DriverError};
use crate::overlay::Overlay;

/// What the server serves: the network driver and, with a cluster, the IPAM driver.
#[derive(Debug)]
pub struct Plugin {
    /// The network driver (shared with the reconciliation loop).
    pub driver: Arc<Mutex<Driver>>,
    /// The cluster (`--etcd-endpoints`), if any.
    pub overlay: Option<Overlay>,
}

impl Plugin {
    fn overlay(&self, what: &str) -> Result<&Overlay, Refusal> {
        self.overlay.as_ref().ok_or_else(|| {
            Refusal::Refused(DriverError(format!(
                "{what} needs the cluster: start the plugin with --etcd-endpoints \
                 URL[,URL...] and --vtep-bridge BR"
            )))
        })
    }
}

/// Why the socket could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Another process answers on the socket.
    #[error("{0} is in use by a running plugin; stop it first")]
    InUse(String),
    /// A filesystem or socket error.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Binds the plugin socket at `path`, owner-only.
pub fn listen(path: &Path) -> Result<UnixListener, ListenError> {
    let io = |p: &Path, source| ListenError::Io {
        path: p.display().to_string(),
        source,
    };
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ListenError::InUse(path.display().to_string()));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let tmp_dir: PathBuf = parent.join(format!(".vswitch-docker.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp_dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&tmp_dir)
        .map_err(|e| io(&tmp_dir, e))?;
    let tmp_sock = tmp_dir.join("s");
    let bound = (|| {
        let l = std::os::unix::net::UnixListener::bind(&tmp_sock).map_err(|e| io(&tmp_sock, e))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp_sock, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(&tmp_sock, e))?;
        std::fs::rename(&tmp_sock, path).map_err(|e| io(path, e))?;
        l.set_nonblocking(true).map_err(|e| io(path, e))?;
        UnixListener::from_std(l).map_err(|e| io(path, e))
    })();
    let _ = std::fs::remove_dir_all(&tmp_dir);
    bound
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(api::CONTENT_TYPE),
    );
    r
}

/// The IPAM driver's requests.
async fn dispatch_ipam(plugin: &Plugin, method: &str, body: &[u8]) -> Result<Value, Refusal> {
    let ok = || Ok(serde_json::json!({}));
    match method {
        "IpamDriver.GetCapabilities" => {
            api::parse_empty(body)?;
            Ok(ipam::capabilities_response())
        }
        "IpamDriver.GetDefaultAddressSpaces" => {
            api::parse_empty(body)?;
            Ok(ipam::address_spaces_response())
        }
        "IpamDriver.RequestPool" => {
            let r = ipam::parse_request_pool(body)?;
            let ov = plugin.overlay("--ipam-driver vswitch")?;
            let pool = ov
                .ipam
                .request_pool(r.pool, r.name.as_deref(), r.v6)
                .await
                .map_err(DriverError::from)?;
            Ok(ipam::pool_response(&pool))
        }
        "IpamDriver.ReleasePool" => {
            let pool = ipam::parse_release_pool(body)?;
            let ov = plugin.overlay("--ipam-driver vswitch")?;
            ov.ipam
                .release_pool(&pool)
                .await
                .map_err(DriverError::from)?;
            ok()
        }
        "IpamDriver.RequestAddress" => {
            let r = ipam::parse_request_address(body)?;
            let ov = plugin.overlay("--ipam-driver vswitch")?;
            let a = if r.gateway {
                ov.ipam.request_gateway(&r.pool, r.address).await
            } else {
                ov.ipam.request_address(&r.pool, r.address, r.mac).await
            }
            .map_err(DriverError::from)?;
            Ok(ipam::address_response(&a))
        }
        "IpamDriver.ReleaseAddress" => {
            let r = ipam::parse_release_address(body)?;
            let ov = plugin.overlay("--ipam-driver vswitch")?;
            ov.ipam
                .release_address(&r.pool, r.address)
                .await
                .map_err(DriverError::from)?;
            ok()
        }
        _ => Err(Refusal::Unknown(method.to_string())),
    }
}

/// What one request asks for, after parsing.
async fn dispatch(plugin: &Plugin, method: &str, body: &[u8]) -> Result<Value, Refusal> {
    let ok = || Ok(serde_json::json!({}));
    let driver = &plugin.driver;
    if method.starts_with("IpamDriver.") {
        return dispatch_ipam(plugin, method, body).await;
    }
    match method {
        "Vswitch.OverlayStatus" => {
            api::parse_empty(body)?;
            Ok(crate::overlay::status::status(
                plugin.overlay("overlay-status")?,
            ))
        }
        "Plugin.Activate" => {
            api::parse_empty(body)?;
            Ok(api::activate_response())
        }
        "NetworkDriver.GetCapabilities" => {
            api::parse_empty(body)?;
            Ok(api::capabilities_response())
        }
        "NetworkDriver.CreateNetwork" => {
            let req = api::parse_create_network(body)?;
            driver.lock().await.create_network(req).await?;
            ok()
        }
        "NetworkDriver.DeleteNetwork" => {
            let req = api::parse_network_ref(body)?;
            driver.lock().await.delete_network(req.network).await?;
            ok()
        }
        // Swarm's manager allocates networks; nothing to allocate for local networks.
        "NetworkDriver.AllocateNetwork" => {
            api::parse_create_network(body)?;
            Ok(serde_json::json!({ "Options": {} }))
        }
        "NetworkDriver.FreeNetwork" => {
            api::parse_network_ref(body)?;
            ok()
        }
        "NetworkDriver.CreateEndpoint" => {
            let req = api::parse_create_endpoint(body)?;
            let mac = driver.lock().await.create_endpoint(req).await?;
            Ok(api::create_endpoint_response(mac))
        }
        "NetworkDriver.EndpointOperInfo" => {
            let req = api::parse_endpoint_ref(body)?;
            Ok(driver.lock().await.endpoint_info(&req)?)
        }
        "NetworkDriver.DeleteEndpoint" => {
            let req = api::parse_endpoint_ref(body)?;
            driver.lock().await.delete_endpoint(req).await?;
            ok()
        }
        "NetworkDriver.Join" => {
            let req = api::parse_join(body)?;
            Ok(driver.lock().await.join(req).await?.to_json())
        }
        "NetworkDriver.Leave" => {
            let req = api::parse_endpoint_ref(body)?;
            driver.lock().await.leave(req).await?;
            ok()
        }
        "NetworkDriver.ProgramExternalConnectivity" => {
            let req = api::parse_external(body)?;
            driver.lock().await.program_external(req).await?;
            ok()
        }
        "NetworkDriver.RevokeExternalConnectivity" => {
            let req = api::parse_endpoint_ref(body)?;
            driver.lock().await.revoke_external(req).await?;
            ok()
        }
        // Node discovery (swarm, cluster stores): nothing to learn here.
        "NetworkDriver.DiscoverNew" | "NetworkDriver.DiscoverDelete" => {
            api::parse_empty(body)?;
            ok()
        }
        _ => Err(Refusal::Unknown(method.to_string())),
    }
}

/// Why a request was not done.
#[derive(Debug)]
enum Refusal {
    Malformed(api::RequestError),
    Refused(DriverError),
    Unknown(String),
}

impl From<api::RequestError> for Refusal {
    fn from(e: api::RequestError) -> Refusal {
        Refusal::Malformed(e)
    }
}
impl From<DriverError> for Refusal {
    fn from(e: DriverError) -> Refusal {
        Refusal::Refused(e)
    }
}

/// Answers one request of Docker's, inside a span naming the method and the peer (so what
/// the driver logs meanwhile says which request it served).
async fn handle(
    plugin: Arc<Plugin>,
    req: Request<Incoming>,
    peer: Arc<str>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.uri().path().trim_start_matches('/').to_string();
    let span = tracing::info_span!("plugin", method = %method, peer = %peer);
    handle_in_span(plugin, req, method).instrument(span).await
}

async fn handle_in_span(
    plugin: Arc<Plugin>,
    req: Request<Incoming>,
    method: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            &api::error_response("the plugin protocol uses POST"),
        ));
    }
    let body = match Limited::new(req.into_body(), api::MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(reply(
                StatusCode::BAD_REQUEST,
                &api::error_response(&format!("{method}: cannot read the body: {e}")),
            ));
        }
    };
    tracing::debug!(body = %String::from_utf8_lossy(&body), "{method}");
    let r = dispatch(&plugin, &method, &body).await;
    Ok(match r {
        Ok(v) => reply(StatusCode::OK, &v),
        Err(Refusal::Malformed(e)) => {
            tracing::warn!("{method}: {e}");
            reply(
                StatusCode::BAD_REQUEST,
                &api::error_response(&format!("{method}: {e}")),
            )
        }
        Err(Refusal::Refused(e)) => {
            tracing::warn!("{method}: {e}");
            reply(StatusCode::OK, &api::error_response(&e.0))
        }
        Err(Refusal::Unknown(m)) => reply(
            StatusCode::NOT_FOUND,
            &api::error_response(&format!("{m}: not a method of this plugin")),
        ),
    })
}

/// Serves requests on `listener` until the process ends.
pub async fn serve(listener: UnixListener, plugin: Arc<Plugin>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let d = Arc::clone(&plugin);
        let peer: Arc<str> = match stream.peer_cred().ok().and_then(|c| c.pid()) {
            Some(pid) => format!("unix:pid={pid}").into(),
            None => "unix".into(),
        };
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |r| handle(Arc::clone(&d), r, Arc::clone(&peer)));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn socket_is_owner_only_and_a_live_one_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("plugins").join("t.sock");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let l = listen(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing is left beside it.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        assert!(matches!(listen(&path), Err(ListenError::InUse(_))));
        drop(l);
        // A stale socket (nobody listening) is replaced.
        listen(&path).unwrap();
    }
}
