//! The scripted switch: records what it is sent, refuses what it is told to.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use prost::Message as _;
use proto::flow_text::parse_flow;
use proto::v1::switch_server::Switch;
use proto::v1::*;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// What the scripted switch saw and how it misbehaves.
#[derive(Default)]
pub(super) struct State {
    /// Flows per bridge, in insertion order.
    pub(super) flows: Vec<(String, Flow)>,
    /// Updates per Write request.
    pub(super) batches: Vec<usize>,
    /// Fail the Write with this 0-based index with UNAVAILABLE (the daemon "dies").
    pub(super) die_at_write: Option<usize>,
    /// Stream arbitrations received.
    pub(super) arbitrations: Vec<String>,
    /// Packet-outs received.
    pub(super) packet_outs: Vec<PacketOut>,
}

#[derive(Clone, Default)]
pub(super) struct Mock(pub(super) Arc<Mutex<State>>);

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

    async fn mod_port(
        &self,
        _: Request<ModPortRequest>,
    ) -> Result<Response<ModPortResponse>, Status> {
        Err(Status::unimplemented("mod_port"))
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

    async fn set_conntrack_timeouts(
        &self,
        _: Request<proto::v1::SetConntrackTimeoutsRequest>,
    ) -> Result<Response<proto::v1::SetConntrackTimeoutsResponse>, Status> {
        Err(Status::unimplemented("set_conntrack_timeouts"))
    }

    async fn get_conntrack_timeouts(
        &self,
        _: Request<proto::v1::GetConntrackTimeoutsRequest>,
    ) -> Result<Response<proto::v1::GetConntrackTimeoutsResponse>, Status> {
        Err(Status::unimplemented("get_conntrack_timeouts"))
    }

    async fn add_mirror(
        &self,
        _: Request<proto::v1::AddMirrorRequest>,
    ) -> Result<Response<proto::v1::AddMirrorResponse>, Status> {
        Err(Status::unimplemented("add_mirror"))
    }

    async fn del_mirror(
        &self,
        _: Request<proto::v1::DelMirrorRequest>,
    ) -> Result<Response<proto::v1::DelMirrorResponse>, Status> {
        Err(Status::unimplemented("del_mirror"))
    }

    async fn list_mirrors(
        &self,
        _: Request<proto::v1::ListMirrorsRequest>,
    ) -> Result<Response<proto::v1::ListMirrorsResponse>, Status> {
        Err(Status::unimplemented("list_mirrors"))
    }

    type CaptureStream = BoxStream<proto::v1::CaptureResponse>;

    async fn capture(
        &self,
        _: Request<proto::v1::CaptureRequest>,
    ) -> Result<Response<Self::CaptureStream>, Status> {
        Err(Status::unimplemented("capture"))
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
                ..Default::default()
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
