//! Host tests: ACPI decoding over made-up firmware tables (good, truncated,
//! with bad checksums), and the registry through the host transport.

use std::collections::BTreeSet;

use runtime::rpc::host::HostChannel;
use runtime::rpc::{CallError, WireError};

use crate::acpi::*;
use crate::proto::*;
use crate::registry::Registry;
use vfs::fake::FakeKernel;

// ---- ACPI ----

fn fix_checksum(t: &mut [u8], at: usize, range: core::ops::Range<usize>) {
    t[at] = 0;
    let s = t[range].iter().fold(0u8, |a, &b| a.wrapping_add(b));
    t[at] = 0u8.wrapping_sub(s);
}

fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = vec![0u8; 36];
    r[..8].copy_from_slice(RSDP_SIGNATURE);
    r[9..15].copy_from_slice(b"BOCHS ");
    r[15] = 2;
    r[16..20].copy_from_slice(&rsdt.to_le_bytes());
    r[20..24].copy_from_slice(&36u32.to_le_bytes());
    r[24..32].copy_from_slice(&xsdt.to_le_bytes());
    fix_checksum(&mut r, 8, 0..20);
    fix_checksum(&mut r, 32, 0..36);
    r
}

fn sdt(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; SDT_HEADER];
    t[..4].copy_from_slice(sig);
    t[4..8].copy_from_slice(&((SDT_HEADER + body.len()) as u32).to_le_bytes());
    t[8] = 1;
    t[10..16].copy_from_slice(b"BOCHS ");
    t.extend_from_slice(body);
    let n = t.len();
    fix_checksum(&mut t, 9, 0..n);
    t
}

fn mcfg(entries: &[(u64, u16, u8, u8)]) -> Vec<u8> {
    let mut body = vec![0u8; 8];
    for &(base, seg, s, e) in entries {
        body.extend_from_slice(&base.to_le_bytes());
        body.extend_from_slice(&seg.to_le_bytes());
        body.extend_from_slice(&[s, e, 0, 0, 0, 0]);
    }
    sdt(b"MCFG", &body)
}

#[test]
fn rsdp_found_in_the_bios_area_past_a_stale_copy() {
    let mut area = vec![0u8; 0x20000];
    let good = rsdp_v2(0x7fe_1000, 0x7fe_2000);
    let mut stale = good.clone();
    stale[16] ^= 1; // checksum no longer holds
    area[0x100..0x100 + 36].copy_from_slice(&stale);
    area[0x108 + 0x10..0x108 + 0x10 + 8].copy_from_slice(RSDP_SIGNATURE); // unaligned: never looked at
    area[0x15a40..0x15a40 + 36].copy_from_slice(&good);
    let (at, r) = find_rsdp(&area, 0xE_0000).unwrap();
    assert_eq!(at, 0xf_5a40);
    assert_eq!(r, Rsdp { revision: 2, rsdt: 0x7fe_1000, xsdt: 0x7fe_2000 });
    assert_eq!(r.root(), (0x7fe_2000, true));
    assert_eq!(find_rsdp(&vec![0u8; 4096], 0), Err(AcpiError::NoRsdp));
}

#[test]
fn rsdp_checks() {
    let good = rsdp_v2(0x1000, 0);
    assert_eq!(parse_rsdp(&good).unwrap().root(), (0x1000, false), "XSDT 0: the RSDT");
    let mut v1 = good[..20].to_vec();
    v1[15] = 0;
    fix_checksum(&mut v1, 8, 0..20);
    assert_eq!(parse_rsdp(&v1), Ok(Rsdp { revision: 0, rsdt: 0x1000, xsdt: 0 }));
    let mut bad_ext = good.clone();
    bad_ext[33] = 7; // reserved byte: only the extended checksum covers it
    assert_eq!(parse_rsdp(&bad_ext), Err(AcpiError::BadChecksum));
    let mut bad = good.clone();
    bad[9] ^= 0x20;
    assert_eq!(parse_rsdp(&bad), Err(AcpiError::BadChecksum));
    assert_eq!(parse_rsdp(&good[..30]), Err(AcpiError::Truncated));
    assert_eq!(parse_rsdp(b"RSD PTX xxxxxxxxxxxxxxxxxxxx"), Err(AcpiError::BadSignature));
    let mut short_len = good.clone();
    short_len[20] = 20;
    fix_checksum(&mut short_len, 8, 0..20);
    assert_eq!(parse_rsdp(&short_len), Err(AcpiError::BadLength));
}

#[test]
fn root_tables_and_mcfg() {
    let mut xbody = Vec::new();
    for a in [0x7fe_3000u64, 0x1_0000_0000] {
        xbody.extend_from_slice(&a.to_le_bytes());
    }
    let x = sdt(b"XSDT", &xbody);
    assert_eq!(root_entries(&x, true).unwrap().as_slice(), &[0x7fe_3000, 0x1_0000_0000]);
    let r = sdt(b"RSDT", &[0x00, 0x30, 0xfe, 0x07, 0x00, 0x40, 0xfe, 0x07]);
    assert_eq!(root_entries(&r, false).unwrap().as_slice(), &[0x7fe_3000, 0x7fe_4000]);
    assert_eq!(root_entries(&r, true), Err(AcpiError::BadSignature), "an RSDT is not an XSDT");
    let mut bad = x.clone();
    bad[40] ^= 1;
    assert_eq!(root_entries(&bad, true), Err(AcpiError::BadChecksum));
    assert_eq!(root_entries(&x[..x.len() - 1], true), Err(AcpiError::Truncated));

    // q35: one window at 0xB000_0000 for buses 0-255.
    let m = mcfg(&[(0xB000_0000, 0, 0, 255)]);
    let e = parse_mcfg(&m).unwrap();
    assert_eq!(e.as_slice(), &[Ecam { base: 0xB000_0000, segment: 0, start_bus: 0, end_bus: 255 }]);
    assert_eq!(e[0].window(), (0xB000_0000, 256 << 20));
    // Base is bus 0's even when the window starts later.
    let m2 = mcfg(&[(0xE000_0000, 0, 0, 63), (0xC000_0000, 1, 0x10, 0x1f)]);
    let e2 = parse_mcfg(&m2).unwrap();
    assert_eq!(e2[1].window(), (0xC100_0000, 16 << 20));
    assert_eq!(e2[0].window(), (0xE000_0000, 64 << 20));
    let mut bad = m.clone();
    bad[44] ^= 0x10;
    assert_eq!(parse_mcfg(&bad), Err(AcpiError::BadChecksum));
    assert_eq!(parse_mcfg(&mcfg(&[(0xB000_0000, 0, 9, 8)])), Err(AcpiError::BadLength), "end before start");
    assert_eq!(parse_mcfg(&mcfg(&[(0xB000_1000, 0, 0, 8)])), Err(AcpiError::BadLength), "unaligned base");
    assert_eq!(parse_mcfg(&sdt(b"APIC", &[0; 8])), Err(AcpiError::BadSignature));
    assert_eq!(parse_mcfg(&sdt(b"MCFG", &[0; 4])), Err(AcpiError::Truncated));
    assert_eq!(parse_mcfg(&mcfg(&[])).unwrap().len(), 0);
    assert_eq!(sdt_header(&[0; 10]), Err(AcpiError::Truncated));
    let mut tiny = sdt(b"MCFG", &[0; 8]);
    tiny[4] = 8;
    assert_eq!(sdt_header(&tiny), Err(AcpiError::BadLength));
}

// ---- registry ----

const DRIVER: abi::ChannelRights = abi::ChannelRights::SEND.union(abi::ChannelRights::DELEGATE);

fn pci(bus: u8, dev: u8, f: u8, class: (u8, u8, u8), id: (u16, u16)) -> Device {
    Device {
        class: class.0,
        subclass: class.1,
        prog_if: class.2,
        vendor: id.0,
        device: id.1,
        identity: Identity::Pci(Location { segment: 0, bus, device: dev, function: f }),
        parent: None,
        bars: heapless::Vec::new(),
    }
}

fn ahci() -> Device {
    let mut d = pci(0, 0x1f, 2, (1, 6, 1), (0x8086, 0x2922));
    d.bars.push(Bar { index: 5, kind: BarKind::Memory32, prefetchable: false, base: 0xfebd_5000, size: 4096 }).unwrap();
    d.bars.push(Bar { index: 4, kind: BarKind::Io, prefetchable: false, base: 0xc040, size: 32 }).unwrap();
    d
}

/// A fake kernel where the channels the tests use (ids below 16) are
/// published under the PCI provider: registrars.
fn registrars() -> FakeKernel {
    let mut k = FakeKernel::default();
    for id in 0..16 {
        k.publish(&alloc::format!("PCI::T{id}"), id);
    }
    k
}

#[test]
fn only_registrars_register() {
    let mut r = Registry::new(registrars());
    let mut ch = HostChannel::new();
    let refused = Err(CallError::Server(Error::NotAuthorized));
    // Not published at all; published under a provider that is not a registrar's.
    let stranger = r.kernel_mut().channel_cap(50, 99, DRIVER);
    assert_eq!(register(&mut ch, &mut r, ahci(), stranger), refused);
    r.kernel_mut().publish("KTNAME::x", 99);
    let stranger = r.kernel_mut().channel_cap(51, 99, DRIVER);
    assert_eq!(register(&mut ch, &mut r, ahci(), stranger), refused);
    assert!(r.kernel().dropped.contains(&50) && r.kernel().dropped.contains(&51), "a refused capability kept");
    assert!(query(&mut ch, &mut r, Filter::All).is_empty());
    // The disk driver's provider and PCIDRV's.
    r.kernel_mut().publish("AHCI::DISK0", 98);
    let disk = r.kernel_mut().channel_cap(52, 98, DRIVER);
    register(&mut ch, &mut r, ahci(), disk).unwrap();
    assert!(crate::may_register(&crate::pcidrv_name(1, 0x80)));
    assert_eq!(crate::pcidrv_name(1, 0x80).as_str(), "PCI::0001-80");
    for no in ["PCIX::a", "AHC::a", "ahci::a", "SYSTEM::VFS", "PCI", ""] {
        assert!(!crate::may_register(no), "{no}");
    }
}

/// Register `d`; the id of its entry.
fn register(ch: &mut HostChannel, r: &mut Registry<FakeKernel>, d: Device, cap: u64) -> Result<u32, CallError<Error>> {
    let identity = d.identity;
    ch.call_cap(r, &Register { device: d }, cap)?;
    Ok(query(ch, r, Filter::All).iter().find(|e| e.device.identity == identity).unwrap().id)
}

fn query(ch: &mut HostChannel, r: &mut Registry<FakeKernel>, filter: Filter) -> Vec<Entry> {
    let mut all = Vec::new();
    loop {
        let m = ch.call(r, &Query { filter, skip: all.len() as u16 }).unwrap();
        let n = m.entries.len();
        all.extend(m.entries);
        if n == 0 || all.len() >= m.total as usize {
            return all;
        }
    }
}

#[test]
fn register_query_and_driver() {
    let mut r = Registry::new(registrars());
    let mut ch = HostChannel::new();
    let a = r.kernel_mut().channel_cap(10, 1, DRIVER);
    let host = register(&mut ch, &mut r, pci(0, 0, 0, (6, 0, 0), (0x8086, 0x29c0)), a).unwrap();
    let b = r.kernel_mut().channel_cap(11, 1, DRIVER);
    let sata = register(&mut ch, &mut r, ahci(), b).unwrap();
    assert_ne!(host, sata);
    assert_eq!(r.kernel().dropped, [11], "a second token for the same channel is not kept");
    let c = r.kernel_mut().channel_cap(12, 1, DRIVER);
    let mut bridged = pci(1, 0, 0, (2, 0, 0), (0x1af4, 0x1000));
    bridged.parent = Some(Location { segment: 0, bus: 0, device: 2, function: 0 });
    register(&mut ch, &mut r, bridged, c).unwrap();

    assert_eq!(query(&mut ch, &mut r, Filter::All).len(), 3);
    let found = query(&mut ch, &mut r, Filter::ByClass { class: 1, subclass: Some(6), prog_if: Some(1) });
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, sata);
    assert_eq!(found[0].device.bar(5).unwrap().size, 4096);
    assert!(query(&mut ch, &mut r, Filter::ByClass { class: 1, subclass: Some(6), prog_if: Some(0) }).is_empty());
    assert_eq!(query(&mut ch, &mut r, Filter::ByClass { class: 1, subclass: None, prog_if: None }).len(), 1);
    assert_eq!(query(&mut ch, &mut r, Filter::ById { vendor: 0x8086, device: 0x29c0 })[0].id, host);
    assert_eq!(query(&mut ch, &mut r, Filter::ChildrenOf { segment: 0, bus: 1 }).len(), 1);
    assert_eq!(query(&mut ch, &mut r, Filter::ChildrenOf { segment: 0, bus: 0 }).len(), 2);
    assert!(query(&mut ch, &mut r, Filter::ChildrenOf { segment: 1, bus: 0 }).is_empty());

    let (_, g) = ch.call_cap(&mut r, &Driver { id: sata }, 0).unwrap();
    assert_eq!(g.unwrap().token, 10, "the driver's channel, shared by its entries");
    assert_eq!(g.unwrap().rights, abi::RightsMask::from(abi::ChannelRights::SEND), "clients get SEND only");
    assert_eq!(ch.call_cap(&mut r, &Driver { id: 999 }, 0).map(|_| ()), Err(CallError::Server(Error::NotFound)));
}

#[test]
fn paging_covers_every_entry_once() {
    let mut r = Registry::new(registrars());
    let mut ch = HostChannel::new();
    for i in 0..40u8 {
        let t = r.kernel_mut().channel_cap(100 + u64::from(i), 7, DRIVER);
        register(&mut ch, &mut r, pci(2, i % 32, i / 32, (2, 0, 0), (0x1af4, u16::from(i))), t).unwrap();
    }
    let m = ch.call(&mut r, &Query { filter: Filter::All, skip: 0 }).unwrap();
    assert_eq!((m.total, m.entries.len()), (40, MAX_RESULTS));
    let all = query(&mut ch, &mut r, Filter::All);
    let ids: BTreeSet<u16> = all.iter().map(|e| e.device.device).collect();
    assert_eq!(ids.len(), 40);
    assert!(ch.call(&mut r, &Query { filter: Filter::All, skip: 40 }).unwrap().entries.is_empty());
}

#[test]
fn refusals() {
    let mut r = Registry::new(registrars());
    let mut ch = HostChannel::new();
    assert_eq!(register(&mut ch, &mut r, ahci(), 0), Err(CallError::Server(Error::NoCapability)));
    let weak = r.kernel_mut().channel_cap(5, 1, abi::ChannelRights::SEND);
    assert_eq!(register(&mut ch, &mut r, ahci(), weak), Err(CallError::Server(Error::NoCapability)));
    assert!(r.kernel().dropped.contains(&5), "a refused capability is not kept");
    let a = r.kernel_mut().channel_cap(6, 1, DRIVER);
    let id = register(&mut ch, &mut r, ahci(), a).unwrap();
    let other = r.kernel_mut().channel_cap(7, 2, DRIVER);
    assert_eq!(register(&mut ch, &mut r, ahci(), other), Err(CallError::Server(Error::AlreadyRegistered)));
    let ahci_id = ahci().identity;
    let other = r.kernel_mut().channel_cap(8, 2, DRIVER);
    assert_eq!(ch.call_cap(&mut r, &Unregister { identity: ahci_id }, other).map(|_| ()), Err(CallError::Server(Error::NotOwner)));
    let mine = r.kernel_mut().channel_cap(9, 1, DRIVER);
    let nobody = Identity::Port { controller: Location { segment: 0, bus: 0, device: 0x1f, function: 2 }, port: 1 };
    assert_eq!(ch.call_cap(&mut r, &Unregister { identity: nobody }, mine).map(|_| ()), Err(CallError::Server(Error::NotFound)));
    let mine = r.kernel_mut().channel_cap(10, 1, DRIVER);
    ch.call_cap(&mut r, &Unregister { identity: ahci_id }, mine).unwrap();
    assert_eq!(ch.call_cap(&mut r, &Driver { id }, 0).map(|_| ()), Err(CallError::Server(Error::NotFound)), "the entry is gone");
    assert!(r.kernel().dropped.contains(&6), "the last entry's token goes with it");
    assert!(r.is_empty());
    // Table full.
    for i in 0..MAX_DEVICES as u16 {
        let t = r.kernel_mut().channel_cap(1000 + u64::from(i), 3, DRIVER);
        register(&mut ch, &mut r, pci((i >> 8) as u8, (i % 32) as u8, ((i >> 5) % 8) as u8, (2, 0, 0), (1, i)), t).unwrap();
    }
    let t = r.kernel_mut().channel_cap(5000, 3, DRIVER);
    assert_eq!(register(&mut ch, &mut r, pci(9, 0, 0, (2, 0, 0), (1, 1)), t), Err(CallError::Server(Error::TableFull)));
    // Garbage and unknown operations: error replies, serving goes on.
    let bad = ch.raw_call(&mut r, 3, &[0xff; 40]).unwrap();
    assert_eq!(runtime::rpc::wire::split_result(bad.result).0, WireError::Malformed.status());
    let unknown = ch.raw_call(&mut r, 77, &[]).unwrap();
    assert_eq!(runtime::rpc::wire::split_result(unknown.result).0, WireError::UnknownOperation.status());
    assert_eq!(query(&mut ch, &mut r, Filter::All).len(), MAX_DEVICES);
}

#[test]
fn a_dead_drivers_entries_go_and_its_successor_registers_again() {
    let mut r = Registry::new(registrars());
    let mut ch = HostChannel::new();
    let a = r.kernel_mut().channel_cap(20, 1, DRIVER);
    register(&mut ch, &mut r, ahci(), a).unwrap();
    let a2 = r.kernel_mut().channel_cap(21, 1, DRIVER);
    register(&mut ch, &mut r, pci(0, 0, 0, (6, 0, 0), (0x8086, 0x29c0)), a2).unwrap();
    let b = r.kernel_mut().channel_cap(30, 2, DRIVER);
    register(&mut ch, &mut r, pci(0, 1, 0, (3, 0, 0), (0x1234, 0x1111)), b).unwrap();
    r.kernel_mut().live.remove(&1);
    let left = query(&mut ch, &mut r, Filter::All);
    assert_eq!(left.len(), 1, "only the live driver's entry is left");
    assert_eq!(left[0].device.vendor, 0x1234);
    assert!(r.kernel().dropped.contains(&20), "the dead driver's token is dropped");
    let again = r.kernel_mut().channel_cap(40, 3, DRIVER);
    register(&mut ch, &mut r, ahci(), again).expect("the restarted driver registers the same device");
    assert_eq!(query(&mut ch, &mut r, Filter::All).len(), 2);
}

#[test]
fn locations_read_back_what_display_writes() {
    use std::string::ToString;
    let at = Location { segment: 0x12, bus: 0xab, device: 0x1f, function: 7 };
    assert_eq!(at.to_string(), "0012:ab:1f.7");
    assert_eq!("0012:ab:1f.7".parse::<Location>(), Ok(at));
    for bad in ["", "00:1f.2", "0000:00:1f", "0000:00:20.0", "0000:00:1f.8", "000:00:1f.2", "0000:0g:1f.2", "0000:00:1f.2x", "+000:00:1f.2"] {
        assert_eq!(bad.parse::<Location>(), Err(()), "{bad:?}");
    }
}
