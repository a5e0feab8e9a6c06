//! Guest memory: the frontend's memory regions mapped into the switch.
//!
//! What: [`GuestMemory::map`] maps the regions of a `SET_MEM_TABLE` message (one shared file
//! each: memfd or hugetlbfs) through `vm-memory`'s `MmapRegion`, after checking that they are
//! well formed (sizes, no overflow, no overlap, files as large as the mappings they back).
//! Translations (guest physical address → our pointer, and the frontend's own virtual
//! address → our pointer, for ring addresses) check that the whole range lies inside one
//! region, so nothing a guest writes into a descriptor can make the switch touch memory
//! outside what the frontend shared.
//!
//! Thread-safety: immutable once built; shared by the poll threads through an `Arc` that
//! every ring holds, so a mapping lives as long as any ring that can still point into it.

// Raw pointers into shared mappings. Every unsafe block says why.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;

use arrayvec::ArrayVec;
use vhost::vhost_user::message::VhostUserMemoryRegion;
use vm_memory::{FileOffset, MmapRegion};

/// Most regions one table may have (the protocol's own limit for `SET_MEM_TABLE`).
pub const MAX_REGIONS: usize = 8;

/// Why a memory table was refused.
#[derive(Debug, thiserror::Error)]
pub enum MemError {
    /// More regions than the protocol allows.
    #[error("{0} memory regions (at most {MAX_REGIONS})")]
    TooManyRegions(usize),
    /// A region of size 0, or one whose end overflows.
    #[error("region {0}: bad size or address range")]
    BadRange(usize),
    /// Two regions cover the same guest addresses.
    #[error("regions {0} and {1} overlap")]
    Overlap(usize, usize),
    /// Fewer files than regions.
    #[error("region {0} has no file")]
    NoFile(usize),
    /// The file is smaller than the region it is said to back (touching the rest would
    /// raise SIGBUS).
    #[error("region {index}: file holds {file_bytes} bytes, the region needs {needed}")]
    FileTooSmall {
        /// The region.
        index: usize,
        /// The file's size.
        file_bytes: u64,
        /// Offset plus size of the region.
        needed: u64,
    },
    /// mmap or fstat failed.
    #[error("region {index}: {source}")]
    Map {
        /// The region.
        index: usize,
        /// What the kernel said.
        source: std::io::Error,
    },
}

/// One mapped region.
#[derive(Debug, Clone, Copy)]
struct Region {
    /// Guest physical address of its first byte.
    gpa: u64,
    /// Its size in bytes.
    size: u64,
    /// The frontend's virtual address of its first byte.
    uva: u64,
    /// Our address of its first byte.
    host: *mut u8,
}

/// The guest's memory as this process sees it.
#[derive(Debug)]
pub struct GuestMemory {
    regions: ArrayVec<Region, MAX_REGIONS>,
    /// The mappings the regions point into (unmapped on drop).
    _maps: Vec<MmapRegion>,
}

// SAFETY: the raw pointers point into the mappings in `_maps`, which this struct owns and
// which live (unmoved: an mmap does not move) as long as it does; nothing is mutated through
// `&GuestMemory` itself. What guest memory holds is read and written by the rings with
// volatile or atomic accesses, as memory shared with another process must be.
unsafe impl Send for GuestMemory {}
// SAFETY: as above; `GuestMemory` has no interior mutability.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Maps the regions of a memory table, one file each.
    pub fn map(
        regions: &[VhostUserMemoryRegion],
        files: Vec<File>,
    ) -> Result<GuestMemory, MemError> {
        if regions.len() > MAX_REGIONS {
            return Err(MemError::TooManyRegions(regions.len()));
        }
        for (i, r) in regions.iter().enumerate() {
            let (gpa, size, uva, off) =
                (r.guest_phys_addr, r.memory_size, r.user_addr, r.mmap_offset);
            if size == 0
                || gpa.checked_add(size).is_none()
                || uva.checked_add(size).is_none()
                || off.checked_add(size).is_none()
                || usize::try_from(off + size).is_err()
            {
                return Err(MemError::BadRange(i));
            }
            for (j, o) in regions[..i].iter().enumerate() {
                if gpa < o.guest_phys_addr + o.memory_size && o.guest_phys_addr < gpa + size {
                    return Err(MemError::Overlap(j, i));
                }
            }
        }
        let mut files = files.into_iter();
        let mut out = GuestMemory {
            regions: ArrayVec::new(),
            _maps: Vec::with_capacity(regions.len()),
        };
        for (index, r) in regions.iter().enumerate() {
            let file = files.next().ok_or(MemError::NoFile(index))?;
            let map_err = |source| MemError::Map { index, source };
            let meta = file.metadata().map_err(map_err)?;
            let needed = r.mmap_offset + r.memory_size;
            if meta.len() < needed {
                return Err(MemError::FileTooSmall {
                    index,
                    file_bytes: meta.len(),
                    needed,
                });
            }
            // Map from the start of the file, rounded up to the file system's block (a huge
            // page on hugetlbfs, where offsets and lengths must be multiples of it).
            let block = fs_block_size(&file).map_err(map_err)?;
            let len = needed.div_ceil(block) * block;
            let map = MmapRegion::from_file(FileOffset::new(file, 0), len as usize)
                .map_err(|e| map_err(std::io::Error::other(e)))?;
            out.regions.push(Region {
                gpa: r.guest_phys_addr,
                size: r.memory_size,
                uva: r.user_addr,
                // In bounds: `mmap_offset + memory_size <= len`.
                host: map.as_ptr().wrapping_add(r.mmap_offset as usize),
            });
            out._maps.push(map);
        }
        Ok(out)
    }

    /// Our pointer to `len` bytes of guest memory at guest physical address `gpa`, if the
    /// whole range lies in one region.
    #[inline]
    pub fn translate(&self, gpa: u64, len: u64) -> Option<*mut u8> {
        for r in &self.regions {
            let off = gpa.wrapping_sub(r.gpa);
            if off < r.size && len <= r.size - off {
                return Some(r.host.wrapping_add(off as usize));
            }
        }
        None
    }

    /// Our pointer to the start of `len` bytes at `gpa` and how many of them are contiguous
    /// here (the rest, if any, lies in another region): for buffers that straddle regions.
    #[inline]
    pub fn chunk(&self, gpa: u64, len: u64) -> Option<(*mut u8, u64)> {
        for r in &self.regions {
            let off = gpa.wrapping_sub(r.gpa);
            if off < r.size {
                return Some((r.host.wrapping_add(off as usize), len.min(r.size - off)));
            }
        }
        None
    }

    /// Our pointer to `len` bytes at the frontend's virtual address `uva` (how ring
    /// addresses are given), if the whole range lies in one region.
    pub fn translate_uva(&self, uva: u64, len: u64) -> Option<*mut u8> {
        for r in &self.regions {
            let off = uva.wrapping_sub(r.uva);
            if off < r.size && len <= r.size - off {
                return Some(r.host.wrapping_add(off as usize));
            }
        }
        None
    }

    /// Number of regions.
    pub fn len(&self) -> usize {
        self.regions.len()
    }

    /// True when there is no region.
    pub fn is_empty(&self) -> bool {
        self.regions.is_empty()
    }
}

/// The block size of the file system holding `file` (the huge page size on hugetlbfs).
fn fs_block_size(file: &File) -> std::io::Result<u64> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: fstatfs writes one statfs into the live, writable buffer; the descriptor is
    // owned by `file` and open for the call.
    let rc = unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstatfs succeeded, so it initialised the struct.
    let bsize = unsafe { st.assume_init() }.f_bsize;
    Ok(u64::try_from(bsize).unwrap_or(4096).clamp(4096, 1 << 30))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A memfd of `size` bytes.
    pub(crate) fn memfd(size: u64) -> File {
        let name = c"vhost-test";
        // SAFETY: a valid NUL-terminated name; the result is checked.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: a fresh descriptor we own.
        let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        f.set_len(size).unwrap();
        f
    }

    fn region(gpa: u64, size: u64, uva: u64, off: u64) -> VhostUserMemoryRegion {
        VhostUserMemoryRegion::new(gpa, size, uva, off)
    }

    #[test]
    fn translates_inside_regions_only() {
        let m = GuestMemory::map(
            &[
                region(0x1000, 0x2000, 0x7000_0000, 0),
                region(0x10_0000, 0x1000, 0x8000_0000, 0x2000),
            ],
            vec![memfd(0x2000), memfd(0x3000)],
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.translate(0x1000, 0x2000).is_some());
        assert!(m.translate(0x1000, 0x2001).is_none());
        assert!(m.translate(0xfff, 1).is_none());
        assert!(m.translate(0x3000, 1).is_none());
        assert!(m.translate(u64::MAX, 2).is_none());
        assert!(m.translate(0x10_0fff, 1).is_some());
        assert_eq!(m.chunk(0x2ff0, 0x100).unwrap().1, 0x10);
        assert!(m.translate_uva(0x8000_0000, 0x1000).is_some());
        assert!(m.translate_uva(0x8000_0001, 0x1000).is_none());
        // The second region starts 0x2000 into its file.
        let a = m.translate(0x10_0000, 1).unwrap();
        // SAFETY: in bounds of the mapping, which `m` keeps.
        unsafe { a.write(0x5a) };
    }

    #[test]
    fn refuses_bad_tables() {
        assert!(matches!(
            GuestMemory::map(&[region(0, 0, 0, 0)], vec![memfd(4096)]),
            Err(MemError::BadRange(0))
        ));
        assert!(matches!(
            GuestMemory::map(&[region(u64::MAX - 10, 4096, 0, 0)], vec![memfd(4096)]),
            Err(MemError::BadRange(0))
        ));
        assert!(matches!(
            GuestMemory::map(
                &[region(0, 8192, 0, 0), region(4096, 4096, 1 << 20, 0)],
                vec![memfd(8192), memfd(4096)]
            ),
            Err(MemError::Overlap(0, 1))
        ));
        assert!(matches!(
            GuestMemory::map(&[region(0, 8192, 0, 0)], vec![memfd(4096)]),
            Err(MemError::FileTooSmall { .. })
        ));
        assert!(matches!(
            GuestMemory::map(&[region(0, 4096, 0, 0)], vec![]),
            Err(MemError::NoFile(0))
        ));
    }
}
