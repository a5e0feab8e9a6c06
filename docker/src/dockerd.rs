//! Networks Docker removed while the plugin was down.
//!
//! dockerd neither replays CreateNetwork after a plugin restart nor fails `docker network
//! rm` when the plugin does not answer (it warns and removes the network), so a network
//! removed while the plugin was dead stays in the plugin's state, with its gateway port
//! and uplink. At start the plugin asks dockerd (`--docker-host`, its Engine API, `GET
//! /networks`) which networks exist, and removes from its state those it loaded that
//! dockerd no longer has, with everything they had on the host and the switch. Only
//! networks of the state as loaded are considered (a network being created now may not
//! be in dockerd's list yet), and only once dockerd answered with a list.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The ids of every network dockerd at `host` (`unix:///PATH` or `unix:PATH`) has.
pub async fn networks(host: &str) -> Result<BTreeSet<String>, String> {
    let path = host
        .strip_prefix("unix://")
        .or_else(|| host.strip_prefix("unix:"))
        .ok_or_else(|| format!("--docker-host {host}: expected unix:///PATH"))?;
    let io = async {
        let mut s = tokio::net::UnixStream::connect(path).await?;
        s.write_all(b"GET /networks HTTP/1.0\r\nHost: docker\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.take(64 << 20).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .map_err(|_| format!("{host}: no answer within 10 s"))?
        .map_err(|e| format!("{host}: {e}"))?;
    parse_networks(&buf).map_err(|e| format!("{host}: {e}"))
}

/// The network ids of an HTTP/1.0 answer to `GET /networks`.
pub fn parse_networks(answer: &[u8]) -> Result<BTreeSet<String>, String> {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("an answer without a body")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("GET /networks answered {status:?}"));
    }
    let body: Vec<serde_json::Value> =
        serde_json::from_slice(&answer[split + 4..]).map_err(|e| format!("GET /networks: {e}"))?;
    body.iter()
        .map(|n| {
            n.get("Id")
                .and_then(|v| v.as_str())
                .map(String::from)
                .ok_or_else(|| "GET /networks: a network without an Id".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn answers() {
        let ok = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[{\"Id\":\"ab\",\"Name\":\"x\"},{\"Id\":\"cd\"}]\n";
        let ids = parse_networks(ok).unwrap();
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), ["ab", "cd"]);
        assert!(parse_networks(b"HTTP/1.0 500 Oops\r\n\r\n[]").is_err());
        assert!(parse_networks(b"HTTP/1.0 200 OK\r\n\r\n[{\"Name\":\"x\"}]").is_err());
        assert!(parse_networks(b"HTTP/1.0 200 OK").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_networks(&b);
        }
    }
}
