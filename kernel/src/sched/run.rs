//! Which thread runs: making threads ready, choosing the next one,
//! preemption, yielding, and the address space that goes with it.
//!
//! The policy's state is the run queues ([`super::Scheduler`]) and
//! `Kernel::current`. Nothing else records a pending switch: after a
//! syscall or an interrupt, [`Kernel::reschedule`] works out from those
//! alone whether `current` keeps the CPU, so a handler only changes thread
//! states and returns its result. The IPC paths that hand the CPU straight
//! to their peer use `Kernel::run_next`.

use abi::Error;

use crate::kernel::{Kernel, IDLE_THREAD};
use crate::proc::{State, Tid, NO_THREAD};
use crate::sched::SLICE_TICKS;

impl Kernel {
    /// Put a blocked thread back in the run queue.
    pub fn make_runnable(&mut self, t: Tid) {
        self.timer_cancel(t);
        let th = &mut self.threads[t as usize];
        debug_assert!(!matches!(th.state, State::Runnable | State::Running | State::Free | State::Dead));
        th.state = State::Runnable;
        self.sched.enqueue(&mut self.threads, t);
    }

    /// Finish a blocked operation of `t` with `status` and values, and make it ready.
    pub fn complete(&mut self, t: Tid, status: Result<[u64; 4], Error>) {
        self.threads[t as usize].ret = match status {
            Ok(v) => [0, v[0], v[1], v[2], v[3]],
            Err(e) => [e as u64, 0, 0, 0, 0],
        };
        self.make_runnable(t);
    }

    /// Choose what runs next after `current` stopped (blocked, died) or must
    /// give way. A still-running current goes to the back of its queue.
    pub fn schedule(&mut self) {
        let cur = self.current;
        if self.threads[cur as usize].state == State::Running {
            if cur == IDLE_THREAD {
                self.threads[cur as usize].state = State::Runnable;
            } else {
                self.threads[cur as usize].state = State::Runnable;
                self.sched.enqueue(&mut self.threads, cur);
            }
        }
        let next = self.sched.pop(&mut self.threads).unwrap_or(IDLE_THREAD);
        self.run_next(next);
    }

    /// Make `t`, ready and in no queue, the thread that runs.
    #[inline(always)]
    pub(crate) fn run_next(&mut self, t: Tid) {
        let th = &mut self.threads[t as usize];
        th.state = State::Running;
        if th.slice == 0 {
            th.slice = SLICE_TICKS;
        }
        self.current = t;
        self.on_behalf = NO_THREAD;
    }

    /// Whether a ready thread should take the CPU from a still-running
    /// `current`: one of higher priority, or any when `current` is idle.
    #[inline(always)]
    pub fn higher_ready(&self) -> bool {
        match self.sched.highest() {
            Some(p) => self.current == IDLE_THREAD || p > self.threads[self.current as usize].prio,
            None => false,
        }
    }

    /// Let a higher-priority ready thread run; `current` keeps its place at
    /// the front of its queue.
    pub fn preempt(&mut self) {
        if self.higher_ready() {
            let cur = self.current;
            if cur != IDLE_THREAD {
                self.threads[cur as usize].state = State::Runnable;
                self.sched.enqueue_front(&mut self.threads, cur);
            }
            self.schedule();
        }
    }

    /// After a syscall or interrupt: the thread to run next follows from
    /// the tables alone (no handler leaves a note for it): a new one if
    /// `current` stopped or a higher priority is ready.
    pub fn reschedule(&mut self) {
        if self.threads[self.current as usize].state != State::Running {
            self.schedule();
        } else if self.higher_ready() {
            self.preempt();
        }
    }

    /// Give up the CPU to threads of equal or higher priority.
    pub fn yield_now(&mut self) {
        let cur = self.current;
        if let Some(p) = self.sched.highest() {
            if p >= self.threads[cur as usize].prio {
                self.threads[cur as usize].slice = SLICE_TICKS;
                self.schedule();
            }
        }
    }

    /// Load thread `t`'s address space if it is not the one loaded (its
    /// `root`: its process's top-level table and, with PCID, its PCID and
    /// the no-flush bit; see [`crate::mem::pcid`]), and record it.
    ///
    /// # Safety
    /// Called by the switch to `t` with nothing left to do in the old
    /// space (every space maps the kernel half, so the kernel goes on).
    #[inline(always)]
    pub unsafe fn activate(&mut self, t: Tid) {
        let root = self.threads[t as usize].root;
        if self.active_root != root {
            self.active_root = root;
            // SAFETY: the caller's contract; `root` is a thread's address
            // space, which shares the kernel half.
            unsafe { crate::arch::load_address_space(root) };
        }
    }
}
