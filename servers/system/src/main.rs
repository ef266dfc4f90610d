//! `system`: the first user program, started by the kernel.
//!
//! It proves the boot worked (banner from ring 3, the RAMFS it was handed),
//! then either waits (normal boot) or, with `test=<suite>` on the kernel
//! command line, runs the in-guest test driver `ktest` with every
//! capability it holds and powers the machine off with the outcome:
//! QEMU then exits with 33 for success and 35 for failure.
//!
//! Process spawning as a service (`SYSTEM::PROCESS`) comes with the next
//! issues; today `system` only spawns what the command line asks for.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod acpi;
#[cfg(target_os = "none")]
mod supervisor;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("system runs on the microkernel: build the image with `cargo run -p image-builder`");
    std::process::exit(2);
}
