//! The VFS protocol.
//!
//! | op | request | reply | capability |
//! |---|---|---|---|
//! | 1 `Register` | prefix | `()` | in: the driver's channel (SEND + DELEGATE) |
//! | 2 `Unregister` | prefix | `()` | in: the same channel (proves ownership) |
//! | 3 `Find` | full path | [`Found`]: the path inside the driver | out: SEND to the driver |
//! | 4 `Mounts` | — | the prefixes mounted now | — |

use heapless::{String, Vec};
use runtime::rpc::MaxSize;
use serde::{Deserialize, Serialize};

use crate::path::{PathError, PATH_MAX, PREFIX_MAX};

/// Most mounted filesystems.
pub const MAX_MOUNTS: usize = 16;

pub type Prefix = String<PREFIX_MAX>;
pub type PathBuf = String<PATH_MAX>;

runtime::error_codes! {
    /// What a VFS call can fail with.
    pub enum Error {
        /// The path breaks the rules of [`crate::path`].
        BadPath = 1,
        /// No driver is mounted under the path's prefix (or it died).
        UnknownPrefix = 2,
        AlreadyMounted = 3,
        NotMounted = 4,
        /// Unregister with a channel other than the one registered.
        NotOwner = 5,
        /// Register/Unregister without a channel capability that has SEND and DELEGATE.
        NoCapability = 6,
        /// [`MAX_MOUNTS`] filesystems are mounted.
        TableFull = 7,
        /// Register with a channel not published as `<prefix>::mount`
        /// ([`crate::mount_name`]): the caller has no mount capability.
        NotAuthorized = 8,
    }
}

impl From<PathError> for Error {
    fn from(_: PathError) -> Self {
        Error::BadPath
    }
}

/// Mount the sender's channel (sent with the request) under `prefix`.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Register {
    pub prefix: Prefix,
}

/// Unmount `prefix`; the request carries the mounted channel.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Unregister {
    pub prefix: Prefix,
}

/// Which driver serves `path`?
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Find {
    pub path: PathBuf,
}

/// The answer to [`Find`]; the reply carries a send capability for the driver.
#[derive(Debug, Serialize, Deserialize, MaxSize, PartialEq, Eq)]
pub struct Found {
    /// The path inside the driver's filesystem (no prefix, no leading `/`).
    pub path: PathBuf,
}

/// List the mounted prefixes.
#[derive(Debug, Serialize, Deserialize, MaxSize)]
pub struct Mounts;

runtime::protocol! {
    /// Requests VFS serves.
    pub enum Request: Error {
        Register(Register) = 1 -> ();
        Unregister(Unregister) = 2 -> ();
        Find(Find) = 3 -> Found;
        Mounts(Mounts) = 4 -> Vec<Prefix, MAX_MOUNTS>;
    }
}
