//! The clock and the timer list: sleeps, IPC and wait timeouts, and the
//! delay after a bad token all wake a thread at a tick.
//!
//! A sorted singly linked list threaded through the thread table
//! (`Thread::timer_next`, `Thread::deadline`), so arming costs no
//! allocation and a tick looks only at the head. Kept apart from the run
//! queues: what a timeout *does* when it runs out depends on what the
//! thread waits in, which the kernel decides ([`crate::Kernel::tick`]);
//! this module only keeps time and order.

use abi::Error;

use crate::kernel::{Kernel, IDLE_THREAD};
use crate::proc::{State, ThreadTable, Tid, NO_THREAD};
use crate::sched::SLICE_TICKS;

/// The clock and the threads waiting for a tick, soonest first.
pub struct Timers {
    /// Ticks since boot.
    pub now: u64,
    head: Tid,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers { now: 0, head: NO_THREAD }
    }
}

impl Timers {
    /// Ticks to wait for `ns` nanoseconds (at least one for a non-zero wait).
    pub fn ticks_for(ns: u64) -> u64 {
        ns.div_ceil(abi::limits::TICK_NS)
    }

    /// Deadline for a timeout argument, `None` for [`abi::FOREVER`].
    pub fn deadline(&self, timeout_ns: u64) -> Option<u64> {
        (timeout_ns != abi::FOREVER).then(|| self.now.saturating_add(Self::ticks_for(timeout_ns)))
    }

    /// The thread whose timer runs out first ([`NO_THREAD`] if none).
    pub fn first(&self) -> Tid {
        self.head
    }

    /// Wake `t` at tick `deadline`.
    pub fn arm(&mut self, threads: &mut ThreadTable, t: Tid, deadline: u64) {
        self.cancel(threads, t);
        threads[t as usize].deadline = deadline;
        let mut prev = NO_THREAD;
        let mut at = self.head;
        while at != NO_THREAD && threads[at as usize].deadline <= deadline {
            prev = at;
            at = threads[at as usize].timer_next;
        }
        threads[t as usize].timer_next = at;
        if prev == NO_THREAD {
            self.head = t;
        } else {
            threads[prev as usize].timer_next = t;
        }
    }

    /// Take `t` off the list if it is on it.
    #[inline(always)]
    pub fn cancel(&mut self, threads: &mut ThreadTable, t: Tid) {
        if threads[t as usize].deadline != u64::MAX {
            self.unlink(threads, t);
        }
    }

    fn unlink(&mut self, threads: &mut ThreadTable, t: Tid) {
        threads[t as usize].deadline = u64::MAX;
        let mut prev = NO_THREAD;
        let mut at = self.head;
        while at != NO_THREAD {
            let next = threads[at as usize].timer_next;
            if at == t {
                if prev == NO_THREAD {
                    self.head = next;
                } else {
                    threads[prev as usize].timer_next = next;
                }
                break;
            }
            prev = at;
            at = next;
        }
        threads[t as usize].timer_next = NO_THREAD;
    }

    /// Take off the list the first thread whose deadline is `now` or
    /// earlier, if there is one.
    pub fn pop_expired(&mut self, threads: &mut ThreadTable) -> Option<Tid> {
        let t = self.head;
        if t == NO_THREAD || threads[t as usize].deadline > self.now {
            return None;
        }
        self.unlink(threads, t);
        Some(t)
    }
}

/// What the kernel does with the clock: timeouts by what the thread waits
/// in, the time slice, and the ticks that arrived during a long syscall.
impl Kernel {
    /// Ticks to wait for `ns` nanoseconds (see [`Timers::ticks_for`]).
    pub fn ticks_for(ns: u64) -> u64 {
        Timers::ticks_for(ns)
    }

    /// Deadline for a timeout argument, `None` for [`abi::FOREVER`].
    pub fn deadline(&self, timeout_ns: u64) -> Option<u64> {
        self.timers.deadline(timeout_ns)
    }

    /// Wake `t` at tick `deadline`.
    pub fn timer_arm(&mut self, t: Tid, deadline: u64) {
        self.timers.arm(&mut self.threads, t, deadline)
    }

    /// Take `t` off the timer list if it is on it.
    pub fn timer_cancel(&mut self, t: Tid) {
        self.timers.cancel(&mut self.threads, t)
    }

    /// One timer tick: wake expired timers, charge the time slice.
    pub fn tick(&mut self) {
        self.catch_up_ticks();
        self.timers.now += 1;
        while let Some(t) = self.timers.pop_expired(&mut self.threads) {
            self.expire(t);
        }
        let cur = self.current;
        // A server switched to directly by its client's call runs on the
        // client's time: otherwise a client whose server is waiting keeps
        // the CPU through every round trip while its server pays for part of
        // it, and then the server, not the client, goes to the back of the
        // queue. The client's slice ending while its request is served
        // sends it to the back of the queue when it gets its reply (the fast
        // reply leaves it to the general path); after that the server pays
        // for itself again (a server that never replies is still
        // time-sliced).
        let b = self.on_behalf;
        if b != NO_THREAD {
            let client = &mut self.threads[b as usize];
            if client.state == State::AwaitingReply && client.msg.server == cur && client.slice > 0 {
                client.slice -= 1;
                self.reschedule();
                return;
            }
        }
        if cur != IDLE_THREAD {
            let th = &mut self.threads[cur as usize];
            th.slice = th.slice.saturating_sub(1);
            if th.slice == 0 {
                th.slice = SLICE_TICKS;
                if self.sched.highest().is_some_and(|p| p >= th.prio) {
                    self.schedule();
                }
            }
        }
        self.reschedule();
    }

    /// Run the timer ticks that arrived while a long syscall let interrupts
    /// in at a safe point ([`crate::arch::tick_window`]): there they
    /// are only counted, and here, with the kernel's state whole again,
    /// they take effect, so the clock loses none. Called at the end of
    /// every general-path syscall (the only ones that open windows) and at
    /// each tick (for windows opened while ending a faulting process).
    #[inline(always)]
    pub(crate) fn catch_up_ticks(&mut self) {
        let late = crate::arch::take_late_ticks();
        if late != 0 {
            self.run_late_ticks(late);
        }
    }

    #[cold]
    #[inline(never)]
    fn run_late_ticks(&mut self, late: u64) {
        let irqs = late >> crate::irq::LATE_SHIFT;
        for s in 0..crate::irq::SLOTS {
            if irqs & (1 << s) == 0 {
            } else if self.irqs.slots[s].live {
                self.irq_fire(s);
            } else {
                // Acknowledged in the window; nobody holds the vector.
                crate::warn!("unexpected interrupt {}", abi::irq::FIRST_VECTOR as usize + s);
            }
        }
        for _ in 0..late & ((1 << crate::irq::LATE_SHIFT) - 1) {
            self.tick();
        }
    }

    /// A timed wait of `t` ran out.
    fn expire(&mut self, t: Tid) {
        let th = &self.threads[t as usize];
        let obj = th.wait_obj;
        match th.state {
            // Sleep, or the delay after a bad token: the result is already set.
            State::Sleeping => self.make_runnable(t),
            State::SendBlocked => {
                let c = self.channels.slot(obj);
                c.senders.remove(&mut self.threads, t);
                c.errors += 1;
                self.ipc.in_flight -= 1;
                self.complete(t, Err(Error::Timeout));
                self.sender_left(obj);
            }
            State::RecvBlocked => {
                let c = self.channels.slot(obj);
                c.receivers.remove(&mut self.threads, t);
                c.errors += 1;
                self.complete(t, Err(Error::Timeout));
            }
            State::Waiting => {
                self.procs[obj as usize].waiters.remove(&mut self.threads, t);
                self.complete(t, Err(Error::Timeout));
            }
            _ => {}
        }
    }

    /// Put `current` to sleep until tick `deadline`; its result is `Ok`.
    pub fn sleep_current(&mut self, deadline: u64) {
        let t = self.current;
        self.threads[t as usize].ret = [0; 5];
        self.threads[t as usize].state = State::Sleeping;
        self.timer_arm(t, deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::Thread;
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    fn table() -> Box<ThreadTable> {
        Box::new(core::array::from_fn(|_| Thread { deadline: u64::MAX, timer_next: NO_THREAD, ..Thread::default() }))
    }

    #[test]
    fn expire_in_deadline_order_and_cancel_unlinks() {
        let mut th = table();
        let mut tm = Timers::default();
        for (t, d) in [(1, 30), (2, 10), (3, 20), (4, 10), (5, 40)] {
            tm.arm(&mut th, t, d);
        }
        tm.cancel(&mut th, 3);
        tm.arm(&mut th, 5, 25); // re-arming moves it
        assert_eq!(tm.first(), 2);
        tm.now = 9;
        assert_eq!(tm.pop_expired(&mut th), None);
        tm.now = 30;
        let order: Vec<Tid> = core::iter::from_fn(|| tm.pop_expired(&mut th)).collect();
        assert_eq!(order, [2, 4, 5, 1], "equal deadlines keep their arming order");
        assert_eq!(tm.first(), NO_THREAD);
        assert!([1, 2, 3, 4, 5].iter().all(|&t| th[t].deadline == u64::MAX && th[t].timer_next == NO_THREAD));
        assert_eq!(tm.deadline(abi::FOREVER), None);
        assert_eq!(tm.deadline(1), Some(31), "a non-zero wait is at least one tick");
    }
}
