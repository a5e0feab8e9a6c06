//! The tower layer every API request passes through: a `tracing` span naming the RPC and the
//! peer, the request's latency and status recorded in the metrics instruments, and a failed
//! request logged once, with its status and message, at the end.
//!
//! What is logged where: a request that fails (any gRPC status other than OK) is logged
//! here and only here, at `warn` for a refusal (bad argument, not found, ...) and `error`
//! for the daemon's own failures (`INTERNAL`, `UNAVAILABLE`, `UNKNOWN`, `DATA_LOSS`). Errors
//! a successful response carries (a `Write`'s per-update statuses, a `Stream`'s error
//! messages) are logged by the service, inside this span. A client repeating a bad request
//! in a loop is rate-limited to [`ERRORS_PER_SECOND`] lines a second, and the next line
//! says how many were held back.
//!
//! The RPC label is the method path's last part for the switch's own service (`Write`,
//! `GetPortStats`), the full path for others (`grpc.health.v1.Health/Check`), and
//! `unimplemented` for a method that does not exist, so a client cannot invent label values.
//!
//! Thread-safety: `ApiLayer` is a cheap `Copy`; its state is the process-wide instruments
//! and rate limit.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::sync::Arc;

use tonic::Code;
use tracing::Instrument as _;

use crate::logging::RateLimit;
use crate::metrics::instruments;

/// Failed requests logged per second at most (more are counted, and the count logged).
pub const ERRORS_PER_SECOND: u32 = 20;

static ERROR_LOG: RateLimit = RateLimit::new(Duration::from_secs(1), ERRORS_PER_SECOND);

/// The switch service's method paths start with this.
const SWITCH_SERVICE: &str = "/vswitch.v1.Switch/";

/// Layer adding [`ApiTrace`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiLayer;

impl<S> tower::Layer<S> for ApiLayer {
    type Service = ApiTrace<S>;

    fn layer(&self, inner: S) -> ApiTrace<S> {
        ApiTrace { inner }
    }
}

/// Spans, times and logs each request (see the module documentation).
#[derive(Debug, Clone)]
pub struct ApiTrace<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for ApiTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<R>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_string();
        let rpc = rpc_name(&path).to_string();
        let span = tracing::info_span!("api", rpc = %rpc, peer = %peer(&req));
        let start = Instant::now();
        let fut = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let res = fut.await;
                let status = match &res {
                    Ok(resp) => tonic::Status::from_header_map(resp.headers()),
                    Err(_) => Some(tonic::Status::unknown("the service failed")),
                };
                let code = status.as_ref().map_or(Code::Ok, tonic::Status::code);
                let label = if code == Code::Unimplemented {
                    "unimplemented"
                } else {
                    rpc.as_str()
                };
                instruments().request_took(label, code, start.elapsed());
                if let Some(st) = status.filter(|s| s.code() != Code::Ok) {
                    log_error(st.code(), st.message());
                }
                res
            }
            .instrument(span),
        )
    }
}

/// The RPC's label: `Write` for the switch service, the path without its slash otherwise.
fn rpc_name(path: &str) -> &str {
    path.strip_prefix(SWITCH_SERVICE)
        .unwrap_or_else(|| path.trim_start_matches('/'))
}

/// Who sent a request, `unix:pid=N,uid=N` or `tcp:ADDR:PORT` (TLS or not): a request
/// extension the server's connection layer (`server/layer.rs`) adds from what it read when
/// it accepted the connection.
#[derive(Debug, Clone)]
pub struct Peer(pub Arc<str>);

/// Who sent `req` ([`Peer`]); `unknown` when nobody said.
fn peer<B>(req: &http::Request<B>) -> Arc<str> {
    req.extensions()
        .get::<Peer>()
        .map_or_else(|| Arc::from("unknown"), |p| Arc::clone(&p.0))
}

/// Logs one API error, `code` with its `cause` (the message the client gets), in the
/// current span; rate-limited with every other API error (see the module documentation).
pub fn log_error(code: Code, cause: &str) {
    let Some(held) = ERROR_LOG.allow() else {
        return;
    };
    let server_fault = matches!(
        code,
        Code::Internal | Code::Unavailable | Code::Unknown | Code::DataLoss
    );
    let code = crate::metrics::code_name(code);
    match (server_fault, held) {
        (true, 0) => tracing::error!(code, "failed: {cause}"),
        (false, 0) => tracing::warn!(code, "refused: {cause}"),
        (true, n) => tracing::error!(
            code,
            held_back = n,
            "failed: {cause} ({n} API errors not logged before this one)"
        ),
        (false, n) => tracing::warn!(
            code,
            held_back = n,
            "refused: {cause} ({n} API errors not logged before this one)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_labels_are_short_for_the_switch_and_full_for_others() {
        assert_eq!(rpc_name("/vswitch.v1.Switch/Write"), "Write");
        assert_eq!(
            rpc_name("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
    }
}
