//! The registry's logic behind the serve loop.
//!
//! Each entry keeps a token for its driver's channel. Whenever the table is
//! read or grown, entries whose channel is gone (the driver died: a
//! process's channels die with it) are dropped, so a dead driver's devices
//! vanish and its restarted successor can register them again. Entries of
//! one driver share one token (a PCI bus driver registers dozens).
//!
//! Registering needs the registration capability: the driver's channel
//! must be published under a provider of [`crate::REGISTRARS`], which only
//! holders of a `Names` scope over it can do (DEVMAN hands those to the bus
//! drivers it starts; they pass their drivers' on). A stranger gets
//! `NotAuthorized`.
//!
//! Capabilities are checked through VFS's [`Kernel`] trait, so the same
//! logic runs on the host with a fake kernel.

use alloc::vec::Vec;

use runtime::rpc::{Call, Done, Handler};
pub use vfs::server::Kernel;

use crate::proto::{Device, Entry, Error, Filter, Identity, Matches, Request, MAX_DEVICES, MAX_RESULTS};

struct Slot {
    id: u32,
    device: Device,
    token: u64,
    chan: u64,
}

/// The device registry.
pub struct Registry<K: Kernel> {
    slots: Vec<Slot>,
    next_id: u32,
    kernel: K,
}

impl<K: Kernel> Registry<K> {
    pub fn new(kernel: K) -> Self {
        Registry { slots: Vec::new(), next_id: 1, kernel }
    }

    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// Entries now (after dropping those of dead drivers).
    pub fn len(&mut self) -> usize {
        self.sweep();
        self.slots.len()
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Forget `token` unless another entry still uses it.
    fn release(&mut self, token: u64) {
        if !self.slots.iter().any(|s| s.token == token) {
            self.kernel.drop_cap(token);
        }
    }

    /// Drop entries whose driver's channel is gone.
    fn sweep(&mut self) {
        let mut i = 0;
        while i < self.slots.len() {
            if self.kernel.alive(self.slots[i].chan) {
                i += 1;
            } else {
                let s = self.slots.remove(i);
                self.release(s.token);
            }
        }
    }

    /// The channel id behind `cap`, if it may be handed on for sending.
    fn driver_channel(&self, cap: Option<u64>) -> Result<(u64, u64), Error> {
        let token = cap.ok_or(Error::NoCapability)?;
        match self.kernel.channel(token) {
            Some((id, r)) if abi::ChannelRights::from_bits_truncate(r).contains(abi::ChannelRights::SEND | abi::ChannelRights::DELEGATE) => {
                Ok((token, id))
            }
            _ => Err(Error::NoCapability),
        }
    }

    /// Add `device` served on the channel `cap` names; its entry id. The
    /// capability is kept (or dropped, on error or when the driver's
    /// channel is already held).
    pub fn register(&mut self, device: Device, cap: Option<u64>) -> Result<u32, Error> {
        let authorized = |k: &mut K, (token, chan): (u64, u64)| match k.channel_name(chan) {
            Some(name) if crate::may_register(&name) => Ok((token, chan)),
            _ => Err(Error::NotAuthorized),
        };
        let (token, chan) = match self.driver_channel(cap).and_then(|t| authorized(&mut self.kernel, t)) {
            Ok(t) => t,
            Err(e) => {
                if let Some(c) = cap {
                    self.kernel.drop_cap(c);
                }
                return Err(e);
            }
        };
        self.sweep();
        let refused = if self.slots.iter().any(|s| s.device.identity == device.identity) {
            Some(Error::AlreadyRegistered)
        } else if self.slots.len() == MAX_DEVICES {
            Some(Error::TableFull)
        } else {
            None
        };
        let shared = self.slots.iter().find(|s| s.chan == chan).map(|s| s.token);
        if refused.is_some() || shared.is_some() {
            self.kernel.drop_cap(token);
        }
        if let Some(e) = refused {
            return Err(e);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.slots.push(Slot { id, device, token: shared.unwrap_or(token), chan });
        Ok(id)
    }

    /// Remove the entry of `identity`, proving ownership with the channel
    /// `cap` names.
    pub fn unregister(&mut self, identity: Identity, cap: Option<u64>) -> Result<(), Error> {
        let (token, chan) = self.driver_channel(cap).inspect_err(|_| {
            if let Some(c) = cap {
                self.kernel.drop_cap(c);
            }
        })?;
        // The proof is not kept.
        self.kernel.drop_cap(token);
        self.sweep();
        let i = self.slots.iter().position(|s| s.device.identity == identity).ok_or(Error::NotFound)?;
        if self.slots[i].chan != chan {
            return Err(Error::NotOwner);
        }
        let s = self.slots.remove(i);
        self.release(s.token);
        Ok(())
    }

    /// The entries matching `filter`, from the `skip`-th on, in
    /// registration order.
    pub fn query(&mut self, filter: Filter, skip: u16) -> Matches {
        self.sweep();
        let mut m = Matches { total: 0, entries: heapless::Vec::new() };
        for s in self.slots.iter().filter(|s| filter.matches(&s.device)) {
            if m.total >= skip && m.entries.len() < MAX_RESULTS {
                let _ = m.entries.push(Entry { id: s.id, device: s.device.clone() });
            }
            m.total += 1;
        }
        m
    }

    /// The token for entry `id`'s driver.
    pub fn driver(&mut self, id: u32) -> Result<u64, Error> {
        self.sweep();
        self.slots.iter().find(|s| s.id == id).map(|s| s.token).ok_or(Error::NotFound)
    }
}

impl<K: Kernel> Handler for Registry<K> {
    type Request = Request;

    fn handle(&mut self, req: Request, mut call: Call<'_>) -> Done {
        match req {
            Request::Register(r) => {
                let cap = call.take_cap();
                call.reply::<crate::proto::Register>(self.register(r.device, cap).map(|_| ()))
            }
            Request::Unregister(r) => {
                let cap = call.take_cap();
                call.reply::<crate::proto::Unregister>(self.unregister(r.identity, cap))
            }
            Request::Query(q) => call.reply::<crate::proto::Query>(Ok(self.query(q.filter, q.skip))),
            Request::Driver(d) => match self.driver(d.id) {
                Ok(token) => call.ok_cap(&(), token, abi::ChannelRights::SEND),
                Err(e) => call.err(e),
            },
        }
    }
}
