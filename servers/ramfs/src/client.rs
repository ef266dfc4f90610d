//! A typed client of RAMFS (or of any driver speaking its protocol).

use runtime::ipc::{Channel, Page};
use runtime::rpc::{CallError, Client};

use crate::proto::{Error, Info, List, Listing, Load, PathBuf, Stat};

/// What a RAMFS call returns.
pub type Result<T> = core::result::Result<T, CallError<Error>>;

/// A connection to a RAMFS driver.
pub struct RamfsClient(Client);

impl RamfsClient {
    pub fn new(chan: Channel) -> RamfsClient {
        RamfsClient(Client::new(chan))
    }

    pub fn client(&self) -> &Client {
        &self.0
    }

    fn path(p: &str) -> Result<PathBuf> {
        PathBuf::try_from(p).map_err(|_| CallError::Server(Error::BadPath))
    }

    /// Kind, size and handle of `path` (inside the filesystem).
    pub fn stat(&self, path: &str) -> Result<Info> {
        self.0.call(&Stat { path: Self::path(path)? })
    }

    /// Fill `page` with object `handle`'s bytes from `offset`.
    #[inline]
    pub fn load(&self, handle: u32, offset: u64, page: &mut Page) -> Result<()> {
        self.0.call_page(&Load { handle, offset }, page)
    }

    /// Entries of directory `path` from entry `start`.
    pub fn list(&self, path: &str, start: u32) -> Result<Listing> {
        self.0.call(&List { path: Self::path(path)?, start })
    }
}
