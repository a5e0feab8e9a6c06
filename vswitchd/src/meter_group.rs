//! From API meters and groups to the datapath's: bands and units; group types, buckets
//! (with what they watch), selection methods and hash fields. Every refusal is an
//! [`ApiError`] naming the field at fault.
//!
//! Thread-safety: pure functions.

use datapath::group::{Bucket as DpBucket, Group as DpGroup, GroupKind, Selection};
use datapath::meter::{Band as DpBand, BandKind, Meter as DpMeter, MeterUnit as DpUnit};
use datapath::types::{GroupId, MeterId};
use proto::flow_text::{self, METER_CONTROLLER, METER_SLOWPATH, field_name};
use proto::v1::{self, Field};

use crate::convert::{
    Context, MAX_ACTIONS, PortNames, be, convert_actions, place, port_of, width_mask,
};
use crate::error::ApiError;

/// Converts a meter. Ids are 1..=0xffff0000 and the two virtual meters, `slowpath` and
/// `controller`.
pub fn convert_meter(m: &v1::Meter, now_ns: u64) -> Result<DpMeter, ApiError> {
    let unit = match v1::MeterUnit::try_from(m.unit) {
        Ok(v1::MeterUnit::Kbps) => DpUnit::Kbps,
        Ok(v1::MeterUnit::Pktps) => DpUnit::Pktps,
        _ => return Err(ApiError::invalid("meter.unit", "must be KBPS or PKTPS")),
    };
    if m.bands.len() > datapath::meter::MAX_BANDS {
        return Err(ApiError::invalid(
            "meter.bands",
            format!(
                "{} bands; a meter has at most {}",
                m.bands.len(),
                datapath::meter::MAX_BANDS
            ),
        ));
    }
    let mut bands = Vec::with_capacity(m.bands.len());
    for (i, b) in m.bands.iter().enumerate() {
        let kind = match v1::BandType::try_from(b.r#type) {
            Ok(v1::BandType::Drop) => BandKind::Drop,
            Ok(v1::BandType::DscpRemark) => BandKind::DscpRemark {
                prec_level: u8::try_from(b.prec_level).map_err(|_| {
                    ApiError::invalid(format!("meter.bands[{i}].prec_level"), "must be 0..=255")
                })?,
            },
            _ => {
                return Err(ApiError::invalid(
                    format!("meter.bands[{i}].type"),
                    "must be DROP or DSCP_REMARK",
                ));
            }
        };
        if b.rate == 0 {
            return Err(ApiError::invalid(
                format!("meter.bands[{i}].rate"),
                "must be positive",
            ));
        }
        bands.push(DpBand {
            kind,
            rate: b.rate as u64,
            burst: if m.burst { b.burst_size as u64 } else { 0 },
        });
    }
    let virtual_meter = m.id == METER_CONTROLLER || m.id == METER_SLOWPATH;
    if !virtual_meter && (m.id == 0 || m.id > flow_text::MAX_METER_ID) {
        return Err(ApiError::invalid(
            "meter.id",
            format!(
                "{} is out of range 1..=0xffff0000 (or slowpath 0xfffffffd, controller 0xfffffffe)",
                m.id
            ),
        ));
    }
    DpMeter::new(MeterId(m.id), unit, bands, now_ns)
        .map_err(|e| ApiError::invalid("meter", e.to_string()))
}

/// A select group's selection method and hash fields.
fn selection(g: &v1::Group, kind: GroupKind) -> Result<Selection, ApiError> {
    let method = v1::SelectionMethod::try_from(g.selection_method)
        .map_err(|_| ApiError::invalid("group.selection_method", "unknown method"))?;
    if kind != GroupKind::Select && method != v1::SelectionMethod::Default {
        return Err(ApiError::invalid(
            "group.selection_method",
            "only select groups have a selection method",
        ));
    }
    if method != v1::SelectionMethod::Hash && !g.fields.is_empty() {
        return Err(ApiError::invalid(
            "group.fields",
            "fields may only be given with SELECTION_METHOD_HASH",
        ));
    }
    match method {
        v1::SelectionMethod::Default if g.selection_method_param != 0 => Err(ApiError::invalid(
            "group.selection_method_param",
            "only allowed with a selection method",
        )),
        v1::SelectionMethod::Default => Ok(Selection::Default),
        v1::SelectionMethod::DpHash => Ok(Selection::DpHash {
            basis: g.selection_method_param,
        }),
        v1::SelectionMethod::Hash => {
            let mut fields = Vec::with_capacity(g.fields.len());
            for (i, h) in g.fields.iter().enumerate() {
                let at = || format!("group.fields[{i}]");
                let f = Field::try_from(h.field)
                    .ok()
                    .filter(|f| *f != Field::Unspecified)
                    .ok_or_else(|| ApiError::invalid(at(), "unknown field"))?;
                let (width, _) = flow_text::field_width(f)
                    .ok_or_else(|| ApiError::invalid(at(), "unknown field"))?;
                if g.fields[..i].iter().any(|o| o.field == h.field) {
                    return Err(ApiError::invalid(
                        at(),
                        format!("{} given twice", field_name(f)),
                    ));
                }
                let (df, shift) = place(f)
                    .ok_or_else(|| ApiError::invalid(at(), "not supported by this datapath yet"))?;
                let bits = width_mask(width, f);
                let mask = if h.mask.is_empty() {
                    bits
                } else if h.mask.len() == width {
                    be(&h.mask) & bits
                } else {
                    return Err(ApiError::invalid(
                        format!("{}.mask", at()),
                        format!("must be empty or {width} bytes"),
                    ));
                };
                if mask == 0 {
                    return Err(ApiError::invalid(
                        format!("{}.mask", at()),
                        "an all-zero mask hashes nothing",
                    ));
                }
                fields.push((df, mask << shift));
            }
            Ok(Selection::Hash {
                fields,
                basis: g.selection_method_param,
            })
        }
    }
}

/// Converts a group. Chained groups need not exist (the packet is dropped as NoSuchGroup
/// until they do); the caller refuses a group that chains to itself.
pub fn convert_group(g: &v1::Group, ports: &dyn PortNames) -> Result<DpGroup, ApiError> {
    let kind = match v1::GroupType::try_from(g.r#type) {
        Ok(v1::GroupType::All) => GroupKind::All,
        Ok(v1::GroupType::Select) => GroupKind::Select,
        Ok(v1::GroupType::Indirect) => GroupKind::Indirect,
        Ok(v1::GroupType::FastFailover) => GroupKind::FastFailover,
        _ => {
            return Err(ApiError::invalid(
                "group.type",
                "must be ALL, SELECT, INDIRECT or FAST_FAILOVER",
            ));
        }
    };
    if g.id > flow_text::MAX_GROUP_ID {
        return Err(ApiError::invalid(
            "group.id",
            format!("{} is a reserved group id", g.id),
        ));
    }
    if g.buckets.len() > datapath::group::MAX_BUCKETS {
        return Err(ApiError::invalid(
            "group.buckets",
            format!(
                "{} buckets; a group has at most {} (what one OpenFlow message carries)",
                g.buckets.len(),
                datapath::group::MAX_BUCKETS
            ),
        ));
    }
    let actions: usize = g.buckets.iter().map(|b| b.actions.len()).sum();
    if actions > MAX_ACTIONS {
        return Err(ApiError::invalid(
            "group.buckets",
            format!(
                "{actions} actions over all buckets; at most {MAX_ACTIONS} (what one OpenFlow \
                 message carries)"
            ),
        ));
    }
    let selection = selection(g, kind)?;
    let mut buckets = Vec::with_capacity(g.buckets.len());
    for (i, b) in g.buckets.iter().enumerate() {
        let at = format!("group.buckets[{i}]");
        let (actions, _) =
            convert_actions(&b.actions, ports, Context::Bucket).map_err(|e| e.under(&at))?;
        let weight = u16::try_from(b.weight)
            .map_err(|_| ApiError::invalid(format!("{at}.weight"), "must be 0..=65535"))?;
        if kind != GroupKind::Select && weight != 0 {
            return Err(ApiError::invalid(
                format!("{at}.weight"),
                "only select groups have bucket weights",
            ));
        }
        let watch_port = match b.watch_port.as_ref().and_then(|p| p.port.as_ref()) {
            None => None,
            Some(_) => Some(port_of(
                b.watch_port.as_ref(),
                ports,
                &format!("{at}.watch_port"),
            )?),
        };
        let watch_group = b.watch_group.map(GroupId);
        if let Some(w) = watch_group
            && w.0 > flow_text::MAX_GROUP_ID
        {
            return Err(ApiError::invalid(
                format!("{at}.watch_group"),
                format!("{} is a reserved group id", w.0),
            ));
        }
        buckets.push(DpBucket {
            weight,
            watch_port,
            watch_group,
            actions: actions.into(),
        });
    }
    let dg = DpGroup {
        id: GroupId(g.id),
        kind,
        buckets,
        selection,
    };
    dg.validate()
        .map_err(|e| ApiError::invalid("group", e.to_string()))?;
    Ok(dg)
}
