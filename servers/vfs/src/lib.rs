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
