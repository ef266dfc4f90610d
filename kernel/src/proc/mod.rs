//! Threads and processes as the kernel's tables hold them, their quotas,
//! and their lifecycle ([`lifecycle`]: creation, exit, kill, reclaim).

pub mod lifecycle;
pub mod process;
pub mod queue;
pub mod quota;
pub mod thread;

pub use lifecycle::PROCESS_PAGES;
pub use process::{ProcState, Process, PROCESS_SLOTS};
pub use queue::Queue;
pub use quota::{Account, Resource};
pub use thread::{tids, Message, State, Thread, ThreadTable, Tid, LeafCache, NO_THREAD, THREAD_SLOTS};
