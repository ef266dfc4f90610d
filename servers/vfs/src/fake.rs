//! A [`Kernel`] for host tests of servers that check channel capabilities
//! through it (VFS, DEVMAN): capabilities are what the test says they are,
//! channels live until the test kills them, dropped tokens are recorded.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use crate::server::Kernel;

#[derive(Default)]
pub struct FakeKernel {
    /// token -> (channel id, rights)
    pub caps: BTreeMap<u64, (u64, u32)>,
    /// Ids of the channels that exist.
    pub live: BTreeSet<u64>,
    /// Tokens the server forgot, in order.
    pub dropped: Vec<u64>,
    /// Published names -> channel id.
    pub names: BTreeMap<String, u64>,
}

impl FakeKernel {
    /// A capability `token` for channel `id` with rights `r` (the channel
    /// now lives); returns `token`.
    pub fn channel_cap(&mut self, token: u64, id: u64, r: abi::ChannelRights) -> u64 {
        self.caps.insert(token, (id, r.bits()));
        self.live.insert(id);
        token
    }

    /// Publish channel `id` as `name` (what the kernel's NameRegister does).
    pub fn publish(&mut self, name: &str, id: u64) {
        self.names.insert(String::from(name), id);
    }

    /// [`Self::channel_cap`] for a channel published as the mount name of
    /// `prefix`: a driver with the mount capability.
    pub fn mount_cap(&mut self, token: u64, id: u64, r: abi::ChannelRights, prefix: &str) -> u64 {
        self.publish(&crate::mount_name(prefix), id);
        self.channel_cap(token, id, r)
    }
}

impl Kernel for FakeKernel {
    fn channel(&self, token: u64) -> Option<(u64, u32)> {
        self.caps.get(&token).copied()
    }
    fn alive(&self, id: u64) -> bool {
        self.live.contains(&id)
    }
    fn drop_cap(&mut self, token: u64) {
        self.dropped.push(token);
    }
    fn named(&mut self, name: &str) -> Option<u64> {
        self.names.get(name).copied().filter(|id| self.live.contains(id))
    }
    fn channel_name(&mut self, id: u64) -> Option<String> {
        self.names.iter().find(|(_, &i)| i == id && self.live.contains(&id)).map(|(n, _)| n.clone())
    }
}
