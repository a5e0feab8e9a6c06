//! Write RPCs and their failures.
//!
//! A Write fails in two ways: the RPC returns a non-OK status (ALL_OR_NONE, and any failed
//! batch), whose message names `updates[i]` and whose `grpc-status-details-bin` carries the
//! encoded `WriteResponse`; or the RPC is OK but some `UpdateStatus` has a non-zero code
//! (CONTINUE_ON_ERROR). Both are exit code 1, with one line per failed update. Updates that
//! report ABORTED because another update failed are not listed.
//!
//! `add-flows` sends its flows in Writes of [`crate::cli::FLOWS_PER_WRITE`] (or `--batch`) updates, one after the
//! other (batches are ordered: a later flow with the same match replaces an earlier one), and
//! maps a failed update back to the `FILE:LINE` it came from.

use prost::Message as _;
use proto::v1::{
    Atomicity, ReadFilter, ReadRequest, UpdateStatus, WriteRequest, WriteResponse, entity,
    read_filter, update,
};

use crate::connect::Client;
use crate::error::{Error, Result, status_text, update_status_text};
use crate::flowfile::FlowFile;
use crate::request::{insert_flow, make_update};

/// gRPC ABORTED: an update not applied because another one failed.
const CODE_ABORTED: i32 = 10;

/// Where update `i` of the failed request came from (`FILE:LINE` and the line), if known.
type Locate<'a> = &'a dyn Fn(usize) -> Option<(String, Option<String>)>;

fn no_location(_: usize) -> Option<(String, Option<String>)> {
    None
}

/// Sends one Write and checks every update status.
pub async fn write_one(client: &mut Client, req: WriteRequest) -> Result<()> {
    let n = req.updates.len();
    match client.write(req).await {
        Ok(resp) => check_statuses(&resp.into_inner().statuses, &no_location),
        Err(status) => Err(write_failure(&status, n, &no_location)),
    }
}

/// The index in `updates[N]` of a status message, if any.
fn index_in_message(msg: &str) -> Option<usize> {
    let rest = &msg[msg.find("updates[")? + "updates[".len()..];
    rest[..rest.find(']')?].parse().ok()
}

fn located(loc: Option<(String, Option<String>)>, text: String) -> Vec<String> {
    match loc {
        Some((place, line)) => {
            let mut v = vec![format!("{place}: {text}")];
            if let Some(l) = line {
                v.push(format!("    {l}"));
            }
            v
        }
        None => vec![text],
    }
}

/// Failed updates of an OK Write.
fn check_statuses(statuses: &[UpdateStatus], locate: Locate<'_>) -> Result<()> {
    let mut lines = Vec::new();
    for s in statuses.iter().filter(|s| s.code != 0) {
        lines.extend(located(
            locate(s.index as usize),
            format!("update {}: {}", s.index, update_status_text(s)),
        ));
    }
    if lines.is_empty() {
        Ok(())
    } else {
        Err(Error::Updates(lines))
    }
}

/// The error for a Write that returned `status`; `n` is the number of updates sent.
fn write_failure(status: &tonic::Status, n: usize, locate: Locate<'_>) -> Error {
    let mut lines = vec![status_text(status)];
    let details = WriteResponse::decode(status.details())
        .ok()
        .filter(|r| !r.statuses.is_empty());
    match details {
        Some(resp) => {
            let failed: Vec<&UpdateStatus> = resp
                .statuses
                .iter()
                .filter(|s| s.code != 0 && s.code != CODE_ABORTED)
                .collect();
            for s in failed {
                match locate(s.index as usize) {
                    Some(loc) => lines.extend(located(
                        Some(loc),
                        format!("update {}: {}", s.index, update_status_text(s)),
                    )),
                    None if n == 1 => {
                        if !s.field.is_empty() && !status.message().contains(&s.field) {
                            lines.push(format!("field: {}", s.field));
                        }
                    }
                    None => lines.push(format!("update {}: {}", s.index, update_status_text(s))),
                }
            }
        }
        None => {
            if let Some(loc) = index_in_message(status.message()).and_then(locate) {
                let (place, line) = loc;
                lines.push(format!("{place}: the update at fault"));
                if let Some(l) = line {
                    lines.push(format!("    {l}"));
                }
            }
        }
    }
    Error::Updates(lines)
}

/// `add-flows`: sends the file's flows in ordered, all-or-nothing batches.
pub async fn add_flows(
    client: &mut Client,
    bridge: &str,
    mut file: FlowFile,
    batch: usize,
) -> Result<()> {
    let flows = std::mem::take(&mut file.flows);
    let total = flows.len();
    let mut acked = 0usize;
    let mut it = flows.into_iter();
    while acked < total {
        let updates: Vec<_> = it.by_ref().take(batch.max(1)).map(insert_flow).collect();
        let n = updates.len();
        let base = acked;
        let locate = |i: usize| {
            (i < n).then(|| {
                (
                    file.location(base + i),
                    file.flow_text(base + i).map(str::to_string),
                )
            })
        };
        let req = WriteRequest {
            bridge: bridge.to_string(),
            updates,
            atomicity: Atomicity::AllOrNone as i32,
        };
        let result = match client.write(req).await {
            Ok(resp) => check_statuses(&resp.into_inner().statuses, &locate),
            Err(status) => Err(write_failure(&status, n, &locate)),
        };
        if let Err(inner) = result {
            return Err(Error::Partial {
                inner: Box::new(inner),
                acked,
                total,
            });
        }
        acked += n;
    }
    Ok(())
}

/// `del-groups BR` without an id: every group of the bridge, in one all-or-nothing Write.
pub async fn del_all_groups(client: &mut Client, bridge: &str) -> Result<()> {
    let read = ReadRequest {
        bridge: bridge.to_string(),
        filters: vec![ReadFilter {
            filter: Some(read_filter::Filter::Groups(Default::default())),
        }],
    };
    let mut stream = client.read(read).await?.into_inner();
    let mut ids = Vec::new();
    while let Some(chunk) = stream.message().await? {
        for e in chunk.entities {
            if let Some(entity::Entity::Group(g)) = e.entity {
                ids.push(g.id);
            }
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    let updates = ids
        .into_iter()
        .map(|id| {
            make_update(
                update::Type::Delete,
                entity::Entity::Group(proto::v1::Group {
                    id,
                    ..Default::default()
                }),
            )
        })
        .collect();
    write_one(
        client,
        WriteRequest {
            bridge: bridge.to_string(),
            updates,
            atomicity: Atomicity::AllOrNone as i32,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(index: u32, code: i32, message: &str, field: &str) -> UpdateStatus {
        UpdateStatus {
            index,
            code,
            message: message.into(),
            field: field.into(),
        }
    }

    #[test]
    fn ok_statuses_pass() {
        check_statuses(&[st(0, 0, "", ""), st(1, 0, "", "")], &no_location).unwrap();
    }

    #[test]
    fn failed_status_in_ok_response_fails() {
        let e = check_statuses(
            &[st(0, 0, "", ""), st(1, 6, "flow exists", "flow.match")],
            &no_location,
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "update 1: ALREADY_EXISTS: flow exists (field flow.match)"
        );
    }

    #[test]
    fn index_parse() {
        assert_eq!(
            index_in_message("updates[17].flow.match.fields[1].mask: bad"),
            Some(17)
        );
        assert_eq!(index_in_message("bridge br0 not found"), None);
        assert_eq!(index_in_message("updates[x]"), None);
    }

    #[test]
    fn failure_with_details_maps_to_file_lines() {
        let details = WriteResponse {
            statuses: vec![
                st(0, CODE_ABORTED, "aborted", ""),
                st(1, 5, "no port p9", "flow.instructions[0]"),
                st(2, CODE_ABORTED, "aborted", ""),
            ],
        }
        .encode_to_vec();
        let status = tonic::Status::with_details(
            tonic::Code::NotFound,
            "updates[1].flow.instructions[0]: no port p9",
            details.into(),
        );
        let locate = |i: usize| Some((format!("flows.txt:{}", i + 10), Some(format!("flow {i}"))));
        let e = write_failure(&status, 3, &locate);
        let text = e.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "NOT_FOUND: updates[1].flow.instructions[0]: no port p9",
                "flows.txt:11: update 1: NOT_FOUND: no port p9 (field flow.instructions[0])",
                "    flow 1",
            ]
        );
    }

    #[test]
    fn failure_without_details_uses_the_message_index() {
        let status = tonic::Status::invalid_argument("updates[2].flow.priority: too big");
        let locate = |i: usize| Some((format!("f:{}", i + 1), None));
        let e = write_failure(&status, 5, &locate);
        assert_eq!(
            e.to_string(),
            "INVALID_ARGUMENT: updates[2].flow.priority: too big\nf:3: the update at fault"
        );
    }

    #[test]
    fn single_update_failure_adds_the_field_once() {
        let details = WriteResponse {
            statuses: vec![st(0, 3, "not maskable", "flow.match.fields[0].mask")],
        }
        .encode_to_vec();
        let status = tonic::Status::with_details(
            tonic::Code::InvalidArgument,
            "updates[0].flow.match.fields[0].mask: not maskable",
            details.clone().into(),
        );
        assert_eq!(
            write_failure(&status, 1, &no_location).to_string(),
            "INVALID_ARGUMENT: updates[0].flow.match.fields[0].mask: not maskable"
        );
        let terse =
            tonic::Status::with_details(tonic::Code::InvalidArgument, "bad flow", details.into());
        assert_eq!(
            write_failure(&terse, 1, &no_location).to_string(),
            "INVALID_ARGUMENT: bad flow\nfield: flow.match.fields[0].mask"
        );
    }

    #[test]
    fn partial_puts_the_count_after_the_first_line() {
        let e = Error::Partial {
            inner: Box::new(Error::Updates(vec![
                "UNAVAILABLE: gone".into(),
                "more".into(),
            ])),
            acked: 5000,
            total: 9000,
        };
        assert_eq!(
            e.to_string(),
            "UNAVAILABLE: gone (5000 of 9000 flows were acknowledged before the failure)\nmore"
        );
    }
}
