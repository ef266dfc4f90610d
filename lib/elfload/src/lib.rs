//! Checking an ELF executable before anything of it is mapped.
//!
//! The kernel (for `system`) and user-space spawners (for everyone else) load
//! programs the same way: parse, validate every segment against the rules
//! below, then copy each segment into fresh pages. Putting the rules in one
//! crate means both loaders enforce the same policy and it is tested on the
//! host:
//! - 64-bit little-endian x86-64, `ET_EXEC` (no relocation, no interpreter);
//! - every `PT_LOAD` lies inside the allowed address range, its file bytes
//!   inside the file, `filesz <= memsz`;
//! - no segment is both writable and executable (W^X), and no two segments
//!   share a page (so each page gets exactly one permission);
//! - the entry point lies in an executable segment.

#![no_std]

use core::ops::Range;

use elf::abi::{EM_X86_64, ET_EXEC, PF_W, PF_X, PT_DYNAMIC, PT_INTERP, PT_LOAD};
use elf::endian::LittleEndian;
use elf::file::Class;
use elf::ElfBytes;

const PAGE: u64 = 4096;
/// More segments than this is not a program we built.
pub const MAX_SEGMENTS: usize = 16;

/// Why an executable was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// Not a parseable ELF file.
    Malformed,
    /// Not 64-bit x86-64.
    WrongMachine,
    /// Not a static executable (`ET_EXEC` without interpreter or dynamic section).
    NotStatic,
    /// A segment's file bytes lie outside the file, or `filesz > memsz`.
    BadSegment,
    /// A segment lies outside the allowed address range.
    OutOfRange,
    /// A segment is writable and executable.
    WriteExecute,
    /// Two segments share a page.
    Overlap,
    /// The entry point is not in an executable segment.
    BadEntry,
    /// No loadable segments, or more than [`MAX_SEGMENTS`].
    SegmentCount,
}

/// Page permissions of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perms {
    pub write: bool,
    pub exec: bool,
}

/// One loadable segment, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Where the segment's first byte goes.
    pub vaddr: u64,
    /// Bytes in memory; those past the file bytes are zero.
    pub memsz: u64,
    /// The segment's bytes in the file.
    pub file: Range<usize>,
    pub perms: Perms,
}

impl Segment {
    /// The page-aligned address range the segment occupies.
    pub fn pages(&self) -> Range<u64> {
        self.vaddr & !(PAGE - 1)..(self.vaddr + self.memsz + PAGE - 1) & !(PAGE - 1)
    }
}

/// A validated executable.
#[derive(Clone, Debug)]
pub struct Image {
    pub entry: u64,
    segments: [Option<Segment>; MAX_SEGMENTS],
    count: usize,
}

impl Image {
    /// Validate `bytes` as a program whose segments must lie in `allowed`.
    pub fn parse(bytes: &[u8], allowed: Range<u64>) -> Result<Image, LoadError> {
        let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).map_err(|_| LoadError::Malformed)?;
        let ehdr = file.ehdr;
        if ehdr.class != Class::ELF64 || ehdr.e_machine != EM_X86_64 {
            return Err(LoadError::WrongMachine);
        }
        if ehdr.e_type != ET_EXEC {
            return Err(LoadError::NotStatic);
        }
        let table = file.segments().ok_or(LoadError::SegmentCount)?;
        let mut image = Image { entry: ehdr.e_entry, segments: Default::default(), count: 0 };
        for ph in table.iter() {
            match ph.p_type {
                PT_INTERP | PT_DYNAMIC => return Err(LoadError::NotStatic),
                PT_LOAD if ph.p_memsz > 0 => image.push(check_segment(&ph, bytes.len(), &allowed)?)?,
                _ => {}
            }
        }
        if image.count == 0 {
            return Err(LoadError::SegmentCount);
        }
        image.check_overlap()?;
        if !image
            .segments()
            .any(|s| s.perms.exec && (s.vaddr..s.vaddr + s.memsz).contains(&image.entry))
        {
            return Err(LoadError::BadEntry);
        }
        Ok(image)
    }

    /// The loadable segments, in file order.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments[..self.count].iter().flatten()
    }

    fn push(&mut self, s: Segment) -> Result<(), LoadError> {
        if self.count == MAX_SEGMENTS {
            return Err(LoadError::SegmentCount);
        }
        self.segments[self.count] = Some(s);
        self.count += 1;
        Ok(())
    }

    fn check_overlap(&self) -> Result<(), LoadError> {
        for (i, a) in self.segments().enumerate() {
            for b in self.segments().skip(i + 1) {
                let (pa, pb) = (a.pages(), b.pages());
                if pa.start < pb.end && pb.start < pa.end {
                    return Err(LoadError::Overlap);
                }
            }
        }
        Ok(())
    }
}

fn check_segment(
    ph: &elf::segment::ProgramHeader,
    file_len: usize,
    allowed: &Range<u64>,
) -> Result<Segment, LoadError> {
    if ph.p_filesz > ph.p_memsz {
        return Err(LoadError::BadSegment);
    }
    let file_end = ph.p_offset.checked_add(ph.p_filesz).ok_or(LoadError::BadSegment)?;
    if file_end > file_len as u64 {
        return Err(LoadError::BadSegment);
    }
    let end = ph.p_vaddr.checked_add(ph.p_memsz).ok_or(LoadError::OutOfRange)?;
    let page_end = end.checked_add(PAGE - 1).ok_or(LoadError::OutOfRange)? & !(PAGE - 1);
    if ph.p_vaddr < allowed.start || page_end > allowed.end {
        return Err(LoadError::OutOfRange);
    }
    let write = ph.p_flags & PF_W != 0;
    let exec = ph.p_flags & PF_X != 0;
    if write && exec {
        return Err(LoadError::WriteExecute);
    }
    Ok(Segment {
        vaddr: ph.p_vaddr,
        memsz: ph.p_memsz,
        file: ph.p_offset as usize..file_end as usize,
        perms: Perms { write, exec },
    })
}

/// Size of [`tiny_executable`]'s output.
pub const TINY_SIZE: usize = 128;

/// The smallest executable the rules accept: one segment of `flags`
/// (`PF_*`) holding the whole file at `vaddr`, entry just past the headers,
/// the rest `int3`. For tests and fixtures (the image builder packs one
/// whose segment lies where a program's stack goes).
pub fn tiny_executable(vaddr: u64, flags: u32) -> [u8; TINY_SIZE] {
    let mut v = [0xccu8; TINY_SIZE];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        v[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put(&ET_EXEC.to_le_bytes());
    put(&EM_X86_64.to_le_bytes());
    put(&1u32.to_le_bytes());
    put(&(vaddr + 120).to_le_bytes()); // entry
    put(&64u64.to_le_bytes()); // program headers
    put(&0u64.to_le_bytes()); // no section headers
    put(&0u32.to_le_bytes());
    for h in [64u16, 56, 1, 64, 0, 0] {
        put(&h.to_le_bytes());
    }
    put(&PT_LOAD.to_le_bytes());
    put(&flags.to_le_bytes());
    for x in [0, vaddr, vaddr, TINY_SIZE as u64, TINY_SIZE as u64, PAGE] {
        put(&x.to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests;
