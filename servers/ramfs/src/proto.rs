//! The RAMFS protocol.
//!
//! | op | request | reply |
//! |---|---|---|
//! | 1 `Stat` | path inside the filesystem | [`Info`]: kind, size, handle |
//! | 2 `Load` (page) | handle, offset (a multiple of 4096) | the page, filled in place (zeros past the end) |
//! | 3 `List` | directory path, first entry | [`Listing`]: up to [`LIST_MAX`] entries and where to go on |

use heapless::{String, Vec};
use runtime::rpc::MaxSize;
use serde::{Deserialize, Serialize};

pub use vfs::proto::PathBuf;

/// Longest name of one directory entry.
pub const NAME_MAX: usize = 255;
/// Entries per `List` reply.
pub const LIST_MAX: usize = 12;

runtime::error_codes! {
    /// What a RAMFS call can fail with.
    pub enum Error {
        /// The path breaks the rules of `vfs::path`.
        BadPath = 1,
        NotFound = 2,
        /// `Load` of a directory.
        NotAFile = 3,
        /// `List` of a file.
        NotADirectory = 4,
        /// No object has this handle.
        BadHandle = 5,
        /// The offset is not page-aligned or lies past the end.
        BadOffset = 6,
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, MaxSize, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
}

/// Look `path` up (`""` is the root).
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Stat {
    pub path: PathBuf,
}

/// What [`Stat`] returns.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, MaxSize, PartialEq, Eq)]
pub struct Info {
    pub kind: Kind,
    /// Bytes (0 for a directory).
    pub size: u64,
    /// Names the object in `Load` (valid for the driver's lifetime).
    pub handle: u32,
}

/// Fill the lent page with the object's bytes from `offset`.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Load {
    pub handle: u32,
    pub offset: u64,
}

/// List directory `path` from its entry number `start`.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct List {
    pub path: PathBuf,
    pub start: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, MaxSize, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String<NAME_MAX>,
    pub kind: Kind,
    pub size: u64,
}

/// What [`List`] returns.
#[derive(Clone, Debug, Serialize, Deserialize, MaxSize, PartialEq, Eq)]
pub struct Listing {
    pub entries: Vec<DirEntry, LIST_MAX>,
    /// The `start` of the next call, if there are more entries.
    pub next: Option<u32>,
}

runtime::protocol! {
    /// Requests RAMFS serves.
    pub enum Request: Error {
        Stat(Stat) = 1 -> Info;
        Load(Load) = 2 -> (), page;
        List(List) = 3 -> Listing;
    }
}
