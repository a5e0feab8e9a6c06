//! An SDN controller in 150 lines: a MAC-learning switch programmed purely from packet-in
//! events over the `vswitch.v1` stream.
//!
//! ```text
//! cargo run --example learning_controller -- /run/vswitch/vswitchd.sock br0
//! ```
//!
//! It installs one table-miss flow (`priority=0,actions=controller`) in table 0 (replacing
//! the `priority=0,actions=NORMAL` a bridge in standalone mode starts with) and then
//! reacts to each packet-in: it learns which port the source MAC lives on; if it knows the
//! destination it installs `priority=10,dl_dst=DST,actions=output:PORT` and sends the
//! packet there, otherwise it floods the packet. It never reads the switch's own MAC table:
//! all it knows comes from the stream.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use proto::flow_text::{parse_actions, parse_flow};
use proto::v1::{
    self, entity, stream_message_request as smq, stream_message_response as smr, update,
};
use tokio_stream::wrappers::ReceiverStream;

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn insert(text: &str) -> anyhow::Result<v1::Update> {
    Ok(v1::Update {
        r#type: update::Type::Insert as i32,
        entity: Some(v1::Entity {
            entity: Some(entity::Entity::Flow(parse_flow(text)?)),
        }),
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let sock = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/run/vswitch/vswitchd.sock".into()),
    );
    let bridge = args.next().unwrap_or_else(|| "br0".into());
    let mut client = vswitchd::client::connect_unix(&sock)
        .await
        .with_context(|| format!("connecting to {}", sock.display()))?;

    // Open the stream first so no packet-in is missed once the miss flow is in.
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tx.send(v1::StreamMessageRequest {
        update: Some(smq::Update::Arbitration(v1::Arbitration {
            bridge: bridge.clone(),
            role: v1::Role::Primary as i32,
            election_id: 1,
        })),
    })
    .await?;
    let mut events = client.stream(ReceiverStream::new(rx)).await?.into_inner();
    match events.message().await?.and_then(|m| m.update) {
        Some(smr::Update::Arbitration(a)) if a.code == 0 => {}
        other => bail!("arbitration refused: {other:?}"),
    }
    client
        .write(v1::WriteRequest {
            bridge: bridge.clone(),
            updates: vec![insert("table=0,priority=0,actions=controller")?],
            atomicity: v1::Atomicity::AllOrNone as i32,
        })
        .await
        .context("installing the table-miss flow")?;
    eprintln!(
        "learning_controller: programming {bridge} on {}",
        sock.display()
    );

    // (MAC -> port) as learned from packet-ins.
    let mut macs: HashMap<[u8; 6], u32> = HashMap::new();
    while let Some(m) = events.message().await? {
        let Some(smr::Update::PacketIn(pi)) = m.update else {
            continue;
        };
        if pi.data.len() < 14 {
            continue;
        }
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&pi.data[0..6]);
        src.copy_from_slice(&pi.data[6..12]);
        if src[0] & 1 == 0 {
            macs.insert(src, pi.in_port);
        }
        let out = match macs.get(&dst) {
            Some(&port) if dst[0] & 1 == 0 => {
                let r = client
                    .write(v1::WriteRequest {
                        bridge: bridge.clone(),
                        updates: vec![insert(&format!(
                            "table=0,priority=10,dl_dst={},actions=output:{port}",
                            mac(&dst)
                        ))?],
                        atomicity: v1::Atomicity::AllOrNone as i32,
                    })
                    .await;
                if let Err(e) = r {
                    eprintln!("learning_controller: installing a flow: {}", e.message());
                }
                format!("output:{port}")
            }
            _ => "flood".to_string(),
        };
        tx.send(v1::StreamMessageRequest {
            update: Some(smq::Update::PacketOut(v1::PacketOut {
                bridge: bridge.clone(),
                in_port: Some(v1::PortRef {
                    port: Some(v1::port_ref::Port::Number(pi.in_port)),
                }),
                actions: parse_actions(&out)?,
                data: pi.data,
            })),
        })
        .await?;
    }
    Ok(())
}
