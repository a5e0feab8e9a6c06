//! Connecting to a daemon's unix socket (tests, examples, the Docker plugin): a tonic
//! channel whose connector dials the socket instead of TCP.
//!
//! Thread-safety: the returned client is `Clone + Send`.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use proto::v1::switch_client::SwitchClient;
use tonic::transport::{Channel, Endpoint};

/// A channel to the daemon listening on the unix socket `path`.
pub async fn channel_unix(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path: PathBuf = path.to_path_buf();
    // The URI is required by tonic but unused: the connector decides where to dial.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await
}

/// A `vswitch.v1` client for the daemon listening on the unix socket `path`.
pub async fn connect_unix(path: &Path) -> Result<SwitchClient<Channel>, tonic::transport::Error> {
    Ok(SwitchClient::new(channel_unix(path).await?).max_decoding_message_size(64 << 20))
}
