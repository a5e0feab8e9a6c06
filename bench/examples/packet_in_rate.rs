//! Packet-ins to a fast controller, for bench/README.md:
//!
//! ```sh
//! cargo run --release -p bench --example packet_in_rate -- [SECONDS] [RATE_LIMIT]
//! ```
//!
//! An in-process switch (bridge `b`, in-memory ports 1 to 3; `priority=10,in_port=2,
//! actions=output:3` and a table-miss flow `priority=0,actions=CONTROLLER`) connects to
//! this program as its controller (`tcp:127.0.0.1:PORT`, a primary connection, optionally
//! with `controller_rate_limit`), which counts the PACKET_INs it reads, as fast as it can.
//! Two phases of SECONDS each: other traffic alone (port 2 to port 3), then the same with a
//! flood of misses into port 1 at once. Prints the packet-ins per second the controller
//! received, what the switch counted as sent and dropped (rate limit, or the connection
//! falling behind) and what the datapath shed before that (its packet-in queue full), and
//! the forwarding rate of the other traffic in both phases.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datapath::stats::DropReason;
use proto::openflow::header::{self, MsgType, Version};
use proto::openflow::hello::{Hello, VersionSet};
use proto::v1;
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

fn frame(src: u8, dst: u8) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    f
}

fn insert(text: &str) -> v1::Update {
    v1::Update {
        r#type: v1::update::Type::Insert as i32,
        entity: Some(v1::Entity {
            entity: Some(v1::entity::Entity::Flow(
                proto::flow_text::parse_flow(text).expect("flow"),
            )),
        }),
    }
}

/// The controller: HELLO, then counts PACKET_INs until `stop`.
fn controller(l: TcpListener, count: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let (mut s, _) = l.accept().expect("the switch connects");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut hello = Vec::new();
    Hello::emit_ours(VersionSet::of(&[Version::V1_3]), 1, &mut hello).expect("hello");
    s.write_all(&hello).expect("hello");
    let mut buf = vec![0u8; 4 << 20];
    let mut filled = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = match s.read(&mut buf[filled..]) {
            Ok(0) => return,
            Ok(n) => n,
            Err(_) => continue,
        };
        filled += n;
        let mut pos = 0;
        let mut ins = 0;
        while let Ok(Some(len)) = header::frame_len(&buf[pos..filled]) {
            if buf[pos + 1] == MsgType::PACKET_IN.0 {
                ins += 1;
            } else if buf[pos + 1] == MsgType::ECHO_REQUEST.0 {
                let mut r = buf[pos..pos + len].to_vec();
                r[1] = MsgType::ECHO_REPLY.0;
                let _ = s.write_all(&r);
            }
            pos += len;
        }
        count.fetch_add(ins, Ordering::Relaxed);
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
}

/// Injects into port 2 and drains port 3 for `secs` (and floods port 1 when `flood`);
/// returns (frames forwarded 2 -> 3, misses injected into port 1).
fn run(sw: &Switch, secs: f64, flood: bool) -> (u64, u64) {
    let p1 = sw.memory_port("b", "p1").expect("p1");
    let p2 = sw.memory_port("b", "p2").expect("p2");
    let p3 = sw.memory_port("b", "p3").expect("p3");
    let miss = frame(1, 9);
    let other = frame(2, 3);
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood.then(|| {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += p1.inject(std::iter::repeat_n(miss.clone(), 32)) as u64;
                std::thread::yield_now();
            }
            n
        })
    });
    let t0 = Instant::now();
    let mut fwd = 0u64;
    while t0.elapsed().as_secs_f64() < secs {
        p2.inject(std::iter::repeat_n(other.clone(), 32));
        fwd += p3.drain().len() as u64;
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(50));
    fwd += p3.drain().len() as u64;
    let injected = flooder.map_or(0, |h| h.join().expect("flooder"));
    (fwd, injected)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().map_or(5.0, |s| s.parse().expect("SECONDS"));
    let limit: u32 = args.next().map_or(0, |s| s.parse().expect("RATE_LIMIT"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("conf.db")).expect("store");
    let sw = Switch::start(store, SwitchConfig::default()).expect("switch");
    sw.add_bridge(v1::AddBridgeRequest {
        name: "b".into(),
        fail_mode: v1::FailMode::Secure as i32,
        ..Default::default()
    })
    .expect("bridge");
    for i in 1..=3u32 {
        sw.add_port(v1::AddPortRequest {
            bridge: "b".into(),
            port: Some(v1::PortConfig {
                name: format!("p{i}"),
                r#type: "memory".into(),
                requested_ofport: Some(i),
                ..Default::default()
            }),
        })
        .expect("port");
    }
    sw.write(v1::WriteRequest {
        bridge: "b".into(),
        updates: vec![
            insert("priority=10,in_port=2,actions=output:3"),
            insert("priority=0,actions=CONTROLLER"),
        ],
        atomicity: v1::Atomicity::AllOrNone as i32,
    })
    .expect("flows");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    rt.spawn(vswitchd::openflow::serve(Arc::clone(&sw), None, stop_rx));
    let l = TcpListener::bind("127.0.0.1:0").expect("listen");
    let target = format!("tcp:{}", l.local_addr().expect("addr"));
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ctl = {
        let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
        std::thread::spawn(move || controller(l, received, stop))
    };
    sw.set_controller(v1::SetControllerRequest {
        bridge: "b".into(),
        controllers: vec![v1::Controller {
            target: target.clone(),
            controller_rate_limit: limit,
            ..Default::default()
        }],
    })
    .expect("controller");
    while !sw.get_bridge("b").expect("bridge").controller_status[0].is_connected {
        std::thread::sleep(Duration::from_millis(10));
    }

    let (alone, _) = run(&sw, secs, false);
    let before = received.load(Ordering::Relaxed);
    let (with_flood, injected) = run(&sw, secs, true);
    std::thread::sleep(Duration::from_millis(500));
    let got = received.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    let st = sw.get_bridge("b").expect("bridge").controller_status[0].clone();
    let dp = sw.datapath("b").expect("datapath");
    let shed: u64 = dp
        .pmd_counters()
        .iter()
        .map(|c| c.drops[DropReason::PacketInQueueFull as usize].get())
        .sum();
    println!(
        "rate_limit={limit} seconds={secs} misses_injected={injected} datapath_shed={shed} \
         switch_sent={} switch_dropped={} controller_received={got} packet_ins_per_s={:.0}",
        st.packet_in_sent,
        st.packet_in_dropped,
        got as f64 / secs
    );
    println!(
        "other traffic: alone={:.0} pkt/s with_flood={:.0} pkt/s ratio={:.2}",
        alone as f64 / secs,
        with_flood as f64 / secs,
        with_flood as f64 / alone.max(1) as f64
    );
    drop(ctl);
    sw.shutdown();
}
