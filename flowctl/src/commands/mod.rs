//! Running a prepared [`Request`] against the switch and printing the outcome.
//!
//! - [`write`]: Write RPCs (single updates, add-flows in batches, del-groups), and turning
//!   failed updates into messages that point at the update (and the `FILE:LINE` it came from).
//! - [`read`]: bridges, ports, Read dumps and statistics, in text or JSON.
//! - [`stream`]: the event stream (`monitor`) and `packet-out`.
//! - [`capture`]: `capture`, a port's frames written as pcapng.
//! - [`conntrack`]: `dump-conntrack`, `flush-conntrack`, `ct-stats`.
//! - [`ct_limits`]: `ct-set-maxconns`, `ct-get-maxconns`, `ct-set-limits`, `ct-get-limits`,
//!   `ct-del-limits`.
//! - [`ct_timeouts`]: `ct-set-timeouts`, `ct-get-timeouts`, `ct-del-timeouts`.
//! - [`mirror`]: `add-mirror`, `del-mirror`, `list-mirrors`.

pub mod capture;
pub mod conntrack;
pub mod ct_limits;
pub mod ct_timeouts;
pub mod mirror;
pub mod read;
pub mod stream;
pub mod trace;
pub mod write;

use std::io::Write;

use crate::cli::Format;
use crate::connect::Client;
use crate::error::Result;
use crate::request::Request;

/// Runs `req`, printing results on `out` in `format`.
pub async fn execute(
    client: &mut Client,
    req: Request,
    format: Format,
    out: &mut dyn Write,
) -> Result<()> {
    match req {
        Request::AddBridge(r) => {
            client.add_bridge(r).await?;
        }
        Request::DelBridge(r) => {
            client.del_bridge(r).await?;
        }
        Request::AddPort(r) => {
            client.add_port(r).await?;
        }
        Request::DelPort(r) => {
            client.del_port(r).await?;
        }
        Request::SetPort(r) => {
            client.set_port_options(r).await?;
        }
        Request::ModPort(r) => {
            client.mod_port(r).await?;
        }
        Request::SetTunnelIp(del, add) => {
            client.del_port(del).await?;
            client.add_port(add).await?;
        }
        Request::TnlNeighShow => read::tnl_neigh_show(client, format, out).await?,
        Request::SetPmdCpus(r) => {
            client.set_pmd_cpus(r).await?;
        }
        Request::PmdStatsClear => {
            client
                .clear_pmd_stats(proto::v1::ClearPmdStatsRequest {})
                .await?;
        }
        Request::Write(w) => write::write_one(client, w).await?,
        Request::AddFlows {
            bridge,
            file,
            batch,
        } => write::add_flows(client, &bridge, file, batch).await?,
        Request::DelAllGroups { bridge } => write::del_all_groups(client, &bridge).await?,
        Request::ListBridges => read::list_bridges(client, format, out).await?,
        Request::Show(bridge) => read::show(client, bridge, format, out).await?,
        Request::DumpFlows { read, no_stats } => {
            read::dump_flows(client, read, no_stats, format, out).await?;
        }
        Request::DumpMeters(r) => read::dump_meters(client, r, format, out).await?,
        Request::DumpGroups(r) => read::dump_groups(client, r, format, out).await?,
        Request::MeterStats(r) => read::meter_stats(client, r, format, out).await?,
        Request::GroupStats(r) => read::group_stats(client, r, format, out).await?,
        Request::PortStats(r) => read::port_stats(client, r, format, out).await?,
        Request::QueueStats(r) => read::queue_stats(client, r, format, out).await?,
        Request::TableStats(r) => read::table_stats(client, r, format, out).await?,
        Request::MacTable(r) => read::mac_table(client, r, format, out).await?,
        Request::MacStats(r) => read::mac_stats(client, r, format, out).await?,
        Request::PmdStats => read::pmd_stats(client, format, out).await?,
        Request::Monitor { bridge, count } => {
            stream::monitor(client, &bridge, count, format, out).await?;
        }
        Request::PacketOut(p) => stream::packet_out(client, p).await?,
        Request::DumpConntrack(r, stats) => conntrack::dump(client, r, stats, format, out).await?,
        Request::FlushConntrack(r) => conntrack::flush(client, r).await?,
        Request::CtStats(r) => conntrack::stats(client, r, format, out).await?,
        Request::SetCtLimits(r) => ct_limits::set(client, r).await?,
        Request::GetCtLimits(r, maxconns) => {
            ct_limits::get(client, r, maxconns, format, out).await?
        }
        Request::SetCtTimeouts(r) => ct_timeouts::set(client, r).await?,
        Request::GetCtTimeouts(r) => ct_timeouts::get(client, r, format, out).await?,
        Request::Trace(r) => trace::trace(client, r, format, out).await?,
        Request::AddMirror(r) => mirror::add(client, r).await?,
        Request::DelMirror(bridge, name) => mirror::del(client, &bridge, &name).await?,
        Request::ListMirrors(bridge) => mirror::list(client, bridge, format, out).await?,
        Request::Capture(r, file) => capture::capture(client, r, &file, out).await?,
        Request::Controller(r) => crate::controllers::execute(client, r, out).await?,
    }
    out.flush()?;
    Ok(())
}
