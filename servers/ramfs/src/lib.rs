//! The RAMFS driver: the boot image (a cpio "newc" archive) as a
//! read-only filesystem, mounted in VFS as `boot:`.
//!
//! At start it indexes the archive ([`index`]): any valid newc archive,
//! in any order, with or without directory entries, `./`-prefixed names,
//! hard links. Clients look a path up ([`proto::Stat`]: kind, size and a
//! handle), then load the file page by page ([`proto::Load`]): the client
//! lends a page-aligned 4 KiB buffer and the driver fills it in place, so
//! nothing is copied through the kernel.
//!
//! The library holds the protocol, the index, a typed client and the
//! server logic (host-tested through the runtime's host transport); the
//! binary (`src/main.rs`) serves it. [`manifest`] is the format of the
//! hash list the image builder packs for the in-guest file tests.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod client;
pub mod index;
pub mod manifest;
pub mod proto;
pub mod server;

#[cfg(test)]
mod tests;

pub use client::RamfsClient;

/// The prefix RAMFS registers with VFS.
pub const PREFIX: &str = "boot";
