//! Interrupts delivered to user space: allocation, binding, events on a
//! channel (to a waiting receiver and to a later `Receive`), masking until
//! the ack, latching, the second binder refused, and release on death.

use abi::{irq, Error, Syscall};

use super::*;

/// A driver process with one thread and a channel, and an MSI slot it allocated.
struct Drv {
    p: usize,
    t: Tid,
    chan: u64,
    irq: u64,
    slot: usize,
}

fn driver(w: &mut World) -> Drv {
    let p = w.spawn("drv");
    let t = w.thread(p, 5);
    let chan = w.channel(t);
    let [irq, addr, data, _] = w.sys(t, Syscall::IrqMsi, [w.c(p).irq, 0, 0, 0, 0, 0]).ok();
    assert_eq!(addr, irq::msi_address(0), "MSI address names the boot CPU's LAPIC");
    let slot = crate::irq::IrqTable::slot_of_vector(data).expect("data is an MSI vector");
    Drv { p, t, chan, irq, slot }
}

fn bind(w: &mut World, d: &Drv, badge: u64) -> R {
    w.sys(d.t, Syscall::IrqBind, [d.irq, d.chan, badge, 0, 0, 0])
}

const EVENT: fn(u64) -> R = |badge| R::Ok([0, irq::EVENT_TAG, 0, badge]);

#[test]
fn event_wakes_a_waiting_receiver_and_stays_masked_until_ack() {
    let mut w = World::new();
    let d = driver(&mut w);
    assert_eq!(bind(&mut w, &d, 0xb0b), R::Ok([0; 4]));
    assert_eq!(w.recv(d.t, d.chan, WIN, FOREVER), blocked(State::RecvBlocked));
    w.k.irq_fire(d.slot);
    assert_eq!(w.status(d.t), EVENT(0xb0b), "the waiting receiver gets the event");
    // Masked: a second interrupt is latched, not delivered.
    w.k.irq_fire(d.slot);
    assert_eq!(w.recv(d.t, d.chan, WIN, 0), R::Err(Error::Timeout), "delivered while masked");
    // The ack unmasks and delivers the latched one; a later Receive takes it.
    assert_eq!(w.sys(d.t, Syscall::IrqAck, [d.irq, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.recv(d.t, d.chan, WIN, 0), EVENT(0xb0b), "the latched interrupt was lost");
    assert_eq!(w.recv(d.t, d.chan, WIN, 0), R::Err(Error::Timeout), "one interrupt, two events");
    assert_eq!(w.k.irqs.slots[d.slot].fired, 2);
}

#[test]
fn pending_event_comes_before_queued_messages_and_needs_no_reply() {
    let mut w = World::new();
    let d = driver(&mut w);
    bind(&mut w, &d, 7).ok();
    let cp = w.spawn("client");
    let c = w.thread(cp, 5);
    let send = w.give(d.p, d.chan, cp, abi::ChannelRights::SEND);
    assert_eq!(w.send(c, send, 0x55, 8, BUF, FOREVER), blocked(State::SendBlocked));
    w.k.irq_fire(d.slot);
    assert_eq!(w.recv(d.t, d.chan, WIN, FOREVER), EVENT(7));
    // Replying to the event's cookie is refused cleanly.
    assert_eq!(w.reply(d.t, 0, 0, 0), R::Err(Error::Incapable));
    let [cookie, tag, ..] = w.recv(d.t, d.chan, WIN, FOREVER).ok();
    assert_eq!(tag, 0x55, "the queued message comes next");
    assert_eq!(w.reply(d.t, cookie, 1, 0), R::Ok([0; 4]));
}

#[test]
fn second_binder_refused_until_the_first_dies() {
    let mut w = World::new();
    let d = driver(&mut w);
    // The allocator delegates the IRQ to a driver, which binds it.
    let drv = w.spawn("drv2");
    let t2 = w.thread(drv, 5);
    let chan2 = w.channel(t2);
    let irq2 = w.give(d.p, d.irq, drv, abi::IrqRights::BIND);
    assert_eq!(w.sys(t2, Syscall::IrqBind, [irq2, chan2, 2, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(bind(&mut w, &d, 1), R::Err(Error::Busy), "a second holder bound a bound IRQ");
    assert_eq!(w.sys(d.t, Syscall::IrqAck, [d.irq, 0, 0, 0, 0, 0]), R::Err(Error::InvalidArgument));
    // Fired while the driver dies: nothing reaches anyone, the slot is unbound.
    w.k.irq_fire(d.slot);
    w.kill(drv, abi::exit::KILLED, 0);
    assert!(w.k.irqs.slots[d.slot].bound.is_none(), "death did not release the binding");
    assert_eq!(bind(&mut w, &d, 1), R::Ok([0; 4]), "the IRQ stayed held by a dead driver");
    assert_eq!(w.recv(d.t, d.chan, WIN, 0), R::Err(Error::Timeout), "a stale event survived the rebind");
    w.k.irq_fire(d.slot);
    assert_eq!(w.recv(d.t, d.chan, WIN, 0), EVENT(1));
}

#[test]
fn allocator_death_frees_the_vector_and_stales_tokens() {
    let mut w = World::new();
    let d = driver(&mut w);
    let other = w.spawn("other");
    let t2 = w.thread(other, 5);
    let chan2 = w.channel(t2);
    let irq2 = w.give(d.p, d.irq, other, abi::IrqRights::BIND);
    w.kill(d.p, abi::exit::KILLED, 0);
    assert!(!w.k.irqs.slots[d.slot].live);
    w.rejected(t2, Syscall::IrqBind, [irq2, chan2, 0, 0, 0, 0]);
    w.k.irq_fire(d.slot); // nobody: ignored
}

#[test]
fn bad_tokens_and_rights_are_refused() {
    let mut w = World::new();
    let d = driver(&mut w);
    let c = w.c(d.p);
    // Not the Irq class.
    w.rejected(d.t, Syscall::IrqMsi, [c.dma, 0, 0, 0, 0, 0]);
    // A channel token is not an IRQ; an IRQ token is not a channel.
    w.rejected(d.t, Syscall::IrqBind, [d.chan, d.chan, 0, 0, 0, 0]);
    w.rejected(d.t, Syscall::IrqBind, [d.irq, d.irq, 0, 0, 0, 0]);
    // A send-only channel cannot take events.
    let send_only = w.give(d.p, d.chan, d.p, abi::ChannelRights::SEND);
    w.rejected(d.t, Syscall::IrqBind, [d.irq, send_only, 0, 0, 0, 0]);
    // Without BIND.
    let weak = w.give(d.p, d.irq, d.p, abi::RightsMask::DELEGATE);
    w.rejected(d.t, Syscall::IrqBind, [weak, d.chan, 0, 0, 0, 0]);
    w.rejected(d.t, Syscall::IrqAck, [BOGUS, 0, 0, 0, 0, 0]);
    // Every vector handed out, then the limit.
    for _ in 1..irq::VECTORS {
        w.sys(d.t, Syscall::IrqMsi, [c.irq, 0, 0, 0, 0, 0]).ok();
    }
    assert_eq!(w.sys(d.t, Syscall::IrqMsi, [c.irq, 0, 0, 0, 0, 0]), R::Err(Error::LimitReached));
}

#[test]
fn destroyed_channel_unbinds() {
    let mut w = World::new();
    let d = driver(&mut w);
    bind(&mut w, &d, 3).ok();
    w.k.irq_fire(d.slot);
    assert_eq!(w.sys(d.t, Syscall::ChannelDestroy, [d.chan, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    // Nothing is bound any more: an ack is refused (and delivers nothing).
    assert_eq!(w.sys(d.t, Syscall::IrqAck, [d.irq, 0, 0, 0, 0, 0]), R::Err(Error::InvalidArgument));
    let chan = w.channel(d.t);
    assert_eq!(w.sys(d.t, Syscall::IrqBind, [d.irq, chan, 4, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(w.recv(d.t, chan, WIN, 0), R::Err(Error::Timeout), "event leaked to the new channel");
    w.k.irq_fire(d.slot);
    assert_eq!(w.recv(d.t, chan, WIN, 0), EVENT(4));
}

// ---- I/O APIC lines (`IrqLine`) ----

use crate::arch::host::ioapic_entry;
use crate::irq::line::{redirection, IoApic, MASKED};
use acpi::madt::{LineMode, Madt, Override};

/// q35's I/O APIC: 24 pins at GSI 0, ISA IRQ 0 moved to GSI 2, ISA IRQ 9
/// level and active high.
pub(super) fn q35_ioapic() -> IoApic {
    let mut overrides = [None; acpi::madt::MAX_OVERRIDES];
    overrides[0] = Some(Override { isa_irq: 0, gsi: 2, mode: LineMode::ISA });
    overrides[9] = Some(Override { isa_irq: 9, gsi: 9, mode: LineMode { level: true, active_low: false } });
    IoApic { madt: Madt { ioapic_address: 0xfec0_0000, gsi_base: 0, overrides }, pins: 24 }
}

fn line(w: &mut World, t: Tid, p: usize, n: u64, kind: u64) -> R {
    let class = w.c(p).irq;
    w.sys(t, Syscall::IrqLine, [class, n, kind, 0, 0, 0])
}

#[test]
fn redirection_entries_encode_vector_mode_mask_and_destination() {
    assert_eq!(redirection(0x41, 0, LineMode::ISA, false), 0x41);
    assert_eq!(redirection(0x41, 3, LineMode::ISA, true), 0x41 | MASKED | 3 << 56);
    assert_eq!(redirection(0x4f, 0, LineMode { level: true, active_low: false }, false), 0x4f | 1 << 15);
    assert_eq!(redirection(0x40, 0, LineMode { level: true, active_low: true }, false), 0x40 | 1 << 15 | 1 << 13);
    let a = q35_ioapic();
    assert_eq!(a.resolve(4, irq::LINE_ISA), Ok((4, LineMode::ISA)));
    assert_eq!(a.resolve(0, irq::LINE_ISA), Ok((2, LineMode::ISA)), "the override moves IRQ 0");
    assert_eq!(a.resolve(9, irq::LINE_GSI), Ok((9, LineMode { level: true, active_low: false })));
    assert_eq!(a.resolve(16, irq::LINE_ISA), Err(Error::InvalidArgument));
    assert_eq!(a.resolve(1, 2), Err(Error::InvalidArgument));
    assert_eq!((a.pin_of(23), a.pin_of(24)), (Some(23), None));
    assert_eq!(a.kernel_gsi(), Some(2));
}

#[test]
fn a_line_is_masked_until_bound_and_from_each_delivery_until_the_ack() {
    let mut w = World::new();
    w.k.irqs.ioapic = Some(q35_ioapic());
    let d = driver(&mut w);
    let [tok, gsi, vector, _] = line(&mut w, d.t, d.p, 4, irq::LINE_ISA).ok();
    assert_eq!(gsi, 4);
    let s = crate::irq::IrqTable::slot_of_vector(vector).expect("a line's vector comes from the shared pool");
    assert_ne!(s, d.slot, "the MSI slot was handed out again");
    let unmasked = redirection(vector as u8, 0, LineMode::ISA, false);
    assert_eq!(ioapic_entry(4), unmasked | MASKED, "allocated but unbound: masked");
    assert_eq!(w.sys(d.t, Syscall::IrqBind, [tok, d.chan, 0x44, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(ioapic_entry(4), unmasked, "bound: unmasked");
    let chan = w.k.irqs.slots[s].bound.expect("bound").chan;
    let receives = w.k.channels.slot(chan).receives;
    w.k.irq_fire(s);
    assert_eq!(ioapic_entry(4), unmasked | MASKED, "delivered: masked until the ack");
    assert_eq!(w.recv(d.t, d.chan, WIN, 0), EVENT(0x44));
    assert_eq!(w.k.channels.slot(chan).receives, receives + 1, "an event is a receive for the monitor");
    assert_eq!(w.sys(d.t, Syscall::IrqAck, [tok, 0, 0, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(ioapic_entry(4), unmasked, "acked: unmasked");
    // A level line keeps its mode in the entry.
    let [_, _, v9, _] = line(&mut w, d.t, d.p, 9, irq::LINE_ISA).ok();
    assert_eq!(ioapic_entry(9), redirection(v9 as u8, 0, LineMode { level: true, active_low: false }, true));
    // One pool: MSI vectors and lines together run out at 16.
    let class = w.c(d.p).irq;
    for _ in 3..irq::VECTORS {
        w.sys(d.t, Syscall::IrqMsi, [class, 0, 0, 0, 0, 0]).ok();
    }
    assert_eq!(line(&mut w, d.t, d.p, 10, irq::LINE_ISA), R::Err(Error::LimitReached));
    assert_eq!(ioapic_entry(10), 0, "a refused line was programmed");
}

#[test]
fn one_holder_per_line_the_kernel_line_refused_and_death_releases() {
    let mut w = World::new();
    w.k.irqs.ioapic = Some(q35_ioapic());
    let d = driver(&mut w);
    let other = w.spawn("other");
    let t2 = w.thread(other, 5);
    assert_eq!(line(&mut w, t2, other, 0, irq::LINE_ISA), R::Err(Error::Busy), "the timer's line handed out");
    assert_eq!(line(&mut w, t2, other, 2, irq::LINE_GSI), R::Err(Error::Busy), "the timer's GSI handed out");
    for bad in [(24, irq::LINE_GSI), (16, irq::LINE_ISA), (u64::MAX, irq::LINE_GSI), (4, 7)] {
        assert_eq!(line(&mut w, t2, other, bad.0, bad.1), R::Err(Error::InvalidArgument), "{bad:?}");
    }
    let [tok, _, vector, _] = line(&mut w, t2, other, 4, irq::LINE_ISA).ok();
    let s = crate::irq::IrqTable::slot_of_vector(vector).unwrap();
    assert_eq!(line(&mut w, d.t, d.p, 4, irq::LINE_ISA), R::Err(Error::Busy), "a second holder of ISA IRQ 4");
    assert_eq!(line(&mut w, d.t, d.p, 4, irq::LINE_GSI), R::Err(Error::Busy), "GSI 4 is the same line");
    // The holder delegates it to the driver, which binds it; the driver dies: masked again.
    let drv_tok = w.give(other, tok, d.p, abi::IrqRights::BIND);
    assert_eq!(w.sys(d.t, Syscall::IrqBind, [drv_tok, d.chan, 1, 0, 0, 0]), R::Ok([0; 4]));
    assert_eq!(ioapic_entry(4) & MASKED, 0);
    w.kill(d.p, abi::exit::KILLED, 0);
    assert_ne!(ioapic_entry(4) & MASKED, 0, "the dead binder's line stayed unmasked");
    w.k.irq_fire(s); // nobody: ignored
    // The holder dies: the line is free for the next one.
    w.kill(other, abi::exit::KILLED, 0);
    assert_ne!(ioapic_entry(4) & MASKED, 0);
    let third = w.spawn("third");
    let t3 = w.thread(third, 5);
    assert!(matches!(line(&mut w, t3, third, 4, irq::LINE_ISA), R::Ok(_)), "the line stayed held by the dead");
    // Without an I/O APIC there are no lines.
    w.k.irqs.ioapic = None;
    assert_eq!(line(&mut w, t3, third, 5, irq::LINE_ISA), R::Err(Error::InvalidArgument));
    // Not the Irq class.
    let dma = w.c(third).dma;
    w.rejected(t3, Syscall::IrqLine, [dma, 5, irq::LINE_ISA, 0, 0, 0]);
}
