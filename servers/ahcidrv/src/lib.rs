//! `ahcidrv`: the AHCI (SATA) driver's library: the storage protocol
//! ([`proto`]) with its typed client ([`client`]), AHCI command
//! construction and IDENTIFY decoding ([`ata`]), the disk threads' turns at
//! the controller ([`turns`]), and the HBA layer
//! ([`hba`], on the target) that the `ahcidrv` binary serves with.
//!
//! The driver takes its authority as start capabilities (the ids below):
//! whoever spawns it (`pcidrv`, at every boot) hands it exactly the
//! controller's register window (ABAR), its PCI function's 4 KiB of
//! configuration space, and an IRQ capability (an MSI vector) to program
//! into the function's MSI capability, its config channel (to end with
//! its PCIDRV), plus the Dma, ChannelCreate, Names, DebugPrint and Thread
//! classes. Each disk gets its own channel, registered by name and with
//! DEVMAN ([`registry_entry`]); PCIDRV restarts a driver that dies.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod ata;
pub mod client;
#[cfg(target_os = "none")]
pub mod hba;
pub mod proto;
pub mod turns;

/// Start-capability ids (see [`abi::cap_id::USER`]).
pub mod cap_id {
    use pcidrv::config as pci;
    /// The ABAR (BAR5) register window, physical range, read-write.
    pub const ABAR: u64 = pci::DRIVER_BAR_CAP;
    /// The controller's PCI configuration space (one 4 KiB ECAM page).
    pub const CONFIG: u64 = pci::DRIVER_CONFIG_PAGE_CAP;
    /// An MSI vector for the controller ([`abi::CapKind::Irq`]).
    pub const IRQ: u64 = pci::DRIVER_IRQ_CAP;
    /// PCIDRV's config-space channel for this function (SEND): the driver
    /// holds a `Watch` call on it and ends when PCIDRV ends. Optional (a
    /// driver started by hand has no bus driver to follow).
    pub const BUS: u64 = pci::DRIVER_CONFIG_CAP;
}

/// The DEVMAN entry of the disk on `port` of controller `at`.
pub fn registry_entry(at: devman::proto::Location, port: u16) -> devman::proto::Device {
    use devman::proto::{Device, Identity, CLASS_DISK};
    Device { class: CLASS_DISK, subclass: 0, prog_if: 0, vendor: 0, device: 0, identity: Identity::Port { controller: at, port }, parent: Some(at), bars: heapless::Vec::new() }
}

/// The name disk `n` is registered under.
pub fn disk_name(n: u8) -> heapless::String<16> {
    let mut s = heapless::String::new();
    let _ = core::fmt::write(&mut s, format_args!("AHCI::DISK{n}"));
    s
}

/// FNV-1a (64-bit): how the tests fingerprint sectors on both sides.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_and_hash() {
        assert_eq!(super::disk_name(1).as_str(), "AHCI::DISK1");
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
