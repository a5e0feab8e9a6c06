//! The daemon in-process, driven through its real gRPC API over a real unix socket:
//! writes and reads, per-update errors and all-or-none, durability across restarts, the
//! event stream (packet-in, packet-out, flow-removed, port-status, MAC learned), health and
//! reflection, and 10k flow changes under traffic without losing an allowed packet.

#[path = "../common/mod.rs"]
mod common;

mod bridges;
mod health;
mod stream;
mod traffic;
mod writes;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proto::flow_text::{format_flow, parse_flow, parse_group, parse_match, parse_meter};
use proto::v1::switch_client::SwitchClient;
use proto::v1::{
    self, entity, stream_message_request as smq, stream_message_response as smr, update,
};
use tonic::Code;
use tonic::transport::Channel;
use vswitchd::store::Store;

use common::in_process::Daemon;

fn ins(e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: update::Type::Insert as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

fn upd(t: update::Type, e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: t as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

fn flow(text: &str) -> v1::Update {
    ins(entity::Entity::Flow(parse_flow(text).expect(text)))
}

async fn write(
    c: &mut SwitchClient<Channel>,
    bridge: &str,
    updates: Vec<v1::Update>,
    atomic: bool,
) -> Result<v1::WriteResponse, tonic::Status> {
    c.write(v1::WriteRequest {
        bridge: bridge.into(),
        updates,
        atomicity: if atomic {
            v1::Atomicity::AllOrNone as i32
        } else {
            v1::Atomicity::ContinueOnError as i32
        },
    })
    .await
    .map(|r| r.into_inner())
}

async fn read_flows(c: &mut SwitchClient<Channel>, bridge: &str, filter: &str) -> Vec<v1::Flow> {
    let f = if filter.is_empty() {
        v1::FlowFilter::default()
    } else {
        parse_match(filter).expect(filter)
    };
    let mut s = c
        .read(v1::ReadRequest {
            bridge: bridge.into(),
            filters: vec![v1::ReadFilter {
                filter: Some(v1::read_filter::Filter::Flows(f)),
            }],
        })
        .await
        .expect("read")
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.message().await.expect("read stream") {
        for e in r.entities {
            if let Some(entity::Entity::Flow(f)) = e.entity {
                out.push(f);
            }
        }
    }
    out
}

fn normal_text() -> String {
    format_flow(&parse_flow("priority=0,actions=normal").expect("default flow"))
}

fn texts(flows: &[v1::Flow]) -> Vec<String> {
    let mut v: Vec<String> = flows.iter().map(format_flow).collect();
    v.sort();
    v
}

async fn add_memory_port(c: &mut SwitchClient<Channel>, bridge: &str, name: &str, no: u32) {
    c.add_port(v1::AddPortRequest {
        bridge: bridge.into(),
        port: Some(v1::PortConfig {
            name: name.into(),
            r#type: "memory".into(),
            requested_ofport: Some(no),
            ..Default::default()
        }),
    })
    .await
    .expect("add port");
}

fn udp_frame(src: u8, dst: u8, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, dst]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, src]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, 0, src]);
    f[30..34].copy_from_slice(&[10, 0, 0, dst]);
    let mut sum: u32 = f[14..34]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&80u16.to_be_bytes());
    f[38..40].copy_from_slice(&26u16.to_be_bytes());
    f
}
