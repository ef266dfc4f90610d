//! The price of a bad token: the caller sleeps, longer with each strike.
//!
//! A syscall whose token is forged, stale, foreign or short of rights
//! fails with [`BadToken`] (reported as `Incapable`), and the caller is
//! delayed: 1 ms doubling per strike up to one second, ±25 % jitter,
//! strikes halving every two quiet seconds. Guessing tokens thus costs
//! time, while an honest process, which gets here only by using a token
//! of an object that is gone, pays a millisecond or two. Only the offender
//! sleeps; its record ([`Strikes`]) lives with its process.
//!
//! Separate from the capability tables so that the lookup stays a pure
//! function and the delay policy can be read (and tested) in one place.

use abi::Error;

use crate::kernel::Kernel;
use crate::proc::State;

/// A failed token check: the syscall fails with `Incapable` and its caller
/// pays the delay. Returned by every token lookup, so a handler passes it
/// up with `?` instead of setting a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadToken;

/// Why a syscall failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysError {
    /// Answer the caller with this code.
    Code(Error),
    /// A bad token: answer `Incapable`, and delay the caller.
    BadToken,
}

impl SysError {
    /// The code the caller sees.
    pub fn code(self) -> Error {
        match self {
            SysError::Code(e) => e,
            SysError::BadToken => Error::Incapable,
        }
    }
}

impl From<Error> for SysError {
    fn from(e: Error) -> SysError {
        SysError::Code(e)
    }
}

impl From<BadToken> for SysError {
    fn from(_: BadToken) -> SysError {
        SysError::BadToken
    }
}

/// A process's bad-token record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Strikes {
    count: u32,
    /// Tick of the last strike.
    last: u64,
}

impl Strikes {
    /// Strikes that still count.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// Ticks of quiet that halve the strikes.
const HALF_LIFE_TICKS: u64 = 2000;
/// The longest delay, in ticks.
const MAX_DELAY_TICKS: u64 = 1000;

/// The delay policy and its jitter source.
pub struct Penalties {
    rng: u64,
}

impl Penalties {
    /// Jitter seeded from boot entropy (for spread, not for security).
    pub fn new(seed: &[u64]) -> Penalties {
        Penalties { rng: seed.iter().fold(0x9e37_79b9_7f4a_7c15, |a, s| a ^ s.rotate_left(13)) | 1 }
    }

    /// A pseudo-random number (xorshift).
    fn jitter(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Count one more strike at tick `now`; the delay it earns, in ticks
    /// (at least one).
    pub fn strike(&mut self, s: &mut Strikes, now: u64) -> u64 {
        let quiet = now.saturating_sub(s.last) / HALF_LIFE_TICKS;
        s.count = if quiet >= 32 { 0 } else { s.count >> quiet };
        s.count = s.count.saturating_add(1);
        s.last = now;
        let base = (1u64 << (s.count - 1).min(10)).min(MAX_DELAY_TICKS);
        let delay = base * 3 / 4 + self.jitter() % (base / 2 + 1);
        delay.max(1)
    }
}

impl Kernel {
    /// Delay the caller after a bad token ([`crate::cap::penalty`]): its
    /// result is `Incapable` when it wakes.
    pub fn penalize_current(&mut self) {
        let t = self.current;
        let p = self.proc_of(t);
        let now = self.timers.now;
        let delay = self.penalties.strike(&mut self.procs[p].strikes, now);
        self.threads[t as usize].ret = [Error::Incapable as u64, 0, 0, 0, 0];
        self.threads[t as usize].state = State::Sleeping;
        self.timer_arm(t, now + delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_a_second_and_strikes_fade() {
        let mut p = Penalties::new(&[1, 2, 3]);
        let mut s = Strikes::default();
        let mut now = 10;
        for n in 1..=12u32 {
            let d = p.strike(&mut s, now);
            let base = (1u64 << (n - 1).min(10)).min(1000);
            assert!((base * 3 / 4..=base * 5 / 4).contains(&d) && d >= 1, "strike {n}: {d} ticks for base {base}");
            now += 1;
        }
        assert_eq!(s.count(), 12);
        // Four quiet seconds halve the record twice.
        now += 2 * HALF_LIFE_TICKS;
        p.strike(&mut s, now);
        assert_eq!(s.count(), 12 / 4 + 1);
        // A long quiet forgets it all.
        p.strike(&mut s, now + 64 * HALF_LIFE_TICKS);
        assert_eq!(s.count(), 1);
    }
}
