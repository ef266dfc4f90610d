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
}
