//! The argument types against the README's syscall table, and decoding
//! that never panics.

use super::*;
use crate::flags::{ChannelRights, ProcessRights};

/// The README's syscall table: `(number, name, arguments, results)`, each
/// argument and result by the first word of its comma-separated item
/// (parenthesised remarks are skipped; `—` or a remark alone is none).
fn readme_table() -> Vec<(u64, String, Vec<String>, Vec<String>)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("| # | name | token (right) | arguments | results |"));
    assert!(lines.next().is_some(), "README has no syscall table");
    lines
        .skip(1) // the |---| line
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            assert!(cells.len() >= 5, "short row: {l}");
            (cells[0].parse().unwrap_or_else(|_| panic!("bad number in {l}")), cells[1].to_string(), names(cells[3]), names(cells[4]))
        })
        .collect()
}

/// First words of the top-level comma-separated items of a table cell.
fn names(cell: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0i32;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => items.push(String::new()),
            _ if depth == 0 => items.last_mut().unwrap().push(c),
            _ => {}
        }
    }
    items
        .iter()
        .filter_map(|i| i.split_whitespace().next())
        .map(|w| w.trim_matches('`').to_string())
        .filter(|w| w != "—")
        .collect()
}

fn field_names(f: &[Field]) -> Vec<String> {
    f.iter().map(|f| f.name.to_string()).collect()
}

#[test]
fn the_readme_syscall_table_matches_the_types() {
    let table = readme_table();
    let listed: Vec<u64> = table.iter().map(|r| r.0).collect();
    let all: Vec<u64> = Syscall::ALL.iter().map(|s| *s as u64).collect();
    assert_eq!(listed, all, "README lists other syscalls (or another order) than abi::Syscall");
    for (nr, name, args, results) in &table {
        let s = Syscall::from_raw(*nr).unwrap();
        assert_eq!(name, s.name(), "syscall {nr}");
        let shape = shape(s);
        assert_eq!(args, &field_names(shape.args), "arguments of {name} ({nr})");
        assert_eq!(results, &field_names(shape.results), "results of {name} ({nr})");
    }
}

#[test]
fn the_cell_parser_takes_first_words_outside_remarks() {
    assert_eq!(names("tag, size (≤ 4096, or less), buf, timeout ns"), ["tag", "size", "buf", "timeout"]);
    assert_eq!(names("—"), Vec::<String>::new());
    assert_eq!(names("(does not return)"), Vec::<String>::new());
    assert_eq!(names("— (dropping the last hold)"), Vec::<String>::new());
}

#[test]
fn arguments_round_trip_through_registers() {
    let s = SendArgs { tag: 7, size: 64, buf: 0x4000, timeout: crate::FOREVER, flags: SendFlags::READ_ONLY };
    assert_eq!(s.to_regs(), [7, 64, 0x4000, u64::MAX, 1]);
    assert_eq!(SendArgs::from_regs(&s.to_regs()), Ok(s));
    let r = ReplyArgs { result: 1, buf: 2, reply_len: 3, cap: 4, rights: ChannelRights::SEND.into() };
    assert_eq!(r.to_regs(), [1, 2, 3, 4, 2]);
    assert_eq!(ReplyArgs::from_regs(&r.to_regs()), Ok(r));
    let m = MapAnonArgs { addr: 0x1000, len: 0x2000, flags: MapFlags::READ | MapFlags::WRITE };
    assert_eq!(m.to_regs(), [0x1000, 0x2000, 3, 0, 0]);
    assert_eq!(MapAnonArgs::from_regs(&m.to_regs()), Ok(m));
    let g = GrantArgs { cap: 9, rights: (ProcessRights::MAP | ProcessRights::KILL).into() };
    assert_eq!(GrantArgs::from_regs(&g.to_regs()), Ok(g));
    let c = CapInfo { kind: 1, rights: 2, id: 3, flavor: 4 };
    assert_eq!(c.to_regs(), [1, 2, 3, 4]);
    assert_eq!(CapInfo::from_regs(&c.to_regs()), Ok(c));
    assert_eq!(NoArgs::from_regs(&[1, 2, 3, 4, 5]), Ok(NoArgs {}));
}

#[test]
fn unknown_flag_bits_are_refused_and_masks_only_truncate() {
    assert_eq!(SendArgs::from_regs(&[0, 0, 0, 0, 2]), Err(Error::InvalidArgument));
    assert_eq!(SendArgs::from_regs(&[0, 0, 0, 0, 1 << 63]), Err(Error::InvalidArgument));
    assert_eq!(MapAnonArgs::from_regs(&[0, 0, 8, 0, 0]), Err(Error::InvalidArgument));
    assert_eq!(MapPhysArgs::from_regs(&[0, 0, 0, 1 << 40, 0]), Err(Error::InvalidArgument));
    // WRITE|EXEC decodes: W^X is the kernel's refusal (`WriteExecute`).
    assert!(MapAnonArgs::from_regs(&[0, 0, 6, 0, 0]).is_ok());
    assert_eq!(DeriveArgs::from_regs(&[u64::MAX, 0, 0, 0, 0]).unwrap().rights, RightsMask(u32::MAX));
}

#[test]
fn decoding_never_panics_on_any_register_values() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mostly small values, where the flags live, and some of any size.
        if x.is_multiple_of(3) { x } else { x % 16 }
    };
    for _ in 0..20_000 {
        let r = [next(), next(), next(), next(), next()];
        // Whatever decodes encodes back to the same registers.
        if let Ok(v) = SendArgs::from_regs(&r) {
            assert_eq!(v.to_regs(), r);
        }
        if let Ok(v) = MapAnonArgs::from_regs(&r) {
            assert_eq!(v.to_regs()[..3], r[..3]);
        }
        if let Ok(v) = MapPhysArgs::from_regs(&r) {
            assert_eq!(v.to_regs()[..4], r[..4]);
        }
        let _ = (ReplyArgs::from_regs(&r), SendCapArgs::from_regs(&r), PhysDeriveArgs::from_regs(&r));
        let _ = (ReplyRecvArgs::from_regs(&r), ThreadCreateArgs::from_regs(&r), DebugIpcArgs::from_regs(&r));
    }
}

#[test]
fn every_syscall_has_a_shape_that_fits_its_registers() {
    for s in Syscall::ALL {
        let sh = shape(*s);
        assert!(sh.args.len() <= 5 && sh.results.len() <= 4, "{s:?}");
        assert_eq!(sh.returns, !matches!(s, Syscall::Exit | Syscall::ThreadExit | Syscall::PowerOff));
    }
}

#[test]
fn argument_indices_come_from_the_table() {
    assert_eq!(const { arg_index(Syscall::Send, "size") }, 1);
    assert_eq!(const { arg_index(Syscall::Send, "flags") }, 4);
    assert_eq!(const { arg_index(Syscall::MapPhys, "flags") }, 3);
    assert_eq!(const { arg_index(Syscall::ReplyRecv, "window") }, 3);
    let r = std::panic::catch_unwind(|| arg_index(Syscall::Send, "nope"));
    assert!(r.is_err());
}

#[test]
fn message_words_carry_exactly_their_bytes() {
    let bytes: [u8; 64] = core::array::from_fn(|i| i as u8 + 1);
    let w = words_of(&bytes);
    assert_eq!(bytes_of(&w), bytes);
    assert_eq!(w[0], u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]));
    // A short message: the rest of the words zero, whatever was there.
    let junk = [u64::MAX; MSG_WORDS];
    for len in 0..=REG_MESSAGE as u64 {
        let b = bytes_of(&masked(&junk, len));
        assert!(b[..len as usize].iter().all(|&x| x == 0xff), "{len}: bytes kept");
        assert!(b[len as usize..].iter().all(|&x| x == 0), "{len}: bytes past the length");
    }
    assert_eq!(bytes_of(&words_of(&bytes[..13]))[..13], bytes[..13]);
    assert!(bytes_of(&words_of(&bytes[..13]))[13..].iter().all(|&x| x == 0));
}

#[test]
fn window_len_packs_window_length_and_poll() {
    let w = WindowLen { window: 0x7000_0000, len: 64, poll: true };
    assert_eq!(w.to_reg(), 0x7000_0000 | 64 | POLL);
    assert_eq!(WindowLen::from_reg(w.to_reg()), Ok(w));
    assert_eq!(WindowLen::from_reg(0x7000_0000 | 13), Ok(WindowLen { window: 0x7000_0000, len: 13, poll: false }));
    assert_eq!(WindowLen::from_reg(0x7000_0000 | 65), Err(Error::InvalidArgument));
    assert_eq!(WindowLen::from_reg(0x7000_0000 | 0xfff), Err(Error::InvalidArgument));
}
