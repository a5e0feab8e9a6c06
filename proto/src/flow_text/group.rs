//! Groups: add-group text read into a [`Group`] and printed back.
//!
//! `group_id=1,type=select,bucket=weight:10,actions=output:1,bucket=weight:10,output:2`:
//! the group's own keywords, then its buckets, each starting with `bucket=`.

use std::fmt::Write as _;

use crate::v1::{Bucket, Group, GroupType};

use super::actions::{format_actions, parse_action_tokens};
use super::lexer::{ParseError, Result, Tok, split_tokens};
use super::limits::MAX_GROUP_ID;
use super::ports::{parse_port_number, port_ref, port_ref_text};
use super::scalar::num_u32;

/// Bucket parameters written `NAME:VALUE` before the bucket's actions.
const BUCKET_PARAMS: &[&str] = &["weight", "watch_port", "watch_group", "bucket_id"];

fn group_type(v: Tok<'_>) -> Result<GroupType> {
    match v.text {
        "all" => Ok(GroupType::All),
        "select" => Ok(GroupType::Select),
        "indirect" => Ok(GroupType::Indirect),
        "ff" | "fast_failover" => Ok(GroupType::FastFailover),
        _ => Err(v.err("group type must be all, select, indirect or ff")),
    }
}

/// Parses an add-group string:
/// `group_id=1,type=select,bucket=weight:10,actions=output:1,bucket=weight:10,output:2`.
/// Bucket parameters are `weight:N` (select only, default 1), `watch_port:P`,
/// `watch_group:N` (fast_failover, one of them required), `bucket_id:N` (ignored); the
/// remaining tokens (after an optional `actions=`) are the bucket's actions.
pub fn parse_group(s: &str) -> Result<Group> {
    let mut group = Group::default();
    let mut id_seen = false;
    let mut type_tok: Option<Tok<'_>> = None;
    let mut buckets: Vec<(Tok<'_>, Vec<Tok<'_>>)> = Vec::new();
    for tok in split_tokens(s, 0, true) {
        let (key, value) = tok.key_value();
        if key == "bucket" {
            let v = value.ok_or_else(|| tok.err("`bucket` needs a value"))?;
            let list = if v.text.is_empty() { vec![] } else { vec![v] };
            buckets.push((tok, list));
            continue;
        }
        if let Some((_, list)) = buckets.last_mut() {
            list.push(tok);
            continue;
        }
        match (key, value) {
            ("group_id", Some(v)) => {
                group.id = num_u32(v, MAX_GROUP_ID, "group id")?;
                id_seen = true;
            }
            ("type", Some(v)) => {
                group.r#type = group_type(v)? as i32;
                type_tok = Some(tok);
            }
            _ => return Err(tok.err(format!("unknown group keyword `{key}`"))),
        }
    }
    if !id_seen {
        return Err(ParseError::new(0, "", "missing `group_id=ID`"));
    }
    let Some(type_tok) = type_tok else {
        return Err(ParseError::new(
            0,
            "",
            "missing `type=all|select|indirect|ff`",
        ));
    };
    let gt = GroupType::try_from(group.r#type).unwrap_or(GroupType::Unspecified);
    for (btok, list) in buckets {
        group.buckets.push(parse_bucket(gt, btok, &list)?);
    }
    if gt == GroupType::Indirect && group.buckets.len() != 1 {
        return Err(type_tok.err("an indirect group has exactly one bucket"));
    }
    Ok(group)
}

/// One bucket of a group of type `gt`: its parameters, then its actions. `btok` is the
/// `bucket=` token.
fn parse_bucket(gt: GroupType, btok: Tok<'_>, list: &[Tok<'_>]) -> Result<Bucket> {
    let mut bucket = Bucket::default();
    let mut weight_seen = false;
    let mut actions = Vec::new();
    let mut in_actions = false;
    for &t in list {
        if in_actions {
            actions.push(t);
            continue;
        }
        if let Some(a) = t.text.strip_prefix("actions=") {
            in_actions = true;
            if !a.is_empty() {
                actions.push(Tok {
                    at: t.at + "actions=".len(),
                    text: a,
                });
            }
            continue;
        }
        let param = t
            .split_once(":")
            .filter(|(k, _)| BUCKET_PARAMS.contains(&k.text));
        let Some((k, v)) = param else {
            // The first token that is not a parameter starts the actions.
            in_actions = true;
            actions.push(t);
            continue;
        };
        match k.text {
            "weight" => {
                if gt != GroupType::Select {
                    return Err(k.err("only select groups have bucket weights"));
                }
                bucket.weight = num_u32(v, 65535, "weight")?;
                weight_seen = true;
            }
            "watch_port" | "watch_group" => {
                if gt != GroupType::FastFailover {
                    return Err(k.err(format!(
                        "{} only applies to ff (fast_failover) groups",
                        k.text
                    )));
                }
                if k.text == "watch_port" {
                    bucket.watch_port = Some(port_ref(parse_port_number(v)?));
                } else {
                    bucket.watch_group = Some(num_u32(v, MAX_GROUP_ID, "watch_group")?);
                }
            }
            _ => {
                num_u32(v, u32::MAX, "bucket_id")?;
            }
        }
    }
    if gt == GroupType::Select && !weight_seen {
        bucket.weight = 1;
    }
    if gt == GroupType::FastFailover && bucket.watch_port.is_none() && bucket.watch_group.is_none()
    {
        return Err(btok.err("a fast_failover bucket needs watch_port:P or watch_group:N"));
    }
    bucket.actions = parse_action_tokens(&actions)?;
    Ok(bucket)
}

/// Prints a group in the syntax [`parse_group`] reads.
pub fn format_group(g: &Group) -> String {
    let gt = GroupType::try_from(g.r#type).unwrap_or(GroupType::Unspecified);
    let t = match gt {
        GroupType::All => "all",
        GroupType::Select => "select",
        GroupType::Indirect => "indirect",
        GroupType::FastFailover => "ff",
        GroupType::Unspecified => "unspecified",
    };
    let mut s = format!("group_id={},type={t}", g.id);
    for b in &g.buckets {
        s.push_str(",bucket=");
        if gt == GroupType::Select {
            let _ = write!(s, "weight:{},", b.weight);
        }
        if let Some(p) = &b.watch_port {
            let _ = write!(s, "watch_port:{},", port_ref_text(Some(p)));
        }
        if let Some(w) = b.watch_group {
            let _ = write!(s, "watch_group:{w},");
        }
        let _ = write!(s, "actions={}", format_actions(&b.actions));
    }
    s
}
