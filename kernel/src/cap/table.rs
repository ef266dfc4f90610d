//! A process's capability table: token → capability, one probe.
//!
//! A token's low bits name its slot directly: minting draws fresh tokens
//! (each a keyed permutation of a counter, see [`super::token`]) until one
//! whose slot is free comes up, so a lookup is an index and one 64-bit
//! compare of the whole token, which doubles as the generation check (a
//! slot's next token is another fresh, never-repeating one). No hashing, no
//! probing, no tombstones on the IPC path. The table has a fixed number of
//! slots allocated when the process is created and holds at most
//! [`abi::limits::CAPS_PER_PROCESS`] entries, so at least a quarter of the
//! slots are free and a free one comes within a few draws.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::Cap;

/// Slots per table (power of two, at least 4/3 of the entry limit).
pub const SLOTS: usize = 128;
const _: () = assert!(SLOTS * 3 / 4 >= abi::limits::CAPS_PER_PROCESS && SLOTS.is_power_of_two());

/// Frames of kernel memory one table takes, rounded up: what creating a
/// process charges to its page quota for it.
pub const PAGES: u64 = (SLOTS * core::mem::size_of::<Slot>()).div_ceil(abi::PAGE_SIZE) as u64;

/// A free slot's marker: tokens are never 0 (see [`super::token`]).
const EMPTY: u64 = 0;

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The token, or `EMPTY`.
    token: u64,
    cap: Cap,
}

const FREE: Slot = Slot { token: EMPTY, cap: Cap::class(abi::SyscallClass::Thread, abi::ClassRights::empty()) };

/// Why an entry could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The table holds its limit of entries.
    Full,
    /// Another token has this token's slot: mint another.
    SlotTaken,
}

/// Token → capability map of one process.
pub struct CapTable {
    slots: Box<[Slot; SLOTS]>,
    live: usize,
}

/// The slot a token names.
#[inline(always)]
fn slot_of(token: u64) -> usize {
    token as usize & (SLOTS - 1)
}

impl CapTable {
    /// An empty table, or `None` if the kernel heap cannot hold it.
    pub fn new() -> Option<Self> {
        let mut v = Vec::new();
        v.try_reserve_exact(SLOTS).ok()?;
        v.resize(SLOTS, FREE);
        let slots: Box<[Slot; SLOTS]> = v.into_boxed_slice().try_into().ok()?;
        Some(CapTable { slots, live: 0 })
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The capability behind `token`: one slot, one compare.
    #[inline(always)]
    pub fn get(&self, token: u64) -> Option<&Cap> {
        let s = &self.slots[slot_of(token)];
        // A free slot holds `EMPTY`, which is never a token.
        (s.token == token && token != EMPTY).then_some(&s.cap)
    }

    /// Whether `token`'s slot is free (the only place it can go).
    #[inline]
    pub fn home_free(&self, token: u64) -> bool {
        self.slots[slot_of(token)].token == EMPTY
    }

    /// Add an entry under a token that is not in the table, in the slot the
    /// token names.
    pub fn insert(&mut self, token: u64, cap: Cap) -> Result<(), InsertError> {
        debug_assert!(token != EMPTY);
        if self.live >= abi::limits::CAPS_PER_PROCESS {
            return Err(InsertError::Full);
        }
        let s = &mut self.slots[slot_of(token)];
        if s.token != EMPTY {
            debug_assert_ne!(s.token, token, "token inserted twice");
            return Err(InsertError::SlotTaken);
        }
        *s = Slot { token, cap };
        self.live += 1;
        Ok(())
    }

    /// Remove and return the entry for `token` (which invalidates every
    /// thread's lookup hint: [`super::hint`]).
    pub fn remove(&mut self, token: u64) -> Option<Cap> {
        let cap = *self.get(token)?;
        self.slots[slot_of(token)] = FREE;
        self.live -= 1;
        super::hint::invalidate_all();
        Some(cap)
    }

    /// A token whose capability satisfies `pred`, if any.
    pub fn find(&self, mut pred: impl FnMut(&Cap) -> bool) -> Option<u64> {
        self.slots.iter().find(|s| s.token != EMPTY && pred(&s.cap)).map(|s| s.token)
    }

    /// Every capability in the table.
    pub fn iter(&self) -> impl Iterator<Item = &Cap> {
        self.slots.iter().filter(|s| s.token != EMPTY).map(|s| &s.cap)
    }
}

impl Drop for CapTable {
    /// A process's table goes with the process: no hint may outlive it
    /// ([`super::hint`]).
    fn drop(&mut self) {
        super::hint::invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::TokenGen;
    use abi::{CapKind, SyscallClass};

    fn cap(n: u32) -> Cap {
        Cap::object(CapKind::Channel, n, 1, abi::ChannelRights::SEND)
    }

    #[test]
    fn insert_get_remove_with_limit() {
        let mut g = TokenGen::new(&[42], 0);
        let mut t = CapTable::new().unwrap();
        let mut tokens = std::vec::Vec::new();
        for i in 0..abi::limits::CAPS_PER_PROCESS as u32 {
            let tok = fresh_home(&mut g, &t);
            t.insert(tok, cap(i)).unwrap();
            tokens.push(tok);
        }
        assert_eq!(t.insert(fresh_home(&mut g, &t), cap(0)), Err(InsertError::Full));
        for (i, tok) in tokens.iter().enumerate() {
            assert_eq!(t.get(*tok).unwrap().object, i as u32);
        }
        assert!(t.get(g.fresh()).is_none(), "unknown token found");
        assert!(t.get(0).is_none());
        assert_eq!(t.remove(tokens[3]).unwrap().object, 3);
        assert!(t.get(tokens[3]).is_none());
        assert!(t.remove(tokens[3]).is_none());
        t.insert(fresh_home(&mut g, &t), cap(999)).unwrap();
        assert_eq!(t.len(), abi::limits::CAPS_PER_PROCESS);
    }

    #[test]
    fn churn_keeps_lookups_working() {
        // Many insert/remove cycles fill the table with tombstones; the
        // rehash must keep every live entry reachable.
        let mut g = TokenGen::new(&[7], 0);
        let mut t = CapTable::new().unwrap();
        let keep = g.fresh();
        t.insert(keep, Cap::class(SyscallClass::Thread, abi::ClassRights::USE)).unwrap();
        for i in 0..10_000u32 {
            let tok = fresh_home(&mut g, &t);
            t.insert(tok, cap(i)).unwrap();
            assert_eq!(t.get(tok).unwrap().object, i);
            assert!(t.remove(tok).is_some());
        }
        assert_eq!(t.get(keep).unwrap().kind, CapKind::Class);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_token_goes_only_to_its_own_slot_and_a_neighbour_is_not_it() {
        let mut t = CapTable::new().unwrap();
        // Tokens equal modulo the table size share one slot.
        let toks: std::vec::Vec<u64> = (1..=4).map(|i| i * SLOTS as u64 + 5).collect();
        t.insert(toks[0], cap(0)).unwrap();
        assert_eq!(t.insert(toks[1], cap(1)), Err(InsertError::SlotTaken));
        assert_eq!(t.get(toks[0]).map(|c| c.object), Some(0));
        for tok in &toks[1..] {
            assert!(t.get(*tok).is_none(), "token {tok:#x} found in another token's slot");
            assert!(t.remove(*tok).is_none());
        }
        assert!(t.get(0).is_none() && t.get(SLOTS as u64).is_none(), "an empty slot answered");
        for bit in [7, 31, 32, 40, 63] {
            assert!(t.get(toks[0] ^ 1 << bit).is_none(), "a token one bit ({bit}) off was taken");
        }
        assert_eq!(t.remove(toks[0]).map(|c| c.object), Some(0));
        assert!(t.get(toks[0]).is_none());
        t.insert(toks[1], cap(1)).unwrap();
        assert_eq!(t.get(toks[1]).map(|c| c.object), Some(1));
        assert!(t.get(toks[0]).is_none(), "a stale token of a reused slot still works");
    }

    /// The next fresh token whose slot is free, as minting picks it.
    fn fresh_home(g: &mut TokenGen, t: &CapTable) -> u64 {
        loop {
            let tok = g.fresh();
            if t.home_free(tok) {
                return tok;
            }
        }
    }
}
