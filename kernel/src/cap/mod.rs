//! Capabilities: unguessable 64-bit tokens, each bound to the process that
//! holds it.
//!
//! A token means something only in the capability table of one process, so
//! a token copied into another process (by IPC, by guessing, by reading
//! memory) finds nothing there. Tokens come from a keyed permutation of a
//! counter ([`token`]), so they never repeat and never collide, and without
//! the boot-time key they cannot be predicted.

pub mod entropy;
pub mod hint;
pub mod penalty;
pub mod table;
pub mod token;

pub use penalty::{BadToken, SysError};
pub use table::CapTable;
pub use token::TokenGen;

use abi::{CapKind, ClassRights, RightsMask};

/// What a capability grants. Small and `Copy`: tables hold these by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    pub kind: CapKind,
    /// Rights bits of the kind's type ([`abi::ChannelRights`], ...).
    pub rights: u8,
    /// Kind-specific detail (the flavour of a physical range).
    pub flavor: u8,
    /// Table index of the object (channel, process, DMA region) or the
    /// syscall class number.
    pub object: u32,
    /// Generation of the object slot when the capability was made; a
    /// mismatch means the object is gone and the token is stale.
    pub gen: u32,
    /// Physical ranges: first frame.
    pub base_frame: u32,
    /// Physical ranges: length in frames.
    pub frames: u32,
}

impl Cap {
    /// A capability to make one class of syscalls.
    pub const fn class(class: abi::SyscallClass, rights: ClassRights) -> Cap {
        Cap {
            kind: CapKind::Class,
            rights: rights.bits() as u8,
            flavor: 0,
            object: class as u32,
            gen: 0,
            base_frame: 0,
            frames: 0,
        }
    }

    /// A capability for a table object.
    pub fn object(kind: CapKind, object: u32, gen: u32, rights: impl Into<RightsMask>) -> Cap {
        Cap { kind, rights: rights.into().bits() as u8, flavor: 0, object, gen, base_frame: 0, frames: 0 }
    }

    /// Whether every bit of `needed` is granted.
    #[inline]
    pub fn allows(&self, needed: impl Into<RightsMask>) -> bool {
        let needed = needed.into().bits();
        self.rights as u32 & needed == needed
    }

    /// The same capability with only the rights in `mask` kept.
    pub fn reduced(mut self, mask: RightsMask) -> Cap {
        self.rights &= mask.bits() as u8;
        self
    }
}
