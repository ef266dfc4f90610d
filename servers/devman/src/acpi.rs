//! ACPI table decoding: the RSDP, the RSDT/XSDT and the MCFG (ACPI 6.x
//! §5.2.5–5.2.8, PCI Firmware spec §4.1.2), as pure functions over byte
//! slices so they run on the host against made-up and broken tables.
//!
//! Every checksum is verified; a table that fails one is refused, never
//! half-used.

use heapless::Vec;

/// The RSDP's signature (trailing space included).
pub const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// Bytes of an SDT header.
pub const SDT_HEADER: usize = 36;
/// Where MCFG's entries start (header + 8 reserved bytes).
pub const MCFG_ENTRIES: usize = 44;
/// Bytes of one MCFG entry.
pub const MCFG_ENTRY: usize = 16;
/// Most MCFG entries we keep.
pub const MAX_SEGMENTS: usize = 8;
/// Most tables an RSDT/XSDT may list that we look at.
pub const MAX_TABLES: usize = 64;

/// What is wrong with a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// Fewer bytes than the structure (or its own length field) needs.
    Truncated,
    /// The signature is not the one expected.
    BadSignature,
    /// The bytes do not sum to zero.
    BadChecksum,
    /// A length field that cannot be right (shorter than the header).
    BadLength,
    /// No RSDP in the area searched.
    NoRsdp,
    /// The RSDT/XSDT lists no table with this signature.
    NoTable,
}

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | u64::from(u32_at(b, at + 4)) << 32
}

/// A checked RSDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    pub revision: u8,
    pub rsdt: u32,
    /// Only for revision ≥ 2 (0 otherwise).
    pub xsdt: u64,
}

impl Rsdp {
    /// The root table to read: the XSDT when there is one, else the RSDT;
    /// `true` when it is the XSDT (64-bit entries).
    pub fn root(&self) -> (u64, bool) {
        if self.revision >= 2 && self.xsdt != 0 {
            (self.xsdt, true)
        } else {
            (u64::from(self.rsdt), false)
        }
    }
}

/// Decode an RSDP at the start of `b`, checking both checksums.
pub fn parse_rsdp(b: &[u8]) -> Result<Rsdp, AcpiError> {
    if b.len() < 20 {
        return Err(AcpiError::Truncated);
    }
    if &b[..8] != RSDP_SIGNATURE {
        return Err(AcpiError::BadSignature);
    }
    if sum(&b[..20]) != 0 {
        return Err(AcpiError::BadChecksum);
    }
    let revision = b[15];
    let rsdt = u32_at(b, 16);
    if revision < 2 {
        return Ok(Rsdp { revision, rsdt, xsdt: 0 });
    }
    if b.len() < 36 {
        return Err(AcpiError::Truncated);
    }
    let len = u32_at(b, 20) as usize;
    if len < 36 {
        return Err(AcpiError::BadLength);
    }
    if b.len() < len {
        return Err(AcpiError::Truncated);
    }
    if sum(&b[..len]) != 0 {
        return Err(AcpiError::BadChecksum);
    }
    Ok(Rsdp { revision, rsdt, xsdt: u64_at(b, 24) })
}

/// Search `area` (which starts at physical `base`) for a valid RSDP on a
/// 16-byte boundary; its physical address and contents. Candidates with a
/// bad checksum are skipped, as firmware leaves stale copies around.
pub fn find_rsdp(area: &[u8], base: u64) -> Result<(u64, Rsdp), AcpiError> {
    let mut at = 0;
    while at + 20 <= area.len() {
        if &area[at..at + 8] == RSDP_SIGNATURE {
            if let Ok(r) = parse_rsdp(&area[at..]) {
                return Ok((base + at as u64, r));
            }
        }
        at += 16;
    }
    Err(AcpiError::NoRsdp)
}

/// A checked SDT header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdtHeader {
    pub signature: [u8; 4],
    pub length: u32,
}

/// The header of the table at the start of `b` (does not check the
/// checksum: the whole table may not be in `b` yet).
pub fn sdt_header(b: &[u8]) -> Result<SdtHeader, AcpiError> {
    if b.len() < SDT_HEADER {
        return Err(AcpiError::Truncated);
    }
    let length = u32_at(b, 4);
    if (length as usize) < SDT_HEADER {
        return Err(AcpiError::BadLength);
    }
    Ok(SdtHeader { signature: [b[0], b[1], b[2], b[3]], length })
}

/// The whole table at the start of `b`, checked: its signature is `sig`
/// and its `length` bytes sum to zero. Returns exactly those bytes.
pub fn checked_table<'a>(b: &'a [u8], sig: &[u8; 4]) -> Result<&'a [u8], AcpiError> {
    let h = sdt_header(b)?;
    if &h.signature != sig {
        return Err(AcpiError::BadSignature);
    }
    let t = b.get(..h.length as usize).ok_or(AcpiError::Truncated)?;
    if sum(t) != 0 {
        return Err(AcpiError::BadChecksum);
    }
    Ok(t)
}

/// The physical addresses an RSDT (`xsdt == false`, 32-bit entries) or
/// XSDT (64-bit entries) lists.
pub fn root_entries(b: &[u8], xsdt: bool) -> Result<Vec<u64, MAX_TABLES>, AcpiError> {
    let t = checked_table(b, if xsdt { b"XSDT" } else { b"RSDT" })?;
    let width = if xsdt { 8 } else { 4 };
    let mut out = Vec::new();
    for e in t[SDT_HEADER..].chunks_exact(width).take(MAX_TABLES) {
        let a = if xsdt { u64_at(e, 0) } else { u64::from(u32_at(e, 0)) };
        // Cannot overflow: `take(MAX_TABLES)`.
        let _ = out.push(a);
    }
    Ok(out)
}

/// One ECAM window from the MCFG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecam {
    /// Physical address of bus 0's configuration space in this segment
    /// (even when `start_bus` > 0).
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

impl Ecam {
    /// The physical range that covers exactly buses `start_bus..=end_bus`.
    pub fn window(&self) -> (u64, u64) {
        let start = self.base + (u64::from(self.start_bus) << 20);
        let len = (u64::from(self.end_bus) - u64::from(self.start_bus) + 1) << 20;
        (start, len)
    }
}

/// The ECAM windows of a checked MCFG. Entries with `end_bus < start_bus`
/// or an unaligned base are refused as `BadLength`.
pub fn parse_mcfg(b: &[u8]) -> Result<Vec<Ecam, MAX_SEGMENTS>, AcpiError> {
    let t = checked_table(b, b"MCFG")?;
    if t.len() < MCFG_ENTRIES {
        return Err(AcpiError::Truncated);
    }
    let mut out = Vec::new();
    for e in t[MCFG_ENTRIES..].chunks_exact(MCFG_ENTRY).take(MAX_SEGMENTS) {
        let ecam = Ecam { base: u64_at(e, 0), segment: u16::from_le_bytes([e[8], e[9]]), start_bus: e[10], end_bus: e[11] };
        if ecam.end_bus < ecam.start_bus || ecam.base & 0xfffff != 0 {
            return Err(AcpiError::BadLength);
        }
        let _ = out.push(ecam);
    }
    Ok(out)
}
