//! Bytes from the serial console, by interrupt.
//!
//! [`SerialInput`] is what the shell needs; [`IrqUart`] provides it with
//! two capabilities `system` hands over: COM1's I/O ports, read-only
//! (`com1_rx` in `boot.conf`: LSR and RBR are all the shell touches), and
//! COM1's interrupt line (ISA IRQ 4 through the I/O APIC, `com1_irq`). It
//! binds the line to a channel of its own and blocks in `Receive` there
//! until the UART raises its receive interrupt: an idle shell never runs.
//!
//! The kernel owns every UART register write: it programs COM1 at boot
//! (FIFO, 8N1, the receive-data interrupt in IER and OUT2 in MCR) and is
//! the only writer of THR (its log and, through `DebugPrint`, the shell's
//! output), so enabling the interrupt needs no write right here and the
//! transmit side never changes under the kernel's feet.
//!
//! The line is edge-triggered and the I/O APIC drops edges while it is
//! masked (from each event until the ack), so the order is: drain the
//! FIFO, wait for an event, ack, drain again. A byte that arrives while
//! masked keeps the UART's line high; the drain after the ack takes it,
//! and the next byte makes a new edge.

use abi::ioport::{COM1_DATA, COM1_LSR, LSR_DATA_READY};
use runtime::ipc::{Channel, Window};
use runtime::irq::{event_badge, Irq};

/// A source of typed bytes.
pub trait SerialInput {
    /// The bytes waiting now (none: 0), at most `buf.len()`.
    fn read(&mut self, buf: &mut [u8]) -> usize;

    /// Wait up to `timeout_ms` (`u64::MAX`: for ever) for at least one
    /// byte, then return what is there (0 if none came).
    fn read_timeout(&mut self, buf: &mut [u8], timeout_ms: u64) -> usize;

    /// Wait for at least one byte, then return what is there.
    fn read_wait(&mut self, buf: &mut [u8]) -> usize {
        loop {
            let n = self.read_timeout(buf, u64::MAX);
            if n > 0 {
                return n;
            }
        }
    }
}

/// The badge of COM1's events on the shell's channel.
const BADGE: u64 = 0xc0a1;

/// Why the reader could not start.
#[derive(Debug)]
pub enum SetupError {
    /// No `com1_rx` capability.
    NoPorts,
    /// No `com1_irq` capability (a machine without an I/O APIC).
    NoIrq,
    Channel(abi::Error),
    Window(abi::Error),
    Bind(abi::Error),
}

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetupError::NoPorts => write!(f, "no capability for COM1's ports"),
            SetupError::NoIrq => write!(f, "no capability for COM1's interrupt line"),
            SetupError::Channel(e) => write!(f, "no channel: {e:?}"),
            SetupError::Window(e) => write!(f, "no receive window: {e:?}"),
            SetupError::Bind(e) => write!(f, "cannot bind COM1's line: {e:?}"),
        }
    }
}

/// COM1 through its read-only port capability and its IRQ capability.
pub struct IrqUart {
    ports: u64,
    irq: Irq,
    chan: Channel,
    window: Window,
}

impl IrqUart {
    /// Bind COM1's line to a new channel.
    pub fn from_start_caps() -> Result<IrqUart, SetupError> {
        let ports = runtime::caps::init_cap(abi::cap_id::COM1).ok_or(SetupError::NoPorts)?;
        let irq = Irq(runtime::caps::init_cap(abi::cap_id::COM1_IRQ).ok_or(SetupError::NoIrq)?);
        let chan = Channel::create().map_err(SetupError::Channel)?;
        let window = Window::new().map_err(SetupError::Window)?;
        irq.bind(&chan, BADGE).map_err(SetupError::Bind)?;
        Ok(IrqUart { ports, irq, chan, window })
    }

    /// The channel's number in the `channels` table (the slot part of its
    /// system-wide id), for the log.
    pub fn channel_id(&self) -> Option<u64> {
        runtime::caps::inspect(self.chan.token()).ok().map(|(_, _, id, _)| id & 0xffff)
    }

    fn inb(&self, port: u16) -> Option<u8> {
        let args = abi::call::PortInArgs { port: port as u64 };
        runtime::sys::calls::IO_PORT_IN.call(self.ports, args).ok().map(|r| r.value as u8)
    }
}

impl SerialInput for IrqUart {
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

    fn read_timeout(&mut self, buf: &mut [u8], timeout_ms: u64) -> usize {
        let n = self.read(buf);
        if n > 0 {
            return n;
        }
        let timeout_ns = if timeout_ms == u64::MAX { abi::FOREVER } else { timeout_ms.saturating_mul(1_000_000) };
        match self.chan.receive(&mut self.window, timeout_ns) {
            Ok(r) if event_badge(&r).is_some() => {
                let _ = self.irq.ack();
            }
            // Nobody else has a send right; answer anything else with an error.
            Ok(r) => {
                let _ = r.reply(abi::Error::InvalidArgument as u64, 0);
            }
            Err(_) => return 0,
        }
        self.read(buf)
    }
}
