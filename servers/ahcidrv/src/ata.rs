//! AHCI command construction and IDENTIFY decoding: plain functions over
//! byte arrays, so they are tested on the host (AHCI 1.3.1 §4.2, ACS-3).
//!
//! The driver keeps one command slot per port in one DMA page:
//! command list at [`CLB`] (32 headers, 1 KiB-aligned), received-FIS area
//! at [`FB`] (256 B-aligned), command table at [`CTBA`] (128 B-aligned)
//! with its PRDT at `CTBA + 0x80`.

/// Offsets in the per-port DMA page.
pub const CLB: usize = 0;
pub const FB: usize = 0x400;
pub const CTBA: usize = 0x800;
/// The PRDT inside the command table.
pub const PRDT: usize = CTBA + 0x80;

/// ATA commands.
pub const IDENTIFY: u8 = 0xec;
pub const READ_DMA_EXT: u8 = 0x25;
pub const WRITE_DMA_EXT: u8 = 0x35;
pub const FLUSH_CACHE_EXT: u8 = 0xea;

/// Port signatures (PxSIG).
pub const SIG_ATA: u32 = 0x0000_0101;
pub const SIG_ATAPI: u32 = 0xeb14_0101;

/// A host-to-device register FIS (20 bytes) for `command` at `lba` for
/// `count` sectors (LBA mode, 48-bit fields).
pub fn h2d_fis(command: u8, lba: u64, count: u16) -> [u8; 20] {
    let mut f = [0u8; 20];
    f[0] = 0x27; // register FIS, host to device
    f[1] = 0x80; // C: this is a command
    f[2] = command;
    f[4] = lba as u8;
    f[5] = (lba >> 8) as u8;
    f[6] = (lba >> 16) as u8;
    f[7] = 1 << 6; // LBA mode
    f[8] = (lba >> 24) as u8;
    f[9] = (lba >> 32) as u8;
    f[10] = (lba >> 40) as u8;
    f[12] = count as u8;
    f[13] = (count >> 8) as u8;
    f
}

/// Command header DW0..DW3 for a 5-dword FIS, `prdtl` PRDT entries,
/// `write` (host to device), and the command table at `ctba`.
pub fn command_header(write: bool, prdtl: u16, ctba: u64) -> [u32; 4] {
    let dw0 = 5 | if write { 1 << 6 } else { 0 } | (prdtl as u32) << 16;
    [dw0, 0, ctba as u32, (ctba >> 32) as u32]
}

/// Why a PRDT entry cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrdError {
    /// The byte count is zero, odd, or above 4 MiB.
    BadLength,
    /// The buffer is not word-aligned.
    Misaligned,
}

/// A PRDT entry for `len` bytes at physical `addr`, interrupting on completion.
pub fn prd(addr: u64, len: usize) -> Result<[u32; 4], PrdError> {
    if len == 0 || !len.is_multiple_of(2) || len > 4 << 20 {
        return Err(PrdError::BadLength);
    }
    if !addr.is_multiple_of(2) {
        return Err(PrdError::Misaligned);
    }
    Ok([addr as u32, (addr >> 32) as u32, 0, (len as u32 - 1) | 1 << 31])
}

/// What IDENTIFY DEVICE says about a disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub model: heapless::String<40>,
    pub serial: heapless::String<20>,
    /// Addressable sectors (LBA48 count if supported, else LBA28).
    pub sectors: u64,
    /// Logical sector size in bytes.
    pub sector_size: u32,
}

/// An ATA string: two characters per word, the first in the high byte;
/// trailing spaces dropped, non-ASCII shown as `?`.
pub fn ata_string<const N: usize>(words: &[u16]) -> heapless::String<N> {
    let mut s = heapless::String::new();
    for w in words {
        for b in [(w >> 8) as u8, *w as u8] {
            let c = if b.is_ascii_graphic() || b == b' ' { b as char } else { '?' };
            let _ = s.push(c);
        }
    }
    let trimmed = s.trim_end().len();
    s.truncate(trimmed);
    let lead = s.len() - s.trim_start().len();
    if lead > 0 {
        let t: heapless::String<N> = heapless::String::try_from(&s[lead..]).unwrap_or_default();
        return t;
    }
    s
}

/// Decode the 256 words of IDENTIFY DEVICE.
pub fn identify(w: &[u16; 256]) -> Identity {
    let lba28 = w[60] as u64 | (w[61] as u64) << 16;
    let lba48 = w[100] as u64 | (w[101] as u64) << 16 | (w[102] as u64) << 32 | (w[103] as u64) << 48;
    let sectors = if w[83] & (1 << 10) != 0 && lba48 != 0 { lba48 } else { lba28 };
    let sector_size = if w[106] & 0xc000 == 0x4000 && w[106] & (1 << 12) != 0 {
        2 * (w[117] as u32 | (w[118] as u32) << 16)
    } else {
        512
    };
    Identity { model: ata_string(&w[27..47]), serial: ata_string(&w[10..20]), sectors, sector_size }
}

/// Little-endian words from IDENTIFY's 512 bytes.
pub fn words(bytes: &[u8; 512]) -> [u16; 256] {
    let mut w = [0u16; 256];
    for (i, x) in w.iter_mut().enumerate() {
        *x = u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fis_fields() {
        let f = h2d_fis(READ_DMA_EXT, 0x0000_a1b2_c3d4_e5f6, 0x0102);
        assert_eq!(&f[..4], &[0x27, 0x80, 0x25, 0]);
        assert_eq!(&f[4..7], &[0xf6, 0xe5, 0xd4]);
        assert_eq!(f[7], 0x40, "LBA mode bit");
        assert_eq!(&f[8..11], &[0xc3, 0xb2, 0xa1]);
        assert_eq!(&f[12..14], &[0x02, 0x01]);
        assert!(f[14..].iter().all(|&b| b == 0));
    }

    #[test]
    fn header_and_prd() {
        assert_eq!(command_header(false, 1, 0x1_2345_6880), [5 | 1 << 16, 0, 0x2345_6880, 1]);
        assert_eq!(command_header(true, 2, 0x800)[0], 5 | 1 << 6 | 2 << 16);
        assert_eq!(prd(0x1234_5000, 4096), Ok([0x1234_5000, 0, 0, 4095 | 1 << 31]));
        assert_eq!(prd(0x10_0000_0000, 512).unwrap()[1], 0x10);
        assert_eq!(prd(0x1000, 0), Err(PrdError::BadLength));
        assert_eq!(prd(0x1000, 3), Err(PrdError::BadLength));
        assert_eq!(prd(0x1000, (4 << 20) + 2), Err(PrdError::BadLength));
        assert_eq!(prd(0x1001, 2), Err(PrdError::Misaligned));
    }

    fn put(w: &mut [u16; 256], at: usize, s: &str) {
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            w[at + i] = (pair[0] as u16) << 8 | *pair.get(1).unwrap_or(&b' ') as u16;
        }
    }

    #[test]
    fn identify_strings_and_capacity() {
        let mut w = [0u16; 256];
        for x in &mut w[10..47] {
            *x = 0x2020;
        }
        put(&mut w, 27, "QEMU HARDDISK");
        put(&mut w, 10, "  QM00001");
        w[60] = 0x1000;
        w[61] = 0x0001; // LBA28: 0x11000
        let id = identify(&w);
        assert_eq!(id.model.as_str(), "QEMU HARDDISK", "byte order within words");
        assert_eq!(id.serial.as_str(), "QM00001");
        assert_eq!(id.sectors, 0x11000, "LBA28 when LBA48 is not supported");
        assert_eq!(id.sector_size, 512);
        w[83] = 1 << 10;
        w[100] = 0x0000;
        w[101] = 0x0002;
        w[102] = 0x0001; // 0x1_0002_0000
        assert_eq!(identify(&w).sectors, 0x1_0002_0000);
        w[106] = 0x4000 | 1 << 12;
        w[117] = 2048;
        assert_eq!(identify(&w).sector_size, 4096, "words, not bytes");
        w[27] = 0x41ff;
        assert!(identify(&w).model.starts_with("A?"));
    }

    #[test]
    fn words_are_little_endian() {
        let mut b = [0u8; 512];
        b[0] = 0x34;
        b[1] = 0x12;
        assert_eq!(words(&b)[0], 0x1234);
    }
}
