//! Read commands: bridges and ports (`list-br`, `show`), Read dumps (`dump-flows`,
//! `dump-meters`, `dump-groups`) and statistics, printed as text or one JSON document.

use std::io::Write;

use proto::flow_text::{format_flow, format_flow_dump, format_group, format_meter};
use proto::v1::{
    Bridge, Entity, GetBridgeRequest, GetGroupStatsRequest, GetMacTableRequest,
    GetMeterStatsRequest, GetPmdStatsRequest, GetPortStatsRequest, GetQueueStatsRequest,
    GetTableStatsRequest, ListBridgesRequest, ReadRequest, entity,
};
use serde_json::{Value, json};

use crate::cli::Format;
use crate::connect::Client;
use crate::error::Result;
use crate::json::print_json;
use crate::{json as js, text};

/// Every entity of a Read, across its response chunks, in the order received.
async fn read_entities(client: &mut Client, req: ReadRequest) -> Result<Vec<Entity>> {
    let mut stream = client.read(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await? {
        out.extend(chunk.entities);
    }
    Ok(out)
}

fn json_list<T>(key: &str, items: &[T], f: impl Fn(&T) -> Value) -> Value {
    json!({ key: items.iter().map(f).collect::<Vec<_>>() })
}

/// `list-br`: names sorted, one per line.
pub async fn list_bridges(client: &mut Client, format: Format, out: &mut dyn Write) -> Result<()> {
    let mut bridges = client
        .list_bridges(ListBridgesRequest {})
        .await?
        .into_inner()
        .bridges;
    bridges.sort_by(|a, b| a.name.cmp(&b.name));
    match format {
        Format::Text => {
            for b in &bridges {
                writeln!(out, "{}", b.name)?;
            }
        }
        Format::Json => print_json(out, &json_list("bridges", &bridges, js::bridge_json))?,
    }
    Ok(())
}

/// `show [BR]`.
pub async fn show(
    client: &mut Client,
    bridge: Option<String>,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let names = match bridge {
        Some(b) => vec![b],
        None => {
            let mut names: Vec<String> = client
                .list_bridges(ListBridgesRequest {})
                .await?
                .into_inner()
                .bridges
                .into_iter()
                .map(|b| b.name)
                .collect();
            names.sort();
            names
        }
    };
    let mut bridges: Vec<Bridge> = Vec::with_capacity(names.len());
    for name in names {
        let resp = client.get_bridge(GetBridgeRequest { name }).await?;
        if let Some(b) = resp.into_inner().bridge {
            bridges.push(b);
        }
    }
    match format {
        Format::Text => {
            for b in &bridges {
                out.write_all(text::bridge_text(b).as_bytes())?;
            }
        }
        Format::Json => print_json(out, &json_list("bridges", &bridges, js::bridge_json))?,
    }
    Ok(())
}

/// `dump-flows`: one flow per line, in the switch's order.
pub async fn dump_flows(
    client: &mut Client,
    req: ReadRequest,
    no_stats: bool,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let flows: Vec<_> = read_entities(client, req)
        .await?
        .into_iter()
        .filter_map(|e| match e.entity {
            Some(entity::Entity::Flow(f)) => Some(f),
            _ => None,
        })
        .collect();
    match format {
        Format::Text => {
            for f in &flows {
                let line = if no_stats {
                    format_flow(f)
                } else {
                    format_flow_dump(f)
                };
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        Format::Json => print_json(out, &json_list("flows", &flows, js::flow_json))?,
    }
    Ok(())
}

/// `dump-meters`: one meter per line.
pub async fn dump_meters(
    client: &mut Client,
    req: ReadRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let meters: Vec<_> = read_entities(client, req)
        .await?
        .into_iter()
        .filter_map(|e| match e.entity {
            Some(entity::Entity::Meter(m)) => Some(m),
            _ => None,
        })
        .collect();
    match format {
        Format::Text => {
            for m in &meters {
                writeln!(out, "{}", format_meter(m))?;
            }
        }
        Format::Json => print_json(out, &json_list("meters", &meters, js::meter_json))?,
    }
    Ok(())
}

/// `dump-groups`: one group per line.
pub async fn dump_groups(
    client: &mut Client,
    req: ReadRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let groups: Vec<_> = read_entities(client, req)
        .await?
        .into_iter()
        .filter_map(|e| match e.entity {
            Some(entity::Entity::Group(g)) => Some(g),
            _ => None,
        })
        .collect();
    match format {
        Format::Text => {
            for g in &groups {
                writeln!(out, "{}", format_group(g))?;
            }
        }
        Format::Json => print_json(out, &json_list("groups", &groups, js::group_json))?,
    }
    Ok(())
}

/// `meter-stats`.
pub async fn meter_stats(
    client: &mut Client,
    req: GetMeterStatsRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let stats = client.get_meter_stats(req).await?.into_inner().stats;
    match format {
        Format::Text => {
            for s in &stats {
                out.write_all(text::meter_stats_text(s).as_bytes())?;
            }
        }
        Format::Json => print_json(out, &json_list("stats", &stats, js::meter_stats_json))?,
    }
    Ok(())
}

/// `group-stats`.
pub async fn group_stats(
    client: &mut Client,
    req: GetGroupStatsRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let stats = client.get_group_stats(req).await?.into_inner().stats;
    match format {
        Format::Text => {
            for s in &stats {
                out.write_all(text::group_stats_text(s).as_bytes())?;
            }
        }
        Format::Json => print_json(out, &json_list("stats", &stats, js::group_stats_json))?,
    }
    Ok(())
}

/// `dump-ports`.
pub async fn port_stats(
    client: &mut Client,
    req: GetPortStatsRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let stats = client.get_port_stats(req).await?.into_inner().stats;
    match format {
        Format::Text => {
            for s in &stats {
                out.write_all(text::port_stats_text(s).as_bytes())?;
            }
        }
        Format::Json => print_json(out, &json_list("stats", &stats, js::port_stats_json))?,
    }
    Ok(())
}

/// `tnl-neigh-show`: per endpoint, `IP MAC AGE` lines, then its tunnel drops.
pub async fn tnl_neigh_show(
    client: &mut Client,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let resp = client
        .get_tunnel_neighbours(proto::v1::GetTunnelNeighboursRequest {})
        .await?
        .into_inner();
    let eps = resp.endpoints;
    match format {
        Format::Text => {
            for e in &eps {
                out.write_all(text::tunnel_endpoint_text(e).as_bytes())?;
            }
            if resp.no_endpoint_drops > 0 {
                writeln!(
                    out,
                    "tunnel ports without an endpoint: tunnel_no_endpoint={}",
                    resp.no_endpoint_drops
                )?;
            }
        }
        Format::Json => {
            let mut v = json_list("endpoints", &eps, js::tunnel_endpoint_json);
            v["no_endpoint_drops"] = resp.no_endpoint_drops.into();
            print_json(out, &v)?
        }
    }
    Ok(())
}

/// `queue-stats`.
pub async fn queue_stats(
    client: &mut Client,
    req: GetQueueStatsRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let stats = client.get_queue_stats(req).await?.into_inner().stats;
    match format {
        Format::Text => {
            for s in &stats {
                out.write_all(text::queue_stats_text(s).as_bytes())?;
            }
        }
        Format::Json => print_json(out, &json_list("stats", &stats, js::queue_stats_json))?,
    }
    Ok(())
}

/// `dump-tables`: only tables with flows or lookups (text and JSON alike).
pub async fn table_stats(
    client: &mut Client,
    req: GetTableStatsRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let stats: Vec<_> = client
        .get_table_stats(req)
        .await?
        .into_inner()
        .stats
        .into_iter()
        .filter(text::table_is_active)
        .collect();
    match format {
        Format::Text => {
            for s in &stats {
                out.write_all(text::table_stats_text(s).as_bytes())?;
            }
        }
        Format::Json => print_json(out, &json_list("stats", &stats, js::table_stats_json))?,
    }
    Ok(())
}

/// `fdb-show`.
pub async fn mac_table(
    client: &mut Client,
    req: GetMacTableRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let resp = client.get_mac_table(req).await?.into_inner();
    match format {
        Format::Text => out.write_all(text::fdb_text(&resp.entries).as_bytes())?,
        Format::Json => {
            let mut v = json_list("entries", &resp.entries, js::mac_entry_json);
            v["stats"] = js::mac_table_stats_json(&resp.stats.unwrap_or_default());
            print_json(out, &v)?;
        }
    }
    Ok(())
}

/// `fdb-stats-show`.
pub async fn mac_stats(
    client: &mut Client,
    req: GetMacTableRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let bridge = req.bridge.clone();
    let stats = client
        .get_mac_table(req)
        .await?
        .into_inner()
        .stats
        .unwrap_or_default();
    match format {
        Format::Text => out.write_all(text::fdb_stats_text(&bridge, &stats).as_bytes())?,
        Format::Json => print_json(
            out,
            &serde_json::json!({ "stats": js::mac_table_stats_json(&stats) }),
        )?,
    }
    Ok(())
}

/// `pmd-stats`.
pub async fn pmd_stats(client: &mut Client, format: Format, out: &mut dyn Write) -> Result<()> {
    let pmds = client
        .get_pmd_stats(GetPmdStatsRequest {})
        .await?
        .into_inner()
        .pmds;
    match format {
        Format::Text => {
            for p in &pmds {
                out.write_all(text::pmd_stats_text(p).as_bytes())?;
            }
        }
        Format::Json => print_json(out, &json_list("pmds", &pmds, js::pmd_stats_json))?,
    }
    Ok(())
}
