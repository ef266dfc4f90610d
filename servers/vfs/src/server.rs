//! VFS's logic: the mount table behind the serve loop.
//!
//! Capabilities are checked through [`Kernel`], so the same logic runs on
//! the host with a fake kernel. A mount whose channel is gone (its driver
//! died: a process's channels die with it) is dropped whenever VFS sweeps
//! the table, which it does before every request that reads it.
//!
//! Mounting needs the mount capability: the driver's channel must be the
//! one the kernel publishes as `<prefix>::mount` ([`crate::mount_name`]),
//! which only a holder of a `Names` scope over the provider `<prefix>` can
//! publish. So nobody squats a prefix, free or mounted (`NotAuthorized`).

use alloc::vec::Vec;

use runtime::rpc::{Call, Done, Handler};

use crate::path;
use crate::proto::{Error, Found, PathBuf, Prefix, Request, MAX_MOUNTS};

/// What VFS asks the kernel about capabilities.
pub trait Kernel {
    /// The system-wide id and rights of a channel capability (None if the
    /// token is not a channel capability).
    fn channel(&self, token: u64) -> Option<(u64, u32)>;
    /// Whether the channel with this id still exists.
    fn alive(&self, id: u64) -> bool;
    /// Forget a capability.
    fn drop_cap(&mut self, token: u64);
    /// The id of the channel the kernel publishes as `name`, if any.
    fn named(&mut self, name: &str) -> Option<u64>;
    /// A name the kernel publishes channel `id` under, if any.
    fn channel_name(&mut self, id: u64) -> Option<alloc::string::String>;
}

struct Mount {
    prefix: Prefix,
    token: u64,
    id: u64,
}

/// The VFS server.
pub struct Vfs<K: Kernel> {
    mounts: Vec<Mount>,
    kernel: K,
}

impl<K: Kernel> Vfs<K> {
    pub fn new(kernel: K) -> Self {
        Vfs { mounts: Vec::new(), kernel }
    }

    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// Drop mounts whose driver's channel is gone.
    fn sweep(&mut self) {
        let mut i = 0;
        while i < self.mounts.len() {
            if self.kernel.alive(self.mounts[i].id) {
                i += 1;
            } else {
                let m = self.mounts.swap_remove(i);
                self.kernel.drop_cap(m.token);
            }
        }
    }

    fn position(&self, prefix: &str) -> Option<usize> {
        self.mounts.iter().position(|m| m.prefix == prefix)
    }

    /// The capability's channel id, if it may be handed on for sending.
    fn driver_channel(&self, cap: Option<u64>) -> Result<(u64, u64), Error> {
        let token = cap.ok_or(Error::NoCapability)?;
        match self.kernel.channel(token) {
            Some((id, r)) if abi::ChannelRights::from_bits_truncate(r).contains(abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE) => {
                Ok((token, id))
            }
            _ => Err(Error::NoCapability),
        }
    }

    fn register(&mut self, prefix: &str, cap: Option<u64>) -> Result<(), Error> {
        let (token, id) = self.driver_channel(cap)?;
        path::check_prefix(prefix)?;
        // The mount capability: only a holder of a Names scope over the
        // prefix could have published the driver's channel under this name.
        if self.kernel.named(&crate::mount_name(prefix)) != Some(id) {
            return Err(Error::NotAuthorized);
        }
        self.sweep();
        if self.position(prefix).is_some() {
            return Err(Error::AlreadyMounted);
        }
        if self.mounts.len() == MAX_MOUNTS {
            return Err(Error::TableFull);
        }
        self.mounts.push(Mount { prefix: Prefix::try_from(prefix).map_err(|_| Error::BadPath)?, token, id });
        Ok(())
    }

    fn unregister(&mut self, prefix: &str, cap: Option<u64>) -> Result<(), Error> {
        let (token, id) = self.driver_channel(cap)?;
        // The proof is not kept.
        self.kernel.drop_cap(token);
        path::check_prefix(prefix)?;
        self.sweep();
        let i = self.position(prefix).ok_or(Error::NotMounted)?;
        if self.mounts[i].id != id {
            return Err(Error::NotOwner);
        }
        let m = self.mounts.swap_remove(i);
        self.kernel.drop_cap(m.token);
        Ok(())
    }

    /// The mount serving `full` and the path inside it.
    fn find(&mut self, full: &str) -> Result<(u64, Found), Error> {
        let (prefix, rest) = path::split(full)?;
        self.sweep();
        let i = self.position(prefix).ok_or(Error::UnknownPrefix)?;
        let path = PathBuf::try_from(rest).map_err(|_| Error::BadPath)?;
        Ok((self.mounts[i].token, Found { path }))
    }
}

impl<K: Kernel> Handler for Vfs<K> {
    type Request = Request;

    fn handle(&mut self, req: Request, mut call: Call<'_>) -> Done {
        match req {
            Request::Register(r) => {
                let cap = call.take_cap();
                let out = self.register(&r.prefix, cap);
                if out.is_err() {
                    if let Some(c) = cap {
                        self.kernel.drop_cap(c);
                    }
                }
                call.reply::<crate::proto::Register>(out)
            }
            Request::Unregister(r) => {
                let cap = call.take_cap();
                call.reply::<crate::proto::Unregister>(self.unregister(&r.prefix, cap))
            }
            Request::Find(f) => match self.find(&f.path) {
                Ok((token, found)) => call.ok_cap(&found, token, abi::ChannelRights::SEND),
                Err(e) => call.err(e),
            },
            Request::Mounts(_) => {
                self.sweep();
                let list = self.mounts.iter().map(|m| m.prefix.clone()).collect();
                call.reply::<crate::proto::Mounts>(Ok(list))
            }
        }
    }
}

/// The kernel as VFS uses it on the machine: `CapInspect` for what a
/// token is, the IPC monitor (DebugIpc class) for whether a channel lives.
pub struct SysKernel;

impl Kernel for SysKernel {
    fn channel(&self, token: u64) -> Option<(u64, u32)> {
        match runtime::caps::inspect(token) {
            Ok((abi::CapKind::Channel, r, id, _)) => Some((id, r)),
            _ => None,
        }
    }

    fn alive(&self, id: u64) -> bool {
        // Any error but NotFound (e.g. no DebugIpc class) keeps the mount.
        runtime::ipc::debug::channel_stats(id) != Err(abi::Error::NotFound)
    }

    fn drop_cap(&mut self, token: u64) {
        let _ = runtime::caps::drop_cap(token);
    }

    fn named(&mut self, name: &str) -> Option<u64> {
        let chan = runtime::ipc::Channel::find(name).ok()?;
        let id = self.channel(chan.token()).map(|(id, _)| id);
        // NameFind reuses only a SEND-only token; the mounts' have DELEGATE
        // too, so this one is ours to drop.
        self.drop_cap(chan.token());
        id
    }

    fn channel_name(&mut self, id: u64) -> Option<alloc::string::String> {
        let mut buf = [0u8; abi::limits::NAME_LEN];
        let n = runtime::ipc::debug::channel_name(id, &mut buf).ok().filter(|&n| n > 0 && n <= buf.len())?;
        core::str::from_utf8(&buf[..n]).ok().map(alloc::string::String::from)
    }
}
