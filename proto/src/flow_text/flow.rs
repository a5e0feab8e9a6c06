//! Flows: add-flow lines, del-flows / dump-flows filters and mod-flows lines read into the
//! API messages, and flows and filters printed back (the add-flow form and the dump-flows
//! form with counters).

use std::fmt::Write as _;

use crate::v1::{Flow, FlowFilter, FlowFlags, FlowModify, FlowStats, Instruction, Match, PortRef};

use super::instructions::{format_instructions, parse_instructions};
use super::lexer::{ParseError, Result, Tok, split_flow, split_tokens};
use super::limits::{DEFAULT_PRIORITY, MAX_GROUP_ID, MAX_TABLE_ID};
use super::match_text::format_match;
use super::matches::{MatchBuilder, match_token, protocol_context};
use super::ports::{parse_port_number, port_ref, port_ref_text};
use super::scalar::{num, num_u32};
use super::size::check_flow_size;

/// What a flow-ish string may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// add-flow: actions required, no out_port, cookie mask only all-ones.
    Add,
    /// del-flows / dump-flows: no actions, out_port and cookie masks allowed.
    Filter,
    /// mod-flows: actions required, cookie masks select.
    Modify,
}

/// Everything a flow-ish string can say.
#[derive(Debug, Default)]
struct Parsed {
    table_id: Option<u32>,
    priority: Option<u32>,
    /// `cookie=X/MASK` (a mask of `-1` is all ones).
    cookie_masked: Option<(u64, u64)>,
    /// `cookie=X` without a mask.
    cookie: Option<u64>,
    importance: u32,
    idle_timeout: u32,
    hard_timeout: u32,
    flags: FlowFlags,
    out_port: Option<PortRef>,
    out_group: Option<u32>,
    m: Match,
    instructions: Vec<Instruction>,
}

/// Keywords of a flow's head that may be given once (`cookie` once with a mask and once
/// without, see [`parse_cookie`]).
const ONCE_KEYS: &[&str] = &[
    "table",
    "priority",
    "idle_timeout",
    "hard_timeout",
    "importance",
    "out_port",
    "out_group",
];

/// Counters printed by dump-flows that a parser ignores, as ovs-ofctl does.
const IGNORED_KEYS: &[&str] = &["duration", "n_packets", "n_bytes", "idle_age", "hard_age"];

fn parse_parts<'a>(tokens: &[Tok<'a>], actions: Option<Tok<'a>>, mode: Mode) -> Result<Parsed> {
    let ctx = protocol_context(tokens);
    let mut p = Parsed::default();
    let mut mb = MatchBuilder::default();
    let mut seen: Vec<&str> = Vec::new();
    for &tok in tokens {
        let (key, _) = tok.key_value();
        if ONCE_KEYS.contains(&key) {
            if seen.contains(&key) {
                return Err(tok.err(format!("`{key}` given twice")));
            }
            seen.push(key);
        }
        if !flow_keyword(&mut p, tok, mode)? && !IGNORED_KEYS.contains(&key) {
            match_token(&mut mb, tok, ctx)?;
        }
    }
    p.m = mb.finish()?;
    match (actions, mode) {
        (Some(a), Mode::Filter) => {
            return Err(Tok {
                at: a.at.saturating_sub("actions=".len()),
                text: "actions=",
            }
            .err("a match takes no actions"));
        }
        (None, Mode::Add | Mode::Modify) => {
            let end = tokens.last().map_or(0, |t| t.at + t.text.len());
            return Err(ParseError::new(
                end,
                "",
                "missing `actions=...` (use `actions=drop` to drop)",
            ));
        }
        (Some(a), _) => {
            // Actions are separated by commas or spaces, as Open vSwitch reads them.
            let list = split_tokens(a.text, a.at, true);
            p.instructions = parse_instructions(&list, &p.m, p.table_id.unwrap_or(0))?;
            check_flow_size(&p.m, &p.instructions).map_err(|m| a.err(m))?;
            super::conj::check_conjunctions(&p.instructions).map_err(|m| a.err(m))?;
            for i in &p.instructions {
                if let Some(crate::v1::instruction::Instruction::ApplyActions(l)) = &i.instruction
                    && super::ct::commit_on_invalid(&p.m.fields, &l.actions).is_some()
                {
                    return Err(a.err(super::ct::CT_COMMIT_INVALID));
                }
            }
        }
        (None, Mode::Filter) => {}
    }
    Ok(p)
}

/// A keyword of the flow itself (not of its match): table, priority, cookie, timeouts,
/// flags, out_port / out_group. Returns whether `tok` was one.
fn flow_keyword(p: &mut Parsed, tok: Tok<'_>, mode: Mode) -> Result<bool> {
    let (key, value) = tok.key_value();
    let need = || value.ok_or_else(|| tok.err(format!("`{key}` needs a value: `{key}=...`")));
    match key {
        "table" => p.table_id = Some(num_u32(need()?, MAX_TABLE_ID, "table")?),
        "priority" => p.priority = Some(num_u32(need()?, 65535, "priority")?),
        "idle_timeout" => p.idle_timeout = num_u32(need()?, 65535, "idle_timeout")?,
        "hard_timeout" => p.hard_timeout = num_u32(need()?, 65535, "hard_timeout")?,
        "cookie" => parse_cookie(p, need()?, mode)?,
        "importance" => {
            if mode != Mode::Add {
                return Err(tok.err("`importance` is only valid when adding a flow"));
            }
            p.importance = num_u32(need()?, 65535, "importance")?;
        }
        "send_flow_rem" | "check_overlap" | "reset_counts" => {
            if let Some(v) = value {
                return Err(v.err(format!("`{key}` takes no value")));
            }
            if mode == Mode::Filter {
                return Err(tok.err(format!("`{key}` is not allowed in a match")));
            }
            match key {
                "send_flow_rem" => p.flags.send_flow_rem = true,
                "check_overlap" => p.flags.check_overlap = true,
                _ => p.flags.reset_counts = true,
            }
        }
        "out_port" | "out_group" => {
            if mode != Mode::Filter {
                return Err(tok.err(format!(
                    "`{key}` selects flows: only valid in del-flows or dump-flows"
                )));
            }
            let v = need()?;
            if key == "out_port" {
                p.out_port = Some(port_ref(parse_port_number(v)?));
            } else {
                p.out_group = Some(num_u32(v, MAX_GROUP_ID, "out_group")?);
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `cookie=X` or `cookie=X/MASK` (`/-1`: all ones), each at most once. A mask other than
/// all ones selects flows, so an add-flow refuses it; in mod-flows, as in ovs-ofctl,
/// `cookie=X/MASK` selects and `cookie=Y` sets the new cookie, so one line may carry both.
/// A filter takes only one of them.
fn parse_cookie(p: &mut Parsed, v: Tok<'_>, mode: Mode) -> Result<()> {
    let twice = || v.err("`cookie` given twice");
    let Some((c, m)) = v.split_once("/") else {
        if p.cookie.is_some() || (mode != Mode::Modify && p.cookie_masked.is_some()) {
            return Err(twice());
        }
        p.cookie = Some(num(v, u64::MAX, "cookie")?);
        return Ok(());
    };
    let mask = if m.text == "-1" {
        u64::MAX
    } else {
        num(m, u64::MAX, "cookie mask")?
    };
    if mode == Mode::Add && mask != u64::MAX {
        return Err(m.err(
            "a cookie mask selects flows: only valid in del-flows, dump-flows or mod-flows (or /-1)",
        ));
    }
    if p.cookie_masked.is_some() || (mode != Mode::Modify && p.cookie.is_some()) {
        return Err(twice());
    }
    p.cookie_masked = Some((num(c, u64::MAX, "cookie")?, mask));
    Ok(())
}

/// Parses an add-flow line (ovs-ofctl syntax) into a [`Flow`].
///
/// Defaults as ovs-ofctl: table 0, priority 32768, cookie 0, no timeouts. `cookie=X/-1` is
/// accepted (same as `cookie=X`); other cookie masks, `out_port` and `out_group` are
/// rejected (they select flows, see [`parse_match`]). The counters printed by dump-flows
/// (`duration`, `n_packets`, `n_bytes`, `idle_age`, `hard_age`) are ignored.
pub fn parse_flow(s: &str) -> Result<Flow> {
    let (tokens, actions) = split_flow(s);
    let p = parse_parts(&tokens, actions, Mode::Add)?;
    Ok(Flow {
        table_id: p.table_id.unwrap_or(0),
        priority: p.priority.unwrap_or(DEFAULT_PRIORITY),
        cookie: p.cookie.or(p.cookie_masked.map(|(c, _)| c)).unwrap_or(0),
        idle_timeout: p.idle_timeout,
        hard_timeout: p.hard_timeout,
        flags: Some(p.flags),
        r#match: Some(p.m),
        instructions: p.instructions,
        stats: None,
        importance: p.importance,
    })
}

/// Parses a del-flows / dump-flows filter: match fields plus `table=` (default all tables),
/// `cookie=X[/MASK]` (no mask = exact), `out_port=`, `out_group=`, `priority=` (for strict
/// use). `strict` is left false; the caller sets it for `--strict`. An empty string selects
/// every flow.
pub fn parse_match(s: &str) -> Result<FlowFilter> {
    let (tokens, actions) = split_flow(s);
    let p = parse_parts(&tokens, actions, Mode::Filter)?;
    let (cookie, cookie_mask) = match (p.cookie, p.cookie_masked) {
        (_, Some((c, m))) => (c, m),
        (Some(c), None) => (c, u64::MAX),
        (None, None) => (0, 0),
    };
    Ok(FlowFilter {
        table_id: p.table_id,
        cookie: cookie & cookie_mask,
        cookie_mask,
        out_port: p.out_port,
        out_group: p.out_group,
        r#match: Some(p.m),
        strict: false,
        priority: p.priority,
    })
}

/// Parses a mod-flows line: a flow whose match (with `table=`, default all tables, and
/// `cookie=X/MASK`) selects flows and whose actions replace theirs. `cookie=X` without a
/// mask sets the modified flows' cookie, as in ovs-ofctl; both may be given
/// (`cookie=1/-1,cookie=4`). `strict` is left false.
pub fn parse_flow_modify(s: &str) -> Result<FlowModify> {
    let (tokens, actions) = split_flow(s);
    let p = parse_parts(&tokens, actions, Mode::Modify)?;
    let (cookie, cookie_mask) = p.cookie_masked.map_or((0, 0), |(c, m)| (c & m, m));
    let new_cookie = p.cookie;
    Ok(FlowModify {
        filter: Some(FlowFilter {
            table_id: p.table_id,
            cookie,
            cookie_mask,
            out_port: None,
            out_group: None,
            r#match: Some(p.m),
            strict: false,
            priority: p.priority,
        }),
        instructions: p.instructions,
        reset_counts: p.flags.reset_counts,
        new_cookie,
    })
}

/// Open vSwitch's `ofputil_flow_stats_format`: the head of a printed flow (timeouts, flags,
/// importance, each followed by `, ` except the flags, followed by a space), then the match
/// with `priority=` unless it is the default, then ` actions=`. `stats` adds the counters
/// (the dump-flows form); without them `cookie` and `table` appear only when non-zero
/// (the `--no-stats` form).
fn format_ovs(flow: &Flow, stats: Option<FlowStats>) -> String {
    let mut s = String::new();
    if stats.is_some() || flow.cookie != 0 {
        let _ = write!(s, "cookie=0x{:x}, ", flow.cookie);
    }
    if let Some(st) = stats {
        let secs = st.duration_ns / 1_000_000_000;
        let ms = (st.duration_ns / 1_000_000) % 1000;
        if ms == 0 {
            let _ = write!(s, "duration={secs}s, ");
        } else {
            let _ = write!(s, "duration={secs}.{ms:03}s, ");
        }
    }
    if stats.is_some() || flow.table_id != 0 {
        let _ = write!(s, "table={}, ", flow.table_id);
    }
    if let Some(st) = stats {
        let _ = write!(
            s,
            "n_packets={}, n_bytes={}, ",
            st.packet_count, st.byte_count
        );
    }
    if flow.idle_timeout != 0 {
        let _ = write!(s, "idle_timeout={}, ", flow.idle_timeout);
    }
    if flow.hard_timeout != 0 {
        let _ = write!(s, "hard_timeout={}, ", flow.hard_timeout);
    }
    if let Some(f) = &flow.flags {
        for (on, name) in [
            (f.send_flow_rem, "send_flow_rem"),
            (f.check_overlap, "check_overlap"),
            (f.reset_counts, "reset_counts"),
        ] {
            if on {
                let _ = write!(s, "{name} ");
            }
        }
    }
    if flow.importance != 0 {
        let _ = write!(s, "importance={}, ", flow.importance);
    }
    if let Some(st) = stats {
        let _ = write!(s, "idle_age={}, ", st.idle_ns / 1_000_000_000);
    }
    let mut m = String::new();
    if flow.priority != DEFAULT_PRIORITY {
        let _ = write!(m, "priority={}", flow.priority);
    }
    if let Some(mt) = flow.r#match.as_ref().map(format_match)
        && !mt.is_empty()
    {
        if !m.is_empty() {
            m.push(',');
        }
        m.push_str(&mt);
    }
    if !m.is_empty() {
        s.push_str(&m);
        s.push(' ');
    }
    let _ = write!(s, "actions={}", format_instructions(&flow.instructions));
    s
}

/// Prints a flow as `ovs-ofctl dump-flows --no-stats` does, which [`parse_flow`] reads back
/// to the same [`Flow`]: `cookie=0x5, table=1, idle_timeout=10, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2`.
/// `cookie` and `table` are printed only when non-zero, `priority` only when it is not
/// the default 32768. Stats are not printed (see [`format_flow_dump`]).
pub fn format_flow(flow: &Flow) -> String {
    format_ovs(flow, None)
}

/// Prints a flow as ovs-ofctl dump-flows does, with its counters:
/// `cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=180, idle_timeout=10, idle_age=1, priority=100,ip,nw_dst=10.0.0.0/24 actions=output:2`.
/// [`parse_flow`] reads it back (ignoring the counters).
pub fn format_flow_dump(flow: &Flow) -> String {
    format_ovs(flow, Some(flow.stats.unwrap_or_default()))
}

/// Prints a filter as del-flows / dump-flows text that [`parse_match`] reads back
/// (`strict` is not part of the text).
pub fn format_filter(f: &FlowFilter) -> String {
    let mut parts = Vec::new();
    if let Some(t) = f.table_id {
        parts.push(format!("table={t}"));
    }
    if let Some(p) = f.priority {
        parts.push(format!("priority={p}"));
    }
    if f.cookie_mask != 0 {
        if f.cookie_mask == u64::MAX {
            parts.push(format!("cookie=0x{:x}/-1", f.cookie));
        } else {
            parts.push(format!("cookie=0x{:x}/0x{:x}", f.cookie, f.cookie_mask));
        }
    }
    if let Some(p) = &f.out_port {
        parts.push(format!("out_port={}", port_ref_text(Some(p))));
    }
    if let Some(g) = f.out_group {
        parts.push(format!("out_group={g}"));
    }
    if let Some(m) = &f.r#match {
        let mt = format_match(m);
        if !mt.is_empty() {
            parts.push(mt);
        }
    }
    parts.join(",")
}
