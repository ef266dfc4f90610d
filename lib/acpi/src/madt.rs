//! The MADT ("APIC" table): where the I/O APIC is and how the ISA IRQs
//! reach it.
//!
//! The kernel reads it at boot to route legacy interrupt lines (COM1's
//! IRQ 4 and the like) through the I/O APIC. Only what that needs is kept:
//! the first I/O APIC (its address and first GSI) and the interrupt source
//! overrides, which say that ISA IRQ `n` arrives at GSI `g` with a given
//! polarity and trigger mode (q35 moves IRQ 0 to GSI 2 and makes the PCI
//! IRQs 5, 9, 10, 11 level, active high). An ISA IRQ without an override is
//! GSI `n`, edge, active high (ACPI §5.2.12.5).

use crate::{check_sdt, AcpiError, SDT_HEADER_LEN};

/// Bytes before the first entry: the header, the local APIC address and flags.
const ENTRIES_AT: usize = SDT_HEADER_LEN + 8;
const TYPE_IOAPIC: u8 = 1;
const TYPE_OVERRIDE: u8 = 2;
/// Overrides kept (there are 16 ISA IRQs).
pub const MAX_OVERRIDES: usize = 16;

/// How a line signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineMode {
    pub level: bool,
    pub active_low: bool,
}

impl LineMode {
    /// ISA's default: edge, active high.
    pub const ISA: LineMode = LineMode { level: false, active_low: false };

    /// From an override's MPS INTI flags (bits 1:0 polarity, 3:2 trigger;
    /// 0 = the bus's default, which for ISA is high and edge).
    pub fn from_inti_flags(flags: u16) -> LineMode {
        LineMode { active_low: flags & 3 == 3, level: (flags >> 2) & 3 == 3 }
    }
}

/// One interrupt source override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Override {
    pub isa_irq: u8,
    pub gsi: u32,
    pub mode: LineMode,
}

/// What the kernel needs from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Madt {
    /// Physical address of the first I/O APIC.
    pub ioapic_address: u32,
    /// The GSI of its pin 0.
    pub gsi_base: u32,
    pub overrides: [Option<Override>; MAX_OVERRIDES],
}

impl Madt {
    /// Check and read a whole MADT (`bytes` holds at least its length).
    /// A table without an I/O APIC is `BadLength`'s cousin: `Short` (there
    /// is nothing to route with).
    pub fn parse(bytes: &[u8]) -> Result<Madt, AcpiError> {
        let len = check_sdt(bytes, b"APIC")?;
        let table = &bytes[..len];
        let mut ioapic = None;
        let mut overrides = [None; MAX_OVERRIDES];
        let mut at = ENTRIES_AT;
        while at + 2 <= table.len() {
            let (kind, elen) = (table[at], table[at + 1] as usize);
            let entry = table.get(at..at + elen).filter(|_| elen >= 2).ok_or(AcpiError::BadLength)?;
            let u32_at = |o: usize| entry.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
            match kind {
                TYPE_IOAPIC if ioapic.is_none() => {
                    let (Some(addr), Some(base)) = (u32_at(4), u32_at(8)) else { return Err(AcpiError::BadLength) };
                    ioapic = Some((addr, base));
                }
                TYPE_OVERRIDE => {
                    let (Some(gsi), Some(flags)) = (u32_at(4), entry.get(8..10)) else { return Err(AcpiError::BadLength) };
                    let isa_irq = entry[3];
                    // Bus 0 is ISA, the only bus overrides name.
                    if entry[2] == 0 && (isa_irq as usize) < MAX_OVERRIDES {
                        let mode = LineMode::from_inti_flags(u16::from_le_bytes(flags.try_into().unwrap()));
                        overrides[isa_irq as usize] = Some(Override { isa_irq, gsi, mode });
                    }
                }
                _ => {}
            }
            at += elen;
        }
        let (ioapic_address, gsi_base) = ioapic.ok_or(AcpiError::Short)?;
        Ok(Madt { ioapic_address, gsi_base, overrides })
    }

    /// The GSI and mode of ISA IRQ `irq` (< 16).
    pub fn isa(&self, irq: u8) -> Option<(u32, LineMode)> {
        match self.overrides.get(irq as usize)? {
            Some(o) => Some((o.gsi, o.mode)),
            None => Some((irq as u32, LineMode::ISA)),
        }
    }

    /// The mode of `gsi`: an override's when one targets it, else ISA's
    /// default for GSIs 0..16 that no override moved away, else PCI's
    /// (level, active low).
    pub fn mode_of_gsi(&self, gsi: u32) -> LineMode {
        if let Some(o) = self.overrides.iter().flatten().find(|o| o.gsi == gsi) {
            return o.mode;
        }
        if gsi < 16 {
            LineMode::ISA
        } else {
            LineMode { level: true, active_low: true }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MADT with a local APIC entry, one I/O APIC and `overrides`
    /// (isa, gsi, flags); the checksum is filled in.
    pub(crate) fn madt(ioapic: (u32, u32), overrides: &[(u8, u32, u16)]) -> std::vec::Vec<u8> {
        let mut t = std::vec![0u8; ENTRIES_AT];
        t[..4].copy_from_slice(b"APIC");
        t.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]); // local APIC 0
        t.extend_from_slice(&[1, 12, 0, 0]);
        t.extend_from_slice(&ioapic.0.to_le_bytes());
        t.extend_from_slice(&ioapic.1.to_le_bytes());
        for &(isa, gsi, flags) in overrides {
            t.extend_from_slice(&[2, 10, 0, isa]);
            t.extend_from_slice(&gsi.to_le_bytes());
            t.extend_from_slice(&flags.to_le_bytes());
        }
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        t[9] = 0u8.wrapping_sub(sum);
        t
    }

    extern crate std;

    #[test]
    fn q35_overrides_route_isa_irqs() {
        // q35: IRQ 0 -> GSI 2; 5, 9, 10, 11 level active high (flags 0xd).
        let t = madt((0xfec0_0000, 0), &[(0, 2, 0), (5, 5, 0xd), (9, 9, 0xd), (10, 10, 0xd), (11, 11, 0xd)]);
        let m = Madt::parse(&t).unwrap();
        assert_eq!((m.ioapic_address, m.gsi_base), (0xfec0_0000, 0));
        assert_eq!(m.isa(0), Some((2, LineMode::ISA)));
        assert_eq!(m.isa(4), Some((4, LineMode::ISA)));
        assert_eq!(m.isa(9), Some((9, LineMode { level: true, active_low: false })));
        assert_eq!(m.isa(16), None);
        assert_eq!(m.mode_of_gsi(10), LineMode { level: true, active_low: false });
        assert_eq!(m.mode_of_gsi(4), LineMode::ISA);
        assert_eq!(m.mode_of_gsi(20), LineMode { level: true, active_low: true });
        // Active low, level (flags 0xf).
        let m = Madt::parse(&madt((0xfec1_0000, 24), &[(3, 30, 0xf)])).unwrap();
        assert_eq!(m.isa(3), Some((30, LineMode { level: true, active_low: true })));
        assert_eq!(m.gsi_base, 24);
    }

    #[test]
    fn bad_tables_are_refused() {
        let good = madt((0xfec0_0000, 0), &[(0, 2, 0)]);
        let mut bad_sum = good.clone();
        bad_sum[40] ^= 1;
        assert_eq!(Madt::parse(&bad_sum), Err(AcpiError::BadChecksum));
        assert_eq!(Madt::parse(&good[..good.len() - 1]), Err(AcpiError::Short));
        let mut sig = good.clone();
        sig[..4].copy_from_slice(b"APIX");
        assert_eq!(Madt::parse(&sig), Err(AcpiError::BadSignature));
        // No I/O APIC entry.
        let mut none = madt((0, 0), &[]);
        none.truncate(ENTRIES_AT + 8);
        none[4..8].copy_from_slice(&((ENTRIES_AT + 8) as u32).to_le_bytes());
        none[9] = 0;
        none[9] = 0u8.wrapping_sub(none.iter().fold(0u8, |a, &b| a.wrapping_add(b)));
        assert_eq!(Madt::parse(&none), Err(AcpiError::Short));
        // An entry whose length runs past the table, and one of length 0.
        for elen in [200u8, 0] {
            let mut t = good.clone();
            t[ENTRIES_AT + 1] = elen;
            t[9] = 0;
            t[9] = 0u8.wrapping_sub(t.iter().fold(0u8, |a, &b| a.wrapping_add(b)));
            assert_eq!(Madt::parse(&t), Err(AcpiError::BadLength), "entry length {elen}");
        }
    }
}
