//! Bytes from the serial console.
//!
//! [`SerialInput`] is what the shell needs; [`PolledUart`] provides it with
//! COM1's I/O-port capability: it drains the receive FIFO (LSR bit 0, then
//! RBR) and, when it is empty, sleeps a few milliseconds and looks again.
//! The kernel's IRQ capabilities are MSI-only so far, so COM1's interrupt
//! (IOAPIC pin 4) cannot be delivered to a program yet; an interrupt-driven
//! implementation of the trait replaces the poll when it can be.

use abi::ioport::{COM1_DATA, COM1_LSR, LSR_DATA_READY};
use abi::Syscall;

/// A source of typed bytes.
pub trait SerialInput {
    /// The bytes waiting now (none: 0), at most `buf.len()`.
    fn read(&mut self, buf: &mut [u8]) -> usize;

    /// Wait for at least one byte, then return what is there.
    fn read_wait(&mut self, buf: &mut [u8]) -> usize {
        loop {
            let n = self.read(buf);
            if n > 0 {
                return n;
            }
            let _ = runtime::time::sleep_ms(POLL_MS);
        }
    }
}

/// How long to sleep when nothing was typed: short enough that typing and
/// pasting feel immediate, long enough to cost nothing measurable.
pub const POLL_MS: u64 = 5;

/// COM1 through an I/O-port capability.
pub struct PolledUart {
    token: u64,
}

impl PolledUart {
    /// The COM1 capability the shell was started with.
    pub fn from_start_caps() -> Option<PolledUart> {
        runtime::caps::init_cap(abi::cap_id::COM1).map(|token| PolledUart { token })
    }

    fn inb(&self, port: u16) -> Option<u8> {
        // SAFETY: IoPortIn touches no memory of ours.
        unsafe { runtime::sys::call(Syscall::IoPortIn, self.token, [port as u64, 0, 0, 0, 0]) }.ok().map(|r| r[0] as u8)
    }
}

impl SerialInput for PolledUart {
    fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match self.inb(COM1_LSR) {
                Some(lsr) if lsr & LSR_DATA_READY != 0 => {}
                _ => break,
            }
            match self.inb(COM1_DATA) {
                Some(b) => buf[n] = b,
                None => break,
            }
            n += 1;
        }
        n
    }
}
