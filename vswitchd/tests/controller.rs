//! The example SDN controller (`examples/learning_controller.rs`, run as its own process)
//! programs an empty bridge purely from packet-in events, end to end on in-memory ports.

mod common;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::in_process::Daemon;
use proto::flow_text::format_flow;
use proto::v1::{self, entity};

fn example_binary() -> std::path::PathBuf {
    // target/<profile>/deps/<test> -> target/<profile>/examples/learning_controller
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join("examples").join("learning_controller");
    assert!(
        p.exists(),
        "{} is missing: `cargo test` builds examples; run `cargo build --examples -p vswitchd`",
        p.display()
    );
    p
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn frame(src: u8, dst: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&0x88b5u16.to_be_bytes()); // local experimental ethertype
    f[14] = src;
    f
}

fn host(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learning_controller_programs_an_empty_table_from_packet_ins() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path()).await;
    let mut c = d.client().await;
    let ports = d.secure_bridge(&mut c, "lsw", &["h1", "h2", "h3"]).await;

    let _ctl = Kill(
        Command::new(example_binary())
            .arg(&d.sock)
            .arg("lsw")
            .spawn()
            .expect("starting the controller"),
    );
    // The controller's table-miss flow appears.
    let read = |c: &mut proto::v1::switch_client::SwitchClient<tonic::transport::Channel>| {
        let mut c = c.clone();
        async move {
            let mut s = c
                .read(v1::ReadRequest {
                    bridge: "lsw".into(),
                    filters: vec![],
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
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while read(&mut c).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "controller never installed its miss flow"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // h1 -> h2: unknown destination, flooded to h2 and h3 by packet-out.
    ports[0].inject([frame(1, host(2))]);
    let got = wait_for("the flood", || {
        let a = ports[1].drain();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(got, vec![frame(1, host(2))]);
    wait_for("the flood on h3", || {
        (!ports[2].drain().is_empty()).then_some(())
    })
    .await;

    // h2 -> h1: known destination: a flow is installed and the packet goes to h1 only.
    ports[1].inject([frame(2, host(1))]);
    let got = wait_for("h2 -> h1", || {
        let a = ports[0].drain();
        (!a.is_empty()).then_some(a)
    })
    .await;
    assert_eq!(got, vec![frame(2, host(1))]);

    // h1 -> h2 again: h2 is now known too.
    ports[0].inject([frame(1, host(2))]);
    wait_for("h1 -> h2", || (!ports[1].drain().is_empty()).then_some(())).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let flows = loop {
        let f = read(&mut c).await;
        if f.len() == 3 || Instant::now() > deadline {
            break f;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        flows,
        vec![
            "priority=0 actions=CONTROLLER:65535".to_string(),
            "priority=10,dl_dst=02:00:00:00:00:01 actions=output:1".to_string(),
            "priority=10,dl_dst=02:00:00:00:00:02 actions=output:2".to_string(),
        ]
    );
    // Now h3 -> h1 is switched by the installed flow, with no packet-in: the datapath's
    // slow path handles it, and nothing floods to h2.
    let packet_ins_before = d.sw.datapath("lsw").unwrap().pmd_counters()[0]
        .slow_path
        .get();
    ports[2].inject([frame(3, host(1))]);
    wait_for("h3 -> h1", || (!ports[0].drain().is_empty()).then_some(())).await;
    assert!(ports[1].drain().is_empty());
    assert!(
        d.sw.datapath("lsw").unwrap().pmd_counters()[0]
            .slow_path
            .get()
            > packet_ins_before
    );

    d.stop().await;
}
