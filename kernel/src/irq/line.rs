//! Legacy interrupt lines through the I/O APIC, as IRQ capabilities.
//!
//! A line takes a slot (and so a vector) from the same pool as MSI, so the
//! binding, the event on a channel, the ack and the release on death are
//! [`super`]'s, unchanged. What a line adds is the I/O APIC's redirection
//! entry for its pin: programmed with the slot's vector and the mode the
//! MADT gives (an ISA IRQ's overrides: q35 moves IRQ 0 to GSI 2), and its
//! mask bit kept equal to the slot's state — masked while unbound, from
//! each delivery until `IrqAck`, and again when the binder dies. An
//! edge-triggered pin drops edges while masked (the 82093AA does, and so
//! does QEMU), so a driver acks first and then drains its device, never
//! the other way round.
//!
//! One slot per line (a second `IrqLine` for it: `Busy`), and the line
//! the kernel's own timer would use (ISA IRQ 0) is never handed out. The
//! hardware access is `arch::ioapic_set` (the host fake records it).

use abi::call::IrqLineResults;
use abi::{irq, CapKind, Error};
use acpi::madt::{LineMode, Madt};

use crate::cap::Cap;
use crate::kernel::Kernel;

/// The redirection entry's mask bit.
pub const MASKED: u64 = 1 << 16;
const ACTIVE_LOW: u64 = 1 << 13;
const LEVEL: u64 = 1 << 15;

/// The first I/O APIC, as the MADT describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    pub madt: Madt,
    /// Redirection entries (pins).
    pub pins: u8,
}

impl IoApic {
    /// The pin of `gsi` on this I/O APIC.
    pub fn pin_of(&self, gsi: u32) -> Option<u8> {
        let pin = gsi.checked_sub(self.madt.gsi_base)?;
        (pin < self.pins as u32).then_some(pin as u8)
    }

    /// What `IrqLine`'s arguments name: the GSI and its mode.
    pub fn resolve(&self, line: u64, kind: u64) -> Result<(u32, LineMode), Error> {
        match kind {
            irq::LINE_ISA if line < 16 => self.madt.isa(line as u8).ok_or(Error::InvalidArgument),
            irq::LINE_GSI if line <= u32::MAX as u64 => Ok((line as u32, self.madt.mode_of_gsi(line as u32))),
            _ => Err(Error::InvalidArgument),
        }
    }

    /// The GSI the kernel keeps: the PIT's (ISA IRQ 0).
    pub fn kernel_gsi(&self) -> Option<u32> {
        self.madt.isa(0).map(|(g, _)| g)
    }
}

/// A redirection entry: fixed delivery of `vector` to the local APIC
/// `apic_id` (physical destination), with `mode`'s polarity and trigger.
pub fn redirection(vector: u8, apic_id: u8, mode: LineMode, masked: bool) -> u64 {
    let mut e = vector as u64 | (apic_id as u64) << 56;
    if mode.active_low {
        e |= ACTIVE_LOW;
    }
    if mode.level {
        e |= LEVEL;
    }
    if masked {
        e |= MASKED;
    }
    e
}

impl Kernel {
    /// `IrqLine`: a slot for I/O APIC line `line` (`kind`: GSI or ISA IRQ)
    /// for process `p`: token, GSI, vector.
    pub fn irq_line(&mut self, p: usize, line: u64, kind: u64) -> Result<IrqLineResults, Error> {
        let apic = self.irqs.ioapic.ok_or(Error::InvalidArgument)?;
        let (gsi, mode) = apic.resolve(line, kind)?;
        let pin = apic.pin_of(gsi).ok_or(Error::InvalidArgument)?;
        let taken = self.irqs.slots.iter().any(|s| s.live && s.pin == Some(pin));
        if taken || apic.kernel_gsi() == Some(gsi) {
            return Err(Error::Busy);
        }
        // Lines take slots from the top of the pool, MSI from the bottom:
        // the lines given out at boot (COM1's) leave the first MSI vector
        // free, which `selftest=irq` relies on.
        let slot = self.irqs.slots.iter().rposition(|s| !s.live).ok_or(Error::LimitReached)?;
        let gen = self.irqs.slots[slot].gen.wrapping_add(1);
        let mut cap = Cap::object(CapKind::Irq, slot as u32, gen, abi::RightsMask::ALL);
        cap.flavor = self.irqs.apic_id;
        let token = self.mint(p, cap)?;
        let vector = irq::FIRST_VECTOR + slot as u8;
        self.irqs.slots[slot] = super::IrqSlot {
            live: true,
            gen,
            owner: p as u16,
            masked: true,
            pin: Some(pin),
            entry: redirection(vector, self.irqs.apic_id, mode, false),
            ..super::IrqSlot::default()
        };
        self.irq_sync_line(slot);
        Ok(IrqLineResults { token, gsi: gsi as u64, vector: vector as u64 })
    }

    /// Make slot `s`'s pin (if it is a line) masked exactly when no event
    /// may be delivered: freed, unbound, or delivered and not acked.
    pub(super) fn irq_sync_line(&mut self, s: usize) {
        let slot = &self.irqs.slots[s];
        if let Some(pin) = slot.pin {
            let masked = !slot.live || slot.masked || slot.bound.is_none();
            crate::arch::ioapic_set(pin, if masked { slot.entry | MASKED } else { slot.entry });
        }
    }
}
