//! Kernel console logging with levels.
//!
//! Messages go straight to the architecture's console (the serial port on
//! x86, stderr on the host) with a level prefix. The level filter is set from
//! the kernel command line (`loglevel=debug`); errors always print.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, Ordering};

/// Message importance; lower is more important.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
    Trace = 4,
}

impl Level {
    /// Parse a command-line level name.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }
}

static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Show messages up to and including `level`.
pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages at `level` are shown.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// The console as a `fmt::Write`.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        crate::arch::console_write(s.as_bytes());
        Ok(())
    }
}

#[doc(hidden)]
pub fn log(level: Level, args: fmt::Arguments) {
    if enabled(level) {
        let tag = match level {
            Level::Error => "[error] ",
            Level::Warn => "[warn ] ",
            Level::Info => "[info ] ",
            Level::Debug => "[debug] ",
            Level::Trace => "[trace] ",
        };
        let _ = Console.write_str(tag);
        let _ = Console.write_fmt(args);
        let _ = Console.write_str("\n");
    }
}

/// Log at an explicit level.
#[macro_export]
macro_rules! klog {
    ($lvl:expr, $($arg:tt)*) => { $crate::log::log($lvl, format_args!($($arg)*)) };
}
#[macro_export]
macro_rules! error { ($($arg:tt)*) => { $crate::klog!($crate::log::Level::Error, $($arg)*) }; }
#[macro_export]
macro_rules! warn { ($($arg:tt)*) => { $crate::klog!($crate::log::Level::Warn, $($arg)*) }; }
#[macro_export]
macro_rules! info { ($($arg:tt)*) => { $crate::klog!($crate::log::Level::Info, $($arg)*) }; }
#[macro_export]
macro_rules! debug { ($($arg:tt)*) => { $crate::klog!($crate::log::Level::Debug, $($arg)*) }; }
#[macro_export]
macro_rules! trace { ($($arg:tt)*) => { $crate::klog!($crate::log::Level::Trace, $($arg)*) }; }
