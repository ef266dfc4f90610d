//! Booting, all in one place: what the boot loader tells the kernel
//! (`multiboot`, host-tested), starting the first program (`init`,
//! host-tested), and on the bare-metal target the multiboot headers and
//! 32/64-bit entry stubs (`stub`), the boot sequence from `kmain` to the
//! idle thread (`start`) and the boot-time self-tests (`selftest`).

pub mod init;
pub mod multiboot;
#[cfg(target_os = "none")]
pub mod selftest;
#[cfg(target_os = "none")]
pub mod start;
#[cfg(target_os = "none")]
pub mod stub;
