//! `trace BR FLOW [--packet HEX] [--generate]`: printed as `ovs-appctl ofproto/trace`
//! prints (the daemon writes that text; its last line is `Datapath actions: ...`), or as
//! JSON with every pass, line, output and drop.

use std::io::Write;

use proto::v1::{TraceNodeKind, TraceRequest, TraceResponse};
use serde_json::{Value, json};

use crate::cli::Format;
use crate::connect::Client;
use crate::error::Result;
use crate::json::print_json;

/// Runs the trace and prints it.
pub async fn trace(
    client: &mut Client,
    req: TraceRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let r = client.trace(req).await?.into_inner();
    match format {
        Format::Text => write!(out, "{}", text(&r))?,
        Format::Json => print_json(out, &to_json(&r))?,
    }
    Ok(())
}

/// The text form: the trace, then what `--generate` saw.
pub fn text(r: &TraceResponse) -> String {
    let mut s = r.text.clone();
    if let Some(g) = &r.generated {
        s.push_str("\nGenerated: the packet was sent through the tables");
        if !g.settled {
            s.push_str(" (no counter moved within the wait)");
        }
        s.push('\n');
        let mut tx: Vec<_> = g.tx_packets.iter().collect();
        tx.sort();
        for (port, n) in tx {
            s.push_str(&format!("  sent: {port} tx_packets +{n}\n"));
        }
        let mut drops: Vec<_> = g.drops.iter().collect();
        drops.sort();
        for (reason, n) in drops {
            s.push_str(&format!("  dropped: {reason} +{n}\n"));
        }
    }
    s
}

fn kind(k: i32) -> &'static str {
    match TraceNodeKind::try_from(k) {
        Ok(TraceNodeKind::Table) => "table",
        Ok(TraceNodeKind::Action) => "action",
        Ok(TraceNodeKind::Detail) => "detail",
        Ok(TraceNodeKind::Warn) => "warn",
        _ => "unspecified",
    }
}

/// The JSON form.
pub fn to_json(r: &TraceResponse) -> Value {
    let passes: Vec<Value> = r
        .passes
        .iter()
        .map(|p| {
            let nodes: Vec<Value> = p
                .nodes
                .iter()
                .map(|n| {
                    let mut v = json!({"depth": n.depth, "kind": kind(n.kind), "text": n.text});
                    if let Some(rule) = &n.rule {
                        v["rule"] = json!({
                            "table": rule.table_id,
                            "priority": rule.priority,
                            "cookie": format!("{:#x}", rule.cookie),
                            "flow": rule.text,
                        });
                    }
                    v
                })
                .collect();
            json!({
                "header": p.header,
                "flow": p.flow,
                "nodes": nodes,
                "final_flow": p.final_flow,
                "megaflow": p.megaflow,
                "datapath_actions": p.datapath_actions,
            })
        })
        .collect();
    let outputs: Vec<Value> = r
        .outputs
        .iter()
        .map(|o| {
            if o.controller {
                json!({"controller": true})
            } else {
                json!({"port": o.port, "name": o.port_name})
            }
        })
        .collect();
    let mut v = json!({
        "passes": passes,
        "outputs": outputs,
        "drops": r.drops,
        "datapath_actions": r.datapath_actions,
    });
    if let Some(g) = &r.generated {
        v["generated"] = json!({
            "settled": g.settled,
            "tx_packets": g.tx_packets,
            "drops": g.drops,
        });
    }
    v
}
