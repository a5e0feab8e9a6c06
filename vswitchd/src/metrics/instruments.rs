//! Process-wide latency instruments, updated where the work happens and exported by the
//! metrics endpoint: store commits, and API requests by RPC.
//!
//! What: [`instruments`] returns the one set of histograms and counters of this process. They
//! are process-wide, as OVS's coverage counters are, so the store and the API layer record
//! into them without being handed anything; an in-process test running two switches sees
//! both switches' commits in one histogram.
//!
//! Thread-safety: every instrument is `Sync`; recording takes the histogram's own short lock
//! (on control paths only: a commit waits for fsync anyway, a request for its reply).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the per-RPC families.
pub type RpcLabels = Vec<(&'static str, String)>;

/// The histograms and counters.
#[derive(Debug)]
pub struct Instruments {
    /// Time of each store commit (fsync included), seconds.
    pub store_commit: Histogram,
    /// Time from an API request's arrival to its response (for a streaming call, to the
    /// start of its response), by `rpc`, seconds.
    pub api_latency: Family<RpcLabels, Histogram, fn() -> Histogram>,
    /// API requests by `rpc` and gRPC status `code` (`OK`, `INVALID_ARGUMENT`, ...).
    pub api_requests: Family<RpcLabels, Counter>,
}

/// 100 us to about 3.3 s, doubling: an fsync on a quiet disk lands near the bottom, a
/// write of a million flows near the top.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| Instruments {
    store_commit: latency_buckets(),
    api_latency: Family::new_with_constructor(latency_buckets),
    api_requests: Family::default(),
});

/// This process's instruments.
pub fn instruments() -> &'static Instruments {
    &INSTRUMENTS
}

impl Instruments {
    /// Records one store commit that took `d`.
    pub fn commit_took(&self, d: Duration) {
        self.store_commit.observe(d.as_secs_f64());
    }

    /// Records one API request: its RPC, status and duration.
    pub fn request_took(&self, rpc: &str, code: tonic::Code, d: Duration) {
        let rpc = vec![("rpc", rpc.to_string())];
        self.api_latency
            .get_or_create(&rpc)
            .observe(d.as_secs_f64());
        let mut labels = rpc;
        labels.push(("code", code_name(code).to_string()));
        self.api_requests.get_or_create(&labels).inc();
    }

    /// Adds the instruments to `registry`.
    pub fn register(&'static self, registry: &mut Registry) {
        registry.register(
            "vswitch_store_commit_duration_seconds",
            "Time to make one configuration change durable (the store's commit, fsync included)",
            self.store_commit.clone(),
        );
        registry.register(
            "vswitch_api_request_duration_seconds",
            "Time from an API request's arrival to its response, by RPC (streaming calls: to \
             the start of the response)",
            self.api_latency.clone(),
        );
        registry.register(
            "vswitch_api_requests",
            "API requests answered, by RPC and gRPC status code",
            self.api_requests.clone(),
        );
    }
}

/// The gRPC name of `code`, as the protocol spells it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
