//! The test manifest: a list of files with their sizes and FNV-1a hashes,
//! written by the image builder on the host and checked in the guest
//! against the bytes read through VFS and RAMFS.
//!
//! One line per file: `<hash as 16 hex digits> <size> <path>`.

/// Where the image builder puts the manifest in the RAMFS.
pub const PATH: &str = "test/manifest";

/// 64-bit FNV-1a, fed in pieces.
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.update(bytes);
    h.finish()
}

/// One manifest line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub hash: u64,
    pub size: u64,
    pub path: &'a str,
}

/// The lines of a manifest (malformed lines are skipped).
pub fn parse(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.lines().filter_map(|l| {
        let mut it = l.splitn(3, ' ');
        let hash = u64::from_str_radix(it.next()?, 16).ok()?;
        let size = it.next()?.parse().ok()?;
        Some(Line { hash, size, path: it.next()? })
    })
}

/// Format one line (host side).
#[cfg(any(test, not(target_os = "none")))]
pub fn line(path: &str, data: &[u8]) -> alloc::string::String {
    alloc::format!("{:016x} {} {}\n", fnv1a64(data), data.len(), path)
}
