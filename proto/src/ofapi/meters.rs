//! METER_MOD to an API update, and meters back to METER_CONFIG and METER stats entries.
//!
//! Checks as Open vSwitch makes them (lib/ofp-meter.c, ofproto.c): both KBPS and PKTPS,
//! or neither, is `BAD_FLAGS`; id 0 or above `MAX` is `INVALID_METER` except `OFPM_ALL`
//! in a delete (which the channel expands to every meter); an experimenter band is
//! `BAD_BAND`, a rate of 0 `BAD_RATE`; more bands than the switch offers `OUT_OF_BANDS`.

use crate::openflow::error::{OfpError, meter_mod_failed};
use crate::openflow::ids::MeterId;
use crate::openflow::meter::{Band, MeterMod, command, flags};
use crate::openflow::wire::Put;
use crate::v1::{self, entity, update};

/// Most bands a meter may have (what METER_FEATURES reports).
pub const MAX_BANDS: u8 = 8;

/// What a METER_MOD asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum MeterChange {
    /// One update.
    One(v1::Update),
    /// Delete every meter (OFPMC_DELETE of OFPM_ALL).
    DeleteAll,
}

fn band(b: &Band<'_>) -> Result<v1::Band, OfpError> {
    let (t, rate, burst_size, prec_level) = match *b {
        Band::Drop { rate, burst_size } => (v1::BandType::Drop, rate, burst_size, 0),
        Band::DscpRemark {
            rate,
            burst_size,
            prec_level,
        } => (v1::BandType::DscpRemark, rate, burst_size, prec_level),
        Band::Experimenter { .. } => return Err(meter_mod_failed::BAD_BAND),
    };
    if rate == 0 {
        return Err(meter_mod_failed::BAD_RATE);
    }
    Ok(v1::Band {
        r#type: t as i32,
        rate,
        burst_size,
        prec_level: u32::from(prec_level),
    })
}

/// The API change a METER_MOD asks for.
pub fn to_api(mm: &MeterMod<'_>) -> Result<MeterChange, OfpError> {
    if mm.command > command::DELETE {
        return Err(meter_mod_failed::BAD_COMMAND);
    }
    let delete = mm.command == command::DELETE;
    if delete && mm.meter_id == MeterId::ALL {
        return Ok(MeterChange::DeleteAll);
    }
    let mut m = v1::Meter {
        id: mm.meter_id.0,
        ..Default::default()
    };
    if !delete {
        let kbps = mm.flags & flags::KBPS != 0;
        let pktps = mm.flags & flags::PKTPS != 0;
        if kbps == pktps {
            return Err(meter_mod_failed::BAD_FLAGS);
        }
        if mm.meter_id.0 == 0 || mm.meter_id.0 > MeterId::MAX.0 {
            return Err(meter_mod_failed::INVALID_METER);
        }
        if mm.bands.count() > usize::from(MAX_BANDS) {
            return Err(meter_mod_failed::OUT_OF_BANDS);
        }
        m.unit = if kbps {
            v1::MeterUnit::Kbps
        } else {
            v1::MeterUnit::Pktps
        } as i32;
        m.burst = mm.flags & flags::BURST != 0;
        m.stats = mm.flags & flags::STATS != 0;
        for b in mm.bands.iter() {
            m.bands.push(band(&b)?);
        }
    }
    let ty = match mm.command {
        command::ADD => update::Type::Insert,
        command::MODIFY => update::Type::Modify,
        _ => update::Type::Delete,
    };
    Ok(MeterChange::One(v1::Update {
        r#type: ty as i32,
        entity: Some(v1::Entity {
            entity: Some(entity::Entity::Meter(m)),
        }),
    }))
}

/// The OFPMF_* flags of a meter.
pub fn wire_flags(m: &v1::Meter) -> u16 {
    let mut f = if m.unit == v1::MeterUnit::Pktps as i32 {
        flags::PKTPS
    } else {
        flags::KBPS
    };
    if m.burst {
        f |= flags::BURST;
    }
    if m.stats {
        f |= flags::STATS;
    }
    f
}

/// Writes one OFPMP_METER_CONFIG reply entry.
pub fn put_meter_config(m: &v1::Meter, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u16(0);
    out.put_u16(wire_flags(m));
    out.put_u32(m.id);
    for b in &m.bands {
        let kind = if b.r#type == v1::BandType::DscpRemark as i32 {
            2
        } else {
            1
        };
        out.put_u16(kind);
        out.put_u16(16);
        out.put_u32(b.rate);
        out.put_u32(if m.burst { b.burst_size } else { 0 });
        out.put_u8(if kind == 2 { b.prec_level as u8 } else { 0 });
        out.put_zeros(3);
    }
    out.finish_len(start, 0);
}

/// Writes one OFPMP_METER reply entry.
pub fn put_meter_stats(s: &v1::MeterStats, out: &mut Vec<u8>) {
    let start = out.len();
    out.put_u32(s.meter_id);
    out.put_u16(0);
    out.put_zeros(6);
    out.put_u32(s.flow_count);
    out.put_u64(s.packet_in_count);
    out.put_u64(s.byte_in_count);
    out.put_u32((s.duration_ns / 1_000_000_000) as u32);
    out.put_u32((s.duration_ns % 1_000_000_000) as u32);
    for b in &s.bands {
        out.put_u64(b.packet_count);
        out.put_u64(b.byte_count);
    }
    out.finish_len(start, 4);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::body::MessageBody;
    use crate::openflow::list::{Item, List, encode};
    use crate::openflow::stats::{MeterConfig, MeterStats};

    fn meter_mod(command: u16, fl: u16, id: u32, bands: &[Band<'_>]) -> Vec<u8> {
        let b = encode(bands);
        let mm = MeterMod {
            command,
            flags: fl,
            meter_id: MeterId(id),
            bands: List::new_checked(&b).expect("bands"),
        };
        let mut out = Vec::new();
        mm.emit_body(&mut out);
        out
    }

    fn parse(body: &[u8]) -> Result<MeterChange, OfpError> {
        to_api(&MeterMod::parse(body).expect("parses"))
    }

    #[test]
    fn meters_map_and_print_back() {
        let drop = Band::Drop {
            rate: 1000,
            burst_size: 100,
        };
        let body = meter_mod(command::ADD, flags::KBPS | flags::BURST, 3, &[drop]);
        let MeterChange::One(u) = parse(&body).expect("add") else {
            panic!("one");
        };
        let Some(entity::Entity::Meter(m)) = u.entity.and_then(|e| e.entity) else {
            panic!("a meter");
        };
        let text = crate::flow_text::parse_meter(
            "meter=3,kbps,burst,bands=type=drop,rate=1000,burst_size=100",
        )
        .expect("meter");
        assert_eq!(m, text);
        let mut out = Vec::new();
        put_meter_config(&m, &mut out);
        let (c, _) = MeterConfig::parse_item(&out).expect("config");
        assert_eq!(
            (c.meter_id, c.flags),
            (MeterId(3), flags::KBPS | flags::BURST)
        );
        assert_eq!(c.bands.iter().next(), Some(drop));
        let s = v1::MeterStats {
            meter_id: 3,
            bands: vec![v1::BandStats::default()],
            ..Default::default()
        };
        let mut out = Vec::new();
        put_meter_stats(&s, &mut out);
        let (ms, n) = MeterStats::parse_item(&out).expect("stats");
        assert_eq!((ms.meter_id, n, ms.bands().count()), (MeterId(3), 56, 1));
    }

    #[test]
    fn refusals() {
        let drop = Band::Drop {
            rate: 1,
            burst_size: 0,
        };
        assert_eq!(
            parse(&meter_mod(
                command::ADD,
                flags::KBPS | flags::PKTPS,
                1,
                &[drop]
            )),
            Err(meter_mod_failed::BAD_FLAGS)
        );
        assert_eq!(
            parse(&meter_mod(command::ADD, flags::KBPS, 0, &[drop])),
            Err(meter_mod_failed::INVALID_METER)
        );
        assert_eq!(
            parse(&meter_mod(
                command::ADD,
                flags::KBPS,
                1,
                &[Band::Drop {
                    rate: 0,
                    burst_size: 0
                }]
            )),
            Err(meter_mod_failed::BAD_RATE)
        );
        assert_eq!(
            parse(&meter_mod(command::DELETE, 0, MeterId::ALL.0, &[])),
            Ok(MeterChange::DeleteAll)
        );
    }
}
