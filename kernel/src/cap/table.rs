//! A process's capability table: token → capability, open addressing.
//!
//! Tokens are already uniformly distributed, so the low bits of the token are
//! the hash. The table has a fixed number of slots allocated when the
//! process is created; the load factor stays at or below 3/4 by limiting
//! live entries to [`abi::limits::CAPS_PER_PROCESS`], so a lookup touches a
//! few slots whatever the table holds.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::Cap;

/// Slots per table (power of two, at least 4/3 of the entry limit).
pub const SLOTS: usize = 128;
const _: () = assert!(SLOTS * 3 / 4 >= abi::limits::CAPS_PER_PROCESS);

/// Frames of kernel memory one table takes, rounded up: what creating a
/// process charges to its page quota for it.
pub const PAGES: u64 = (SLOTS * core::mem::size_of::<Slot>()).div_ceil(abi::PAGE_SIZE) as u64;

/// Slot markers: tokens are never 0 or 1 (see [`super::token`]).
const EMPTY: u64 = 0;
const DELETED: u64 = 1;

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The token, or `EMPTY` / `DELETED` (probing continues past these).
    token: u64,
    cap: Cap,
}

const FREE: Slot = Slot { token: EMPTY, cap: Cap::class(abi::SyscallClass::Thread, 0) };

/// The table is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

/// Token → capability map of one process.
pub struct CapTable {
    slots: Box<[Slot; SLOTS]>,
    live: usize,
    deleted: usize,
}

impl CapTable {
    /// An empty table, or `None` if the kernel heap cannot hold it.
    pub fn new() -> Option<Self> {
        let mut v = Vec::new();
        v.try_reserve_exact(SLOTS).ok()?;
        v.resize(SLOTS, FREE);
        let slots: Box<[Slot; SLOTS]> = v.into_boxed_slice().try_into().ok()?;
        Some(CapTable { slots, live: 0, deleted: 0 })
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The capability behind `token`.
    #[inline]
    pub fn get(&self, token: u64) -> Option<&Cap> {
        if token <= DELETED {
            return None;
        }
        let mut i = token as usize % SLOTS;
        for _ in 0..SLOTS {
            let s = &self.slots[i];
            if s.token == token {
                return Some(&s.cap);
            }
            if s.token == EMPTY {
                return None;
            }
            i = (i + 1) % SLOTS;
        }
        None
    }

    /// Whether `token` would sit in its home slot (found at the first
    /// probe). Minting prefers such tokens, so lookups rarely probe twice.
    #[inline]
    pub fn home_free(&self, token: u64) -> bool {
        self.slots[token as usize % SLOTS].token <= DELETED
    }

    /// Add an entry under a token that is not in the table.
    pub fn insert(&mut self, token: u64, cap: Cap) -> Result<(), TableFull> {
        debug_assert!(token > DELETED);
        if self.live >= abi::limits::CAPS_PER_PROCESS {
            return Err(TableFull);
        }
        if self.live + self.deleted >= SLOTS - 1 {
            self.rehash();
        }
        let mut i = token as usize % SLOTS;
        loop {
            let s = &mut self.slots[i];
            match s.token {
                EMPTY | DELETED => {
                    if s.token == DELETED {
                        self.deleted -= 1;
                    }
                    *s = Slot { token, cap };
                    self.live += 1;
                    return Ok(());
                }
                t => {
                    debug_assert_ne!(t, token, "token inserted twice");
                    i = (i + 1) % SLOTS;
                }
            }
        }
    }

    /// Remove and return the entry for `token`.
    pub fn remove(&mut self, token: u64) -> Option<Cap> {
        if token <= DELETED {
            return None;
        }
        let mut i = token as usize % SLOTS;
        for _ in 0..SLOTS {
            let s = &mut self.slots[i];
            if s.token == token {
                s.token = DELETED;
                self.live -= 1;
                self.deleted += 1;
                return Some(s.cap);
            }
            if s.token == EMPTY {
                return None;
            }
            i = (i + 1) % SLOTS;
        }
        None
    }

    /// A token whose capability satisfies `pred`, if any.
    pub fn find(&self, mut pred: impl FnMut(&Cap) -> bool) -> Option<u64> {
        self.slots.iter().find(|s| s.token > DELETED && pred(&s.cap)).map(|s| s.token)
    }

    /// Every capability in the table.
    pub fn iter(&self) -> impl Iterator<Item = &Cap> {
        self.slots.iter().filter(|s| s.token > DELETED).map(|s| &s.cap)
    }

    /// Rebuild without deleted markers.
    fn rehash(&mut self) {
        let old: Vec<Slot> = self.slots.iter().filter(|s| s.token > DELETED).copied().collect();
        self.slots.iter_mut().for_each(|s| *s = FREE);
        self.live = 0;
        self.deleted = 0;
        for s in old {
            let _ = self.insert(s.token, s.cap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::TokenGen;
    use abi::{CapKind, SyscallClass};

    fn cap(n: u32) -> Cap {
        Cap::object(CapKind::Channel, n, 1, abi::rights::SEND)
    }

    #[test]
    fn insert_get_remove_with_limit() {
        let mut g = TokenGen::new(&[42], 0);
        let mut t = CapTable::new().unwrap();
        let mut tokens = std::vec::Vec::new();
        for i in 0..abi::limits::CAPS_PER_PROCESS as u32 {
            let tok = g.fresh();
            t.insert(tok, cap(i)).unwrap();
            tokens.push(tok);
        }
        assert_eq!(t.insert(g.fresh(), cap(0)), Err(TableFull));
        for (i, tok) in tokens.iter().enumerate() {
            assert_eq!(t.get(*tok).unwrap().object, i as u32);
        }
        assert!(t.get(g.fresh()).is_none(), "unknown token found");
        assert!(t.get(0).is_none());
        assert_eq!(t.remove(tokens[3]).unwrap().object, 3);
        assert!(t.get(tokens[3]).is_none());
        assert!(t.remove(tokens[3]).is_none());
        t.insert(g.fresh(), cap(999)).unwrap();
        assert_eq!(t.len(), abi::limits::CAPS_PER_PROCESS);
    }

    #[test]
    fn churn_keeps_lookups_working() {
        // Many insert/remove cycles fill the table with tombstones; the
        // rehash must keep every live entry reachable.
        let mut g = TokenGen::new(&[7], 0);
        let mut t = CapTable::new().unwrap();
        let keep = g.fresh();
        t.insert(keep, Cap::class(SyscallClass::Thread, abi::rights::USE)).unwrap();
        for i in 0..10_000u32 {
            let tok = g.fresh();
            t.insert(tok, cap(i)).unwrap();
            assert_eq!(t.get(tok).unwrap().object, i);
            assert!(t.remove(tok).is_some());
        }
        assert_eq!(t.get(keep).unwrap().kind, CapKind::Class);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn colliding_low_bits_probe_correctly() {
        let mut t = CapTable::new().unwrap();
        // Tokens equal modulo the table size.
        let toks: std::vec::Vec<u64> = (1..=10).map(|i| i * SLOTS as u64 + 5).collect();
        for (i, tok) in toks.iter().enumerate() {
            t.insert(*tok, cap(i as u32)).unwrap();
        }
        t.remove(toks[4]);
        for (i, tok) in toks.iter().enumerate() {
            assert_eq!(t.get(*tok).map(|c| c.object), if i == 4 { None } else { Some(i as u32) });
        }
    }
}
