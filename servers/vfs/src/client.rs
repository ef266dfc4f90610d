//! A typed client of VFS.

use abi::Error as IpcError;
use runtime::ipc::Channel;
use runtime::rpc::{CallError, Client};

use crate::proto::{Error, Find, Found, Mounts, PathBuf, Prefix, Register, Unregister, MAX_MOUNTS};

/// What a VFS call returns.
pub type Result<T> = core::result::Result<T, CallError<Error>>;

/// A connection to VFS.
pub struct VfsClient(Client);

impl VfsClient {
    /// The VFS published as [`crate::NAME`].
    pub fn connect() -> Result<VfsClient> {
        Ok(VfsClient(Client::new(Channel::find(crate::NAME)?)))
    }

    /// [`Self::connect`], waiting up to `ms` milliseconds for VFS to start.
    pub fn connect_wait(ms: u64) -> Result<VfsClient> {
        let start = runtime::time::uptime_ms();
        loop {
            match Self::connect() {
                Err(CallError::Ipc(IpcError::NotFound)) if runtime::time::uptime_ms() - start < ms => {
                    let _ = runtime::time::sleep_ms(1);
                }
                r => return r,
            }
        }
    }

    pub fn new(chan: Channel) -> VfsClient {
        VfsClient(Client::new(chan))
    }

    pub fn client(&self) -> &Client {
        &self.0
    }

    fn prefix(p: &str) -> Result<Prefix> {
        Prefix::try_from(p).map_err(|_| CallError::Server(Error::BadPath))
    }

    /// Mount `chan` (we keep it; VFS gets SEND and DELEGATE) under `prefix`.
    ///
    /// First publishes `chan` as [`crate::mount_name`] (the mount
    /// capability; a refusal is left for VFS to answer with
    /// `NotAuthorized`).
    pub fn register(&self, prefix: &str, chan: &Channel) -> Result<()> {
        let prefix = Self::prefix(prefix)?;
        let _ = chan.register(&crate::mount_name(&prefix));
        self.0.call_with_cap(&Register { prefix }, chan.token(), abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE)
    }

    /// Unmount `prefix`, proving ownership with `chan`.
    /// Withdraws the mount name too.
    pub fn unregister(&self, prefix: &str, chan: &Channel) -> Result<()> {
        let prefix = Self::prefix(prefix)?;
        let out = self.0.call_with_cap(&Unregister { prefix: prefix.clone() }, chan.token(), abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE);
        if out.is_ok() {
            let _ = chan.deregister(&crate::mount_name(&prefix));
        }
        out
    }

    /// The driver serving `path` (a send capability) and the path inside it.
    pub fn find(&self, path: &str) -> Result<(Channel, PathBuf)> {
        let path = PathBuf::try_from(path).map_err(|_| CallError::Server(Error::BadPath))?;
        let (Found { path }, cap) = self.0.call_get_cap(&Find { path })?;
        if cap == 0 {
            return Err(CallError::BadReply);
        }
        Ok((Channel::from_token(cap), path))
    }

    /// [`Self::find`], waiting up to `ms` milliseconds for the prefix to be
    /// mounted (a driver starting at the same time as its first client).
    pub fn find_wait(&self, path: &str, ms: u64) -> Result<(Channel, PathBuf)> {
        let start = runtime::time::uptime_ms();
        loop {
            match self.find(path) {
                Err(CallError::Server(Error::UnknownPrefix)) if runtime::time::uptime_ms() - start < ms => {
                    let _ = runtime::time::sleep_ms(1);
                }
                r => return r,
            }
        }
    }

    /// The mounted prefixes.
    pub fn mounts(&self) -> Result<heapless::Vec<Prefix, MAX_MOUNTS>> {
        self.0.call(&Mounts)
    }
}
