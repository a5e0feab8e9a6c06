//! `vswitchd demo`: the datapath alone, with simulated traffic and no daemon around it.
//!
//! It builds bridge `br0` with table 0 holding the single flow `actions=normal` and four
//! in-memory ports with one simulated host each. A traffic thread plays the
//! hosts (each sends to its partner: 1<->2, 3<->4), a poll thread switches, and once a second
//! the daemon prints throughput, the learned MAC table, port and PMD counters.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use datapath::actions::{Action, Instructions};
use datapath::classifier::{FlowMod, FlowSpec};
use datapath::flow::FlowKey;
use datapath::l2::{VlanMode, VlanSet};
use datapath::packet::PacketBuf;
use datapath::pipeline::{Datapath, DatapathConfig};
use datapath::port::{MemPort, Port};
use datapath::stats::{DropReason, PmdCounters};
use datapath::types::{PortNo, TableId, VlanId};

/// Options of `vswitchd demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// How long to run, in seconds (0: until interrupted).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Frame size in bytes (without FCS).
    #[arg(long, default_value_t = 60)]
    frame_size: usize,
    /// Distinct UDP flows per host pair.
    #[arg(long, default_value_t = 64)]
    flows: u16,
}

fn frame(src: u8, dst: u8, sport: u16, size: usize) -> Vec<u8> {
    let size = size.clamp(42, datapath::packet::MAX_FRAME);
    let mut f = vec![0u8; size];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (size - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, src]);
    f[30..34].copy_from_slice(&[10, 0, 0, dst]);
    let mut sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

/// Runs the demo until `args.seconds` pass.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (dp, ports) = bridge()?;
    println!(
        "vswitchd: hosts 02:00:00:00:00:0{{1..4}} on ports 1..4; traffic 1<->2, 3<->4, {} flows each, {} B frames",
        args.flows, args.frame_size
    );
    // Prime each port with frames from its host to its partner.
    for (i, p) in ports.iter().enumerate() {
        let src = i as u8 + 1;
        let dst = if src % 2 == 1 { src + 1 } else { src - 1 };
        p.inject(
            (0..2048u16).map(|n| frame(src, dst, 1024 + n % args.flows.max(1), args.frame_size)),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut pmd = dp.new_pmd();
    let counters = pmd.counters();
    let pmd_stop = stop.clone();
    let pmd_thread = std::thread::Builder::new()
        .name("pmd0".into())
        .spawn(move || {
            while !pmd_stop.load(Ordering::Relaxed) {
                if pmd.poll_once() == 0 {
                    std::thread::yield_now();
                }
            }
        })?;
    let hosts = spawn_hosts(ports.clone(), stop.clone())?;
    let start = Instant::now();
    report_every_second(&counters, args.seconds);
    stop.store(true, Ordering::Relaxed);
    pmd_thread
        .join()
        .map_err(|_| anyhow::anyhow!("pmd thread panicked"))?;
    hosts
        .join()
        .map_err(|_| anyhow::anyhow!("hosts thread panicked"))?;
    println!(
        "\nfdb-show br0 (after {:.1}s):",
        start.elapsed().as_secs_f64()
    );
    print_summary(&dp, &ports, &counters);
    Ok(())
}

/// Bridge `br0`: a datapath with four in-memory trunk ports and `actions=normal`.
fn bridge() -> anyhow::Result<(Datapath, Vec<Arc<MemPort>>)> {
    let (dp, _packet_in) = Datapath::new(DatapathConfig::default());
    let ports: Vec<Arc<MemPort>> = (1..=4)
        .map(|i| Arc::new(MemPort::new(format!("br0-p{i}"), 8192)))
        .collect();
    for (i, p) in ports.iter().enumerate() {
        let trunk = VlanMode::Trunk {
            allowed: VlanSet::all(),
            native: Some(VlanId(0)),
        };
        dp.add_port(PortNo(i as u32 + 1), p.clone() as Arc<dyn Port>, trunk)
            .context("adding port")?;
    }
    let normal = FlowSpec {
        table: TableId(0),
        priority: 0,
        key: FlowKey::ZERO,
        mask: FlowKey::ZERO,
        cookie: 0,
        idle_timeout_s: 0,
        hard_timeout_s: 0,
        send_flow_removed: false,
        instructions: Instructions::actions(vec![Action::Normal]),
    };
    dp.flow_mods(&[FlowMod::Add {
        spec: normal,
        check_overlap: false,
    }])
    .context("installing actions=normal")?;
    println!("vswitchd: bridge br0, 4 in-memory ports, table 0: \"priority=0,actions=normal\"");
    Ok((dp, ports))
}

/// The hosts: whatever a port sent is handed back to the host that originally sent it.
fn spawn_hosts(
    ports: Vec<Arc<MemPort>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("hosts".into())
        .spawn(move || {
            let mut q: VecDeque<PacketBuf> = VecDeque::new();
            let mut back: Vec<VecDeque<PacketBuf>> = (0..4).map(|_| VecDeque::new()).collect();
            while !stop.load(Ordering::Relaxed) {
                for p in &ports {
                    p.drain_bufs(&mut q);
                }
                for b in q.drain(..) {
                    let src = b.data().get(11).copied().unwrap_or(1).clamp(1, 4) as usize;
                    back[src - 1].push_back(b);
                }
                for (p, b) in ports.iter().zip(back.iter_mut()) {
                    p.inject_bufs(b);
                }
                std::thread::sleep(Duration::from_micros(50));
            }
        })
}

/// Prints the receive rate and lookup counters once a second for `seconds` (0: forever).
fn report_every_second(counters: &PmdCounters, seconds: u64) {
    let mut last = (Instant::now(), 0u64);
    let mut sec = 0;
    while seconds == 0 || sec < seconds {
        std::thread::sleep(Duration::from_secs(1));
        sec += 1;
        let rx = counters.rx_packets.get();
        let dt = last.0.elapsed().as_secs_f64();
        println!(
            "t={:>3}s  rx {:>8.3} Mpps  emc_hit {} megaflow_hit {} slow_path {} drops {}",
            sec,
            (rx - last.1) as f64 / dt / 1e6,
            counters.emc_hit.get(),
            counters.megaflow_hit.get(),
            counters.slow_path.get(),
            counters.total_drops()
        );
        last = (Instant::now(), rx);
    }
}

/// The MAC table, port counters and poll-thread counters at the end.
fn print_summary(dp: &Datapath, ports: &[Arc<MemPort>], counters: &PmdCounters) {
    println!(" port  VLAN  MAC                Age");
    let now_s = (dp.now_ns() / 1_000_000_000) as u32;
    let mut macs = dp.mac_table().entries(now_s);
    macs.sort_by_key(|e| e.port);
    for e in macs {
        println!(
            "{:>5}  {:>4}  {}  {:>3}",
            e.port.0, e.vlan.0, e.mac, e.age_s
        );
    }
    println!("\ndump-ports br0:");
    for (i, p) in ports.iter().enumerate() {
        let s = p.stats();
        println!(
            "  port {}: rx pkts={} bytes={} drop={}  tx pkts={} bytes={} drop={}",
            i + 1,
            s.rx_packets,
            s.rx_bytes,
            s.rx_dropped,
            s.tx_packets,
            s.tx_bytes,
            s.tx_dropped
        );
    }
    println!("\npmd-stats:");
    println!("  packets received: {}", counters.rx_packets.get());
    println!(
        "  emc hits: {}  megaflow hits: {}  slow path: {}",
        counters.emc_hit.get(),
        counters.megaflow_hit.get(),
        counters.slow_path.get()
    );
    for r in DropReason::ALL {
        let n = counters.drops_for(r);
        if n > 0 {
            println!("  {}: {}", r.name(), n);
        }
    }
}
