//! Files through VFS: find the driver for a path, then speak the file
//! protocol (RAMFS's: stat, list, page loads) to it.
//!
//! Errors come back as the words the shell prints after `cmd: PATH: `.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use ramfs::proto::{self as rp, Info, Listing};
use ramfs::RamfsClient;
use runtime::ipc::Page;
use runtime::rpc::CallError;
use vfs::proto as vp;
use vfs::VfsClient;

/// Why a file operation failed, as the shell says it.
pub fn vfs_error(e: CallError<vp::Error>) -> String {
    match e {
        CallError::Server(vp::Error::BadPath) => "bad path (want PREFIX:/PATH, e.g. boot:/etc/motd)".into(),
        CallError::Server(vp::Error::UnknownPrefix) => "no filesystem mounted under that prefix".into(),
        CallError::Ipc(abi::Error::NotFound) => "VFS not running".into(),
        other => alloc::format!("VFS error: {other:?}"),
    }
}

pub fn fs_error(e: CallError<rp::Error>) -> String {
    match e {
        CallError::Server(rp::Error::NotFound) => "not found".into(),
        CallError::Server(rp::Error::NotAFile) => "is a directory".into(),
        CallError::Server(rp::Error::NotADirectory) => "not a directory".into(),
        CallError::Server(rp::Error::BadPath) => "bad path".into(),
        CallError::Ipc(abi::Error::PeerDied) | CallError::Ipc(abi::Error::Closed) => "the filesystem driver died".into(),
        other => alloc::format!("filesystem error: {other:?}"),
    }
}

/// A file or directory found through VFS.
pub struct Opened {
    pub fs: RamfsClient,
    /// The path inside the driver.
    pub rest: String,
}

impl Drop for Opened {
    fn drop(&mut self) {
        // Each `find` hands us a fresh send capability: give it back, or a
        // long session would fill our capability table.
        let _ = runtime::caps::drop_cap(self.fs.client().channel().token());
    }
}

/// The VFS connection (made on first use, remade if VFS restarts).
pub struct Files {
    vfs: Option<VfsClient>,
}

impl Files {
    pub fn new() -> Files {
        Files { vfs: None }
    }

    fn vfs(&mut self) -> Result<&VfsClient, String> {
        if self.vfs.is_none() {
            self.vfs = Some(VfsClient::connect_wait(2_000).map_err(vfs_error)?);
        }
        Ok(self.vfs.as_ref().expect("just set"))
    }

    pub fn open(&mut self, path: &str) -> Result<Opened, String> {
        let found = self.vfs()?.find(path);
        let found = match found {
            // VFS itself went away (restarted): connect again once.
            Err(CallError::Ipc(abi::Error::PeerDied | abi::Error::Closed | abi::Error::Incapable)) => {
                self.vfs = None;
                self.vfs()?.find(path)
            }
            r => r,
        };
        let (chan, rest) = found.map_err(vfs_error)?;
        Ok(Opened { fs: RamfsClient::new(chan), rest: String::from(rest.as_str()) })
    }
}

impl Opened {
    pub fn stat(&self) -> Result<Info, String> {
        self.fs.stat(&self.rest).map_err(fs_error)
    }

    /// Every entry of the directory.
    pub fn list(&self) -> Result<Vec<rp::DirEntry>, String> {
        let mut all = Vec::new();
        let mut start = 0;
        loop {
            let Listing { entries, next } = self.fs.list(&self.rest, start).map_err(fs_error)?;
            all.extend(entries);
            match next {
                Some(n) => start = n,
                None => return Ok(all),
            }
        }
    }

    /// Call `each` with the bytes of `[offset, offset + len)` of the file
    /// (clipped to its size), page by page; `each` returns false to stop.
    pub fn read(&self, offset: u64, len: u64, mut each: impl FnMut(u64, &[u8]) -> bool) -> Result<Info, String> {
        let info = self.stat()?;
        if info.kind != rp::Kind::File {
            return Err("is a directory".into());
        }
        let end = offset.saturating_add(len).min(info.size);
        let mut page = Box::new(Page::zeroed());
        let mut pos = offset;
        while pos < end {
            let base = pos & !(abi::PAGE_SIZE as u64 - 1);
            self.fs.load(info.handle, base, &mut page).map_err(fs_error)?;
            let from = (pos - base) as usize;
            let to = ((end - base) as usize).min(abi::PAGE_SIZE);
            if !each(pos, &page.0[from..to]) {
                break;
            }
            pos = base + to as u64;
        }
        Ok(info)
    }
}
