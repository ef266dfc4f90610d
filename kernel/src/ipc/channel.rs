//! Channel records and the channel table.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::proc::Queue;

/// One channel: two wait queues and its statistics.
///
/// Messages are not stored here (they live in the blocked senders), so a
/// channel's size is fixed; it is reported by the IPC benchmark.
#[derive(Clone, Debug, Default)]
pub struct Channel {
    pub gen: u32,
    pub live: bool,
    /// Process index of the owner.
    pub owner: u16,
    /// Senders waiting for a receiver, FIFO.
    pub senders: Queue,
    /// Receivers waiting for a sender, FIFO (so receivers take turns).
    pub receivers: Queue,
    /// Messages received but not replied to.
    pub in_flight: u16,
    /// Interrupt events waiting for a receiver, one bit per IRQ slot
    /// (see [`crate::irq`]).
    pub irq_pending: u16,
    /// Most senders ever queued at once.
    pub peak: u16,
    /// Next free slot while on the free list.
    pub next_free: u16,
    pub sends: u64,
    pub receives: u64,
    pub replies: u64,
    pub errors: u64,
}

// The benchmark's memory target: at most 128 bytes of kernel memory per
// channel.
const _: () = assert!(core::mem::size_of::<Channel>() <= 128);

const NO_SLOT: u16 = u16::MAX;
/// Slots in the table (a power of two: indices are masked, not checked).
pub const CHANNEL_SLOTS: usize = 1024;
/// The last slot is never handed out; a masked [`NO_CHANNEL`] lands there.
pub const NO_CHANNEL: u16 = (CHANNEL_SLOTS - 1) as u16;
const _: () = assert!(abi::limits::CHANNELS < CHANNEL_SLOTS);

/// Fixed-size table of channels with a free list.
pub struct ChannelTable {
    slots: Box<[Channel; CHANNEL_SLOTS]>,
    free_head: u16,
    live: usize,
}

impl ChannelTable {
    /// Where the slots' pointer is, for the assembly fast path
    /// (`arch::x86_64::fastpath`).
    #[cfg_attr(not(target_os = "none"), allow(dead_code))]
    pub(crate) const SLOTS_AT: usize = core::mem::offset_of!(ChannelTable, slots);

    /// A table with room for `capacity` channels (at most
    /// [`abi::limits::CHANNELS`]), allocated now so that creating a channel
    /// never needs kernel memory.
    pub fn new(capacity: usize) -> Option<Self> {
        let capacity = capacity.min(abi::limits::CHANNELS);
        let mut v = Vec::new();
        v.try_reserve_exact(CHANNEL_SLOTS).ok()?;
        for i in 0..CHANNEL_SLOTS {
            let next = if i + 1 < capacity { (i + 1) as u16 } else { NO_SLOT };
            v.push(Channel { next_free: next, ..Channel::default() });
        }
        let slots = v.into_boxed_slice().try_into().ok()?;
        Some(ChannelTable { slots, free_head: if capacity > 0 { 0 } else { NO_SLOT }, live: 0 })
    }

    /// A fresh channel owned by process `owner`: `(index, generation)`.
    pub fn alloc(&mut self, owner: u16) -> Option<(u16, u32)> {
        if self.free_head == NO_SLOT {
            return None;
        }
        let idx = self.free_head;
        let c = &mut self.slots[idx as usize];
        self.free_head = c.next_free;
        let gen = c.gen.wrapping_add(1);
        *c = Channel { gen, live: true, owner, next_free: NO_SLOT, ..Channel::default() };
        self.live += 1;
        Some((idx, gen))
    }

    /// Return a channel's slot; its queues must already be empty. Every
    /// thread's lookup hint goes ([`crate::cap::hint`]).
    pub fn free(&mut self, idx: u16) {
        crate::cap::hint::invalidate_all();
        let c = &mut self.slots[idx as usize];
        debug_assert!(c.live && c.senders.is_empty() && c.receivers.is_empty());
        c.live = false;
        c.gen = c.gen.wrapping_add(1);
        c.next_free = self.free_head;
        self.free_head = idx;
        self.live -= 1;
    }

    /// The live channel `(idx, gen)`. A slot's generation is odd while it
    /// is live and even while it is free (`alloc` and `free` each add one),
    /// so matching a capability's (odd) generation is the liveness check.
    #[inline]
    pub fn get(&mut self, idx: u32, gen: u32) -> Option<&mut Channel> {
        let c = &mut self.slots[idx as usize % CHANNEL_SLOTS];
        debug_assert!(c.gen % 2 == c.live as u32);
        (idx < CHANNEL_SLOTS as u32 && c.gen == gen).then_some(c)
    }

    /// The channel in slot `idx` (live or not).
    #[inline]
    pub fn slot(&mut self, idx: u16) -> &mut Channel {
        &mut self.slots[idx as usize % CHANNEL_SLOTS]
    }

    pub fn live_count(&self) -> usize {
        self.live
    }

    /// Indices of live channels.
    pub fn live_indices(&self) -> impl Iterator<Item = u16> + '_ {
        self.slots.iter().enumerate().filter(|(_, c)| c.live).map(|(i, _)| i as u16)
    }
}

/// The id user space sees for a channel (monitoring, `CapInspect`).
pub fn channel_id(idx: u16, gen: u32) -> u64 {
    (gen as u64) << 32 | idx as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_reuses_with_new_generation() {
        let mut t = ChannelTable::new(2).unwrap();
        let (a, ga) = t.alloc(1).unwrap();
        let (b, _) = t.alloc(1).unwrap();
        assert!(t.alloc(1).is_none(), "table of 2 gave a third");
        assert_eq!(t.live_count(), 2);
        t.free(a);
        assert!(t.get(a as u32, ga).is_none(), "freed channel still reachable");
        let (a2, ga2) = t.alloc(3).unwrap();
        assert_eq!(a2, a);
        assert_ne!(ga2, ga);
        assert!(t.get(a as u32, ga).is_none(), "stale generation accepted");
        assert_eq!(t.get(a2 as u32, ga2).unwrap().owner, 3);
        assert!(t.get(b as u32 + 10, 1).is_none());
    }
}
