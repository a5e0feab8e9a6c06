//! The daemon in-process: a `Switch` on a temporary store, serving the real gRPC API on a
//! real unix socket, for tests that also reach into the switch (its in-memory ports, its
//! datapath counters).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datapath::port::MemPort;
use proto::v1::{self, switch_client::SwitchClient};
use tokio::sync::oneshot;
use tonic::transport::Channel;
use vswitchd::server::{self, Listen};
use vswitchd::store::Store;
use vswitchd::switch::{Switch, SwitchConfig};

/// A switch with its store in a directory and its API on `DIR/api.sock`.
pub struct Daemon {
    pub sw: Arc<Switch>,
    pub sock: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Daemon {
    /// Opens the store `DIR/conf.db`, starts the switch and serves `DIR/api.sock`.
    pub async fn start(dir: &Path) -> Daemon {
        let store = Store::open(&dir.join("conf.db")).expect("store");
        let sw = Switch::start(store, SwitchConfig::default()).expect("switch");
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

    /// A client on the API socket.
    pub async fn client(&self) -> SwitchClient<Channel> {
        // The socket file appears at bind(), a moment before listen(): retry briefly.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match vswitchd::client::connect_unix(&self.sock).await {
                Ok(c) => return c,
                Err(e) if Instant::now() >= deadline => panic!("connect: {e:?}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Stops serving (the server must end cleanly) and shuts the switch down.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("serve");
        }
        self.sw.shutdown();
    }

    /// Adds bridge `bridge` in secure mode (it starts with no flow; standalone would start
    /// with NORMAL) with in-memory ports `ports`, numbered from 1; returns the ports.
    pub async fn secure_bridge(
        &self,
        c: &mut SwitchClient<Channel>,
        bridge: &str,
        ports: &[&str],
    ) -> Vec<Arc<MemPort>> {
        c.add_bridge(v1::AddBridgeRequest {
            name: bridge.into(),
            fail_mode: v1::FailMode::Secure as i32,
            ..Default::default()
        })
        .await
        .expect("add bridge");
        for (i, name) in ports.iter().enumerate() {
            c.add_port(v1::AddPortRequest {
                bridge: bridge.into(),
                port: Some(v1::PortConfig {
                    name: name.to_string(),
                    r#type: "memory".into(),
                    requested_ofport: Some(i as u32 + 1),
                    ..Default::default()
                }),
            })
            .await
            .expect("add port");
        }
        ports
            .iter()
            .map(|n| self.sw.memory_port(bridge, n).expect("memory port"))
            .collect()
    }
}
