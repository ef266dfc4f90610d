//! Process records.

use crate::cap::CapTable;
use crate::mem::PageTables;

use super::quota::{Account, Resource};
use super::Queue;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProcState {
    #[default]
    Free,
    Alive,
    /// Ended; the exit status is kept until the slot is reused.
    Dead,
}

/// Slots in the process table: one per `u8` index (a thread names its
/// process in a byte); at most [`abi::limits::PROCESSES`] are used.
pub const PROCESS_SLOTS: usize = 256;
const _: () = assert!(abi::limits::PROCESSES <= PROCESS_SLOTS);

/// One process: an address space, a capability table and its threads.
#[derive(Default)]
pub struct Process {
    pub state: ProcState,
    /// Bumped each time the slot is reused; capabilities name (index, gen).
    pub gen: u32,
    pub name: [u8; abi::limits::PROCESS_NAME_LEN],
    pub name_len: u8,
    pub space: Option<PageTables>,
    pub caps: Option<CapTable>,
    /// Live threads.
    pub threads: u16,
    /// Channels owned.
    pub channels: u16,
    /// Threads in `ProcessWait` for this process.
    pub waiters: Queue,
    /// How it ended ([`abi::exit`]) and the code or vector.
    pub exit: (u64, u64),
    /// Bad-token strikes, for the escalating delay ([`crate::cap::penalty`]).
    pub strikes: crate::cap::penalty::Strikes,
    /// Its quota and what it spends on children ([`super::quota`]).
    pub acct: Account,
}

impl Process {
    pub fn name(&self) -> &str {
        core::str::from_utf8(&self.name[..self.name_len as usize]).unwrap_or("?")
    }

    /// What the process uses of `r` itself (not counting its children).
    pub fn used(&self, r: Resource) -> u64 {
        match r {
            Resource::Threads => self.threads as u64,
            Resource::Pages => self.acct.pages,
            Resource::Channels => self.channels as u64,
            Resource::Caps => self.caps.as_ref().map_or(0, |c| c.len() as u64),
            Resource::Processes => 0,
        }
    }

    /// How much more of `r` the process may take.
    pub fn room(&self, r: Resource) -> u64 {
        self.acct.room(r, self.used(r))
    }

    pub fn set_name(&mut self, name: &[u8]) {
        let n = name.len().min(self.name.len());
        self.name[..n].copy_from_slice(&name[..n]);
        self.name_len = n as u8;
    }
}
