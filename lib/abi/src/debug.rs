//! IPC monitoring (`DebugIpc` syscall, needs the `DebugIpc` class).
//!
//! The first argument picks the operation; the layouts below are what the
//! kernel writes into the caller's buffer.

/// `DebugIpc` operations (argument 1).
pub mod op {
    /// `buf, max -> total, written`: write up to `max` channel ids (`u64`).
    pub const LIST_CHANNELS: u64 = 1;
    /// `channel_id, buf ->`: write a [`super::ChannelStats`].
    pub const CHANNEL_STATS: u64 = 2;
    /// `on ->`: log every IPC operation on the console (1) or stop (0).
    pub const TRACE: u64 = 3;
    /// `buf ->`: write an [`super::IpcTotals`].
    pub const TOTALS: u64 = 4;
    /// `buf ->`: write a [`super::KernelAccounting`].
    pub const KERNEL_ACCOUNTING: u64 = 5;
    /// `buf ->`: write a [`super::QuotaUse`]: the caller's quota and what
    /// it uses of it.
    pub const QUOTA: u64 = 6;
    /// `channel_id, buf, max -> len`: write up to `max` bytes of the name
    /// the channel is registered under; `len` is the full length (0: none).
    pub const CHANNEL_NAME: u64 = 7;
    /// `-> cr3, mode`: the CR3 value the CPU holds while it runs the
    /// caller (its address space: the table's address and, with PCID on,
    /// its PCID in bits 0-11) and the kernel's TLB tagging ([`super::PCID_ON`],
    /// [`super::PCID_INVPCID`]).
    pub const ADDRESS_SPACE: u64 = 8;
}

/// `ADDRESS_SPACE` mode bit: CR4.PCIDE is on, each process has its PCID.
pub const PCID_ON: u64 = 1;
/// `ADDRESS_SPACE` mode bit: the CPU has INVPCID (used to flush a space
/// that is not loaded).
pub const PCID_INVPCID: u64 = 2;

/// Statistics of one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ChannelStats {
    /// The channel's system-wide id (as `CapInspect` reports it).
    pub id: u64,
    /// Process id of the owner.
    pub owner: u64,
    pub sends: u64,
    pub receives: u64,
    pub replies: u64,
    /// Operations on the channel that failed (timeouts, full queue, bad
    /// buffers, closed while waiting).
    pub errors: u64,
    /// Most senders ever waiting at once.
    pub peak_depth: u64,
    /// Senders waiting now.
    pub waiting_senders: u64,
    /// Receivers waiting now.
    pub waiting_receivers: u64,
    /// Messages received but not yet replied to.
    pub in_flight: u64,
}

/// System-wide IPC figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct IpcTotals {
    /// Live channels.
    pub channels: u64,
    /// Messages sent and not yet answered (queued or received).
    pub in_flight: u64,
    /// Registered names.
    pub names: u64,
    /// Kernel bytes one channel takes.
    pub bytes_per_channel: u64,
    /// Kernel bytes one in-flight message takes.
    pub bytes_per_message: u64,
    /// Kernel bytes one name registration takes.
    pub bytes_per_name: u64,
    /// Kernel bytes in use by IPC now: channels, messages and names.
    pub bytes_in_use: u64,
    /// Messages delivered since boot.
    pub messages_total: u64,
    /// `Send`s the general path handled since boot: those the fast path
    /// declined, or all of them if the entry stub stopped routing `Send`
    /// there (counted here, not on the fast path, which stays as short).
    pub general_sends: u64,
    /// `ReplyRecv`s the general path handled since boot, likewise.
    pub general_replies: u64,
    /// IPC calls (`Send`, `ReplyRecv`, `Call`, `ReplyWait`) the kernel's
    /// assembly fast path passed on to its other paths since boot.
    pub declined: u64,
}

/// What the kernel has left of each resource it hands out: after programs
/// end, these return to what they were before, or something leaked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct KernelAccounting {
    /// Free physical frames.
    pub free_frames: u64,
    /// Process slots not held by a live process (dead ones are reusable).
    pub free_processes: u64,
    /// Thread slots not held by a live thread.
    pub free_threads: u64,
    /// Channel slots not in use.
    pub free_channels: u64,
    /// Name registrations still possible.
    pub free_names: u64,
    /// DMA region slots not in use.
    pub free_dma: u64,
}

/// A process's quota and what it uses of it (its children's quotas
/// included, see [`crate::quota`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct QuotaUse {
    pub limit: crate::quota::Quota,
    pub used: crate::quota::Quota,
}

crate::plain!(ChannelStats {
    id: u64,
    owner: u64,
    sends: u64,
    receives: u64,
    replies: u64,
    errors: u64,
    peak_depth: u64,
    waiting_senders: u64,
    waiting_receivers: u64,
    in_flight: u64,
});

crate::plain!(IpcTotals {
    channels: u64,
    in_flight: u64,
    names: u64,
    bytes_per_channel: u64,
    bytes_per_message: u64,
    bytes_per_name: u64,
    bytes_in_use: u64,
    messages_total: u64,
    general_sends: u64,
    general_replies: u64,
    declined: u64,
});

// What the kernel writes for `CHANNEL_STATS` and `TOTALS`: ten and eleven
// words, no more (the runtime's buffers are exactly these types).
const _: () = assert!(core::mem::size_of::<ChannelStats>() == 10 * 8 && core::mem::size_of::<IpcTotals>() == 11 * 8);

crate::plain!(KernelAccounting {
    free_frames: u64,
    free_processes: u64,
    free_threads: u64,
    free_channels: u64,
    free_names: u64,
    free_dma: u64,
});

crate::plain!(QuotaUse { limit: crate::quota::Quota, used: crate::quota::Quota });
