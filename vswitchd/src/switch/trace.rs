//! `trace BR FLOW`: what the bridge would do with one packet (Open vSwitch's
//! `ofproto/trace`), over the API.
//!
//! What: the flow text is parsed with the flow syntax's match parser and converted as any
//! match is (port names resolved); a frame is composed from it unless one is given; the
//! datapath traces it ([`Datapath::trace`]: the slow path's own walk, changing nothing).
//! Table lines get the flow as the daemon stores it (`dump-flows` text). With `generate`,
//! the frame then goes out as a packet-out through the tables, and the port and drop
//! counters' changes are reported, read outside the switch's lock.
//!
//! Thread-safety: takes the switch's lock only to read the bridge.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datapath::flow::{Field, compose};
use datapath::pipeline::trace::{NodeKind, Output, Trace};
use datapath::pipeline::{Datapath, PacketOut};
use datapath::port::Port;
use datapath::stats::DropReason;
use datapath::types::PortNo;
use proto::{flow_text, v1};

use super::Switch;
use super::model::{Bridge, rule_ident};
use crate::convert;
use crate::error::ApiError;

/// How long `generate` waits for the packet-out's effect to show in the counters.
const GENERATE_WAIT: Duration = Duration::from_millis(500);

/// What `generate` needs after the lock is released.
struct Generate {
    dp: Datapath,
    in_port: PortNo,
    frame: Vec<u8>,
    ports: Vec<(String, Arc<dyn Port>)>,
}

impl Switch {
    /// `trace BR FLOW [--packet HEX] [--generate]`.
    pub fn trace(&self, req: &v1::TraceRequest) -> Result<v1::TraceResponse, ApiError> {
        let (mut resp, gen_) = {
            let bridges = self.bridges.lock();
            let b = bridges.get(&req.bridge).ok_or_else(|| {
                ApiError::not_found("bridge", format!("no bridge {}", req.bridge))
            })?;
            trace_on(&req.bridge, b, req)?
        };
        if let Some(g) = gen_ {
            resp.generated = Some(generate(g)?);
        }
        Ok(resp)
    }
}

/// The trace of `req` on bridge `b` (called `name`), and what `generate` needs.
fn trace_on(
    name: &str,
    b: &Bridge,
    req: &v1::TraceRequest,
) -> Result<(v1::TraceResponse, Option<Generate>), ApiError> {
    let filter =
        flow_text::parse_match(&req.flow).map_err(|e| ApiError::invalid("flow", e.to_string()))?;
    let empty = v1::Match::default();
    let names = b.names();
    let m = convert::convert_match(filter.r#match.as_ref().unwrap_or(&empty), &names)
        .map_err(|e| e.under("flow"))?;
    if m.mask.get(Field::InPort) == 0 {
        return Err(ApiError::invalid(
            "flow",
            "in_port is required (the port the packet arrives on)",
        ));
    }
    let in_port = PortNo(m.key.get(Field::InPort) as u32);
    let frame = if req.packet.is_empty() {
        compose(&m.key)
    } else {
        req.packet.clone()
    };
    let t = b.dp.trace(in_port, &frame, Some(&m.key)).map_err(|r| {
        ApiError::invalid("packet", format!("the frame does not parse: {}", r.name()))
    })?;
    let resp = response(name, b, &t);
    let gen_ = req.generate.then(|| Generate {
        dp: b.dp.clone(),
        in_port,
        frame,
        ports: b
            .ports
            .iter()
            .map(|(n, p)| (n.clone(), Arc::clone(&p.port)))
            .collect(),
    });
    Ok((resp, gen_))
}

/// The API form of trace `t`.
fn response(name: &str, b: &Bridge, t: &Trace) -> v1::TraceResponse {
    let passes = t
        .passes
        .iter()
        .map(|p| v1::TracePass {
            header: p.header.clone().unwrap_or_default(),
            flow: datapath::pipeline::trace::key_text(&p.flow),
            nodes: p.nodes.iter().map(|n| node(b, n)).collect(),
            final_flow: if p.final_flow == p.flow {
                "unchanged".into()
            } else {
                datapath::pipeline::trace::key_text(&p.final_flow)
            },
            megaflow: datapath::pipeline::trace::masked_text(&p.megaflow.0, &p.megaflow.1),
            datapath_actions: p.dp_actions_text(),
        })
        .collect();
    let outputs = t
        .outputs
        .iter()
        .map(|o| match o {
            Output::Port(p) => v1::TraceOutput {
                port: p.0,
                port_name: b.port_name(p.0),
                controller: false,
            },
            Output::Controller => v1::TraceOutput {
                port: 0,
                port_name: String::new(),
                controller: true,
            },
        })
        .collect();
    v1::TraceResponse {
        passes,
        outputs,
        drops: t.drops.iter().map(|r| r.name().to_string()).collect(),
        text: t.render(name),
        datapath_actions: t.dp_actions(),
        generated: None,
    }
}

fn node(b: &Bridge, n: &datapath::pipeline::trace::TraceNode) -> v1::TraceNode {
    let kind = match n.kind {
        NodeKind::Table => v1::TraceNodeKind::Table,
        NodeKind::Action => v1::TraceNodeKind::Action,
        NodeKind::Detail => v1::TraceNodeKind::Detail,
        NodeKind::Warn => v1::TraceNodeKind::Warn,
    };
    let rule = n.rule.as_ref().map(|r| v1::TraceRule {
        table_id: r.spec.table.0 as u32,
        priority: r.spec.priority as u32,
        cookie: r.spec.cookie,
        text: b
            .flows
            .get(&rule_ident(r))
            .map(flow_text::format_flow)
            .unwrap_or_default(),
    });
    v1::TraceNode {
        depth: n.depth as u32,
        kind: kind as i32,
        text: n.text.clone(),
        rule,
    }
}

/// Port tx counters by name, and drops by reason.
fn counters(g: &Generate) -> (HashMap<String, u64>, Vec<u64>) {
    let tx = g
        .ports
        .iter()
        .map(|(n, p)| (n.clone(), p.stats().tx_packets))
        .collect();
    let totals = g.dp.pmd_totals();
    let drops = DropReason::ALL
        .iter()
        .map(|r| totals.drops_for(*r))
        .collect();
    (tx, drops)
}

/// Sends the traced frame as a packet-out through the tables and reports what moved.
fn generate(g: Generate) -> Result<v1::TraceGenerated, ApiError> {
    let (tx0, drops0) = counters(&g);
    g.dp.packet_out(PacketOut {
        in_port: Some(g.in_port),
        table: true,
        actions: Vec::new(),
        frame: g.frame.clone(),
    })
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let start = Instant::now();
    let mut settled = false;
    let (mut tx1, mut drops1) = (tx0.clone(), drops0.clone());
    while start.elapsed() < GENERATE_WAIT {
        std::thread::sleep(Duration::from_millis(10));
        (tx1, drops1) = counters(&g);
        let moved = tx1.iter().any(|(n, v)| tx0.get(n) != Some(v)) || drops1 != drops0;
        if moved {
            // Let the rest of the packet's copies land.
            std::thread::sleep(Duration::from_millis(20));
            (tx1, drops1) = counters(&g);
            settled = true;
            break;
        }
    }
    let tx_packets = tx1
        .into_iter()
        .filter_map(|(n, v)| {
            let d = v.saturating_sub(tx0.get(&n).copied().unwrap_or(0));
            (d > 0).then_some((n, d))
        })
        .collect();
    let drops = DropReason::ALL
        .iter()
        .zip(drops1.iter().zip(drops0.iter()))
        .filter(|(_, (a, b))| a > b)
        .map(|(r, (a, b))| (r.name().to_string(), a - b))
        .collect();
    Ok(v1::TraceGenerated {
        tx_packets,
        drops,
        settled,
    })
}
