//! The few ACPI structures both sides of the boot handover read: the RSDP
//! (Root System Description Pointer) and the header every system table
//! starts with.
//!
//! The kernel finds the RSDP (a copy from the multiboot-2 loader, or a scan
//! of the BIOS area under multiboot 1) and hands it to user space; `system`
//! (and later DEVMAN) checks it and the table it points to. Both use these
//! checks, so "valid" means the same thing on both sides: the signature, the
//! byte-sum checksum (and the extended one of ACPI 2.0+), and a length that
//! fits what was read.

#![no_std]

/// `"RSD PTR "`, at offset 0 of the RSDP.
pub const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";
/// Bytes of an ACPI 1.0 RSDP (covered by the first checksum).
pub const RSDP_V1_LEN: usize = 20;
/// Bytes of an ACPI 2.0+ RSDP (covered by the extended checksum).
pub const RSDP_V2_LEN: usize = 36;
/// Bytes of a system-table header.
pub const SDT_HEADER_LEN: usize = 36;

/// Why a structure is not valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// Fewer bytes than the structure needs.
    Short,
    /// The signature is not the expected one.
    BadSignature,
    /// The bytes do not sum to 0 (mod 256).
    BadChecksum,
    /// The length field is impossible (smaller than the header).
    BadLength,
}

/// True when the bytes sum to 0 modulo 256.
pub fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0
}

/// A checked RSDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    /// 0 for ACPI 1.0, 2 for 2.0 and later.
    pub revision: u8,
    pub oem_id: [u8; 6],
    /// Physical address of the RSDT.
    pub rsdt: u32,
    /// Physical address of the XSDT (revision 2 and later), else 0.
    pub xsdt: u64,
    /// Bytes the structure covers (20 or its length field).
    pub len: usize,
}

impl Rsdp {
    /// Check and read an RSDP at the start of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Rsdp, AcpiError> {
        if bytes.len() < RSDP_V1_LEN {
            return Err(AcpiError::Short);
        }
        if &bytes[..8] != RSDP_SIGNATURE {
            return Err(AcpiError::BadSignature);
        }
        if !checksum_ok(&bytes[..RSDP_V1_LEN]) {
            return Err(AcpiError::BadChecksum);
        }
        let mut r = Rsdp {
            revision: bytes[15],
            oem_id: bytes[9..15].try_into().unwrap(),
            rsdt: u32::from_le_bytes(bytes[16..20].try_into().unwrap()),
            xsdt: 0,
            len: RSDP_V1_LEN,
        };
        if r.revision >= 2 {
            if bytes.len() < RSDP_V2_LEN {
                return Err(AcpiError::Short);
            }
            let len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
            if len < RSDP_V2_LEN {
                return Err(AcpiError::BadLength);
            }
            // The extended checksum covers `len` bytes; only the 36 defined
            // ones are kept, so a longer structure must still be all here.
            let covered = bytes.get(..len).ok_or(AcpiError::Short)?;
            if !checksum_ok(covered) {
                return Err(AcpiError::BadChecksum);
            }
            r.xsdt = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
            r.len = len;
        }
        Ok(r)
    }

    /// The root table to read: the XSDT when there is one, else the RSDT.
    pub fn root_table(&self) -> (u64, &'static [u8; 4]) {
        if self.xsdt != 0 {
            (self.xsdt, b"XSDT")
        } else {
            (self.rsdt as u64, b"RSDT")
        }
    }
}

/// The length a system table's header claims (to know how much to map).
pub fn sdt_length(header: &[u8]) -> Result<usize, AcpiError> {
    let len = header.get(4..8).ok_or(AcpiError::Short)?;
    let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
    if len < SDT_HEADER_LEN {
        return Err(AcpiError::BadLength);
    }
    Ok(len)
}

/// Check a whole system table (`bytes` at least its length) against the
/// expected signature; returns its length.
pub fn check_sdt(bytes: &[u8], signature: &[u8; 4]) -> Result<usize, AcpiError> {
    let len = sdt_length(bytes)?;
    if &bytes[..4] != signature {
        return Err(AcpiError::BadSignature);
    }
    let table = bytes.get(..len).ok_or(AcpiError::Short)?;
    if !checksum_ok(table) {
        return Err(AcpiError::BadChecksum);
    }
    Ok(len)
}

/// Find a valid RSDP on a 16-byte boundary in `area` (the BIOS scan of
/// ACPI §5.2.5.1); returns its offset.
pub fn scan_rsdp(area: &[u8]) -> Option<usize> {
    (0..area.len().saturating_sub(RSDP_V1_LEN - 1)).step_by(16).find(|&at| Rsdp::parse(&area[at..]).is_ok())
}

pub mod madt;

#[cfg(test)]
mod tests {
    use super::*;

    /// Fill in the checksum byte at `at` so `bytes` sums to 0.
    fn fix(bytes: &mut [u8], at: usize) {
        bytes[at] = 0;
        bytes[at] = 0u8.wrapping_sub(bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)));
    }

    pub fn rsdp_v2(xsdt: u64) -> [u8; 36] {
        let mut r = [0u8; 36];
        r[..8].copy_from_slice(RSDP_SIGNATURE);
        r[9..15].copy_from_slice(b"BOCHS ");
        r[15] = 2;
        r[16..20].copy_from_slice(&0x7fe1000u32.to_le_bytes());
        r[20..24].copy_from_slice(&36u32.to_le_bytes());
        r[24..32].copy_from_slice(&xsdt.to_le_bytes());
        fix(&mut r[..20], 8);
        fix(&mut r, 32);
        r
    }

    #[test]
    fn a_valid_rsdp_parses() {
        let r = Rsdp::parse(&rsdp_v2(0x7fe2000)).unwrap();
        assert_eq!((r.revision, r.rsdt, r.xsdt, r.len), (2, 0x7fe1000, 0x7fe2000, 36));
        assert_eq!(&r.oem_id, b"BOCHS ");
        assert_eq!(r.root_table(), (0x7fe2000, b"XSDT"));
        let mut v1 = rsdp_v2(0);
        v1[15] = 0;
        fix(&mut v1[..20], 8);
        let r = Rsdp::parse(&v1[..20]).unwrap();
        assert_eq!(r.root_table(), (0x7fe1000, b"RSDT"));
    }

    #[test]
    fn every_byte_is_covered_by_a_checksum() {
        let good = rsdp_v2(0x7fe2000);
        for i in 0..good.len() {
            let mut bad = good;
            bad[i] ^= 0x40;
            assert!(Rsdp::parse(&bad).is_err(), "a flipped byte {i} went unnoticed");
        }
        assert_eq!(Rsdp::parse(&good[..30]), Err(AcpiError::Short));
    }

    #[test]
    fn tables_are_checked_whole() {
        let mut t = [0u8; 44];
        t[..4].copy_from_slice(b"XSDT");
        t[4..8].copy_from_slice(&44u32.to_le_bytes());
        t[36..44].copy_from_slice(&0x7fe3000u64.to_le_bytes());
        fix(&mut t, 9);
        assert_eq!(check_sdt(&t, b"XSDT"), Ok(44));
        assert_eq!(check_sdt(&t, b"RSDT"), Err(AcpiError::BadSignature));
        assert_eq!(check_sdt(&t[..40], b"XSDT"), Err(AcpiError::Short));
        let mut bad = t;
        bad[40] ^= 1;
        assert_eq!(check_sdt(&bad, b"XSDT"), Err(AcpiError::BadChecksum));
        bad[4] = 8;
        assert_eq!(sdt_length(&bad), Err(AcpiError::BadLength));
    }

    #[test]
    fn the_scan_finds_only_valid_pointers_on_16_byte_boundaries() {
        let mut area = [0u8; 256];
        let r = rsdp_v2(0x1000);
        area[40..76].copy_from_slice(&r); // not 16-byte aligned
        assert_eq!(scan_rsdp(&area), None);
        area[0x80..0x80 + 8].copy_from_slice(RSDP_SIGNATURE); // bad checksum
        area[0xa0..0xa0 + 36].copy_from_slice(&r);
        assert_eq!(scan_rsdp(&area), Some(0xa0));
    }
}
