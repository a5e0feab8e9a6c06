//! Groups: add-group text read into a [`Group`] and printed back as ovs-ofctl prints it.
//!
//! `group_id=1,type=select,selection_method=hash,fields(ip_dst,tcp_dst),bucket=bucket_id:0,weight:10,actions=output:1,bucket=output:2`:
//! the group's own keywords, then its buckets, each starting with `bucket=`. In a bucket,
//! `weight`, `watch_port`, `watch_group` and `bucket_id` (written `NAME:VALUE` or
//! `NAME=VALUE`) may stand anywhere; every other token is an action (after an optional
//! `actions=`).

use std::fmt::Write as _;

use crate::v1::{Bucket, Field, Group, GroupType, HashField, SelectionMethod};

use super::actions::{format_actions, parse_action_tokens};
use super::fields::{Named, field_def, field_def_i32, parse_value};
use super::lexer::{ParseError, Result, Tok, split_tokens};
use super::limits::MAX_GROUP_ID;
use super::match_text::ip_masked;
use super::ports::{parse_port_number, port_ref, port_ref_text};
use super::protocol::Ctx;
use super::scalar::{be_u64, mac_text, num, num_u32};

/// Bucket parameters, written `NAME:VALUE` or `NAME=VALUE` among the bucket's actions.
const BUCKET_PARAMS: &[&str] = &["weight", "watch_port", "watch_group", "bucket_id"];

/// Highest bucket id (OFPG15_BUCKET_MAX).
const MAX_BUCKET_ID: u32 = 0xffff_ff00;

fn group_type(v: Tok<'_>) -> Result<GroupType> {
    match v.text {
        "all" => Ok(GroupType::All),
        "select" => Ok(GroupType::Select),
        "indirect" => Ok(GroupType::Indirect),
        "ff" | "fast_failover" => Ok(GroupType::FastFailover),
        _ => Err(v.err(format!(
            "invalid group type {}: all, select, indirect or ff",
            v.text
        ))),
    }
}

/// The group's keywords before its buckets.
#[derive(Default)]
struct Head<'a> {
    id: Option<u32>,
    type_tok: Option<Tok<'a>>,
    method_tok: Option<Tok<'a>>,
    param_tok: Option<Tok<'a>>,
    fields_tok: Option<Tok<'a>>,
}

fn head_token<'a>(g: &mut Group, h: &mut Head<'a>, tok: Tok<'a>) -> Result<()> {
    if let Some(inner) = tok
        .text
        .strip_prefix("fields(")
        .and_then(|t| t.strip_suffix(')'))
    {
        g.fields = parse_hash_fields(Tok {
            at: tok.at + "fields(".len(),
            text: inner,
        })?;
        h.fields_tok = Some(tok);
        return Ok(());
    }
    let (key, value) = tok.key_value();
    let Some(v) = value else {
        return Err(tok.err(format!("unknown keyword {key}")));
    };
    match key {
        "group_id" => h.id = Some(num_u32(v, MAX_GROUP_ID, "group id")?),
        "type" => {
            g.r#type = group_type(v)? as i32;
            h.type_tok = Some(tok);
        }
        "selection_method" => {
            g.selection_method = match v.text {
                "hash" => SelectionMethod::Hash,
                "dp_hash" => SelectionMethod::DpHash,
                _ => {
                    return Err(v.err(format!(
                        "selection_method {}: this switch has hash and dp_hash",
                        v.text
                    )));
                }
            } as i32;
            h.method_tok = Some(tok);
        }
        "selection_method_param" => {
            g.selection_method_param = num(v, u64::MAX, "selection_method_param")?;
            h.param_tok = Some(tok);
        }
        "fields" => {
            g.fields = parse_hash_fields(v)?;
            h.fields_tok = Some(tok);
        }
        _ => return Err(tok.err(format!("unknown keyword {key}"))),
    }
    Ok(())
}

/// `fields(NAME[=MASK],...)`: the fields a `selection_method=hash` group hashes.
fn parse_hash_fields(t: Tok<'_>) -> Result<Vec<HashField>> {
    let mut out: Vec<HashField> = Vec::new();
    for f in split_tokens(t.text, t.at, false) {
        let (name, mask) = f.key_value();
        let field = match super::fields::resolve_name(name, Ctx::default()) {
            Ok(Named::Field(field)) => field,
            _ => return Err(f.err(format!("{}: unknown field {name}", t.text))),
        };
        let Some(d) = field_def(field) else {
            return Err(f.err(format!("unknown field {name}")));
        };
        if out.iter().any(|h| h.field == field as i32) {
            return Err(f.err(format!("{name}: duplicate field")));
        }
        let mask = match mask {
            None => Vec::new(),
            Some(m) => {
                let m = parse_value(d, m)?;
                if m.iter().all(|b| *b == 0) {
                    return Err(f.err(format!(
                        "{}: values are wildcards here and must not be all-zeros",
                        t.text
                    )));
                }
                if m.iter().all(|b| *b == 0xff) {
                    Vec::new()
                } else {
                    m
                }
            }
        };
        out.push(HashField {
            field: field as i32,
            mask,
        });
    }
    Ok(out)
}

/// Parses an add-group string (see the module comment). Bucket ids not given are the lowest
/// ids the group's other buckets do not use, so the result has every bucket's id.
pub fn parse_group(s: &str) -> Result<Group> {
    let mut group = Group::default();
    let mut head = Head::default();
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
        head_token(&mut group, &mut head, tok)?;
    }
    let Some(id) = head.id else {
        return Err(ParseError::new(0, "", "must specify a group_id"));
    };
    group.id = id;
    let Some(type_tok) = head.type_tok else {
        return Err(ParseError::new(
            0,
            "",
            "must specify a type: type=all|select|indirect|ff",
        ));
    };
    let gt = GroupType::try_from(group.r#type).unwrap_or(GroupType::Unspecified);
    check_selection(&group, gt, &head)?;
    for (btok, list) in buckets {
        group.buckets.push(parse_bucket(gt, btok, &list)?);
    }
    if gt == GroupType::Indirect && group.buckets.len() != 1 {
        return Err(type_tok.err("an indirect group has exactly one bucket"));
    }
    assign_bucket_ids(&mut group).map_err(|m| ParseError::new(0, "", m))?;
    Ok(group)
}

/// `selection_method`, its parameter and `fields` only where Open vSwitch allows them.
fn check_selection(g: &Group, gt: GroupType, h: &Head<'_>) -> Result<()> {
    if let Some(t) = h.method_tok
        && gt != GroupType::Select
    {
        return Err(t.err("selection_method only applies to select groups"));
    }
    if let Some(t) = h.fields_tok
        && g.selection_method != SelectionMethod::Hash as i32
    {
        return Err(t.err("fields may only be specified with \"selection_method=hash\""));
    }
    if let Some(t) = h.param_tok
        && h.method_tok.is_none()
    {
        return Err(t.err("selection_method_param is only allowed with \"selection_method\""));
    }
    Ok(())
}

/// Gives every bucket without an id the lowest id no other bucket of the group uses, and
/// refuses two buckets with one id. The daemon applies it to API groups too.
pub fn assign_bucket_ids(g: &mut Group) -> std::result::Result<(), String> {
    let mut used: Vec<u32> = g.buckets.iter().filter_map(|b| b.bucket_id).collect();
    used.sort_unstable();
    if let Some(w) = used.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("duplicate bucket id {}", w[0]));
    }
    if let Some(&id) = used.iter().find(|&&id| id > MAX_BUCKET_ID) {
        return Err(format!("invalid bucket_id id {id}"));
    }
    let mut next = 0u32;
    for b in &mut g.buckets {
        if b.bucket_id.is_none() {
            while used.binary_search(&next).is_ok() {
                next += 1;
            }
            b.bucket_id = Some(next);
            next += 1;
        }
    }
    Ok(())
}

/// One bucket of a group of type `gt`: its parameters and its actions. `btok` is the
/// `bucket=` token.
fn parse_bucket(gt: GroupType, btok: Tok<'_>, list: &[Tok<'_>]) -> Result<Bucket> {
    let mut bucket = Bucket {
        weight: u32::from(gt == GroupType::Select),
        ..Bucket::default()
    };
    let mut actions = Vec::new();
    for &t in list {
        let t = match t
            .text
            .strip_prefix("actions=")
            .or_else(|| t.text.strip_prefix("action="))
        {
            Some(a) => Tok {
                at: t.at + (t.text.len() - a.len()),
                text: a,
            },
            None => t,
        };
        if t.text.is_empty() {
            continue;
        }
        let param = t
            .text
            .find([':', '='])
            .map(|i| {
                (
                    t.with_text(&t.text[..i]),
                    Tok {
                        at: t.at + i + 1,
                        text: &t.text[i + 1..],
                    },
                )
            })
            .filter(|(k, _)| BUCKET_PARAMS.contains(&k.text));
        let Some((k, v)) = param else {
            actions.push(t);
            continue;
        };
        match k.text {
            "weight" => bucket.weight = num_u32(v, 65535, "weight")?,
            "watch_port" => bucket.watch_port = Some(port_ref(parse_port_number(v)?)),
            "watch_group" => {
                bucket.watch_group = Some(num_u32(v, MAX_GROUP_ID, "watch_group")?);
            }
            _ => bucket.bucket_id = Some(num_u32(v, MAX_BUCKET_ID, "bucket_id")?),
        }
    }
    if gt != GroupType::Select && bucket.weight != 0 {
        return Err(btok.err("Only select groups can have bucket weights."));
    }
    if actions.is_empty() {
        return Err(btok.err("bucket must specify actions (`actions=drop` for none)"));
    }
    if gt == GroupType::FastFailover && bucket.watch_port.is_none() && bucket.watch_group.is_none()
    {
        return Err(btok.err("fast failover bucket requires watch_port or watch_group"));
    }
    bucket.actions = parse_action_tokens(&actions)?;
    Ok(bucket)
}

/// A hash field as ovs-ofctl prints it: `name` or `name=MASK`.
fn hash_field_text(h: &HashField) -> String {
    let Some(d) = field_def_i32(h.field) else {
        return format!("field{}", h.field);
    };
    if h.mask.is_empty() {
        return d.name.to_string();
    }
    let m = match d.field {
        Field::EthSrc | Field::EthDst | Field::ArpSha | Field::ArpTha => mac_text(&h.mask),
        _ if d.width == 4 && matches!(d.syntax, super::fields::Syntax::Ipv4) => {
            ip_masked(&h.mask, &[])
        }
        _ if d.width == 16 => ip_masked(&h.mask, &[]),
        _ => format!("0x{:x}", be_u64(&h.mask)),
    };
    format!("{}={m}", d.name)
}

/// Prints a group as `ovs-ofctl -O OpenFlow15 dump-groups` does (which [`parse_group`]
/// reads back): every bucket's id, `weight` where it is not the default.
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
    let method = SelectionMethod::try_from(g.selection_method).unwrap_or_default();
    if method != SelectionMethod::Default {
        let name = if method == SelectionMethod::Hash {
            "hash"
        } else {
            "dp_hash"
        };
        let _ = write!(s, ",selection_method={name}");
        if g.selection_method_param != 0 {
            let _ = write!(s, ",selection_method_param={}", g.selection_method_param);
        }
        let fields: Vec<String> = g.fields.iter().map(hash_field_text).collect();
        match fields.len() {
            0 => {}
            1 => {
                let _ = write!(s, ",fields={}", fields[0]);
            }
            _ => {
                let _ = write!(s, ",fields({})", fields.join(","));
            }
        }
    }
    for b in &g.buckets {
        s.push_str(",bucket=");
        if let Some(id) = b.bucket_id {
            let _ = write!(s, "bucket_id:{id},");
        }
        if b.weight != u32::from(gt == GroupType::Select) {
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
