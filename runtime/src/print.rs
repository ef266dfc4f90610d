//! Console output through the `DebugPrint` syscall, a line at a time.

use core::fmt::{self, Write};

use abi::call::PrintArgs;
use abi::SyscallClass;

/// Write raw bytes to the console.
pub fn write_bytes(bytes: &[u8]) {
    for chunk in bytes.chunks(abi::limits::PRINT_LEN) {
        let args = PrintArgs { ptr: chunk.as_ptr() as u64, len: chunk.len() as u64 };
        let _ = crate::sys::calls::DEBUG_PRINT.call(crate::class_token(SyscallClass::DebugPrint), args);
    }
}

/// Collects formatted text and writes it in as few syscalls as possible, so
/// lines from different programs do not interleave mid-line.
pub struct LineWriter {
    buf: [u8; 512],
    len: usize,
}

impl LineWriter {
    pub const fn new() -> Self {
        LineWriter { buf: [0; 512], len: 0 }
    }

    pub fn flush(&mut self) {
        if self.len > 0 {
            write_bytes(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for LineWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let mut w = LineWriter::new();
    let _ = w.write_fmt(args);
    w.flush();
}

/// Print to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print::_print(format_args!($($arg)*)) };
}

/// Print a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::print::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::print::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
