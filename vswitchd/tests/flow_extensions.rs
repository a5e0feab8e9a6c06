//! Conjunctive matches and `controller(...)` arguments through the daemon's gRPC API: flows
//! written as text, real frames on memory ports, what leaves which port, what the event
//! stream's packet-ins carry, and what a read gives back.
#![allow(clippy::unwrap_used)] // a test crate: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::flow_text::{format_flow, parse_flow};
use proto::v1::switch_client::SwitchClient;
use proto::v1::{
    self, entity, stream_message_request as smq, stream_message_response as smr, update,
};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use vswitchd::server::{self, Listen};
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

/// The daemon in this process, serving gRPC on a unix socket in `dir`.
struct Daemon {
    sw: Arc<Switch>,
    sock: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    async fn start(dir: &Path) -> Daemon {
        let store = Store::open(&dir.join("conf.db")).unwrap();
        let sw = Switch::start(store, SwitchConfig::default()).unwrap();
        let sock = dir.join("api.sock");
        let (tx, rx) = oneshot::channel::<()>();
        let listen = vec![Listen::Unix(sock.clone())];
        let sw2 = Arc::clone(&sw);
        let task = tokio::spawn(async move {
            let listeners = server::bind(&listen, None, server::Limits::default()).await?;
            server::serve(sw2, listeners, async {
                let _ = rx.await;
            })
            .await
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "daemon socket never appeared");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Daemon {
            sw,
            sock,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn client(&self) -> SwitchClient<Channel> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match vswitchd::client::connect_unix(&self.sock).await {
                Ok(c) => return c,
                Err(e) if Instant::now() >= deadline => panic!("connect: {e:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
        self.sw.shutdown();
    }
}

async fn add_flows(c: &mut SwitchClient<Channel>, texts: &[&str]) -> Result<(), tonic::Status> {
    let updates = texts
        .iter()
        .map(|t| v1::Update {
            r#type: update::Type::Insert as i32,
            entity: Some(v1::Entity {
                entity: Some(entity::Entity::Flow(parse_flow(t).unwrap())),
            }),
        })
        .collect();
    c.write(v1::WriteRequest {
        bridge: "br0".into(),
        updates,
        atomicity: v1::Atomicity::AllOrNone as i32,
    })
    .await
    .map(|_| ())
}

async fn add_memory_port(c: &mut SwitchClient<Channel>, name: &str, no: u32) {
    c.add_port(v1::AddPortRequest {
        bridge: "br0".into(),
        port: Some(v1::PortConfig {
            name: name.into(),
            r#type: "memory".into(),
            requested_ofport: Some(no),
            ..Default::default()
        }),
    })
    .await
    .unwrap();
}

async fn flow_texts(c: &mut SwitchClient<Channel>) -> Vec<String> {
    let mut s = c
        .read(v1::ReadRequest {
            bridge: "br0".into(),
            filters: vec![v1::ReadFilter {
                filter: Some(v1::read_filter::Filter::Flows(v1::FlowFilter::default())),
            }],
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.message().await.unwrap() {
        for e in r.entities {
            if let Some(entity::Entity::Flow(f)) = e.entity {
                out.push(format_flow(&f));
            }
        }
    }
    out.sort();
    out
}

/// A 60-byte UDP frame from 10.0.0.`src` to port `dport`.
fn udp(src: u8, dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 0xee]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, src]);
    f[30..34].copy_from_slice(&[10, 0, 1, 1]);
    let mut sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f[34..36].copy_from_slice(&1000u16.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f
}

/// Waits until port `name` has sent `n` frames; returns them.
async fn drain(d: &Daemon, name: &str, n: usize) -> Vec<Vec<u8>> {
    let p = d.sw.memory_port("br0", name).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < n {
        got.extend(p.drain());
        assert!(
            Instant::now() < deadline,
            "{name} sent {} of {n}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conjunctive_firewall_written_through_the_api_forwards_what_it_allows() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    for (name, no) in [("p1", 1), ("p2", 2), ("p3", 3)] {
        add_memory_port(&mut c, name, no).await;
    }
    let flows = [
        "priority=100,ip,nw_src=10.0.0.1 actions=conjunction(7,1/2)",
        "priority=100,ip,nw_src=10.0.0.2 actions=conjunction(7,1/2)",
        "priority=100,udp,tp_dst=80 actions=conjunction(7,2/2)",
        "priority=100,udp,tp_dst=443 actions=conjunction(7,2/2)",
        "priority=100,conj_id=7 actions=output:2",
        "priority=1 actions=output:3",
    ];
    add_flows(&mut c, &flows).await.unwrap();
    // What a read gives back is what was written (and the bridge's own default flow).
    let mut want: Vec<String> = flows.iter().map(|s| s.to_string()).collect();
    want.push("priority=0 actions=NORMAL".into());
    want.sort();
    assert_eq!(flow_texts(&mut c).await, want);

    let p1 = d.sw.memory_port("br0", "p1").unwrap();
    let cases: Vec<(u8, u16)> = (0..33)
        .map(|i| ((i % 4) as u8 + 1, [80, 443, 22][i % 3]))
        .collect();
    let frames: Vec<Vec<u8>> = cases.iter().map(|&(s, p)| udp(s, p)).collect();
    p1.inject(frames.iter().cloned());
    let allowed = cases.iter().filter(|&&(s, p)| s <= 2 && p != 22).count();
    let mut got = drain(&d, "p2", allowed).await;
    let rest = drain(&d, "p3", cases.len() - allowed).await;
    let mut want: Vec<Vec<u8>> = cases
        .iter()
        .filter(|&&(s, p)| s <= 2 && p != 22)
        .map(|&(s, p)| udp(s, p))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(rest.len(), cases.len() - allowed);

    // A clause with another action (which the text parser already refuses) is refused
    // through the API too.
    let mut f = parse_flow("ip,actions=conjunction(8,1/2)").unwrap();
    let extra = parse_flow("actions=output:1").unwrap().instructions;
    let (
        Some(v1::instruction::Instruction::ApplyActions(a)),
        Some(v1::instruction::Instruction::ApplyActions(b)),
    ) = (&mut f.instructions[0].instruction, &extra[0].instruction)
    else {
        panic!("apply-actions");
    };
    a.actions.extend(b.actions.iter().cloned());
    let e = c
        .write(v1::WriteRequest {
            bridge: "br0".into(),
            updates: vec![v1::Update {
                r#type: update::Type::Insert as i32,
                entity: Some(v1::Entity {
                    entity: Some(entity::Entity::Flow(f)),
                }),
            }],
            atomicity: v1::Atomicity::AllOrNone as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("note"), "{e:?}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_in_carries_the_reason_id_and_userdata_of_its_flow() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(v1::StreamMessageRequest {
        update: Some(smq::Update::Arbitration(v1::Arbitration {
            bridge: "br0".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut s = c
        .stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    add_memory_port(&mut c, "p1", 1).await;
    add_flows(
        &mut c,
        &["priority=10,udp,tp_dst=80 actions=controller(reason=invalid_ttl,max_len=20,id=0,userdata=01.02.03.04.05),controller(id=9,userdata=ff)"],
    )
    .await
    .unwrap();
    let p1 = d.sw.memory_port("br0", "p1").unwrap();
    p1.inject([udp(1, 80)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pis = Vec::new();
    while pis.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, s.message())
            .await
            .expect("timed out waiting for packet-ins")
            .unwrap()
            .unwrap();
        if let Some(smr::Update::PacketIn(p)) = m.update {
            pis.push(p);
        }
    }
    pis.sort_by_key(|p| p.controller_id);
    assert_eq!(pis[0].reason, v1::PacketInReason::InvalidTtl as i32);
    assert_eq!(pis[0].userdata, vec![1, 2, 3, 4, 5]);
    assert_eq!(pis[0].data.len(), 20);
    assert_eq!(pis[1].controller_id, 9);
    assert_eq!(pis[1].userdata, vec![0xff]);
    assert_eq!(pis[1].reason, v1::PacketInReason::Action as i32);
    d.stop().await;
}
