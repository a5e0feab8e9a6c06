//! Meters: add-meter text read into a [`Meter`] and printed back.
//!
//! `meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000`: the meter's own
//! keywords, then `bands=` (or `band=`, as Open vSwitch also reads it and most guides write
//! it) and the bands, each starting with `type=`.

use std::fmt::Write as _;

use crate::v1::{Band, BandType, Meter, MeterUnit};

use super::lexer::{ParseError, Result, Tok, split_tokens};
use super::limits::{MAX_METER_ID, METER_CONTROLLER, METER_SLOWPATH};
use super::scalar::num_u32;

/// The band being read and the token that started it (where errors about it point).
type OpenBand<'a> = Option<(Band, Tok<'a>)>;

fn band_type(v: Tok<'_>) -> Result<BandType> {
    match v.text {
        "drop" => Ok(BandType::Drop),
        "dscp_remark" => Ok(BandType::DscpRemark),
        _ => Err(v.err("band type must be drop or dscp_remark")),
    }
}

fn new_band(t: BandType, tok: Tok<'_>) -> OpenBand<'_> {
    Some((
        Band {
            r#type: t as i32,
            ..Band::default()
        },
        tok,
    ))
}

/// Checks the band just read and adds it to `out`.
fn finish_band(b: OpenBand<'_>, out: &mut Vec<Band>) -> Result<()> {
    if let Some((b, tok)) = b {
        if b.rate == 0 {
            return Err(tok.err("a band needs `rate=N` (N > 0)"));
        }
        if b.r#type != BandType::DscpRemark as i32 && b.prec_level != 0 {
            return Err(tok.err("prec_level only applies to type=dscp_remark"));
        }
        out.push(b);
    }
    Ok(())
}

/// One `key=value` token after `bands=`: `type=` starts a new band, the others set a field
/// of the current one.
fn band_token<'a>(tok: Tok<'a>, band: &mut OpenBand<'a>, out: &mut Vec<Band>) -> Result<()> {
    let (key, value) = tok.key_value();
    let v = value.ok_or_else(|| tok.err(format!("`{key}` needs a value")))?;
    if key == "type" {
        finish_band(band.take(), out)?;
        *band = new_band(band_type(v)?, tok);
        return Ok(());
    }
    let Some((b, _)) = band.as_mut() else {
        return Err(tok.err("a band starts with `type=drop` or `type=dscp_remark`"));
    };
    match key {
        "rate" => b.rate = num_u32(v, u32::MAX, "rate")?,
        "burst_size" => b.burst_size = num_u32(v, u32::MAX, "burst_size")?,
        "prec_level" => b.prec_level = num_u32(v, 63, "prec_level")?,
        _ => return Err(tok.err(format!("unknown band field `{key}`"))),
    }
    Ok(())
}

/// The value of `bands=`: empty, or the first band's `type=T` in the same token.
fn bands_value(v: Tok<'_>) -> Result<OpenBand<'_>> {
    if v.text.is_empty() {
        return Ok(None);
    }
    let (k2, v2) = v.key_value();
    if k2 != "type" {
        return Err(v.err("a band starts with `type=drop` or `type=dscp_remark`"));
    }
    let v2 = v2.ok_or_else(|| v.err("band type needed"))?;
    Ok(new_band(band_type(v2)?, v))
}

/// One of the meter's own keywords (before `bands=`): `meter=ID`, `kbps`, `pktps`,
/// `burst`, `stats`. Returns whether `tok` was `bands=...` or `band=...` (with its first
/// band, if any).
fn meter_token<'a>(tok: Tok<'a>, meter: &mut Meter) -> Result<Option<OpenBand<'a>>> {
    let (key, value) = tok.key_value();
    match (key, value) {
        ("meter" | "meter_id", Some(v)) => meter.id = meter_id(v)?,
        ("kbps" | "pktps", None) => {
            let u = if key == "kbps" {
                MeterUnit::Kbps
            } else {
                MeterUnit::Pktps
            };
            if meter.unit != MeterUnit::Unspecified as i32 && meter.unit != u as i32 {
                return Err(tok.err("a meter is either kbps or pktps"));
            }
            meter.unit = u as i32;
        }
        ("burst", None) => meter.burst = true,
        ("stats", None) => meter.stats = true,
        ("bands" | "band", Some(v)) => return bands_value(v).map(Some),
        _ => return Err(tok.err(format!("unknown meter keyword `{key}`"))),
    }
    Ok(None)
}

/// A meter id: 1..=[`MAX_METER_ID`], or the virtual meters `controller` and `slowpath`.
pub(super) fn meter_id(v: Tok<'_>) -> Result<u32> {
    match v.text {
        "controller" => return Ok(METER_CONTROLLER),
        "slowpath" => return Ok(METER_SLOWPATH),
        _ => {}
    }
    let id = num_u32(v, MAX_METER_ID, "meter id")?;
    if id == 0 {
        return Err(v.err("meter ids start at 1"));
    }
    Ok(id)
}

/// A meter id as ovs-ofctl prints it.
pub(super) fn meter_id_text(id: u32) -> String {
    match id {
        METER_CONTROLLER => "controller".to_string(),
        METER_SLOWPATH => "slowpath".to_string(),
        n => n.to_string(),
    }
}

/// Parses an add-meter string:
/// `meter=1,kbps,burst,stats,bands=type=drop,rate=10000,burst_size=2000`. Each `type=`
/// after `bands=` (or `band=`) starts a new band. The unit defaults to kbps. Commas and spaces both
/// separate, so dump-meters output reads back too.
pub fn parse_meter(s: &str) -> Result<Meter> {
    let mut meter = Meter::default();
    let mut bands_tok = None;
    let mut band: OpenBand<'_> = None;
    for tok in split_tokens(s, 0, true) {
        if bands_tok.is_some() {
            band_token(tok, &mut band, &mut meter.bands)?;
        } else if let Some(first) = meter_token(tok, &mut meter)? {
            bands_tok = Some(tok);
            band = first;
        }
    }
    finish_band(band, &mut meter.bands)?;
    if meter.id == 0 {
        return Err(ParseError::new(
            0,
            s.get(..s.len().min(16)).unwrap_or(""),
            "missing `meter=ID`",
        ));
    }
    if meter.bands.is_empty() {
        let t = bands_tok.map_or((s.len(), ""), |t: Tok<'_>| (t.at, t.text));
        return Err(ParseError::new(
            t.0,
            t.1,
            "a meter needs at least one band: `bands=type=drop,rate=N`",
        ));
    }
    if meter.unit == MeterUnit::Unspecified as i32 {
        meter.unit = MeterUnit::Kbps as i32;
    }
    Ok(meter)
}

/// Prints a meter in the syntax [`parse_meter`] reads.
pub fn format_meter(m: &Meter) -> String {
    let mut parts = vec![format!("meter={}", meter_id_text(m.id))];
    parts.push(
        match MeterUnit::try_from(m.unit) {
            Ok(MeterUnit::Pktps) => "pktps",
            _ => "kbps",
        }
        .to_string(),
    );
    if m.burst {
        parts.push("burst".into());
    }
    if m.stats {
        parts.push("stats".into());
    }
    let mut bands = Vec::new();
    for b in &m.bands {
        let t = match BandType::try_from(b.r#type) {
            Ok(BandType::DscpRemark) => "dscp_remark",
            _ => "drop",
        };
        let mut s = format!("type={t},rate={}", b.rate);
        if b.burst_size != 0 {
            let _ = write!(s, ",burst_size={}", b.burst_size);
        }
        if b.prec_level != 0 {
            let _ = write!(s, ",prec_level={}", b.prec_level);
        }
        bands.push(s);
    }
    format!("{},bands={}", parts.join(","), bands.join(","))
}
