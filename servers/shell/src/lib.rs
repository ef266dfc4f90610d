//! The serial shell's pure parts, built and tested on the host: the line
//! editor (bytes from the UART in, echo and finished lines out), the
//! command parser, SHA-256, the hexdump format and the `devices` rows. `src/main.rs` wires
//! them to the UART, VFS, the process calls and the IPC monitor.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod command;
pub mod devices;
pub mod editor;
pub mod hexdump;
pub mod sha256;

/// What the shell prints before each line.
pub const PROMPT: &str = "> ";
