//! From a parsed command line to the request(s) to send: every argument is checked and
//! every flow, match, meter and group is parsed here, before any connection is made, so a
//! bad command line sends nothing (exit code 2).
//!
//! [`prepare`] is pure (apart from reading an `add-flows` file), which is what the unit
//! tests below exercise.

use std::collections::HashMap;

use proto::flow_text::{
    MAX_GROUP_ID, MAX_METER_ID, parse_actions, parse_flow, parse_flow_modify, parse_group,
    parse_match, parse_meter,
};
use proto::v1::{
    AddBridgeRequest, AddPortRequest, Atomicity, DelBridgeRequest, DelPortRequest, Entity,
    FailMode, Flow, GetGroupStatsRequest, GetMacTableRequest, GetMeterStatsRequest,
    GetPortStatsRequest, GetQueueStatsRequest, GetTableStatsRequest, Group, GroupFilter, Meter,
    MeterFilter, ModPortRequest, PacketOut, PortConfig, PortRef, ReadFilter, ReadRequest,
    ReservedPort, SetPortOptionsRequest, Update, WriteRequest, entity, port_ref, read_filter,
    update,
};

use crate::cli::{Cli, Command};
use crate::error::{Error, Result};
use crate::flowfile::FlowFile;

/// What a command sends, fully built.
#[derive(Debug)]
pub enum Request {
    /// AddBridge.
    AddBridge(AddBridgeRequest),
    /// DelBridge.
    DelBridge(DelBridgeRequest),
    /// ListBridges, names only.
    ListBridges,
    /// GetBridge of one bridge, or of every bridge (ListBridges first).
    Show(Option<String>),
    /// AddPort.
    AddPort(AddPortRequest),
    /// DelPort.
    DelPort(DelPortRequest),
    /// SetPortOptions.
    SetPort(SetPortOptionsRequest),
    /// ModPort.
    ModPort(ModPortRequest),
    /// One Write (add-flow, mod-flows, del-flows, meters, groups).
    Write(WriteRequest),
    /// add-flows: the parsed file, sent in Writes of `batch` updates
    /// ([`crate::cli::FLOWS_PER_WRITE`] unless `--batch` says otherwise).
    AddFlows {
        /// The bridge.
        bridge: String,
        /// The flows with their line numbers.
        file: FlowFile,
        /// Flows per Write.
        batch: usize,
    },
    /// del-groups without an id: read the groups, delete them all in one Write.
    DelAllGroups {
        /// The bridge.
        bridge: String,
    },
    /// dump-flows.
    DumpFlows {
        /// The Read.
        read: ReadRequest,
        /// Print without counters.
        no_stats: bool,
    },
    /// dump-meters.
    DumpMeters(ReadRequest),
    /// dump-groups.
    DumpGroups(ReadRequest),
    /// meter-stats.
    MeterStats(GetMeterStatsRequest),
    /// group-stats.
    GroupStats(GetGroupStatsRequest),
    /// dump-ports.
    PortStats(GetPortStatsRequest),
    /// queue-stats.
    QueueStats(GetQueueStatsRequest),
    /// dump-tables.
    TableStats(GetTableStatsRequest),
    /// fdb-show.
    MacTable(GetMacTableRequest),
    /// fdb-stats-show.
    MacStats(GetMacTableRequest),
    /// dump-conntrack (with timeouts).
    DumpConntrack(proto::v1::DumpConntrackRequest, bool),
    /// flush-conntrack.
    FlushConntrack(proto::v1::FlushConntrackRequest),
    /// ct-stats.
    CtStats(proto::v1::GetConntrackStatsRequest),
    /// ct-set-maxconns, ct-set-limits, ct-del-limits.
    SetCtLimits(proto::v1::SetConntrackLimitsRequest),
    /// ct-get-limits (false) or ct-get-maxconns (true).
    GetCtLimits(proto::v1::GetConntrackLimitsRequest, bool),
    /// ct-set-timeouts, ct-del-timeouts.
    SetCtTimeouts(proto::v1::SetConntrackTimeoutsRequest),
    /// ct-get-timeouts.
    GetCtTimeouts(proto::v1::GetConntrackTimeoutsRequest),
    /// trace.
    Trace(proto::v1::TraceRequest),
    /// add-mirror.
    AddMirror(proto::v1::AddMirrorRequest),
    /// del-mirror BR NAME.
    DelMirror(String, String),
    /// list-mirrors [BR].
    ListMirrors(Option<String>),
    /// capture: the request and the file to write (`-`: standard output).
    Capture(proto::v1::CaptureRequest, String),
    /// pmd-stats.
    PmdStats,
    /// pmd-stats-clear.
    PmdStatsClear,
    /// set-tunnel-ip: delete the endpoint port if it exists, then add it.
    SetTunnelIp(DelPortRequest, AddPortRequest),
    /// tnl-neigh-show.
    TnlNeighShow,
    /// set-pmd-cpus.
    SetPmdCpus(proto::v1::SetPmdCpusRequest),
    /// monitor.
    Monitor {
        /// The bridge.
        bridge: String,
        /// Exit after this many events.
        count: Option<u64>,
    },
    /// packet-out.
    PacketOut(PacketOut),
    /// set-controller, del-controller, get-controller, set/get/del-fail-mode.
    Controller(crate::controllers::Request),
}

/// `mod-port`'s words, as `ovs-ofctl`'s: the configuration bits and the mask they change.
pub(crate) fn mod_port_bits(action: &str) -> Result<(u32, u32)> {
    const PORT_DOWN: u32 = 1;
    const NO_RECV: u32 = 1 << 2;
    const NO_FWD: u32 = 1 << 5;
    const NO_PACKET_IN: u32 = 1 << 6;
    Ok(match action {
        "up" => (0, PORT_DOWN),
        "down" => (PORT_DOWN, PORT_DOWN),
        "receive" => (0, NO_RECV),
        "no-receive" => (NO_RECV, NO_RECV),
        "forward" => (0, NO_FWD),
        "no-forward" => (NO_FWD, NO_FWD),
        "packet-in" => (0, NO_PACKET_IN),
        "no-packet-in" => (NO_PACKET_IN, NO_PACKET_IN),
        _ => {
            return Err(usage(format!(
                "mod-port: unknown action {action:?} (up, down, receive, no-receive, forward, \
                 no-forward, packet-in, no-packet-in)"
            )));
        }
    })
}

fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

fn parsed<T>(input: &str, r: std::result::Result<T, proto::flow_text::ParseError>) -> Result<T> {
    r.map_err(|err| Error::Parse {
        input: input.to_string(),
        err,
    })
}

/// A single-update Write, all or nothing.
pub fn single_write(bridge: &str, ty: update::Type, e: entity::Entity) -> WriteRequest {
    WriteRequest {
        bridge: bridge.to_string(),
        updates: vec![make_update(ty, e)],
        atomicity: Atomicity::AllOrNone as i32,
    }
}

/// One update.
pub fn make_update(ty: update::Type, e: entity::Entity) -> Update {
    Update {
        r#type: ty as i32,
        entity: Some(Entity { entity: Some(e) }),
    }
}

/// The INSERT update of one flow.
pub fn insert_flow(flow: Flow) -> Update {
    make_update(update::Type::Insert, entity::Entity::Flow(flow))
}

/// A decimal or `0x` hexadecimal u32.
fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// An id given as `N` or `KEY=N` (e.g. `meter=5`, `group_id=3`), at most `max`.
/// A CPU list: `default`, or comma-separated CPUs and ranges (`0,2-3`), at most 1024.
fn parse_cpus(arg: &str) -> Result<Vec<u32>> {
    if arg == "default" {
        return Ok(Vec::new());
    }
    let bad = || {
        usage(format!(
            "`{arg}`: expected CPUs like 1, 0,1 or 0-3 (or `default`)"
        ))
    };
    let mut out = Vec::new();
    for part in arg.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: u32 = a.trim().parse().map_err(|_| bad())?;
        let b: u32 = b.trim().parse().map_err(|_| bad())?;
        if a > b || b >= 1024 {
            return Err(bad());
        }
        for c in a..=b {
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

fn parse_id(arg: &str, keys: &[&str], what: &str, max: u32) -> Result<u32> {
    let value = match arg.split_once('=') {
        Some((k, v)) if keys.contains(&k) => v,
        Some((k, _)) => {
            return Err(usage(format!(
                "`{arg}`: expected {what} as N or {}=N, not `{k}=`",
                keys[0]
            )));
        }
        None => arg,
    };
    match parse_u32(value) {
        Some(n) if n <= max => Ok(n),
        _ => Err(usage(format!(
            "`{arg}`: {what} must be a number from 0 to {max}"
        ))),
    }
}

/// A port argument: number, `LOCAL`, `CONTROLLER`, or a name.
pub fn port_arg(s: &str) -> Result<PortRef> {
    let port = if s.eq_ignore_ascii_case("LOCAL") {
        port_ref::Port::Reserved(ReservedPort::Local as i32)
    } else if s.eq_ignore_ascii_case("CONTROLLER") {
        port_ref::Port::Reserved(ReservedPort::Controller as i32)
    } else if s.eq_ignore_ascii_case("TABLE") {
        port_ref::Port::Reserved(ReservedPort::Table as i32)
    } else if s.starts_with(|c: char| c.is_ascii_digit()) {
        match parse_u32(s) {
            Some(n) if n != 0 => port_ref::Port::Number(n),
            _ => return Err(usage(format!("`{s}`: not a valid port number"))),
        }
    } else if s.is_empty() {
        return Err(usage("empty port"));
    } else {
        port_ref::Port::Name(s.to_string())
    };
    Ok(PortRef { port: Some(port) })
}

/// `KEY=VALUE` (or `options:KEY=VALUE`).
fn key_value(arg: &str) -> Result<(&str, &str)> {
    let arg = arg.strip_prefix("options:").unwrap_or(arg);
    match arg.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(usage(format!("`{arg}`: expected KEY=VALUE"))),
    }
}

/// `add-port` settings into a [`PortConfig`].
fn port_config(name: &str, settings: &[String]) -> Result<PortConfig> {
    let mut cfg = PortConfig {
        name: name.to_string(),
        ..PortConfig::default()
    };
    for s in settings {
        let (k, v) = key_value(s)?;
        // `options:type=x` is an option named `type`, not the port type.
        let option = s.starts_with("options:");
        match k {
            "type" if !option => cfg.r#type = v.to_string(),
            "ofport_request" if !option => match parse_u32(v) {
                Some(n) if n != 0 && n <= proto::flow_text::MAX_PORT_NO => {
                    cfg.requested_ofport = Some(n);
                }
                _ => {
                    return Err(usage(format!(
                        "`{s}`: ofport_request must be a port number from 1 to {}",
                        proto::flow_text::MAX_PORT_NO
                    )));
                }
            },
            _ => {
                cfg.options.insert(k.to_string(), v.to_string());
            }
        }
    }
    Ok(cfg)
}

/// Hex packet data; spaces, `:`, `.` and a leading `0x` are ignored.
fn hex_data(s: &str) -> Result<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'.' | b'\t' | b'\n'))
        .collect();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(usage(
            "packet data must be an even, non-zero number of hex digits",
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| usage("packet data must be hex digits"))
        })
        .collect()
}

fn read_one(bridge: &str, f: read_filter::Filter) -> ReadRequest {
    ReadRequest {
        bridge: bridge.to_string(),
        filters: vec![ReadFilter { filter: Some(f) }],
    }
}

/// `add-br BR [fail_mode=M] [datapath_id=N]`.
fn add_br(bridge: &str, settings: &[String]) -> Result<AddBridgeRequest> {
    let mut r = AddBridgeRequest {
        name: bridge.to_string(),
        ..AddBridgeRequest::default()
    };
    for s in settings {
        match s.split_once('=') {
            Some(("fail_mode", "standalone")) => r.fail_mode = FailMode::Standalone as i32,
            Some(("fail_mode", "secure")) => r.fail_mode = FailMode::Secure as i32,
            Some(("datapath_id", v)) => {
                let n = match v.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => v.parse(),
                };
                r.datapath_id =
                    Some(n.map_err(|_| usage(format!("{s}: expected a number (0x for hex)")))?);
            }
            Some(("other_config:datapath-id", v)) => {
                let n = u64::from_str_radix(v, 16)
                    .map_err(|_| usage(format!("{s}: expected up to 16 hex digits")))?;
                r.datapath_id = Some(n);
            }
            _ => {
                return Err(usage(format!(
                    "add-br {bridge}: unknown setting {s:?} (fail_mode=standalone|secure, \
                     datapath_id=N, other_config:datapath-id=HEX)"
                )));
            }
        }
    }
    Ok(r)
}

/// Checks the command line and builds what to send.
pub fn prepare(cli: &Cli) -> Result<Request> {
    use update::Type::{Delete, Insert, Modify};
    Ok(match &cli.command {
        Command::AddBr { bridge, settings } => Request::AddBridge(add_br(bridge, settings)?),
        Command::DelBr { bridge } => Request::DelBridge(DelBridgeRequest {
            name: bridge.clone(),
            if_exists: cli.if_exists,
        }),
        Command::ListBr => Request::ListBridges,
        Command::Show { bridge } => Request::Show(bridge.clone()),
        Command::AddPort {
            bridge,
            port,
            settings,
        } => Request::AddPort(AddPortRequest {
            bridge: bridge.clone(),
            port: Some(port_config(port, settings)?),
        }),
        Command::DelPort { bridge, port } => Request::DelPort(DelPortRequest {
            bridge: bridge.clone(),
            name: port.clone(),
            if_exists: cli.if_exists,
        }),
        Command::SetPort {
            bridge,
            port,
            options,
            remove,
        } => {
            if options.is_empty() && remove.is_empty() {
                return Err(usage("set-port needs KEY=VALUE options or --remove KEY"));
            }
            let mut map = HashMap::new();
            for o in options {
                let (k, v) = key_value(o)?;
                map.insert(k.to_string(), v.to_string());
            }
            Request::SetPort(SetPortOptionsRequest {
                bridge: bridge.clone(),
                name: port.clone(),
                options: map,
                remove: remove.clone(),
            })
        }

        Command::ModPort {
            bridge,
            port,
            action,
        } => {
            let (config, mask) = mod_port_bits(action)?;
            Request::ModPort(ModPortRequest {
                bridge: bridge.clone(),
                name: port.clone(),
                config,
                mask,
            })
        }

        Command::AddFlow { bridge, flow } => Request::Write(single_write(
            bridge,
            Insert,
            entity::Entity::Flow(parsed(flow, parse_flow(flow))?),
        )),
        Command::AddFlows {
            bridge,
            file,
            batch,
        } => Request::AddFlows {
            bridge: bridge.clone(),
            file: FlowFile::read(file)?,
            batch: *batch,
        },
        Command::ModFlows { bridge, flow } => {
            let mut m = parsed(flow, parse_flow_modify(flow))?;
            if let Some(f) = m.filter.as_mut() {
                f.strict = cli.strict;
            }
            Request::Write(single_write(bridge, Modify, entity::Entity::FlowModify(m)))
        }
        Command::DelFlows { bridge, r#match } => {
            let mut f = parsed(r#match, parse_match(r#match))?;
            f.strict = cli.strict;
            Request::Write(single_write(bridge, Delete, entity::Entity::FlowFilter(f)))
        }
        Command::DumpFlows {
            bridge,
            r#match,
            no_stats,
        } => {
            let mut f = parsed(r#match, parse_match(r#match))?;
            f.strict = cli.strict;
            Request::DumpFlows {
                read: read_one(bridge, read_filter::Filter::Flows(f)),
                no_stats: *no_stats,
            }
        }

        Command::AddMeter { bridge, meter } => Request::Write(single_write(
            bridge,
            Insert,
            entity::Entity::Meter(parsed(meter, parse_meter(meter))?),
        )),
        Command::ModMeter { bridge, meter } => Request::Write(single_write(
            bridge,
            Modify,
            entity::Entity::Meter(parsed(meter, parse_meter(meter))?),
        )),
        Command::DelMeter { bridge, id } => {
            let id = parse_id(id, &["meter"], "meter id", MAX_METER_ID)?;
            Request::Write(single_write(
                bridge,
                Delete,
                entity::Entity::Meter(Meter {
                    id,
                    ..Meter::default()
                }),
            ))
        }
        Command::DumpMeters { bridge } => Request::DumpMeters(read_one(
            bridge,
            read_filter::Filter::Meters(MeterFilter { id: None }),
        )),
        Command::MeterStats { bridge, id } => Request::MeterStats(GetMeterStatsRequest {
            bridge: bridge.clone(),
            meter_id: id
                .as_deref()
                .map(|id| parse_id(id, &["meter"], "meter id", MAX_METER_ID))
                .transpose()?,
        }),

        Command::AddGroup { bridge, group } => Request::Write(single_write(
            bridge,
            Insert,
            entity::Entity::Group(parsed(group, parse_group(group))?),
        )),
        Command::ModGroup { bridge, group } => Request::Write(single_write(
            bridge,
            Modify,
            entity::Entity::Group(parsed(group, parse_group(group))?),
        )),
        Command::DelGroups { bridge, group } => match group {
            Some(g) => {
                let id = parse_id(g, &["group_id"], "group id", MAX_GROUP_ID)?;
                Request::Write(single_write(
                    bridge,
                    Delete,
                    entity::Entity::Group(Group {
                        id,
                        ..Group::default()
                    }),
                ))
            }
            None => Request::DelAllGroups {
                bridge: bridge.clone(),
            },
        },
        Command::DumpGroups { bridge } => Request::DumpGroups(read_one(
            bridge,
            read_filter::Filter::Groups(GroupFilter { id: None }),
        )),
        Command::GroupStats { bridge, group } => Request::GroupStats(GetGroupStatsRequest {
            bridge: bridge.clone(),
            group_id: group
                .as_deref()
                .map(|g| parse_id(g, &["group_id"], "group id", MAX_GROUP_ID))
                .transpose()?,
        }),

        Command::DumpPorts { bridge, port } => Request::PortStats(GetPortStatsRequest {
            bridge: bridge.clone(),
            port: port.as_deref().map(port_arg).transpose()?,
        }),
        Command::QueueStats {
            bridge,
            port,
            queue,
        } => Request::QueueStats(GetQueueStatsRequest {
            bridge: bridge.clone(),
            port: port.as_deref().map(port_arg).transpose()?,
            queue_id: *queue,
        }),
        Command::DumpTables { bridge } => Request::TableStats(GetTableStatsRequest {
            bridge: bridge.clone(),
        }),
        Command::FdbShow { bridge } => Request::MacTable(GetMacTableRequest {
            bridge: bridge.clone(),
        }),
        Command::FdbStatsShow { bridge } => Request::MacStats(GetMacTableRequest {
            bridge: bridge.clone(),
        }),
        Command::DumpConntrack { args, stats } => {
            let (bridge, zone) = crate::commands::conntrack::ct_args(args)?;
            Request::DumpConntrack(proto::v1::DumpConntrackRequest { bridge, zone }, *stats)
        }
        Command::FlushConntrack { args } => {
            let (bridge, zone) = crate::commands::conntrack::ct_args(args)?;
            Request::FlushConntrack(proto::v1::FlushConntrackRequest { bridge, zone })
        }
        Command::CtStats { bridge } => Request::CtStats(proto::v1::GetConntrackStatsRequest {
            bridge: bridge.clone().unwrap_or_default(),
        }),
        Command::CtSetMaxconns { args } => {
            Request::SetCtLimits(crate::commands::ct_limits::set_maxconns_args(args)?)
        }
        Command::CtGetMaxconns { bridge } => Request::GetCtLimits(
            proto::v1::GetConntrackLimitsRequest {
                bridge: bridge.clone().unwrap_or_default(),
                zones: Vec::new(),
            },
            true,
        ),
        Command::CtSetLimits { args } => {
            Request::SetCtLimits(crate::commands::ct_limits::set_limits_args(args)?)
        }
        Command::CtGetLimits { args } => {
            Request::GetCtLimits(crate::commands::ct_limits::get_limits_args(args)?, false)
        }
        Command::CtDelLimits { args } => {
            Request::SetCtLimits(crate::commands::ct_limits::del_limits_args(args)?)
        }
        Command::CtSetTimeouts { args } => {
            Request::SetCtTimeouts(crate::commands::ct_timeouts::set_args(args)?)
        }
        Command::CtGetTimeouts { args } => {
            Request::GetCtTimeouts(crate::commands::ct_timeouts::get_args(args)?)
        }
        Command::CtDelTimeouts { args } => {
            Request::SetCtTimeouts(crate::commands::ct_timeouts::del_args(args)?)
        }
        Command::AddMirror { bridge, name, args } => {
            Request::AddMirror(crate::commands::mirror::add_args(bridge, name, args)?)
        }
        Command::DelMirror { bridge, name } => Request::DelMirror(bridge.clone(), name.clone()),
        Command::ListMirrors { bridge } => Request::ListMirrors(bridge.clone()),
        Command::PmdStats => Request::PmdStats,
        Command::PmdStatsClear => Request::PmdStatsClear,
        Command::TnlNeighShow => Request::TnlNeighShow,
        Command::SetTunnelIp {
            bridge,
            ip,
            settings,
        } => {
            let name = format!("{bridge}-tep");
            if name.len() > 15 {
                return Err(usage(format!(
                    "bridge name {bridge:?} is too long for its endpoint port {name:?} (15 characters)"
                )));
            }
            let mut options = HashMap::new();
            options.insert("ip".to_string(), ip.clone());
            for s in settings {
                match s.split_once('=') {
                    Some((k @ ("gw" | "mtu"), v)) => {
                        options.insert(k.to_string(), v.to_string());
                    }
                    _ => return Err(usage(format!("`{s}`: expected gw=IP or mtu=N"))),
                }
            }
            Request::SetTunnelIp(
                DelPortRequest {
                    bridge: bridge.clone(),
                    name: name.clone(),
                    if_exists: true,
                },
                AddPortRequest {
                    bridge: bridge.clone(),
                    port: Some(proto::v1::PortConfig {
                        name,
                        r#type: "tunnel-endpoint".into(),
                        options,
                        requested_ofport: None,
                    }),
                },
            )
        }
        Command::SetPmdCpus { bridge, cpus } => Request::SetPmdCpus(proto::v1::SetPmdCpusRequest {
            bridge: bridge.clone(),
            cpus: parse_cpus(cpus)?,
        }),
        Command::SetController { bridge, targets } => {
            Request::Controller(crate::controllers::set_controller(bridge, targets)?)
        }
        Command::DelController { bridge } => {
            Request::Controller(crate::controllers::del_controller(bridge))
        }
        Command::GetController { bridge } => {
            Request::Controller(crate::controllers::Request::Get(bridge.clone()))
        }
        Command::SetFailMode { bridge, mode } => {
            Request::Controller(crate::controllers::set_fail_mode(bridge, Some(mode))?)
        }
        Command::DelFailMode { bridge } => {
            Request::Controller(crate::controllers::set_fail_mode(bridge, None)?)
        }
        Command::GetFailMode { bridge } => {
            Request::Controller(crate::controllers::Request::GetFailMode(bridge.clone()))
        }
        Command::Monitor { bridge, count } => Request::Monitor {
            bridge: bridge.clone(),
            count: *count,
        },
        Command::PacketOut {
            bridge,
            in_port,
            actions,
            data,
        } => {
            let in_port = match in_port.strip_prefix("in_port=") {
                Some(p) => Some(port_arg(p)?),
                None if in_port == "-" => None,
                None => return Err(usage(format!("`{in_port}`: expected in_port=PORT"))),
            };
            let list = actions
                .strip_prefix("actions=")
                .ok_or_else(|| usage(format!("`{actions}`: expected actions=ACTIONS")))?;
            Request::PacketOut(PacketOut {
                bridge: bridge.clone(),
                in_port,
                actions: parsed(list, parse_actions(list))?,
                data: hex_data(data)?,
            })
        }
        Command::Capture {
            bridge,
            port,
            direction,
            count,
            snaplen,
            duration,
            write,
        } => Request::Capture(
            proto::v1::CaptureRequest {
                bridge: bridge.clone(),
                port: port.clone(),
                direction: crate::commands::capture::direction(*direction) as i32,
                count: count.unwrap_or(0),
                snaplen: snaplen.unwrap_or(0),
                duration_ms: duration
                    .map(crate::commands::capture::duration_ms)
                    .transpose()?
                    .unwrap_or(0),
            },
            write.clone(),
        ),
        Command::Trace {
            bridge,
            flow,
            packet,
            generate,
        } => Request::Trace(proto::v1::TraceRequest {
            bridge: bridge.clone(),
            flow: flow.clone(),
            packet: packet
                .as_deref()
                .map(hex_data)
                .transpose()?
                .unwrap_or_default(),
            generate: *generate,
        }),
    })
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
