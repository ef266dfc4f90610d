//! Time and the CPU: sleep, yield, uptime, priorities.

use abi::call::{NoArgs, TimeoutArgs};
use abi::{Error, SyscallClass};

use crate::sys::calls;

#[inline]
fn token() -> u64 {
    crate::class_token(SyscallClass::Thread)
}

/// Sleep at least `ns` nanoseconds (rounded up to the kernel tick).
pub fn sleep_ns(ns: u64) -> Result<(), Error> {
    calls::SLEEP.call(token(), TimeoutArgs { timeout: ns }).map(|_| ())
}

/// Sleep at least `ms` milliseconds.
pub fn sleep_ms(ms: u64) -> Result<(), Error> {
    sleep_ns(ms.saturating_mul(1_000_000))
}

/// Give the CPU to another ready thread of equal or higher priority.
pub fn yield_now() -> Result<(), Error> {
    calls::YIELD.call(token(), NoArgs {}).map(|_| ())
}

/// Nanoseconds since boot, in whole kernel ticks (`limits::TICK_NS`);
/// 0 for a program without the thread class.
pub fn uptime_ns() -> u64 {
    calls::UPTIME.call(token(), NoArgs {}).map(|r| r.value).unwrap_or(0)
}

/// Milliseconds since boot.
pub fn uptime_ms() -> u64 {
    uptime_ns() / 1_000_000
}

/// This thread's (base, effective) priority (the null syscall: inlined,
/// so a call is the class token's load, the `syscall` and one test).
#[inline]
pub fn priority() -> Result<(u8, u8), Error> {
    calls::PRIORITY.call(token(), NoArgs {}).map(|r| (r.base as u8, r.effective as u8))
}

/// The time-stamp counter (guest instructions under `-icount`).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no side effects.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// End this thread.
pub fn thread_exit() -> ! {
    let _ = calls::THREAD_EXIT.call(token(), NoArgs {});
    crate::exit(0)
}
