//! cpio "newc" archives: the format of the RAMFS boot image.
//!
//! newc is what `cpio -H newc` and the Linux initramfs use, so standard tools
//! (`cpio -itv < ramfs.img`) can list and unpack our boot image. Each entry
//! is a 110-byte ASCII header, the NUL-terminated name padded to 4 bytes,
//! then the data padded to 4 bytes; the archive ends with an entry named
//! `TRAILER!!!`.
//!
//! The reader borrows the archive and never allocates: the kernel uses it
//! before it has a heap, and servers use it on a read-only mapping.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod write;
pub use write::Writer;

const MAGIC: &[u8; 6] = b"070701";
/// The "crc" variant: the same layout with a data checksum we do not check.
const MAGIC_CRC: &[u8; 6] = b"070702";
const HEADER_LEN: usize = 110;
const TRAILER_NAME: &str = "TRAILER!!!";
const TRAILER: &[u8] = TRAILER_NAME.as_bytes();

/// File-type bits of `mode` for a regular file.
pub const MODE_FILE: u32 = 0o100000;
/// File-type bits of `mode` for a directory.
pub const MODE_DIR: u32 = 0o040000;
/// File-type bits of `mode` for a symbolic link.
pub const MODE_SYMLINK: u32 = 0o120000;
const MODE_TYPE_MASK: u32 = 0o170000;

/// What is wrong with an archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The archive ends inside a header, name or data.
    Truncated,
    /// A header does not start with the newc magic.
    BadMagic,
    /// A header field is not hexadecimal.
    BadNumber,
    /// A name is empty, not NUL-terminated, or not UTF-8.
    BadName,
    /// No `TRAILER!!!` entry before the end.
    NoTrailer,
}

/// One archive member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path inside the archive, without a leading `./` or `/`.
    pub name: &'a str,
    /// Unix mode bits, file type included.
    pub mode: u32,
    /// File contents.
    pub data: &'a [u8],
    /// Inode number, link count and device: hard links share
    /// `(dev_major, dev_minor, ino)`, and GNU cpio stores their data with
    /// the last one only.
    pub ino: u32,
    pub nlink: u32,
    pub dev_major: u32,
    pub dev_minor: u32,
}

impl Entry<'_> {
    /// A regular file (not a directory, link or device).
    pub fn is_file(&self) -> bool {
        self.mode & MODE_TYPE_MASK == MODE_FILE
    }

    /// A directory.
    pub fn is_dir(&self) -> bool {
        self.mode & MODE_TYPE_MASK == MODE_DIR
    }
}

/// A parsed view of an archive.
#[derive(Clone, Copy, Debug)]
pub struct Archive<'a> {
    bytes: &'a [u8],
}

impl<'a> Archive<'a> {
    /// Check the whole archive once, so iteration afterwards cannot fail.
    pub fn new(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut off = 0;
        loop {
            match parse_at(bytes, off)? {
                (None, _) => return Ok(Archive { bytes }),
                (Some(_), next) => off = next,
            }
        }
    }

    /// The members, in archive order, trailer excluded.
    pub fn entries(&self) -> Entries<'a> {
        Entries { bytes: self.bytes, off: 0 }
    }

    /// The member with this name (a leading `/` or `./` is ignored).
    pub fn find(&self, name: &str) -> Option<Entry<'a>> {
        let name = normalise(name);
        self.entries().find(|e| e.name == name)
    }
}

/// Iterator over the members of a checked [`Archive`].
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    bytes: &'a [u8],
    off: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;
    fn next(&mut self) -> Option<Entry<'a>> {
        // The archive was validated in `Archive::new`, so errors cannot occur.
        match parse_at(self.bytes, self.off) {
            Ok((Some(e), next)) => {
                self.off = next;
                Some(e)
            }
            _ => None,
        }
    }
}

fn normalise(name: &str) -> &str {
    let name = name.strip_prefix("./").unwrap_or(name);
    name.trim_start_matches('/')
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn hex_field(header: &[u8], index: usize) -> Result<u32, Error> {
    let field = &header[6 + index * 8..6 + (index + 1) * 8];
    let mut v: u32 = 0;
    for &c in field {
        let d = (c as char).to_digit(16).ok_or(Error::BadNumber)?;
        v = (v << 4) | d;
    }
    Ok(v)
}

/// Parse the entry at `off`: `(None, _)` for the trailer.
fn parse_at(bytes: &[u8], off: usize) -> Result<(Option<Entry<'_>>, usize), Error> {
    let header = bytes.get(off..off + HEADER_LEN).ok_or(if off >= bytes.len() {
        Error::NoTrailer
    } else {
        Error::Truncated
    })?;
    if &header[..6] != MAGIC && &header[..6] != MAGIC_CRC {
        return Err(Error::BadMagic);
    }
    let mode = hex_field(header, 1)?;
    let file_size = hex_field(header, 6)? as usize;
    let name_size = hex_field(header, 11)? as usize;
    if name_size == 0 {
        return Err(Error::BadName);
    }
    let name_start = off + HEADER_LEN;
    let name_bytes = bytes
        .get(name_start..name_start + name_size)
        .ok_or(Error::Truncated)?;
    let (nul, name_bytes) = name_bytes.split_last().ok_or(Error::BadName)?;
    if *nul != 0 || name_bytes.contains(&0) {
        return Err(Error::BadName);
    }
    let name = core::str::from_utf8(name_bytes).map_err(|_| Error::BadName)?;
    let data_start = align4(name_start + name_size);
    let data_end = data_start.checked_add(file_size).ok_or(Error::Truncated)?;
    let data = bytes.get(data_start..data_end).ok_or(Error::Truncated)?;
    if name_bytes == TRAILER {
        return Ok((None, data_end));
    }
    let entry = Entry {
        name: normalise(name),
        mode,
        data,
        ino: hex_field(header, 0)?,
        nlink: hex_field(header, 4)?,
        dev_major: hex_field(header, 7)?,
        dev_minor: hex_field(header, 8)?,
    };
    Ok((Some(entry), align4(data_end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A newc archive laid out field by field as the format defines it,
    /// independently of our writer (the image builder's tests also check
    /// GNU cpio against our writer).
    fn gnu_sample() -> Vec<u8> {
        let mut v = Vec::new();
        let mut add = |name: &str, mode: u32, data: &[u8]| {
            let h = format!(
                "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
                0, mode, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0
            );
            v.extend_from_slice(h.as_bytes());
            v.extend_from_slice(name.as_bytes());
            v.push(0);
            while v.len() % 4 != 0 {
                v.push(0);
            }
            v.extend_from_slice(data);
            while v.len() % 4 != 0 {
                v.push(0);
            }
        };
        add("a.txt", 0o100644, b"hi\n");
        add("d", 0o040755, b"");
        add("d/b", 0o100644, b"x");
        add("TRAILER!!!", 0, b"");
        v
    }

    #[test]
    fn reads_members() {
        let bytes = gnu_sample();
        let a = Archive::new(&bytes).unwrap();
        let names: Vec<_> = a.entries().map(|e| e.name).collect();
        assert_eq!(names, ["a.txt", "d", "d/b"]);
        let f = a.find("/a.txt").unwrap();
        assert_eq!(f.data, b"hi\n");
        assert!(f.is_file());
        assert!(!a.find("d").unwrap().is_file());
        assert!(a.find("d").unwrap().is_dir());
        assert_eq!(a.find("d/b").unwrap().ino, 0);
        assert_eq!(a.find("d/b").unwrap().nlink, 1);
        assert_eq!(a.find("./d/b").unwrap().data, b"x");
        assert!(a.find("nope").is_none());
    }

    #[test]
    fn rejects_damage() {
        let bytes = gnu_sample();
        // Every truncation point is an error, never a panic.
        for cut in 0..bytes.len() - 1 {
            assert!(Archive::new(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut crc = bytes.clone();
        crc[5] = b'2';
        assert_eq!(Archive::new(&crc).unwrap().entries().count(), 3, "the crc variant reads too");
        let mut bad = bytes.clone();
        bad[0] = b'1';
        assert_eq!(Archive::new(&bad).unwrap_err(), Error::BadMagic);
        let mut bad = bytes.clone();
        bad[6 + 6 * 8] = b'z';
        assert_eq!(Archive::new(&bad).unwrap_err(), Error::BadNumber);
        // File size pointing past the end.
        let mut bad = bytes.clone();
        bad[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"7FFFFFFF");
        assert_eq!(Archive::new(&bad).unwrap_err(), Error::Truncated);
    }
}
