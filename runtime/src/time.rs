//! Time and the CPU: sleep, yield, uptime, priorities.

use abi::{Error, Syscall, SyscallClass};

use crate::sys::call;

fn token() -> u64 {
    crate::class_token(SyscallClass::Thread)
}

/// Sleep at least `ns` nanoseconds (rounded up to the kernel tick).
pub fn sleep_ns(ns: u64) -> Result<(), Error> {
    // SAFETY: these syscalls touch no user memory.
    unsafe { call(Syscall::Sleep, token(), [ns, 0, 0, 0, 0]) }.map(|_| ())
}

/// Sleep at least `ms` milliseconds.
pub fn sleep_ms(ms: u64) -> Result<(), Error> {
    sleep_ns(ms.saturating_mul(1_000_000))
}

/// Give the CPU to another ready thread of equal or higher priority.
pub fn yield_now() -> Result<(), Error> {
    // SAFETY: these syscalls touch no user memory.
    unsafe { call(Syscall::Yield, token(), [0; 5]) }.map(|_| ())
}

/// Nanoseconds since boot, in whole kernel ticks (`limits::TICK_NS`);
/// 0 for a program without the thread class.
pub fn uptime_ns() -> u64 {
    // SAFETY: these syscalls touch no user memory.
    unsafe { call(Syscall::Uptime, token(), [0; 5]) }.map(|r| r[0]).unwrap_or(0)
}

/// Milliseconds since boot.
pub fn uptime_ms() -> u64 {
    uptime_ns() / 1_000_000
}

/// This thread's (base, effective) priority.
pub fn priority() -> Result<(u8, u8), Error> {
    // SAFETY: these syscalls touch no user memory.
    unsafe { call(Syscall::Priority, token(), [0; 5]) }.map(|r| (r[0] as u8, r[1] as u8))
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
    // SAFETY: these syscalls touch no user memory.
    let _ = unsafe { call(Syscall::ThreadExit, token(), [0; 5]) };
    crate::exit(0)
}
