//! Device interrupts as channel events (see [`abi::irq`]).
//!
//! A driver binds its IRQ capability to a channel it receives on; an
//! interrupt then arrives as a [`Received`] with cookie 0 and tag
//! [`abi::irq::EVENT_TAG`] (nothing to reply), after which the driver
//! handles the device and calls [`Irq::ack`] to unmask.

use abi::{Error, Syscall, SyscallClass};

use crate::ipc::{Channel, Received};
use crate::sys::call;

/// An IRQ capability.
#[derive(Debug, PartialEq, Eq)]
pub struct Irq(pub u64);

/// Where a PCI function's MSI capability must send its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    pub address: u64,
    pub data: u16,
}

impl Irq {
    /// Allocate an MSI vector (needs the Irq class).
    pub fn msi() -> Result<(Irq, Msi), Error> {
        // SAFETY: IrqMsi touches no memory of ours.
        unsafe { call(Syscall::IrqMsi, crate::class_token(SyscallClass::Irq), [0; 5]) }
            .map(|r| (Irq(r[0]), Msi { address: r[1], data: r[2] as u16 }))
    }

    /// Claim I/O APIC line `line` (`kind`: [`abi::irq::LINE_GSI`] or
    /// [`abi::irq::LINE_ISA`]; needs the Irq class): the capability, the
    /// GSI and the vector.
    pub fn line(line: u64, kind: u64) -> Result<(Irq, u32, u8), Error> {
        // SAFETY: IrqLine touches no memory of ours.
        unsafe { call(Syscall::IrqLine, crate::class_token(SyscallClass::Irq), [line, kind, 0, 0, 0]) }
            .map(|r| (Irq(r[0]), r[1] as u32, r[2] as u8))
    }

    /// Deliver this interrupt's events on `chan` with `badge`.
    pub fn bind(&self, chan: &Channel, badge: u64) -> Result<(), Error> {
        // SAFETY: IrqBind touches no memory of ours.
        unsafe { call(Syscall::IrqBind, self.0, [chan.token(), badge, 0, 0, 0]) }.map(|_| ())
    }

    /// The event was handled: unmask.
    pub fn ack(&self) -> Result<(), Error> {
        // SAFETY: IrqAck touches no memory of ours.
        unsafe { call(Syscall::IrqAck, self.0, [0; 5]) }.map(|_| ())
    }
}

/// The badge of an interrupt event, or `None` for a message.
pub fn event_badge(r: &Received<'_>) -> Option<u64> {
    (r.cookie == 0 && r.tag == abi::irq::EVENT_TAG).then_some(r.cap)
}
