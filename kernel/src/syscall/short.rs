//! The short path: the cheap calls that only read the caller's own state.
//!
//! `Priority` and `Uptime` change nothing: no thread becomes ready or
//! stops, no tick window opens, so what the general path does around its
//! handlers (decoding the number through the whole `match`, the late-tick
//! catch-up, `reschedule`) has nothing to do for them, and the general
//! dispatcher's frame (it spills for the biggest handler) costs more than
//! the answer. Here they get the same token check (the caller's `Thread`
//! class capability with `USE`, through the same [`Kernel::class`]) and the
//! same results, written straight into the caller's `ret`.
//!
//! Anything else, and any token the check refuses, is declined with
//! nothing touched: the general path then runs the call from the start,
//! finds the same bad token and charges the same delay
//! ([`crate::cap::penalty`]), so refusals have one implementation.
//! Host tests (`tests/short.rs`) hold the two paths to the same answers.

use abi::call::{self, PriorityResults};
use abi::{Syscall, SyscallClass};

use crate::kernel::Kernel;

impl Kernel {
    /// Answer `Priority` or `Uptime` for the running thread if `token` is
    /// its process's `Thread` class capability; `false` (nothing touched)
    /// for any other call or token, which the general path then takes.
    #[inline(always)]
    pub(crate) fn syscall_short(&mut self, nr: u64, token: u64) -> bool {
        let priority = nr == Syscall::Priority as u64;
        if !priority && nr != Syscall::Uptime as u64 {
            return false;
        }
        let t = self.current;
        let p = self.proc_of(t);
        if self.class(p, token, SyscallClass::Thread).is_err() {
            return false;
        }
        let now = self.timers.now;
        let th = &mut self.threads[t as usize];
        let v = if priority {
            PriorityResults { base: th.base_prio as u64, effective: th.prio as u64 }.to_regs()
        } else {
            call::Value { value: now * abi::limits::TICK_NS }.to_regs()
        };
        th.ret = [0, v[0], v[1], v[2], v[3]];
        true
    }
}
