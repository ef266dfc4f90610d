//! The `hexdump` line format: `OFFSET  16 hex bytes  |ASCII|`, as
//! `hexdump -C` prints it (without the collapsing of repeated lines).

use alloc::string::String;
use core::fmt::Write;

/// One line for up to 16 bytes at `offset`.
pub fn line(offset: u64, bytes: &[u8]) -> String {
    let mut s = String::with_capacity(80);
    let _ = write!(s, "{offset:08x} ");
    for i in 0..16 {
        if i == 8 {
            s.push(' ');
        }
        match bytes.get(i) {
            Some(b) => {
                let _ = write!(s, " {b:02x}");
            }
            None => s.push_str("   "),
        }
    }
    s.push_str("  |");
    s.extend(bytes.iter().take(16).map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }));
    s.push('|');
    s
}

/// Bytes gathered into 16-byte rows across reads (pages, sectors): each
/// full row goes out as a [`line`] as soon as it is complete.
pub struct Rows {
    row: alloc::vec::Vec<u8>,
    at: u64,
}

impl Rows {
    /// Rows starting at byte `offset`.
    pub fn new(offset: u64) -> Rows {
        Rows { row: alloc::vec::Vec::with_capacity(16), at: offset }
    }

    /// Take in `bytes`, handing each finished line to `emit`.
    pub fn push(&mut self, bytes: &[u8], emit: &mut dyn FnMut(String)) {
        for &b in bytes {
            self.row.push(b);
            if self.row.len() == 16 {
                emit(line(self.at, &self.row));
                self.at += 16;
                self.row.clear();
            }
        }
    }

    /// The last, short row (if any).
    pub fn finish(self, emit: &mut dyn FnMut(String)) {
        if !self.row.is_empty() {
            emit(line(self.at, &self.row));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hexdump_c() {
        assert_eq!(
            line(0x10, b"Welcome. This fi"),
            "00000010  57 65 6c 63 6f 6d 65 2e  20 54 68 69 73 20 66 69  |Welcome. This fi|"
        );
        assert_eq!(line(0x1000, b"\x00\x7fA"), "00001000  00 7f 41                                          |..A|");
    }

    #[test]
    fn rows_split_across_reads() {
        let mut out = alloc::vec::Vec::new();
        let mut rows = Rows::new(0x200);
        let data: alloc::vec::Vec<u8> = (0u8..40).collect();
        rows.push(&data[..10], &mut |l| out.push(l));
        rows.push(&data[10..], &mut |l| out.push(l));
        rows.finish(&mut |l| out.push(l));
        assert_eq!(out, [line(0x200, &data[..16]), line(0x210, &data[16..32]), line(0x220, &data[32..])]);
    }
}
