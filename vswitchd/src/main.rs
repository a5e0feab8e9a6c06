//! vswitchd: the switch daemon.
//!
//! With no arguments it opens (or creates) its store under `/var/lib/vswitch/`, rebuilds
//! every bridge from it (a new store gets bridge `br0` whose table 0 holds `actions=normal`),
//! and serves the `vswitch.v1` gRPC API on `/run/vswitch/vswitchd.sock` until SIGTERM or
//! SIGINT. `vswitchd demo` runs the datapath alone on simulated traffic.

mod demo;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vswitchd::logging::{self, LogFormat};
use vswitchd::metrics::{self, MetricsAddr};
use vswitchd::server::{self, ClientAuth, Limits, Listen, TlsFiles};
use vswitchd::store::{self, Store, StoreError};
use vswitchd::switch::{Capacity, DpdkSettings, Switch, SwitchConfig};

/// The control plane allocates many small messages; mimalloc handles that churn far better
/// than glibc's allocator (bench/README.md, flow installation).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Default store file.
const DEFAULT_DB: &str = "/var/lib/vswitch/conf.db";
/// Default API socket.
const DEFAULT_SOCKET: &str = "unix:/run/vswitch/vswitchd.sock";

#[derive(Parser, Debug)]
#[command(
    version,
    about = "The switch daemon: durable configuration, the vswitch.v1 gRPC API, poll threads"
)]
struct Args {
    /// The configuration store (created when missing).
    #[arg(long, default_value = DEFAULT_DB)]
    db: PathBuf,
    /// When the store is damaged: keep every record that can still be read (a copy of the
    /// damaged file is kept). Does nothing to a sound store.
    #[arg(long, conflicts_with = "reset_store")]
    repair: bool,
    /// When the store is damaged: move it aside (kept as DB.damaged-TIME) and start from the
    /// default configuration. Does nothing to a sound store.
    #[arg(long)]
    reset_store: bool,
    /// Where to serve the API: unix:PATH or tcp:HOST:PORT (repeatable; TCP requires TLS
    /// and client certificates).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    listen: Vec<Listen>,
    /// TLS certificate chain (PEM) for TCP listeners.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for TCP listeners.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA whose client certificates are accepted (mutual TLS); required for TCP listeners
    /// unless `--tls-client-auth none`.
    #[arg(long, requires = "tls_cert", conflicts_with = "tls_client_auth")]
    tls_client_ca: Option<PathBuf>,
    /// `none`: accept TLS clients without a certificate, so anyone who reaches a TCP
    /// listener can program the switch (an explicit choice; the default is to refuse).
    #[arg(long, value_parser = ["none"], requires = "tls_cert")]
    tls_client_auth: Option<String>,
    /// API connections open at once, over all listeners.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    max_connections: usize,
    /// Of those, how many only the unix socket may use (the local operator always gets in).
    #[arg(long, default_value_t = Limits::default().reserved_unix_connections)]
    reserved_unix_connections: usize,
    /// Largest API request message, in bytes.
    #[arg(long, default_value_t = Limits::default().max_message_bytes)]
    max_message_bytes: usize,
    /// Requests one connection may have open at once.
    #[arg(long, default_value_t = Limits::default().max_streams_per_connection)]
    max_streams_per_connection: u32,
    /// Seconds a new connection has for its TLS handshake (unix: its HTTP/2 preface).
    #[arg(long, default_value_t = Limits::default().handshake_timeout.as_secs())]
    handshake_timeout_s: u64,
    /// Seconds without a request after which a connection is closed (0: never).
    #[arg(long, default_value_t = Limits::default().idle_timeout.as_secs())]
    idle_timeout_s: u64,
    /// Seconds a request body may stop arriving before its connection is closed.
    #[arg(long, default_value_t = Limits::default().request_timeout.as_secs())]
    request_timeout_s: u64,
    /// Keepalive: ping a quiet client this often (seconds), close it if it does not answer.
    #[arg(long, default_value_t = Limits::default().keepalive.as_secs())]
    keepalive_s: u64,
    /// Flows one table may hold; an insert past it is refused (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = Capacity::default().flows_per_table, value_parser = at_least_one())]
    max_flows_per_table: usize,
    /// Flows one bridge may hold over all its tables.
    #[arg(long, default_value_t = Capacity::default().flows_per_bridge, value_parser = at_least_one())]
    max_flows_per_bridge: usize,
    /// Meters one bridge may hold.
    #[arg(long, default_value_t = Capacity::default().meters_per_bridge, value_parser = at_least_one())]
    max_meters_per_bridge: usize,
    /// Groups one bridge may hold.
    #[arg(long, default_value_t = Capacity::default().groups_per_bridge, value_parser = at_least_one())]
    max_groups_per_bridge: usize,
    /// Ports one bridge may hold.
    #[arg(long, default_value_t = Capacity::default().ports_per_bridge, value_parser = at_least_one())]
    max_ports_per_bridge: usize,
    /// Bridges the switch may hold.
    #[arg(long, default_value_t = Capacity::default().bridges, value_parser = at_least_one())]
    max_bridges: usize,
    /// Copies one packet may make in one pass through the tables (outputs, flood and
    /// NORMAL fan-out, group buckets); the rest are not made and are counted as
    /// drop_copies_over_limit. The packet itself still takes its last output.
    #[arg(long, default_value_t = datapath::pipeline::MAX_COPIES_PER_PACKET)]
    max_copies_per_packet: usize,
    /// Longest an idle poll thread sleeps, in microseconds (0: busy polling).
    #[arg(long, default_value_t = 1000)]
    pmd_max_sleep_us: u64,
    /// CPUs to pin poll threads to, e.g. `1` or `2,3` (bridges are spread over them);
    /// default: the last CPU; `none`: not pinned.
    #[arg(long)]
    pmd_cpus: Option<String>,
    /// DPDK (builds with the `dpdk` feature): cores for EAL's own threads (`-l`).
    #[arg(long, default_value = "0")]
    dpdk_lcores: String,
    /// DPDK: memory per NUMA node in MiB (`--socket-mem`), default DPDK's.
    #[arg(long)]
    dpdk_socket_mem: Option<String>,
    /// DPDK: keep hugepage memory private to this process (`--in-memory`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    dpdk_in_memory: bool,
    /// DPDK: `--file-prefix` (default vswitchd-PID).
    #[arg(long)]
    dpdk_file_prefix: Option<String>,
    /// DPDK: more EAL arguments, space-separated (e.g. "--no-pci --log-level=lib.eal:debug").
    #[arg(long, allow_hyphen_values = true)]
    dpdk_extra: Option<String>,
    /// DPDK: mbufs in the shared mempool (0: 16384).
    #[arg(long, default_value_t = 0)]
    dpdk_mbufs: u32,
    /// DPDK: start it when the daemon starts (fail fast) rather than at the first dpdk port.
    #[arg(long)]
    dpdk_init: bool,
    /// What to log: a level (error, warn, info, debug, trace, off) or per-module filters as
    /// RUST_LOG takes them (`info,vswitchd=debug`). Combined with $RUST_LOG (this flag wins
    /// where both name the same target); neither: info.
    #[arg(long, value_name = "FILTER", value_parser = logging::check_filter)]
    log_level: Option<String>,
    /// How log lines look on stderr: `text`, or `json` (one object per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Serve Prometheus metrics at /metrics on tcp:HOST:PORT or unix:PATH (off by default).
    /// Plain HTTP: keep it on loopback or a socket only the scraper can reach.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<MetricsAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the datapath alone on simulated traffic and print what it does.
    Demo(demo::Args),
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    logging::init(args.log_level.as_deref(), args.log_format);
    let res = match args.command {
        Some(Command::Demo(d)) => demo::run(d),
        None => daemon(args),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A count flag's parser: 1 or more.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

/// The CPUs poll threads may use: `--pmd-cpus`, checked against the CPUs this process may
/// run on; by default the last of those.
fn pmd_cpus(arg: Option<&str>) -> anyhow::Result<Vec<usize>> {
    let usable =
        datapath::pipeline::usable_cpus().context("reading this process's CPU affinity")?;
    match arg {
        Some("none") => Ok(Vec::new()),
        None => Ok(usable.last().copied().into_iter().collect()),
        Some(list) => {
            let mut cpus = Vec::new();
            for part in list.split(',') {
                let c: usize = part
                    .trim()
                    .parse()
                    .with_context(|| format!("--pmd-cpus: {part:?} is not a CPU number"))?;
                if !usable.contains(&c) {
                    anyhow::bail!(
                        "--pmd-cpus: cpu {c} is not available to this process (usable: {usable:?})"
                    );
                }
                cpus.push(c);
            }
            Ok(cpus)
        }
    }
}

/// Opens the store; a damaged one is repaired or reset only when the operator said so.
fn open_store(args: &Args) -> anyhow::Result<Store> {
    let db = &args.db;
    match Store::open(db) {
        Ok(s) => {
            if args.repair || args.reset_store {
                tracing::info!(
                    "store {} is sound; --{} has nothing to do",
                    db.display(),
                    if args.repair { "repair" } else { "reset-store" }
                );
            }
            Ok(s)
        }
        Err(StoreError::Damaged { message, .. }) if args.repair => {
            tracing::warn!("store {} is damaged: {message}", db.display());
            let report = store::repair(db)?;
            tracing::warn!("repaired {}: {report}", db.display());
            Ok(Store::open(db)?)
        }
        Err(StoreError::Damaged { message, .. }) if args.reset_store => {
            tracing::warn!("store {} is damaged: {message}", db.display());
            let kept = store::reset(db)?;
            tracing::warn!(
                "moved {} to {}; starting from the default configuration",
                db.display(),
                kept.display()
            );
            Ok(Store::open(db)?)
        }
        Err(e) => Err(e.into()),
    }
}

fn limits(args: &Args) -> Limits {
    Limits {
        max_connections: args.max_connections,
        reserved_unix_connections: args.reserved_unix_connections,
        max_message_bytes: args.max_message_bytes,
        max_streams_per_connection: args.max_streams_per_connection,
        handshake_timeout: Duration::from_secs(args.handshake_timeout_s),
        idle_timeout: Duration::from_secs(args.idle_timeout_s),
        request_timeout: Duration::from_secs(args.request_timeout_s),
        keepalive: Duration::from_secs(args.keepalive_s),
    }
}

fn daemon(args: Args) -> anyhow::Result<()> {
    let nofile = server::raise_nofile();
    let wanted = limits(&args);
    wanted.check().map_err(anyhow::Error::msg)?;
    let limits = wanted.within_descriptors(nofile);
    if limits.max_connections < wanted.max_connections {
        tracing::warn!(
            "{nofile} descriptors allowed (RLIMIT_NOFILE): at most {} API \
             connections ({} kept for the unix socket)",
            limits.max_connections,
            limits.reserved_unix_connections
        );
    }
    let tls = args.tls_cert.clone().map(|cert| TlsFiles {
        cert,
        key: args.tls_key.clone().unwrap_or_default(),
        client_auth: match (&args.tls_client_ca, args.tls_client_auth.as_deref()) {
            (Some(ca), _) => Some(ClientAuth::Required(ca.clone())),
            (None, Some("none")) => Some(ClientAuth::None),
            _ => None,
        },
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    // The store first (it is locked: a second daemon on it stops here), then every
    // listener, checked and bound, before anything starts or is announced.
    let store = open_store(&args)?;
    // Signals are caught from here on: one that arrives while the switch starts stops it
    // cleanly once it serves.
    let mut term = rt
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        })
        .context("installing the SIGTERM handler")?;
    let mut int = rt
        .block_on(async {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        })
        .context("installing the SIGINT handler")?;
    let listen = args.listen.clone();
    let listeners = rt.block_on(server::bind(&listen, tls.as_ref(), limits))?;
    let metrics = match &args.metrics {
        Some(a) => Some(rt.block_on(metrics::Endpoint::bind(a))?),
        None => None,
    };
    let (metrics_stop, metrics_stopped) = tokio::sync::watch::channel(false);
    let config = SwitchConfig {
        pmd_max_sleep: Duration::from_micros(args.pmd_max_sleep_us),
        pmd_cpus: pmd_cpus(args.pmd_cpus.as_deref())?,
        dpdk: DpdkSettings {
            eal: datapath::port::EalConfig {
                lcores: args.dpdk_lcores.clone(),
                socket_mem: args.dpdk_socket_mem.clone(),
                in_memory: args.dpdk_in_memory,
                file_prefix: args.dpdk_file_prefix.clone(),
                extra: args
                    .dpdk_extra
                    .as_deref()
                    .unwrap_or("")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                n_mbufs: args.dpdk_mbufs,
            },
            init_at_start: args.dpdk_init,
        },
        capacity: Capacity {
            flows_per_table: args.max_flows_per_table,
            flows_per_bridge: args.max_flows_per_bridge,
            meters_per_bridge: args.max_meters_per_bridge,
            groups_per_bridge: args.max_groups_per_bridge,
            ports_per_bridge: args.max_ports_per_bridge,
            bridges: args.max_bridges,
        },
        datapath: datapath::pipeline::DatapathConfig {
            max_copies_per_packet: args.max_copies_per_packet,
            ..datapath::pipeline::DatapathConfig::default()
        },
        ..SwitchConfig::default()
    };
    if config.dpdk.init_at_start {
        #[cfg(feature = "dpdk")]
        config.dpdk.init().context("starting DPDK (--dpdk-init)")?;
        #[cfg(not(feature = "dpdk"))]
        anyhow::bail!("--dpdk-init: this vswitchd was built without DPDK (`--features dpdk`)");
    }
    let sw = Switch::start(store, config).context("starting the switch")?;
    let res = rt.block_on(async {
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        if let Some(ep) = metrics {
            tracing::info!("metrics on {} at /metrics", ep.local_addr());
            let mut stopped = metrics_stopped;
            tokio::spawn(ep.serve(Arc::new(metrics::registry(&sw)), async move {
                let _ = stopped.wait_for(|s| *s).await;
            }));
        }
        tracing::info!(
            store = %args.db.display(),
            "serving on {}",
            listeners.names().join(", ")
        );
        server::serve(sw.clone(), listeners, shutdown).await
    });
    let _ = metrics_stop.send(true);
    sw.shutdown();
    tracing::info!("stopped");
    res
}
