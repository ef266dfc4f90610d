//! The kernel's logic, as a library.
//!
//! The binary (`main.rs`) boots the machine and hands control to the
//! structures here; the host build of this library runs the same logic
//! under `cargo test` with a fake `arch`.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod log;

pub mod arch;
pub mod global;
pub mod cap;
pub mod ipc;
pub mod irq;
pub mod kernel;
pub mod mem;
pub mod proc;
pub mod sched;
pub mod syscall;

pub mod boot;

#[cfg(test)]
mod tests;

pub use kernel::Kernel;
