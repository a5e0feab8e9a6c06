//! os-ken (the maintained Ryu) drives the switch over OpenFlow 1.3: the learning switch of
//! `examples/learning_switch_osken.py`, run by `osken-manager` as its header shows, programs
//! an empty (secure) bridge from packet-ins with exactly the flows the gRPC example
//! controller writes in `controller.rs`, on in-memory ports. The controller is killed and restarted: the
//! switch keeps its flows and forwarding, reconnects by itself, and reports both on the
//! gRPC stream and in the bridge's controller status.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use common::in_process::Daemon;
use common::pyvenv::openflow_venv;
use proto::flow_text::format_flow;
use proto::v1::switch_client::SwitchClient;
use proto::v1::{self, entity, stream_message_request as smq, stream_message_response as smr};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `osken-manager` with the example learning switch, listening on 127.0.0.1:`port`.
fn osken(venv: &Path, port: u16, log: &Path) -> Kill {
    let log = std::fs::File::create(log).expect("os-ken log");
    Kill(
        Command::new(venv.join("bin/osken-manager"))
            .args(["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port"])
            .arg(port.to_string())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/learning_switch_osken.py"
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting osken-manager"),
    )
}

fn frame(src: u8, dst: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    f[14] = src;
    f
}

fn host(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

async fn wait_for<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn flows(c: &SwitchClient<Channel>) -> Vec<String> {
    let mut c = c.clone();
    let mut s = c
        .read(v1::ReadRequest {
            bridge: "lsw".into(),
            filters: vec![],
        })
        .await
        .expect("read")
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.message().await.expect("read stream") {
        for e in r.entities {
            if let Some(entity::Entity::Flow(f)) = e.entity {
                out.push(format_flow(&f));
            }
        }
    }
    out.sort();
    out
}

async fn status(c: &SwitchClient<Channel>) -> v1::ControllerStatus {
    let mut c = c.clone();
    let b = c
        .get_bridge(v1::GetBridgeRequest { name: "lsw".into() })
        .await
        .expect("get bridge")
        .into_inner()
        .bridge
        .expect("bridge");
    b.controller_status.into_iter().next().expect("a status")
}

/// The next controller connect/disconnect event on the stream.
async fn controller_event(
    events: &mut tonic::Streaming<v1::StreamMessageResponse>,
) -> v1::ControllerConnection {
    let deadline = Duration::from_secs(20);
    loop {
        let m = tokio::time::timeout(deadline, events.message())
            .await
            .expect("a controller event within 20 s")
            .expect("stream")
            .expect("stream open");
        if let Some(smr::Update::Controller(c)) = m.update {
            return c;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osken_learning_switch_programs_the_bridge_and_reconnects() {
    let venv = openflow_venv();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    let ports = d.secure_bridge(&mut c, "lsw", &["h1", "h2", "h3"]).await;
    // Watch the bridge's events (a secondary stream changes nothing).
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tx.send(v1::StreamMessageRequest {
        update: Some(smq::Update::Arbitration(v1::Arbitration {
            bridge: "lsw".into(),
            role: v1::Role::Secondary as i32,
            election_id: 0,
        })),
    })
    .await
    .unwrap();
    let mut events = c
        .stream(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();

    let port = free_port();
    let log = dir.path().join("osken.log");
    let ctl = osken(&venv, port, &log);
    let target = format!("tcp:127.0.0.1:{port}");
    c.set_controller(v1::SetControllerRequest {
        bridge: "lsw".into(),
        controllers: vec![v1::Controller {
            target: target.clone(),
            max_backoff_ms: 1000,
            ..Default::default()
        }],
    })
    .await
    .unwrap();
    let ev = controller_event(&mut events).await;
    assert!(ev.connected && ev.target == target, "{ev:?}");
    assert_eq!(ev.remote, format!("127.0.0.1:{port}"));
    // os-ken's table-miss flow.
    wait_for("the table-miss flow", 20, async || {
        flows(&c)
            .await
            .contains(&"priority=0 actions=CONTROLLER:65535".to_string())
            .then_some(())
    })
    .await;

    // h1 -> h2: unknown destination, flooded to h2 and h3 by a packet-out.
    ports[0].inject([frame(1, host(2))]);
    let got = wait_for("the flood to h2", 10, async || {
        let a = ports[1].drain();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(got, vec![frame(1, host(2))]);
    wait_for("the flood to h3", 10, async || {
        (!ports[2].drain().is_empty()).then_some(())
    })
    .await;
    // h2 -> h1: known destination: a flow, and the packet to h1 only.
    ports[1].inject([frame(2, host(1))]);
    let got = wait_for("h2 -> h1", 10, async || {
        let a = ports[0].drain();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(got, vec![frame(2, host(1))]);
    assert!(ports[2].drain().is_empty(), "h2 -> h1 must not flood");
    // h1 -> h2 again: learned both ways.
    ports[0].inject([frame(1, host(2))]);
    wait_for("h1 -> h2", 10, async || {
        (!ports[1].drain().is_empty()).then_some(())
    })
    .await;
    let want = vec![
        "priority=0 actions=CONTROLLER:65535".to_string(),
        "priority=10,dl_dst=02:00:00:00:00:01 actions=output:1".to_string(),
        "priority=10,dl_dst=02:00:00:00:00:02 actions=output:2".to_string(),
    ];
    let got = wait_for("both learned flows", 10, async || {
        let f = flows(&c).await;
        (f.len() == want.len()).then_some(f)
    })
    .await;
    assert_eq!(got, want);
    let st = status(&c).await;
    assert!(st.is_connected, "{st:?}");
    assert_eq!(st.role, v1::Role::Equal as i32);
    assert!(st.packet_in_sent >= 3, "{st:?}");
    assert_eq!(st.packet_in_dropped, 0, "{st:?}");

    // The controller goes away: the switch says so, keeps its flows (secure) and keeps
    // forwarding what they cover.
    drop(ctl);
    let ev = controller_event(&mut events).await;
    assert!(!ev.connected && !ev.error.is_empty(), "{ev:?}");
    let st = status(&c).await;
    assert!(!st.is_connected && !st.last_error.is_empty(), "{st:?}");
    assert_eq!(flows(&c).await, want);
    ports[1].inject([frame(2, host(1))]);
    wait_for("h2 -> h1 without a controller", 10, async || {
        (!ports[0].drain().is_empty()).then_some(())
    })
    .await;

    // Back on the same port: the switch reconnects by itself (back-off at most 1 s).
    let _ctl = osken(&venv, port, &log);
    let ev = controller_event(&mut events).await;
    assert!(ev.connected, "{ev:?}");
    wait_for("the status to say connected", 10, async || {
        status(&c).await.is_connected.then_some(())
    })
    .await;
    assert_eq!(flows(&c).await, want);

    d.stop().await;
}
