//! Byte streams to controllers: TCP and unix sockets, plain or TLS, connected (active
//! targets) or accepted (passive ones).
//!
//! TLS uses the files the daemon's gRPC listener was given (`--tls-cert`, `--tls-key`,
//! `--tls-client-ca`): as a server (`pssl:`) the switch presents its certificate and, with a
//! CA, requires and checks controllers' certificates; as a client (`ssl:`) it presents its
//! certificate and checks the controller's against the CA, which it therefore needs.
//!
//! `punix:` sockets are owner-only from their first instant: bound inside a fresh
//! directory only the owner may enter, restricted to mode 0600, then renamed into place; a
//! path a live listener holds is refused, a stale socket replaced.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_rustls::rustls;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::server::{ClientAuth, TlsFiles};
use crate::switch::Target;

/// A connection's byte stream, whatever carries it.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A boxed byte stream.
pub type BoxIo = Box<dyn Io>;

/// A plain or TLS stream over TCP or a unix socket (a concrete type, so that it can move
/// to the connection's own thread and runtime after `into_std`-free registration).
pub enum Stream {
    /// TCP.
    Tcp(TcpStream),
    /// A unix socket.
    Unix(UnixStream),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A raw socket handed to a connection thread: registered with that thread's runtime
/// there (a tokio socket belongs to the runtime that made it).
#[derive(Debug)]
pub enum RawSocket {
    /// TCP.
    Tcp(std::net::TcpStream),
    /// A unix socket.
    Unix(std::os::unix::net::UnixStream),
}

impl RawSocket {
    /// Takes a socket out of the accepting runtime.
    pub fn from_tcp(s: TcpStream) -> std::io::Result<RawSocket> {
        let s = s.into_std()?;
        Ok(RawSocket::Tcp(s))
    }

    /// Takes a unix socket out of the accepting runtime.
    pub fn from_unix(s: UnixStream) -> std::io::Result<RawSocket> {
        Ok(RawSocket::Unix(s.into_std()?))
    }

    /// Registers the socket with the current runtime.
    pub fn register(self) -> std::io::Result<Stream> {
        Ok(match self {
            RawSocket::Tcp(s) => {
                s.set_nonblocking(true)?;
                let s = TcpStream::from_std(s)?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
            RawSocket::Unix(s) => {
                s.set_nonblocking(true)?;
                Stream::Unix(UnixStream::from_std(s)?)
            }
        })
    }
}

/// Why TLS could not be set up.
fn tls_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("TLS {what}: {e}")
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_err(&format!("certificates in {}", path.display()), e))
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| tls_err(&format!("private key in {}", path.display()), e))
}

fn roots(ca: &Path) -> Result<rustls::RootCertStore, String> {
    let mut r = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        r.add(c).map_err(|e| tls_err("CA certificate", e))?;
    }
    Ok(r)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The acceptor of a `pssl:` target.
pub fn tls_acceptor(files: Option<&TlsFiles>) -> Result<TlsAcceptor, String> {
    let f = files.ok_or("pssl: needs the daemon's --tls-cert and --tls-key")?;
    let b = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("protocol versions", e))?;
    let b = match &f.client_auth {
        None => {
            return Err(
                "pssl: needs --tls-client-ca (controllers must present a certificate) \
                 or --tls-client-auth none to accept any controller explicitly"
                    .into(),
            );
        }
        Some(ClientAuth::Required(ca)) => {
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider(),
            )
            .build()
            .map_err(|e| tls_err("client verifier", e))?;
            b.with_client_cert_verifier(v)
        }
        Some(ClientAuth::None) => b.with_no_client_auth(),
    };
    let c = b
        .with_single_cert(certs(&f.cert)?, key(&f.key)?)
        .map_err(|e| tls_err("certificate and key", e))?;
    Ok(TlsAcceptor::from(Arc::new(c)))
}

/// The connector of an `ssl:` target.
pub fn tls_connector(files: Option<&TlsFiles>) -> Result<TlsConnector, String> {
    let f = files.ok_or("ssl: needs the daemon's --tls-cert, --tls-key and --tls-client-ca")?;
    let ca = match &f.client_auth {
        Some(ClientAuth::Required(ca)) => Some(ca),
        _ => None,
    }
    .ok_or("ssl: needs --tls-client-ca, the CA the controller's certificate must chain to")?;
    let c = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("protocol versions", e))?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(certs(&f.cert)?, key(&f.key)?)
        .map_err(|e| tls_err("certificate and key", e))?;
    Ok(TlsConnector::from(Arc::new(c)))
}

/// Completes the TLS handshake of an accepted or connected socket, if the target asks for
/// TLS; returns the stream to speak OpenFlow on.
pub async fn secure(s: Stream, target: &Target, tls: Option<&TlsFiles>) -> Result<BoxIo, String> {
    match target {
        Target::Pssl(_) => {
            let a = tls_acceptor(tls)?;
            let t = a.accept(s).await.map_err(|e| tls_err("handshake", e))?;
            Ok(Box::new(t))
        }
        Target::Ssl(addr) => {
            let c = tls_connector(tls)?;
            let name = ServerName::IpAddress(addr.ip().into());
            let t = c
                .connect(name, s)
                .await
                .map_err(|e| tls_err("handshake", e))?;
            Ok(Box::new(t))
        }
        _ => Ok(Box::new(s)),
    }
}

/// Connects to an active target (without TLS; see [`secure`]).
pub async fn connect(target: &Target) -> Result<(RawSocket, String), String> {
    match target {
        Target::Tcp(a) | Target::Ssl(a) => {
            let s = TcpStream::connect(a)
                .await
                .map_err(|e| format!("connecting to {a}: {e}"))?;
            Ok((
                RawSocket::from_tcp(s).map_err(|e| e.to_string())?,
                a.to_string(),
            ))
        }
        Target::Unix(p) => {
            let s = UnixStream::connect(p)
                .await
                .map_err(|e| format!("connecting to {}: {e}", p.display()))?;
            Ok((
                RawSocket::from_unix(s).map_err(|e| e.to_string())?,
                p.display().to_string(),
            ))
        }
        _ => Err("not an active target".into()),
    }
}

/// A passive target's listener.
#[derive(Debug)]
pub enum Listener {
    /// ptcp:/pssl:.
    Tcp(TcpListener),
    /// punix: (the socket file is removed when this is dropped).
    Unix(UnixListener, PathBuf),
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Listener {
    /// Binds a passive target.
    pub async fn bind(target: &Target) -> Result<Listener, String> {
        match target {
            Target::Ptcp(a) | Target::Pssl(a) => TcpListener::bind(a)
                .await
                .map(Listener::Tcp)
                .map_err(|e| format!("listening on {a}: {e}")),
            Target::Punix(p) => bind_owner_only(p).map(|l| Listener::Unix(l, p.clone())),
            _ => Err("not a passive target".into()),
        }
    }

    /// The local address (for `ptcp:0`, the port the system chose).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// The next connection and the peer's name.
    pub async fn accept(&self) -> std::io::Result<(RawSocket, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                Ok((RawSocket::from_tcp(s)?, a.to_string()))
            }
            Listener::Unix(l, p) => {
                let (s, _) = l.accept().await?;
                Ok((RawSocket::from_unix(s)?, p.display().to_string()))
            }
        }
    }
}

/// Binds a unix socket only its owner can reach from its first instant (see the module
/// documentation).
pub fn bind_owner_only(path: &Path) -> Result<UnixListener, String> {
    let err = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!(
            "{} is in use: something is listening there",
            path.display()
        ));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| err("creating the directory of", e))?;
    let private = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("sock"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(|e| err("creating a private directory for", e))?;
    let staged = private.join("s");
    let result = (|| {
        let l = std::os::unix::net::UnixListener::bind(&staged).map_err(|e| err("binding", e))?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err("restricting", e))?;
        std::fs::rename(&staged, path).map_err(|e| err("moving into place", e))?;
        l.set_nonblocking(true).map_err(|e| err("configuring", e))?;
        UnixListener::from_std(l).map_err(|e| err("registering", e))
    })();
    let _ = std::fs::remove_dir_all(&private);
    result
}

use std::os::unix::fs::DirBuilderExt as _;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn punix_sockets_are_owner_only_and_refuse_a_live_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("br0.ofp");
        let l = Listener::bind(&Target::Punix(p.clone())).await.unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let e = Listener::bind(&Target::Punix(p.clone())).await.unwrap_err();
        assert!(e.contains("in use"), "{e}");
        drop(l);
        assert!(!p.exists(), "the socket file goes with the listener");
        // A stale file is replaced.
        drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
        let _l = Listener::bind(&Target::Punix(p.clone())).await.unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no private directory left behind");
    }

    #[test]
    fn tls_needs_its_files() {
        let e = tls_acceptor(None).err().expect("no TLS files");
        assert!(e.contains("--tls-cert"), "{e}");
        let f = TlsFiles {
            cert: "/nonexistent".into(),
            key: "/nonexistent".into(),
            client_auth: None,
        };
        let e = tls_connector(Some(&f)).err().expect("no CA");
        assert!(e.contains("--tls-client-ca"), "{e}");
    }
}
