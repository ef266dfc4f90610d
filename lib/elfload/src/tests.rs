//! Host tests with hand-built ELF files, so every rule is exercised alone.
extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;
use elf::abi::PF_R;

const R: u32 = PF_R;
const RW: u32 = PF_R | PF_W;
const RX: u32 = PF_R | PF_X;

struct Ph {
    ty: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph { ty: PT_LOAD, flags, offset, vaddr, filesz, memsz }
}

/// An ELF64 header, program headers, then `body_len` bytes of body.
fn build(e_type: u16, machine: u16, entry: u64, phs: &[Ph], body_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&e_type.to_le_bytes());
    v.extend_from_slice(&machine.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    v.extend_from_slice(&entry.to_le_bytes());
    v.extend_from_slice(&64u64.to_le_bytes()); // phoff
    v.extend_from_slice(&0u64.to_le_bytes()); // shoff
    v.extend_from_slice(&0u32.to_le_bytes()); // flags
    v.extend_from_slice(&64u16.to_le_bytes()); // ehsize
    v.extend_from_slice(&56u16.to_le_bytes()); // phentsize
    v.extend_from_slice(&(phs.len() as u16).to_le_bytes());
    v.extend_from_slice(&64u16.to_le_bytes()); // shentsize
    v.extend_from_slice(&0u16.to_le_bytes()); // shnum
    v.extend_from_slice(&0u16.to_le_bytes()); // shstrndx
    for p in phs {
        v.extend_from_slice(&p.ty.to_le_bytes());
        v.extend_from_slice(&p.flags.to_le_bytes());
        v.extend_from_slice(&p.offset.to_le_bytes());
        v.extend_from_slice(&p.vaddr.to_le_bytes());
        v.extend_from_slice(&p.vaddr.to_le_bytes());
        v.extend_from_slice(&p.filesz.to_le_bytes());
        v.extend_from_slice(&p.memsz.to_le_bytes());
        v.extend_from_slice(&0x1000u64.to_le_bytes());
    }
    v.resize(v.len() + body_len, 0xcc);
    v
}

const USER: Range<u64> = 0x1000..0x0000_7fff_ffff_f000;

fn good() -> Vec<Ph> {
    vec![
        load(R, 0, 0x200000, 0x100, 0x100),
        load(RX, 0x1000, 0x201000, 0x800, 0x800),
        load(RW, 0x2000, 0x202000, 0x10, 0x3000),
    ]
}

#[test]
fn accepts_a_normal_program() {
    let bytes = build(ET_EXEC, EM_X86_64, 0x201000, &good(), 0x3000);
    let img = Image::parse(&bytes, USER).unwrap();
    assert_eq!(img.entry, 0x201000);
    let segs: Vec<_> = img.segments().cloned().collect();
    assert_eq!(segs.len(), 3);
    assert_eq!(segs[2].pages(), 0x202000..0x205000);
    assert_eq!(segs[2].file, 0x2000..0x2010);
    assert_eq!(segs[1].perms, Perms { write: false, exec: true });
}

#[test]
fn rejects_each_rule() {
    let body = 0x3000;
    let cases: Vec<(LoadError, Vec<u8>)> = vec![
        (LoadError::Malformed, b"not an elf".to_vec()),
        (LoadError::WrongMachine, build(ET_EXEC, 3, 0x201000, &good(), body)),
        (LoadError::NotStatic, build(elf::abi::ET_DYN, EM_X86_64, 0x201000, &good(), body)),
        (LoadError::NotStatic, {
            let mut p = good();
            p.push(Ph { ty: PT_INTERP, flags: R, offset: 0, vaddr: 0, filesz: 1, memsz: 1 });
            build(ET_EXEC, EM_X86_64, 0x201000, &p, body)
        }),
        (LoadError::WriteExecute, {
            let mut p = good();
            p[1].flags = PF_R | PF_W | PF_X;
            build(ET_EXEC, EM_X86_64, 0x201000, &p, body)
        }),
        (LoadError::BadSegment, {
            let mut p = good();
            p[0].filesz = 0x200; // > memsz
            build(ET_EXEC, EM_X86_64, 0x201000, &p, body)
        }),
        (LoadError::BadSegment, {
            let mut p = good();
            p[2].offset = 0x10_0000; // past the end of the file
            build(ET_EXEC, EM_X86_64, 0x201000, &p, body)
        }),
        (LoadError::OutOfRange, {
            let mut p = good();
            p[2].vaddr = 0xffff_8000_0000_0000; // kernel half
            build(ET_EXEC, EM_X86_64, 0x201000, &p, body)
        }),
        (LoadError::OutOfRange, {
            let mut p = good();
            p[0].vaddr = 0; // page zero
            build(ET_EXEC, EM_X86_64, 0x201000, &p, body)
        }),
        (LoadError::OutOfRange, {
            let mut p = good();
            p[2].memsz = u64::MAX - 0x100; // wraps
            build(ET_EXEC, EM_X86_64, 0x201000, &p, body)
        }),
        (LoadError::Overlap, {
            let mut p = good();
            p[2].vaddr = 0x201800; // shares the text page
            build(ET_EXEC, EM_X86_64, 0x201000, &p, body)
        }),
        (LoadError::BadEntry, build(ET_EXEC, EM_X86_64, 0x202000, &good(), body)),
        (LoadError::SegmentCount, build(ET_EXEC, EM_X86_64, 0x201000, &[], body)),
    ];
    for (want, bytes) in cases {
        assert_eq!(Image::parse(&bytes, USER).unwrap_err(), want);
    }
}

#[test]
fn garbage_never_panics() {
    // Flip each byte of the header and program headers of a good file.
    let bytes = build(ET_EXEC, EM_X86_64, 0x201000, &good(), 0x3000);
    for i in 0..64 + 56 * 3 {
        for v in [0u8, 0xff, 0x80] {
            let mut b = bytes.clone();
            b[i] = v;
            let _ = Image::parse(&b, USER);
        }
    }
}

#[test]
fn the_tiny_executable_passes_the_rules() {
    let img = Image::parse(&tiny_executable(0x40_0000, PF_R | PF_X), 0x1000..0x7fff_ffff_f000).unwrap();
    assert_eq!(img.entry, 0x40_0000 + 120);
    assert_eq!(img.segments().count(), 1);
    assert_eq!(Image::parse(&tiny_executable(0x40_0000, PF_R | PF_W | PF_X), 0x1000..0x7fff_ffff_f000).unwrap_err(), LoadError::WriteExecute);
}
