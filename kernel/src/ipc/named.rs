//! Channel names (`PROVIDER::TYPE`).
//!
//! The design looks names up by their SDBM hash. The original kept only the
//! hash, so two names with the same hash were the same name; here the hash
//! picks the bucket and the full name decides, so a collision costs one more
//! comparison and nothing else. An entry names a channel by (index,
//! generation), so it dies with the channel.
//!
//! Registering needs authority over the name's provider, so nobody can pose
//! as a server (say, take `AHCI::DISK0` while the disk driver restarts): a
//! `Names` class capability carries a [`Scope`] (every provider, one, or
//! none), `NameRegister` must be shown one that covers the name, and
//! `NamesScope` only ever narrows a scope. The provider is kept in full in
//! the capability (at most [`PROVIDER_LEN`] bytes), never as a hash, so no
//! collision can stand in for it.

use alloc::vec::Vec;

use abi::limits::{NAMES, NAME_LEN, PROVIDER_LEN};
use abi::names_scope::{self, provider, valid_part, valid_provider};

use crate::cap::Cap;

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
    name.len() <= NAME_LEN && provider(name).is_some_and(|p| valid_part(p) && valid_part(&name[p.len() + 2..]))
}

/// Which providers a `Names` capability may register names under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Exactly this provider (`len` bytes of `bytes`).
    One { len: u8, bytes: [u8; PROVIDER_LEN] },
    /// None: find only.
    FindOnly,
}

/// Why a scope cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeError {
    /// Not 1..=[`PROVIDER_LEN`] bytes a name part may hold.
    Invalid,
    /// Wider than the scope it would come from.
    Wider,
}

impl Scope {
    /// The scope for `provider` (empty: find only).
    pub fn of(provider: &[u8]) -> Result<Scope, ScopeError> {
        if provider.is_empty() {
            return Ok(Scope::FindOnly);
        }
        if !valid_provider(provider) {
            return Err(ScopeError::Invalid);
        }
        let mut bytes = [0; PROVIDER_LEN];
        bytes[..provider.len()].copy_from_slice(provider);
        Ok(Scope::One { len: provider.len() as u8, bytes })
    }

    /// The scope a `Names` class capability carries: its flavour tells
    /// which, the provider's bytes ride in the (otherwise unused) range fields.
    pub fn of_cap(cap: &Cap) -> Scope {
        match cap.flavor {
            names_scope::ALL => Scope::All,
            len @ 1..=names_scope::ONE_MAX => {
                let mut bytes = [0; PROVIDER_LEN];
                bytes[..4].copy_from_slice(&cap.base_frame.to_le_bytes());
                bytes[4..].copy_from_slice(&cap.frames.to_le_bytes());
                Scope::One { len, bytes }
            }
            _ => Scope::FindOnly,
        }
    }

    /// `cap` (a `Names` class capability) carrying this scope.
    pub fn stamp(self, mut cap: Cap) -> Cap {
        let (flavor, bytes) = match self {
            Scope::All => (names_scope::ALL, [0; PROVIDER_LEN]),
            Scope::One { len, bytes } => (len, bytes),
            Scope::FindOnly => (names_scope::FIND_ONLY, [0; PROVIDER_LEN]),
        };
        cap.flavor = flavor;
        cap.base_frame = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        cap.frames = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        cap
    }

    /// Whether a holder may register `name` (already [`valid`]).
    pub fn covers(&self, name: &[u8]) -> bool {
        match self {
            Scope::All => true,
            Scope::One { len, bytes } => provider(name) == Some(&bytes[..*len as usize]),
            Scope::FindOnly => false,
        }
    }

    /// `narrower`, if it asks for no provider this scope lacks.
    pub fn narrow(&self, narrower: Scope) -> Result<Scope, ScopeError> {
        match (self, narrower) {
            (Scope::All, n) | (_, n @ Scope::FindOnly) => Ok(n),
            (s @ Scope::One { .. }, n) if *s == n => Ok(n),
            _ => Err(ScopeError::Wider),
        }
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

    fn scope(p: &str) -> Scope {
        Scope::of(p.as_bytes()).unwrap()
    }

    #[test]
    fn scopes_cover_only_their_provider() {
        let ahci = scope("AHCI");
        assert!(ahci.covers(b"AHCI::DISK0"));
        for other in ["SYSTEM::X", "AHCIX::DISK0", "AHC::I", "ahci::DISK0", "X::AHCI"] {
            assert!(!ahci.covers(other.as_bytes()), "{other}");
        }
        assert!(Scope::All.covers(b"SYSTEM::VFS"));
        assert!(!Scope::FindOnly.covers(b"SYSTEM::VFS"));
        assert_eq!(scope(""), Scope::FindOnly);
        assert!(scope("ABCDEFGH").covers(b"ABCDEFGH::x"));
        for bad in ["ABCDEFGHI", "A:B", "A B", "A\0"] {
            assert_eq!(Scope::of(bad.as_bytes()), Err(ScopeError::Invalid), "{bad:?}");
        }
    }

    #[test]
    fn scopes_only_narrow() {
        let (ahci, sys) = (scope("AHCI"), scope("SYSTEM"));
        assert_eq!(Scope::All.narrow(ahci), Ok(ahci));
        assert_eq!(Scope::All.narrow(Scope::All), Ok(Scope::All));
        assert_eq!(ahci.narrow(ahci), Ok(ahci));
        assert_eq!(ahci.narrow(Scope::FindOnly), Ok(Scope::FindOnly));
        assert_eq!(ahci.narrow(sys), Err(ScopeError::Wider));
        assert_eq!(ahci.narrow(Scope::All), Err(ScopeError::Wider));
        assert_eq!(Scope::FindOnly.narrow(ahci), Err(ScopeError::Wider));
        assert_eq!(Scope::FindOnly.narrow(Scope::All), Err(ScopeError::Wider));
    }

    #[test]
    fn scopes_ride_in_the_capability() {
        let base = Cap::class(abi::SyscallClass::Names, abi::ClassRights::all());
        assert_eq!(Scope::of_cap(&base), Scope::All, "the boot capability is not the all scope");
        for s in [Scope::All, Scope::FindOnly, scope("A"), scope("AHCI"), scope("ABCDEFGH")] {
            let cap = s.stamp(base);
            assert_eq!(Scope::of_cap(&cap), s);
            assert_eq!(Scope::of_cap(&cap.reduced(abi::ClassRights::USE.into())), s, "derive lost the scope");
        }
    }

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
