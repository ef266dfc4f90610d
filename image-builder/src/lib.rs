//! Building the boot image: compile, check, pack.
//!
//! The kernel must be a multiboot kernel QEMU's `-kernel` and iPXE can
//! load: a multiboot header with the address fields in the first 8 KiB (and
//! for GRUB a multiboot-2 header with address and entry tags in the first
//! 32 KiB, describing the same load), and
//! every loaded segment at the same distance between file offset and
//! physical address (the loader copies the file as one block). Programs
//! must pass the same ELF checks the loaders apply at run time. Programs and
//! data files go into a cpio "newc" RAMFS image, padded to whole pages so
//! the capability that maps it covers nothing else.

use std::fmt;
use std::path::Path;

use elf::abi::PT_LOAD;
use elf::endian::LittleEndian;
use elf::ElfBytes;

pub mod media;
mod paths;
mod strip;
pub use paths::{debug_dir, image_dir, target_dir, target_dir_from, TARGET_DIR_VAR};
pub use strip::{check_packed, strip_program};

/// The bare-metal target everything is built for.
pub const TARGET: &str = "x86_64-unknown-none";

/// The programs packed into the RAMFS besides the servers: the in-guest
/// test driver.
pub const EXTRA_PROGRAMS: &[&str] = &["ktest"];

/// Every crate under `servers/` of workspace `ws` (sorted), then the extra
/// programs: what goes into the RAMFS.
pub fn programs(ws: &Path) -> Result<Vec<String>, String> {
    let mut v: Vec<String> = std::fs::read_dir(ws.join("servers"))
        .map_err(|e| format!("cannot list servers/: {e}"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v.extend(EXTRA_PROGRAMS.iter().map(|s| s.to_string()));
    Ok(v)
}

/// Every crate built for [`TARGET`]: the kernel, the runtime and the programs.
pub fn bare_metal_crates(ws: &Path) -> Result<Vec<String>, String> {
    let mut v = vec!["kernel".to_string(), "runtime".to_string()];
    v.extend(programs(ws)?);
    Ok(v)
}

/// What was wrong with the kernel image.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageError(pub String);

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ImageError> {
    Err(ImageError(msg.into()))
}

/// Facts about a checked kernel image.
#[derive(Debug, PartialEq, Eq)]
pub struct KernelInfo {
    pub entry: u32,
    pub load_addr: u32,
}

const MB_MAGIC: u32 = 0x1BAD_B002;
const MB_AOUT_KLUDGE: u32 = 1 << 16;

/// Check that `bytes` is a kernel the multiboot loaders accept.
pub fn check_kernel(bytes: &[u8]) -> Result<KernelInfo, ImageError> {
    let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).map_err(|e| ImageError(format!("not ELF: {e}")))?;
    if file.ehdr.e_type != elf::abi::ET_EXEC {
        return err("kernel is not ET_EXEC (static relocation model lost?)");
    }
    let segs = file.segments().ok_or_else(|| ImageError("no program headers".into()))?;
    let mut delta = None;
    for ph in segs.iter().filter(|p| p.p_type == PT_LOAD && p.p_filesz > 0) {
        let d = ph.p_paddr.wrapping_sub(ph.p_offset);
        if *delta.get_or_insert(d) != d {
            return err(format!(
                "segment at paddr {:#x} breaks the one-block layout (paddr - offset {:#x}, expected {:#x})",
                ph.p_paddr,
                d,
                delta.unwrap()
            ));
        }
    }
    let limit = bytes.len().min(8192);
    let header = (0..limit.saturating_sub(32)).step_by(4).find(|&i| {
        let w = |o: usize| u32::from_le_bytes(bytes[i + o..i + o + 4].try_into().unwrap());
        w(0) == MB_MAGIC && w(0).wrapping_add(w(4)).wrapping_add(w(8)) == 0
    });
    let Some(h) = header else { return err("no multiboot header in the first 8 KiB") };
    let w = |o: usize| u32::from_le_bytes(bytes[h + o..h + o + 4].try_into().unwrap());
    if w(4) & MB_AOUT_KLUDGE == 0 {
        return err("multiboot header lacks the address fields (flag bit 16)");
    }
    let (header_addr, load_addr, entry) = (w(12), w(16), w(28));
    // The loader maps file offset `h` to `header_addr`; it must agree with
    // the ELF layout.
    if let Some(d) = delta {
        if (header_addr as u64).wrapping_sub(h as u64) != d {
            return err("multiboot header_addr does not match the ELF layout");
        }
    }
    check_multiboot2(bytes, delta)?;
    Ok(KernelInfo { entry, load_addr })
}

const MB2_MAGIC: u32 = 0xE852_50D6;

/// Check the multiboot-2 header GRUB loads the kernel by: in the first
/// 32 KiB, 8-byte aligned, checksum right, with an address tag that agrees
/// with the ELF layout and an entry tag.
fn check_multiboot2(bytes: &[u8], delta: Option<u64>) -> Result<(), ImageError> {
    let limit = bytes.len().min(32768);
    let w = |o: usize| bytes.get(o..o + 4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()));
    let header = (0..limit.saturating_sub(16)).step_by(8).find(|&i| {
        w(i) == MB2_MAGIC && w(i).wrapping_add(w(i + 4)).wrapping_add(w(i + 8)).wrapping_add(w(i + 12)) == 0
    });
    let Some(h) = header else { return err("no multiboot2 header in the first 32 KiB") };
    let end = h + w(h + 8) as usize;
    let (mut at, mut address, mut entry) = (h + 16, false, false);
    while at + 8 <= end.min(bytes.len()) {
        let (kind, size) = (w(at) & 0xffff, w(at + 4) as usize);
        match kind {
            0 => break,
            2 => {
                if let Some(d) = delta {
                    if (w(at + 8) as u64).wrapping_sub(h as u64) != d {
                        return err("multiboot2 header_addr does not match the ELF layout");
                    }
                }
                address = true;
            }
            3 => entry = true,
            _ => {}
        }
        at += size.max(8).next_multiple_of(8);
    }
    if !(address && entry) {
        return err("multiboot2 header lacks the address or entry tag");
    }
    Ok(())
}

/// Check a user program as the loaders will.
pub fn check_program(name: &str, bytes: &[u8]) -> Result<(), ImageError> {
    elfload::Image::parse(bytes, abi::USER_BOTTOM..abi::USER_TOP)
        .map(|_| ())
        .map_err(|e| ImageError(format!("{name}: {e:?}")))
}

/// Where the boot configuration lives in the repository.
pub const BOOT_CONFIG: &str = "servers/system/boot.conf";

/// Check the boot configuration against the programs the RAMFS will hold
/// (so a typo fails the build, not the boot) and make its RAMFS file.
pub fn boot_config(bytes: &[u8], programs: &[String]) -> Result<RamfsFile, ImageError> {
    let names: Vec<&str> = programs.iter().map(|s| s.as_str()).collect();
    system::config::check(bytes, &names).map_err(|e| ImageError(format!("{BOOT_CONFIG}: {e}")))?;
    Ok(RamfsFile { name: system::config::RAMFS_PATH.to_string(), perm: 0o644, data: bytes.to_vec() })
}

/// An executable for the in-guest tests that passes every ELF check but
/// has a segment exactly where a program's stack goes, so loading it fails
/// after the process exists (the `process` suite checks that such a spawn
/// leaves nothing behind).
pub fn stack_clash_file() -> RamfsFile {
    let at = abi::layout::STACK_TOP - 4096;
    let data = elfload::tiny_executable(at, elf::abi::PF_R | elf::abi::PF_X).to_vec();
    RamfsFile { name: "test/stack-clash".into(), perm: 0o755, data }
}

/// A file for the RAMFS.
#[derive(Debug)]
pub struct RamfsFile {
    pub name: String,
    pub perm: u32,
    pub data: Vec<u8>,
}

/// Pack files into a newc archive padded to whole pages.
pub fn pack_ramfs(files: &[RamfsFile]) -> Vec<u8> {
    let mut w = cpio::Writer::new();
    let mut dirs: Vec<String> = Vec::new();
    for f in files {
        let mut at = 0;
        while let Some(i) = f.name[at..].find('/') {
            let dir = f.name[..at + i].to_string();
            if !dirs.contains(&dir) {
                w.dir(&dir);
                dirs.push(dir);
            }
            at += i + 1;
        }
        w.file(&f.name, f.perm, &f.data);
    }
    let mut img = w.finish();
    img.resize(img.len().next_multiple_of(4096), 0);
    img
}

/// The files under `dir`, with names relative to it, sorted.
pub fn data_files(dir: &Path) -> std::io::Result<Vec<RamfsFile>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
                out.push(RamfsFile { name, perm: 0o644, data: std::fs::read(&p)? });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Size of the generated test file (`test/data.bin`): 1 MiB, 256 pages.
pub const TEST_FILE_SIZE: usize = 1 << 20;

/// Files for the in-guest file tests: `test/data.bin` (pseudo-random
/// bytes, a fresh seed per build) and `test/manifest`, which lists it and
/// every file in `files` under `etc/` with its size and FNV-1a hash
/// computed here, on the host ([`ramfs::manifest`]).
pub fn test_files(files: &[RamfsFile], seed: u64) -> Vec<RamfsFile> {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..TEST_FILE_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let mut manifest = ramfs::manifest::line("test/data.bin", &data);
    for f in files.iter().filter(|f| f.name.starts_with("etc/")) {
        manifest += &ramfs::manifest::line(&f.name, &f.data);
    }
    vec![
        RamfsFile { name: "test/data.bin".into(), perm: 0o644, data },
        RamfsFile { name: ramfs::manifest::PATH.into(), perm: 0o644, data: manifest.into_bytes() },
    ]
}

/// The iPXE script that netboots the image.
pub fn ipxe_script() -> &'static str {
    "#!ipxe\necho Booting the microkernel over the network\nkernel kernel.elf\nmodule ramfs.img\nboot\n"
}

/// QEMU arguments that boot the image in `dir` (serial on stdio, no
/// display, isa-debug-exit for a clean exit code), plus `append` as the
/// kernel command line.
pub fn qemu_args(dir: &Path, append: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "-machine", "q35", "-cpu", "max", "-accel", "tcg", "-m", "256M",
        "-bios", "/usr/share/qemu/qboot.rom",
        "-serial", "stdio", "-display", "none", "-no-reboot",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push("-kernel".into());
    a.push(dir.join("kernel.elf").display().to_string());
    a.push("-initrd".into());
    a.push(dir.join("ramfs.img").display().to_string());
    if !append.is_empty() {
        a.push("-append".into());
        a.push(append.to_string());
    }
    a
}

#[cfg(test)]
mod tests;
