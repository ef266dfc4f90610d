//! Building newc archives (used by the image builder on the host).

use alloc::vec::Vec;

use crate::{align4, MODE_DIR, MODE_FILE};

/// Builds an archive in memory.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
    next_ino: u32,
}

impl Writer {
    pub fn new() -> Self {
        Writer { out: Vec::new(), next_ino: 1 }
    }

    /// Add a regular file with permission bits `perm` (e.g. `0o755`).
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, MODE_FILE | (perm & 0o7777), data)
    }

    /// Add a directory.
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, MODE_DIR | 0o755, &[])
    }

    /// Add the trailer and return the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.next_ino = 0;
        self.entry(crate::TRAILER_NAME, 0, &[]);
        // Pad to 512 bytes like GNU cpio, so tools that read in blocks are happy.
        self.out.resize(self.out.len().next_multiple_of(512), 0);
        self.out
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        let ino = self.next_ino;
        self.next_ino += 1;
        let fields = [
            ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(crate::MAGIC);
        for f in fields {
            for shift in (0..8).rev() {
                let digit = (f >> (shift * 4)) & 0xf;
                self.out.push(b"0123456789ABCDEF"[digit as usize]);
            }
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.out.resize(align4(self.out.len()), 0);
        self.out.extend_from_slice(data);
        self.out.resize(align4(self.out.len()), 0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Archive;

    #[test]
    fn round_trip() {
        let mut w = Writer::new();
        let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        w.dir("bin").file("bin/system", 0o755, &big).file("etc/x", 0o644, b"");
        let bytes = w.finish();
        assert_eq!(bytes.len() % 512, 0);
        let a = Archive::new(&bytes).unwrap();
        let e: Vec<_> = a.entries().collect();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].name, "bin/system");
        assert_eq!(e[1].data, &big[..]);
        assert_eq!(e[1].mode, 0o100755);
        assert_eq!(e[2].data, b"");
    }
}
