//! Soak (issue 19): random API writes, reads and statistics calls, ports added and removed
//! (memory, TAP, AF_PACKET and AF_XDP on veths) and traffic between two namespaces through
//! the switch, all at once; the daemon's descriptors, threads and memory must be as flat at
//! the end as after a warm-up of the same load, the operator served within a second, and
//! the traffic not lost.
//!
//! `VSWITCH_SOAK_SECONDS` sets how long the load runs after its warm-up (default 20; the
//! suite's long mode, `./scripts/test --long`, runs 600). Runs as root (namespaces, veths);
//! needs iproute2, iputils-ping and ethtool. About 30 s more than the load itself (two
//! quiet waits, so that idle worker threads have gone before counting).
// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proto::flow_text::{parse_flow, parse_group, parse_match, parse_meter};
use proto::v1::{self, entity, read_filter, update};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Cookie of every flow the load writes (the cleanup deletes by it).
const COOKIE: u64 = 0x50a6;

fn update(t: update::Type, e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: t as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

/// One random Write: 1 to 40 flow inserts, modifies and deletes (never touching what
/// carries the namespaces' traffic: table 0 gets only TCP flows), meters and groups.
fn random_write(r: &mut Rng) -> v1::WriteRequest {
    let mut updates = Vec::new();
    for _ in 0..1 + r.below(40) {
        let table = r.below(4);
        let port = r.below(2000);
        let u = match r.below(10) {
            0..=4 => {
                let text = if table == 0 {
                    format!(
                        "cookie={COOKIE:#x},priority={},tcp,tp_dst={port},actions=drop",
                        100 + r.below(5)
                    )
                } else {
                    format!(
                        "table={table},cookie={COOKIE:#x},priority={},ip,nw_dst=10.{}.{}.0/24,\
                         actions=mod_nw_tos:32,output:1",
                        r.below(100),
                        r.below(8),
                        port % 256
                    )
                };
                update(
                    update::Type::Insert,
                    entity::Entity::Flow(parse_flow(&text).unwrap()),
                )
            }
            5 => {
                let f = parse_match(&format!(
                    "table={},cookie={COOKIE:#x}/-1,ip",
                    1 + r.below(3)
                ))
                .unwrap();
                update(update::Type::Delete, entity::Entity::FlowFilter(f))
            }
            6 => {
                let f = parse_match(&format!("cookie={COOKIE:#x}/-1,tcp,tp_dst={port}")).unwrap();
                update(update::Type::Delete, entity::Entity::FlowFilter(f))
            }
            7 => {
                let id = 1 + r.below(20);
                let m = parse_meter(&format!(
                    "meter={id},kbps,burst,bands=type=drop,rate={},burst_size=100",
                    1000 + r.below(1000)
                ))
                .unwrap();
                let t = [update::Type::Insert, update::Type::Delete][r.below(2) as usize];
                update(t, entity::Entity::Meter(m))
            }
            _ => {
                let id = 1 + r.below(20);
                let g = parse_group(&format!(
                    "group_id={id},type=all,bucket=output:1,bucket=output:2"
                ))
                .unwrap();
                let t = [update::Type::Insert, update::Type::Delete][r.below(2) as usize];
                update(t, entity::Entity::Group(g))
            }
        };
        updates.push(u);
    }
    v1::WriteRequest {
        bridge: "br0".into(),
        updates,
        atomicity: if r.below(2) == 0 {
            v1::Atomicity::AllOrNone as i32
        } else {
            v1::Atomicity::ContinueOnError as i32
        },
    }
}

/// A random Read of 1 to 8 filters.
fn random_read(r: &mut Rng) -> v1::ReadRequest {
    let filters = (0..1 + r.below(8))
        .map(|_| {
            let f = match r.below(5) {
                0 => read_filter::Filter::Flows(v1::FlowFilter::default()),
                1 => read_filter::Filter::Flows(
                    parse_match(&format!("table={}", r.below(4))).unwrap(),
                ),
                2 => read_filter::Filter::Meters(v1::MeterFilter::default()),
                3 => read_filter::Filter::Groups(v1::GroupFilter::default()),
                _ => read_filter::Filter::Ports(v1::PortFilter::default()),
            };
            v1::ReadFilter { filter: Some(f) }
        })
        .collect();
    v1::ReadRequest {
        bridge: "br0".into(),
        filters,
    }
}

/// The daemon's open descriptors, threads and resident memory (bytes).
fn usage(pid: u32) -> (usize, u64, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (fds, field("Threads:"), field("VmRSS:") * 1024)
}

/// What the load did, counted.
#[derive(Default)]
struct Done {
    writes: AtomicU64,
    refused: AtomicU64,
    reads: AtomicU64,
    stats: AtomicU64,
    port_changes: AtomicU64,
}

/// Runs the load until `stop`: writers, readers, a statistics poller and a port churner.
async fn load(
    sock: std::path::PathBuf,
    churn: Vec<(String, String)>,
    seed: u64,
    stop: Arc<AtomicBool>,
    done: Arc<Done>,
) {
    let mut tasks = Vec::new();
    for w in 0..2u64 {
        let (sock, stop, done) = (sock.clone(), Arc::clone(&stop), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut c = vswitchd::client::connect_unix(&sock).await.unwrap();
            let mut r = Rng(seed ^ (w + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            while !stop.load(Ordering::Relaxed) {
                match c.write(random_write(&mut r)).await {
                    Ok(resp) => {
                        let n = resp.into_inner().statuses.len() as u64;
                        done.refused.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(s) => {
                        // All-or-none writes meet missing meters and groups.
                        assert!(
                            matches!(
                                s.code(),
                                tonic::Code::NotFound
                                    | tonic::Code::AlreadyExists
                                    | tonic::Code::InvalidArgument
                            ),
                            "{s:?}"
                        );
                        done.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for w in 0..2u64 {
        let (sock, stop, done) = (sock.clone(), Arc::clone(&stop), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut r = Rng(seed ^ (w + 7).wrapping_mul(0x2545_f491_4f6c_dd1d));
            while !stop.load(Ordering::Relaxed) {
                // A new connection now and then, as CLI users make them.
                let mut c = vswitchd::client::connect_unix(&sock).await.unwrap();
                for _ in 0..20 {
                    let mut s = c.read(random_read(&mut r)).await.unwrap().into_inner();
                    while s.message().await.unwrap().is_some() {}
                    done.reads.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    {
        let (sock, stop, done) = (sock.clone(), Arc::clone(&stop), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut c = vswitchd::client::connect_unix(&sock).await.unwrap();
            let br = || "br0".to_string();
            while !stop.load(Ordering::Relaxed) {
                c.get_port_stats(v1::GetPortStatsRequest {
                    bridge: br(),
                    port: None,
                })
                .await
                .unwrap();
                c.get_table_stats(v1::GetTableStatsRequest { bridge: br() })
                    .await
                    .unwrap();
                c.get_meter_stats(v1::GetMeterStatsRequest {
                    bridge: br(),
                    meter_id: None,
                })
                .await
                .unwrap();
                c.get_group_stats(v1::GetGroupStatsRequest {
                    bridge: br(),
                    group_id: None,
                })
                .await
                .unwrap();
                c.get_mac_table(v1::GetMacTableRequest { bridge: br() })
                    .await
                    .unwrap();
                c.get_pmd_stats(v1::GetPmdStatsRequest {}).await.unwrap();
                done.stats.fetch_add(6, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    {
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let mut c = vswitchd::client::connect_unix(&sock).await.unwrap();
            let mut r = Rng(seed ^ 0x5eed);
            let mut present = vec![false; churn.len()];
            while !stop.load(Ordering::Relaxed) {
                let i = r.below(churn.len() as u64) as usize;
                let (name, ty) = &churn[i];
                if present[i] {
                    c.del_port(v1::DelPortRequest {
                        bridge: "br0".into(),
                        name: name.clone(),
                        if_exists: false,
                    })
                    .await
                    .unwrap();
                } else {
                    c.add_port(v1::AddPortRequest {
                        bridge: "br0".into(),
                        port: Some(v1::PortConfig {
                            name: name.clone(),
                            r#type: ty.clone(),
                            ..Default::default()
                        }),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("add-port {name} type={ty}: {e:?}"));
                }
                present[i] = !present[i];
                done.port_changes.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            for (i, (name, _)) in churn.iter().enumerate() {
                if present[i] {
                    c.del_port(v1::DelPortRequest {
                        bridge: "br0".into(),
                        name: name.clone(),
                        if_exists: false,
                    })
                    .await
                    .unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Runs the load for `secs`, then removes everything it wrote and waits until the daemon
/// is quiet (idle worker threads end after 10 s); returns its usage then.
fn phase(
    rt: &tokio::runtime::Runtime,
    d: &common::Daemon,
    churn: &[(String, String)],
    seed: u64,
    secs: u64,
) -> (usize, u64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(Done::default());
    let t = Instant::now();
    let worker = {
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        let sock = d.server().trim_start_matches("unix:").into();
        let churn = churn.to_vec();
        rt.spawn(load(sock, churn, seed, stop, done))
    };
    let mut operator_worst = Duration::ZERO;
    while t.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        d.ok(&["list-br"]);
        operator_worst = operator_worst.max(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(worker).unwrap();
    eprintln!(
        "{secs} s: {} writes ({} refusals), {} reads, {} statistics calls, {} port changes; \
         the operator waited at most {operator_worst:?}",
        done.writes.load(Ordering::Relaxed),
        done.refused.load(Ordering::Relaxed),
        done.reads.load(Ordering::Relaxed),
        done.stats.load(Ordering::Relaxed),
        done.port_changes.load(Ordering::Relaxed),
    );
    assert!(
        operator_worst < Duration::from_secs(1),
        "the operator waited {operator_worst:?}"
    );
    assert!(done.writes.load(Ordering::Relaxed) > secs);
    assert!(done.port_changes.load(Ordering::Relaxed) > secs);
    // Everything the load wrote goes (what is not there is refused, and ignored).
    let mut cleanup = vec![update(
        update::Type::Delete,
        entity::Entity::FlowFilter(parse_match(&format!("cookie={COOKIE:#x}/-1")).unwrap()),
    )];
    for id in 1..=20 {
        cleanup.push(update(
            update::Type::Delete,
            entity::Entity::Meter(v1::Meter {
                id,
                ..Default::default()
            }),
        ));
        cleanup.push(update(
            update::Type::Delete,
            entity::Entity::Group(v1::Group {
                id,
                ..Default::default()
            }),
        ));
    }
    let sock: std::path::PathBuf = d.server().trim_start_matches("unix:").into();
    rt.block_on(async {
        let mut c = vswitchd::client::connect_unix(&sock).await.unwrap();
        c.write(v1::WriteRequest {
            bridge: "br0".into(),
            updates: cleanup,
            atomicity: v1::Atomicity::ContinueOnError as i32,
        })
        .await
        .unwrap();
    });
    assert_eq!(d.ok(&["dump-meters", "br0"]).trim(), "");
    let dump = d.ok(&["dump-flows", "--no-stats", "br0"]);
    assert_eq!(dump.lines().count(), 1, "{dump}");
    std::thread::sleep(Duration::from_secs(12));
    usage(d.pid())
}

#[test]
fn the_switch_stays_flat_under_a_random_load() {
    let secs: u64 = std::env::var("VSWITCH_SOAK_SECONDS")
        .ok()
        .map(|s| {
            s.parse()
                .expect("VSWITCH_SOAK_SECONDS: a number of seconds")
        })
        .unwrap_or(20);
    let seed = std::env::var("VSWITCH_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("soak: {secs} s, VSWITCH_SOAK_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let d = common::Daemon::start(dir.path());
    let h = common::Hosts::new("sk", 23, 4);
    d.ok(&["add-port", "br0", &h.ports[0], "type=afxdp"]);
    d.ok(&["add-port", "br0", &h.ports[1], "type=afpacket"]);
    let id = std::process::id() % 100_000;
    let churn: Vec<(String, String)> = vec![
        (h.ports[2].clone(), "afpacket".into()),
        (h.ports[3].clone(), "afxdp".into()),
        (format!("sk{id}t1"), "tap".into()),
        (format!("sk{id}t2"), "tap".into()),
        ("skm1".into(), "memory".into()),
        ("skm2".into(), "memory".into()),
        ("skm3".into(), "memory".into()),
    ];
    // Traffic for the whole run: 1,000-byte pings both ways, 200 a second, stopped (and
    // summed up) by SIGINT at the end.
    let ping = |from: usize, to: usize, secs: u64| {
        h.spawn(
            from,
            &[
                "ping",
                "-q",
                "-i",
                "0.005",
                "-s",
                "1000",
                "-w",
                &secs.to_string(),
                &h.addr(to),
            ],
        )
    };
    h.exec(1, &["ping", "-c", "3", "-W", "2", &h.addr(2)]);
    let warm = (secs / 4).clamp(5, 60);
    let total = warm + secs + 600;
    let pings = [ping(1, 2, total), ping(2, 1, total)];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = phase(&rt, &d, &churn, seed, warm);
    let end = phase(&rt, &d, &churn, seed.rotate_left(17), secs);
    eprintln!(
        "after the warm-up: {} descriptors, {} threads, {} MiB; at the end: {} descriptors, \
         {} threads, {} MiB",
        base.0,
        base.1,
        base.2 >> 20,
        end.0,
        end.1,
        end.2 >> 20
    );
    assert!(end.0 <= base.0, "descriptors grew: {base:?} -> {end:?}");
    assert!(end.1 <= base.1 + 1, "threads grew: {base:?} -> {end:?}");
    let slack = (base.2 / 4).max(24 << 20);
    assert!(
        end.2 <= base.2 + slack,
        "memory grew from {} to {} MiB",
        base.2 >> 20,
        end.2 >> 20
    );
    let ran = warm + secs;
    for p in pings {
        common::run("kill", &["-INT", &p.id().to_string()]);
        let o = p.wait_with_output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let summary = out
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_else(|| panic!("ping printed no summary: {out}"));
        eprintln!("ping: {summary}");
        let field = |what: &str| -> f64 {
            summary
                .split(", ")
                .find(|s| s.contains(what))
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.trim_end_matches('%').parse().ok())
                .unwrap()
        };
        let sent = field("transmitted");
        let received = field("received");
        assert!(sent > (ran as f64) * 100.0, "{summary}");
        assert!(
            received >= sent * 0.99,
            "more than 1% of the pings lost: {summary}"
        );
    }
}
