//! Reading the multiboot information block, version 1 or 2.
//!
//! A multiboot-1 loader (QEMU `-kernel`, iPXE) leaves a block of physical
//! addresses: flags, the memory map, the modules (our RAMFS image) and the
//! command line. A multiboot-2 loader (GRUB on BIOS or UEFI machines) leaves
//! a list of tags with the same facts plus what only it knows: the EFI
//! memory map, whether the firmware is UEFI, and a copy of the ACPI RSDP
//! (on UEFI there is no BIOS area to scan for it). Both become one
//! [`BootInfo`]. The parser reads through a closure that copies physical
//! bytes, so it never trusts a pointer it was given and the host tests can
//! feed it fake memory; everything is copied out, so the loader's memory can
//! be reused as soon as the parse is done.

/// The value a multiboot-1 loader puts in `eax`.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
/// The value a multiboot-2 loader puts in `eax`.
pub const BOOTLOADER_MAGIC2: u32 = 0x36D7_6289;

/// Most memory-map entries kept (adjacent entries of one kind are merged;
/// an EFI map has many) and modules kept.
pub const MAX_REGIONS: usize = 128;
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

/// Which loader protocol started the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loader {
    Multiboot1,
    Multiboot2,
}

/// The firmware under the loader, as far as the block tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// A PC BIOS (or one the loader does not tell apart from it).
    Bios,
    /// UEFI: the loader handed over the EFI system table (boot services
    /// already exited), so the BIOS data area and ROM may not exist.
    Uefi { system_table: u64 },
}

/// Where the ACPI RSDP came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsdpFrom {
    /// The loader's copy (multiboot-2 tag 14 or 15).
    Loader,
    /// Found by scanning the BIOS area at this physical address.
    BiosScan(u64),
}

/// The RSDP bytes (already checked with `acpi::Rsdp::parse`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RsdpCopy {
    pub bytes: [u8; acpi::RSDP_V2_LEN],
    pub from: RsdpFrom,
}

/// An EFI memory map in physical memory: `size` bytes of descriptors,
/// `desc_size` bytes apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EfiMap {
    pub addr: u64,
    pub size: u64,
    pub desc_size: u64,
}

/// Everything the kernel uses from the block.
#[derive(Clone, Debug)]
pub struct BootInfo {
    pub loader: Loader,
    pub firmware: Firmware,
    pub regions: [Region; MAX_REGIONS],
    pub region_count: usize,
    pub modules: [Module; MAX_MODULES],
    pub module_count: usize,
    pub cmdline: [u8; CMDLINE_LEN],
    pub cmdline_len: usize,
    pub rsdp: Option<RsdpCopy>,
    /// Memory-map entries the loader gave (before merging): entropy input.
    pub raw_regions: usize,
}

/// Why the block could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// `eax` did not hold a multiboot magic.
    BadMagic(u32),
    /// The loader gave no memory map.
    NoMemoryMap,
    /// A multiboot-2 tag runs past the end of the block or is too short.
    BadTag { at: u64, kind: u32 },
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
    /// The command line without the image name: a multiboot-1 loader puts
    /// the kernel's file name first, GRUB's multiboot 2 does not.
    pub fn arguments(&self) -> &str {
        let line = self.cmdline().trim_start();
        match self.loader {
            Loader::Multiboot1 => line.split_once(char::is_whitespace).map_or("", |(_, rest)| rest),
            Loader::Multiboot2 => line,
        }
    }

    /// The usable RAM ranges as `(start, end)` in `out`; returns how many.
    /// When there are more than fit (an EFI map can have many), the last
    /// slot covers all the rest, gaps included: the list is what device
    /// mappings must never touch, so it may claim too much, never too little.
    pub fn ram_ranges(&self, out: &mut [(u64, u64)]) -> usize {
        let mut n = 0;
        for r in self.regions().iter().filter(|r| r.usable()) {
            if n < out.len() {
                out[n] = (r.start, r.end());
                n += 1;
            } else if let Some(last) = out.last_mut() {
                *last = (last.0.min(r.start), last.1.max(r.end()));
            }
        }
        n
    }

    /// End of the highest usable RAM.
    pub fn ram_top(&self) -> u64 {
        self.regions().iter().filter(|r| r.usable()).map(|r| r.end()).max().unwrap_or(0)
    }


    fn empty(loader: Loader) -> BootInfo {
        BootInfo {
            loader,
            firmware: Firmware::Bios,
            regions: [Region::default(); MAX_REGIONS],
            region_count: 0,
            modules: [Module::default(); MAX_MODULES],
            module_count: 0,
            cmdline: [0; CMDLINE_LEN],
            cmdline_len: 0,
            rsdp: None,
            raw_regions: 0,
        }
    }

    /// Add a memory-map entry, merging it into the previous one when they
    /// touch and are of the same kind.
    fn push_region(&mut self, r: Region) {
        self.raw_regions += 1;
        if r.len == 0 {
            return;
        }
        if let Some(last) = self.regions[..self.region_count].last_mut() {
            if last.kind == r.kind && last.end() == r.start {
                last.len += r.len;
                return;
            }
        }
        if self.region_count < MAX_REGIONS {
            self.regions[self.region_count] = r;
            self.region_count += 1;
        }
    }

    fn push_module(&mut self, module: Module) {
        if self.module_count < MAX_MODULES {
            self.modules[self.module_count] = module;
            self.module_count += 1;
        }
    }

    /// Keep `bytes` as the RSDP if they are a valid one.
    fn set_rsdp(&mut self, bytes: &[u8], from: RsdpFrom) {
        if acpi::Rsdp::parse(bytes).is_ok() {
            let mut copy = [0u8; acpi::RSDP_V2_LEN];
            let n = bytes.len().min(copy.len());
            copy[..n].copy_from_slice(&bytes[..n]);
            self.rsdp = Some(RsdpCopy { bytes: copy, from });
        }
    }

    /// Parse the block at physical address `info`; `read(addr, buf)` copies
    /// physical memory. `magic` (from `eax`) says which version it is;
    /// `own_efi_map` is the map the kernel took itself when it exited EFI
    /// boot services (the loader then gives none).
    pub fn parse(
        magic: u32,
        info: u64,
        read: &mut dyn FnMut(u64, &mut [u8]),
        own_efi_map: Option<EfiMap>,
    ) -> Result<BootInfo, BootError> {
        match magic {
            BOOTLOADER_MAGIC => Self::parse_v1(info, read),
            BOOTLOADER_MAGIC2 => Self::parse_v2(info, read, own_efi_map),
            _ => Err(BootError::BadMagic(magic)),
        }
    }

    fn parse_v1(info: u64, read: &mut dyn FnMut(u64, &mut [u8])) -> Result<BootInfo, BootError> {
        let flags = u32_at(read, info);
        let mut bi = BootInfo::empty(Loader::Multiboot1);
        if flags & (1 << 6) == 0 {
            return Err(BootError::NoMemoryMap);
        }
        let (mmap_len, mmap_addr) = (u32_at(read, info + 44) as u64, u32_at(read, info + 48) as u64);
        let mut at = mmap_addr;
        while at + 24 <= mmap_addr + mmap_len && bi.raw_regions < 4 * MAX_REGIONS {
            let mut e = [0u8; 24];
            read(at, &mut e);
            let size = u32::from_le_bytes(e[0..4].try_into().unwrap()) as u64;
            bi.push_region(Region {
                start: u64::from_le_bytes(e[4..12].try_into().unwrap()),
                len: u64::from_le_bytes(e[12..20].try_into().unwrap()),
                kind: u32::from_le_bytes(e[20..24].try_into().unwrap()),
            });
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
                bi.push_module(module);
            }
        }
        bi.scan_bios_rsdp(read);
        Ok(bi)
    }

    /// Look for the RSDP where a BIOS keeps it (ACPI §5.2.5.1): the first
    /// KiB of the EBDA, then 0xE0000..0xFFFFF. Only for multiboot 1, where
    /// the loader hands over nothing better; reading low memory is harmless
    /// even when no BIOS put anything there.
    fn scan_bios_rsdp(&mut self, read: &mut dyn FnMut(u64, &mut [u8])) {
        let mut ebda = [0u8; 2];
        read(0x40e, &mut ebda);
        let ebda = (u16::from_le_bytes(ebda) as u64) << 4;
        let ebda_ok = (0x8_0000..0xa_0000).contains(&ebda);
        let areas = [(ebda, if ebda_ok { 1024 } else { 0 }), (0xe_0000, 0x2_0000)];
        for (base, len) in areas {
            for at in (base..base + len).step_by(16) {
                let mut b = [0u8; acpi::RSDP_V2_LEN];
                read(at, &mut b[..8]);
                if &b[..8] != acpi::RSDP_SIGNATURE {
                    continue;
                }
                let n = (base + len - at).min(b.len() as u64) as usize;
                read(at, &mut b[..n]);
                self.set_rsdp(&b[..n], RsdpFrom::BiosScan(at));
                if self.rsdp.is_some() {
                    return;
                }
            }
        }
    }

    fn parse_v2(info: u64, read: &mut dyn FnMut(u64, &mut [u8]), own_efi_map: Option<EfiMap>) -> Result<BootInfo, BootError> {
        let total = u32_at(read, info) as u64;
        let mut bi = BootInfo::empty(Loader::Multiboot2);
        let mut efi_map = None;
        let mut have_mmap = false;
        let mut at = info + 8;
        while at + 8 <= info + total {
            let (kind, size) = (u32_at(read, at), u32_at(read, at + 4) as u64);
            let bad = BootError::BadTag { at, kind };
            if kind == mb2::END {
                break;
            }
            if size < 8 || at + size > info + total {
                return Err(bad);
            }
            let body = at + 8;
            let body_len = size - 8;
            match kind {
                mb2::CMDLINE => bi.cmdline_len = read_cstr_max(body, body_len, &mut bi.cmdline, read),
                mb2::MODULE if body_len >= 8 => {
                    let (start, end) = (u32_at(read, body) as u64, u32_at(read, body + 4) as u64);
                    let mut module = Module { start, end: end.max(start), ..Module::default() };
                    module.cmdline_len = read_cstr_max(body + 8, body_len - 8, &mut module.cmdline, read);
                    bi.push_module(module);
                }
                mb2::MMAP if body_len >= 8 => {
                    let entry = (u32_at(read, body) as u64).max(24);
                    let mut e = body + 8;
                    while e + 24 <= body + body_len && bi.raw_regions < 4 * MAX_REGIONS {
                        let mut b = [0u8; 24];
                        read(e, &mut b);
                        bi.push_region(Region {
                            start: u64::from_le_bytes(b[0..8].try_into().unwrap()),
                            len: u64::from_le_bytes(b[8..16].try_into().unwrap()),
                            kind: u32::from_le_bytes(b[16..20].try_into().unwrap()),
                        });
                        e += entry;
                    }
                    have_mmap = true;
                }
                mb2::EFI_MMAP if body_len >= 8 => efi_map = Some((body, body_len)),
                mb2::EFI64_SYSTEM_TABLE if body_len >= 8 => {
                    bi.firmware = Firmware::Uefi { system_table: u64_at(read, body) };
                }
                // Prefer the 2.0+ copy (tag 15) whatever the order.
                mb2::ACPI_OLD | mb2::ACPI_NEW if kind == mb2::ACPI_NEW || bi.rsdp.is_none() => {
                    let mut b = [0u8; acpi::RSDP_V2_LEN];
                    let n = (body_len as usize).min(b.len());
                    read(body, &mut b[..n]);
                    bi.set_rsdp(&b[..n], RsdpFrom::Loader);
                }
                mb2::EFI_BOOT_SERVICES => {
                    // Not requested by our header: the loader must have exited them.
                }
                _ => {}
            }
            at += size.next_multiple_of(8);
        }
        // The EFI map is the firmware's own; the loader's mmap tag is its
        // translation. Use an EFI map only when there is nothing else: the
        // kernel's own (taken at ExitBootServices, see `EfiMap`), else the
        // loader's tag 17.
        if !have_mmap {
            let tag = efi_map.map(|(body, len)| EfiMap { addr: body + 8, size: len - 8, desc_size: u32_at(read, body) as u64 });
            let Some(map) = own_efi_map.or(tag) else { return Err(BootError::NoMemoryMap) };
            let desc = map.desc_size.max(40);
            let mut e = map.addr;
            while e + 40 <= map.addr + map.size && bi.raw_regions < 4 * MAX_REGIONS {
                let mut b = [0u8; 40];
                read(e, &mut b);
                let kind = u32::from_le_bytes(b[0..4].try_into().unwrap());
                bi.push_region(Region {
                    start: u64::from_le_bytes(b[8..16].try_into().unwrap()),
                    len: u64::from_le_bytes(b[24..32].try_into().unwrap()).saturating_mul(4096),
                    kind: mb2::efi_to_e820(kind),
                });
                e += desc;
            }
        }
        Ok(bi)
    }
}

/// Multiboot-2 tag numbers and EFI memory types.
mod mb2 {
    pub const END: u32 = 0;
    pub const CMDLINE: u32 = 1;
    pub const MODULE: u32 = 3;
    pub const MMAP: u32 = 6;
    pub const EFI64_SYSTEM_TABLE: u32 = 12;
    pub const ACPI_OLD: u32 = 14;
    pub const ACPI_NEW: u32 = 15;
    pub const EFI_MMAP: u32 = 17;
    pub const EFI_BOOT_SERVICES: u32 = 18;

    /// An EFI memory type as an E820 kind. After ExitBootServices the
    /// loader's and boot services' memory is free (types 1-4), as is
    /// conventional memory (7); ACPI tables (9) and NVS (10) keep their
    /// meaning; everything else is reserved.
    pub fn efi_to_e820(kind: u32) -> u32 {
        match kind {
            1..=4 | 7 => 1,
            9 => 3,
            10 => 4,
            _ => 2,
        }
    }
}

fn u32_at(read: &mut dyn FnMut(u64, &mut [u8]), addr: u64) -> u32 {
    let mut b = [0u8; 4];
    read(addr, &mut b);
    u32::from_le_bytes(b)
}

fn u64_at(read: &mut dyn FnMut(u64, &mut [u8]), addr: u64) -> u64 {
    let mut b = [0u8; 8];
    read(addr, &mut b);
    u64::from_le_bytes(b)
}

/// Copy a NUL-terminated string into `out`; returns its length (cut to fit).
fn read_cstr(addr: u64, out: &mut [u8], read: &mut dyn FnMut(u64, &mut [u8])) -> usize {
    read_cstr_max(addr, u64::MAX, out, read)
}

/// [`read_cstr`] reading at most `max` bytes (a string inside a tag).
fn read_cstr_max(addr: u64, max: u64, out: &mut [u8], read: &mut dyn FnMut(u64, &mut [u8])) -> usize {
    for (i, slot) in out.iter_mut().enumerate().take(max.min(usize::MAX as u64) as usize) {
        let mut b = [0u8; 1];
        read(addr + i as u64, &mut b);
        if b[0] == 0 {
            return i;
        }
        *slot = b[0];
    }
    out.len().min(max.min(usize::MAX as u64) as usize)
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
        // Up to 1 MiB: the RSDP scan reads the BIOS area.
        let mut m = vec![0u8; 0x10_0000];
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
        let bi = BootInfo::parse(BOOTLOADER_MAGIC, 0x100, &mut read, None).unwrap();
        assert_eq!(bi.regions().len(), 3);
        assert!(bi.regions()[2].usable());
        assert_eq!(bi.ram_top(), 0x7fe0000);
        assert_eq!(bi.cmdline(), "kernel.elf test=ipc");
        assert_eq!(bi.arguments(), "test=ipc");
        assert_eq!(bi.modules().len(), 1);
        assert_eq!((bi.modules()[0].start, bi.modules()[0].end), (0x800, 0x900));
        assert_eq!(bi.modules()[0].cmdline(), "ramfs.img");
        assert_eq!((bi.loader, bi.firmware, bi.rsdp), (Loader::Multiboot1, Firmware::Bios, None));
    }

    /// An RSDP (revision 2) with both checksums right.
    fn rsdp() -> [u8; 36] {
        let mut r = [0u8; 36];
        r[..8].copy_from_slice(b"RSD PTR ");
        r[9..15].copy_from_slice(b"BOCHS ");
        r[15] = 2;
        r[16..20].copy_from_slice(&0x7fe1000u32.to_le_bytes());
        r[20..24].copy_from_slice(&36u32.to_le_bytes());
        r[24..32].copy_from_slice(&0x7fe2000u64.to_le_bytes());
        r[8] = 0u8.wrapping_sub(r[..20].iter().fold(0u8, |a, &b| a.wrapping_add(b)));
        r[32] = 0u8.wrapping_sub(r.iter().fold(0u8, |a, &b| a.wrapping_add(b)));
        r
    }

    #[test]
    fn multiboot1_finds_the_rsdp_in_the_bios_area() {
        let mut m = fake();
        // A decoy with a bad checksum first, then the real one.
        m[0xe_0100..0xe_0108].copy_from_slice(b"RSD PTR ");
        m[0xf_5a10..0xf_5a10 + 36].copy_from_slice(&rsdp());
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        let bi = BootInfo::parse(BOOTLOADER_MAGIC, 0x100, &mut read, None).unwrap();
        let r = bi.rsdp.expect("RSDP found");
        assert_eq!(r.from, RsdpFrom::BiosScan(0xf_5a10));
        assert_eq!(r.bytes, rsdp());
        // In the EBDA too.
        m[0xf_5a10] = 0;
        put32(&mut m, 0x40c, 0x9fc0 << 16);
        m[0x9_fc20..0x9_fc20 + 36].copy_from_slice(&rsdp());
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        assert_eq!(BootInfo::parse(BOOTLOADER_MAGIC, 0x100, &mut read, None).unwrap().rsdp.unwrap().from, RsdpFrom::BiosScan(0x9_fc20));
    }

    /// A multiboot-2 block at 0x1000 as GRUB leaves it on a UEFI machine:
    /// command line, module, mmap, EFI system table, both ACPI tags, EFI
    /// memory map.
    struct Mb2(std::vec::Vec<u8>);
    impl Mb2 {
        fn new() -> Mb2 {
            Mb2(vec![0u8; 8])
        }
        fn tag(&mut self, kind: u32, body: &[u8]) -> &mut Mb2 {
            let size = 8 + body.len() as u32;
            self.0.extend_from_slice(&kind.to_le_bytes());
            self.0.extend_from_slice(&size.to_le_bytes());
            self.0.extend_from_slice(body);
            while !self.0.len().is_multiple_of(8) {
                self.0.push(0);
            }
            self
        }
        fn finish(&mut self) -> std::vec::Vec<u8> {
            self.tag(0, &[]);
            let total = self.0.len() as u32;
            self.0[..4].copy_from_slice(&total.to_le_bytes());
            let mut m = vec![0u8; 0x1000];
            m.extend_from_slice(&self.0);
            m
        }
    }

    fn mmap_body(entries: &[(u64, u64, u32)]) -> std::vec::Vec<u8> {
        let mut b = vec![];
        b.extend_from_slice(&24u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for (s, l, k) in entries {
            b.extend_from_slice(&s.to_le_bytes());
            b.extend_from_slice(&l.to_le_bytes());
            b.extend_from_slice(&k.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
        }
        b
    }

    fn efi_body(entries: &[(u32, u64, u64)]) -> std::vec::Vec<u8> {
        let mut b = vec![];
        b.extend_from_slice(&48u32.to_le_bytes()); // descriptors padded, as firmware does
        b.extend_from_slice(&1u32.to_le_bytes());
        for (k, s, pages) in entries {
            let mut d = [0u8; 48];
            d[0..4].copy_from_slice(&k.to_le_bytes());
            d[8..16].copy_from_slice(&s.to_le_bytes());
            d[24..32].copy_from_slice(&pages.to_le_bytes());
            b.extend_from_slice(&d);
        }
        b
    }

    fn parse2(m: &[u8]) -> Result<BootInfo, BootError> {
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        BootInfo::parse(BOOTLOADER_MAGIC2, 0x1000, &mut read, None)
    }

    #[test]
    fn multiboot2_from_grub_on_uefi() {
        let mut v1 = rsdp();
        v1[15] = 0;
        v1[8] = 0;
        v1[8] = 0u8.wrapping_sub(v1[..20].iter().fold(0u8, |a, &b| a.wrapping_add(b)));
        let mut module = vec![];
        module.extend_from_slice(&0x20_0000u32.to_le_bytes());
        module.extend_from_slice(&0x2a_0000u32.to_le_bytes());
        module.extend_from_slice(b"ramfs.img\0");
        let m = Mb2::new()
            .tag(1, b"test=ipc loglevel=warn\0")
            .tag(3, &module)
            .tag(15, &rsdp())
            .tag(14, &v1[..20])
            .tag(12, &0x7f9e_e018u64.to_le_bytes())
            // Adjacent usable entries merge into one region.
            .tag(6, &mmap_body(&[(0, 0xa0000, 1), (0x100000, 0x700000, 1), (0x800000, 0x7000000, 1), (0x7800000, 0x100000, 3)]))
            .tag(17, &efi_body(&[(7, 0, 0xa0)]))
            .finish();
        let bi = parse2(&m).unwrap();
        assert_eq!(bi.loader, Loader::Multiboot2);
        assert_eq!(bi.firmware, Firmware::Uefi { system_table: 0x7f9e_e018 });
        assert_eq!(bi.cmdline(), "test=ipc loglevel=warn");
        assert_eq!(bi.arguments(), "test=ipc loglevel=warn", "GRUB's multiboot 2 passes no image name");
        assert_eq!((bi.modules()[0].start, bi.modules()[0].end, bi.modules()[0].cmdline()), (0x20_0000, 0x2a_0000, "ramfs.img"));
        assert_eq!(bi.regions(), &[
            Region { start: 0, len: 0xa0000, kind: 1 },
            Region { start: 0x100000, len: 0x7700000, kind: 1 },
            Region { start: 0x7800000, len: 0x100000, kind: 3 },
        ]);
        assert_eq!(bi.raw_regions, 4);
        // The 2.0 copy wins although the 1.0 tag came later.
        assert_eq!(bi.rsdp, Some(RsdpCopy { bytes: rsdp(), from: RsdpFrom::Loader }));
    }

    #[test]
    fn multiboot2_falls_back_to_the_efi_map_and_drops_a_bad_rsdp() {
        let mut bad = rsdp();
        bad[20] ^= 1;
        let m = Mb2::new()
            .tag(15, &bad)
            .tag(17, &efi_body(&[(7, 0, 0xa0), (6, 0xa0000, 0x60), (3, 0x100000, 0x100), (7, 0x200000, 0x100), (9, 0x300000, 1), (10, 0x301000, 1)]))
            .finish();
        let bi = parse2(&m).unwrap();
        assert_eq!(bi.firmware, Firmware::Bios);
        assert_eq!(bi.rsdp, None, "a copy with a bad checksum is not handed on");
        let kinds: std::vec::Vec<(u64, u64, u32)> = bi.regions().iter().map(|r| (r.start, r.end(), r.kind)).collect();
        assert_eq!(kinds, [(0, 0xa0000, 1), (0xa0000, 0x100000, 2), (0x100000, 0x300000, 1), (0x300000, 0x301000, 3), (0x301000, 0x302000, 4)]);
        assert_eq!(bi.ram_top(), 0x300000);
    }

    #[test]
    fn ram_ranges_never_leave_ram_out() {
        let mut bi = BootInfo::empty(Loader::Multiboot2);
        for i in 0..10u64 {
            bi.push_region(Region { start: i * 0x2000, len: 0x1000, kind: 1 });
            bi.push_region(Region { start: i * 0x2000 + 0x1000, len: 0x1000, kind: 2 });
        }
        let mut out = [(0, 0); 4];
        assert_eq!(bi.ram_ranges(&mut out), 4);
        assert_eq!(out[..3], [(0, 0x1000), (0x2000, 0x3000), (0x4000, 0x5000)]);
        assert_eq!(out[3], (0x6000, 0x13000), "the last slot covers every usable range left");
        let mut big = [(0, 0); 16];
        assert_eq!(bi.ram_ranges(&mut big), 10);
        assert_eq!(big[9], (0x12000, 0x13000));
    }

    #[test]
    fn multiboot2_with_boot_services_kept_uses_the_kernels_own_efi_map() {
        // GRUB gives no map when the kernel exits boot services itself;
        // the kernel's map (here at 0x100) is used instead.
        let mut m = Mb2::new().tag(1, b"x\0").finish();
        let efi = efi_body(&[(7, 0, 0xa0), (4, 0x100000, 0x100), (0, 0x200000, 1), (7, 0x201000, 0x1000)]);
        m[0x100..0x100 + efi.len() - 8].copy_from_slice(&efi[8..]);
        let own = EfiMap { addr: 0x100, size: efi.len() as u64 - 8, desc_size: 48 };
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        let bi = BootInfo::parse(BOOTLOADER_MAGIC2, 0x1000, &mut read, Some(own)).unwrap();
        let kinds: std::vec::Vec<(u64, u64, u32)> = bi.regions().iter().map(|r| (r.start, r.end(), r.kind)).collect();
        assert_eq!(kinds, [(0, 0xa0000, 1), (0x100000, 0x200000, 1), (0x200000, 0x201000, 2), (0x201000, 0x1201000, 1)]);
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        assert_eq!(BootInfo::parse(BOOTLOADER_MAGIC2, 0x1000, &mut read, None).unwrap_err(), BootError::NoMemoryMap);
    }

    #[test]
    fn multiboot2_rejects_broken_blocks() {
        assert_eq!(parse2(&Mb2::new().tag(1, b"x\0").finish()).unwrap_err(), BootError::NoMemoryMap);
        let mut m = Mb2::new().tag(6, &mmap_body(&[(0, 0x1000, 1)])).finish();
        // A tag claiming to run past the block's end.
        m[0x1000 + 12..0x1000 + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        assert_eq!(parse2(&m).unwrap_err(), BootError::BadTag { at: 0x1008, kind: 6 });
        m[0x1000 + 12..0x1000 + 16].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(parse2(&m).unwrap_err(), BootError::BadTag { at: 0x1008, kind: 6 });
    }

    #[test]
    fn rejects_bad_magic_and_missing_map() {
        let mut m = fake();
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        assert_eq!(BootInfo::parse(0x1234, 0x100, &mut read, None).unwrap_err(), BootError::BadMagic(0x1234));
        put32(&mut m, 0x100, 0);
        let mut read = |addr: u64, buf: &mut [u8]| buf.copy_from_slice(&m[addr as usize..addr as usize + buf.len()]);
        assert_eq!(BootInfo::parse(BOOTLOADER_MAGIC, 0x100, &mut read, None).unwrap_err(), BootError::NoMemoryMap);
    }
}
