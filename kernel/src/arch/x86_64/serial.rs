//! COM1, polled. The console is the kernel's only output device; it must work
//! before anything else is set up and from inside any fault handler, so it
//! takes no locks and uses no interrupts.
//!
//! The kernel owns every write to the UART's registers: besides THR it
//! turns on the *receive* interrupt (IER bit 0, and OUT2 in MCR, which
//! gates the UART's interrupt output on PCs) once, here. That interrupt
//! goes to whoever holds COM1's line (`cap_id::COM1_IRQ`: the shell, which
//! reads RBR/LSR through a read-only port capability); until someone binds
//! the line it stays masked at the I/O APIC. The transmit interrupt stays
//! off: output is polled.

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;

/// IER: interrupt when received data is available (or the FIFO times out).
const IER_RECEIVED: u8 = 0x01;
/// MCR: DTR, RTS and OUT2 (the PC's interrupt enable).
const MCR_DTR_RTS_OUT2: u8 = 0x0b;

/// Program COM1 for 115200 baud, 8N1, FIFOs on (interrupt at 14 bytes or
/// after a pause), the receive interrupt on.
pub fn init() {
    let regs = [(1, 0x00u8), (3, 0x80), (0, 0x01), (1, 0x00), (3, 0x03), (2, 0xc7), (4, MCR_DTR_RTS_OUT2), (1, IER_RECEIVED)];
    for (off, val) in regs {
        // SAFETY: COM1's registers are standard PC I/O ports; writing them only
        // configures the UART.
        unsafe { Port::new(COM1 + off).write(val) };
    }
}

/// Write bytes, waiting for the transmitter before each.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        if b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

fn put(b: u8) {
    let mut status: Port<u8> = Port::new(COM1 + 5);
    let mut data: Port<u8> = Port::new(COM1);
    // SAFETY: reading the line status register and writing the data register
    // of COM1 have no side effects beyond sending the byte.
    unsafe {
        let mut spins = 0u32;
        while status.read() & 0x20 == 0 && spins < 100_000 {
            spins += 1;
        }
        data.write(b);
    }
}
