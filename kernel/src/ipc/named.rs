//! Channel names (`PROVIDER::TYPE`).
//!
//! The design looks names up by their SDBM hash. The original kept only the
//! hash, so two names with the same hash were the same name; here the hash
//! picks the bucket and the full name decides, so a collision costs one more
//! comparison and nothing else. An entry names a channel by (index,
//! generation), so it dies with the channel.

use alloc::vec::Vec;

use abi::limits::{NAMES, NAME_LEN};

/// Buckets: twice the entry limit keeps probe chains short.
const SLOTS: usize = NAMES * 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Not of the form `PROVIDER::TYPE` with printable ASCII, or too long.
    Invalid,
    AlreadyExists,
    Full,
}

/// One registration.
#[derive(Clone, Copy, Debug)]
pub struct NameEntry {
    pub hash: u64,
    pub chan: u16,
    pub gen: u32,
    len: u8,
    bytes: [u8; NAME_LEN],
}

impl NameEntry {
    pub fn name(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

#[derive(Clone, Copy, Debug)]
enum Slot {
    Empty,
    Tombstone,
    Full(NameEntry),
}

/// The system-wide name table.
pub struct NameTable {
    slots: Vec<Slot>,
    live: usize,
}

/// Whether `name` is a well-formed `PROVIDER::TYPE`.
pub fn valid(name: &[u8]) -> bool {
    let printable = |s: &[u8]| !s.is_empty() && s.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.');
    if name.len() > NAME_LEN {
        return false;
    }
    match name.windows(2).position(|w| w == b"::") {
        Some(i) => printable(&name[..i]) && printable(&name[i + 2..]),
        None => false,
    }
}

impl NameTable {
    pub fn new() -> Option<Self> {
        let mut slots = Vec::new();
        slots.try_reserve_exact(SLOTS).ok()?;
        slots.resize(SLOTS, Slot::Empty);
        Some(NameTable { slots, live: 0 })
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Kernel bytes one registration takes.
    pub const fn entry_bytes() -> usize {
        core::mem::size_of::<Slot>()
    }

    fn probe(hash: u64) -> impl Iterator<Item = usize> {
        let start = (hash % SLOTS as u64) as usize;
        (0..SLOTS).map(move |i| (start + i) % SLOTS)
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        let hash = abi::sdbm(name);
        for i in Self::probe(hash) {
            match &self.slots[i] {
                Slot::Empty => return None,
                Slot::Full(e) if e.hash == hash && e.name() == name => return Some(i),
                _ => {}
            }
        }
        None
    }

    /// Publish `name` for channel `(chan, gen)`.
    pub fn register(&mut self, name: &[u8], chan: u16, gen: u32) -> Result<(), NameError> {
        if !valid(name) {
            return Err(NameError::Invalid);
        }
        if self.position(name).is_some() {
            return Err(NameError::AlreadyExists);
        }
        if self.live >= NAMES {
            return Err(NameError::Full);
        }
        let hash = abi::sdbm(name);
        let mut bytes = [0u8; NAME_LEN];
        bytes[..name.len()].copy_from_slice(name);
        let entry = NameEntry { hash, chan, gen, len: name.len() as u8, bytes };
        for i in Self::probe(hash) {
            if !matches!(self.slots[i], Slot::Full(_)) {
                self.slots[i] = Slot::Full(entry);
                self.live += 1;
                return Ok(());
            }
        }
        Err(NameError::Full)
    }

    /// The channel published under `name`.
    /// The name channel `(chan, gen)` is registered under, if any.
    pub fn name_of(&self, chan: u16, gen: u32) -> Option<&[u8]> {
        self.slots.iter().find_map(|s| match s {
            Slot::Full(e) if e.chan == chan && e.gen == gen => Some(e.name()),
            _ => None,
        })
    }

    pub fn find(&self, name: &[u8]) -> Option<(u16, u32)> {
        match self.slots[self.position(name)?] {
            Slot::Full(e) => Some((e.chan, e.gen)),
            _ => None,
        }
    }

    /// Withdraw `name` if it names channel `chan`; returns whether it did.
    pub fn remove(&mut self, name: &[u8], chan: u16) -> bool {
        match self.position(name) {
            Some(i) if matches!(self.slots[i], Slot::Full(e) if e.chan == chan) => {
                self.slots[i] = Slot::Tombstone;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// Withdraw every name of channel `chan` (it is being destroyed).
    pub fn remove_channel(&mut self, chan: u16) -> usize {
        let mut n = 0;
        for s in self.slots.iter_mut() {
            if matches!(s, Slot::Full(e) if e.chan == chan) {
                *s = Slot::Tombstone;
                n += 1;
            }
        }
        self.live -= n;
        n
    }
}

/// Two different names with the same 64-bit SDBM hash, found by lattice
/// reduction; the kernel tests and the in-guest tests both use them.
pub const SDBM_COLLISION: (&str, &str) = ("TEST::eagaeaieeabgea", "TEST::aeaqacaaagaaap");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        for good in ["SYSTEM::VFS", "a::b", "DEV_1::ahci-0.port"] {
            assert!(valid(good.as_bytes()), "{good}");
        }
        for bad in ["", "SYSTEM", "::VFS", "SYSTEM::", "SY STEM::VFS", "A::B\0", "A::B::C"] {
            assert!(!valid(bad.as_bytes()), "{bad:?}");
        }
        assert!(!valid(&[b'A'; NAME_LEN + 1]));
    }

    #[test]
    fn register_find_remove() {
        let mut t = NameTable::new().unwrap();
        t.register(b"SYSTEM::VFS", 3, 7).unwrap();
        assert_eq!(t.register(b"SYSTEM::VFS", 4, 1), Err(NameError::AlreadyExists));
        assert_eq!(t.find(b"SYSTEM::VFS"), Some((3, 7)));
        assert_eq!(t.find(b"SYSTEM::VF"), None);
        assert!(!t.remove(b"SYSTEM::VFS", 9), "another channel's name removed");
        assert!(t.remove(b"SYSTEM::VFS", 3));
        assert_eq!(t.find(b"SYSTEM::VFS"), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn sdbm_collision_keeps_both_names_apart() {
        let (a, b) = SDBM_COLLISION;
        assert_ne!(a, b);
        assert_eq!(abi::sdbm(a.as_bytes()), abi::sdbm(b.as_bytes()), "not a real collision");
        let mut t = NameTable::new().unwrap();
        t.register(a.as_bytes(), 1, 1).unwrap();
        assert_eq!(t.find(b.as_bytes()), None, "collision treated as the same name");
        t.register(b.as_bytes(), 2, 1).unwrap();
        assert_eq!(t.find(a.as_bytes()), Some((1, 1)));
        assert_eq!(t.find(b.as_bytes()), Some((2, 1)));
        // Removing the first must not hide the second, which probed past it.
        assert!(t.remove(a.as_bytes(), 1));
        assert_eq!(t.find(b.as_bytes()), Some((2, 1)));
    }

    #[test]
    fn channel_death_removes_its_names_and_limit_holds() {
        let mut t = NameTable::new().unwrap();
        t.register(b"A::one", 5, 1).unwrap();
        t.register(b"A::two", 5, 1).unwrap();
        t.register(b"B::one", 6, 1).unwrap();
        assert_eq!(t.remove_channel(5), 2);
        assert_eq!(t.find(b"A::two"), None);
        assert_eq!(t.find(b"B::one"), Some((6, 1)));
        for i in 0..NAMES - 1 {
            let n = std::format!("F::n{i}");
            t.register(n.as_bytes(), 9, 1).unwrap();
        }
        assert_eq!(t.register(b"F::last", 9, 1), Err(NameError::Full));
    }
}
