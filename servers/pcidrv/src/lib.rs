//! PCIDRV: the PCI bus driver for one ECAM window.
//!
//! It walks configuration space from the window's first bus, following
//! PCI-to-PCI bridges to their secondary buses, sizes every BAR, registers
//! each function with DEVMAN, starts a driver for each function it has one
//! for (AHCI: `ahcidrv`) and serves that driver's configuration-space
//! reads and writes on a private channel, limited to the driver's own
//! function.
//!
//! The library holds everything that runs on the host: the enumeration
//! and BAR sizing over a [`ConfigSpace`] accessor ([`enumerate`]), and the
//! configuration-space protocol with its checks ([`config`]). The binary
//! (`src/main.rs`) maps the ECAM window and wires them to the kernel.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod config;
pub mod enumerate;

#[cfg(test)]
mod tests;

pub use devman::proto::Location;

/// Offsets in a function's configuration header (PCI LB 3.0 §6.1).
pub mod reg {
    pub const VENDOR: u16 = 0x00;
    pub const DEVICE: u16 = 0x02;
    pub const COMMAND: u16 = 0x04;
    pub const REVISION: u16 = 0x08;
    pub const PROG_IF: u16 = 0x09;
    pub const SUBCLASS: u16 = 0x0a;
    pub const CLASS: u16 = 0x0b;
    pub const HEADER_TYPE: u16 = 0x0e;
    pub const BAR0: u16 = 0x10;
    /// Type 1 (bridge) headers: the bus behind the bridge.
    pub const SECONDARY_BUS: u16 = 0x19;
    /// Type 1: the highest bus behind the bridge.
    pub const SUBORDINATE_BUS: u16 = 0x1a;
    /// Command bits: I/O and memory decoding.
    pub const COMMAND_DECODE: u16 = 0b11;
    /// Bytes of one function's configuration space under ECAM.
    pub const SPACE: u16 = 4096;
}

/// Access to configuration space. `width` is 1, 2 or 4 and `offset` is
/// aligned to it and below [`reg::SPACE`] (callers check). A function that
/// is not there reads as all ones.
pub trait ConfigSpace {
    fn read(&self, at: Location, offset: u16, width: u8) -> u32;
    fn write(&mut self, at: Location, offset: u16, width: u8, value: u32);
}

/// The name DEVMAN's spawn gives the program; the start-block ids of its
/// capabilities.
pub mod caps {
    /// The ECAM window (physical range of exactly the buses it serves).
    pub const ECAM: u64 = devman::PCIDRV_ECAM_CAP;
    /// Device memory the BARs of its functions lie in, to hand each driver
    /// exactly its own register window.
    pub const BAR_MEMORY: u64 = devman::PCIDRV_BAR_CAP;
}
