//! Fixed-priority round-robin scheduling.
//!
//! One FIFO per priority and a bitmap of non-empty levels: picking the next
//! thread is a find-highest-bit and a queue pop. Equal priorities share the
//! CPU in time slices; a higher priority always wins. The running thread is
//! not in any queue.
//!
//! The run queues are this module's state; which thread runs and when it
//! gives way is in [`run`], the clock and timeouts in [`timer`].

pub mod run;
pub mod timer;

use crate::proc::{Queue, ThreadTable, Tid};

const LEVELS: usize = abi::limits::MAX_PRIORITY as usize + 1;
const _: () = assert!(LEVELS <= 32);

/// Time slice in ticks.
pub const SLICE_TICKS: u32 = 10;

/// The run queues.
#[derive(Default)]
pub struct Scheduler {
    queues: [Queue; LEVELS],
    nonempty: u32,
}

impl Scheduler {
    /// Where the non-empty mask is, for the assembly fast path
    /// (`arch::x86_64::fastpath`).
    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    pub(crate) const NONEMPTY_AT: usize = core::mem::offset_of!(Scheduler, nonempty);

    /// Add `t` at the back of its priority's queue.
    pub fn enqueue(&mut self, threads: &mut ThreadTable, t: Tid) {
        let p = threads[t as usize].prio as usize;
        self.queues[p].push_back(threads, t);
        self.nonempty |= 1 << p;
    }

    /// Add `t` at the front (it was preempted and keeps its turn).
    pub fn enqueue_front(&mut self, threads: &mut ThreadTable, t: Tid) {
        let p = threads[t as usize].prio as usize;
        self.queues[p].push_front(threads, t);
        self.nonempty |= 1 << p;
    }

    /// Take `t` out of its queue (it must be in one).
    pub fn remove(&mut self, threads: &mut ThreadTable, t: Tid) {
        let p = threads[t as usize].prio as usize;
        self.queues[p].remove(threads, t);
        if self.queues[p].is_empty() {
            self.nonempty &= !(1 << p);
        }
    }

    /// The highest priority with a ready thread.
    #[inline]
    pub fn highest(&self) -> Option<u8> {
        (self.nonempty != 0).then(|| 31 - self.nonempty.leading_zeros() as u8)
    }

    /// Take the first thread of the highest non-empty priority.
    pub fn pop(&mut self, threads: &mut ThreadTable) -> Option<Tid> {
        let p = self.highest()? as usize;
        let t = self.queues[p].pop_front(threads);
        if self.queues[p].is_empty() {
            self.nonempty &= !(1 << p);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::Thread;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn highest_priority_first_then_fifo() {
        let mut th: std::boxed::Box<ThreadTable> = std::boxed::Box::new(core::array::from_fn(|_| Thread::default()));
        for (t, p) in [(0, 1), (1, 5), (2, 1), (3, 5), (4, 0)] {
            th[t].prio = p;
        }
        let mut s = Scheduler::default();
        for t in 0..5 {
            s.enqueue(&mut th, t);
        }
        assert_eq!(s.highest(), Some(5));
        s.remove(&mut th, 3);
        s.enqueue_front(&mut th, 3);
        let order: Vec<Tid> = core::iter::from_fn(|| s.pop(&mut th)).collect();
        assert_eq!(order, [3, 1, 0, 2, 4]);
        assert_eq!(s.highest(), None);
    }
}
