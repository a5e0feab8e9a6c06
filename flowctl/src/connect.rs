//! Reaching the switch: the `--server` address (`unix:PATH`, `https://HOST:PORT`, or
//! plaintext `http://HOST:PORT` for tests), TLS settings, and the tonic channel.
//!
//! Address and TLS files are checked before any connection is attempted, so a bad command
//! line is a usage error (exit 2) and not a connection error (exit 1).

use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::v1::switch_client::SwitchClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{Error, Result};

/// The largest response message flowctl accepts (tonic's default is 4 MiB; a dump of many
/// flows may come in large chunks).
const MAX_RESPONSE_SIZE_BYTES: usize = 256 << 20;

/// The largest header / trailer block flowctl accepts. A failed Write carries every
/// update's status in `grpc-status-details-bin`: about 7 bytes per update, base64-encoded,
/// so ~50 KiB for a 5000-update batch, over hyper's 16 KiB default.
const MAX_HEADER_LIST_SIZE_BYTES: u32 = 16 << 20;

/// How long to wait for a TCP / TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the switch listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    /// A unix socket path.
    Unix(PathBuf),
    /// gRPC over TLS: the `https://HOST:PORT` URI and its host (the expected certificate
    /// name).
    Https {
        /// The URI as given.
        uri: String,
        /// The host part (without brackets for IPv6).
        host: String,
    },
    /// gRPC over plaintext TCP (`http://HOST:PORT`), for tests on loopback.
    Http(String),
}

/// TLS files given on the command line.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA bundle that signed the switch's certificate; system roots when absent.
    pub ca: Option<PathBuf>,
    /// Client certificate (mutual TLS).
    pub cert: Option<PathBuf>,
    /// Client key (mutual TLS).
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

/// Parses a `--server` value.
pub fn parse_server(addr: &str) -> Result<Server> {
    if let Some(path) = addr.strip_prefix("unix:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(Error::Usage(format!(
                "--server {addr}: missing socket path (unix:PATH)"
            )));
        }
        return Ok(Server::Unix(PathBuf::from(path)));
    }
    let (scheme, rest) = addr.split_once("://").ok_or_else(|| {
        Error::Usage(format!(
            "--server {addr}: expected unix:PATH or https://HOST:PORT"
        ))
    })?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    if host.is_empty()
        || authority
            .parse::<tonic::codegen::http::uri::Authority>()
            .is_err()
    {
        return Err(Error::Usage(format!(
            "--server {addr}: expected https://HOST:PORT"
        )));
    }
    match scheme {
        "https" => Ok(Server::Https {
            uri: addr.to_string(),
            host: host.to_string(),
        }),
        "http" => Ok(Server::Http(addr.to_string())),
        _ => Err(Error::Usage(format!(
            "--server {addr}: unknown scheme `{scheme}` (unix:PATH or https://HOST:PORT)"
        ))),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Input {
        path: path.display().to_string(),
        source,
    })
}

/// Builds the endpoint for `server`, reading the TLS files. Nothing is connected yet.
pub fn endpoint(server: &Server, tls: &TlsFiles) -> Result<Endpoint> {
    let ep = match server {
        Server::Unix(path) => {
            if tls.any() {
                return Err(Error::Usage(
                    "--tls-ca, --tls-cert and --tls-key need an https:// --server".into(),
                ));
            }
            Endpoint::from_shared(format!("unix:{}", path.display()))
                .map_err(|e| Error::Usage(format!("--server: {e}")))?
        }
        Server::Http(uri) => {
            if tls.any() {
                return Err(Error::Usage(
                    "--tls-ca, --tls-cert and --tls-key need an https:// --server".into(),
                ));
            }
            Endpoint::from_shared(uri.clone())
                .map_err(|e| Error::Usage(format!("--server {uri}: {e}")))?
                .connect_timeout(CONNECT_TIMEOUT)
        }
        Server::Https { uri, host } => {
            let mut config = ClientTlsConfig::new().domain_name(host.clone());
            config = match &tls.ca {
                Some(ca) => config.ca_certificate(Certificate::from_pem(read_file(ca)?)),
                None => config.with_native_roots(),
            };
            if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
                config = config.identity(Identity::from_pem(read_file(cert)?, read_file(key)?));
            }
            Endpoint::from_shared(uri.clone())
                .map_err(|e| Error::Usage(format!("--server {uri}: {e}")))?
                .connect_timeout(CONNECT_TIMEOUT)
                .tls_config(config)
                .map_err(|e| Error::Usage(format!("TLS configuration: {}", chain(&e))))?
        }
    };
    Ok(ep.http2_max_header_list_size(MAX_HEADER_LIST_SIZE_BYTES))
}

/// The connected client.
pub type Client = SwitchClient<Channel>;

/// Connects to the switch.
pub async fn connect(addr: &str, ep: &Endpoint) -> Result<Client> {
    let channel = ep
        .connect()
        .await
        .map_err(|e| Error::Connect(format!("cannot connect to {addr}: {}", chain(&e))))?;
    Ok(SwitchClient::new(channel)
        .max_decoding_message_size(MAX_RESPONSE_SIZE_BYTES)
        .max_encoding_message_size(usize::MAX))
}

/// An error with its sources, `a: b: c` (tonic's transport errors say little on their own).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
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
    fn unix_addresses() {
        assert_eq!(
            parse_server("unix:/run/vswitch/vswitchd.sock").unwrap(),
            Server::Unix("/run/vswitch/vswitchd.sock".into())
        );
        assert_eq!(
            parse_server("unix:///tmp/x.sock").unwrap(),
            Server::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            parse_server("unix:rel.sock").unwrap(),
            Server::Unix("rel.sock".into())
        );
        assert!(parse_server("unix:").is_err());
    }

    #[test]
    fn https_addresses() {
        assert_eq!(
            parse_server("https://switch.example:9443").unwrap(),
            Server::Https {
                uri: "https://switch.example:9443".into(),
                host: "switch.example".into()
            }
        );
        assert_eq!(
            parse_server("https://[::1]:9443").unwrap(),
            Server::Https {
                uri: "https://[::1]:9443".into(),
                host: "::1".into()
            }
        );
        assert_eq!(
            parse_server("http://127.0.0.1:50051").unwrap(),
            Server::Http("http://127.0.0.1:50051".into())
        );
    }

    #[test]
    fn bad_addresses_are_usage_errors() {
        for a in ["/run/x.sock", "ftp://h:1", "https://", "https://:9"] {
            let e = parse_server(a).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{a}");
        }
    }

    #[test]
    fn tls_files_need_https() {
        let tls = TlsFiles {
            ca: Some("ca.pem".into()),
            ..TlsFiles::default()
        };
        let e = endpoint(&Server::Unix("/tmp/s".into()), &tls).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn missing_ca_file_is_a_usage_error() {
        let tls = TlsFiles {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsFiles::default()
        };
        let server = parse_server("https://localhost:9443").unwrap();
        let e = endpoint(&server, &tls).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
    }

    #[test]
    fn unix_endpoint_builds() {
        endpoint(&Server::Unix("/tmp/s.sock".into()), &TlsFiles::default()).unwrap();
    }
}
