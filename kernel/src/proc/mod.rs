//! Threads and processes as the kernel's tables hold them.

pub mod process;
pub mod queue;
pub mod thread;

pub use process::{ProcState, Process};
pub use queue::Queue;
pub use thread::{Message, State, Thread, Tid, NO_THREAD};
