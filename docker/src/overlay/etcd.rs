//! The plugin's side of etcd: a client with deadlines, reads at one revision, and the
//! compare-and-swap shapes every cluster change is made of.
//!
//! What: [`Etcd`] wraps the `etcd-client` crate (the v3 gRPC API over the workspace's
//! tonic). Every call has a deadline ([`CALL_TIMEOUT`]), so a cluster that is down is
//! reported within seconds, naming the endpoints; the client itself spreads calls over the
//! endpoints and reconnects by itself. Reads of a whole prefix are paged
//! ([`PAGE_KEYS`] keys a page) at the revision of the first page, so a large registry is
//! read consistently without one huge message.

use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp, TxnResponse,
};

/// How long one call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Keys per page of a prefix read.
pub const PAGE_KEYS: i64 = 2000;
/// Pause before a call that was not sent is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// An error of the etcd client in a few words: the gRPC status's message and its deepest
/// cause (`tcp connect error: Connection refused (os error 111)`).
fn describe(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(s);
            let mut last = None;
            while let Some(c) = cause {
                last = Some(c.to_string());
                cause = c.source();
            }
            match last {
                Some(l) if !s.message().contains(&l) => format!("{}: {l}", s.message()),
                _ => s.message().to_string(),
            }
        }
        e => e.to_string(),
    }
}

/// True when an error means the request never reached a member (so trying again, maybe
/// on another member, cannot apply it twice).
fn not_sent(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("connect error") || t.contains("connection refused")
}

/// True when a call that failed with `text` may be sent again before its deadline: it was
/// never sent, or the member had no leader and so proposed nothing (etcd's own client
/// retries both for every call); and, for calls that change nothing or change it to the
/// same end (`idempotent`), an election that ended the call half way (`leader changed`,
/// which a member says when a leader it had gone while it waited). A transaction that met
/// an election is not sent again: it may have been applied, and its compare would then
/// fail the second time.
fn retryable(text: &str, idempotent: bool) -> bool {
    let t = text.to_ascii_lowercase();
    not_sent(text)
        || t.contains("no leader")
        || (idempotent && (t.contains("leader changed") || t.contains("leader failure")))
}

/// Why a call to etcd failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EtcdError {
    /// No member answered in time (down, cut off, no quorum).
    #[error("etcd is unreachable at {endpoints}: {message}")]
    Unreachable {
        /// The `--etcd-endpoints`.
        endpoints: String,
        /// What happened.
        message: String,
    },
    /// The revision asked for was compacted away.
    #[error("etcd revision {0} was compacted")]
    Compacted(i64),
    /// Bad configuration (TLS files, endpoints).
    #[error("{0}")]
    Config(String),
}

impl EtcdError {
    /// True when etcd could not be reached (as opposed to a refused request).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EtcdError::Unreachable { .. })
    }
}

/// How to reach etcd: the plugin's `--etcd-*` flags.
#[derive(Debug, Clone, Default)]
pub struct EtcdConfig {
    /// Client URLs, `http://HOST:PORT` or `https://HOST:PORT`.
    pub endpoints: Vec<String>,
    /// CA certificate (PEM) that signed the members' certificates.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for members that require one.
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    pub key: Option<PathBuf>,
}

/// One key as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Revision of its last change (for compare-and-swap).
    pub mod_revision: i64,
    /// Its lease, 0 for none.
    pub lease: i64,
}

impl From<&etcd_client::KeyValue> for Kv {
    fn from(kv: &etcd_client::KeyValue) -> Kv {
        Kv {
            key: kv.key().to_vec(),
            value: kv.value().to_vec(),
            mod_revision: kv.mod_revision(),
            lease: kv.lease(),
        }
    }
}

/// The end of the range of every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A connection to the cluster.
#[derive(Clone)]
pub struct Etcd {
    client: Client,
    endpoints: String,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

fn read_pem(p: &PathBuf, what: &str) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(p).map_err(|e| EtcdError::Config(format!("{what} {}: {e}", p.display())))
}

impl Etcd {
    /// A client for `cfg`. Connecting is lazy: this succeeds while etcd is down, and calls
    /// fail within [`CALL_TIMEOUT`] until it is back.
    pub async fn connect(cfg: &EtcdConfig) -> Result<Etcd, EtcdError> {
        if cfg.endpoints.is_empty() {
            return Err(EtcdError::Config("--etcd-endpoints: none given".into()));
        }
        for e in &cfg.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(EtcdError::Config(format!(
                    "--etcd-endpoints {e}: expected http://HOST:PORT or https://HOST:PORT"
                )));
            }
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(CALL_TIMEOUT)
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        if cfg.ca.is_some() || cfg.cert.is_some() {
            let mut tls = etcd_client::TlsOptions::new();
            if let Some(ca) = &cfg.ca {
                tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read_pem(
                    ca,
                    "--etcd-ca",
                )?));
            }
            match (&cfg.cert, &cfg.key) {
                (Some(c), Some(k)) => {
                    tls = tls.identity(etcd_client::Identity::from_pem(
                        read_pem(c, "--etcd-cert")?,
                        read_pem(k, "--etcd-key")?,
                    ));
                }
                (None, None) => {}
                _ => {
                    return Err(EtcdError::Config(
                        "--etcd-cert and --etcd-key go together".into(),
                    ));
                }
            }
            opts = opts.with_tls(tls);
        }
        let endpoints = cfg.endpoints.join(",");
        let client = Client::connect(&cfg.endpoints, Some(opts))
            .await
            .map_err(|e| EtcdError::Unreachable {
                endpoints: endpoints.clone(),
                message: e.to_string(),
            })?;
        Ok(Etcd { client, endpoints })
    }

    /// The endpoints, for messages.
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// The underlying client (watches and leases use it directly).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// An unreachable error for `e`.
    pub fn down(&self, e: impl std::fmt::Display) -> EtcdError {
        EtcdError::Unreachable {
            endpoints: self.endpoints.clone(),
            message: e.to_string(),
        }
    }

    /// Runs `f` with the deadline. A call that was never sent (its member refused the
    /// connection: stopped), or met an election where sending it again is safe
    /// ([`retryable`]), is tried again until the deadline, so another member or the new
    /// leader answers.
    async fn timed<T, F, Fut>(&self, what: &str, idempotent: bool, mut f: F) -> Result<T, EtcdError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, f(self.client.clone())).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => {
                    let text = describe(&e);
                    if text.contains("compacted") {
                        return Err(EtcdError::Compacted(0));
                    }
                    let retry_at = tokio::time::Instant::now() + RETRY_PAUSE;
                    if retryable(&text, idempotent) && retry_at < deadline {
                        tokio::time::sleep_until(retry_at).await;
                        continue;
                    }
                    return Err(self.down(format!("{what}: {text}")));
                }
                Err(_) => {
                    return Err(self.down(format!("{what}: no answer within {CALL_TIMEOUT:?}")));
                }
            }
        }
    }

    /// The cluster's current revision (a quorum read: proves etcd is healthy).
    pub async fn revision(&self, probe_key: &str) -> Result<i64, EtcdError> {
        let r = self
            .timed("health", true, |c| {
                let key = probe_key.to_string();
                async move {
                    c.kv_client()
                        .get(key, Some(GetOptions::new().with_count_only()))
                        .await
                }
            })
            .await?;
        Ok(r.header().map_or(0, |h| h.revision()))
    }

    /// One key.
    pub async fn get(&self, key: &str) -> Result<Option<Kv>, EtcdError> {
        let r = self
            .timed("get", true, |c| {
                let key = key.to_string();
                async move { c.kv_client().get(key, None).await }
            })
            .await?;
        Ok(r.kvs().first().map(Kv::from))
    }

    /// Every key under `prefix` at one revision (`revision` 0: the newest), paged; returns
    /// the keys and the revision read. `keys_only` leaves the values empty.
    pub async fn range(
        &self,
        prefix: &str,
        revision: i64,
        keys_only: bool,
    ) -> Result<(Vec<Kv>, i64), EtcdError> {
        let end = prefix_end(prefix.as_bytes());
        let mut start = prefix.as_bytes().to_vec();
        let mut rev = revision;
        let mut out = Vec::new();
        loop {
            let mut opts = GetOptions::new()
                .with_range(end.clone())
                .with_limit(PAGE_KEYS)
                .with_revision(rev);
            if keys_only {
                opts = opts.with_keys_only();
            }
            let r = self
                .timed("range", true, |c| {
                    let (start, opts) = (start.clone(), opts.clone());
                    async move { c.kv_client().get(start, Some(opts)).await }
                })
                .await;
            let r = match r {
                Err(EtcdError::Compacted(_)) => return Err(EtcdError::Compacted(rev)),
                r => r?,
            };
            if rev == 0 {
                rev = r.header().map_or(0, |h| h.revision());
            }
            out.extend(r.kvs().iter().map(Kv::from));
            match r.kvs().last() {
                Some(last) if r.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => return Ok((out, rev)),
            }
        }
    }

    /// Runs a transaction.
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse, EtcdError> {
        self.timed("transaction", false, |c| {
            let txn = txn.clone();
            async move { c.kv_client().txn(txn).await }
        })
        .await
    }

    /// Creates `key` only if it does not exist; true if created.
    pub async fn create(&self, key: &str, value: Vec<u8>, lease: i64) -> Result<bool, EtcdError> {
        let r = self
            .txn(
                Txn::new()
                    .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                    .and_then([put(key, value, lease)]),
            )
            .await?;
        Ok(r.succeeded())
    }

    /// Deletes `key` (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<(), EtcdError> {
        self.timed("delete", true, |c| {
            let key = key.to_string();
            async move { c.kv_client().delete(key, None).await }
        })
        .await
        .map(|_| ())
    }

    /// Deletes `key` only if it still has revision `mod_revision`; true if deleted.
    pub async fn delete_if(&self, key: &str, mod_revision: i64) -> Result<bool, EtcdError> {
        let r = self
            .txn(
                Txn::new()
                    .when([Compare::mod_revision(key, CompareOp::Equal, mod_revision)])
                    .and_then([TxnOp::delete(key, None)]),
            )
            .await?;
        Ok(r.succeeded())
    }

    /// Grants a lease of `ttl_s` seconds.
    pub async fn grant(&self, ttl_s: i64) -> Result<i64, EtcdError> {
        let r = self
            .timed("lease grant", true, |c| async move {
                c.lease_client().grant(ttl_s, None).await
            })
            .await?;
        Ok(r.id())
    }

    /// Revokes a lease (its keys go at once).
    pub async fn revoke(&self, lease: i64) -> Result<(), EtcdError> {
        self.timed("lease revoke", false, |c| async move {
            c.lease_client().revoke(lease).await
        })
        .await
        .map(|_| ())
    }
}

/// A put of `value` at `key` under `lease` (0: none), for transactions.
pub fn put(key: &str, value: Vec<u8>, lease: i64) -> TxnOp {
    let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
    TxnOp::put(key, value, opts)
}

/// "`key` does not exist", for transactions.
pub fn absent(key: &str) -> Compare {
    Compare::create_revision(key, CompareOp::Equal, 0)
}

/// "`key` was last changed at `rev`" (0: does not exist), for transactions.
pub fn unchanged(key: &str, rev: i64) -> Compare {
    if rev == 0 {
        absent(key)
    } else {
        Compare::mod_revision(key, CompareOp::Equal, rev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }

    #[test]
    fn elections_are_waited_out_only_where_sending_again_is_safe() {
        let changed = "get: etcdserver: leader changed";
        assert!(retryable(changed, true));
        assert!(
            !retryable(changed, false),
            "a transaction may have been applied"
        );
        assert!(retryable("transaction: etcdserver: no leader", false));
        assert!(retryable(
            "tcp connect error: Connection refused (os error 111)",
            false
        ));
        assert!(!retryable(
            "etcdserver: mvcc: required revision has been compacted",
            true
        ));
        assert!(!retryable("etcdserver: request is too large", true));
    }
}
