//! How `devices` prints DEVMAN's registry: one row per entry, with the
//! location, ids and class in the same notation PCIDRV's boot lines use
//! (so a person, and the `shell` check, can match the two).

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use devman::proto::{BarKind, Entry, Identity};

/// The header above the rows.
pub const HEADER: &str = "  ID DEVICE          VENDOR:DEV CLASS    BARS";

/// One entry's row.
pub fn row(e: &Entry) -> String {
    let d = &e.device;
    let at = match d.identity {
        Identity::Pci(l) => format!("{l}"),
        Identity::Port { controller, port } => format!("{controller}/p{port}"),
    };
    let mut out = format!("{:>4} {at:<15} {:04x}:{:04x}  {:02x}.{:02x}.{:02x}", e.id, d.vendor, d.device, d.class, d.subclass, d.prog_if);
    for b in &d.bars {
        let kind = match b.kind {
            BarKind::Io => "io",
            BarKind::Memory32 => "mem32",
            BarKind::Memory64 => "mem64",
        };
        let _ = write!(out, " BAR{} {kind} {:#x}+{:#x}", b.index, b.base, b.size);
    }
    out
}

/// The disk a `DISK` argument names: `disk<n>` is `ahcidrv`'s disk `n`
/// (`AHCI::DISK<n>`).
pub fn disk_number(name: &str) -> Option<u8> {
    let n = name.strip_prefix("disk")?;
    if n.is_empty() || n.len() > 3 || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use devman::proto::{Bar, Device, Location};

    #[test]
    fn rows_use_pcidrv_notation() {
        let at = Location { segment: 0, bus: 0, device: 0x1f, function: 2 };
        let mut device = Device { class: 1, subclass: 6, prog_if: 1, vendor: 0x8086, device: 0x2922, identity: Identity::Pci(at), parent: None, bars: Default::default() };
        device.bars.push(Bar { index: 5, kind: BarKind::Memory32, prefetchable: false, base: 0xc100_1000, size: 0x1000 }).unwrap();
        assert_eq!(row(&Entry { id: 7, device: device.clone() }), "   7 0000:00:1f.2    8086:2922  01.06.01 BAR5 mem32 0xc1001000+0x1000");
        device.identity = Identity::Port { controller: at, port: 3 };
        device.bars.clear();
        assert_eq!(row(&Entry { id: 12, device }), "  12 0000:00:1f.2/p3 8086:2922  01.06.01");
    }

    #[test]
    fn disk_names() {
        assert_eq!(disk_number("disk0"), Some(0));
        assert_eq!(disk_number("disk12"), Some(12));
        for bad in ["disk", "disk-1", "disk01", "disk256", "disk1x", "ahci0", "boot:/x", "disk0000"] {
            assert_eq!(disk_number(bad), None, "{bad}");
        }
    }
}
