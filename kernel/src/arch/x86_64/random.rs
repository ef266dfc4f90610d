//! Boot-time entropy for the token key: RDSEED and RDRAND when CPUID
//! reports them, always mixed with TSC readings (whose low bits jitter
//! between runs on real hardware).

use core::arch::asm;
use core::arch::x86_64::{__cpuid, __cpuid_count, _rdtsc};

fn rdrand() -> Option<u64> {
    for _ in 0..16 {
        let (v, ok): (u64, u8);
        // SAFETY: only called when CPUID reports RDRAND.
        unsafe { asm!("rdrand {}", "setc {}", out(reg) v, out(reg_byte) ok, options(nomem, nostack)) };
        if ok != 0 {
            return Some(v);
        }
    }
    None
}

fn rdseed() -> Option<u64> {
    for _ in 0..64 {
        let (v, ok): (u64, u8);
        // SAFETY: only called when CPUID reports RDSEED.
        unsafe { asm!("rdseed {}", "setc {}", out(reg) v, out(reg_byte) ok, options(nomem, nostack)) };
        if ok != 0 {
            return Some(v);
        }
    }
    None
}

/// Seed words and a description of where they came from.
pub fn seed() -> ([u64; 8], &'static str) {
    // CPUID leaves 1 and 7 exist on every x86-64 CPU.
    let (has_rdrand, has_rdseed) = (__cpuid(1).ecx & (1 << 30) != 0, __cpuid_count(7, 0).ebx & (1 << 18) != 0);
    let mut s = [0u64; 8];
    let tsc = || {
        // SAFETY: RDTSC is always available in long mode.
        unsafe { _rdtsc() }
    };
    for (i, w) in s.iter_mut().enumerate() {
        let hw = match i % 2 {
            0 if has_rdseed => rdseed(),
            _ if has_rdrand => rdrand(),
            _ => None,
        };
        *w = hw.unwrap_or(0) ^ tsc().rotate_left(i as u32 * 7);
    }
    let source = match (has_rdseed, has_rdrand) {
        (true, true) => "RDSEED+RDRAND+TSC",
        (false, true) => "RDRAND+TSC",
        (true, false) => "RDSEED+TSC",
        (false, false) => "TSC only (no hardware RNG reported)",
    };
    (s, source)
}
