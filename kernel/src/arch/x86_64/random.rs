//! Boot-time entropy for the token key, gathered into a
//! [`crate::cap::entropy::Pool`]: RDSEED and RDRAND when CPUID reports
//! them; always the TSC's jitter against the PIT's refresh clock (two
//! independent oscillators on real hardware, host scheduling under
//! emulation), the RTC's date and time, the loader's block (memory map,
//! modules, RSDP, EFI system table) and one TSC reading.
//!
//! On UEFI the boot stub asks the firmware's EFI_RNG_PROTOCOL for 32 bytes
//! before it exits boot services (`boot::stub::efi_random`); they are mixed in
//! too when the firmware has the protocol.

use core::arch::asm;
use core::arch::x86_64::{__cpuid, __cpuid_count, _rdtsc};

use x86_64::instructions::port::Port;

use crate::boot::multiboot::{BootInfo, Firmware};
use crate::cap::entropy::{Pool, Source};

/// Jitter samples taken (each one refresh-clock edge, ~15 µs).
const JITTER_SAMPLES: usize = 256;
/// Spins before giving up on an edge (a chipset without the refresh bit).
const EDGE_SPINS: u32 = 1_000_000;

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

fn tsc() -> u64 {
    // SAFETY: RDTSC is always available in long mode.
    unsafe { _rdtsc() }
}

fn inb(port: u16) -> u8 {
    // SAFETY: ports 0x61 (system control B, read only here) and 0x71 (CMOS
    // data) have no side effects on read beyond the selected CMOS register.
    unsafe { Port::new(port).read() }
}

/// TSC deltas between edges of the PIT-driven refresh bit (port 0x61 bit
/// 4); returns how many edges were seen.
fn jitter(pool: &mut Pool) -> usize {
    let mut seen = 0;
    let mut last = tsc();
    let mut level = inb(0x61) & 0x10;
    for _ in 0..JITTER_SAMPLES {
        let mut spins = 0;
        while inb(0x61) & 0x10 == level {
            spins += 1;
            if spins == EDGE_SPINS {
                return seen;
            }
        }
        level ^= 0x10;
        let now = tsc();
        pool.add(Source::TscJitter, now.wrapping_sub(last) ^ ((spins as u64) << 40));
        last = now;
        seen += 1;
    }
    seen
}

/// The RTC's seconds, minutes, hours, day, month, year and century, or
/// `None` when the CMOS reads as absent (all ones).
fn rtc() -> Option<u64> {
    let mut word = 0u64;
    for reg in [0x00u8, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32] {
        // SAFETY: selecting a CMOS register (NMI stays enabled: bit 7 clear)
        // only affects the next read of port 0x71.
        unsafe { Port::<u8>::new(0x70).write(reg) };
        word = (word << 8) | inb(0x71) as u64;
    }
    (word != 0x00ff_ffff_ffff_ffff).then_some(word)
}

/// Everything the loader told us, as words.
fn boot_info(pool: &mut Pool, boot: &BootInfo) {
    for r in boot.regions() {
        pool.add(Source::BootInfo, r.start ^ r.len.rotate_left(32) ^ r.kind as u64);
    }
    for m in boot.modules() {
        pool.add(Source::BootInfo, m.start ^ m.end.rotate_left(32));
    }
    if let Some(r) = &boot.rsdp {
        for c in r.bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            pool.add(Source::BootInfo, u64::from_le_bytes(w));
        }
    }
    if let Firmware::Uefi { system_table } = boot.firmware {
        pool.add(Source::BootInfo, system_table);
    }
    pool.add(Source::BootInfo, boot.raw_regions as u64);
}

/// Gather every source this machine has.
pub fn gather(boot: &BootInfo) -> Pool {
    // CPUID leaves 1 and 7 exist on every x86-64 CPU.
    let (has_rdrand, has_rdseed) = (__cpuid(1).ecx & (1 << 30) != 0, __cpuid_count(7, 0).ebx & (1 << 18) != 0);
    let mut pool = Pool::new();
    pool.add(Source::Tsc, tsc());
    for w in crate::boot::stub::efi_random().chunks(8) {
        let mut b = [0u8; 8];
        b[..w.len()].copy_from_slice(w);
        pool.add(Source::EfiRng, u64::from_le_bytes(b));
    }
    for _ in 0..4 {
        if let Some(v) = has_rdseed.then(rdseed).flatten() {
            pool.add(Source::Rdseed, v);
        }
        if let Some(v) = has_rdrand.then(rdrand).flatten() {
            pool.add(Source::Rdrand, v);
        }
    }
    if let Some(t) = rtc() {
        pool.add(Source::Rtc, t);
    }
    boot_info(&mut pool, boot);
    jitter(&mut pool);
    pool.add(Source::Tsc, tsc());
    pool
}
