//! `system`: the first user program, started by the kernel.
//!
//! It prints its banner and the RAMFS listing, starts the boot servers of
//! `etc/boot.conf` ([`system::config`]) and says when they are all up,
//! then serves `SYSTEM::PROCESS` and supervises its children on a thread
//! of its own ([`serve`]). With `test=<suite>` on the kernel command line
//! it also runs the in-guest test driver `ktest` with every capability it
//! holds and powers the machine off with the outcome: QEMU then exits with
//! 33 for success and 35 for failure.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod acpi;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod host;
#[cfg(target_os = "none")]
mod serve;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("system runs on the microkernel: build the image with `cargo run -p image-builder`");
    std::process::exit(2);
}
