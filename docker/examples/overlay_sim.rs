//! Simulated hosts for the overlay's scale benchmark (`bench/overlay-scale`): registers
//! `--hosts` hosts with `--endpoints` endpoints each on one overlay network, in etcd, the
//! way real hosts do (a lease per host, its host record, each endpoint with its MAC
//! address claimed in one transaction), with no switch behind them. Prints how long it
//! took. With `--remove`, takes them away again (revokes the leases).
//!
//! ```sh
//! cargo run --release -p vswitch-docker --example overlay_sim -- \
//!     --etcd http://127.0.0.1:2379 --prefix /vswitch-docker --network 10.200.0.0/16 \
//!     --hosts 1000 --endpoints 50
//! ```

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use tokio::task::JoinSet;
use vswitch_docker::api::{Cidr, Id, Mac};
use vswitch_docker::overlay::cluster::{Cluster, host_record};
use vswitch_docker::overlay::etcd::{Etcd, EtcdConfig};
use vswitch_docker::overlay::schema::{EndpointRecord, FORMAT, Keys, cidr_key};

/// Registers simulated hosts and endpoints in etcd.
#[derive(Debug, Parser)]
struct Args {
    /// etcd client URL(s), comma-separated.
    #[arg(long, value_delimiter = ',')]
    etcd: Vec<String>,
    /// The cluster's etcd prefix (as the plugins' `--etcd-prefix`).
    #[arg(long, default_value = "/vswitch-docker")]
    prefix: String,
    /// The overlay network (its pool): an IPv4 prefix with room for every endpoint.
    #[arg(long)]
    network: String,
    /// How many hosts.
    #[arg(long, default_value_t = 1000)]
    hosts: u32,
    /// Endpoints per host.
    #[arg(long, default_value_t = 50)]
    endpoints: u32,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The leases' TTL in seconds (the simulated hosts never renew them).
    #[arg(long, default_value_t = 3600)]
    ttl: i64,
}

fn host_name(h: u32) -> String {
    format!("sim-{h:05}")
}

/// Registers host `h` and its endpoints (addresses from the pool, after the first 256).
async fn register(
    etcd: Etcd,
    keys: Keys,
    pool: Cidr,
    h: u32,
    per_host: u32,
    ttl: i64,
) -> anyhow::Result<()> {
    let c = Cluster {
        etcd,
        keys,
        host: host_name(h)
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?,
    };
    let lease = c.etcd.grant(ttl).await?;
    // Tunnel endpoints 172.16.0.0/12, one per host.
    let vtep = std::net::Ipv4Addr::from(0xac10_0000 + h + 1);
    c.register_host(&host_record(vtep), lease).await?;
    let base = match pool.addr {
        std::net::IpAddr::V4(a) => u32::from(a),
        std::net::IpAddr::V6(_) => anyhow::bail!("--network: an IPv4 prefix"),
    };
    let nkey = cidr_key(&pool);
    for e in 0..per_host {
        let ip = std::net::Ipv4Addr::from(base + 256 + h * per_host + e);
        let rec = EndpointRecord {
            format: FORMAT,
            mac: Mac::from_ipv4(ip),
            ipv4: Some(ip),
            ipv6: None,
            vtep,
        };
        let eid: Id = format!("{:08x}{:08x}", h, e)
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        c.register_endpoint(&nkey, &eid, &rec, lease).await?;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let pool: Cidr = a
        .network
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--network {e}"))?;
    let pool = pool.network();
    let needed = u64::from(a.hosts) * u64::from(a.endpoints) + 256;
    let room = 1u64 << (32 - u32::from(pool.prefix.min(32)));
    anyhow::ensure!(
        needed <= room,
        "--network {pool} has {room} addresses, {needed} needed"
    );
    let keys = Keys::new(&a.prefix).map_err(|e| anyhow::anyhow!(e))?;
    let etcd = Etcd::connect(&EtcdConfig {
        endpoints: a.etcd.clone(),
        ..EtcdConfig::default()
    })
    .await
    .context("etcd")?;
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut set = JoinSet::new();
    for _ in 0..a.concurrency.max(1) {
        let (etcd, keys, next) = (etcd.clone(), keys.clone(), Arc::clone(&next));
        let (hosts, per, ttl) = (a.hosts, a.endpoints, a.ttl);
        set.spawn(async move {
            loop {
                let h = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if h >= hosts {
                    return Ok::<(), anyhow::Error>(());
                }
                register(etcd.clone(), keys.clone(), pool, h, per, ttl).await?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let secs = start.elapsed().as_secs_f64();
    let n = u64::from(a.hosts) * u64::from(a.endpoints);
    println!(
        "registered hosts={} endpoints={n} seconds={secs:.2} endpoints_per_s={:.0}",
        a.hosts,
        n as f64 / secs
    );
    Ok(())
}
