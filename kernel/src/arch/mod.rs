//! The boundary between the kernel's logic and the machine.
//!
//! On the bare-metal target this is x86-64 (boot, interrupts, context
//! switches, the MMU). On the host it is a small fake that records what the
//! logic asked of the hardware, so `cargo test` can run the kernel's IPC,
//! capability and scheduling code on Linux (the approach Hubris takes with
//! its host arch). The logic may use only what both provide:
//! `console_write`, `flush_page`, `load_address_space`, `power_off`,
//! `port_in`/`port_out` (one byte at an I/O port a capability allows),
//! `read_user` (copy from the active address space: through the MMU on x86,
//! by walking its tables on the host), `ThreadContext`, and
//! `tick_window` / `take_late_ticks` (let pending timer ticks in during
//! a long syscall and run them afterwards; the host fakes a tick per window
//! when a test asks it to).

#[cfg(target_os = "none")]
pub mod x86_64;
#[cfg(target_os = "none")]
pub use self::x86_64::{
    console_write, flush_page, tick_window, load_address_space, port_in, port_out, power_off, read_user, take_late_ticks, ThreadContext,
};

#[cfg(not(target_os = "none"))]
pub mod host;
#[cfg(not(target_os = "none"))]
pub use host::{
    console_write, flush_page, tick_window, load_address_space, port_in, port_out, power_off, read_user, take_late_ticks, ThreadContext,
};
