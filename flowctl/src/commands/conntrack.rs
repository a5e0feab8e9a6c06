//! Connection tracking: `dump-conntrack`, `flush-conntrack` and `ct-stats`, printed as
//! `ovs-appctl dpctl/dump-conntrack` and `dpctl/ct-stats-show` print theirs.

use std::io::Write;

use proto::v1::{DumpConntrackRequest, FlushConntrackRequest, GetConntrackStatsRequest};
use serde_json::{Value, json};

use crate::cli::Format;
use crate::connect::Client;
use crate::error::{Error, Result};
use crate::json::print_json;

/// `[BR] [zone=N]`: the bridge (empty for all) and the zone.
pub fn ct_args(args: &[String]) -> Result<(String, Option<u32>)> {
    let (mut bridge, mut zone) = (String::new(), None);
    for a in args {
        if let Some(z) = a.strip_prefix("zone=") {
            let z = z
                .parse::<u16>()
                .map_err(|_| Error::Usage(format!("{a}: a zone is 0..=65535")))?;
            zone = Some(u32::from(z));
        } else if bridge.is_empty() {
            bridge = a.clone();
        } else {
            return Err(Error::Usage(format!(
                "{a}: expected at most one bridge and zone=N"
            )));
        }
    }
    Ok((bridge, zone))
}

/// `dump-conntrack [BR] [zone=N]` (`-s`: with timeouts): one line per connection.
pub async fn dump(
    client: &mut Client,
    req: DumpConntrackRequest,
    stats: bool,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let entries = client.dump_conntrack(req).await?.into_inner().entries;
    match format {
        Format::Text => {
            for e in &entries {
                let line = if stats { &e.text_stats } else { &e.text };
                writeln!(out, "{line}")?;
            }
        }
        Format::Json => {
            let v: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "bridge": e.bridge,
                        "zone": e.zone,
                        "protocol": e.protocol,
                        "timeout_s": e.timeout_s,
                        "mark": e.mark,
                        "text": e.text,
                    })
                })
                .collect();
            print_json(out, &json!({ "entries": v }))?;
        }
    }
    Ok(())
}

/// `flush-conntrack [BR] [zone=N]`.
pub async fn flush(client: &mut Client, req: FlushConntrackRequest) -> Result<()> {
    client.flush_conntrack(req).await?;
    Ok(())
}

/// `ct-stats [BR]`: per bridge, the connections (per zone and protocol) and every counter.
pub async fn stats(
    client: &mut Client,
    req: GetConntrackStatsRequest,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    let stats = client.get_conntrack_stats(req).await?.into_inner().stats;
    match format {
        Format::Text => {
            for s in &stats {
                writeln!(out, "{}: Connections Stats:", s.bridge)?;
                writeln!(out, "    Total: {} (max {})", s.entries, s.max_conns)?;
                for z in &s.zones {
                    writeln!(out, "    zone={} {}: {}", z.zone, z.protocol, z.entries)?;
                }
                let mut counters: Vec<_> = s.counters.iter().collect();
                counters.sort();
                for (k, v) in counters {
                    writeln!(out, "    {k}: {v}")?;
                }
            }
        }
        Format::Json => {
            let v: Vec<Value> = stats
                .iter()
                .map(|s| {
                    json!({
                        "bridge": s.bridge,
                        "entries": s.entries,
                        "max_conns": s.max_conns,
                        "zones": s.zones.iter().map(|z| json!({
                            "zone": z.zone, "protocol": z.protocol, "entries": z.entries,
                        })).collect::<Vec<_>>(),
                        "counters": s.counters,
                    })
                })
                .collect();
            print_json(out, &json!({ "stats": v }))?;
        }
    }
    Ok(())
}
