//! Host tests: enumeration over a fake bus (multifunction devices, a bridge
//! to a secondary bus, a bridge looping back, one pointing outside the
//! window), BAR sizing of every kind, and the configuration-space checks.

use std::collections::BTreeMap;

use devman::proto::{Bar, BarKind};
use runtime::rpc::host::HostChannel;
use runtime::rpc::CallError;

use crate::config::{ConfigServer, Error, Read, Watch, Write};
use crate::enumerate::{assign_bars, enumerate, MMIO_WINDOW};
use crate::{reg, ConfigSpace, Location};

/// A function's registers; BAR writes keep only the bits the BAR decodes.
#[derive(Clone)]
struct FakeFn {
    cfg: [u8; 4096],
    /// Per BAR register: which address bits it implements (0: none).
    masks: [u32; 6],
    /// Per BAR register: its read-only flag bits (0 for a high half).
    flags: [u32; 6],
}

#[derive(Default, Clone)]
struct FakeBus {
    fns: BTreeMap<(u8, u8, u8), FakeFn>,
    /// Every write, to check that decoding was off while sizing.
    log: Vec<(Location, u16, u32)>,
}

fn loc(bus: u8, device: u8, function: u8) -> Location {
    Location { segment: 0, bus, device, function }
}

impl FakeBus {
    fn add(&mut self, b: u8, d: u8, f: u8, id: (u16, u16), class: (u8, u8, u8), header: u8) -> &mut FakeFn {
        let mut cfg = [0u8; 4096];
        cfg[0..2].copy_from_slice(&id.0.to_le_bytes());
        cfg[2..4].copy_from_slice(&id.1.to_le_bytes());
        cfg[4] = 0x07; // I/O, memory, bus master on
        cfg[0x09] = class.2;
        cfg[0x0a] = class.1;
        cfg[0x0b] = class.0;
        cfg[0x0e] = header;
        self.fns.entry((b, d, f)).or_insert(FakeFn { cfg, masks: [0; 6], flags: [0; 6] })
    }
}

impl FakeFn {
    /// A BAR: `flags` are its low bits, `size` a power of two.
    fn bar(&mut self, i: usize, base: u64, size: u64, flags: u32) -> &mut Self {
        let mask = !(size - 1);
        let low = (base as u32 & mask as u32) | flags;
        self.cfg[0x10 + 4 * i..0x14 + 4 * i].copy_from_slice(&low.to_le_bytes());
        self.masks[i] = (mask as u32) & if flags & 1 == 1 { 0xffff_fffc } else { 0xffff_fff0 };
        self.flags[i] = flags;
        if flags & 0b110 == 0b100 {
            self.cfg[0x14 + 4 * i..0x18 + 4 * i].copy_from_slice(&((base >> 32) as u32).to_le_bytes());
            self.masks[i + 1] = (mask >> 32) as u32;
        }
        self
    }
}

impl ConfigSpace for FakeBus {
    fn read(&self, at: Location, offset: u16, width: u8) -> u32 {
        let Some(f) = self.fns.get(&(at.bus, at.device, at.function)) else {
            return if width == 4 { u32::MAX } else { (1 << (8 * width)) - 1 };
        };
        let mut v = 0u32;
        for i in 0..width {
            v |= u32::from(f.cfg[usize::from(offset) + usize::from(i)]) << (8 * i);
        }
        v
    }

    fn write(&mut self, at: Location, offset: u16, width: u8, value: u32) {
        self.log.push((at, offset, value));
        let Some(f) = self.fns.get_mut(&(at.bus, at.device, at.function)) else { return };
        let header = f.cfg[0x0e] & 0x7f;
        let bars = if header == 0 { 6 } else { 2 };
        let mut value = value;
        if width == 4 && (0x10..0x10 + 4 * bars).contains(&offset) {
            let i = usize::from((offset - 0x10) / 4);
            value = value & f.masks[i] | f.flags[i];
        }
        for i in 0..width {
            f.cfg[usize::from(offset) + usize::from(i)] = (value >> (8 * i)) as u8;
        }
    }
}

/// The bus of the tests: q35's host bridge and AHCI, a multifunction
/// device with two of its functions, a bridge to bus 1 with a device
/// behind it, a bridge claiming bus 0 again and one pointing outside.
fn bus() -> FakeBus {
    let mut b = FakeBus::default();
    b.add(0, 0, 0, (0x8086, 0x29c0), (6, 0, 0), 0);
    b.add(0, 2, 0, (0x8086, 0x10d3), (2, 0, 0), 0x80).bar(0, 0xfeb8_0000, 0x2_0000, 0).bar(1, 0xc000, 0x20, 1);
    b.add(0, 2, 3, (0x1b36, 0x000d), (0x0c, 0x03, 0x30), 0).bar(0, 0x8_0000_0000, 0x2_0000_0000, 0b1100);
    b.add(0, 3, 0, (0x1b36, 0x000c), (6, 4, 0), 1).cfg[0x19] = 1;
    b.add(0, 4, 0, (0x1b36, 0x000c), (6, 4, 0), 1).cfg[0x19] = 0;
    b.add(0, 5, 0, (0x1b36, 0x000c), (6, 4, 0), 1).cfg[0x19] = 0x40;
    b.add(1, 0, 0, (0x1af4, 0x1042), (1, 0, 0), 0).bar(1, 0xfe00_0000, 0x1000, 0).bar(4, 0xfd00_0000, 0x4000, 0b1100);
    // Behind the bridge at 00:05.0, outside the 00-3f window: never walked.
    b.add(0x40, 0, 0, (0x1af4, 0x1041), (2, 0, 0), 0);
    b.add(0, 0x1f, 0, (0x8086, 0x2918), (6, 1, 0), 0x80);
    b.add(0, 0x1f, 3, (0x8086, 0x2930), (0x0c, 5, 0), 0).bar(4, 0x0700, 0x40, 1);
    b.add(0, 0x1f, 2, (0x8086, 0x2922), (1, 6, 1), 0).bar(4, 0xc040, 0x20, 1).bar(5, 0xfebd_5000, 0x1000, 0);
    b
}

#[test]
fn walks_functions_bridges_and_secondary_buses() {
    let mut b = bus();
    let found = enumerate(&mut b, 0, 0, 0x3f);
    let names: Vec<String> = found.iter().map(|f| format!("{:02x}:{:02x}.{}", f.at.bus, f.at.device, f.at.function)).collect();
    assert_eq!(names, ["00:00.0", "00:02.0", "00:02.3", "00:03.0", "00:04.0", "00:05.0", "00:1f.0", "00:1f.2", "00:1f.3", "01:00.0"]);
    let behind = found.iter().find(|f| f.at.bus == 1).unwrap();
    assert_eq!(behind.parent, Some(loc(0, 3, 0)), "the bridge is its parent");
    assert_eq!(found[0].parent, None);
    assert_eq!(found[3].secondary, Some(1));
    assert!(found.iter().find(|f| f.at == loc(0, 0x1f, 2)).unwrap().is_ahci());
    assert_eq!(found.iter().filter(|f| f.is_ahci()).count(), 1);
    // Non-multifunction fn0: functions 1-7 are not probed even if they answer.
    let mut b2 = bus();
    b2.add(0, 0, 5, (0x1234, 0x5678), (2, 0, 0), 0);
    assert_eq!(enumerate(&mut b2, 0, 0, 0x3f).len(), 10);
    // A window that starts at bus 1 sees only that bus.
    assert_eq!(enumerate(&mut bus(), 0, 1, 1).len(), 1);
    // Segment numbers are carried through.
    assert!(enumerate(&mut bus(), 3, 0, 0x3f).iter().all(|f| f.at.segment == 3));
}

#[test]
fn bars_of_every_kind_are_sized_and_restored() {
    let mut b = bus();
    let before = b.clone();
    let found = enumerate(&mut b, 0, 0, 0x3f);
    let get = |l: Location| found.iter().find(|f| f.at == l).unwrap().bars.to_vec();
    assert_eq!(
        get(loc(0, 0x1f, 2)),
        [
            Bar { index: 4, kind: BarKind::Io, prefetchable: false, base: 0xc040, size: 0x20 },
            Bar { index: 5, kind: BarKind::Memory32, prefetchable: false, base: 0xfebd_5000, size: 0x1000 },
        ]
    );
    assert_eq!(
        get(loc(0, 2, 0)),
        [
            Bar { index: 0, kind: BarKind::Memory32, prefetchable: false, base: 0xfeb8_0000, size: 0x2_0000 },
            Bar { index: 1, kind: BarKind::Io, prefetchable: false, base: 0xc000, size: 0x20 },
        ]
    );
    assert_eq!(get(loc(0, 2, 3)), [Bar { index: 0, kind: BarKind::Memory64, prefetchable: true, base: 0x8_0000_0000, size: 0x2_0000_0000 }]);
    assert_eq!(
        get(loc(1, 0, 0)),
        [
            Bar { index: 1, kind: BarKind::Memory32, prefetchable: false, base: 0xfe00_0000, size: 0x1000 },
            Bar { index: 4, kind: BarKind::Memory64, prefetchable: true, base: 0xfd00_0000, size: 0x4000 },
        ]
    );
    assert!(get(loc(0, 0, 0)).is_empty());
    for (k, f) in &before.fns {
        assert!(f.cfg[..] == b.fns[k].cfg[..], "{k:?}: every register is back as it was");
    }
    // Decoding was off whenever a BAR held all ones.
    let mut command = BTreeMap::new();
    for &(at, off, v) in &b.log {
        if off == reg::COMMAND {
            command.insert(at, v);
        } else if v == u32::MAX {
            assert_eq!(command[&at] & 0b11, 0, "{at:?} decoding on while sizing");
        }
    }
    let line = found.iter().find(|f| f.is_ahci()).unwrap().to_string();
    assert_eq!(line, "00:1f.2 8086:2922 class 01.06.01 BAR4 io 0xc040+0x20 BAR5 mem32 0xfebd5000+0x1000");
}

#[test]
fn drivers_reach_only_their_own_function() {
    let own = loc(0, 0x1f, 2);
    let mut s = ConfigServer::new(own, bus());
    let mut ch = HostChannel::new();
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 0, width: 4 }), Ok(0x2922_8086));
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 0x0b, width: 1 }), Ok(1));
    assert_eq!(ch.call(&mut s, &Read { at: loc(0, 0, 0), offset: 0, width: 4 }), Err(CallError::Server(Error::NotYours)));
    assert_eq!(ch.call(&mut s, &Read { at: Location { segment: 1, ..own }, offset: 0, width: 4 }), Err(CallError::Server(Error::NotYours)));
    assert_eq!(ch.call(&mut s, &Write { at: loc(0, 2, 0), offset: 4, width: 2, value: 0 }), Err(CallError::Server(Error::NotYours)));
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 4096, width: 1 }), Err(CallError::Server(Error::BadOffset)));
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 2, width: 4 }), Err(CallError::Server(Error::BadOffset)));
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 0, width: 3 }), Err(CallError::Server(Error::BadWidth)));
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 0, width: 8 }), Err(CallError::Server(Error::BadWidth)));
    ch.call(&mut s, &Write { at: own, offset: 4, width: 2, value: 0xffff_0006 }).unwrap();
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 4, width: 4 }), Ok(0x0006), "only the low 16 bits were written");
    assert!(s.space().log.iter().all(|(at, _, _)| *at == own), "nothing else was ever written");
    let bad = ch.raw_call(&mut s, 1, &[0xff; 9]).unwrap();
    assert_ne!(runtime::rpc::wire::split_result(bad.result).0, 0, "garbage gets an error");
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 2, width: 2 }), Ok(0x2922), "and serving goes on");
    let mut public = ConfigServer::nobody(bus());
    assert_eq!(ch.call(&mut public, &Read { at: own, offset: 0, width: 4 }), Err(CallError::Server(Error::NotYours)));
}

#[test]
fn a_watch_is_never_answered_and_serving_goes_on() {
    let own = loc(0, 0x1f, 2);
    let mut s = ConfigServer::new(own, bus());
    let mut ch = HostChannel::new();
    // Held: no reply at all (the driver's call ends only when PCIDRV does).
    assert_eq!(ch.call(&mut s, &Watch {}), Err(CallError::Ipc(abi::Error::Closed)));
    assert_eq!(ch.call(&mut s, &Read { at: own, offset: 0, width: 4 }), Ok(0x2922_8086));
}

#[test]
fn unassigned_memory_bars_get_aligned_addresses_on_the_first_bus() {
    let mut b = bus();
    // As qboot leaves them: BARs at 0, memory decoding off.
    b.add(0, 6, 0, (0x1234, 0x1111), (3, 0, 0), 0).bar(0, 0, 0x100_0000, 0b1000).bar(2, 0, 0x1000, 0).bar(3, 0, 0x20, 1).cfg[4] = 0;
    b.add(0, 7, 0, (0x8086, 0x2922), (1, 6, 1), 0).bar(5, 0, 0x1000, 0).bar(0, 0, 0x4000, 0b100).cfg[4] = 0;
    b.add(1, 1, 0, (0x1af4, 0x1000), (2, 0, 0), 0).bar(0, 0, 0x1000, 0);
    let mut found = enumerate(&mut b, 0, 0, 0x3f);
    assert_eq!(assign_bars(&mut b, &mut found, 0, MMIO_WINDOW), 4);
    let again = enumerate(&mut b, 0, 0, 0x3f);
    for f in [&found, &again] {
        let get = |d: u8, i: u8| f.iter().find(|x| x.at == loc(0, d, 0)).unwrap().bars.iter().find(|x| x.index == i).copied().unwrap();
        assert_eq!(get(6, 0).base, 0xC000_0000, "the device reads back what was assigned");
        assert_eq!(get(6, 2).base, 0xC100_0000);
        assert_eq!(get(6, 3).base, 0, "I/O BARs are left alone");
        assert_eq!(get(7, 0).base, 0xC100_4000, "64-bit BAR aligned to its size");
        assert_eq!(get(7, 0).kind, BarKind::Memory64);
        assert_eq!(get(7, 5).base, 0xC100_1000);
        assert_eq!(get(7, 5).size, 0x1000);
        let ahci = f.iter().find(|x| x.at == loc(0, 0x1f, 2)).unwrap();
        assert_eq!(ahci.bars[1].base, 0xfebd_5000, "assigned BARs stay");
    }
    assert_eq!(b.read(loc(0, 7, 0), reg::COMMAND, 2) & 0b10, 0b10, "memory decoding on");
    let behind = again.iter().find(|x| x.at == loc(1, 1, 0)).unwrap();
    assert_eq!(behind.bars[0].base, 0, "behind a bridge: not touched");
    // Placed BARs never overlap each other or those already there.
    let mut all: Vec<(u64, u64)> = again.iter().flat_map(|f| f.bars.iter()).filter(|b| b.base >= MMIO_WINDOW.0).map(|b| (b.base, b.base + b.size)).collect();
    all.sort();
    assert!(all.windows(2).all(|w| w[0].1 <= w[1].0), "{all:x?}");
    // A window too small places nothing.
    let mut b2 = bus();
    b2.add(0, 6, 0, (0x1234, 0x1111), (3, 0, 0), 0).bar(0, 0, 0x100_0000, 0);
    let mut f2 = enumerate(&mut b2, 0, 0, 0x3f);
    assert_eq!(assign_bars(&mut b2, &mut f2, 0, (0xC000_0000, 0xC080_0000)), 0);
}
