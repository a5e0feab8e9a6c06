//! OpenFlow errors: the (type, code) pairs a switch sends in OFPT_ERROR, and the message.
//!
//! [`OfpError`] is both the codec's parse error and what the channel puts on the wire: a
//! parser that rejects input returns the error Open vSwitch would send for it, so the channel
//! answers with `error_msg::ErrorMsg::reply(err, request)` and nothing else to decide. Codes are
//! constants grouped by type (`bad_match::BAD_LEN`); names print as OVS spells them
//! (`OFPBMC_BAD_LEN`). Errors that OpenFlow 1.3 has no number for (bundles, async config,
//! properties) are ONF experimenter errors there: [`OfpError::for_version`] converts.

use super::version::Version;

/// Experimenter id of Nicira (Open vSwitch extensions).
pub const NX_VENDOR_ID: u32 = 0x0000_2320;
/// Experimenter id of the Open Networking Foundation (EXT-xxx extensions).
pub const ONF_VENDOR_ID: u32 = 0x4f4e_4600;
/// Error type number of experimenter errors.
pub const EXPERIMENTER_TYPE: u16 = 0xffff;

/// One OpenFlow error: `kind` and `code`, or for `kind == 0xffff` an experimenter's code.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct OfpError {
    /// OFPET_* type (0xffff: experimenter).
    pub kind: u16,
    /// OFP*C_* code within the type, or the experimenter's exp_code.
    pub code: u16,
    /// Experimenter id when `kind == 0xffff`, else 0.
    pub experimenter: u32,
}

impl OfpError {
    /// A standard error.
    pub const fn new(kind: u16, code: u16) -> Self {
        OfpError {
            kind,
            code,
            experimenter: 0,
        }
    }

    /// An experimenter error.
    pub const fn experimenter(experimenter: u32, code: u16) -> Self {
        OfpError {
            kind: EXPERIMENTER_TYPE,
            code,
            experimenter,
        }
    }

    /// The form of this error a peer speaking `version` understands: OpenFlow 1.4 numbers
    /// with no 1.3 equivalent become the ONF experimenter codes Open vSwitch sends in 1.3.
    pub fn for_version(self, version: Version) -> Self {
        if version >= Version::V1_4 {
            return self;
        }
        let onf = |base: u16| OfpError::experimenter(ONF_VENDOR_ID, base + self.code);
        match self.kind {
            bad_property::TYPE => onf(4440),
            async_config_failed::TYPE => onf(2370),
            bundle_failed::TYPE => onf(2300),
            _ => self,
        }
    }

    /// The OVS-style name (`OFPBRC_BAD_LEN`), if the code is known.
    pub fn name(&self) -> Option<&'static str> {
        lookup_name(self.kind, self.code, self.experimenter)
    }
}

impl std::fmt::Display for OfpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.name(), self.kind) {
            (Some(n), _) => f.write_str(n),
            (None, EXPERIMENTER_TYPE) => {
                write!(
                    f,
                    "experimenter {:#x} error {}",
                    self.experimenter, self.code
                )
            }
            (None, _) => write!(f, "error type {} code {}", self.kind, self.code),
        }
    }
}

impl std::error::Error for OfpError {}

macro_rules! codes {
    ($( $(#[$m:meta])* mod $module:ident = $kind:expr, $prefix:literal {
        $( $(#[$cm:meta])* $name:ident = $code:expr, )*
    } )*) => {
        $(
            $(#[$m])*
            pub mod $module {
                use super::OfpError;
                /// The error type number.
                pub const TYPE: u16 = $kind;
                $( $(#[$cm])* pub const $name: OfpError = OfpError::new($kind, $code); )*
                pub(super) const NAMES: &[(u16, &str)] =
                    &[ $( ($code, concat!($prefix, stringify!($name))), )* ];
            }
        )*
        fn standard_name(kind: u16, code: u16) -> Option<&'static str> {
            let names = match kind {
                $( $kind => $module::NAMES, )*
                _ => return None,
            };
            names.iter().find(|n| n.0 == code).map(|n| n.1)
        }
    };
}

codes! {
    /// OFPET_HELLO_FAILED.
    mod hello_failed = 0, "OFPHFC_" {
        /// No compatible version.
        INCOMPATIBLE = 0,
        /// Permissions error.
        EPERM = 1,
    }
    /// OFPET_BAD_REQUEST.
    mod bad_request = 1, "OFPBRC_" {
        /// Header version not supported.
        BAD_VERSION = 0,
        /// Message type not supported.
        BAD_TYPE = 1,
        /// Multipart type not supported.
        BAD_MULTIPART = 2,
        /// Experimenter id not supported.
        BAD_EXPERIMENTER = 3,
        /// Experimenter type not supported.
        BAD_EXP_TYPE = 4,
        /// Permissions error.
        EPERM = 5,
        /// Wrong request length for type.
        BAD_LEN = 6,
        /// Buffer already used.
        BUFFER_EMPTY = 7,
        /// Buffer does not exist.
        BUFFER_UNKNOWN = 8,
        /// Table id invalid or missing.
        BAD_TABLE_ID = 9,
        /// Denied because this controller is a slave.
        IS_SLAVE = 10,
        /// Invalid port.
        BAD_PORT = 11,
        /// Invalid packet in packet-out.
        BAD_PACKET = 12,
        /// Multipart request overflowed the assigned buffer.
        MULTIPART_BUFFER_OVERFLOW = 13,
    }
    /// OFPET_BAD_ACTION.
    mod bad_action = 2, "OFPBAC_" {
        /// Unknown or unsupported action type.
        BAD_TYPE = 0,
        /// Length problem in actions.
        BAD_LEN = 1,
        /// Unknown experimenter id.
        BAD_EXPERIMENTER = 2,
        /// Unknown action for experimenter id.
        BAD_EXP_TYPE = 3,
        /// Problem validating output port.
        BAD_OUT_PORT = 4,
        /// Bad action argument.
        BAD_ARGUMENT = 5,
        /// Permissions error.
        EPERM = 6,
        /// Can't handle this many actions.
        TOO_MANY = 7,
        /// Problem validating output queue.
        BAD_QUEUE = 8,
        /// Invalid group id in output action.
        BAD_OUT_GROUP = 9,
        /// Action can't apply for this match or set-field is missing its prerequisite.
        MATCH_INCONSISTENT = 10,
        /// Action order is unsupported.
        UNSUPPORTED_ORDER = 11,
        /// Unsupported tag or encapsulation.
        BAD_TAG = 12,
        /// Unsupported type in a set-field action.
        BAD_SET_TYPE = 13,
        /// Length problem in a set-field action.
        BAD_SET_LEN = 14,
        /// Bad argument in a set-field action.
        BAD_SET_ARGUMENT = 15,
    }
    /// OFPET_BAD_INSTRUCTION.
    mod bad_instruction = 3, "OFPBIC_" {
        /// Unknown instruction.
        UNKNOWN_INST = 0,
        /// Switch or table does not support the instruction.
        UNSUP_INST = 1,
        /// Invalid table id.
        BAD_TABLE_ID = 2,
        /// Metadata value unsupported.
        UNSUP_METADATA = 3,
        /// Metadata mask unsupported.
        UNSUP_METADATA_MASK = 4,
        /// Unknown experimenter id.
        BAD_EXPERIMENTER = 5,
        /// Unknown instruction for experimenter id.
        BAD_EXP_TYPE = 6,
        /// Length problem in instructions.
        BAD_LEN = 7,
        /// Permissions error.
        EPERM = 8,
    }
    /// OFPET_BAD_MATCH.
    mod bad_match = 4, "OFPBMC_" {
        /// Unsupported match type.
        BAD_TYPE = 0,
        /// Length problem in match.
        BAD_LEN = 1,
        /// Unsupported tag or encapsulation.
        BAD_TAG = 2,
        /// Unsupported datalink address mask.
        BAD_DL_ADDR_MASK = 3,
        /// Unsupported network address mask.
        BAD_NW_ADDR_MASK = 4,
        /// Value has 1-bits the mask wildcards.
        BAD_WILDCARDS = 5,
        /// Unsupported field.
        BAD_FIELD = 6,
        /// Unsupported value in a match field.
        BAD_VALUE = 7,
        /// Unsupported mask (or a mask on a field that takes none).
        BAD_MASK = 8,
        /// A prerequisite was not met.
        BAD_PREREQ = 9,
        /// A field appears twice.
        DUP_FIELD = 10,
        /// Permissions error.
        EPERM = 11,
    }
    /// OFPET_FLOW_MOD_FAILED.
    mod flow_mod_failed = 5, "OFPFMFC_" {
        /// Unspecified error.
        UNKNOWN = 0,
        /// Table full.
        TABLE_FULL = 1,
        /// Table does not exist.
        BAD_TABLE_ID = 2,
        /// Overlapping flow with CHECK_OVERLAP.
        OVERLAP = 3,
        /// Permissions error.
        EPERM = 4,
        /// Unsupported idle or hard timeout.
        BAD_TIMEOUT = 5,
        /// Unsupported or unknown command.
        BAD_COMMAND = 6,
        /// Unsupported or unknown flags.
        BAD_FLAGS = 7,
    }
    /// OFPET_GROUP_MOD_FAILED.
    mod group_mod_failed = 6, "OFPGMFC_" {
        /// Group already exists.
        GROUP_EXISTS = 0,
        /// Group id invalid.
        INVALID_GROUP = 1,
        /// Unequal load sharing unsupported.
        WEIGHT_UNSUPPORTED = 2,
        /// Group table full.
        OUT_OF_GROUPS = 3,
        /// Too many buckets.
        OUT_OF_BUCKETS = 4,
        /// Groups forwarding to groups unsupported.
        CHAINING_UNSUPPORTED = 5,
        /// Watch port or group unsupported.
        WATCH_UNSUPPORTED = 6,
        /// The group would loop.
        LOOP = 7,
        /// Modified group does not exist.
        UNKNOWN_GROUP = 8,
        /// Group is referenced by another group.
        CHAINED_GROUP = 9,
        /// Unsupported or unknown group type.
        BAD_TYPE = 10,
        /// Unsupported or unknown command.
        BAD_COMMAND = 11,
        /// Error in bucket.
        BAD_BUCKET = 12,
        /// Error in watch port or group.
        BAD_WATCH = 13,
        /// Permissions error.
        EPERM = 14,
    }
    /// OFPET_PORT_MOD_FAILED.
    mod port_mod_failed = 7, "OFPPMFC_" {
        /// No such port.
        BAD_PORT = 0,
        /// Hardware address does not match.
        BAD_HW_ADDR = 1,
        /// Invalid config.
        BAD_CONFIG = 2,
        /// Invalid advertise.
        BAD_ADVERTISE = 3,
        /// Permissions error.
        EPERM = 4,
    }
    /// OFPET_TABLE_MOD_FAILED.
    mod table_mod_failed = 8, "OFPTMFC_" {
        /// No such table.
        BAD_TABLE = 0,
        /// Invalid config.
        BAD_CONFIG = 1,
        /// Permissions error.
        EPERM = 2,
    }
    /// OFPET_QUEUE_OP_FAILED.
    mod queue_op_failed = 9, "OFPQOFC_" {
        /// Invalid port.
        BAD_PORT = 0,
        /// Queue does not exist.
        BAD_QUEUE = 1,
        /// Permissions error.
        EPERM = 2,
    }
    /// OFPET_SWITCH_CONFIG_FAILED.
    mod switch_config_failed = 10, "OFPSCFC_" {
        /// Invalid flags.
        BAD_FLAGS = 0,
        /// Invalid miss_send_len.
        BAD_LEN = 1,
        /// Permissions error.
        EPERM = 2,
    }
    /// OFPET_ROLE_REQUEST_FAILED.
    mod role_request_failed = 11, "OFPRRFC_" {
        /// Stale generation id.
        STALE = 0,
        /// Role change unsupported.
        UNSUP = 1,
        /// Invalid role.
        BAD_ROLE = 2,
    }
    /// OFPET_METER_MOD_FAILED.
    mod meter_mod_failed = 12, "OFPMMFC_" {
        /// Unspecified error.
        UNKNOWN = 0,
        /// Meter already exists.
        METER_EXISTS = 1,
        /// Meter id invalid.
        INVALID_METER = 2,
        /// Modified meter does not exist.
        UNKNOWN_METER = 3,
        /// Unsupported or unknown command.
        BAD_COMMAND = 4,
        /// Flag configuration unsupported.
        BAD_FLAGS = 5,
        /// Rate unsupported.
        BAD_RATE = 6,
        /// Burst size unsupported.
        BAD_BURST = 7,
        /// Band unsupported.
        BAD_BAND = 8,
        /// Band value unsupported.
        BAD_BAND_VALUE = 9,
        /// No more meters.
        OUT_OF_METERS = 10,
        /// Too many bands.
        OUT_OF_BANDS = 11,
    }
    /// OFPET_TABLE_FEATURES_FAILED.
    mod table_features_failed = 13, "OFPTFFC_" {
        /// Specified table does not exist.
        BAD_TABLE = 0,
        /// Invalid metadata mask.
        BAD_METADATA = 1,
        /// Unknown property type.
        BAD_TYPE = 2,
        /// Length problem in properties.
        BAD_LEN = 3,
        /// Unsupported property value.
        BAD_ARGUMENT = 4,
        /// Permissions error.
        EPERM = 5,
    }
    /// OFPET_BAD_PROPERTY (OpenFlow 1.4; ONF experimenter codes in 1.3).
    mod bad_property = 14, "OFPBPC_" {
        /// Unknown property type.
        BAD_TYPE = 0,
        /// Length problem in property.
        BAD_LEN = 1,
        /// Unsupported property value.
        BAD_VALUE = 2,
        /// Too many properties.
        TOO_MANY = 3,
        /// Property type duplicated.
        DUP_TYPE = 4,
        /// Unknown experimenter id.
        BAD_EXPERIMENTER = 5,
        /// Unknown experimenter type.
        BAD_EXP_TYPE = 6,
        /// Unknown experimenter value.
        BAD_EXP_VALUE = 7,
        /// Permissions error.
        EPERM = 8,
    }
    /// OFPET_ASYNC_CONFIG_FAILED (OpenFlow 1.4; ONF experimenter codes in 1.3).
    mod async_config_failed = 15, "OFPACFC_" {
        /// A mask is invalid.
        INVALID = 0,
        /// Configuration unsupported.
        UNSUPPORTED = 1,
        /// Permissions error.
        EPERM = 2,
    }
    /// OFPET_BUNDLE_FAILED (OpenFlow 1.4; ONF EXT-230 experimenter codes in 1.3).
    mod bundle_failed = 17, "OFPBFC_" {
        /// Unspecified error.
        UNKNOWN = 0,
        /// Permissions error.
        EPERM = 1,
        /// Bundle id does not exist.
        BAD_ID = 2,
        /// Bundle id already exists.
        BUNDLE_EXIST = 3,
        /// Bundle id is closed.
        BUNDLE_CLOSED = 4,
        /// Too many bundles.
        OUT_OF_BUNDLES = 5,
        /// Unsupported or unknown control type.
        BAD_TYPE = 6,
        /// Unsupported, unknown or inconsistent flags.
        BAD_FLAGS = 7,
        /// Length problem in the included message.
        MSG_BAD_LEN = 8,
        /// Inconsistent or duplicate xid.
        MSG_BAD_XID = 9,
        /// Message unsupported in a bundle.
        MSG_UNSUP = 10,
        /// Unsupported message combination.
        MSG_CONFLICT = 11,
        /// Too many messages.
        MSG_TOO_MANY = 12,
        /// One message in the bundle failed.
        MSG_FAILED = 13,
        /// Bundle took too long.
        TIMEOUT = 14,
        /// Bundle is locking the resource.
        BUNDLE_IN_PROGRESS = 15,
    }
}

/// Nicira (Open vSwitch) experimenter errors that OVS sends in OpenFlow 1.2 and later.
pub mod nicira {
    use super::{NX_VENDOR_ID, OfpError};
    /// NXBRC_NXM_INVALID: invalid NXM flow match.
    pub const NXM_INVALID: OfpError = OfpError::experimenter(NX_VENDOR_ID, 2);
    /// NXBRC_NXM_BAD_TYPE: unknown NXM type.
    pub const NXM_BAD_TYPE: OfpError = OfpError::experimenter(NX_VENDOR_ID, 3);
    /// NXBRC_MUST_BE_ZERO: a must-be-zero field had a nonzero value.
    pub const MUST_BE_ZERO: OfpError = OfpError::experimenter(NX_VENDOR_ID, 4);
    /// NXBAC_MUST_BE_ZERO: a must-be-zero action argument had a nonzero value.
    pub const ACTION_MUST_BE_ZERO: OfpError = OfpError::experimenter(NX_VENDOR_ID, 11);
    /// NXBAC_BAD_CONJUNCTION: conjunction must be the only action.
    pub const BAD_CONJUNCTION: OfpError = OfpError::experimenter(NX_VENDOR_ID, 15);
    pub(super) const NAMES: &[(u16, &str)] = &[
        (2, "NXBRC_NXM_INVALID"),
        (3, "NXBRC_NXM_BAD_TYPE"),
        (4, "NXBRC_MUST_BE_ZERO"),
        (11, "NXBAC_MUST_BE_ZERO"),
        (15, "NXBAC_BAD_CONJUNCTION"),
    ];
}

/// ONF experimenter errors Open vSwitch sends in OpenFlow 1.3 for conditions that got a
/// standard number only in later versions (and have no type of their own in 1.4 here).
pub mod onf {
    use super::{ONF_VENDOR_ID, OfpError};
    /// OFPBIC_DUP_INST: an instruction appears twice (ONF 2600 in 1.2-1.3).
    pub const DUP_INST: OfpError = OfpError::experimenter(ONF_VENDOR_ID, 2600);
    /// OFPBAC_BAD_SET_MASK: a set-field with a mask (ONF 4250 in 1.3-1.4).
    pub const BAD_SET_MASK: OfpError = OfpError::experimenter(ONF_VENDOR_ID, 4250);
    pub(super) const NAMES: &[(u16, &str)] =
        &[(2600, "OFPBIC_DUP_INST"), (4250, "OFPBAC_BAD_SET_MASK")];
}

fn lookup_name(kind: u16, code: u16, experimenter: u32) -> Option<&'static str> {
    if kind != EXPERIMENTER_TYPE {
        return standard_name(kind, code);
    }
    match experimenter {
        NX_VENDOR_ID => nicira::NAMES.iter().find(|n| n.0 == code).map(|n| n.1),
        ONF_VENDOR_ID => match code {
            2300..=2315 => standard_name(bundle_failed::TYPE, code - 2300),
            2370..=2372 => standard_name(async_config_failed::TYPE, code - 2370),
            4440..=4448 => standard_name(bad_property::TYPE, code - 4440),
            _ => onf::NAMES.iter().find(|n| n.0 == code).map(|n| n.1),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_print_as_ovs_spells_them() {
        assert_eq!(bad_match::BAD_LEN.to_string(), "OFPBMC_BAD_LEN");
        assert_eq!(bad_request::BAD_TYPE.name(), Some("OFPBRC_BAD_TYPE"));
        assert_eq!(nicira::MUST_BE_ZERO.to_string(), "NXBRC_MUST_BE_ZERO");
        assert_eq!(OfpError::new(99, 1).to_string(), "error type 99 code 1");
    }

    #[test]
    fn bundle_errors_become_onf_experimenter_errors_in_1_3() {
        let e = bundle_failed::BAD_ID.for_version(Version::V1_3);
        assert_eq!(e, OfpError::experimenter(ONF_VENDOR_ID, 2302));
        assert_eq!(e.to_string(), "OFPBFC_BAD_ID");
        assert_eq!(
            bundle_failed::BAD_ID.for_version(Version::V1_4),
            bundle_failed::BAD_ID
        );
        assert_eq!(
            bad_match::BAD_LEN.for_version(Version::V1_3),
            bad_match::BAD_LEN
        );
    }
}
