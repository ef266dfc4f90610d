//! `system`: the process server (`SYSTEM::PROCESS`), the boot sequence and
//! the supervisor.
//!
//! The library holds everything that can run on the host: the boot
//! configuration ([`config`], also used by the image builder to check the
//! file at build time), the protocol with its typed client ([`protocol`],
//! [`client`]), the request handling and supervision logic over traits
//! ([`service`]) and the restart policy ([`policy`]). The binary
//! (`src/main.rs`) wires them to the kernel.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod client;
pub mod config;
pub mod policy;
pub mod protocol;
pub mod service;

#[cfg(test)]
mod tests;
