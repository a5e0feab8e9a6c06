//! The `vswitch.v1` gRPC service: a thin layer turning requests into [`Switch`] calls and
//! [`ApiError`]s into statuses.
//!
//! Control calls that touch the store (`Write`, bridge and port changes) run on tokio's
//! blocking pool: a store commit waits for fsync, and async workers must not. The `Stream`
//! call serves one controller: its first message must be an `Arbitration` naming the bridge;
//! then it carries packet-outs in, and packet-in, flow-removed, port-status and MAC events
//! of that bridge out. A subscriber too slow for the event rate gets a `StreamError`
//! saying how many events it lost, never a stalled switch.
//!
//! A `Read` streams: its selection is made once ([`Switch::reader`]) and each response is
//! built ([`Switch::read_chunk`]) only after the client took the one before, so a Read
//! holds one pointer per selected flow and a response or two. At most
//! [`MAX_CONCURRENT_READS`] stream at once (more wait their turn), and one whose client
//! takes no response for the read stall time (`--request-timeout-s`) is ended with
//! `DEADLINE_EXCEEDED`, so a client that stops reading cannot keep the others waiting.
//!
//! A `Capture` streams a port's frames (the `capture` module): at most
//! [`capture::MAX_CAPTURES`] at once, ended like a Read when its client stops taking them.
//!
//! Thread-safety: `Service` is a cheap `Clone` around `Arc<Switch>`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use parking_lot::Mutex;
use proto::v1::{self, stream_message_request as smq, stream_message_response as smr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument as _;

use crate::api_layer;
use crate::capture;
use crate::error::ApiError;
use crate::switch::{Reader, Switch};

/// Reads that stream at once; more wait for one of them to end.
pub const MAX_CONCURRENT_READS: usize = 8;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct Service {
    sw: Arc<Switch>,
    closing: watch::Receiver<bool>,
    reads: Arc<Semaphore>,
    captures: Arc<Semaphore>,
    read_stall: Duration,
}

impl Service {
    /// A service over `sw`; streams end when `closing` turns true (daemon shutdown), so a
    /// connected controller never holds the daemon up. A Read whose client takes no
    /// response for `read_stall` is ended.
    pub fn new(sw: Arc<Switch>, closing: watch::Receiver<bool>, read_stall: Duration) -> Service {
        Service {
            sw,
            closing,
            reads: Arc::new(Semaphore::new(MAX_CONCURRENT_READS)),
            captures: Arc::new(Semaphore::new(capture::MAX_CAPTURES)),
            read_stall,
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Runs `f` on the blocking pool, inside the request's span (so what the switch logs
/// meanwhile names the RPC and the peer).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, Status> {
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(f)).await {
        Ok(r) => r.map_err(ApiError::into_status),
        Err(e) => Err(Status::internal(format!("request task failed: {e}"))),
    }
}

/// Resolves once `rx` reads true (or its sender is gone).
async fn until_closing(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// What a streaming Read needs besides its [`Reader`]; its place among the
/// [`MAX_CONCURRENT_READS`] is given back when it is dropped.
struct ReadJob {
    sw: Arc<Switch>,
    stall: Duration,
    closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

/// Builds a Read's responses one at a time, each once the client took the one before;
/// how it ended, when not well, goes into `end` before `tx` is dropped.
async fn send_chunks(
    mut job: ReadJob,
    mut reader: Reader,
    tx: mpsc::Sender<v1::ReadResponse>,
    end: Arc<Mutex<Option<Status>>>,
) {
    let fail = |s: Status| *end.lock() = Some(s);
    loop {
        let sw = Arc::clone(&job.sw);
        let built = tokio::task::spawn_blocking(move || {
            let c = sw.read_chunk(&mut reader);
            (reader, c)
        })
        .await;
        let chunk = match built {
            Ok((r, Ok(Some(c)))) => {
                reader = r;
                c
            }
            Ok((_, Ok(None))) => return,
            Ok((_, Err(e))) => return fail(e.into_status()),
            Err(e) => return fail(Status::internal(format!("read task failed: {e}"))),
        };
        tokio::select! {
            sent = tokio::time::timeout(job.stall, tx.send(chunk)) => match sent {
                Ok(Ok(())) => {}
                // The client went away.
                Ok(Err(_)) => return,
                Err(_) => {
                    return fail(Status::deadline_exceeded(format!(
                        "the client took no response for {} s; the Read was ended ({} flows \
                         not sent) so that other Reads can run",
                        job.stall.as_secs(),
                        reader.flows_left()
                    )));
                }
            },
            () = until_closing(&mut job.closing) => {
                return fail(Status::unavailable("the switch is stopping"));
            }
        }
    }
}

/// The responses of one Read as the client receives them, then how it ended.
struct ReadStream {
    rx: mpsc::Receiver<v1::ReadResponse>,
    end: Arc<Mutex<Option<Status>>>,
    done: bool,
}

impl Stream for ReadStream {
    type Item = Result<v1::ReadResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(c)) => Poll::Ready(Some(Ok(c))),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(this.end.lock().take().map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[tonic::async_trait]
impl v1::switch_server::Switch for Service {
    async fn write(
        &self,
        req: Request<v1::WriteRequest>,
    ) -> Result<Response<v1::WriteResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        let resp = blocking(move || sw.write(req)).await?;
        // Refused updates of a request that went through: each logged once, here (a
        // request refused whole is logged by the API layer).
        for st in &resp.statuses {
            let code = tonic::Code::from_i32(st.code);
            let cause = if st.field.is_empty() {
                st.message.clone()
            } else {
                format!("{}: {}", st.field, st.message)
            };
            api_layer::log_error(code, &cause);
        }
        Ok(Response::new(resp))
    }

    type ReadStream = BoxStream<v1::ReadResponse>;

    async fn read(
        &self,
        req: Request<v1::ReadRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let permit = Arc::clone(&self.reads)
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("the switch is stopping"))?;
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        let reader = blocking(move || sw.reader(&req)).await?;
        let (tx, rx) = mpsc::channel(1);
        let end = Arc::new(Mutex::new(None));
        tokio::spawn(send_chunks(
            ReadJob {
                sw: Arc::clone(&self.sw),
                stall: self.read_stall,
                closing: self.closing.clone(),
                _permit: permit,
            },
            reader,
            tx,
            Arc::clone(&end),
        ));
        Ok(Response::new(Box::pin(ReadStream {
            rx,
            end,
            done: false,
        })))
    }

    type StreamStream = BoxStream<v1::StreamMessageResponse>;

    async fn stream(
        &self,
        req: Request<Streaming<v1::StreamMessageRequest>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let mut inbound = req.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("stream closed before its arbitration"))?;
        let Some(smq::Update::Arbitration(arb)) = first.update else {
            return Err(Status::invalid_argument(
                "update: the first stream message must be an arbitration naming the bridge",
            ));
        };
        self.sw
            .get_bridge(&arb.bridge)
            .map_err(|e| e.under("arbitration").into_status())?;
        // Subscribe before answering, so no event after the answer is missed.
        let mut events = self.sw.subscribe();
        let (tx, rx) = mpsc::channel::<Result<v1::StreamMessageResponse, Status>>(1024);
        let reply = v1::StreamMessageResponse {
            update: Some(smr::Update::Arbitration(v1::ArbitrationResponse {
                bridge: arb.bridge.clone(),
                role: arb.role,
                code: 0,
                message: String::new(),
            })),
        };
        tx.send(Ok(reply))
            .await
            .map_err(|_| Status::cancelled("client went away"))?;
        let sw = Arc::clone(&self.sw);
        let bridge = arb.bridge;
        let mut closing = self.closing.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = until_closing(&mut closing) => return,
                    msg = inbound.message() => {
                        let msg = match msg {
                            Ok(Some(m)) => m,
                            Ok(None) | Err(_) => return,
                        };
                        let err = match msg.update {
                            Some(smq::Update::PacketOut(mut po)) => {
                                if po.bridge.is_empty() {
                                    po.bridge = bridge.clone();
                                }
                                sw.packet_out(&po).err().map(|e| (e.under("packet_out"), Some(po)))
                            }
                            Some(smq::Update::Arbitration(_)) => None,
                            None => Some((ApiError::invalid("update", "empty stream message"), None)),
                        };
                        if let Some((e, po)) = err {
                            api_layer::log_error(e.code, &e.to_string());
                            let m = v1::StreamMessageResponse {
                                update: Some(smr::Update::Error(v1::StreamError {
                                    code: e.code as i32,
                                    message: e.to_string(),
                                    packet_out: po,
                                })),
                            };
                            if tx.send(Ok(m)).await.is_err() {
                                return;
                            }
                        }
                    }
                    ev = events.recv() => {
                        let m = match ev {
                            Ok(e) if e.bridge == bridge => e.msg.clone(),
                            Ok(_) => continue,
                            Err(broadcast::error::RecvError::Lagged(n)) => v1::StreamMessageResponse {
                                update: Some(smr::Update::Error(v1::StreamError {
                                    code: tonic::Code::ResourceExhausted as i32,
                                    message: format!("{n} events were dropped: this stream is not keeping up"),
                                    packet_out: None,
                                })),
                            },
                            Err(broadcast::error::RecvError::Closed) => return,
                        };
                        if tx.send(Ok(m)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }.instrument(tracing::Span::current()));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn add_bridge(
        &self,
        req: Request<v1::AddBridgeRequest>,
    ) -> Result<Response<v1::AddBridgeResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        let b = blocking(move || sw.add_bridge(req)).await?;
        Ok(Response::new(v1::AddBridgeResponse { bridge: Some(b) }))
    }

    async fn del_bridge(
        &self,
        req: Request<v1::DelBridgeRequest>,
    ) -> Result<Response<v1::DelBridgeResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        blocking(move || sw.del_bridge(req)).await?;
        Ok(Response::new(v1::DelBridgeResponse {}))
    }

    async fn list_bridges(
        &self,
        _: Request<v1::ListBridgesRequest>,
    ) -> Result<Response<v1::ListBridgesResponse>, Status> {
        Ok(Response::new(v1::ListBridgesResponse {
            bridges: self.sw.list_bridges(),
        }))
    }

    async fn get_bridge(
        &self,
        req: Request<v1::GetBridgeRequest>,
    ) -> Result<Response<v1::GetBridgeResponse>, Status> {
        let b = self
            .sw
            .get_bridge(&req.get_ref().name)
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::GetBridgeResponse { bridge: Some(b) }))
    }

    async fn add_port(
        &self,
        req: Request<v1::AddPortRequest>,
    ) -> Result<Response<v1::AddPortResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        let p = blocking(move || sw.add_port(req)).await?;
        Ok(Response::new(v1::AddPortResponse { port: Some(p) }))
    }

    async fn del_port(
        &self,
        req: Request<v1::DelPortRequest>,
    ) -> Result<Response<v1::DelPortResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        blocking(move || sw.del_port(req)).await?;
        Ok(Response::new(v1::DelPortResponse {}))
    }

    async fn list_ports(
        &self,
        req: Request<v1::ListPortsRequest>,
    ) -> Result<Response<v1::ListPortsResponse>, Status> {
        let ports = self
            .sw
            .list_ports(&req.get_ref().bridge)
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::ListPortsResponse { ports }))
    }

    async fn mod_port(
        &self,
        req: Request<v1::ModPortRequest>,
    ) -> Result<Response<v1::ModPortResponse>, Status> {
        let r = req.into_inner();
        let port = (self.sw)
            .mod_port_named(&r.bridge, &r.name, r.config, r.mask)
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::ModPortResponse { port: Some(port) }))
    }

    async fn set_port_options(
        &self,
        req: Request<v1::SetPortOptionsRequest>,
    ) -> Result<Response<v1::SetPortOptionsResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        let p = blocking(move || sw.set_port_options(req)).await?;
        Ok(Response::new(v1::SetPortOptionsResponse { port: Some(p) }))
    }

    async fn get_port_stats(
        &self,
        req: Request<v1::GetPortStatsRequest>,
    ) -> Result<Response<v1::GetPortStatsResponse>, Status> {
        let r = req.get_ref();
        let stats = self
            .sw
            .port_stats(&r.bridge, r.port.as_ref())
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::GetPortStatsResponse { stats }))
    }

    async fn get_table_stats(
        &self,
        req: Request<v1::GetTableStatsRequest>,
    ) -> Result<Response<v1::GetTableStatsResponse>, Status> {
        let stats = self
            .sw
            .table_stats(&req.get_ref().bridge)
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::GetTableStatsResponse { stats }))
    }

    async fn get_meter_stats(
        &self,
        req: Request<v1::GetMeterStatsRequest>,
    ) -> Result<Response<v1::GetMeterStatsResponse>, Status> {
        let r = req.get_ref();
        let stats = self
            .sw
            .meter_stats(&r.bridge, r.meter_id)
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::GetMeterStatsResponse { stats }))
    }

    async fn set_pmd_cpus(
        &self,
        req: Request<v1::SetPmdCpusRequest>,
    ) -> Result<Response<v1::SetPmdCpusResponse>, Status> {
        let bridge = self
            .sw
            .set_pmd_cpus(req.into_inner())
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::SetPmdCpusResponse {
            bridge: Some(bridge),
        }))
    }

    async fn set_controller(
        &self,
        req: Request<v1::SetControllerRequest>,
    ) -> Result<Response<v1::SetControllerResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        let bridge = blocking(move || sw.set_controller(req)).await?;
        Ok(Response::new(v1::SetControllerResponse {
            bridge: Some(bridge),
        }))
    }

    async fn set_fail_mode(
        &self,
        req: Request<v1::SetFailModeRequest>,
    ) -> Result<Response<v1::SetFailModeResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let req = req.into_inner();
        let bridge = blocking(move || sw.set_fail_mode(req)).await?;
        Ok(Response::new(v1::SetFailModeResponse {
            bridge: Some(bridge),
        }))
    }

    async fn get_tunnel_neighbours(
        &self,
        _: Request<v1::GetTunnelNeighboursRequest>,
    ) -> Result<Response<v1::GetTunnelNeighboursResponse>, Status> {
        Ok(Response::new(v1::GetTunnelNeighboursResponse {
            endpoints: self.sw.tunnel_neighbours(),
            no_endpoint_drops: self.sw.tunnel_no_endpoint_drops(),
        }))
    }

    async fn get_queue_stats(
        &self,
        req: Request<v1::GetQueueStatsRequest>,
    ) -> Result<Response<v1::GetQueueStatsResponse>, Status> {
        let r = req.get_ref();
        let stats = self
            .sw
            .queue_stats(&r.bridge, r.port.as_ref(), r.queue_id)
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::GetQueueStatsResponse { stats }))
    }

    async fn get_group_stats(
        &self,
        req: Request<v1::GetGroupStatsRequest>,
    ) -> Result<Response<v1::GetGroupStatsResponse>, Status> {
        let r = req.get_ref();
        let stats = self
            .sw
            .group_stats(&r.bridge, r.group_id)
            .map_err(ApiError::into_status)?;
        Ok(Response::new(v1::GetGroupStatsResponse { stats }))
    }

    async fn get_mac_table(
        &self,
        req: Request<v1::GetMacTableRequest>,
    ) -> Result<Response<v1::GetMacTableResponse>, Status> {
        self.sw
            .mac_table(&req.get_ref().bridge)
            .map(Response::new)
            .map_err(ApiError::into_status)
    }

    async fn get_pmd_stats(
        &self,
        _: Request<v1::GetPmdStatsRequest>,
    ) -> Result<Response<v1::GetPmdStatsResponse>, Status> {
        Ok(Response::new(v1::GetPmdStatsResponse {
            pmds: self.sw.pmd_stats(),
        }))
    }

    async fn clear_pmd_stats(
        &self,
        _: Request<v1::ClearPmdStatsRequest>,
    ) -> Result<Response<v1::ClearPmdStatsResponse>, Status> {
        self.sw.clear_pmd_stats();
        Ok(Response::new(v1::ClearPmdStatsResponse {}))
    }

    async fn dump_conntrack(
        &self,
        req: Request<v1::DumpConntrackRequest>,
    ) -> Result<Response<v1::DumpConntrackResponse>, Status> {
        let r = req.get_ref();
        self.sw
            .dump_conntrack(&r.bridge, r.zone)
            .map(Response::new)
            .map_err(ApiError::into_status)
    }

    async fn trace(
        &self,
        req: Request<v1::TraceRequest>,
    ) -> Result<Response<v1::TraceResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let r = req.into_inner();
        // A generate waits for the counters: off the async workers.
        blocking(move || sw.trace(&r)).await.map(Response::new)
    }

    type CaptureStream = capture::CaptureStream;

    async fn capture(
        &self,
        req: Request<v1::CaptureRequest>,
    ) -> Result<Response<Self::CaptureStream>, Status> {
        let permit = Arc::clone(&self.captures)
            .try_acquire_owned()
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "{} captures are running, the most this daemon runs at once",
                    capture::MAX_CAPTURES
                ))
            })?;
        let job = capture::Job {
            sw: Arc::clone(&self.sw),
            stall: self.read_stall,
            closing: self.closing.clone(),
            permit,
        };
        capture::start(job, req.into_inner())
            .await
            .map(Response::new)
    }

    async fn flush_conntrack(
        &self,
        req: Request<v1::FlushConntrackRequest>,
    ) -> Result<Response<v1::FlushConntrackResponse>, Status> {
        let r = req.get_ref();
        self.sw
            .flush_conntrack(&r.bridge, r.zone)
            .map(|flushed| Response::new(v1::FlushConntrackResponse { flushed }))
            .map_err(ApiError::into_status)
    }

    async fn get_conntrack_stats(
        &self,
        req: Request<v1::GetConntrackStatsRequest>,
    ) -> Result<Response<v1::GetConntrackStatsResponse>, Status> {
        self.sw
            .conntrack_stats(&req.get_ref().bridge)
            .map(|stats| Response::new(v1::GetConntrackStatsResponse { stats }))
            .map_err(ApiError::into_status)
    }

    async fn set_conntrack_limits(
        &self,
        req: Request<v1::SetConntrackLimitsRequest>,
    ) -> Result<Response<v1::SetConntrackLimitsResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let r = req.into_inner();
        // A store commit: off the async workers.
        blocking(move || {
            sw.set_conntrack_limits(&r)
                .map(|()| v1::SetConntrackLimitsResponse {})
        })
        .await
        .map(Response::new)
    }

    async fn get_conntrack_limits(
        &self,
        req: Request<v1::GetConntrackLimitsRequest>,
    ) -> Result<Response<v1::GetConntrackLimitsResponse>, Status> {
        self.sw
            .conntrack_limits(req.get_ref())
            .map(|limits| Response::new(v1::GetConntrackLimitsResponse { limits }))
            .map_err(ApiError::into_status)
    }

    async fn set_conntrack_timeouts(
        &self,
        req: Request<v1::SetConntrackTimeoutsRequest>,
    ) -> Result<Response<v1::SetConntrackTimeoutsResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let r = req.into_inner();
        // A store commit: off the async workers.
        blocking(move || {
            sw.set_conntrack_timeouts(&r)
                .map(|()| v1::SetConntrackTimeoutsResponse {})
        })
        .await
        .map(Response::new)
    }

    async fn get_conntrack_timeouts(
        &self,
        req: Request<v1::GetConntrackTimeoutsRequest>,
    ) -> Result<Response<v1::GetConntrackTimeoutsResponse>, Status> {
        self.sw
            .conntrack_timeouts(req.get_ref())
            .map(|policies| Response::new(v1::GetConntrackTimeoutsResponse { policies }))
            .map_err(ApiError::into_status)
    }

    async fn add_mirror(
        &self,
        req: Request<v1::AddMirrorRequest>,
    ) -> Result<Response<v1::AddMirrorResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let r = req.into_inner();
        // A store commit: off the async workers.
        blocking(move || sw.add_mirror(&r).map(|()| v1::AddMirrorResponse {}))
            .await
            .map(Response::new)
    }

    async fn del_mirror(
        &self,
        req: Request<v1::DelMirrorRequest>,
    ) -> Result<Response<v1::DelMirrorResponse>, Status> {
        let sw = Arc::clone(&self.sw);
        let r = req.into_inner();
        blocking(move || sw.del_mirror(&r).map(|()| v1::DelMirrorResponse {}))
            .await
            .map(Response::new)
    }

    async fn list_mirrors(
        &self,
        req: Request<v1::ListMirrorsRequest>,
    ) -> Result<Response<v1::ListMirrorsResponse>, Status> {
        self.sw
            .list_mirrors(&req.get_ref().bridge)
            .map(|mirrors| Response::new(v1::ListMirrorsResponse { mirrors }))
            .map_err(ApiError::into_status)
    }
}
