//! Device interrupts delivered to user-space drivers (seL4's IRQ handler +
//! notification shape, on our channels).
//!
//! Each vector the kernel hands out (an MSI one, or one an I/O APIC line
//! is routed to: [`line`]) is one [`IrqSlot`]. An IRQ
//! capability names a slot (index and generation). The driver binds it to a
//! channel it may receive on; when the interrupt fires the kernel masks the
//! slot and sets its bit in the channel's `irq_pending` mask, waking a
//! waiting receiver with the event directly. `Receive` takes a pending event
//! before any queued message. The driver's `IrqAck` unmasks; an interrupt
//! that arrived while masked is latched and delivered again on the ack, so
//! an edge-triggered MSI racing the driver's status read is never lost.
//!
//! Nothing here allocates. A slot's binding ends when the binder dies or the
//! channel goes away; the slot itself is freed when the process that
//! allocated it dies (the IRQ capabilities it delegated become stale).

pub mod line;

use abi::{irq, CapKind, Error};

use crate::cap::{BadToken, Cap, SysError};
use crate::kernel::Kernel;

/// Interrupt slots (one per vector, MSI or I/O APIC line).
pub const SLOTS: usize = irq::VECTORS;
/// Where MSI slots that fired inside a tick window are noted in the
/// late-tick word (`arch::take_late_ticks`), above the tick count.
pub const LATE_SHIFT: u32 = 32;
const _: () = assert!(LATE_SHIFT as usize + SLOTS <= 64);
const _: () = assert!(SLOTS <= 16, "pending masks are u16");

/// Where a slot's events go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub chan: u16,
    pub chan_gen: u32,
    /// The process that bound it (its death unbinds).
    pub proc: u16,
    /// Returned with each event, so one channel can serve several IRQs.
    pub badge: u64,
}

/// One interrupt source.
#[derive(Clone, Copy, Debug, Default)]
pub struct IrqSlot {
    pub live: bool,
    pub gen: u32,
    /// The process that allocated it.
    pub owner: u16,
    pub bound: Option<Binding>,
    /// Delivered and not acknowledged yet.
    pub masked: bool,
    /// Fired while masked: deliver again on the ack.
    pub latched: bool,
    /// Times it fired since allocation (for tests and monitoring).
    pub fired: u64,
    /// The I/O APIC pin of a line (`None`: an MSI vector).
    pub pin: Option<u8>,
    /// A line's redirection entry, unmasked.
    pub entry: u64,
}

/// The kernel's interrupt slots.
#[derive(Clone, Debug, Default)]
pub struct IrqTable {
    pub slots: [IrqSlot; SLOTS],
    /// The local APIC id MSI messages are addressed to.
    pub apic_id: u8,
    /// The I/O APIC, when the MADT names one (`IrqLine` needs it).
    pub ioapic: Option<line::IoApic>,
}

impl IrqTable {
    /// The slot of CPU vector `v`, if it is an MSI vector.
    pub fn slot_of_vector(v: u64) -> Option<usize> {
        let first = irq::FIRST_VECTOR as u64;
        (first..first + SLOTS as u64).contains(&v).then(|| (v - first) as usize)
    }
}

impl Kernel {
    /// `IrqMsi`: a fresh MSI vector for process `p`: token, MSI address, data.
    pub fn irq_msi(&mut self, p: usize) -> Result<[u64; 4], Error> {
        let slot = self.irqs.slots.iter().position(|s| !s.live).ok_or(Error::LimitReached)?;
        let gen = self.irqs.slots[slot].gen.wrapping_add(1);
        let mut cap = Cap::object(CapKind::Irq, slot as u32, gen, abi::RightsMask::ALL);
        // `CapInspect` reports it, so a driver given the capability can
        // program the MSI address itself.
        cap.flavor = self.irqs.apic_id;
        let token = self.mint(p, cap)?;
        self.irqs.slots[slot] = IrqSlot { live: true, gen, owner: p as u16, ..IrqSlot::default() };
        let vector = irq::FIRST_VECTOR as u64 + slot as u64;
        Ok([token, irq::msi_address(self.irqs.apic_id), vector, 0])
    }

    /// The live slot behind IRQ token `token` of process `p`.
    fn irq_slot_of(&mut self, p: usize, token: u64) -> Result<usize, BadToken> {
        let cap = self.lookup(p, token, Some(CapKind::Irq), abi::IrqRights::BIND)?;
        let s = cap.object as usize;
        if s < SLOTS && self.irqs.slots[s].live && self.irqs.slots[s].gen == cap.gen {
            Ok(s)
        } else {
            Err(BadToken)
        }
    }

    /// Whether slot `s` is bound to a live channel by a live process.
    fn irq_bound_live(&mut self, s: usize) -> bool {
        match self.irqs.slots[s].bound {
            Some(b) => {
                self.procs[b.proc as usize].state == crate::proc::ProcState::Alive
                    && self.channels.get(b.chan as u32, b.chan_gen).is_some()
            }
            None => false,
        }
    }

    /// `IrqBind`: deliver slot `token`'s events on channel `chan_token`.
    pub fn irq_bind(&mut self, p: usize, token: u64, chan_token: u64, badge: u64) -> Result<(), SysError> {
        let s = self.irq_slot_of(p, token)?;
        let chan = self.channel_of(p, chan_token, abi::ChannelRights::RECEIVE)?;
        if self.irq_bound_live(s) {
            return Err(Error::Busy.into());
        }
        self.irq_unbind(s);
        let chan_gen = self.channels.slot(chan).gen;
        let slot = &mut self.irqs.slots[s];
        slot.bound = Some(Binding { chan, chan_gen, proc: p as u16, badge });
        slot.masked = false;
        slot.latched = false;
        self.irq_sync_line(s);
        Ok(())
    }

    /// `IrqAck`: unmask; deliver again if it fired meanwhile. Only the
    /// binder may, and only while its binding lives (a destroyed channel
    /// ended it: nothing is bound then).
    pub fn irq_ack(&mut self, p: usize, token: u64) -> Result<(), SysError> {
        let s = self.irq_slot_of(p, token)?;
        match self.irqs.slots[s].bound {
            Some(b) if b.proc as usize == p && self.channels.get(b.chan as u32, b.chan_gen).is_some() => {}
            _ => return Err(Error::InvalidArgument.into()),
        }
        let slot = &mut self.irqs.slots[s];
        slot.masked = false;
        if core::mem::take(&mut slot.latched) {
            self.irq_deliver(s);
        }
        self.irq_sync_line(s);
        Ok(())
    }

    /// Forget slot `s`'s binding (masked, no pending event).
    fn irq_unbind(&mut self, s: usize) {
        if let Some(b) = self.irqs.slots[s].bound.take() {
            if let Some(c) = self.channels.get(b.chan as u32, b.chan_gen) {
                c.irq_pending &= !(1 << s);
            }
        }
        let slot = &mut self.irqs.slots[s];
        slot.masked = true;
        slot.latched = false;
        self.irq_sync_line(s);
    }

    /// The interrupt of slot `s` fired (called from the interrupt path).
    pub fn irq_fire(&mut self, s: usize) {
        if s >= SLOTS || !self.irqs.slots[s].live {
            return;
        }
        self.irqs.slots[s].fired += 1;
        if self.irqs.slots[s].masked {
            if self.irqs.slots[s].bound.is_some() {
                self.irqs.slots[s].latched = true;
            }
            return;
        }
        self.irq_deliver(s);
    }

    /// Mask slot `s` and hand its event to its channel.
    fn irq_deliver(&mut self, s: usize) {
        if !self.irq_bound_live(s) {
            self.irq_unbind(s);
            return;
        }
        let Some(b) = self.irqs.slots[s].bound else { return };
        self.irqs.slots[s].masked = true;
        self.irq_sync_line(s);
        let c = self.channels.slot(b.chan);
        c.irq_pending |= 1 << s;
        if let Some(r) = c.receivers.pop_front(&mut self.threads) {
            let ev = self.irq_take_event(b.chan);
            self.complete(r, Ok(ev.unwrap_or_default()));
        }
    }

    /// A pending event of channel `ch`, as `Receive`'s results (cookie 0,
    /// [`irq::EVENT_TAG`], size 0, badge); clears it and counts it among the
/// channel's receives.
    pub fn irq_take_event(&mut self, ch: u16) -> Option<[u64; 4]> {
        let c = self.channels.slot(ch);
        if c.irq_pending == 0 {
            return None;
        }
        let s = c.irq_pending.trailing_zeros() as usize;
        c.irq_pending &= !(1 << s);
        // Counted as a receive, so the IPC monitor shows how often a
        // driver woke for its interrupts.
        c.receives += 1;
        let badge = self.irqs.slots[s].bound.map_or(0, |b| b.badge);
        Some([0, irq::EVENT_TAG, 0, badge])
    }

    /// Process `p` ended: unbind what it bound, free what it allocated.
    pub fn irq_release(&mut self, p: usize) {
        for s in 0..SLOTS {
            if self.irqs.slots[s].bound.is_some_and(|b| b.proc as usize == p) {
                self.irq_unbind(s);
            }
            let slot = &mut self.irqs.slots[s];
            if slot.live && slot.owner as usize == p {
                self.irq_unbind(s);
                let slot = &mut self.irqs.slots[s];
                slot.live = false;
                slot.gen = slot.gen.wrapping_add(1);
                self.irq_sync_line(s);
            }
        }
    }
}
