//! The event stream: `monitor` (print events, one per line) and `packet-out`.
//!
//! Both open `Stream`, send an `Arbitration` for the bridge first (role EQUAL) and wait
//! for the switch's `ArbitrationResponse`; a non-zero code there is a server error. Our
//! side of the stream stays open until flowctl exits, since closing it ends the session.

use std::io::Write;
use std::time::Duration;

use proto::v1::{
    Arbitration, PacketOut, Role, StreamMessageRequest, StreamMessageResponse,
    stream_message_request, stream_message_response,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codec::Streaming;

use crate::cli::Format;
use crate::connect::Client;
use crate::error::{Error, Result, code_name};
use crate::{json, text};

/// How long `packet-out` waits for an asynchronous error about its packet.
const PACKET_OUT_ERROR_WAIT: Duration = Duration::from_millis(300);

/// An open, arbitrated stream.
struct Session {
    /// Our half; dropping it closes the stream.
    tx: mpsc::Sender<StreamMessageRequest>,
    /// The switch's half.
    rx: Streaming<StreamMessageResponse>,
}

fn arbitration(bridge: &str) -> StreamMessageRequest {
    StreamMessageRequest {
        update: Some(stream_message_request::Update::Arbitration(Arbitration {
            bridge: bridge.to_string(),
            role: Role::Equal as i32,
            election_id: 0,
        })),
    }
}

fn closed() -> Error {
    Error::Stream("the switch closed the event stream".into())
}

/// Opens the stream and waits for the arbitration answer. Events that arrive before it
/// (none should) are returned so they are not lost.
async fn open(client: &mut Client, bridge: &str) -> Result<(Session, Vec<StreamMessageResponse>)> {
    let (tx, rx) = mpsc::channel(16);
    tx.send(arbitration(bridge)).await.map_err(|_| closed())?;
    let mut rx = client.stream(ReceiverStream::new(rx)).await?.into_inner();
    let mut early = Vec::new();
    loop {
        let msg = rx.message().await?.ok_or_else(closed)?;
        match msg.update {
            Some(stream_message_response::Update::Arbitration(a)) => {
                if a.code != 0 {
                    return Err(Error::Stream(format!(
                        "{}: {}",
                        code_name(a.code),
                        a.message
                    )));
                }
                return Ok((Session { tx, rx }, early));
            }
            _ => early.push(msg),
        }
    }
}

/// Prints one event; returns whether it was an event (counted for `--count`).
fn print_event(ev: &StreamMessageResponse, format: Format, out: &mut dyn Write) -> Result<bool> {
    let line = match format {
        Format::Text => text::event_text(ev),
        Format::Json => json::event_json(ev).map(|v| v.to_string()),
    };
    match line {
        Some(l) => {
            out.write_all(l.as_bytes())?;
            out.write_all(b"\n")?;
            out.flush()?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// `monitor BR [--count N]`.
pub async fn monitor(
    client: &mut Client,
    bridge: &str,
    count: Option<u64>,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    if count == Some(0) {
        return Ok(());
    }
    let (mut session, early) = open(client, bridge).await?;
    // A line on stderr tells scripts (and tests) that events are now being delivered.
    eprintln!("flowctl: monitoring {bridge}");
    let mut seen = 0u64;
    for ev in &early {
        if print_event(ev, format, out)? {
            seen += 1;
            if Some(seen) == count {
                return Ok(());
            }
        }
    }
    while let Some(ev) = session.rx.message().await? {
        if print_event(&ev, format, out)? {
            seen += 1;
            if Some(seen) == count {
                return Ok(());
            }
        }
    }
    drop(session.tx);
    Err(closed())
}

/// `packet-out`: sends the packet, then waits briefly for an error about it.
pub async fn packet_out(client: &mut Client, packet: PacketOut) -> Result<()> {
    let bridge = packet.bridge.clone();
    let (mut session, _) = open(client, &bridge).await?;
    session
        .tx
        .send(StreamMessageRequest {
            update: Some(stream_message_request::Update::PacketOut(packet)),
        })
        .await
        .map_err(|_| closed())?;
    let wait = tokio::time::timeout(PACKET_OUT_ERROR_WAIT, async {
        loop {
            match session.rx.message().await {
                Ok(Some(StreamMessageResponse {
                    update: Some(stream_message_response::Update::Error(e)),
                })) => {
                    let data = e
                        .packet_out
                        .as_ref()
                        .map(|p| format!(" (packet {})", text::short_hex(&p.data)))
                        .unwrap_or_default();
                    return Err(Error::Stream(format!(
                        "{}: {}{data}",
                        code_name(e.code),
                        e.message
                    )));
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(status) => return Err(Error::Status(status)),
            }
        }
    })
    .await;
    drop(session.tx);
    wait.unwrap_or(Ok(()))
}
