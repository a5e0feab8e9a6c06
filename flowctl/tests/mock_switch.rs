//! End-to-end tests of the real `flowctl` binary against a scripted in-process switch (a
//! `switch_server::Switch` implementation that records what it is sent) over a real unix
//! socket. They pin the behaviour the daemon's integration tests rely on: add-flows
//! batching, failure reporting with `FILE:LINE` and acknowledged counts, exit codes, the
//! dump-flows round trip, monitor --count, JSON output. The real daemon is not needed.

// Test code: the mock's helpers outside `#[test]` functions may panic too.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message as _;
use proto::flow_text::parse_flow;
use proto::v1::switch_server::{Switch, SwitchServer};
use proto::v1::*;
use tokio_stream::Stream;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream, UnixListenerStream};
use tonic::{Request, Response, Status, Streaming};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// What the scripted switch saw and how it misbehaves.
#[derive(Default)]
struct State {
    /// Flows per bridge, in insertion order.
    flows: Vec<(String, Flow)>,
    /// Updates per Write request.
    batches: Vec<usize>,
    /// Fail the Write with this 0-based index with UNAVAILABLE (the daemon "dies").
    die_at_write: Option<usize>,
    /// Stream arbitrations received.
    arbitrations: Vec<String>,
    /// Packet-outs received.
    packet_outs: Vec<PacketOut>,
}

#[derive(Clone, Default)]
struct Mock(Arc<Mutex<State>>);

#[tonic::async_trait]
impl Switch for Mock {
    async fn write(&self, req: Request<WriteRequest>) -> Result<Response<WriteResponse>, Status> {
        let req = req.into_inner();
        let mut st = self.0.lock().unwrap();
        let index = st.batches.len();
        st.batches.push(req.updates.len());
        if st.die_at_write == Some(index) {
            return Err(Status::unavailable("connection reset"));
        }
        // A flow with cookie 0xbad is refused (ALL_OR_NONE: the others report ABORTED).
        let bad = req.updates.iter().position(|u| {
            matches!(
                u.entity.as_ref().and_then(|e| e.entity.as_ref()),
                Some(entity::Entity::Flow(f)) if f.cookie == 0xbad
            )
        });
        if let Some(i) = bad {
            let statuses = (0..req.updates.len())
                .map(|j| UpdateStatus {
                    index: j as u32,
                    code: if j == i { 3 } else { 10 },
                    message: if j == i {
                        "bad cookie".into()
                    } else {
                        String::new()
                    },
                    field: if j == i {
                        "flow.cookie".into()
                    } else {
                        String::new()
                    },
                })
                .collect();
            let details = WriteResponse { statuses }.encode_to_vec();
            return Err(Status::with_details(
                tonic::Code::InvalidArgument,
                format!("updates[{i}].flow.cookie: bad cookie"),
                details.into(),
            ));
        }
        let mut statuses = Vec::new();
        for (j, u) in req.updates.into_iter().enumerate() {
            match u.entity.and_then(|e| e.entity) {
                Some(entity::Entity::Flow(mut f)) => {
                    f.stats = Some(FlowStats {
                        duration_ns: 1_500_000_000,
                        packet_count: 3,
                        byte_count: 180,
                        idle_ns: 0,
                    });
                    st.flows.push((req.bridge.clone(), f));
                }
                Some(entity::Entity::FlowFilter(_)) => {
                    st.flows.retain(|(b, _)| *b != req.bridge);
                }
                _ => {}
            }
            statuses.push(UpdateStatus {
                index: j as u32,
                ..Default::default()
            });
        }
        Ok(Response::new(WriteResponse { statuses }))
    }

    type ReadStream = BoxStream<ReadResponse>;

    async fn read(&self, req: Request<ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let req = req.into_inner();
        let flows: Vec<Entity> = self
            .0
            .lock()
            .unwrap()
            .flows
            .iter()
            .filter(|(b, _)| *b == req.bridge)
            .map(|(_, f)| Entity {
                entity: Some(entity::Entity::Flow(f.clone())),
            })
            .collect();
        // Several chunks, as a large dump would come.
        let chunks: Vec<Result<ReadResponse, Status>> = flows
            .chunks(1000)
            .map(|c| {
                Ok(ReadResponse {
                    entities: c.to_vec(),
                    ports: vec![],
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    type StreamStream = BoxStream<StreamMessageResponse>;

    async fn stream(
        &self,
        req: Request<Streaming<StreamMessageRequest>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let state = self.0.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                match msg.update {
                    Some(stream_message_request::Update::Arbitration(a)) => {
                        let unknown = a.bridge != "br0";
                        state.lock().unwrap().arbitrations.push(a.bridge.clone());
                        let _ = tx
                            .send(Ok(StreamMessageResponse {
                                update: Some(stream_message_response::Update::Arbitration(
                                    ArbitrationResponse {
                                        bridge: a.bridge.clone(),
                                        role: 0,
                                        code: if unknown { 5 } else { 0 },
                                        message: if unknown {
                                            format!("no bridge {}", a.bridge)
                                        } else {
                                            String::new()
                                        },
                                    },
                                )),
                            }))
                            .await;
                        if unknown {
                            continue;
                        }
                        for ev in events() {
                            let _ = tx.send(Ok(ev)).await;
                        }
                    }
                    Some(stream_message_request::Update::PacketOut(p)) => {
                        state.lock().unwrap().packet_outs.push(p);
                    }
                    None => {}
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn add_bridge(
        &self,
        req: Request<AddBridgeRequest>,
    ) -> Result<Response<AddBridgeResponse>, Status> {
        let name = req.into_inner().name;
        if name == "br0" {
            return Err(Status::already_exists("bridge br0 already exists"));
        }
        Ok(Response::new(AddBridgeResponse {
            bridge: Some(Bridge {
                name,
                ..Default::default()
            }),
        }))
    }

    async fn del_bridge(
        &self,
        req: Request<DelBridgeRequest>,
    ) -> Result<Response<DelBridgeResponse>, Status> {
        let r = req.into_inner();
        if r.name != "br0" && !r.if_exists {
            return Err(Status::not_found(format!("no bridge {}", r.name)));
        }
        Ok(Response::new(DelBridgeResponse {}))
    }

    async fn list_bridges(
        &self,
        _: Request<ListBridgesRequest>,
    ) -> Result<Response<ListBridgesResponse>, Status> {
        Ok(Response::new(ListBridgesResponse {
            bridges: vec![
                Bridge {
                    name: "br1".into(),
                    ..Default::default()
                },
                Bridge {
                    name: "br0".into(),
                    ..Default::default()
                },
            ],
        }))
    }

    async fn get_bridge(
        &self,
        req: Request<GetBridgeRequest>,
    ) -> Result<Response<GetBridgeResponse>, Status> {
        let name = req.into_inner().name;
        Ok(Response::new(GetBridgeResponse {
            bridge: Some(Bridge {
                datapath_id: if name == "br0" { 1 } else { 2 },
                name,
                fail_mode: 0,
                n_tables: 255,
                pmd_cpus: vec![],
                ports: vec![PortDesc {
                    port_no: 1,
                    name: "p1".into(),
                    r#type: "memory".into(),
                    admin_up: true,
                    link_up: true,
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }))
    }

    async fn add_port(
        &self,
        _: Request<AddPortRequest>,
    ) -> Result<Response<AddPortResponse>, Status> {
        Err(Status::unimplemented("add_port"))
    }

    async fn del_port(
        &self,
        _: Request<DelPortRequest>,
    ) -> Result<Response<DelPortResponse>, Status> {
        Err(Status::unimplemented("del_port"))
    }

    async fn list_ports(
        &self,
        _: Request<ListPortsRequest>,
    ) -> Result<Response<ListPortsResponse>, Status> {
        Err(Status::unimplemented("list_ports"))
    }

    async fn set_port_options(
        &self,
        _: Request<SetPortOptionsRequest>,
    ) -> Result<Response<SetPortOptionsResponse>, Status> {
        Err(Status::unimplemented("set_port_options"))
    }

    async fn get_port_stats(
        &self,
        _: Request<GetPortStatsRequest>,
    ) -> Result<Response<GetPortStatsResponse>, Status> {
        Ok(Response::new(GetPortStatsResponse {
            stats: vec![PortStats {
                port_no: 1,
                name: "p1".into(),
                rx_packets: 10,
                rx_bytes: 600,
                ..Default::default()
            }],
        }))
    }

    async fn get_table_stats(
        &self,
        _: Request<GetTableStatsRequest>,
    ) -> Result<Response<GetTableStatsResponse>, Status> {
        Ok(Response::new(GetTableStatsResponse {
            stats: vec![
                TableStats {
                    table_id: 0,
                    active_count: 2,
                    lookup_count: 5,
                    matched_count: 4,
                },
                TableStats {
                    table_id: 1,
                    ..Default::default()
                },
            ],
        }))
    }

    async fn get_meter_stats(
        &self,
        _: Request<GetMeterStatsRequest>,
    ) -> Result<Response<GetMeterStatsResponse>, Status> {
        Err(Status::unimplemented("get_meter_stats"))
    }

    async fn set_pmd_cpus(
        &self,
        _: Request<proto::v1::SetPmdCpusRequest>,
    ) -> Result<Response<proto::v1::SetPmdCpusResponse>, Status> {
        Err(Status::unimplemented("set_pmd_cpus"))
    }

    async fn set_controller(
        &self,
        _: Request<proto::v1::SetControllerRequest>,
    ) -> Result<Response<proto::v1::SetControllerResponse>, Status> {
        Err(Status::unimplemented("set_controller"))
    }

    async fn set_fail_mode(
        &self,
        _: Request<proto::v1::SetFailModeRequest>,
    ) -> Result<Response<proto::v1::SetFailModeResponse>, Status> {
        Err(Status::unimplemented("set_fail_mode"))
    }

    async fn get_tunnel_neighbours(
        &self,
        _: Request<proto::v1::GetTunnelNeighboursRequest>,
    ) -> Result<Response<proto::v1::GetTunnelNeighboursResponse>, Status> {
        Err(Status::unimplemented("get_tunnel_neighbours"))
    }

    async fn get_queue_stats(
        &self,
        _: Request<proto::v1::GetQueueStatsRequest>,
    ) -> Result<Response<proto::v1::GetQueueStatsResponse>, Status> {
        Err(Status::unimplemented("get_queue_stats"))
    }

    async fn get_group_stats(
        &self,
        _: Request<GetGroupStatsRequest>,
    ) -> Result<Response<GetGroupStatsResponse>, Status> {
        Err(Status::unimplemented("get_group_stats"))
    }

    async fn get_mac_table(
        &self,
        _: Request<GetMacTableRequest>,
    ) -> Result<Response<GetMacTableResponse>, Status> {
        Err(Status::unimplemented("get_mac_table"))
    }

    async fn trace(
        &self,
        _: Request<proto::v1::TraceRequest>,
    ) -> Result<Response<proto::v1::TraceResponse>, Status> {
        Err(Status::unimplemented("trace"))
    }

    type CaptureStream = BoxStream<proto::v1::CaptureResponse>;

    async fn capture(
        &self,
        _: Request<proto::v1::CaptureRequest>,
    ) -> Result<Response<Self::CaptureStream>, Status> {
        Err(Status::unimplemented("capture"))
    }

    async fn dump_conntrack(
        &self,
        _: Request<proto::v1::DumpConntrackRequest>,
    ) -> Result<Response<proto::v1::DumpConntrackResponse>, Status> {
        Err(Status::unimplemented("dump_conntrack"))
    }

    async fn flush_conntrack(
        &self,
        _: Request<proto::v1::FlushConntrackRequest>,
    ) -> Result<Response<proto::v1::FlushConntrackResponse>, Status> {
        Err(Status::unimplemented("flush_conntrack"))
    }

    async fn get_conntrack_stats(
        &self,
        _: Request<proto::v1::GetConntrackStatsRequest>,
    ) -> Result<Response<proto::v1::GetConntrackStatsResponse>, Status> {
        Err(Status::unimplemented("get_conntrack_stats"))
    }

    async fn set_conntrack_limits(
        &self,
        _: Request<proto::v1::SetConntrackLimitsRequest>,
    ) -> Result<Response<proto::v1::SetConntrackLimitsResponse>, Status> {
        Err(Status::unimplemented("set_conntrack_limits"))
    }

    async fn get_conntrack_limits(
        &self,
        _: Request<proto::v1::GetConntrackLimitsRequest>,
    ) -> Result<Response<proto::v1::GetConntrackLimitsResponse>, Status> {
        Err(Status::unimplemented("get_conntrack_limits"))
    }

    async fn get_pmd_stats(
        &self,
        _: Request<GetPmdStatsRequest>,
    ) -> Result<Response<GetPmdStatsResponse>, Status> {
        Err(Status::unimplemented("get_pmd_stats"))
    }

    async fn clear_pmd_stats(
        &self,
        _: Request<ClearPmdStatsRequest>,
    ) -> Result<Response<ClearPmdStatsResponse>, Status> {
        Ok(Response::new(ClearPmdStatsResponse {}))
    }
}

/// The events the mock sends after a successful arbitration.
fn events() -> Vec<StreamMessageResponse> {
    use stream_message_response::Update;
    vec![
        StreamMessageResponse {
            update: Some(Update::PacketIn(PacketIn {
                bridge: "br0".into(),
                reason: PacketInReason::NoMatch as i32,
                table_id: 0,
                cookie: 0,
                r#match: parse_flow("in_port=1,actions=drop").unwrap().r#match,
                in_port: 1,
                data: vec![0xff; 60],
                total_len: 60,
            })),
        },
        StreamMessageResponse {
            update: Some(Update::MacLearned(MacLearned {
                bridge: "br0".into(),
                vlan: 0,
                mac: vec![2, 0, 0, 0, 0, 1],
                port: 1,
                port_name: "p1".into(),
            })),
        },
        StreamMessageResponse {
            update: Some(Update::PortStatus(PortStatus {
                bridge: "br0".into(),
                reason: PortStatusReason::Delete as i32,
                port: Some(PortDesc {
                    port_no: 1,
                    name: "p1".into(),
                    ..Default::default()
                }),
            })),
        },
    ]
}

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

#[test]
fn add_flows_in_batches_of_5000_and_dump_round_trip() {
    let h = Harness::start();
    let file = h.write_file("flows.txt", &flows_text(12_001));
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(h.state.lock().unwrap().batches, [5000, 5000, 2001]);

    let dump = h.flowctl(&["dump-flows", "br0"]);
    assert_eq!(dump.status.code(), Some(0), "{}", stderr(&dump));
    let text = stdout(&dump);
    assert_eq!(text.lines().count(), 12_001);
    assert!(text.starts_with("cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=180, "));

    // The dump reads back (through stdin) to the same flows.
    let o = h.flowctl_stdin(&["add-flows", "br1", "-"], Some(&text));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st = h.state.lock().unwrap();
    let strip = |b: &str| -> Vec<Flow> {
        st.flows
            .iter()
            .filter(|(x, _)| x == b)
            .map(|(_, f)| f.clone())
            .collect()
    };
    assert_eq!(strip("br0"), strip("br1"));
}

#[test]
fn add_flows_failure_midway_reports_acknowledged_count() {
    let h = Harness::start();
    h.state.lock().unwrap().die_at_write = Some(1);
    let file = h.write_file("flows.txt", &flows_text(12_001));
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("flowctl: UNAVAILABLE: connection reset (5000 of 12001 flows were acknowledged before the failure)"),
        "{err}"
    );
    // It stops at the failure.
    assert_eq!(h.state.lock().unwrap().batches, [5000, 5000]);
}

#[test]
fn add_flows_refused_update_points_at_its_line() {
    let h = Harness::start();
    let mut text = flows_text(7000);
    text.push_str("\n# the bad one:\ncookie=0xbad,priority=1,actions=drop\n");
    let file = h.write_file("flows.txt", &text);
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    // 1 comment line + 7000 flows + blank + comment = line 7004.
    assert!(
        err.contains(&format!(
            "{file}:7004: update 2000: INVALID_ARGUMENT: bad cookie (field flow.cookie)"
        )),
        "{err}"
    );
    assert!(
        err.contains("(5000 of 7001 flows were acknowledged before the failure)"),
        "{err}"
    );
    assert!(
        err.contains("    cookie=0xbad,priority=1,actions=drop"),
        "{err}"
    );
}

#[test]
fn parse_errors_send_nothing() {
    let h = Harness::start();
    let mut text = flows_text(100);
    text.push_str("priority=1,tcp_dst=80,actions=drop\n");
    let file = h.write_file("flows.txt", &text);
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with(&format!("{file}:102: ")), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[1], "priority=1,tcp_dst=80,actions=drop");
    assert!(lines[2].starts_with("           ^"), "{err}");

    let o = h.flowctl(&["add-flow", "br0", "actions=output:"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(h.state.lock().unwrap().batches.is_empty());
}

#[test]
fn server_errors_exit_1_with_code_and_message() {
    let h = Harness::start();
    let o = h.flowctl(&["add-br", "br0"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "flowctl: ALREADY_EXISTS: bridge br0 already exists\n"
    );
    let o = h.flowctl(&["add-br", "br2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = h.flowctl(&["del-br", "br9"]);
    assert_eq!(o.status.code(), Some(1));
    let o = h.flowctl(&["--if-exists", "del-br", "br9"]);
    assert_eq!(o.status.code(), Some(0));
    let o = h.flowctl(&["add-flow", "br0", "cookie=0xbad,actions=drop"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "flowctl: INVALID_ARGUMENT: updates[0].flow.cookie: bad cookie\n"
    );
}

#[test]
fn unreachable_switch_is_exit_1() {
    let o = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .args(["--server", "unix:/nonexistent/flowctl-test.sock", "list-br"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("flowctl: cannot connect to unix:/nonexistent/flowctl-test.sock")
    );
}

#[test]
fn server_from_environment() {
    let h = Harness::start();
    let o = Command::new(env!("CARGO_BIN_EXE_flowctl"))
        .env("FLOWCTL_SERVER", h.server())
        .arg("list-br")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "br0\nbr1\n");
}

#[test]
fn read_commands_text_and_json() {
    let h = Harness::start();
    let o = h.flowctl(&["show", "br0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("bridge br0: dpid:0000000000000001\n"));
    assert!(stdout(&o).contains(" 1(p1):\n     type: memory\n"));

    let o = h.flowctl(&["show", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bridges"][0]["name"], "br0");
    assert_eq!(v["bridges"][1]["name"], "br1");
    assert_eq!(v["bridges"][0]["ports"][0]["name"], "p1");

    let o = h.flowctl(&["dump-tables", "br0"]);
    assert_eq!(
        stdout(&o),
        "  table 0:\n    active=2, lookup=5, matched=4\n"
    );
    let o = h.flowctl(&["dump-ports", "br0", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["stats"][0]["rx_packets"], 10);

    let o = h.flowctl(&["add-flow", "br0", "priority=5,in_port=p1,actions=NORMAL"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = h.flowctl(&["dump-flows", "br0", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["flows"][0]["priority"], 5);
    assert_eq!(v["flows"][0]["match"][0]["port_name"], "p1");
    assert_eq!(
        v["flows"][0]["text"],
        "priority=5,in_port=p1 actions=NORMAL"
    );
    let o = h.flowctl(&["dump-flows", "br0", "--no-stats"]);
    assert_eq!(stdout(&o), "priority=5,in_port=p1 actions=NORMAL\n");

    let o = h.flowctl(&["fdb-show", "br0"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "flowctl: UNIMPLEMENTED: get_mac_table\n");
}

#[test]
fn monitor_prints_count_events() {
    let h = Harness::start();
    let o = h.flowctl(&["monitor", "br0", "--count", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "packet_in reason=no_match table_id=0 cookie=0x0 in_port=1 total_len=60 data_len=60 match=in_port=1\n\
         mac_learned vlan=0 mac=02:00:00:00:00:01 port=1 port_name=p1\n"
    );
    assert_eq!(h.state.lock().unwrap().arbitrations, ["br0"]);

    let o = h.flowctl(&["monitor", "br0", "--count", "3", "--format", "json"]);
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["event"], "packet_in");
    assert_eq!(lines[1]["event"], "mac_learned");
    assert_eq!(lines[2]["event"], "port_status");
    assert_eq!(lines[2]["reason"], "delete");

    let o = h.flowctl(&["monitor", "br7", "--count", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "flowctl: NOT_FOUND: no bridge br7\n");
}

#[test]
fn packet_out_goes_on_the_stream() {
    let h = Harness::start();
    let o = h.flowctl(&[
        "packet-out",
        "br0",
        "in_port=1",
        "actions=output:2",
        "ffffffffffff0200000000010800",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let st = h.state.lock().unwrap();
    assert_eq!(st.packet_outs.len(), 1);
    assert_eq!(st.packet_outs[0].data.len(), 14);
}

#[test]
fn refused_update_in_a_full_batch_keeps_every_status() {
    // 5000 statuses in grpc-status-details-bin: a trailer well over hyper's 16 KiB default.
    let h = Harness::start();
    let mut text = flows_text(4999);
    text.push_str("cookie=0xbad,priority=1,actions=drop\n");
    let file = h.write_file("flows.txt", &text);
    let o = h.flowctl(&["add-flows", "br0", &file]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{file}:5001: update 4999: INVALID_ARGUMENT")),
        "{err}"
    );
    assert!(
        err.contains("(0 of 5000 flows were acknowledged before the failure)"),
        "{err}"
    );
}

#[test]
fn mutual_tls() {
    let h = Harness::start_tls();
    let ca = tls_file("ca.pem").display().to_string();
    let cert = tls_file("client.pem").display().to_string();
    let key = tls_file("client.key").display().to_string();
    let o = h.flowctl(&[
        "--tls-ca",
        &ca,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "list-br",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "br0\nbr1\n");

    // No client certificate: the switch refuses the handshake.
    let o = h.flowctl(&["--tls-ca", &ca, "list-br"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("flowctl: "), "{}", stderr(&o));

    // A CA that did not sign the switch's certificate.
    let o = h.flowctl(&[
        "--tls-ca",
        &cert,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "list-br",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("flowctl: cannot connect to https://localhost:"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("certificate"), "{}", stderr(&o));
}
