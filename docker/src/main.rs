//! `vswitch-docker`: the Docker network plugin of the switch. See the crate documentation
//! and `docker/README.md`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use tokio::sync::Mutex;
use vswitch_docker::driver::{Config, Driver};
use vswitch_docker::names::Prefix;
use vswitch_docker::overlay::{self, Overlay, OverlayConfig};
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
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    command: Option<Cmd>,
    /// What to log: a level or filters as RUST_LOG takes them (`info,vswitch_docker=debug`),
    /// combined with $RUST_LOG (this flag wins where both name the same target); neither:
    /// info.
    #[arg(long, value_name = "FILTER")]
    log_level: Option<String>,
    /// How log lines look on stderr: `text`, or `json` (one object per line, with the
    /// Docker request's span: `method`, `peer`).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// dockerd's API (`unix:///PATH`), asked at start which networks exist: those of the
    /// plugin's state that dockerd removed while the plugin was down are removed (`none`:
    /// not asked).
    #[arg(long, default_value = "unix:///var/run/docker.sock")]
    docker_host: String,
}

/// Overlay networks: the cluster in etcd. Without `--etcd-endpoints` the plugin has
/// bridge networks only.
#[derive(Debug, clap::Args)]
struct ClusterArgs {
    /// etcd's client URLs (`http://HOST:PORT` or `https://HOST:PORT`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    etcd_endpoints: Vec<String>,
    /// Where in etcd the cluster's keys are; every host of one cluster gives the same.
    #[arg(long, default_value = "/vswitch-docker")]
    etcd_prefix: String,
    /// CA certificate (PEM) of the etcd members' certificates (https endpoints).
    #[arg(long)]
    etcd_ca: Option<PathBuf>,
    /// Client certificate (PEM), for members that require one.
    #[arg(long)]
    etcd_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    etcd_key: Option<PathBuf>,
    /// The bridge whose tunnel endpoint (`flowctl set-tunnel-ip BR ADDR/LEN`) carries this
    /// host's VXLAN.
    #[arg(long)]
    vtep_bridge: Option<String>,
    /// This host's name in the cluster (1-63 of a-z A-Z 0-9 . _ -); default the hostname.
    #[arg(long)]
    host_id: Option<String>,
    /// Seconds this host's registrations outlive it (its etcd lease's TTL).
    #[arg(long, default_value_t = 10)]
    lease_ttl: u64,
    /// Seconds a host must be gone before its addresses go back to the pools.
    #[arg(long, default_value_t = 300)]
    reclaim_after: u64,
    /// Where the IPAM takes pools from when no `--subnet` is given (a /24 each).
    #[arg(long, default_value = "10.192.0.0/12")]
    ipam_range: String,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Shows this host's view of the overlay: networks, hosts, endpoints, etcd's health,
    /// the agent's counters (asks the running plugin on --plugin-socket).
    OverlayStatus {
        /// Print the JSON the plugin answered.
        #[arg(long)]
        json: bool,
    },
}

/// The overlay handle from the flags, or `None` without `--etcd-endpoints`.
async fn cluster(
    c: &ClusterArgs,
    bridge: &str,
    prefix: &Prefix,
) -> anyhow::Result<Option<Overlay>> {
    if c.etcd_endpoints.is_empty() {
        return Ok(None);
    }
    let vtep_bridge = c.vtep_bridge.clone().context(
        "--etcd-endpoints needs --vtep-bridge BR (the bridge of this host's tunnel endpoint)",
    )?;
    let host = match &c.host_id {
        Some(h) => h.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("the hostname (or give --host-id)")?
            .trim()
            .to_string(),
    };
    let host = host
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--host-id {e}"))?;
    let keys = overlay::schema::Keys::new(&c.etcd_prefix).map_err(|e| anyhow::anyhow!(e))?;
    let range: vswitch_docker::api::Cidr = c
        .ipam_range
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--ipam-range {e}"))?;
    if !range.addr.is_ipv4() || range.prefix > 24 {
        anyhow::bail!("--ipam-range {range}: an IPv4 prefix of /24 or shorter");
    }
    let etcd = overlay::etcd::Etcd::connect(&overlay::etcd::EtcdConfig {
        endpoints: c.etcd_endpoints.clone(),
        ca: c.etcd_ca.clone(),
        cert: c.etcd_cert.clone(),
        key: c.etcd_key.clone(),
    })
    .await?;
    let cluster = overlay::cluster::Cluster { etcd, keys, host };
    Ok(Some(Overlay {
        ipam: overlay::ipam::Ipam {
            cluster: cluster.clone(),
            range: range.network(),
        },
        cluster,
        cfg: OverlayConfig {
            vtep_bridge,
            bridge: bridge.to_string(),
            vx_port: format!("{}vxlan", prefix.as_str()),
            lease_ttl: std::time::Duration::from_secs(c.lease_ttl.max(2)),
            reclaim_after: std::time::Duration::from_secs(c.reclaim_after.max(1)),
        },
        shared: Arc::default(),
    }))
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
    if let Some(Cmd::OverlayStatus { json }) = &args.command {
        let v = overlay::status::query(&args.plugin_socket).map_err(|e| anyhow::anyhow!(e))?;
        if *json {
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            print!("{}", overlay::status::render(&v));
        }
        return Ok(());
    }
    let prefix: Prefix = args
        .ifname_prefix
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--ifname-prefix {e}"))?;
    if !vswitch_docker::options::valid_bridge_name(&args.bridge) {
        anyhow::bail!("--bridge {:?}: 1-15 of a-z A-Z 0-9 - _ .", args.bridge);
    }
    let switch = Switch::new(&args.server).map_err(|e| anyhow::anyhow!(e))?;
    let store = Store::open(&args.state_dir).context("state directory")?;
    let overlay = cluster(&args.cluster, &args.bridge, &prefix).await?;
    let cfg = Config {
        bridge: args.bridge,
        prefix,
        port_type: args.port_type,
        iptables: args.iptables,
    };
    let mut driver = Driver::new(cfg, store, switch)?;
    driver.overlay = overlay.clone();
    if let Some(ov) = &overlay {
        driver.publish_local();
        overlay::agent::spawn(ov, &args.server).map_err(|e| anyhow::anyhow!(e))?;
        tracing::info!(
            host = %ov.host(),
            etcd = %ov.cluster.etcd.endpoints(),
            prefix = %ov.cluster.keys.prefix(),
            "overlay networks on: the agent runs"
        );
    }
    match driver.reconcile().await {
        Ok(r) => tracing::info!(
            networks = driver.state.networks.len(),
            endpoints = driver.state.endpoints.len(),
            removed = ?r.removed,
            "state reconciled with the switch and the host"
        ),
        Err(e) => tracing::warn!("{e} (will keep trying)"),
    }
    tokio::spawn(vswitch_docker::neigh::responder_loop(
        driver.uplink_bridges.clone(),
        args.server.clone(),
    ));
    let loaded: Vec<_> = driver.state.networks.keys().cloned().collect();
    let driver = Arc::new(Mutex::new(driver));
    if args.docker_host != "none" && !loaded.is_empty() {
        tokio::spawn(forget_removed(
            Arc::clone(&driver),
            args.docker_host.clone(),
            loaded,
        ));
    }
    let listener = server::listen(&args.plugin_socket)?;
    tracing::info!(socket = %args.plugin_socket.display(), "serving Docker's plugin protocol");
    tokio::spawn(reconcile::watch(Arc::clone(&driver)));
    let socket = args.plugin_socket.clone();
    let plugin = Arc::new(server::Plugin { driver, overlay });
    tokio::select! {
        () = server::serve(listener, plugin) => {}
        r = shutdown() => r?,
    }
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// Removes the networks of `loaded` that dockerd no longer has (`vswitch_docker::dockerd`),
/// once dockerd answers (asked every 2 s until it does).
async fn forget_removed(
    driver: Arc<Mutex<Driver>>,
    host: String,
    loaded: Vec<vswitch_docker::api::Id>,
) {
    let mut logged = false;
    let known = loop {
        match vswitch_docker::dockerd::networks(&host).await {
            Ok(k) => break k,
            Err(e) if !logged => {
                logged = true;
                tracing::info!("dockerd's networks: {e}; asking again every 2 s");
            }
            Err(_) => {}
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    for id in loaded.into_iter().filter(|i| !known.contains(i.as_str())) {
        tracing::info!(network = %id, "dockerd no longer has this network: removing it");
        if let Err(e) = driver.lock().await.delete_network(Some(id.clone())).await {
            tracing::warn!(network = %id, "removing a network dockerd no longer has: {e}");
        }
    }
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
