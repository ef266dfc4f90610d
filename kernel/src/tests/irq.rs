//! Interrupts delivered to user space: allocation, binding, events on a
//! channel (to a waiting receiver and to a later `Receive`), masking until
//! the ack, latching, the second binder refused, and release on death.

use abi::{irq, rights, Error, Syscall};

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
    let send = w.give(d.p, d.chan, cp, rights::SEND);
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
    let irq2 = w.give(d.p, d.irq, drv, rights::BIND);
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
    let irq2 = w.give(d.p, d.irq, other, rights::BIND);
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
    let send_only = w.give(d.p, d.chan, d.p, rights::SEND);
    w.rejected(d.t, Syscall::IrqBind, [d.irq, send_only, 0, 0, 0, 0]);
    // Without BIND.
    let weak = w.give(d.p, d.irq, d.p, rights::DELEGATE);
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
