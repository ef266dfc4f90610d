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

/// The provider of the names the drivers PCIDRV starts register
/// (`AHCI::DISK0`): the scope of the `Names` capability each PCIDRV gets
/// for them ([`PCIDRV_DRIVER_NAMES_CAP`]).
pub const DRIVER_PROVIDER: &str = "AHCI";
/// The provider PCIDRV publishes its channel under ([`pcidrv_name`]): the
/// scope of its own `Names` capability.
pub const PCI_PROVIDER: &str = "PCI";
/// DEVMAN's registration capability: it takes a registration only on a
/// channel the kernel publishes under one of these providers, and hands
/// scopes over them only to the bus drivers it starts (which pass the
/// drivers' on). Anyone else is refused (`NotAuthorized`).
pub const REGISTRARS: [&str; 2] = [PCI_PROVIDER, DRIVER_PROVIDER];

/// Whether a channel published as `name` may register devices.
pub fn may_register(name: &str) -> bool {
    abi::names_scope::provider(name.as_bytes()).is_some_and(|p| REGISTRARS.iter().any(|r| r.as_bytes() == p))
}

/// The name a PCIDRV publishes its channel under: `PCI::<segment>-<first bus>`.
pub fn pcidrv_name(segment: u16, first_bus: u8) -> heapless::String<16> {
    let mut s = heapless::String::new();
    let _ = core::fmt::write(&mut s, format_args!("{PCI_PROVIDER}::{segment:04x}-{first_bus:02x}"));
    s
}

/// The start-block id under which a `pcidrv` gets its ECAM window.
pub const PCIDRV_ECAM_CAP: u64 = abi::cap_id::USER;
/// The start-block id under which a `pcidrv` gets the device memory its
/// functions' BARs lie in (to hand each driver exactly its own window).
pub const PCIDRV_BAR_CAP: u64 = abi::cap_id::USER + 1;
/// The start-block id under which a `pcidrv` gets a `Names` capability
/// scoped to [`DRIVER_PROVIDER`], to hand to the drivers it starts.
pub const PCIDRV_DRIVER_NAMES_CAP: u64 = abi::cap_id::USER + 2;
