//! `vswitch-docker`: the Docker network plugin of the switch. See the crate documentation
//! and `docker/README.md`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use tokio::sync::Mutex;
use vswitch_docker::driver::{Config, Driver};
use vswitch_docker::names::Prefix;
use vswitch_docker::state::Store;
use vswitch_docker::vswitch::Switch;
use vswitch_docker::{reconcile, server};

/// Docker network plugin (driver `vswitch`): containers on the userspace switch.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The switch's API.
    #[arg(long, default_value = "unix:/run/vswitch/vswitchd.sock")]
    server: String,
    /// Where Docker finds the plugin; the file name (without `.sock`) is the driver name
    /// given to `docker network create -d`.
    #[arg(long, default_value = "/run/docker/plugins/vswitch.sock")]
    plugin_socket: PathBuf,
    /// Where the plugin keeps its networks and endpoints.
    #[arg(long, default_value = "/var/lib/vswitch-docker")]
    state_dir: PathBuf,
    /// The bridge networks use unless `-o vswitch.bridge=BR` says otherwise.
    #[arg(long, default_value = vswitch_docker::options::DEFAULT_BRIDGE)]
    bridge: String,
    /// Prefix of the interfaces and switch ports the plugin makes (1-4 of a-z 0-9). It
    /// owns every name with it: reconciliation removes those it does not know.
    #[arg(long, default_value = "vd")]
    ifname_prefix: String,
    /// The switch port type of the containers' veths (AF_XDP: a tenth of AF_PACKET's
    /// round trip, bench/README.md).
    #[arg(long, default_value = "afxdp", value_parser = ["afxdp", "afpacket"])]
    port_type: String,
    /// Manage the host kernel's iptables rules (as dockerd's `--iptables`): masquerade of
    /// networks' outbound traffic, until the switch has its own NAT, and isolation between
    /// networks' gateways. `false` leaves both to the operator.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    iptables: bool,
    /// What to log: a level or filters as RUST_LOG takes them (`info,vswitch_docker=debug`),
    /// combined with $RUST_LOG (this flag wins where both name the same target); neither:
    /// info.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// How log lines look on stderr: `text`, or `json` (one object per line, with the
    /// Docker request's span: `method`, `peer`).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

/// Logs to stderr through `tracing`, filtered by `RUST_LOG` with `--log-level` over it.
fn init_logging(level: Option<&str>, json: bool) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let env = std::env::var(EnvFilter::DEFAULT_ENV).unwrap_or_default();
    let mut filter = match (env.trim(), level) {
        ("", None) => EnvFilter::new("info"),
        ("", Some(_)) => EnvFilter::new(""),
        (e, _) => EnvFilter::try_new(e).map_err(|err| anyhow::anyhow!("RUST_LOG={e:?}: {err}"))?,
    };
    for d in level
        .unwrap_or("")
        .split(',')
        .filter(|d| !d.trim().is_empty())
    {
        let d = d
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("--log-level {d:?}: {e}"))?;
        filter = filter.add_directive(d);
    }
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        fmt.json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_level.as_deref(), args.log_format == "json")?;
    let prefix: Prefix = args
        .ifname_prefix
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--ifname-prefix {e}"))?;
    if !vswitch_docker::options::valid_bridge_name(&args.bridge) {
        anyhow::bail!("--bridge {:?}: 1-15 of a-z A-Z 0-9 - _ .", args.bridge);
    }
    let switch = Switch::new(&args.server).map_err(|e| anyhow::anyhow!(e))?;
    let store = Store::open(&args.state_dir).context("state directory")?;
    let cfg = Config {
        bridge: args.bridge,
        prefix,
        port_type: args.port_type,
        iptables: args.iptables,
    };
    let mut driver = Driver::new(cfg, store, switch)?;
    match driver.reconcile().await {
        Ok(r) => tracing::info!(
            networks = driver.state.networks.len(),
            endpoints = driver.state.endpoints.len(),
            removed = ?r.removed,
            "state reconciled with the switch and the host"
        ),
        Err(e) => tracing::warn!("{e} (will keep trying)"),
    }
    let driver = Arc::new(Mutex::new(driver));
    let listener = server::listen(&args.plugin_socket)?;
    tracing::info!(socket = %args.plugin_socket.display(), "serving Docker's plugin protocol");
    tokio::spawn(reconcile::watch(Arc::clone(&driver)));
    let socket = args.plugin_socket.clone();
    tokio::select! {
        () = server::serve(listener, driver) => {}
        r = shutdown() => r?,
    }
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// Waits for SIGTERM or SIGINT. The plugin's interfaces and ports stay: containers keep
/// their network while the plugin is away.
async fn shutdown() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping");
    Ok(())
}
