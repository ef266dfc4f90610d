//! Bus enumeration and BAR sizing over a [`ConfigSpace`].
//!
//! Depth-first from the window's first bus: every device 0–31, every
//! function 0–7 of multifunction devices, and behind each PCI-to-PCI bridge
//! its secondary bus (once, and only inside the window, so a looping or
//! misprogrammed bridge cannot send the walk round in circles).
//!
//! BAR sizing (PCI LB 3.0 §6.2.5.1): with decoding off, write all ones,
//! read back, restore; the size is the two's complement of the address
//! bits. A 64-bit memory BAR takes the next register as its high half.

use alloc::vec::Vec;

use devman::proto::{Bar, BarKind, Device, Identity, MAX_BARS};

use crate::{reg, ConfigSpace, Location};

/// One function found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub at: Location,
    pub vendor: u16,
    pub device: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    /// Bits 6:0 of the header type (0 device, 1 bridge).
    pub header: u8,
    /// The bridge it sits behind (None on the window's first bus).
    pub parent: Option<Location>,
    /// Bridges: the bus behind them.
    pub secondary: Option<u8>,
    pub bars: heapless::Vec<Bar, MAX_BARS>,
}

impl Function {
    /// Its registry entry.
    pub fn device(&self) -> Device {
        Device {
            class: self.class,
            subclass: self.subclass,
            prog_if: self.prog_if,
            vendor: self.vendor,
            device: self.device,
            identity: Identity::Pci(self.at),
            parent: self.parent,
            bars: self.bars.clone(),
        }
    }

    /// Class 01 / subclass 06 / prog-IF 01: an AHCI controller.
    pub fn is_ahci(&self) -> bool {
        (self.class, self.subclass, self.prog_if) == (0x01, 0x06, 0x01)
    }
}

impl core::fmt::Display for Function {
    /// `00:1f.2 8086:2922 class 01.06.01 BAR4 io 0xc040+0x20 BAR5 mem32 0xfebd5000+0x1000`
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let a = self.at;
        write!(
            f,
            "{:02x}:{:02x}.{} {:04x}:{:04x} class {:02x}.{:02x}.{:02x}",
            a.bus, a.device, a.function, self.vendor, self.device, self.class, self.subclass, self.prog_if
        )?;
        if let Some(s) = self.secondary {
            write!(f, " bridge to bus {s:02x}")?;
        }
        for b in &self.bars {
            let kind = match b.kind {
                BarKind::Io => "io",
                BarKind::Memory32 => "mem32",
                BarKind::Memory64 => "mem64",
            };
            write!(f, " BAR{} {} {:#x}+{:#x}{}", b.index, kind, b.base, b.size, if b.prefetchable { " pref" } else { "" })?;
        }
        Ok(())
    }
}

fn at(l: Location, device: u8, function: u8) -> Location {
    Location { device, function, ..l }
}

/// Size the BARs of a function with `count` of them (6 for a device, 2 for
/// a bridge). Decoding is switched off around the probing and restored.
pub fn size_bars<C: ConfigSpace>(c: &mut C, f: Location, count: u8) -> heapless::Vec<Bar, MAX_BARS> {
    let mut out = heapless::Vec::new();
    let command = c.read(f, reg::COMMAND, 2);
    c.write(f, reg::COMMAND, 2, command & !u32::from(reg::COMMAND_DECODE));
    let mut i = 0;
    while i < count {
        let off = reg::BAR0 + 4 * u16::from(i);
        let orig = c.read(f, off, 4);
        c.write(f, off, 4, 0xffff_ffff);
        let probe = c.read(f, off, 4);
        c.write(f, off, 4, orig);
        let index = i;
        i += 1;
        if orig & 1 == 1 {
            // I/O: bits 1:0 are flags; the upper half may read as zero.
            let mask = probe & !0b11 & 0xffff;
            if mask != 0 {
                let _ = out.push(Bar { index, kind: BarKind::Io, prefetchable: false, base: u64::from(orig & !0b11), size: u64::from(!mask & 0xffff) + 1 });
            }
            continue;
        }
        let prefetchable = orig & 0b1000 != 0;
        if (orig >> 1) & 0b11 == 0b10 && i < count {
            let hi_off = off + 4;
            let orig_hi = c.read(f, hi_off, 4);
            c.write(f, hi_off, 4, 0xffff_ffff);
            let probe_hi = c.read(f, hi_off, 4);
            c.write(f, hi_off, 4, orig_hi);
            i += 1;
            let mask = u64::from(probe_hi) << 32 | u64::from(probe & !0xf);
            if mask != 0 {
                let base = u64::from(orig_hi) << 32 | u64::from(orig & !0xf);
                let _ = out.push(Bar { index, kind: BarKind::Memory64, prefetchable, base, size: (!mask).wrapping_add(1) });
            }
            continue;
        }
        let mask = probe & !0xf;
        if mask != 0 {
            let _ = out.push(Bar { index, kind: BarKind::Memory32, prefetchable, base: u64::from(orig & !0xf), size: u64::from(!mask) + 1 });
        }
    }
    c.write(f, reg::COMMAND, 2, command);
    out
}

/// Read one present function (None if its vendor reads as all ones).
fn probe<C: ConfigSpace>(c: &mut C, f: Location, parent: Option<Location>) -> Option<Function> {
    let vendor = c.read(f, reg::VENDOR, 2) as u16;
    if vendor == 0xffff {
        return None;
    }
    let header = c.read(f, reg::HEADER_TYPE, 1) as u8 & 0x7f;
    let (bars, secondary) = match header {
        0 => (size_bars(c, f, 6), None),
        1 => (size_bars(c, f, 2), Some(c.read(f, reg::SECONDARY_BUS, 1) as u8)),
        _ => (heapless::Vec::new(), None),
    };
    Some(Function {
        at: f,
        vendor,
        device: c.read(f, reg::DEVICE, 2) as u16,
        class: c.read(f, reg::CLASS, 1) as u8,
        subclass: c.read(f, reg::SUBCLASS, 1) as u8,
        prog_if: c.read(f, reg::PROG_IF, 1) as u8,
        header,
        parent,
        secondary,
        bars,
    })
}

/// Every function on buses `start..=end` of `segment` reachable from bus
/// `start`, in walk order (a bridge before the functions behind it).
pub fn enumerate<C: ConfigSpace>(c: &mut C, segment: u16, start: u8, end: u8) -> Vec<Function> {
    let mut found = Vec::new();
    let mut seen = [false; 256];
    let mut buses: Vec<(u8, Option<Location>)> = alloc::vec![(start, None)];
    while let Some((bus, parent)) = buses.pop() {
        if seen[usize::from(bus)] || bus < start || bus > end {
            continue;
        }
        seen[usize::from(bus)] = true;
        let mut behind = Vec::new();
        for dev in 0..32 {
            let f0 = Location { segment, bus, device: dev, function: 0 };
            if c.read(f0, reg::VENDOR, 2) as u16 == 0xffff {
                continue;
            }
            let multi = c.read(f0, reg::HEADER_TYPE, 1) & 0x80 != 0;
            for func in 0..if multi { 8 } else { 1 } {
                if let Some(f) = probe(c, at(f0, dev, func), parent) {
                    if let Some(s) = f.secondary {
                        behind.push((s, Some(f.at)));
                    }
                    found.push(f);
                }
            }
        }
        // Depth-first, lowest bridge first.
        buses.extend(behind.into_iter().rev());
    }
    found
}

/// Where [`assign_bars`] places memory BARs firmware left at 0 on q35: above
/// the ECAM window (so never RAM, whatever the machine's memory size) and
/// below the I/O APIC's window.
pub const MMIO_WINDOW: (u64, u64) = (0xC000_0000, 0xFEC0_0000);

/// Give every memory BAR at address 0 of the functions on the window's
/// first bus an address in `window` (naturally aligned, first fit around
/// those already there), and switch memory decoding on for the functions that got one.
/// Firmware such as qboot assigns nothing and leaves it to the OS. Functions
/// behind bridges are left alone (their bridge windows would need
/// programming too), as are I/O BARs. Returns how many BARs were placed.
pub fn assign_bars<C: ConfigSpace>(c: &mut C, functions: &mut [Function], first_bus: u8, window: (u64, u64)) -> usize {
    // Ranges in use: every memory BAR firmware placed, then ours.
    let mut taken: Vec<(u64, u64)> =
        functions.iter().flat_map(|f| f.bars.iter()).filter(|b| b.base != 0 && b.kind != BarKind::Io).map(|b| (b.base, b.base.saturating_add(b.size))).collect();
    let mut placed = 0;
    for f in functions.iter_mut().filter(|f| f.at.bus == first_bus && f.header == 0) {
        let mut any = false;
        for b in f.bars.iter_mut().filter(|b| b.base == 0 && b.kind != BarKind::Io) {
            let align = b.size.max(16);
            let mut base = window.0.next_multiple_of(align);
            while let Some(&(_, end)) = taken.iter().find(|&&(s, e)| base < e && s < base.saturating_add(b.size)) {
                base = end.next_multiple_of(align);
            }
            if base.checked_add(b.size).is_none_or(|end| end > window.1) {
                continue;
            }
            taken.push((base, base + b.size));
            let off = reg::BAR0 + 4 * u16::from(b.index);
            let flags = c.read(f.at, off, 4) & 0xf;
            c.write(f.at, off, 4, base as u32 | flags);
            if b.kind == BarKind::Memory64 {
                c.write(f.at, off + 4, 4, (base >> 32) as u32);
            }
            b.base = base;
            placed += 1;
            any = true;
        }
        if any {
            let command = c.read(f.at, reg::COMMAND, 2);
            c.write(f.at, reg::COMMAND, 2, command | 0b10);
        }
    }
    placed
}
