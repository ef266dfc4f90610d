//! A thread's last channel lookup, kept to skip the next one.
//!
//! A server answers and waits with the same token every time, and a client
//! calls with the same token: the IPC fast path remembers, per thread, the
//! channel and rights the last token it looked up named, and takes them
//! again for the same token while nothing that could change the answer has
//! happened since. "Nothing" is one global counter, the *epoch*, that moves
//! on every event after which a full lookup could answer differently: a
//! capability leaving a table ([`super::CapTable::remove`]), a table
//! dropped, a channel freed (`ChannelTable::free`). So the list of places
//! that must invalidate hints is those three functions, not their callers;
//! a capability table entry is never changed in place, and tokens are
//! never reused, so an insertion changes no earlier answer.
//!
//! A hint is only ever filled from a full lookup that succeeded, by the
//! thread itself (a thread never changes process), and a new thread in a
//! reused slot starts with none ([`ChanHint::NONE`]).
//!
//! Turning IPC tracing on moves the epoch too, and the Rust fast path, the
//! only one that fills hints, takes nothing while tracing: so no hint
//! holds while tracing is on, which is how the assembly fast path
//! (`arch::x86_64::fastpath`), which traces nothing, leaves traced calls
//! to the Rust paths without a check of its own.

use core::sync::atomic::{AtomicU64, Ordering};

/// The epoch; starts at 1, so [`ChanHint::NONE`] (epoch 0) never holds.
pub(crate) static EPOCH: AtomicU64 = AtomicU64::new(1);

/// The current epoch.
#[inline(always)]
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// Invalidate every hint (a lookup could now answer differently).
#[inline]
pub fn invalidate_all() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// A thread's last successful channel lookup in the fast path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChanHint {
    /// The token looked up.
    pub token: u64,
    /// The epoch then.
    pub epoch: u64,
}

impl ChanHint {
    /// No hint.
    pub const NONE: ChanHint = ChanHint { token: 0, epoch: 0 };

    /// Whether the hint still answers for `token`.
    #[inline(always)]
    pub fn holds(&self, token: u64) -> bool {
        self.token == token && self.epoch == epoch()
    }

    /// A hint for `token`, as of now.
    #[inline(always)]
    pub fn now(token: u64) -> ChanHint {
        ChanHint { token, epoch: epoch() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_holds_until_the_epoch_moves() {
        // Other tests run alongside and may move the epoch between two
        // lines: a fresh hint must hold at least once in a few tries.
        assert!((0..100).any(|_| ChanHint::now(0x1234_5678).holds(0x1234_5678)), "a fresh hint never holds");
        let h = ChanHint::now(0x1234_5678);
        assert!(!h.holds(0x1234_5679), "another token");
        invalidate_all();
        assert!(!h.holds(0x1234_5678), "a hint outlived the epoch");
        assert!(!ChanHint::NONE.holds(0), "the empty hint holds for token 0");
    }
}
