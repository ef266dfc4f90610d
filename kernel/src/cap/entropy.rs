//! Mixing boot-time entropy into the token key.
//!
//! Tokens are only unguessable if the key is. RDSEED/RDRAND are the best
//! source but many CPUs (and QEMU's default `qemu64`) lack them, and the TSC
//! read at boot alone is nearly constant from boot to boot. So the kernel
//! feeds every source it has into one [`Pool`]: the hardware RNG where
//! present, the TSC's jitter against an independent clock (the PIT), the
//! RTC's wall-clock time, and what the firmware handed over (memory map,
//! module and table addresses). Each word is absorbed with SipHash under a
//! domain that names its source and position, so no source can stand in
//! for another and every input changes the key. The pool remembers which
//! sources contributed, for the boot log and for [`Pool::is_strong`].

use core::fmt;

use super::token::siphash24;

/// Where an entropy word came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Source {
    Rdseed = 0,
    Rdrand = 1,
    /// TSC deltas between ticks of an independent clock.
    TscJitter = 2,
    /// The real-time clock's date and time.
    Rtc = 3,
    /// The loader's block: memory map, modules, firmware tables.
    BootInfo = 4,
    /// One TSC reading (cycles since power-on: weak on its own).
    Tsc = 5,
    /// The firmware's EFI_RNG_PROTOCOL (through the boot stub's EFI entry).
    EfiRng = 6,
}

impl Source {
    pub const ALL: [Source; 7] =
        [Source::EfiRng, Source::Rdseed, Source::Rdrand, Source::TscJitter, Source::Rtc, Source::BootInfo, Source::Tsc];

    pub fn name(self) -> &'static str {
        match self {
            Source::Rdseed => "RDSEED",
            Source::Rdrand => "RDRAND",
            Source::TscJitter => "TSC jitter",
            Source::Rtc => "RTC",
            Source::BootInfo => "memory map",
            Source::Tsc => "TSC",
            Source::EfiRng => "EFI RNG",
        }
    }
}

/// Accumulates entropy words; [`Pool::seed`] gives the key material.
#[derive(Clone, Debug)]
pub struct Pool {
    state: [u64; 2],
    counts: [u32; Source::ALL.len()],
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    pub fn new() -> Pool {
        Pool { state: [0x6b65_726e_656c_2d31, 0x746f_6b65_6e2d_6b31], counts: [0; Source::ALL.len()] }
    }

    /// Absorb one word from `source`.
    pub fn add(&mut self, source: Source, word: u64) {
        let n = &mut self.counts[source as usize];
        let domain = ((source as u64) << 56) | *n as u64;
        *n = n.saturating_add(1);
        let [k0, k1] = self.state;
        let a = siphash24([k0, k1], word ^ domain.rotate_left(29));
        let b = siphash24([k1 ^ domain, a], word);
        self.state = [a, b];
    }

    /// Words absorbed from `source`.
    pub fn count(&self, source: Source) -> u32 {
        self.counts[source as usize]
    }

    /// True when the key does not rest on the TSC alone: a hardware RNG
    /// contributed, or at least two of the independent sources did.
    pub fn is_strong(&self) -> bool {
        let hw = self.count(Source::Rdseed) + self.count(Source::Rdrand) + self.count(Source::EfiRng) > 0;
        let independent =
            [Source::TscJitter, Source::Rtc, Source::BootInfo].iter().filter(|s| self.count(**s) > 0).count();
        hw || independent >= 2
    }

    /// Key material for [`super::TokenGen::new`].
    pub fn seed(&self) -> [u64; 2] {
        self.state
    }

    /// The sources that contributed, for the boot log: `RDRAND+TSC jitter+...`.
    pub fn sources(&self) -> Sources<'_> {
        Sources(self)
    }
}

/// Display helper for [`Pool::sources`].
pub struct Sources<'a>(&'a Pool);

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let mut first = true;
        for s in Source::ALL.iter().filter(|s| self.0.count(**s) > 0) {
            if !first {
                f.write_str("+")?;
            }
            first = false;
            f.write_str(s.name())?;
        }
        if first {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::TokenGen;
    extern crate std;
    use std::format;

    /// A pool as `qemu64` gives it: no hardware RNG.
    fn pool(jitter: u64, rtc: u64, boot: u64, tsc: u64) -> Pool {
        let mut p = Pool::new();
        for i in 0..64 {
            p.add(Source::TscJitter, jitter.wrapping_add(i));
        }
        p.add(Source::Rtc, rtc);
        p.add(Source::BootInfo, boot);
        p.add(Source::Tsc, tsc);
        p
    }

    fn first_token(p: &Pool) -> u64 {
        TokenGen::new(&p.seed(), 0).fresh()
    }

    #[test]
    fn the_key_changes_with_each_source() {
        let base = first_token(&pool(10, 20, 30, 40));
        assert_ne!(base, first_token(&pool(11, 20, 30, 40)), "TSC jitter ignored");
        assert_ne!(base, first_token(&pool(10, 21, 30, 40)), "RTC ignored");
        assert_ne!(base, first_token(&pool(10, 20, 31, 40)), "boot info ignored");
        assert_ne!(base, first_token(&pool(10, 20, 30, 41)), "TSC ignored");
        let mut hw = pool(10, 20, 30, 40);
        hw.add(Source::Rdrand, 0);
        assert_ne!(base, first_token(&hw), "RDRAND ignored");
        let mut seed = pool(10, 20, 30, 40);
        seed.add(Source::Rdseed, 0);
        assert_ne!(first_token(&hw), first_token(&seed), "RDSEED and RDRAND words must not be interchangeable");
        let mut efi = pool(10, 20, 30, 40);
        efi.add(Source::EfiRng, 0);
        assert_ne!(base, first_token(&efi), "EFI RNG ignored");
        assert_ne!(first_token(&hw), first_token(&efi));
        assert_eq!(base, first_token(&pool(10, 20, 30, 40)), "the same inputs give the same key");
    }

    #[test]
    fn a_word_counts_for_its_source_and_position_only() {
        let mut a = Pool::new();
        a.add(Source::Rtc, 5);
        let mut b = Pool::new();
        b.add(Source::BootInfo, 5);
        assert_ne!(a.seed(), b.seed());
        let (mut c, mut d) = (Pool::new(), Pool::new());
        c.add(Source::TscJitter, 1);
        c.add(Source::TscJitter, 2);
        d.add(Source::TscJitter, 2);
        d.add(Source::TscJitter, 1);
        assert_ne!(c.seed(), d.seed());
    }

    #[test]
    fn the_log_names_the_sources_and_tsc_alone_is_weak() {
        let p = pool(1, 2, 3, 4);
        assert_eq!(format!("{}", p.sources()), "TSC jitter+RTC+memory map+TSC");
        assert!(p.is_strong());
        let mut tsc = Pool::new();
        tsc.add(Source::Tsc, 12345);
        assert_eq!(format!("{}", tsc.sources()), "TSC");
        assert!(!tsc.is_strong(), "the TSC alone must not count as enough");
        tsc.add(Source::Rtc, 1);
        assert!(!tsc.is_strong(), "one independent source is not enough");
        tsc.add(Source::TscJitter, 1);
        assert!(tsc.is_strong());
        let mut hw = Pool::new();
        hw.add(Source::Rdrand, 1);
        assert!(hw.is_strong());
        let mut efi = Pool::new();
        efi.add(Source::EfiRng, 1);
        efi.add(Source::Tsc, 1);
        assert!(efi.is_strong());
        assert_eq!(format!("{}", efi.sources()), "EFI RNG+TSC");
        assert_eq!(format!("{}", Pool::new().sources()), "nothing");
    }
}
