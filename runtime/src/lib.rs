//! The runtime every user program links: start-up, safe syscall wrappers,
//! a heap, console printing, and loading programs from the RAMFS.
//!
//! A program is a `no_std`, `no_main` binary that names its entry with
//! [`entry!`]. `_start` reads the start block the spawner left on the stack
//! (arguments and capabilities, [`abi::start`]), sets up the heap and calls
//! the entry; its return value is the exit code. A panic prints its message
//! and exits with code 101.
//!
//! On the host (for `cargo test` of program logic) the syscall layer is
//! absent: every call fails with `UnknownSyscall`.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod caps;
pub mod ipc;
pub mod irq;
pub mod mem;
pub mod print;
pub mod rpc;
pub mod process;
pub mod ramfs;
pub mod sys;
pub mod time;

#[cfg(target_os = "none")]
mod start;

pub use abi::Error;
pub use caps::{class_token, init_cap};

/// Arguments a program was started with.
#[derive(Clone, Copy)]
pub struct Args {
    info: &'static abi::start::StartInfo<'static>,
}

impl Args {
    /// Wrap a parsed start block that lives for the whole program.
    pub fn new(info: &'static abi::start::StartInfo<'static>) -> Args {
        Args { info }
    }

    pub fn len(&self) -> usize {
        self.info.argc()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Argument `i` as text (empty if it is not UTF-8).
    pub fn get(&self, i: usize) -> Option<&'static str> {
        self.info.arg(i).map(|a| core::str::from_utf8(a).unwrap_or(""))
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static str> {
        let info = self.info;
        (0..info.argc()).filter_map(move |i| info.arg(i).map(|a| core::str::from_utf8(a).unwrap_or("")))
    }

    /// The value of a `key=value` argument.
    pub fn value(&self, key: &str) -> Option<&'static str> {
        self.iter().find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
    }
}

/// Name the program's entry function: `fn(Args) -> i32`.
#[macro_export]
macro_rules! entry {
    ($f:path) => {
        #[no_mangle]
        pub extern "Rust" fn __program_main(args: $crate::Args) -> i32 {
            $f(args)
        }
    };
}

/// End the process with `code`.
pub fn exit(code: i32) -> ! {
    let _ = sys::calls::EXIT.call(class_token(abi::SyscallClass::Thread), abi::call::CodeArgs { code: code as u64 });
    // Without the Thread capability exit is refused; a fault ends us anyway.
    #[cfg(target_os = "none")]
    // SAFETY: `ud2` raises #UD, which ends this process; nothing else happens.
    unsafe {
        core::arch::asm!("ud2", options(noreturn))
    }
    #[cfg(not(target_os = "none"))]
    panic!("exit({code}) outside the machine")
}

/// Ask the machine to power off, telling the host `code` (QEMU's debug
/// exit device turns it into its exit status; a PC without it halts).
/// Returns only if refused, which a program without the power class is.
pub fn power_off(code: u64) -> Error {
    match sys::calls::POWER_OFF.call(class_token(abi::SyscallClass::Power), abi::call::CodeArgs { code }) {
        Err(e) => e,
        // The kernel halts the machine instead of answering success.
        Ok(_) => Error::InvalidArgument,
    }
}

/// The privilege level the code runs at: 3 in user mode, as every program
/// should (a test of the kernel's set-up, not something to branch on).
#[cfg(target_arch = "x86_64")]
pub fn privilege_level() -> u16 {
    let cs: u16;
    // SAFETY: reading CS has no side effects.
    unsafe { core::arch::asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
    cs & 3
}

#[cfg(test)]
mod tests;
