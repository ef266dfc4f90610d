//! The device-registry protocol (`DEVMAN::REGISTRY`).
//!
//! | op | request | reply | capability |
//! |---|---|---|---|
//! | 1 `Register` | [`Device`] | `()` | in: the driver's channel (SEND + DELEGATE) |
//! | 2 `Unregister` | the device's [`Identity`] | `()` | in: the same channel (proves ownership) |
//! | 3 `Query` | [`Filter`] and how many matches to skip | [`Matches`] | — |
//! | 4 `Driver` | entry id | `()` | out: SEND to the entry's driver |
//!
//! A driver registers each device it serves with its own channel; the
//! entry lives as long as that channel (its process) does.

use heapless::Vec;
use runtime::rpc::MaxSize;
use serde::{Deserialize, Serialize};

/// The name DEVMAN publishes the registry under.
pub const NAME: &str = "DEVMAN::REGISTRY";
/// Most devices registered at once.
pub const MAX_DEVICES: usize = 128;
/// Most entries one `Query` reply carries (ask again with `skip` for more).
pub const MAX_RESULTS: usize = 12;
/// Base address registers of a PCI function.
pub const MAX_BARS: usize = 6;
/// The class of a disk behind a storage controller (identity
/// [`Identity::Port`], parent the controller). Not a PCI class code: the
/// registry's own, above PCI's (0x00–0x13) and below 0xff.
pub const CLASS_DISK: u8 = 0x80;

/// A PCI function's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, MaxSize)]
pub struct Location {
    pub segment: u16,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl core::fmt::Display for Location {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{}", self.segment, self.bus, self.device, self.function)
    }
}

/// `ssss:bb:dd.f`, as [`Location`]'s `Display` writes it (hexadecimal).
impl core::str::FromStr for Location {
    type Err = ();
    fn from_str(s: &str) -> Result<Location, ()> {
        let (segment, rest) = s.split_once(':').ok_or(())?;
        let (bus, rest) = rest.split_once(':').ok_or(())?;
        let (device, function) = rest.split_once('.').ok_or(())?;
        let hex = |s: &str, digits: usize| {
            if s.len() != digits || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(());
            }
            u16::from_str_radix(s, 16).map_err(|_| ())
        };
        let (segment, bus, device, function) = (hex(segment, 4)?, hex(bus, 2)?, hex(device, 2)?, hex(function, 1)?);
        if device > 31 || function > 7 {
            return Err(());
        }
        Ok(Location { segment, bus: bus as u8, device: device as u8, function: function as u8 })
    }
}

/// What a device is, as its driver names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Identity {
    /// A PCI function.
    Pci(Location),
    /// Something behind a controller: a disk on an AHCI port, ...
    Port { controller: Location, port: u16 },
}

/// What a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum BarKind {
    Io,
    Memory32,
    Memory64,
}

/// One implemented base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Bar {
    /// 0–5 (a 64-bit BAR has the index of its low half).
    pub index: u8,
    pub kind: BarKind,
    pub prefetchable: bool,
    pub base: u64,
    /// Bytes it decodes.
    pub size: u64,
}

/// A device as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Device {
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    pub vendor: u16,
    pub device: u16,
    pub identity: Identity,
    /// The bridge (or controller) it sits behind, if any.
    pub parent: Option<Location>,
    pub bars: Vec<Bar, MAX_BARS>,
}

impl Device {
    /// Its BAR with index `i`.
    pub fn bar(&self, i: u8) -> Option<&Bar> {
        self.bars.iter().find(|b| b.index == i)
    }
}

/// A registry entry (ids are never reused while DEVMAN runs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Entry {
    pub id: u32,
    pub device: Device,
}

/// Which entries a [`Query`] wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Filter {
    All,
    /// Class, and subclass / programming interface when given.
    ByClass { class: u8, subclass: Option<u8>, prog_if: Option<u8> },
    ById { vendor: u16, device: u16 },
    /// PCI functions on bus `bus` of `segment`.
    ChildrenOf { segment: u16, bus: u8 },
}

impl Filter {
    pub fn matches(&self, d: &Device) -> bool {
        match *self {
            Filter::All => true,
            Filter::ByClass { class, subclass, prog_if } => {
                d.class == class && subclass.is_none_or(|s| s == d.subclass) && prog_if.is_none_or(|p| p == d.prog_if)
            }
            Filter::ById { vendor, device } => d.vendor == vendor && d.device == device,
            Filter::ChildrenOf { segment, bus } => matches!(d.identity, Identity::Pci(l) if l.segment == segment && l.bus == bus),
        }
    }
}

/// Register the device; the request carries the driver's channel.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Register {
    pub device: Device,
}

/// Remove the entry of the device with `identity`; the request carries
/// the channel it was registered with.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Unregister {
    pub identity: Identity,
}

/// The entries matching `filter`, skipping the first `skip`.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Query {
    pub filter: Filter,
    pub skip: u16,
}

/// One page of a query's matches.
#[derive(Debug, Serialize, Deserialize, MaxSize, PartialEq, Eq)]
pub struct Matches {
    /// Matches in all (not only this page).
    pub total: u16,
    pub entries: Vec<Entry, MAX_RESULTS>,
}

/// A send capability for entry `id`'s driver.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Driver {
    pub id: u32,
}

runtime::error_codes! {
    /// What a registry call can fail with.
    pub enum Error {
        /// Register/Unregister without a channel capability with SEND and DELEGATE.
        NoCapability = 1,
        /// A live driver already registered a device with this identity.
        AlreadyRegistered = 2,
        /// No such entry (or its driver died).
        NotFound = 3,
        /// Unregister with a channel other than the entry's.
        NotOwner = 4,
        /// [`MAX_DEVICES`] entries exist.
        TableFull = 5,
        /// Register on a channel not published under a provider of
        /// [`crate::REGISTRARS`]: the caller has no registration capability.
        NotAuthorized = 6,
    }
}

runtime::protocol! {
    /// Requests DEVMAN serves.
    pub enum Request: Error {
        Register(Register) = 1 -> ();
        Unregister(Unregister) = 2 -> ();
        Query(Query) = 3 -> Matches;
        Driver(Driver) = 4 -> ();
    }
}
