//! METER_MOD and meter bands (also the entries of METER_CONFIG replies).

use super::body::MessageBody;
use super::error::{OfpError, bad_request, meter_mod_failed};
use super::header::MsgType;
use super::ids::MeterId;
use super::list::{Item, List};
use super::wire::{Put, Reader};

/// Meter-mod commands (OFPMC_*).
#[allow(missing_docs)]
pub mod command {
    pub const ADD: u16 = 0;
    pub const MODIFY: u16 = 1;
    pub const DELETE: u16 = 2;
}

/// OFPMF_* meter flags.
#[allow(missing_docs)]
pub mod flags {
    pub const KBPS: u16 = 1 << 0;
    pub const PKTPS: u16 = 1 << 1;
    pub const BURST: u16 = 1 << 2;
    pub const STATS: u16 = 1 << 3;
}

/// One meter band.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Band<'a> {
    /// OFPMBT_DROP.
    Drop {
        /// Rate in kb/s or packets/s.
        rate: u32,
        /// Burst size.
        burst_size: u32,
    },
    /// OFPMBT_DSCP_REMARK.
    DscpRemark {
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// Drop precedence levels to add.
        prec_level: u8,
    },
    /// OFPMBT_EXPERIMENTER.
    Experimenter {
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// Experimenter id.
        experimenter: u32,
        /// Data after the id.
        data: &'a [u8],
    },
}

impl<'a> Item<'a> for Band<'a> {
    const BAD_LEN: OfpError = meter_mod_failed::BAD_BAND;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, meter_mod_failed::BAD_BAND);
        let kind = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 16 || len % 8 != 0 || len > buf.len() {
            return Err(meter_mod_failed::BAD_BAND);
        }
        let rate = r.u32()?;
        let burst_size = r.u32()?;
        let b = match kind {
            1 if len == 16 => Band::Drop { rate, burst_size },
            2 if len == 16 => Band::DscpRemark {
                rate,
                burst_size,
                prec_level: r.u8()?,
            },
            0xffff => Band::Experimenter {
                rate,
                burst_size,
                experimenter: r.u32()?,
                data: &buf[16..len],
            },
            _ => return Err(meter_mod_failed::BAD_BAND),
        };
        Ok((b, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match *self {
            Band::Drop { rate, burst_size } => {
                out.put_u16(1);
                out.put_u16(16);
                out.put_u32(rate);
                out.put_u32(burst_size);
                out.put_zeros(4);
            }
            Band::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                out.put_u16(2);
                out.put_u16(16);
                out.put_u32(rate);
                out.put_u32(burst_size);
                out.put_u8(prec_level);
                out.put_zeros(3);
            }
            Band::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            } => {
                out.put_u16(0xffff);
                out.put_u16(0);
                out.put_u32(rate);
                out.put_u32(burst_size);
                out.put_u32(experimenter);
                out.extend_from_slice(data);
                out.finish_aligned(start, 2);
            }
        }
    }
}

/// OFPT_METER_MOD.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MeterMod<'a> {
    /// OFPMC_*.
    pub command: u16,
    /// OFPMF_*.
    pub flags: u16,
    /// Meter id.
    pub meter_id: MeterId,
    /// Bands.
    pub bands: List<'a, Band<'a>>,
}

impl<'a> MessageBody<'a> for MeterMod<'a> {
    const TYPE: MsgType = MsgType::METER_MOD;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let command = r.u16()?;
        let flags = r.u16()?;
        let meter_id = MeterId(r.u32()?);
        if command > command::DELETE {
            return Err(meter_mod_failed::BAD_COMMAND);
        }
        Ok(MeterMod {
            command,
            flags,
            meter_id,
            bands: List::new_checked(r.rest())?,
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u16(self.command);
        out.put_u16(self.flags);
        out.put_u32(self.meter_id.0);
        self.bands.emit(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::header::Version;
    use crate::openflow::list::encode;
    use crate::openflow::message::{Message, emit, parse};

    #[test]
    fn meter_build_parse_emit() {
        let bands = encode(&[
            Band::Drop {
                rate: 1000,
                burst_size: 100,
            },
            Band::DscpRemark {
                rate: 500,
                burst_size: 0,
                prec_level: 1,
            },
        ]);
        let m = MeterMod {
            command: command::ADD,
            flags: flags::KBPS | flags::STATS,
            meter_id: MeterId(1),
            bands: List::new_checked(&bands).expect("bands"),
        };
        let mut out = Vec::new();
        emit(Version::V1_3, 3, &m, &mut out).expect("fits");
        assert_eq!(out.len(), 16 + 32);
        let (_, back) = parse(&out).expect("parses");
        assert_eq!(back, Message::MeterMod(m));
        let mut bad = out.clone();
        bad[17] = 7;
        assert_eq!(parse(&bad).err(), Some(meter_mod_failed::BAD_BAND));
    }
}
