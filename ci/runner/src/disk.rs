//! Disk images for the `disk`, `disk-cdrom` and `disk-none` checks (and
//! one disk for the benchmark's reads and for `plain-disk`, the plain boot
//! with a disk attached; both must leave it unchanged).
//!
//! Before the boot the runner fills raw images with random bytes and
//! attaches them to q35's AHCI controller (ports 0 and 1, QEMU's `ide.0`
//! and `ide.1`); after QEMU exits it checks what the guest reported and
//! what it wrote:
//! - every `disk: hash <disk> <lba> <count> <fnv1a> <before|after>` line the
//!   guest must print matches the hash of those sectors of the image it
//!   was given (reads before and after the driver's restarts, its own
//!   and its PCIDRV's);
//! - the pattern the guest wrote is in the image file, and no other byte
//!   of either image changed.
//!
//! The sector list, the write places and the pattern are those of
//! `ci/ktest/src/suites/disk.rs` (kept in step by hand: this runner is
//! std-only).

use std::path::{Path, PathBuf};

/// Sectors per read and per write (`ahcidrv::proto::{MAX_READ, MAX_WRITE}`).
const MAX_READ: u64 = 8;
const MAX_WRITE: u64 = 7;
const SECTOR: usize = 512;
/// Image sizes in sectors, by disk index.
const SIZES: [u64; 2] = [8192, 4096];
/// Where the guest writes its pattern: (disk, lba, sectors): page writes
/// (`MAX_WRITE`) and writes through the attached buffer
/// (`ahcidrv::proto::MAX_BUF_WRITE`).
const WRITES: [(usize, u64, u64); 4] = [(0, 2048, MAX_WRITE), (1, 16, MAX_WRITE), (0, 4096, MAX_BUF_WRITE), (1, 1024, MAX_BUF_WRITE)];
/// Sectors per write through the attached buffer.
const MAX_BUF_WRITE: u64 = 128;

fn reads(sectors: u64) -> [(u64, u64); 3] {
    [(0, MAX_READ), (1000, 3), (sectors - MAX_READ, MAX_READ)]
}

fn pattern(disk: usize, lba: u64, i: usize) -> u8 {
    ((i as u64 * 31 + disk as u64 * 101 + lba) % 251) as u8
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The images of one boot and the QEMU arguments that attach them.
pub struct Setup {
    images: Vec<(PathBuf, Vec<u8>)>,
    pub qemu_args: Vec<String>,
    /// Lines the boot must print besides the hashes.
    must_print: Vec<String>,
    /// The guest reads known sectors and writes its pattern (the `disk`
    /// suites); otherwise (the benchmark) the images must stay unchanged.
    data_checks: bool,
}

/// Random bytes (xorshift seeded from the clock: different every run).
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

/// The disks check `name` boots with, made in `dir`; `None` for other checks.
pub fn prepare(dir: &Path, name: &str) -> Result<Option<Setup>, String> {
    let (disks, cdrom) = match name {
        "disk" => (2, false),
        "disk-cdrom" => (1, true),
        "disk-none" => (0, false),
        "bench" | "plain-disk" | "shell" => (1, false),
        _ => return Ok(None),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let mut s = Setup { images: Vec::new(), qemu_args: Vec::new(), must_print: Vec::new(), data_checks: !matches!(name, "bench" | "plain-disk" | "shell") };
    for (n, &size) in SIZES.iter().enumerate().take(disks) {
        let path = dir.join(format!("{name}-{n}.img"));
        let bytes = random_bytes(size as usize * SECTOR, seed.wrapping_mul(n as u64 + 7));
        std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        s.qemu_args.extend([
            "-drive".into(),
            format!("if=none,id=d{n},file={},format=raw", path.display()),
            "-device".into(),
            format!("ide-hd,drive=d{n},bus=ide.{n}"),
        ]);
        s.images.push((path, bytes));
    }
    if cdrom {
        let port = disks;
        s.qemu_args.extend([
            "-drive".into(),
            "if=none,id=cd0,media=cdrom".into(),
            "-device".into(),
            format!("ide-cd,drive=cd0,bus=ide.{port}"),
        ]);
        s.must_print.push(format!("ahcidrv: port {port}: ATAPI device (not a disk), skipped"));
    }
    s.must_print.push(format!("ahcidrv: serving {disks} disk(s)"));
    Ok(Some(s))
}

impl Setup {
    /// The bytes disk `n` was made with.
    pub fn image(&self, n: usize) -> Option<&[u8]> {
        self.images.get(n).map(|(_, b)| b.as_slice())
    }

    /// What is wrong with the guest's report `lines` and the images now.
    pub fn verify(&self, lines: &[String]) -> Vec<String> {
        let mut problems = Vec::new();
        let printed = |want: &str| lines.iter().any(|l| l.trim_end() == want);
        for want in &self.must_print {
            if !printed(want) {
                problems.push(format!("missing line `{want}`"));
            }
        }
        for (n, (path, original)) in self.images.iter().enumerate() {
            let sectors = (original.len() / SECTOR) as u64;
            for (lba, count) in reads(sectors).into_iter().filter(|_| self.data_checks) {
                let bytes = &original[lba as usize * SECTOR..(lba + count) as usize * SECTOR];
                for when in ["before", "after"] {
                    let want = format!("disk: hash {n} {lba} {count} {:016x} {when}", fnv1a(bytes));
                    if !printed(&want) {
                        problems.push(format!("disk {n}: no line `{want}` (the guest read other bytes, or nothing)"));
                    }
                }
            }
            let now = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => {
                    problems.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            let mut expected = original.clone();
            for &(_, lba, count) in WRITES.iter().filter(|w| w.0 == n && self.data_checks) {
                let at = lba as usize * SECTOR;
                for i in 0..count as usize * SECTOR {
                    expected[at + i] = pattern(n, lba, i);
                }
            }
            if now.len() != expected.len() {
                problems.push(format!("disk {n}: image is {} bytes, was {}", now.len(), expected.len()));
            } else if let Some(i) = now.iter().zip(&expected).position(|(a, b)| a != b) {
                problems.push(format!(
                    "disk {n}: byte {i} (sector {}) is {:#04x}, expected {:#04x} (the written pattern, or the original byte)",
                    i / SECTOR,
                    now[i],
                    expected[i]
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_catches_wrong_hashes_and_bytes() {
        let dir = std::env::temp_dir().join(format!("ci-disk-test-{}", std::process::id()));
        let s = prepare(&dir, "disk").unwrap().unwrap();
        assert_eq!(s.images.len(), 2);
        assert!(s.qemu_args.iter().any(|a| a == "ide-hd,drive=d1,bus=ide.1"));
        // A guest that read right and wrote right.
        let mut lines = vec!["ahcidrv: serving 2 disk(s)".to_string()];
        for (n, (path, original)) in s.images.iter().enumerate() {
            for (lba, count) in reads((original.len() / SECTOR) as u64) {
                let h = fnv1a(&original[lba as usize * SECTOR..(lba + count) as usize * SECTOR]);
                lines.push(format!("disk: hash {n} {lba} {count} {h:016x} before"));
                lines.push(format!("disk: hash {n} {lba} {count} {h:016x} after"));
            }
            let mut b = original.clone();
            for &(_, lba, count) in WRITES.iter().filter(|w| w.0 == n) {
                for i in 0..count as usize * SECTOR {
                    b[lba as usize * SECTOR + i] = pattern(n, lba, i);
                }
            }
            std::fs::write(path, &b).unwrap();
        }
        assert_eq!(s.verify(&lines), Vec::<String>::new());
        // A guest that skipped the write through the buffer left the
        // original bytes there.
        let (path0, original0) = &s.images[0];
        let good = std::fs::read(path0).unwrap();
        let mut skipped = good.clone();
        let (at, end) = (4096 * SECTOR, (4096 + MAX_BUF_WRITE as usize) * SECTOR);
        skipped[at..end].copy_from_slice(&original0[at..end]);
        std::fs::write(path0, &skipped).unwrap();
        let p = s.verify(&lines);
        assert!(p.len() == 1 && p[0].contains("sector 4096"), "{p:?}");
        std::fs::write(path0, &good).unwrap();
        // One wrong hash, one stray byte.
        lines[1] = lines[1].replace(" before", "0 before");
        let (path, _) = &s.images[1];
        let mut b = std::fs::read(path).unwrap();
        b[5] ^= 1;
        std::fs::write(path, &b).unwrap();
        let p = s.verify(&lines);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[1].contains("byte 5"), "{p:?}");
        // The benchmark's disk must come back unchanged, and needs no hash lines.
        let b = prepare(&dir, "bench").unwrap().unwrap();
        assert_eq!(b.verify(&["ahcidrv: serving 1 disk(s)".to_string()]), Vec::<String>::new());
        let mut bytes = std::fs::read(&b.images[0].0).unwrap();
        bytes[2048 * SECTOR] ^= 0xff;
        std::fs::write(&b.images[0].0, &bytes).unwrap();
        assert_eq!(b.verify(&["ahcidrv: serving 1 disk(s)".to_string()]).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(prepare(&dir, "ipc").unwrap().is_none());
    }
}
