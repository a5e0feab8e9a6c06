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
use vswitchd::server::{self, Listen, TlsFiles};
use vswitchd::store::Store;
use vswitchd::switch::{DpdkSettings, Switch, SwitchConfig};

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
    /// Where to serve the API: unix:PATH or tcp:HOST:PORT (repeatable; TCP requires TLS).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    listen: Vec<Listen>,
    /// TLS certificate chain (PEM) for TCP listeners.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for TCP listeners.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA whose client certificates are accepted (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
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

fn daemon(args: Args) -> anyhow::Result<()> {
    let store = Store::open(&args.db)?;
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
        ..SwitchConfig::default()
    };
    if config.dpdk.init_at_start {
        #[cfg(feature = "dpdk")]
        config.dpdk.init().context("starting DPDK (--dpdk-init)")?;
        #[cfg(not(feature = "dpdk"))]
        anyhow::bail!("--dpdk-init: this vswitchd was built without DPDK (`--features dpdk`)");
    }
    let sw = Switch::start(store, config).context("starting the switch")?;
    let tls = args.tls_cert.map(|cert| TlsFiles {
        cert,
        key: args.tls_key.unwrap_or_default(),
        client_ca: args.tls_client_ca,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let listen = args.listen.clone();
    let metrics = match &args.metrics {
        Some(a) => Some(rt.block_on(metrics::Endpoint::bind(a))?),
        None => None,
    };
    let (metrics_stop, metrics_stopped) = tokio::sync::watch::channel(false);
    let res = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        if let Some(ep) = metrics {
            tracing::info!("metrics on {} at /metrics", ep.local_addr());
            let mut stopped = metrics_stopped;
            tokio::spawn(ep.serve(Arc::new(metrics::registry(&sw)), async move {
                let _ = stopped.wait_for(|s| *s).await;
            }));
        }
        let names: Vec<String> = listen.iter().map(|l| l.to_string()).collect();
        tracing::info!(
            store = %args.db.display(),
            "serving on {}",
            names.join(", ")
        );
        server::serve(sw.clone(), &listen, tls, shutdown).await
    });
    let _ = metrics_stop.send(true);
    sw.shutdown();
    tracing::info!("stopped");
    res
}
