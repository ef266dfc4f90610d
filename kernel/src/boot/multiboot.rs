//! Reading the multiboot (version 1) information block.
//!
//! The loader leaves a block of physical addresses: flags, the memory map,
//! the modules (our RAMFS image) and the command line. The parser reads it
//! through a closure that copies physical bytes, so it never trusts a
//! pointer it was given and the host tests can feed it fake memory.

/// The value the loader puts in `eax`.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;

/// Most memory-map entries and modules kept.
pub const MAX_REGIONS: usize = 32;
pub const MAX_MODULES: usize = 8;
/// Longest command line kept (the rest is cut off).
pub const CMDLINE_LEN: usize = 256;

/// One memory-map entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub len: u64,
    /// 1 = usable RAM; anything else is reserved.
    pub kind: u32,
}

impl Region {
    pub fn usable(&self) -> bool {
        self.kind == 1
    }
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// One boot module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    pub cmdline: [u8; 64],
    pub cmdline_len: usize,
}

impl Default for Module {
    fn default() -> Self {
        Module { start: 0, end: 0, cmdline: [0; 64], cmdline_len: 0 }
    }
}

impl Module {
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }
}

/// Everything the kernel uses from the block.
#[derive(Clone, Debug)]
pub struct BootInfo {
    pub regions: [Region; MAX_REGIONS],
    pub region_count: usize,
    pub modules: [Module; MAX_MODULES],
    pub module_count: usize,
    pub cmdline: [u8; CMDLINE_LEN],
    pub cmdline_len: usize,
}

/// Why the block could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// `eax` did not hold the multiboot magic.
    BadMagic(u32),
    /// The loader gave no memory map.
    NoMemoryMap,
}

impl BootInfo {
    pub fn regions(&self) -> &[Region] {
        &self.regions[..self.region_count]
    }
    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.module_count]
    }
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }
    /// End of the highest usable RAM.
    pub fn ram_top(&self) -> u64 {
        self.regions().iter().filter(|r| r.usable()).map(|r| r.end()).max().unwrap_or(0)
    }

    /// Parse the block at physical address `info`; `read(addr, buf)` copies
    /// physical memory.
    pub fn parse(magic: u32, info: u64, read: &mut dyn FnMut(u64, &mut [u8])) -> Result<BootInfo, BootError> {
        if magic != BOOTLOADER_MAGIC {
            return Err(BootError::BadMagic(magic));
        }
        let flags = u32_at(read, info);
        let mut bi = BootInfo {
            regions: [Region::default(); MAX_REGIONS],
            region_count: 0,
            modules: [Module::default(); MAX_MODULES],
            module_count: 0,
            cmdline: [0; CMDLINE_LEN],
            cmdline_len: 0,
        };
        if flags & (1 << 6) == 0 {
            return Err(BootError::NoMemoryMap);
        }
        let (mmap_len, mmap_addr) = (u32_at(read, info + 44) as u64, u32_at(read, info + 48) as u64);
        let mut at = mmap_addr;
        while at + 24 <= mmap_addr + mmap_len && bi.region_count < MAX_REGIONS {
            let mut e = [0u8; 24];
            read(at, &mut e);
            let size = u32::from_le_bytes(e[0..4].try_into().unwrap()) as u64;
            bi.regions[bi.region_count] = Region {
                start: u64::from_le_bytes(e[4..12].try_into().unwrap()),
                len: u64::from_le_bytes(e[12..20].try_into().unwrap()),
                kind: u32::from_le_bytes(e[20..24].try_into().unwrap()),
            };
            bi.region_count += 1;
            at += size.max(20) + 4;
        }
        if flags & (1 << 2) != 0 {
            bi.cmdline_len = read_cstr(u32_at(read, info + 16) as u64, &mut bi.cmdline, read);
        }
        if flags & (1 << 3) != 0 {
            let (count, addr) = (u32_at(read, info + 20) as usize, u32_at(read, info + 24) as u64);
            for i in 0..count.min(MAX_MODULES) {
                let m = addr + 16 * i as u64;
                let (start, end, string) = (u32_at(read, m) as u64, u32_at(read, m + 4) as u64, u32_at(read, m + 8) as u64);
                let mut module = Module { start, end: end.max(start), ..Module::default() };
                if string != 0 {
                    module.cmdline_len = read_cstr(string, &mut module.cmdline, read);
                }
                bi.modules[i] = module;
                bi.module_count += 1;
            }
        }
        Ok(bi)
    }
}

fn u32_at(read: &mut dyn FnMut(u64, &mut [u8]), addr: u64) -> u32 {
    let mut b = [0u8; 4];
    read(addr, &mut b);
    u32::from_le_bytes(b)
}

/// Copy a NUL-terminated string into `out`; returns its length (cut to fit).
fn read_cstr(addr: u64, out: &mut [u8], read: &mut dyn FnMut(u64, &mut [u8])) -> usize {
    for (i, slot) in out.iter_mut().enumerate() {
        let mut b = [0u8; 1];
        read(addr + i as u64, &mut b);
        if b[0] == 0 {
            return i;
        }
        *slot = b[0];
    }
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;

    fn put32(m: &mut [u8], at: usize, v: u32) {
        m[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A block as QEMU lays it out: info at 0x100, mmap at 0x200, modules
    /// at 0x300, strings at 0x400.
    fn fake() -> std::vec::Vec<u8> {
        let mut m = vec![0u8; 0x1000];
        put32(&mut m, 0x100, (1 << 6) | (1 << 3) | (1 << 2));
        put32(&mut m, 0x100 + 16, 0x400);
        put32(&mut m, 0x100 + 20, 1);
        put32(&mut m, 0x100 + 24, 0x300);
        put32(&mut m, 0x100 + 44, 3 * 24);
        put32(&mut m, 0x100 + 48, 0x200);
        let regions = [(0u64, 0x9fc00u64, 1u32), (0xf0000, 0x10000, 2), (0x100000, 0x7ee0000, 1)];
        for (i, (s, l, k)) in regions.iter().enumerate() {
            let at = 0x200 + 24 * i;
            put32(&mut m, at, 20);
            m[at + 4..at + 12].copy_from_slice(&s.to_le_bytes());
            m[at + 12..at + 20].copy_from_slice(&l.to_le_bytes());
            put32(&mut m, at + 20, *k);
        }
        put32(&mut m, 0x300, 0x800);
        put32(&mut m, 0x304, 0x900);
        put32(&mut m, 0x308, 0x480);
        m[0x400..0x414].copy_from_slice(b"kernel.elf test=ipc\0");
        m[0x480..0x48b].copy_from_slice(b"ramfs.img\0\0");
        m
    }

    #[test]
    fn parses_map_modules_and_cmdline() {
        let m = fake();
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        let bi = BootInfo::parse(BOOTLOADER_MAGIC, 0x100, &mut read).unwrap();
        assert_eq!(bi.regions().len(), 3);
        assert!(bi.regions()[2].usable());
        assert_eq!(bi.ram_top(), 0x7fe0000);
        assert_eq!(bi.cmdline(), "kernel.elf test=ipc");
        assert_eq!(bi.modules().len(), 1);
        assert_eq!((bi.modules()[0].start, bi.modules()[0].end), (0x800, 0x900));
        assert_eq!(bi.modules()[0].cmdline(), "ramfs.img");
    }

    #[test]
    fn rejects_bad_magic_and_missing_map() {
        let mut m = fake();
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        assert_eq!(BootInfo::parse(0x1234, 0x100, &mut read).unwrap_err(), BootError::BadMagic(0x1234));
        put32(&mut m, 0x100, 0);
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        assert_eq!(BootInfo::parse(BOOTLOADER_MAGIC, 0x100, &mut read).unwrap_err(), BootError::NoMemoryMap);
    }
}
