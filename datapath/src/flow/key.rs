//! The flow key: every header field the pipeline can match on, packed into 64-bit words.
//!
//! What: `FlowKey` is the only copy of header data the pipeline reads after extraction. Every
//! matchable field is a bit range inside the word array ([`Field::range`]), so masks, masked
//! hashing, matching and set-field are the same word-wise code for every field.
//!
//! The first [`PKT_WORDS`] words are derived from the packet itself (and its tunnel metadata);
//! the next [`CT_WORDS`] hold its connection-tracking state (`ct_state`, `ct_zone`, `ct_mark`,
//! `ct_label`, the original-direction tuple) and the recirculation id, written by the `ct`
//! action before the packet is looked up again; the remaining words (metadata, registers,
//! packet mark) are pipeline state. All but the packet words are zero on ingress. The
//! exact-match cache keys on the packet words (it serves ingress lookups only); the megaflow
//! cache on every word, so a recirculated packet's lookup depends on its ct state and on the
//! pipeline state it was recirculated with. The last word holds `conj_id`, which only a
//! table lookup sets, for its own second pass (see `classifier::conj`): zero everywhere
//! else, and never in a megaflow's mask.
//!
//! Registers: `reg0`..`reg15` are 32 bits each, two to a word with the even register in the
//! high half, so that `xregN` (64 bits: `reg2N` high, `reg2N+1` low) is one whole word and
//! `xxregN` (128 bits: `reg4N` most significant) two ([`Field::Xreg`], [`Field::Xxreg`]: other
//! names for the same bits, as in Open vSwitch).
//!
//! Some fields share bits with fields of another protocol, which a packet cannot have at
//! the same time ([`Field::OVERLAYS`]): the MPLS label stack entry lives where an IPv4
//! packet's source address does, the IPv6 flow label where an ARP packet's opcode does, a
//! neighbour discovery target where the IPv4 addresses and the ARP target hardware address
//! do, and its link-layer address option in `ArpSha` (a solicitation carries the source's,
//! an advertisement the target's). A flow that matches one pins the protocol (OpenFlow's
//! prerequisites), so a mask never mixes them up.
//!
//! Values are stored as host integers: an IPv4 address `10.0.0.1` is `0x0a000001`, a MAC
//! address is its 48-bit big-endian value, a VLAN TCI is the 16-bit TCI with the CFI bit
//! (0x1000) set when a tag is present, as OpenFlow's `vlan_tci` field.
//!
//! Thread-safety: plain `Copy` data.

use std::fmt;

/// Number of 64-bit words in a key.
pub const KEY_WORDS: usize = 32;
/// Number of leading words that come from the packet (and tunnel metadata).
pub const PKT_WORDS: usize = 13;
/// Number of words after the packet words that hold the connection-tracking state and the
/// recirculation id.
pub const CT_WORDS: usize = 8;
/// The first word of pipeline state (metadata, registers, packet mark).
const STATE_WORD: usize = PKT_WORDS + CT_WORDS;

/// A flow key, or (as [`FlowMask`]) a mask over one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(C, align(64))]
pub struct FlowKey {
    /// The packed words; see [`Field::range`] for the layout.
    pub w: [u64; KEY_WORDS],
}

/// A mask over a [`FlowKey`]: a set bit means "this bit must match".
pub type FlowMask = FlowKey;

/// VLAN TCI bit that says a tag is present (OpenFlow's OFPVID_PRESENT shifted into the TCI).
pub const VLAN_CFI: u16 = 0x1000;

/// `nw_frag` bit: the packet is an IP fragment.
pub const FRAG_ANY: u8 = 1;
/// `nw_frag` bit: the packet is a non-first fragment (no L4 header).
pub const FRAG_LATER: u8 = 2;

/// `tun_flags` bit: an OAM frame (Geneve / VXLAN-GPE). This switch's VXLAN and GRE ports
/// never set it.
pub const TUN_FLAG_OAM: u8 = 1;

/// Every matchable field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// Ingress port number.
    InPort,
    /// Ethertype after any VLAN tags.
    EthType,
    /// Outer VLAN TCI (`VLAN_CFI` set when tagged; 0 when untagged).
    VlanTci,
    /// Ethernet source.
    EthSrc,
    /// IP protocol (or the low 8 bits of the ARP opcode, as OpenFlow 1.0 did; see `ArpOp`).
    IpProto,
    /// IPv4 TOS / IPv6 traffic class byte (DSCP << 2 | ECN).
    IpTos,
    /// Ethernet destination.
    EthDst,
    /// IPv4 TTL / IPv6 hop limit.
    IpTtl,
    /// Fragment bits: [`FRAG_ANY`], [`FRAG_LATER`].
    IpFrag,
    /// IPv4 source, or ARP sender protocol address.
    Ipv4Src,
    /// IPv4 destination, or ARP target protocol address.
    Ipv4Dst,
    /// IPv6 source (128 bits, two words).
    Ipv6Src,
    /// IPv6 destination (128 bits, two words).
    Ipv6Dst,
    /// TCP/UDP source port, or ICMP/ICMPv6 type.
    TpSrc,
    /// TCP/UDP destination port, or ICMP/ICMPv6 code.
    TpDst,
    /// TCP flags (12 bits).
    TcpFlags,
    /// ARP opcode.
    ArpOp,
    /// ARP sender hardware address.
    ArpSha,
    /// Inner VLAN TCI of a double-tagged frame (`VLAN_CFI` set when present).
    VlanTci2,
    /// ARP target hardware address.
    ArpTha,
    /// Tunnel id (VNI or GRE key) the packet arrived with.
    TunId,
    /// Outer IPv4 source of the tunnel the packet arrived on.
    TunSrc,
    /// Outer IPv4 destination of the tunnel the packet arrived on.
    TunDst,
    /// OpenFlow metadata (pipeline state).
    Metadata,
    /// Registers 0..15 (pipeline state, 32 bits each).
    Reg(u8),
    /// 64-bit registers 0..7: `Reg(2n)` (high half) and `Reg(2n + 1)`, the same bits.
    Xreg(u8),
    /// 128-bit registers 0..3: `Reg(4n)` (most significant) to `Reg(4n + 3)`.
    Xxreg(u8),
    /// Flags of the tunnel the packet arrived on ([`TUN_FLAG_OAM`]).
    TunFlags,
    /// MPLS label of the outermost label stack entry (MPLS packets; overlays `Ipv4Src`).
    MplsLabel,
    /// MPLS traffic class of the outermost entry.
    MplsTc,
    /// MPLS bottom-of-stack bit of the outermost entry.
    MplsBos,
    /// MPLS TTL of the outermost entry.
    MplsTtl,
    /// IPv6 flow label (IPv6 packets; overlays `ArpOp`).
    Ipv6Label,
    /// Neighbour discovery target address (ICMPv6 NS/NA; overlays the IPv4 addresses and
    /// `ArpTha`); the link-layer address option is `ArpSha`.
    NdTarget,
    /// Packet mark (`pkt_mark`, pipeline state).
    PktMark,
    // Connection tracking (see `conntrack`): written by the `ct` action, read-only to
    // set-field, zero until a `ct` action ran.
    /// `ct_state` bits (`conntrack::CtState`).
    CtState,
    /// `ct_zone`.
    CtZone,
    /// `ct_mark`.
    CtMark,
    /// `ct_label` (128 bits).
    CtLabel,
    /// Original-direction IP protocol (`ct_nw_proto`).
    CtNwProto,
    /// Original-direction IPv4 source (`ct_nw_src`; overlays the low bits of `CtIpv6Src`).
    CtNwSrc,
    /// Original-direction IPv4 destination (`ct_nw_dst`; overlays `CtIpv6Dst`).
    CtNwDst,
    /// Original-direction IPv6 source (`ct_ipv6_src`).
    CtIpv6Src,
    /// Original-direction IPv6 destination (`ct_ipv6_dst`).
    CtIpv6Dst,
    /// Original-direction transport source port, or ICMP type (`ct_tp_src`).
    CtTpSrc,
    /// Original-direction transport destination port, or ICMP code (`ct_tp_dst`).
    CtTpDst,
    /// Recirculation id: 0 on ingress, the table + 1 after `ct(table=T)`.
    RecircId,
    /// The output port of the packet's action set (OpenFlow 1.5 `actset_output`): the
    /// OpenFlow number of the port its last `output` names (reserved ports by their
    /// numbers), 0 when it has none or has a group (OpenFlow's UNSET). Pipeline state
    /// that only the walk of the tables writes (`write_actions`, `clear_actions`).
    ActsetOutput,
    /// The conjunction id a table's lookup found satisfied (`conj_id`): set only while that
    /// lookup looks again for the flow that matches it, zero in every packet's key.
    ConjId,
}

/// Where a field lives: `bits` bits starting at bit `shift` of word `word`. Fields wider
/// than 64 bits are whole words: the high half in `word`, the low half in `word2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldRange {
    /// First word.
    pub word: usize,
    /// Bit offset inside the word.
    pub shift: u32,
    /// Width in bits (up to 128).
    pub bits: u32,
    /// The word of the low half of a field wider than 64 bits.
    pub word2: usize,
}

impl FieldRange {
    const fn new(word: usize, shift: u32, bits: u32) -> FieldRange {
        FieldRange {
            word,
            shift,
            bits,
            word2: word + 1,
        }
    }

    const fn wide(word: usize, word2: usize) -> FieldRange {
        FieldRange {
            word,
            shift: 0,
            bits: 128,
            word2,
        }
    }
}

impl Field {
    /// Fields that share bits with others of another protocol (see the module comment),
    /// each with the ethertypes of the packets that have it.
    pub const OVERLAYS: [(Field, &'static [u16]); 8] = [
        (Field::MplsLabel, &[0x8847, 0x8848]),
        (Field::MplsTc, &[0x8847, 0x8848]),
        (Field::MplsBos, &[0x8847, 0x8848]),
        (Field::MplsTtl, &[0x8847, 0x8848]),
        (Field::Ipv6Label, &[0x86dd]),
        (Field::NdTarget, &[0x86dd]),
        (Field::CtNwSrc, &[0x0800]),
        (Field::CtNwDst, &[0x0800]),
    ];

    /// All fields that own their bits, in layout order (registers expanded).
    pub const ALL: [Field; 54] = [
        Field::InPort,
        Field::EthType,
        Field::VlanTci,
        Field::EthSrc,
        Field::IpProto,
        Field::IpTos,
        Field::EthDst,
        Field::IpTtl,
        Field::IpFrag,
        Field::Ipv4Src,
        Field::Ipv4Dst,
        Field::Ipv6Src,
        Field::Ipv6Dst,
        Field::TpSrc,
        Field::TpDst,
        Field::TcpFlags,
        Field::ArpOp,
        Field::ArpSha,
        Field::VlanTci2,
        Field::ArpTha,
        Field::TunId,
        Field::TunSrc,
        Field::TunDst,
        Field::Metadata,
        Field::Reg(0),
        Field::Reg(1),
        Field::Reg(2),
        Field::Reg(3),
        Field::Reg(4),
        Field::Reg(5),
        Field::Reg(6),
        Field::Reg(7),
        Field::Reg(8),
        Field::Reg(9),
        Field::Reg(10),
        Field::Reg(11),
        Field::Reg(12),
        Field::Reg(13),
        Field::Reg(14),
        Field::Reg(15),
        Field::TunFlags,
        Field::PktMark,
        Field::ActsetOutput,
        Field::CtState,
        Field::CtNwProto,
        Field::CtZone,
        Field::RecircId,
        Field::CtMark,
        Field::CtTpSrc,
        Field::CtTpDst,
        Field::CtLabel,
        Field::CtIpv6Src,
        Field::CtIpv6Dst,
        Field::ConjId,
    ];

    /// False for a field that overlays another protocol's bits ([`Field::OVERLAYS`]) when
    /// the packet (of ethertype `eth`) is not of its protocol: writing it there would change
    /// the other protocol's field, so set-field leaves such a packet alone.
    #[inline]
    pub const fn applies_to(self, eth: u16) -> bool {
        match self {
            Field::MplsLabel | Field::MplsTc | Field::MplsBos | Field::MplsTtl => {
                eth == 0x8847 || eth == 0x8848
            }
            Field::Ipv6Label | Field::NdTarget => eth == 0x86dd,
            Field::CtNwSrc | Field::CtNwDst => eth == 0x0800,
            _ => true,
        }
    }

    /// The field's place in the key.
    pub const fn range(self) -> FieldRange {
        match self {
            Field::InPort => FieldRange::new(0, 0, 32),
            Field::EthType => FieldRange::new(0, 32, 16),
            Field::VlanTci => FieldRange::new(0, 48, 16),
            Field::EthSrc => FieldRange::new(1, 0, 48),
            Field::IpProto => FieldRange::new(1, 48, 8),
            Field::IpTos => FieldRange::new(1, 56, 8),
            Field::EthDst => FieldRange::new(2, 0, 48),
            Field::IpTtl => FieldRange::new(2, 48, 8),
            Field::IpFrag => FieldRange::new(2, 56, 2),
            Field::TunFlags => FieldRange::new(2, 58, 1),
            Field::Ipv4Src => FieldRange::new(3, 0, 32),
            Field::Ipv4Dst => FieldRange::new(3, 32, 32),
            Field::Ipv6Src => FieldRange::new(4, 0, 128),
            Field::Ipv6Dst => FieldRange::new(6, 0, 128),
            Field::TpSrc => FieldRange::new(8, 0, 16),
            Field::TpDst => FieldRange::new(8, 16, 16),
            Field::TcpFlags => FieldRange::new(8, 32, 12),
            Field::ArpOp => FieldRange::new(8, 48, 16),
            Field::ArpSha => FieldRange::new(9, 0, 48),
            Field::VlanTci2 => FieldRange::new(9, 48, 16),
            Field::ArpTha => FieldRange::new(10, 0, 48),
            Field::TunId => FieldRange::new(11, 0, 64),
            Field::TunSrc => FieldRange::new(12, 0, 32),
            Field::TunDst => FieldRange::new(12, 32, 32),
            Field::Metadata => FieldRange::new(STATE_WORD, 0, 64),
            Field::Reg(n) => FieldRange::new(reg_word(n as usize), 32 * (1 - (n as u32 & 1)), 32),
            Field::Xreg(n) => FieldRange::new(reg_word(2 * n as usize), 0, 64),
            Field::Xxreg(n) => {
                FieldRange::wide(reg_word(4 * n as usize), reg_word(4 * n as usize + 2))
            }
            // The label stack entry as it is on the wire: label 20, TC 3, BoS 1, TTL 8.
            Field::MplsLabel => FieldRange::new(3, 12, 20),
            Field::MplsTc => FieldRange::new(3, 9, 3),
            Field::MplsBos => FieldRange::new(3, 8, 1),
            Field::MplsTtl => FieldRange::new(3, 0, 8),
            Field::Ipv6Label => FieldRange::new(8, 44, 20),
            Field::NdTarget => FieldRange::wide(3, 10),
            Field::PktMark => FieldRange::new(STATE_WORD + 9, 0, 32),
            Field::ActsetOutput => FieldRange::new(STATE_WORD + 9, 32, 32),
            Field::ConjId => FieldRange::new(STATE_WORD + 10, 0, 32),
            // The connection-tracking words, PKT_WORDS.. (the tuple as the tracker stores
            // it: an IPv4 address in the low bits of the IPv6 field).
            Field::CtState => FieldRange::new(PKT_WORDS, 0, 8),
            Field::CtNwProto => FieldRange::new(PKT_WORDS, 8, 8),
            Field::CtZone => FieldRange::new(PKT_WORDS, 16, 16),
            Field::RecircId => FieldRange::new(PKT_WORDS, 32, 32),
            Field::CtMark => FieldRange::new(PKT_WORDS + 1, 0, 32),
            Field::CtTpSrc => FieldRange::new(PKT_WORDS + 1, 32, 16),
            Field::CtTpDst => FieldRange::new(PKT_WORDS + 1, 48, 16),
            Field::CtLabel => FieldRange::wide(PKT_WORDS + 2, PKT_WORDS + 3),
            Field::CtIpv6Src => FieldRange::wide(PKT_WORDS + 4, PKT_WORDS + 5),
            Field::CtIpv6Dst => FieldRange::wide(PKT_WORDS + 6, PKT_WORDS + 7),
            Field::CtNwSrc => FieldRange::new(PKT_WORDS + 5, 0, 32),
            Field::CtNwDst => FieldRange::new(PKT_WORDS + 7, 0, 32),
        }
    }

    /// Width in bits.
    pub const fn bits(self) -> u32 {
        self.range().bits
    }

    /// The all-ones value of this field's width.
    pub const fn full_mask(self) -> u128 {
        let bits = self.bits();
        if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        }
    }

    /// True for fields that set-field may not write (OpenFlow: in_port, fragment bits).
    pub const fn is_read_only(self) -> bool {
        matches!(
            self,
            Field::InPort
                | Field::IpFrag
                | Field::TcpFlags
                | Field::MplsBos
                | Field::TunFlags
                | Field::ActsetOutput
                | Field::ConjId
        ) || self.is_ct()
    }

    /// True for the connection-tracking fields and the recirculation id (only the `ct`
    /// action writes them).
    pub const fn is_ct(self) -> bool {
        matches!(
            self,
            Field::CtState
                | Field::CtZone
                | Field::CtMark
                | Field::CtLabel
                | Field::CtNwProto
                | Field::CtNwSrc
                | Field::CtNwDst
                | Field::CtIpv6Src
                | Field::CtIpv6Dst
                | Field::CtTpSrc
                | Field::CtTpDst
                | Field::RecircId
        )
    }
}

/// The word of register `n` (0..=15; wrapped): the eight words after metadata's, two
/// registers to a word.
const fn reg_word(n: usize) -> usize {
    STATE_WORD + 1 + (n & 15) / 2
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Reg(n) => write!(f, "reg{n}"),
            Field::Xreg(n) => write!(f, "xreg{n}"),
            Field::Xxreg(n) => write!(f, "xxreg{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[inline(always)]
const fn low_bits(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

impl FlowKey {
    /// The all-zero key (also the "match nothing specifically" mask).
    pub const ZERO: FlowKey = FlowKey { w: [0; KEY_WORDS] };
    /// The all-ones mask (exact match on everything).
    pub const EXACT: FlowKey = FlowKey {
        w: [u64::MAX; KEY_WORDS],
    };

    /// Reads a field (up to 128 bits).
    #[inline]
    pub fn get(&self, f: Field) -> u128 {
        let r = f.range();
        if r.bits > 64 {
            ((self.w[r.word] as u128) << 64) | self.w[r.word2] as u128
        } else {
            ((self.w[r.word] >> r.shift) & low_bits(r.bits)) as u128
        }
    }

    /// Writes a field; bits above its width are ignored.
    #[inline]
    pub fn set(&mut self, f: Field, v: u128) {
        let r = f.range();
        if r.bits > 64 {
            self.w[r.word] = (v >> 64) as u64;
            self.w[r.word2] = v as u64;
        } else {
            let m = low_bits(r.bits) << r.shift;
            self.w[r.word] = (self.w[r.word] & !m) | (((v as u64) << r.shift) & m);
        }
    }

    /// Writes only the bits of `v` selected by `mask` (both in field units).
    #[inline]
    pub fn set_masked(&mut self, f: Field, v: u128, mask: u128) {
        let old = self.get(f);
        self.set(f, (old & !mask) | (v & mask));
    }

    /// `self & mask`, word by word.
    #[inline]
    pub fn masked(&self, mask: &FlowMask) -> FlowKey {
        let mut out = FlowKey::ZERO;
        for i in 0..KEY_WORDS {
            out.w[i] = self.w[i] & mask.w[i];
        }
        out
    }

    /// `self | other`, word by word (used to accumulate consulted-field masks).
    #[inline]
    pub fn or_assign(&mut self, other: &FlowKey) {
        for i in 0..KEY_WORDS {
            self.w[i] |= other.w[i];
        }
    }

    /// True when `self` and `other` agree on every bit of `mask`.
    #[inline]
    pub fn matches(&self, other: &FlowKey, mask: &FlowMask) -> bool {
        let mut diff = 0;
        for i in 0..KEY_WORDS {
            diff |= (self.w[i] ^ other.w[i]) & mask.w[i];
        }
        diff == 0
    }

    /// True when every bit set in `self` is set in `other` (mask containment).
    pub fn is_subset_of(&self, other: &FlowMask) -> bool {
        (0..KEY_WORDS).all(|i| self.w[i] & !other.w[i] == 0)
    }

    /// True when this mask has no bit set in the pipeline-state words.
    pub fn is_packet_only(&self) -> bool {
        self.w[PKT_WORDS..].iter().all(|&w| w == 0)
    }
}

impl fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for field in Field::ALL {
            let v = self.get(field);
            if v != 0 {
                m.entry(&field, &format_args!("{v:#x}"));
            }
        }
        m.finish()
    }
}

/// Multiplies two words to 128 bits and folds the halves together.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

const SEEDS: [u64; 8] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6c,
    0xc0ac_29b7_c97c_50dd,
    0x3f84_d5b5_b547_0917,
];

/// A fast, non-cryptographic hash of a few key words (a serial multiply-xor chain: best for
/// the one to four words a typical mask selects). Stable within a process.
#[inline]
pub fn hash_words(words: &[u64], basis: u64) -> u64 {
    let mut h = basis ^ 0x9e37_79b9_7f4a_7c15;
    for &w in words {
        h = (h ^ w).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    h ^ (h >> 29)
}

/// Hash of the packet words of a key, for the exact-match cache. The words are folded in
/// pairs through independent 64×64→128-bit multiplies, so the 13 words cost a few cycles
/// per pair instead of one long dependent chain.
#[inline(always)]
pub fn hash_packet(key: &FlowKey) -> u64 {
    let w = &key.w;
    let mut acc = 0x9e37_79b9_7f4a_7c15u64;
    acc = acc.wrapping_add(fold_mul(w[0] ^ SEEDS[0], w[1] ^ SEEDS[1]));
    acc = acc.wrapping_add(fold_mul(w[2] ^ SEEDS[2], w[3] ^ SEEDS[3]));
    acc = acc.wrapping_add(fold_mul(w[4] ^ SEEDS[4], w[5] ^ SEEDS[5]));
    acc = acc.wrapping_add(fold_mul(w[6] ^ SEEDS[6], w[7] ^ SEEDS[7]));
    acc = acc.wrapping_add(fold_mul(w[8] ^ SEEDS[1], w[9] ^ SEEDS[2]));
    acc = acc.wrapping_add(fold_mul(w[10] ^ SEEDS[3], w[11] ^ SEEDS[4]));
    acc = acc.wrapping_add(fold_mul(w[12] ^ SEEDS[5], SEEDS[6]));
    const _: () = assert!(PKT_WORDS == 13);
    fold_mul(acc ^ SEEDS[7], SEEDS[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap() {
        let mut seen = FlowKey::ZERO;
        for f in Field::ALL {
            let mut k = FlowKey::ZERO;
            k.set(f, f.full_mask());
            for i in 0..KEY_WORDS {
                assert_eq!(seen.w[i] & k.w[i], 0, "{f} overlaps another field");
            }
            seen.or_assign(&k);
            assert_eq!(k.get(f), f.full_mask(), "{f} round trip");
        }
    }

    #[test]
    fn overlays_share_bits_only_across_protocols() {
        for (f, types) in Field::OVERLAYS {
            let mut k = FlowKey::ZERO;
            k.set(f, f.full_mask());
            assert_eq!(k.get(f), f.full_mask(), "{f} round trip");
            for g in Field::ALL {
                let mut o = FlowKey::ZERO;
                o.set(g, g.full_mask());
                let shared = (0..KEY_WORDS).any(|i| k.w[i] & o.w[i] != 0);
                // What an overlay shares is another protocol's: IPv4/ARP addresses, the ARP
                // opcode and target hardware address.
                let other = matches!(
                    g,
                    Field::Ipv4Src
                        | Field::Ipv4Dst
                        | Field::ArpOp
                        | Field::ArpTha
                        | Field::CtIpv6Src
                        | Field::CtIpv6Dst
                );
                assert!(!shared || other, "{f} ({types:?}) overlaps {g}");
            }
        }
        // Each overlay applies to the packets of its protocols, every other field to all.
        for (f, types) in Field::OVERLAYS {
            for eth in [0x0800, 0x0806, 0x86dd, 0x8847, 0x8848, 0x8100] {
                assert_eq!(f.applies_to(eth), types.contains(&eth), "{f} {eth:#x}");
            }
        }
        assert!(Field::ALL.iter().all(|f| f.applies_to(0x0800)));
        // The ct tuple: an IPv4 address is the low bits of the IPv6 field, as the tracker
        // stores it.
        let mut k = FlowKey::ZERO;
        k.set(Field::CtIpv6Src, 0x0a00_0001);
        k.set(Field::CtIpv6Dst, 0x0a00_0002);
        assert_eq!(k.get(Field::CtNwSrc), 0x0a00_0001);
        assert_eq!(k.get(Field::CtNwDst), 0x0a00_0002);
        // The MPLS fields are one label stack entry, as on the wire.
        let mut k = FlowKey::ZERO;
        k.set(Field::MplsLabel, 0xabcde);
        k.set(Field::MplsTc, 5);
        k.set(Field::MplsBos, 1);
        k.set(Field::MplsTtl, 64);
        assert_eq!(k.get(Field::Ipv4Src), 0xabcd_eb40);
        // A neighbour discovery target leaves the IPv6 addresses and the option alone.
        let mut k = FlowKey::EXACT;
        k.set(Field::NdTarget, 0x2001_0db8 << 96 | 1);
        assert_eq!(k.get(Field::NdTarget), 0x2001_0db8 << 96 | 1);
        assert_eq!(k.get(Field::Ipv6Src), u128::MAX);
        assert_eq!(k.get(Field::ArpSha), 0xffff_ffff_ffff);
    }

    #[test]
    fn set_get_round_trip_keeps_neighbours() {
        let mut k = FlowKey::EXACT;
        k.set(Field::Ipv4Dst, 0x0a00_0001);
        assert_eq!(k.get(Field::Ipv4Dst), 0x0a00_0001);
        assert_eq!(k.get(Field::Ipv4Src), 0xffff_ffff);
        k.set(Field::Ipv6Src, 0x2001_0db8_0000_0000_0000_0000_0000_0001);
        assert_eq!(
            k.get(Field::Ipv6Src),
            0x2001_0db8_0000_0000_0000_0000_0000_0001
        );
        k.set(Field::Reg(5), 7);
        assert_eq!(k.get(Field::Reg(5)), 7);
        assert_eq!(k.get(Field::Reg(4)), 0xffff_ffff);
    }

    #[test]
    fn wide_registers_are_the_registers_they_are_made_of() {
        let mut k = FlowKey::ZERO;
        for n in 0..16u8 {
            k.set(Field::Reg(n), 0x1000_0000 + n as u128);
        }
        for n in 0..8u8 {
            let hi = 0x1000_0000 + 2 * n as u128;
            assert_eq!(k.get(Field::Xreg(n)), hi << 32 | (hi + 1), "xreg{n}");
        }
        for n in 0..4u8 {
            let r = |i: u8| 0x1000_0000u128 + (4 * n + i) as u128;
            let want = r(0) << 96 | r(1) << 64 | r(2) << 32 | r(3);
            assert_eq!(k.get(Field::Xxreg(n)), want, "xxreg{n}");
        }
        k.set(Field::Xxreg(3), 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(k.get(Field::Reg(12)), 0x0123_4567);
        assert_eq!(k.get(Field::Reg(15)), 0x7654_3210);
        assert_eq!(k.get(Field::Reg(11)), 0x1000_000b);
        assert_eq!(k.get(Field::PktMark), 0);
    }

    #[test]
    fn masked_match() {
        let mut a = FlowKey::ZERO;
        a.set(Field::Ipv4Dst, 0x0a00_0001);
        let mut b = a;
        b.set(Field::Ipv4Dst, 0x0a00_00ff);
        let mut m = FlowKey::ZERO;
        m.set(Field::Ipv4Dst, 0xffff_ff00);
        assert!(a.matches(&b, &m));
        m.set(Field::Ipv4Dst, 0xffff_ffff);
        assert!(!a.matches(&b, &m));
    }
}
