//! SYSTEM::VFS: which filesystem driver serves which path.
//!
//! A driver registers its channel under a prefix (`boot:`); a client asks
//! for the driver of a path and gets a send capability for the driver's
//! channel in the reply (delegation through IPC) plus the path the driver
//! understands, then talks to the driver directly. A driver that dies is
//! dropped from the table the next time VFS looks at it.
//!
//! The library holds the protocol ([`proto`]), the path rules ([`path`]), a
//! typed client ([`client`]) and the server's logic ([`server`]), which runs
//! on the host under `cargo test` through the runtime's host transport; the
//! binary target (`src/main.rs`) serves it on a kernel channel.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod client;
#[cfg(any(test, feature = "fake-kernel"))]
pub mod fake;
pub mod path;
pub mod proto;
pub mod server;

#[cfg(test)]
mod tests;

pub use client::VfsClient;

/// The name VFS publishes its channel under.
pub const NAME: &str = "SYSTEM::VFS";

/// The name a driver publishes its channel under before mounting it at
/// `prefix`: `<prefix>::mount`. This is the mount capability: the kernel
/// lets only a holder of a `Names` scope over the provider `<prefix>`
/// publish it (`system` gives one to programs with `mount=` in `boot.conf`,
/// see `system::config`), and VFS mounts a channel only if it is the one
/// published so. Without a scope nobody can squat a prefix.
pub fn mount_name(prefix: &str) -> heapless::String<{ path::PREFIX_MAX + 7 }> {
    let mut s = heapless::String::new();
    let _ = core::fmt::write(&mut s, format_args!("{prefix}::mount"));
    s
}
