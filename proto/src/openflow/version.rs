//! The OpenFlow wire version (ofp_header.version), on its own so that the error codes
//! (which convert between versions) and the header (which carries it) both build on it.

/// An OpenFlow wire version (ofp_header.version).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u8);

impl Version {
    /// OpenFlow 1.0.
    pub const V1_0: Version = Version(0x01);
    /// OpenFlow 1.1.
    pub const V1_1: Version = Version(0x02);
    /// OpenFlow 1.2.
    pub const V1_2: Version = Version(0x03);
    /// OpenFlow 1.3, what this codec implements completely.
    pub const V1_3: Version = Version(0x04);
    /// OpenFlow 1.4.
    pub const V1_4: Version = Version(0x05);
    /// OpenFlow 1.5.
    pub const V1_5: Version = Version(0x06);
}
