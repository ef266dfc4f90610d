//! DEVMAN: the device manager.
//!
//! At boot it finds the ACPI tables, reads the MCFG and starts one PCI bus
//! driver (`pcidrv`) per ECAM window, each holding a capability for exactly
//! its window. It serves the device registry under [`proto::NAME`]: drivers
//! register the devices they find or serve (with their channel), clients
//! query by class, id, bus or all, and ask for a device's driver. Entries of
//! drivers that die disappear.
//!
//! The library holds the ACPI decoding ([`acpi`]), the protocol
//! ([`proto`]), the registry logic ([`registry`]) and a typed client
//! ([`client`]); all of it runs on the host under `cargo test`. The binary
//! (`src/main.rs`) wires them to the kernel.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod acpi;
pub mod client;
pub mod proto;
pub mod registry;

#[cfg(test)]
mod tests;

pub use client::DevmanClient;
pub use proto::NAME;

/// Where the BIOS area the RSDP is searched in starts (ACPI §5.2.5.1).
pub const BIOS_AREA: u64 = 0xE_0000;
/// Bytes of the BIOS area.
pub const BIOS_AREA_LEN: u64 = 0x2_0000;

/// The start-block id under which a `pcidrv` gets its ECAM window.
/// The provider of the names the drivers PCIDRV starts register
/// (`AHCI::DISK0`): the scope of the `Names` capability each PCIDRV gets.
pub const DRIVER_PROVIDER: &str = "AHCI";

pub const PCIDRV_ECAM_CAP: u64 = abi::cap_id::USER;
/// The start-block id under which a `pcidrv` gets the device memory its
/// functions' BARs lie in (to hand each driver exactly its own window).
pub const PCIDRV_BAR_CAP: u64 = abi::cap_id::USER + 1;
