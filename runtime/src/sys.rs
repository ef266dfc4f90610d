//! The raw syscall instruction and typed results.
//!
//! `call` puts the syscall number in `rax`, the authorising token in `rdi`
//! and up to five arguments in `rsi, rdx, r10, r8, r9`; the kernel answers
//! with an error code in `rax` and four values in `rsi, rdx, r8, r9`
//! (see [`abi`]).

use abi::{Error, Syscall};

/// Make a syscall; `Ok` carries the four result values.
///
/// # Safety
/// The kernel may write user memory named by the arguments (receive
/// windows, output buffers, a lent page, reply data) and may unmap or remap
/// memory (`Unmap`, `ProcessWrite` on this process): the caller guarantees
/// that no Rust reference is affected, i.e. such memory is owned by the
/// caller and not otherwise borrowed.
#[inline(always)]
pub unsafe fn call(nr: Syscall, token: u64, a: [u64; 5]) -> Result<[u64; 4], Error> {
    // SAFETY: the caller's contract covers the arguments.
    let (status, r) = unsafe { raw(nr as u64, token, a) };
    Error::check(status).map(|()| r)
}

/// The syscall instruction itself, with any number (for tests of the
/// kernel's handling of unknown numbers).
///
/// # Safety
/// As for [`call`].
#[cfg(target_os = "none")]
#[inline(always)]
pub unsafe fn raw(nr: u64, token: u64, a: [u64; 5]) -> (u64, [u64; 4]) {
    let (status, r1, r2, r3, r4);
    // SAFETY: the kernel preserves every register except the ones named
    // here; what it does to memory is the caller's contract.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr => status,
            inlateout("rdi") token => _,
            inlateout("rsi") a[0] => r1,
            inlateout("rdx") a[1] => r2,
            inlateout("r10") a[2] => _,
            inlateout("r8") a[3] => r3,
            inlateout("r9") a[4] => r4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    (status, [r1, r2, r3, r4])
}

/// Host builds have no kernel.
///
/// # Safety
/// None needed on the host; `unsafe` to match the machine's signature.
#[cfg(not(target_os = "none"))]
pub unsafe fn raw(_nr: u64, _token: u64, _a: [u64; 5]) -> (u64, [u64; 4]) {
    (Error::UnknownSyscall as u64, [0; 4])
}
