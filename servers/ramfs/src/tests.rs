//! Host tests: the index (against our writer and GNU cpio) and RAMFS's
//! logic through the runtime's host transport.

use std::process::Command;

use runtime::rpc::host::HostChannel;
use runtime::rpc::wire::split_result;
use runtime::rpc::{CallError, MaxSize, Op, Request as _, WireError};

use crate::index::Index;
use crate::manifest;
use crate::proto::*;
use crate::server::Ramfs;

fn big(n: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sample() -> Vec<u8> {
    let mut w = cpio::Writer::new();
    w.file("bin/init", 0o755, b"ELF...");
    w.dir("etc");
    w.file("etc/motd", 0o644, b"hello\n");
    w.file("data/big", 0o644, &big(3 * 4096 + 100));
    w.file("empty", 0o644, b"");
    for i in 0..30 {
        w.file(&format!("many/f{i:02}"), 0o644, &[i as u8]);
    }
    w.finish()
}

fn path(p: &str) -> PathBuf {
    PathBuf::try_from(p).unwrap()
}

#[test]
fn index_makes_missing_parents_and_sorts() {
    let img = sample();
    let a = cpio::Archive::new(&img).unwrap();
    let ix = Index::build(&a);
    assert_eq!(ix.node(0).unwrap().path, "");
    for (p, kind) in [("bin", Kind::Dir), ("bin/init", Kind::File), ("data", Kind::Dir), ("etc/motd", Kind::File), ("empty", Kind::File)] {
        let h = ix.lookup(p).unwrap_or_else(|| panic!("{p} missing"));
        assert_eq!(ix.node(h).unwrap().kind, kind, "{p}");
    }
    let root: Vec<_> = ix.children(0).map(|n| n.name()).collect();
    assert_eq!(root, ["bin", "data", "empty", "etc", "many"]);
    assert!(ix.lookup("nope").is_none());
}

fn server() -> (HostChannel, Ramfs<'static>) {
    let img: &'static [u8] = Box::leak(sample().into_boxed_slice());
    let a = cpio::Archive::new(img).unwrap();
    (HostChannel::new(), Ramfs::new(Index::build(&a)))
}

#[test]
fn stat_load_list() {
    let (mut ch, mut r) = server();
    let info = ch.call(&mut r, &Stat { path: path("data/big") }).unwrap();
    assert_eq!((info.kind, info.size), (Kind::File, 3 * 4096 + 100));
    let want = big(3 * 4096 + 100);
    let mut got = Vec::new();
    for off in (0..info.size).step_by(4096) {
        let mut page = [0xeeu8; 4096];
        ch.call_page(&mut r, &Load { handle: info.handle, offset: off }, &mut page).unwrap();
        got.extend_from_slice(&page);
    }
    assert!(got[want.len()..].iter().all(|&b| b == 0), "zeros past the end");
    got.truncate(want.len());
    assert_eq!(got, want);
    // Leading '/' and the root.
    assert_eq!(ch.call(&mut r, &Stat { path: path("/etc/motd") }).unwrap().size, 6);
    assert_eq!(ch.call(&mut r, &Stat { path: path("") }).unwrap().kind, Kind::Dir);
    // An empty file has one page of zeros.
    let e = ch.call(&mut r, &Stat { path: path("empty") }).unwrap();
    let mut page = [1u8; 4096];
    ch.call_page(&mut r, &Load { handle: e.handle, offset: 0 }, &mut page).unwrap();
    assert!(page.iter().all(|&b| b == 0));
    // Listing in pages of LIST_MAX.
    let mut names = Vec::new();
    let mut start = 0;
    loop {
        let l = ch.call(&mut r, &List { path: path("many"), start }).unwrap();
        assert!(l.entries.len() <= LIST_MAX);
        names.extend(l.entries.iter().map(|e| (e.name.to_string(), e.size)));
        match l.next {
            Some(n) => start = n,
            None => break,
        }
    }
    assert_eq!(names.len(), 30);
    assert_eq!(names[7], ("f07".to_string(), 1));
}

#[test]
fn errors_are_typed() {
    let (mut ch, mut r) = server();
    fn err<T>(e: Error) -> Result<T, CallError<Error>> {
        Err(CallError::Server(e))
    }
    assert_eq!(ch.call(&mut r, &Stat { path: path("nope") }), err(Error::NotFound));
    for bad in ["..", "etc/../bin", "a//b", "./etc", "etc/"] {
        assert_eq!(ch.call(&mut r, &Stat { path: path(bad) }), err(Error::BadPath), "{bad}");
    }
    assert_eq!(ch.call(&mut r, &List { path: path("etc/motd"), start: 0 }), err(Error::NotADirectory));
    let motd = ch.call(&mut r, &Stat { path: path("etc/motd") }).unwrap();
    let etc = ch.call(&mut r, &Stat { path: path("etc") }).unwrap();
    let mut page = [0u8; 4096];
    let mut load = |handle, offset| ch.call_page(&mut r, &Load { handle, offset }, &mut page);
    assert_eq!(load(etc.handle, 0), err(Error::NotAFile));
    assert_eq!(load(9999, 0), err(Error::BadHandle));
    assert_eq!(load(motd.handle, 4096), err(Error::BadOffset));
    assert_eq!(load(motd.handle, 1), err(Error::BadOffset));
    assert_eq!(load(motd.handle, u64::MAX), err(Error::BadOffset));
}

#[test]
fn bad_frames_and_garbage_leave_it_serving() {
    let (mut ch, mut r) = server();
    let status = |x: Option<runtime::rpc::host::HostReply>| split_result(x.unwrap().result).0;
    assert_eq!(status(ch.raw_call(&mut r, 77, &[])), WireError::UnknownOperation.status());
    assert_eq!(status(ch.raw_call(&mut r, Stat::OP, &[200])), WireError::Truncated.status());
    assert_eq!(status(ch.raw_call(&mut r, Stat::OP, &[0; 300])), WireError::Oversized.status());
    assert_eq!(status(ch.raw_call(&mut r, Load::OP, &[1, 0])), WireError::NeedsPage.status());
    let garbage = big(4096);
    for &op in Request::OPS {
        // Garbage may decode as some Load; it must not succeed as a Stat or List.
        let s = status(ch.raw_call(&mut r, op, &garbage));
        assert!(s != 0 || op == Load::OP, "op {op}");
    }
    assert_eq!(ch.call(&mut r, &Stat { path: path("etc/motd") }).unwrap().size, 6);
}

#[test]
fn fuzz_requests() {
    let bytes = big(200_000);
    let mut at = 0;
    for i in 0..20_000usize {
        let len = [i % 7, i % 300, 4096][i % 3];
        let chunk = &bytes[at % (bytes.len() - 4096)..][..len];
        at += 13 + len;
        for op in 0..5 {
            let _ = Request::decode(op, chunk);
        }
    }
}

#[test]
fn bounds() {
    assert_eq!(<Load as Op>::MESSAGE, 4096);
    // A listing uses most of a message (and the protocol! check keeps it within).
    assert_eq!(<List as Op>::MESSAGE, Listing::POSTCARD_MAX_SIZE);
    assert_eq!(Listing::POSTCARD_MAX_SIZE, 1 + LIST_MAX * (2 + NAME_MAX + 1 + 10) + 1 + 5);
}

/// An archive made by GNU cpio from a real tree: directory entries, a
/// `.` entry, `./` names, files before their directories (`find -depth`),
/// and hard links (data only on the last link).
#[test]
fn reads_gnu_cpio_archives() {
    let dir = std::env::temp_dir().join(format!("ramfs-gnu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    std::fs::write(dir.join("a/b/deep"), b"deep data").unwrap();
    std::fs::write(dir.join("top"), big(5000)).unwrap();
    std::fs::hard_link(dir.join("top"), dir.join("a/link")).unwrap();
    for find_args in [&["."][..], &[".", "-depth"][..], &[".", "-type", "f"][..]] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("cd {} && find {} | cpio -o -H newc --quiet", dir.display(), find_args.join(" ")))
            .output()
            .expect("GNU cpio is needed for this test (apt-get install cpio, or run ci/setup.sh)");
        assert!(out.status.success(), "cpio failed: {}", String::from_utf8_lossy(&out.stderr));
        let a = cpio::Archive::new(&out.stdout).unwrap();
        let ix = Index::build(&a);
        let get = |p: &str| ix.node(ix.lookup(p).unwrap_or_else(|| panic!("{p} missing ({find_args:?})"))).unwrap().clone();
        assert_eq!(get("a/b/deep").data, b"deep data");
        assert_eq!(get("top").data, big(5000).as_slice());
        assert_eq!(get("a/link").data, big(5000).as_slice(), "hard link data ({find_args:?})");
        assert_eq!(get("a/b").kind, Kind::Dir);
        assert_eq!(ix.children(ix.lookup("a").unwrap()).count(), 2);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifest_round_trip() {
    let text = manifest::line("test/data.bin", b"abc") + &manifest::line("etc/motd", b"");
    let lines: Vec<_> = manifest::parse(&text).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].hash, manifest::fnv1a64(b"abc"));
    assert_eq!(lines[0].hash, 0xe71fa2190541574b, "FNV-1a 64 of \"abc\"");
    assert_eq!((lines[1].size, lines[1].path), (0, "etc/motd"));
}
