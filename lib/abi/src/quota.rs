//! Per-process quotas: what `ProcessCreate` gives a new process.
//!
//! Every process has an allowance of threads, pages of memory, channels,
//! capabilities and processes. A creator hands its child a [`Quota`] at
//! `ProcessCreate`; threads, pages, channels and processes are *carved out*
//! of the creator's remaining allowance (and come back when the child ends),
//! so the quotas of all live processes never add up to more than the
//! machine has, however deep the tree. Capabilities are only *capped* by the
//! creator's own limit: each process has its own table, so one process's
//! capabilities take nothing from another's. `system` gets the whole
//! machine. Running into a quota fails with `LimitReached`.

/// A quota field meaning "everything the creator has left of it".
pub const REST: u64 = u64::MAX;

/// What a process may hold at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Quota {
    /// Live threads.
    pub threads: u64,
    /// Frames of RAM: anonymous memory, page tables, DMA, the capability
    /// table, and the quotas of its own children.
    pub pages: u64,
    /// Channels owned.
    pub channels: u64,
    /// Capabilities held (at most [`crate::limits::CAPS_PER_PROCESS`]).
    pub caps: u64,
    /// Processes it may create (each child also takes one of these while it lives).
    pub processes: u64,
}
crate::plain!(Quota { threads: u64, pages: u64, channels: u64, caps: u64, processes: u64 });
// `ProcessCreate` reads exactly `to_bytes`'s 40 bytes.
const _: () = assert!(core::mem::size_of::<Quota>() == 40);

impl Quota {
    /// Everything the creator has left.
    pub const REST: Quota = Quota { threads: REST, pages: REST, channels: REST, caps: REST, processes: REST };

    /// What the runtime's spawner gives a program unless told otherwise:
    /// enough for a program of a few MiB with a few threads and servers.
    pub const DEFAULT: Quota = Quota {
        threads: 16,
        pages: 4096,
        channels: 32,
        caps: crate::limits::CAPS_PER_PROCESS as u64,
        processes: 4,
    };

    /// The bytes `ProcessCreate` reads.
    pub fn to_bytes(&self) -> [u8; 40] {
        let mut b = [0u8; 40];
        for (i, v) in [self.threads, self.pages, self.channels, self.caps, self.processes].iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// The quota in `ProcessCreate`'s argument bytes.
    pub fn from_bytes(b: &[u8; 40]) -> Quota {
        let f = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Quota { threads: f(0), pages: f(1), channels: f(2), caps: f(3), processes: f(4) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let q = Quota { threads: 1, pages: 2, channels: 3, caps: 4, processes: REST };
        assert_eq!(Quota::from_bytes(&q.to_bytes()), q);
    }
}
