//! Stripping user programs before they go into the RAMFS.
//!
//! The release profile keeps debug info (for gdb and symbolized fault
//! reports), which makes a program's file many times larger than what it
//! loads. The loaders read only the ELF header, the program headers and the
//! bytes the PT_LOAD segments name; the linker puts the non-allocated
//! sections (debug info, symbol and string tables) after all of them. So a
//! stripped program is the file cut after the last byte any program header
//! names, with the section header table dropped (`e_shoff`, `e_shnum`,
//! `e_shstrndx` zeroed). No byte the loaders read moves or changes: the code
//! that runs is exactly the code that was linked, and the unstripped file
//! (kept beside the image) describes it.

use std::path::Path;

use elf::endian::LittleEndian;
use elf::ElfBytes;

use crate::ImageError;

/// ELF64 header fields this rewrite touches (offsets in the file header).
const E_SHOFF: usize = 0x28;
const E_SHNUM: usize = 0x3c;
const E_SHSTRNDX: usize = 0x3e;
const EHDR_SIZE: u64 = 64;

/// `bytes` (a little-endian ELF64 file) without anything after the last
/// byte a program header names, and without section headers.
pub fn strip_program(name: &str, bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    let bad = |why: String| ImageError(format!("{name}: cannot strip: {why}"));
    let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).map_err(|e| bad(format!("not ELF: {e}")))?;
    if bytes.get(4) != Some(&elf::abi::ELFCLASS64) {
        return Err(bad("not ELF64".into()));
    }
    let segs = file.segments().ok_or_else(|| bad("no program headers".into()))?;
    let table_end = file.ehdr.e_phoff + u64::from(file.ehdr.e_phnum) * u64::from(file.ehdr.e_phentsize);
    let mut end = EHDR_SIZE.max(table_end);
    for ph in segs.iter() {
        let seg_end = ph.p_offset.checked_add(ph.p_filesz).ok_or_else(|| bad("segment past 2^64".into()))?;
        end = end.max(seg_end);
    }
    if end > bytes.len() as u64 {
        return Err(bad(format!("a segment ends at {end:#x}, past the end of the file ({:#x})", bytes.len())));
    }
    let mut out = bytes[..end as usize].to_vec();
    out[E_SHOFF..E_SHOFF + 8].fill(0);
    out[E_SHNUM..E_SHNUM + 2].fill(0);
    out[E_SHSTRNDX..E_SHSTRNDX + 2].fill(0);
    Ok(out)
}

/// Where the RAMFS keeps files made for the in-guest tests.
pub const TEST_FIXTURES: &str = "test/";

/// Check a built image folder: every program in its RAMFS (an executable
/// file) is exactly the stripped form of the unstripped copy kept in
/// `debug/`, and that copy is larger; only test fixtures under
/// [`TEST_FIXTURES`] that the builder made itself have no such copy. Returns the programs' (name, packed
/// size, unstripped size). The ci runner runs this after each image build.
pub fn check_packed(image_dir: &Path) -> Result<Vec<(String, usize, usize)>, ImageError> {
    let io = |what: &Path, e: std::io::Error| ImageError(format!("{}: {e}", what.display()));
    let ramfs_path = image_dir.join("ramfs.img");
    let ramfs = std::fs::read(&ramfs_path).map_err(|e| io(&ramfs_path, e))?;
    let archive = cpio::Archive::new(&ramfs).map_err(|e| ImageError(format!("{}: {e:?}", ramfs_path.display())))?;
    let debug = crate::debug_dir(image_dir);
    let mut programs = Vec::new();
    for entry in archive.entries().filter(|e| e.is_file() && e.mode & 0o111 != 0) {
        let path = debug.join(entry.name);
        // Test fixtures (`test/…`, e.g. the hand-made stack-clash ELF) are
        // made by the builder itself, with no debug info to strip.
        if entry.name.starts_with(TEST_FIXTURES) && !path.exists() {
            continue;
        }
        let full = std::fs::read(&path).map_err(|e| io(&path, e))?;
        if strip_program(entry.name, &full)? != entry.data || entry.data.len() >= full.len() {
            return Err(ImageError(format!("{} in the RAMFS is not {} stripped", entry.name, path.display())));
        }
        programs.push((entry.name.to_string(), entry.data.len(), full.len()));
    }
    if programs.is_empty() {
        return Err(ImageError(format!("{} holds no programs", ramfs_path.display())));
    }
    Ok(programs)
}
