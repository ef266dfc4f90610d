//! Device interrupts as channel events (see [`abi::irq`]).
//!
//! A driver binds its IRQ capability to a channel it receives on; an
//! interrupt then arrives as a [`Received`] with cookie 0 and tag
//! [`abi::irq::EVENT_TAG`] (nothing to reply), after which the driver
//! handles the device and calls [`Irq::ack`] to unmask.

use abi::call::{IrqBindArgs, IrqLineArgs, NoArgs};
use abi::{Error, SyscallClass};

use crate::ipc::{Channel, Received};
use crate::sys::calls;

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
        calls::IRQ_MSI
            .call(crate::class_token(SyscallClass::Irq), NoArgs {})
            .map(|r| (Irq(r.token), Msi { address: r.msi_address, data: r.msi_data as u16 }))
    }

    /// Claim I/O APIC line `line` (`kind`: [`abi::irq::LINE_GSI`] or
    /// [`abi::irq::LINE_ISA`]; needs the Irq class): the capability, the
    /// GSI and the vector.
    pub fn line(line: u64, kind: u64) -> Result<(Irq, u32, u8), Error> {
        calls::IRQ_LINE
            .call(crate::class_token(SyscallClass::Irq), IrqLineArgs { line, kind })
            .map(|r| (Irq(r.token), r.gsi as u32, r.vector as u8))
    }

    /// Deliver this interrupt's events on `chan` with `badge`.
    pub fn bind(&self, chan: &Channel, badge: u64) -> Result<(), Error> {
        calls::IRQ_BIND.call(self.0, IrqBindArgs { channel: chan.token(), badge }).map(|_| ())
    }

    /// The event was handled: unmask.
    pub fn ack(&self) -> Result<(), Error> {
        calls::IRQ_ACK.call(self.0, NoArgs {}).map(|_| ())
    }
}

/// The badge of an interrupt event, or `None` for a message.
pub fn event_badge(r: &Received<'_>) -> Option<u64> {
    (r.cookie == 0 && r.tag == abi::irq::EVENT_TAG).then_some(r.cap)
}
