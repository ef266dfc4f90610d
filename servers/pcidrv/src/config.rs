//! The configuration-space protocol PCIDRV serves to the drivers it starts.
//!
//! Each driver gets its own channel at spawn; PCIDRV knows which function
//! that channel belongs to, so a request naming any other function is
//! refused (`NotYours`), as is an offset outside the 4 KiB space, not
//! aligned to the access width, or a width other than 1, 2 or 4.
//!
//! | op | request | reply |
//! |---|---|---|
//! | 1 `Read` | function, offset, width | the value |
//! | 2 `Write` | function, offset, width, value | `()` |
//! | 3 `Watch` | — | never answered: the call ends with `PeerDied` when PCIDRV ends |
//!
//! `Watch` is how a driver ends with the PCIDRV that started it: a thread
//! of the driver makes the call and exits the driver when it returns. A
//! restarted PCIDRV (its MSI vectors and config channels went with the old
//! one) thus never finds a driver of the old one still running on its
//! controller, and starts exactly one again.

use runtime::rpc::{Call, Done, Handler, MaxSize};
use serde::{Deserialize, Serialize};

use crate::{reg, ConfigSpace, Location};

/// The start-block id under which a started driver finds its
/// config-space channel.
pub const DRIVER_CONFIG_CAP: u64 = abi::cap_id::USER + 0x110;
/// The start-block id under which a started driver finds its register
/// window (BAR5 for AHCI; the id `ahcidrv` reads its ABAR under).
pub const DRIVER_BAR_CAP: u64 = abi::cap_id::USER + 0x100;
/// The start-block id under which a started driver finds its function's
/// 4 KiB of configuration space (physical range, read/write; `ahcidrv`'s
/// CONFIG id).
pub const DRIVER_CONFIG_PAGE_CAP: u64 = abi::cap_id::USER + 0x101;
/// The start-block id under which a started driver finds its MSI vector
/// (an IRQ capability with the bind right; `ahcidrv`'s IRQ id).
pub const DRIVER_IRQ_CAP: u64 = abi::cap_id::USER + 0x102;

/// Read `width` bytes at `offset` of function `at`'s configuration space.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Read {
    pub at: Location,
    pub offset: u16,
    pub width: u8,
}

/// Held until PCIDRV ends (see the module docs).
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Watch {}

/// Write `value` (its low `width` bytes) at `offset`.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Write {
    pub at: Location,
    pub offset: u16,
    pub width: u8,
    pub value: u32,
}

runtime::error_codes! {
    /// Why a configuration-space access was refused.
    pub enum Error {
        /// The function is not the one this channel was handed out for.
        NotYours = 1,
        /// Offset at or past 4 KiB, or not a multiple of the width.
        BadOffset = 2,
        /// Width other than 1, 2 or 4.
        BadWidth = 3,
    }
}

runtime::protocol! {
    /// Requests on a driver's configuration-space channel.
    pub enum Request: Error {
        Read(Read) = 1 -> u32;
        Write(Write) = 2 -> ();
        Watch(Watch) = 3 -> ();
    }
}

/// One driver's view: its own function, nothing else.
pub struct ConfigServer<C: ConfigSpace> {
    own: Option<Location>,
    space: C,
}

impl<C: ConfigSpace> ConfigServer<C> {
    pub fn new(own: Location, space: C) -> Self {
        ConfigServer { own: Some(own), space }
    }

    /// For a channel that is no driver's (PCIDRV's public one): every
    /// access is `NotYours`.
    pub fn nobody(space: C) -> Self {
        ConfigServer { own: None, space }
    }

    pub fn space(&self) -> &C {
        &self.space
    }

    fn check(&self, at: Location, offset: u16, width: u8) -> Result<(), Error> {
        if Some(at) != self.own {
            return Err(Error::NotYours);
        }
        if !matches!(width, 1 | 2 | 4) {
            return Err(Error::BadWidth);
        }
        if offset >= reg::SPACE || !offset.is_multiple_of(u16::from(width)) {
            return Err(Error::BadOffset);
        }
        Ok(())
    }

    pub fn read(&self, r: &Read) -> Result<u32, Error> {
        self.check(r.at, r.offset, r.width)?;
        Ok(self.space.read(r.at, r.offset, r.width))
    }

    pub fn write(&mut self, w: &Write) -> Result<(), Error> {
        self.check(w.at, w.offset, w.width)?;
        let mask = if w.width == 4 { u32::MAX } else { (1u32 << (8 * u32::from(w.width))) - 1 };
        self.space.write(w.at, w.offset, w.width, w.value & mask);
        Ok(())
    }
}

impl<C: ConfigSpace> Handler for ConfigServer<C> {
    type Request = Request;

    fn handle(&mut self, req: Request, call: Call<'_>) -> Done {
        match req {
            Request::Read(r) => call.reply::<Read>(self.read(&r)),
            Request::Write(w) => call.reply::<Write>(self.write(&w)),
            Request::Watch(Watch {}) => {
                // Never completed: the kernel ends the call when we end.
                let (_held, done) = call.hold();
                done
            }
        }
    }
}
