//! COM1, polled. The console is the kernel's only output device; it must work
//! before anything else is set up and from inside any fault handler, so it
//! takes no locks and uses no interrupts.

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;

/// Program COM1 for 115200 baud, 8N1, FIFOs on.
pub fn init() {
    let regs = [(1, 0x00u8), (3, 0x80), (0, 0x01), (1, 0x00), (3, 0x03), (2, 0xc7), (4, 0x03)];
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
