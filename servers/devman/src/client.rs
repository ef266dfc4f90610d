//! A typed client of the device registry.

use abi::Error as IpcError;
use runtime::ipc::Channel;
use runtime::rpc::{CallError, Client};

use crate::proto::{Device, Driver, Entry, Error, Filter, Identity, Matches, Query, Register, Unregister};

/// What a registry call returns.
pub type Result<T> = core::result::Result<T, CallError<Error>>;

/// A connection to DEVMAN's registry.
pub struct DevmanClient(Client);

impl DevmanClient {
    /// The registry published as [`crate::NAME`].
    pub fn connect() -> Result<DevmanClient> {
        Ok(DevmanClient(Client::new(Channel::find(crate::NAME)?)))
    }

    /// [`Self::connect`], waiting up to `ms` milliseconds for DEVMAN to start.
    pub fn connect_wait(ms: u64) -> Result<DevmanClient> {
        let start = runtime::time::uptime_ms();
        loop {
            match Self::connect() {
                Err(CallError::Ipc(IpcError::NotFound)) if runtime::time::uptime_ms() - start < ms => {
                    let _ = runtime::time::sleep_ms(5);
                }
                r => return r,
            }
        }
    }

    pub fn client(&self) -> &Client {
        &self.0
    }

    /// Register `device`, served on `chan` (we keep it; DEVMAN gets SEND
    /// and DELEGATE).
    pub fn register(&self, device: Device, chan: &Channel) -> Result<()> {
        self.0.call_with_cap(&Register { device }, chan.token(), abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE)
    }

    /// Remove the entry of `identity`, proving ownership with `chan`.
    pub fn unregister(&self, identity: Identity, chan: &Channel) -> Result<()> {
        self.0.call_with_cap(&Unregister { identity }, chan.token(), abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE)
    }

    /// One page of the entries matching `filter`.
    pub fn query_page(&self, filter: Filter, skip: u16) -> Result<Matches> {
        self.0.call(&Query { filter, skip })
    }

    /// Every entry matching `filter`, page by page.
    pub fn query(&self, filter: Filter) -> Result<alloc::vec::Vec<Entry>> {
        let mut all = alloc::vec::Vec::new();
        loop {
            let m = self.query_page(filter, all.len() as u16)?;
            let got = m.entries.len();
            all.extend(m.entries);
            if got == 0 || all.len() >= usize::from(m.total) {
                return Ok(all);
            }
        }
    }

    /// A send capability for entry `id`'s driver.
    pub fn driver(&self, id: u32) -> Result<Channel> {
        let ((), cap) = self.0.call_get_cap(&Driver { id })?;
        if cap == 0 {
            return Err(CallError::BadReply);
        }
        Ok(Channel::from_token(cap))
    }
}
