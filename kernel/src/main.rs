//! The kernel binary. On the bare-metal target the work starts in
//! `boot::stub` (the multiboot entry) and continues in `boot::start::kmain`;
//! a host build only says how to build it properly.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
pub use kernel::boot::start::kmain;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the kernel runs on bare metal: build it with `cargo run -p image-builder`");
    std::process::exit(2);
}
