//! The daemon's pipeline with and without its metrics endpoint being scraped every 100 ms:
//! scraping must cost the exact-match path nothing measurable.
//!
//! Set-up: a `vswitchd` switch in this process (its own store in a temporary directory),
//! bridge `br0` with two in-memory ports and `in_port=1,actions=output:2`, its poll thread
//! busy-polling on the last CPU. Each iteration moves what port 2 sent back into port 1's
//! receive ring (4096 64-byte frames of 64 UDP flows, circulating, never copied) and waits
//! until port 2 has sent them all again: the time is the poll thread's, through the whole
//! daemon pipeline. The scraped variant also runs the real metrics endpoint on loopback and
//! a client that GETs `/metrics` every 100 ms (reading every counter of the switch).
//!
//! `cargo bench -p bench --bench metrics`: ids `daemon_pipeline/emc_hit/metrics=off` and
//! `daemon_pipeline/emc_hit/metrics=scraped_100ms`, packets per second. Measure on an
//! otherwise idle machine: the poll thread, this thread and the scraper share two cores.

use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datapath::port::{MemPort, Port as _};
use proto::flow_text::parse_flow;
use proto::v1::{self, entity, update};
use vswitchd::metrics::{self, MetricsAddr};
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

/// Frames in flight per iteration.
const FRAMES: usize = 4096;

struct Rig {
    sw: Arc<Switch>,
    p1: Arc<MemPort>,
    p2: Arc<MemPort>,
    _dir: std::path::PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.sw.shutdown();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn rig() -> Rig {
    let dir = std::env::temp_dir().join(format!("vswitch-bench-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench directory");
    let store = Store::open(&dir.join("conf.db")).expect("store");
    let last_cpu = std::thread::available_parallelism().map_or(0, |n| n.get() - 1);
    let cfg = SwitchConfig {
        pmd_max_sleep: Duration::ZERO,
        pmd_cpus: vec![last_cpu],
        memory_port_capacity: 2 * FRAMES,
        ..SwitchConfig::default()
    };
    let sw = Switch::start(store, cfg).expect("switch");
    for (name, no) in [("p1", 1), ("p2", 2)] {
        sw.add_port(v1::AddPortRequest {
            bridge: "br0".into(),
            port: Some(v1::PortConfig {
                name: name.into(),
                r#type: "memory".into(),
                requested_ofport: Some(no),
                ..Default::default()
            }),
        })
        .expect("port");
    }
    let flow = parse_flow("priority=100,in_port=1,actions=output:2").expect("flow");
    sw.write(v1::WriteRequest {
        bridge: "br0".into(),
        updates: vec![v1::Update {
            r#type: update::Type::Insert as i32,
            entity: Some(v1::Entity {
                entity: Some(entity::Entity::Flow(flow)),
            }),
        }],
        ..Default::default()
    })
    .expect("flow");
    let p1 = sw.memory_port("br0", "p1").expect("p1");
    let p2 = sw.memory_port("br0", "p2").expect("p2");
    p1.inject(bench::udp_flows(64, FRAMES, 60));
    wait_sent(&p2, FRAMES as u64);
    Rig {
        sw,
        p1,
        p2,
        _dir: dir,
    }
}

/// Waits until `p` has sent `n` packets in all.
fn wait_sent(p: &MemPort, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.stats().tx_packets < n {
        assert!(
            Instant::now() < deadline,
            "the poll thread stopped forwarding"
        );
        std::hint::spin_loop();
    }
}

/// Runs the metrics endpoint on a free loopback port and GETs /metrics every 100 ms until
/// `stop`; counts the scrapes.
fn scraper(
    sw: &Arc<Switch>,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: MetricsAddr = format!("tcp:127.0.0.1:{port}").parse().expect("address");
    let registry = Arc::new(metrics::registry(sw));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let stop2 = Arc::clone(&stop);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let ep = metrics::Endpoint::bind(&addr).await.expect("bind");
            let _ = ready_tx.send(());
            ep.serve(registry, async move {
                while !stop2.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
            .await;
        });
    });
    ready_rx.recv().expect("endpoint ready");
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").expect("send");
            let mut out = Vec::new();
            s.read_to_end(&mut out).expect("read");
            assert!(out.starts_with(b"HTTP/1.0 200"), "scrape failed");
            scrapes.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

fn daemon_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("daemon_pipeline");
    g.throughput(Throughput::Elements(FRAMES as u64));
    for scraped in [false, true] {
        let r = rig();
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let scraping = scraped.then(|| scraper(&r.sw, Arc::clone(&stop), Arc::clone(&scrapes)));
        // Measure only once the scrapes are running.
        while scraped && scrapes.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let id = if scraped {
            "metrics=scraped_100ms"
        } else {
            "metrics=off"
        };
        g.bench_function(format!("emc_hit/{id},flows=64,64B"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let sent = r.p2.stats().tx_packets;
                    r.p2.recycle_into(&r.p1);
                    wait_sent(&r.p2, sent + FRAMES as u64);
                }
                start.elapsed()
            })
        });
        stop.store(true, Ordering::Relaxed);
        if let Some(h) = scraping {
            h.join().expect("scraper");
            assert!(scrapes.load(Ordering::Relaxed) > 0, "never scraped");
        }
    }
    g.finish();
}

criterion_group!(benches, daemon_pipeline);
criterion_main!(benches);
