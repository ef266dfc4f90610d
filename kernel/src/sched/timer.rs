//! The clock and the timer list: sleeps, IPC and wait timeouts, and the
//! delay after a bad token all wake a thread at a tick.
//!
//! A sorted singly linked list threaded through the thread table
//! (`Thread::timer_next`, `Thread::deadline`), so arming costs no
//! allocation and a tick looks only at the head. Kept apart from the run
//! queues: what a timeout *does* when it runs out depends on what the
//! thread waits in, which the kernel decides ([`crate::Kernel::tick`]);
//! this module only keeps time and order.

use crate::proc::{ThreadTable, Tid, NO_THREAD};

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
