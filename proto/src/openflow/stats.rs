//! Multipart bodies other than table features: switch description, flow, aggregate, table,
//! port, queue, group and meter statistics, group and meter descriptions and features.

use super::error::{OfpError, bad_request};
use super::group::{Bucket, GroupType};
use super::ids::{GroupId, MeterId, PortNo, TableId};
use super::instructions::Instructions;
use super::list::{Item, List};
use super::meter::Band;
use super::oxm::Match;
use super::wire::{Put, Reader, c_str};

/// Sizes of the description strings (DESC_STR_LEN, SERIAL_NUM_LEN).
pub const DESC_STR_LEN: usize = 256;
/// Size of the serial number string.
pub const SERIAL_NUM_LEN: usize = 32;

fn put_str(out: &mut Vec<u8>, s: &[u8], n: usize) {
    let k = s.len().min(n);
    out.extend_from_slice(&s[..k]);
    out.put_zeros(n - k);
}

/// OFPMP_DESC reply: NUL-padded strings (as received, or shorter when built; emitted
/// padded to their field sizes).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Desc<'a> {
    /// Manufacturer.
    pub mfr_desc: &'a [u8],
    /// Hardware.
    pub hw_desc: &'a [u8],
    /// Software.
    pub sw_desc: &'a [u8],
    /// Serial number.
    pub serial_num: &'a [u8],
    /// Datapath description.
    pub dp_desc: &'a [u8],
}

impl<'a> Desc<'a> {
    /// Parses the 1056-byte body.
    pub fn parse(b: &'a [u8]) -> Result<Self, OfpError> {
        if b.len() != 4 * DESC_STR_LEN + SERIAL_NUM_LEN {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(b, bad_request::BAD_LEN);
        Ok(Desc {
            mfr_desc: r.bytes(DESC_STR_LEN)?,
            hw_desc: r.bytes(DESC_STR_LEN)?,
            sw_desc: r.bytes(DESC_STR_LEN)?,
            serial_num: r.bytes(SERIAL_NUM_LEN)?,
            dp_desc: r.bytes(DESC_STR_LEN)?,
        })
    }
    /// Writes the body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        put_str(out, self.mfr_desc, DESC_STR_LEN);
        put_str(out, self.hw_desc, DESC_STR_LEN);
        put_str(out, self.sw_desc, DESC_STR_LEN);
        put_str(out, self.serial_num, SERIAL_NUM_LEN);
        put_str(out, self.dp_desc, DESC_STR_LEN);
    }
    /// The datapath description without padding.
    pub fn dp_desc(&self) -> &'a [u8] {
        c_str(self.dp_desc)
    }
}

/// OFPMP_FLOW and OFPMP_AGGREGATE request body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FlowStatsRequest<'a> {
    /// Table, or ALL.
    pub table_id: TableId,
    /// Only flows outputting to this port (ANY: no filter).
    pub out_port: PortNo,
    /// Only flows outputting to this group (ANY: no filter).
    pub out_group: GroupId,
    /// Cookie to match under `cookie_mask`.
    pub cookie: u64,
    /// Cookie bits that must match.
    pub cookie_mask: u64,
    /// Flows whose match this match covers (non-strict).
    pub match_: Match<'a>,
}

impl<'a> FlowStatsRequest<'a> {
    /// Reads the body.
    pub fn parse(r: &mut Reader<'a>) -> Result<Self, OfpError> {
        let table_id = TableId(r.u8()?);
        r.skip(3)?;
        let out_port = PortNo(r.u32()?);
        let out_group = GroupId(r.u32()?);
        r.skip(4)?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie: r.u64()?,
            cookie_mask: r.u64()?,
            match_: Match::parse(r)?,
        })
    }
    /// Writes the body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u8(self.table_id.0);
        out.put_zeros(3);
        out.put_u32(self.out_port.0);
        out.put_u32(self.out_group.0);
        out.put_zeros(4);
        out.put_u64(self.cookie);
        out.put_u64(self.cookie_mask);
        self.match_.emit(out);
    }
}

/// One OFPMP_FLOW reply entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FlowStats<'a> {
    /// Table.
    pub table_id: TableId,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond.
    pub duration_nsec: u32,
    /// Priority.
    pub priority: u16,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// OFPFF_*.
    pub flags: u16,
    /// Cookie.
    pub cookie: u64,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// Match.
    pub match_: Match<'a>,
    /// Instructions.
    pub instructions: Instructions<'a>,
}

impl<'a> Item<'a> for FlowStats<'a> {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        let len = usize::from(r.u16()?);
        if len < 56 || len > buf.len() {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(&buf[2..len], bad_request::BAD_LEN);
        let table_id = TableId(r.u8()?);
        r.skip(1)?;
        let (duration_sec, duration_nsec) = (r.u32()?, r.u32()?);
        let (priority, idle_timeout, hard_timeout, flags) =
            (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
        r.skip(4)?;
        let (cookie, packet_count, byte_count) = (r.u64()?, r.u64()?, r.u64()?);
        let match_ = Match::parse(&mut r)?;
        let f = FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            match_,
            instructions: Instructions::new_checked(r.rest())?,
        };
        Ok((f, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.table_id.0);
        out.put_u8(0);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        for v in [
            self.priority,
            self.idle_timeout,
            self.hard_timeout,
            self.flags,
        ] {
            out.put_u16(v);
        }
        out.put_zeros(4);
        out.put_u64(self.cookie);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        self.match_.emit(out);
        self.instructions.emit(out);
        out.finish_len(start, 0);
    }
}

/// OFPMP_AGGREGATE reply.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct AggregateStats {
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Flows.
    pub flow_count: u32,
}

impl AggregateStats {
    /// Parses the 24-byte body.
    pub fn parse(b: &[u8]) -> Result<Self, OfpError> {
        if b.len() != 24 {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(b, bad_request::BAD_LEN);
        Ok(AggregateStats {
            packet_count: r.u64()?,
            byte_count: r.u64()?,
            flow_count: r.u32()?,
        })
    }
    /// Writes the body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        out.put_u32(self.flow_count);
        out.put_zeros(4);
    }
}

/// Defines a fixed-size multipart entry: fields read and written in order as u8/u16/u32/
/// u64; `+ N` after a field is N bytes of padding after it.
macro_rules! fixed_entry {
    ($(#[$m:meta])* $name:ident, $len:expr, { $( $(#[$fm:meta])* $f:ident : $t:ident $(+ $pad:literal)? ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
        pub struct $name { $( $(#[$fm])* pub $f: $t, )* }

        impl<'a> Item<'a> for $name {
            const BAD_LEN: OfpError = bad_request::BAD_LEN;
            fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
                let mut r = Reader::new(buf, bad_request::BAD_LEN);
                let e = $name { $( $f: { let v = r.$t()?; $( r.skip($pad)?; )? v }, )* };
                Ok((e, $len))
            }
            fn emit_item(&self, out: &mut Vec<u8>) {
                $(
                    fixed_entry!(@put out, self.$f, $t);
                    $( out.put_zeros($pad); )?
                )*
            }
        }
    };
    (@put $out:ident, $v:expr, u8) => { $out.put_u8($v) };
    (@put $out:ident, $v:expr, u16) => { $out.put_u16($v) };
    (@put $out:ident, $v:expr, u32) => { $out.put_u32($v) };
    (@put $out:ident, $v:expr, u64) => { $out.put_u64($v) };
}

fixed_entry!(
    /// One OFPMP_TABLE reply entry.
    TableStats, 24, {
        /// Table.
        table_id: u8 + 3,
        /// Active flows.
        active_count: u32,
        /// Packets looked up.
        lookup_count: u64,
        /// Packets that matched.
        matched_count: u64,
    }
);

fixed_entry!(
    /// One OFPMP_PORT_STATS reply entry.
    PortStats, 112, {
        /// Port.
        port_no: u32 + 4,
        /// Packets received.
        rx_packets: u64,
        /// Packets sent.
        tx_packets: u64,
        /// Bytes received.
        rx_bytes: u64,
        /// Bytes sent.
        tx_bytes: u64,
        /// Receive drops.
        rx_dropped: u64,
        /// Transmit drops.
        tx_dropped: u64,
        /// Receive errors.
        rx_errors: u64,
        /// Transmit errors.
        tx_errors: u64,
        /// Frame alignment errors.
        rx_frame_err: u64,
        /// Overruns.
        rx_over_err: u64,
        /// CRC errors.
        rx_crc_err: u64,
        /// Collisions.
        collisions: u64,
        /// Seconds the port has existed.
        duration_sec: u32,
        /// Nanoseconds beyond.
        duration_nsec: u32,
    }
);

fixed_entry!(
    /// One OFPMP_QUEUE reply entry.
    QueueStats, 40, {
        /// Port.
        port_no: u32,
        /// Queue.
        queue_id: u32,
        /// Bytes sent.
        tx_bytes: u64,
        /// Packets sent.
        tx_packets: u64,
        /// Packets dropped for overrun.
        tx_errors: u64,
        /// Seconds the queue has existed.
        duration_sec: u32,
        /// Nanoseconds beyond.
        duration_nsec: u32,
    }
);

/// Reads `n`-byte arrays of (packets, bytes) counters.
fn counters(b: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    b.chunks_exact(16).map(|c| {
        let mut r = Reader::new(c, bad_request::BAD_LEN);
        (r.u64().unwrap_or(0), r.u64().unwrap_or(0))
    })
}

/// One OFPMP_GROUP reply entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GroupStats<'a> {
    /// Group.
    pub group_id: GroupId,
    /// Flows and groups that forward to it.
    pub ref_count: u32,
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond.
    pub duration_nsec: u32,
    /// Per-bucket (packets, bytes), 16 bytes each.
    pub bucket_stats: &'a [u8],
}

impl<'a> GroupStats<'a> {
    /// Per-bucket (packets, bytes).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        counters(self.bucket_stats)
    }
}

impl<'a> Item<'a> for GroupStats<'a> {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        let len = usize::from(r.u16()?);
        if len < 40 || len > buf.len() || (len - 40) % 16 != 0 {
            return Err(bad_request::BAD_LEN);
        }
        r.skip(2)?;
        let (group_id, ref_count) = (GroupId(r.u32()?), r.u32()?);
        r.skip(4)?;
        let g = GroupStats {
            group_id,
            ref_count,
            packet_count: r.u64()?,
            byte_count: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            bucket_stats: &buf[40..len],
        };
        Ok((g, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_zeros(2);
        out.put_u32(self.group_id.0);
        out.put_u32(self.ref_count);
        out.put_zeros(4);
        out.put_u64(self.packet_count);
        out.put_u64(self.byte_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.extend_from_slice(self.bucket_stats);
        out.finish_len(start, 0);
    }
}

/// One OFPMP_GROUP_DESC reply entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct GroupDesc<'a> {
    /// Type.
    pub group_type: GroupType,
    /// Group.
    pub group_id: GroupId,
    /// Buckets.
    pub buckets: List<'a, Bucket<'a>>,
}

impl<'a> Item<'a> for GroupDesc<'a> {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        let len = usize::from(r.u16()?);
        if len < 8 || len > buf.len() {
            return Err(bad_request::BAD_LEN);
        }
        let group_type = GroupType::from_u8(r.u8()?)?;
        r.skip(1)?;
        let g = GroupDesc {
            group_type,
            group_id: GroupId(r.u32()?),
            buckets: List::new_checked(&buf[8..len])?,
        };
        Ok((g, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u8(self.group_type as u8);
        out.put_u8(0);
        out.put_u32(self.group_id.0);
        self.buckets.emit(out);
        out.finish_len(start, 0);
    }
}

/// OFPMP_GROUP_FEATURES reply.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct GroupFeatures {
    /// Bitmap of supported group types (1 << OFPGT_*).
    pub types: u32,
    /// OFPGFC_* capabilities.
    pub capabilities: u32,
    /// Most groups of each type.
    pub max_groups: [u32; 4],
    /// Bitmaps of actions (1 << OFPAT_*) supported by each type.
    pub actions: [u32; 4],
}

impl GroupFeatures {
    /// Parses the 40-byte body.
    pub fn parse(b: &[u8]) -> Result<Self, OfpError> {
        if b.len() != 40 {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(b, bad_request::BAD_LEN);
        let mut g = GroupFeatures {
            types: r.u32()?,
            capabilities: r.u32()?,
            ..GroupFeatures::default()
        };
        for v in g.max_groups.iter_mut().chain(g.actions.iter_mut()) {
            *v = r.u32()?;
        }
        Ok(g)
    }
    /// Writes the body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.types);
        out.put_u32(self.capabilities);
        for v in self.max_groups.iter().chain(self.actions.iter()) {
            out.put_u32(*v);
        }
    }
}

/// One OFPMP_METER reply entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MeterStats<'a> {
    /// Meter.
    pub meter_id: MeterId,
    /// Flows using it.
    pub flow_count: u32,
    /// Packets in.
    pub packet_in_count: u64,
    /// Bytes in.
    pub byte_in_count: u64,
    /// Seconds alive.
    pub duration_sec: u32,
    /// Nanoseconds beyond.
    pub duration_nsec: u32,
    /// Per-band (packets, bytes), 16 bytes each.
    pub band_stats: &'a [u8],
}

impl<'a> MeterStats<'a> {
    /// Per-band (packets, bytes).
    pub fn bands(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        counters(self.band_stats)
    }
}

impl<'a> Item<'a> for MeterStats<'a> {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        let meter_id = MeterId(r.u32()?);
        let len = usize::from(r.u16()?);
        if len < 40 || len > buf.len() || (len - 40) % 16 != 0 {
            return Err(bad_request::BAD_LEN);
        }
        r.skip(6)?;
        let m = MeterStats {
            meter_id,
            flow_count: r.u32()?,
            packet_in_count: r.u64()?,
            byte_in_count: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
            band_stats: &buf[40..len],
        };
        Ok((m, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u32(self.meter_id.0);
        out.put_u16(0);
        out.put_zeros(6);
        out.put_u32(self.flow_count);
        out.put_u64(self.packet_in_count);
        out.put_u64(self.byte_in_count);
        out.put_u32(self.duration_sec);
        out.put_u32(self.duration_nsec);
        out.extend_from_slice(self.band_stats);
        out.finish_len(start, 4);
    }
}

/// One OFPMP_METER_CONFIG reply entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MeterConfig<'a> {
    /// OFPMF_*.
    pub flags: u16,
    /// Meter.
    pub meter_id: MeterId,
    /// Bands.
    pub bands: List<'a, Band<'a>>,
}

impl<'a> Item<'a> for MeterConfig<'a> {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        let len = usize::from(r.u16()?);
        if len < 8 || len > buf.len() {
            return Err(bad_request::BAD_LEN);
        }
        let m = MeterConfig {
            flags: r.u16()?,
            meter_id: MeterId(r.u32()?),
            bands: List::new_checked(&buf[8..len])?,
        };
        Ok((m, len))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(0);
        out.put_u16(self.flags);
        out.put_u32(self.meter_id.0);
        self.bands.emit(out);
        out.finish_len(start, 0);
    }
}

/// OFPMP_METER_FEATURES reply.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct MeterFeatures {
    /// Most meters.
    pub max_meter: u32,
    /// Bitmap of band types (1 << OFPMBT_*).
    pub band_types: u32,
    /// OFPMF_* supported.
    pub capabilities: u32,
    /// Most bands per meter.
    pub max_bands: u8,
    /// Most color values.
    pub max_color: u8,
}

impl MeterFeatures {
    /// Parses the 16-byte body.
    pub fn parse(b: &[u8]) -> Result<Self, OfpError> {
        if b.len() != 16 {
            return Err(bad_request::BAD_LEN);
        }
        let mut r = Reader::new(b, bad_request::BAD_LEN);
        Ok(MeterFeatures {
            max_meter: r.u32()?,
            band_types: r.u32()?,
            capabilities: r.u32()?,
            max_bands: r.u8()?,
            max_color: r.u8()?,
        })
    }
    /// Writes the body.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.max_meter);
        out.put_u32(self.band_types);
        out.put_u32(self.capabilities);
        out.put_u8(self.max_bands);
        out.put_u8(self.max_color);
        out.put_zeros(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::list::encode;

    #[test]
    fn fixed_entries_round_trip() {
        let t = TableStats {
            table_id: 3,
            active_count: 10,
            lookup_count: 100,
            matched_count: 90,
        };
        let b = encode(&[t]);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[..8], [3, 0, 0, 0, 0, 0, 0, 10]);
        assert_eq!(
            List::<TableStats>::new_checked(&b)
                .expect("t")
                .iter()
                .next(),
            Some(t)
        );
        let p = PortStats {
            port_no: 1,
            rx_packets: 2,
            duration_sec: 9,
            ..PortStats::default()
        };
        let b = encode(&[p]);
        assert_eq!(b.len(), 112);
        assert_eq!(&b[..16], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(
            List::<PortStats>::new_checked(&b).expect("p").iter().next(),
            Some(p)
        );
        let q = QueueStats {
            port_no: 1,
            queue_id: 2,
            ..QueueStats::default()
        };
        assert_eq!(encode(&[q]).len(), 40);
    }

    #[test]
    fn group_stats_with_buckets() {
        let mut bs = Vec::new();
        bs.put_u64(5);
        bs.put_u64(500);
        let g = GroupStats {
            group_id: GroupId(1),
            ref_count: 2,
            packet_count: 5,
            byte_count: 500,
            duration_sec: 1,
            duration_nsec: 0,
            bucket_stats: &bs,
        };
        let b = encode(&[g]);
        assert_eq!(b.len(), 56);
        let back = List::<GroupStats<'_>>::new_checked(&b).expect("g");
        let g2 = back.iter().next().expect("one");
        assert_eq!(g2, g);
        assert_eq!(g2.buckets().collect::<Vec<_>>(), [(5, 500)]);
        assert_eq!(
            List::<GroupStats<'_>>::new_checked(&b[..50]).err(),
            Some(bad_request::BAD_LEN)
        );
    }
}
