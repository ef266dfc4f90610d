//! Rights and flags as typed bit sets, one type per kind of object.
//!
//! Rights bits mean different things for different kinds of capability
//! (bit 1 is SEND on a channel, MAP on a process, READ on a physical range),
//! so each kind has its own type and a right of one kind cannot be passed
//! where another kind's is meant. `DELEGATE` is bit 0 in every kind.
//!
//! A capability transfer (`CapDerive`, `CapGrant`, `SendCap`, `Reply`) does
//! not know the kind of the token it carries, so its mask is a
//! [`RightsMask`]: any kind's rights convert into one. The kernel keeps a
//! capability's rights as their bits and intersects them with the mask, so
//! bits a kind does not define are simply never held.

use bitflags::bitflags;

use crate::CapKind;

bitflags! {
    /// Rights on a channel capability.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ChannelRights: u32 {
        /// Pass the capability on.
        const DELEGATE = 1 << 0;
        /// Send messages.
        const SEND = 1 << 1;
        /// Receive messages.
        const RECEIVE = 1 << 2;
        /// Destroy the channel.
        const DESTROY = 1 << 3;
    }
}

bitflags! {
    /// Rights on a process capability.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ProcessRights: u32 {
        /// Pass the capability on.
        const DELEGATE = 1 << 0;
        /// Map, unmap and write memory.
        const MAP = 1 << 1;
        /// Start threads.
        const THREAD = 1 << 2;
        /// Wait for the end.
        const WAIT = 1 << 3;
        /// Kill.
        const KILL = 1 << 4;
        /// Give the process capabilities.
        const GRANT = 1 << 5;
    }
}

bitflags! {
    /// Rights on a physical-range capability.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PhysRights: u32 {
        /// Pass the capability on (and derive sub-ranges).
        const DELEGATE = 1 << 0;
        /// Map readable.
        const READ = 1 << 1;
        /// Map writable.
        const WRITE = 1 << 2;
    }
}

bitflags! {
    /// Rights on an IRQ capability.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct IrqRights: u32 {
        /// Pass the capability on.
        const DELEGATE = 1 << 0;
        /// Bind to a channel, acknowledge.
        const BIND = 1 << 1;
    }
}

bitflags! {
    /// Rights on an I/O-port capability.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct IoPortRights: u32 {
        /// Pass the capability on.
        const DELEGATE = 1 << 0;
        /// `IoPortIn`.
        const READ = 1 << 1;
        /// `IoPortOut`.
        const WRITE = 1 << 2;
    }
}

bitflags! {
    /// Rights on a syscall-class capability.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ClassRights: u32 {
        /// Pass the capability on.
        const DELEGATE = 1 << 0;
        /// Make the syscalls of the class.
        const USE = 1 << 1;
    }
}

/// The rights of one kind of capability.
pub trait Rights: Copy {
    /// The kind these rights belong to.
    const KIND: CapKind;
    /// The raw bits, as the kernel stores and compares them.
    fn raw(self) -> u32;
}

macro_rules! rights_of {
    ($($t:ty => $kind:ident),* $(,)?) => {$(
        impl Rights for $t {
            const KIND: CapKind = CapKind::$kind;
            #[inline(always)]
            fn raw(self) -> u32 {
                self.bits()
            }
        }
        impl From<$t> for RightsMask {
            #[inline(always)]
            fn from(r: $t) -> RightsMask {
                RightsMask(r.bits())
            }
        }
    )*};
}

rights_of!(
    ChannelRights => Channel,
    ProcessRights => Process,
    PhysRights => Phys,
    IrqRights => Irq,
    IoPortRights => IoPort,
    ClassRights => Class,
);

/// The rights to keep in a capability transfer, whatever the token's kind.
/// The kernel keeps the intersection with what the capability has, so a
/// bit no kind defines is harmless (and never held).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RightsMask(pub u32);

impl RightsMask {
    /// Keep every right.
    pub const ALL: RightsMask = RightsMask(0xff);
    /// Keep only the right to pass it on.
    pub const DELEGATE: RightsMask = RightsMask(1);
    /// Keep nothing.
    pub const NONE: RightsMask = RightsMask(0);

    /// The raw bits.
    #[inline(always)]
    pub const fn bits(self) -> u32 {
        self.0
    }
}

bitflags! {
    /// Mapping flags of `MapAnon` and `MapPhys`. Unknown bits are refused
    /// with `InvalidArgument`; WRITE with EXEC with `WriteExecute`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MapFlags: u64 {
        const READ = 1 << 0;
        const WRITE = 1 << 1;
        const EXEC = 1 << 2;
    }
}

impl MapFlags {
    /// The flags for a loadable ELF segment: always readable, writable and
    /// executable as its header says. The kernel (loading `system`) and the
    /// runtime (spawning everything else) must agree on this.
    pub const fn for_segment(write: bool, exec: bool) -> MapFlags {
        let mut f = MapFlags::READ.bits();
        if write {
            f |= MapFlags::WRITE.bits();
        }
        if exec {
            f |= MapFlags::EXEC.bits();
        }
        MapFlags::from_bits_retain(f)
    }
}

bitflags! {
    /// Flags of `Send`. Unknown bits are refused with `InvalidArgument`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct SendFlags: u64 {
        /// The buffer is read-only for this message: it is copied, never
        /// lent, and no reply data is written back into it (the reply's
        /// data length is ignored). Lets a client send from memory it must
        /// not see changed.
        const READ_ONLY = 1 << 0;
    }
}

// Layout facts the kernel relies on: a capability keeps its rights in one
// byte, and DELEGATE is the same bit for every kind.
const _: () = {
    assert!(ChannelRights::all().bits() <= 0xff);
    assert!(ProcessRights::all().bits() <= 0xff);
    assert!(PhysRights::all().bits() <= 0xff);
    assert!(IrqRights::all().bits() <= 0xff);
    assert!(IoPortRights::all().bits() <= 0xff);
    assert!(ClassRights::all().bits() <= 0xff);
    assert!(RightsMask::ALL.bits() == 0xff);
    assert!(ChannelRights::DELEGATE.bits() == RightsMask::DELEGATE.bits());
    assert!(ProcessRights::DELEGATE.bits() == RightsMask::DELEGATE.bits());
    assert!(PhysRights::DELEGATE.bits() == RightsMask::DELEGATE.bits());
    assert!(IrqRights::DELEGATE.bits() == RightsMask::DELEGATE.bits());
    assert!(IoPortRights::DELEGATE.bits() == RightsMask::DELEGATE.bits());
    assert!(ClassRights::DELEGATE.bits() == RightsMask::DELEGATE.bits());
};
