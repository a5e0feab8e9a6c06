//! End-to-end tests of the real `flowctl` binary against a scripted in-process switch (a
//! `switch_server::Switch` implementation that records what it is sent) over a real unix
//! socket. They pin the behaviour the daemon's integration tests rely on: add-flows
//! batching, failure reporting with `FILE:LINE` and acknowledged counts, exit codes, the
//! dump-flows round trip, monitor --count, JSON output. The real daemon is not needed.

// Test code: the mock's helpers outside `#[test]` functions may panic too.
#![allow(clippy::unwrap_used)]

mod add_flows;
mod commands;
mod mock;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proto::v1::switch_server::SwitchServer;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use mock::{Mock, State};

/// A mock switch on its own runtime, listening on a fresh unix socket.
struct Harness {
    state: Arc<Mutex<State>>,
    server: String,
    dir: PathBuf,
    _runtime: tokio::runtime::Runtime,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn tls_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

impl Harness {
    fn start() -> Harness {
        Harness::start_with(false)
    }

    /// A switch on 127.0.0.1 over TLS that requires a client certificate signed by the
    /// test CA (`tests/tls/`).
    fn start_tls() -> Harness {
        Harness::start_with(true)
    }

    fn start_with(tls: bool) -> Harness {
        let dir = std::env::temp_dir().join(format!(
            "flowctl-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mock = Mock::default();
        let state = mock.0.clone();
        let _guard = runtime.enter();
        let server = if tls {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let read = |f: &str| std::fs::read(tls_file(f)).unwrap();
            let config = tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(
                    read("server.pem"),
                    read("server.key"),
                ))
                .client_ca_root(tonic::transport::Certificate::from_pem(read("ca.pem")));
            runtime.spawn(async move {
                tonic::transport::Server::builder()
                    .tls_config(config)
                    .unwrap()
                    .add_service(SwitchServer::new(mock))
                    .serve_with_incoming(TcpListenerStream::new(listener))
                    .await
                    .unwrap();
            });
            format!("https://localhost:{port}")
        } else {
            let socket = dir.join("switch.sock");
            let listener = tokio::net::UnixListener::bind(&socket).unwrap();
            runtime.spawn(async move {
                tonic::transport::Server::builder()
                    .add_service(SwitchServer::new(mock))
                    .serve_with_incoming(UnixListenerStream::new(listener))
                    .await
                    .unwrap();
            });
            format!("unix:{}", socket.display())
        };
        drop(_guard);
        Harness {
            state,
            server,
            dir,
            _runtime: runtime,
        }
    }

    fn server(&self) -> String {
        self.server.clone()
    }

    fn flowctl(&self, args: &[&str]) -> Output {
        self.flowctl_stdin(args, None)
    }

    fn flowctl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
            .arg("--server")
            .arg(self.server())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = stdin.unwrap_or("").to_string();
        let mut pipe = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    fn write_file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn flows_text(n: usize) -> String {
    let mut s = String::from("# generated\n");
    for i in 0..n {
        s.push_str(&format!(
            "table=0,priority={},ip,nw_dst=10.{}.{}.{},actions=output:{}\n",
            i % 60000 + 1,
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255,
            i % 4 + 1
        ));
    }
    s
}
