//! In-guest tests of the serve loop and the file servers: request-reply,
//! deferred replies, delegation, a pipeline, files read through VFS and
//! RAMFS checked against hashes the image builder computed on the host,
//! the mount table, and bad input of every kind to every server.
//!
//! `system` starts VFS and RAMFS before ktest; the test protocol's
//! servers are children (`ktest child rpc-server`).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use ramfs::manifest::{self, Fnv};
use ramfs::proto as rp;
use ramfs::RamfsClient;
use runtime::ipc::{Channel, Page};
use runtime::rpc::wire::split_result;
use runtime::rpc::{CallError, Client, Op, WireError};
use vfs::proto as vp;
use vfs::VfsClient;

use crate::ensure;
use crate::harness::{channel_id, serve, serve_with, wait_until, Context, Outcome, Rng, Suite, NEXT};
use crate::rpc::{self, Add, Echo, Hold, Open, Release, Step, TestError};

pub fn run() -> i32 {
    let mut s = Suite::new("servers");
    s.case("serve loop: request-reply with typed results and errors", request_reply);
    s.case("serve loop: a held request is answered later while other clients are served", deferred);
    s.case("serve loop: a service hands a client a private channel", private_channel);
    s.case("serve loop: a pipeline through three services", pipeline);
    s.case("vfs: find delegates a send capability for the driver", vfs_find);
    s.case("vfs: register, unregister, ownership, a dead driver is dropped", vfs_mounts);
    s.case("ramfs: files read through VFS and RAMFS match the host's FNV-1a hashes", file_hashes);
    s.case("ramfs: stat and list the boot image", ramfs_list);
    s.case("bad input: the test server answers every bad frame and keeps serving", bad_input_rpc);
    s.case("bad input: VFS answers bad frames and bad paths and keeps serving", bad_input_vfs);
    s.case("bad input: RAMFS answers bad frames and bad paths and keeps serving", bad_input_ramfs);
    s.finish()
}

fn client(chan: &Channel) -> Client {
    Client::new(Channel::from_token(chan.token()))
}

fn vfs() -> Result<VfsClient, String> {
    VfsClient::connect_wait(5_000).ctx("connect to SYSTEM::VFS")
}

/// A RAMFS client through VFS, and the path inside it.
fn open(path: &str) -> Result<(RamfsClient, String), String> {
    let (chan, rest) = vfs()?.find_wait(path, 5_000).ctx("vfs find")?;
    Ok((RamfsClient::new(chan), String::from(rest.as_str())))
}

fn request_reply() -> Outcome {
    let s = serve("rpc-server", &[])?;
    let c = client(&s.chan);
    ensure!(c.call(&Add { a: 2, b: 40 }) == Ok(42), "2 + 40");
    let r = c.call(&Add { a: u32::MAX, b: 1 });
    ensure!(r == Err(CallError::Server(TestError::Overflow)), "overflow: {r:?}");
    let data = heapless::Vec::from_slice(&[1, 2, 3, 4]).unwrap();
    let r = c.call(&Echo { data }).ctx("echo")?;
    ensure!(r.as_slice() == [4, 3, 2, 1], "echo: {r:?}");
    Ok(())
}

static HELD_RESULT: AtomicU64 = AtomicU64::new(0);
static HELD_TOKEN: AtomicU64 = AtomicU64::new(0);

fn held_caller(_: u64) {
    let c = Client::new(Channel::from_token(HELD_TOKEN.load(Ordering::Acquire)));
    let r = c.call(&Hold).unwrap_or(u64::MAX);
    HELD_RESULT.store(r, Ordering::Release);
}

fn deferred() -> Outcome {
    let s = serve("rpc-server", &[])?;
    let c = client(&s.chan);
    HELD_RESULT.store(0, Ordering::Release);
    HELD_TOKEN.store(s.chan.token(), Ordering::Release);
    runtime::process::spawn_thread(held_caller, 0, 16).ctx("thread")?;
    // Wait until the server holds it (a release before would answer none).
    wait_until("the held request", || crate::harness::channel_stats_in_flight(s.chan.token()) == 1)?;
    // Other requests go on meanwhile.
    ensure!(c.call(&Add { a: 1, b: 1 }) == Ok(2), "served while one is held");
    ensure!(HELD_RESULT.load(Ordering::Acquire) == 0, "the held request was answered early");
    let n = c.call(&Release { value: 0xfeed_beef_1234 }).ctx("release")?;
    ensure!(n == 1, "released {n}");
    wait_until("the held reply", || HELD_RESULT.load(Ordering::Acquire) != 0)?;
    let v = HELD_RESULT.load(Ordering::Acquire);
    ensure!(v == 0xfeed_beef_1234, "the held caller got {v:#x}");
    ensure!(c.call(&Add { a: 3, b: 4 }) == Ok(7), "still serving");
    Ok(())
}

fn private_channel() -> Outcome {
    let s = serve("rpc-server", &[])?;
    let ((), cap) = client(&s.chan).call_get_cap(&Open).ctx("open")?;
    ensure!(cap != 0, "no capability in the reply");
    let (kind, r, id, _) = runtime::caps::inspect(cap).ctx("inspect")?;
    ensure!(kind == abi::CapKind::Channel && r == abi::ChannelRights::SEND.bits(), "got {kind:?} rights {r:#x}");
    ensure!(id != channel_id(s.chan.token()), "the private channel is the public one");
    let private = Client::new(Channel::from_token(cap));
    ensure!(private.call(&Add { a: 5, b: 6 }) == Ok(11), "call on the private channel");
    Ok(())
}

fn pipeline() -> Outcome {
    // client -> A (add1) -> B (mul3) -> C (sub5)
    let c = serve("rpc-server", &["sub5"])?;
    let b = serve_with("rpc-server", &["mul3"], &[(NEXT, c.chan.token(), abi::ChannelRights::SEND.into())])?;
    let a = serve_with("rpc-server", &["add1"], &[(NEXT, b.chan.token(), abi::ChannelRights::SEND.into())])?;
    let v = client(&a.chan).call(&Step { value: 10 }).ctx("step")?;
    ensure!(v == (10 + 1) * 3 - 5, "pipeline gave {v}");
    Ok(())
}

fn vfs_find() -> Outcome {
    let v = vfs()?;
    let _ = v.find_wait("boot:", 5_000);
    let mounts = v.mounts().ctx("mounts")?;
    ensure!(mounts.iter().any(|m| m == ramfs::PREFIX), "boot not mounted: {mounts:?}");
    let (chan, rest) = v.find("boot:/etc/motd").ctx("find")?;
    ensure!(rest == "etc/motd", "rest {rest}");
    let (kind, r, _, _) = runtime::caps::inspect(chan.token()).ctx("inspect")?;
    ensure!(kind == abi::CapKind::Channel && r == abi::ChannelRights::SEND.bits(), "got {kind:?} rights {r:#x}");
    let info = RamfsClient::new(chan).stat(&rest).ctx("stat")?;
    ensure!(info.kind == rp::Kind::File && info.size > 0, "{info:?}");
    Ok(())
}

fn vfs_mounts() -> Outcome {
    let v = vfs()?;
    let mine = Channel::create().ctx("channel")?;
    v.register("kt", &mine).ctx("register")?;
    let r = v.register("kt", &mine);
    ensure!(r == Err(CallError::Server(vp::Error::AlreadyMounted)), "twice: {r:?}");
    let (got, rest) = v.find("kt:a/b").ctx("find")?;
    ensure!(channel_id(got.token()) == channel_id(mine.token()), "find gave another channel");
    ensure!(rest == "a/b", "rest {rest}");
    let other = Channel::create().ctx("channel")?;
    let r = v.unregister("kt", &other);
    ensure!(r == Err(CallError::Server(vp::Error::NotOwner)), "foreign unregister: {r:?}");
    v.unregister("kt", &mine).ctx("unregister")?;
    let r = v.find("kt:a");
    ensure!(matches!(r, Err(CallError::Server(vp::Error::UnknownPrefix))), "after unregister: {:?}", r.map(|_| ()));
    // A driver that dies: its channel goes, VFS drops the mount.
    v.register("kt2", &other).ctx("register kt2")?;
    ensure!(v.mounts().ctx("mounts")?.iter().any(|m| m == "kt2"), "kt2 not mounted");
    other.destroy().ctx("destroy")?;
    ensure!(!v.mounts().ctx("mounts")?.iter().any(|m| m == "kt2"), "a dead driver stays mounted");
    let r = v.find("kt2:x");
    ensure!(matches!(r, Err(CallError::Server(vp::Error::UnknownPrefix))), "dead driver: {:?}", r.map(|_| ()));
    let _ = mine.destroy();
    Ok(())
}

/// Read a whole file page by page into a hash (and the first page's bytes).
fn read_hash(path: &str) -> Result<(u64, u64, Vec<u8>), String> {
    let (fs, rest) = open(path)?;
    let info = fs.stat(&rest).ctx("stat")?;
    let mut page = alloc::boxed::Box::new(Page::zeroed());
    let mut h = Fnv::default();
    let mut first = Vec::new();
    let mut off = 0;
    while off < info.size {
        fs.load(info.handle, off, &mut page).ctx("load")?;
        let n = (info.size - off).min(4096) as usize;
        h.update(&page.0[..n]);
        if off == 0 {
            first.extend_from_slice(&page.0[..n]);
        }
        off += 4096;
    }
    Ok((info.size, h.finish(), first))
}

fn file_hashes() -> Outcome {
    let (size, _, text) = read_hash(&format!("boot:{}", manifest::PATH))?;
    ensure!(size < 4096, "manifest too long");
    let text = core::str::from_utf8(&text).ctx("manifest text")?;
    let lines: Vec<_> = manifest::parse(text).collect();
    ensure!(lines.iter().any(|l| l.path == "test/data.bin" && l.size == 1 << 20), "manifest lacks the 1 MiB file: {text}");
    for l in &lines {
        let (size, hash, _) = read_hash(&format!("boot:{}", l.path))?;
        ensure!(size == l.size, "{}: size {size}, manifest {}", l.path, l.size);
        ensure!(hash == l.hash, "{}: hash {hash:016x}, manifest {:016x}", l.path, l.hash);
    }
    Ok(())
}

fn ramfs_list() -> Outcome {
    let (fs, rest) = open("boot:")?;
    ensure!(rest.is_empty(), "root path {rest}");
    let mut names = Vec::new();
    let mut start = 0;
    loop {
        let l = fs.list("", start).ctx("list")?;
        names.extend(l.entries.iter().map(|e| (String::from(e.name.as_str()), e.kind)));
        match l.next {
            Some(n) => start = n,
            None => break,
        }
    }
    for (n, k) in [("ktest", rp::Kind::File), ("vfs", rp::Kind::File), ("ramfs", rp::Kind::File), ("test", rp::Kind::Dir), ("etc", rp::Kind::Dir)] {
        ensure!(names.iter().any(|(m, j)| m == n && *j == k), "{n} ({k:?}) not in {names:?}");
    }
    let sub = fs.list("test", 0).ctx("list test")?;
    ensure!(sub.entries.iter().any(|e| e.name == "data.bin" && e.size == 1 << 20), "test/: {sub:?}");
    let r = fs.list("etc/motd", 0);
    ensure!(r == Err(CallError::Server(rp::Error::NotADirectory)), "list a file: {r:?}");
    let r = fs.stat("nope/none");
    ensure!(r == Err(CallError::Server(rp::Error::NotFound)), "missing: {r:?}");
    Ok(())
}

/// Send `bytes` as `tag` (copied: from an unaligned buffer) and return the
/// reply's status.
pub(crate) fn raw_status(chan: &Channel, tag: u64, bytes: &[u8]) -> Result<u32, String> {
    let mut buf = vec![0u8; bytes.len() + 8];
    buf[8..].copy_from_slice(bytes);
    let r = chan.call(tag, &mut buf[8..], bytes.len()).ctx("raw call")?;
    Ok(split_result(r.result).0)
}

fn expect_status(chan: &Channel, what: &str, tag: u64, bytes: &[u8], want: u32) -> Outcome {
    let got = raw_status(chan, tag, bytes)?;
    ensure!(got == want, "{what}: status {got:#x}, expected {want:#x}");
    Ok(())
}

/// 4 KiB that decodes as nothing (an over-long varint first).
fn garbage() -> Vec<u8> {
    let mut rng = Rng(0x5eed_1234_abcd);
    let mut g: Vec<u8> = (0..4096).map(|_| rng.next() as u8).collect();
    g[..8].fill(0xff);
    g
}

/// The bad frames every server must answer: unknown operation, a body
/// that does not decode, a truncated one, an oversized message, 4 KiB of
/// garbage (copied and lent) to every operation.
pub(crate) fn bad_frames<R: runtime::rpc::Request>(chan: &Channel, malformed: (u64, &[u8]), truncated: (u64, &[u8]), small_op: u64) -> Outcome {
    expect_status(chan, "unknown op", 0x7777, &[1, 2, 3], WireError::UnknownOperation.status())?;
    expect_status(chan, "malformed", malformed.0, malformed.1, WireError::Malformed.status())?;
    expect_status(chan, "truncated", truncated.0, truncated.1, WireError::Truncated.status())?;
    expect_status(chan, "empty", truncated.0, &[], WireError::Truncated.status())?;
    expect_status(chan, "oversized", small_op, &[0; 4096], WireError::Oversized.status())?;
    let g = garbage();
    for &op in R::OPS {
        let st = raw_status(chan, op, &g)?;
        ensure!(st != 0, "garbage to op {op} succeeded");
        // The same page lent (page-aligned): a page operation reads it in place.
        let mut page = alloc::boxed::Box::new(Page::zeroed());
        page.0.copy_from_slice(&g);
        let r = chan.call(op, &mut page.0, 4096).ctx("lent garbage")?;
        ensure!(split_result(r.result).0 != 0, "lent garbage to op {op} succeeded");
    }
    cap_flood::<R>(chan, &g)
}

/// Requests that bring a capability nobody expects, more of them than a
/// server's capability table holds: each must be answered, and the
/// capability dropped (a server that kept them would run out of room and
/// stop receiving messages that carry one).
const CAP_FLOOD: usize = 200;

fn cap_flood<R: runtime::rpc::Request>(chan: &Channel, garbage: &[u8]) -> Outcome {
    let spare = Channel::create().ctx("channel")?;
    for i in 0..CAP_FLOOD {
        let op = R::OPS[i % R::OPS.len()];
        // (An operation without fields decodes anything: it may succeed.)
        chan.send_cap(op, &garbage[..64], spare.token(), abi::ChannelRights::SEND).map_err(|e| format!("garbage with a capability to op {op} (call {i}): {e:?}"))?;
    }
    spare.destroy().ctx("destroy")
}

fn bad_input_rpc() -> Outcome {
    let s = serve("rpc-server", &[])?;
    bad_frames::<rpc::Request>(&s.chan, (Add::OP, &[0xff; 6]), (Echo::OP, &[10, 1, 2]), Add::OP)?;
    ensure!(client(&s.chan).call(&Add { a: 1, b: 2 }) == Ok(3), "still serving");
    Ok(())
}

fn bad_input_vfs() -> Outcome {
    let v = vfs()?;
    let chan = v.client().channel();
    // A path that is not UTF-8.
    bad_frames::<vp::Request>(chan, (vp::Find::OP, &[3, 0xff, 0xfe, 0xfd]), (vp::Find::OP, &[20, b'b']), vp::Register::OP)?;
    let four_k = "x".repeat(4096);
    for bad in ["boot:..", "boot:a/../b", "boot:./a", "noprefix", "", "boot:a//b", "BOOT:a", "boot:a\u{1}", &four_k[..255]] {
        let r = v.find(bad);
        ensure!(matches!(r, Err(CallError::Server(vp::Error::BadPath))), "{bad:?}: {:?}", r.map(|_| ()));
    }
    // 4 KiB of path: too long for the message.
    let mut body = vec![0x80, 0x20];
    body.extend_from_slice(four_k.as_bytes());
    expect_status(chan, "4 KiB path", vp::Find::OP, &body[..4096], WireError::Oversized.status())?;
    // Registration without a capability, or with a foreign token.
    let r = v.client().call(&vp::Register { prefix: vp::Prefix::try_from("nocap").unwrap() });
    ensure!(r == Err(CallError::Server(vp::Error::NoCapability)), "no capability: {r:?}");
    let (found, _) = v.find_wait("boot:etc", 5_000).ctx("still serving")?;
    let _ = runtime::caps::drop_cap(found.token());
    Ok(())
}

fn bad_input_ramfs() -> Outcome {
    let (fs, _) = open("boot:")?;
    let chan = fs.client().channel();
    bad_frames::<rp::Request>(chan, (rp::Stat::OP, &[2, 0xc3, 0x28]), (rp::Stat::OP, &[9, b'e', b't']), rp::Stat::OP)?;
    // A page operation without a page.
    expect_status(chan, "load without a page", rp::Load::OP, &[0, 0], WireError::NeedsPage.status())?;
    for bad in ["..", "etc/../etc", "./etc", "a//b", "etc/", "\u{7f}"] {
        let r = fs.stat(bad);
        ensure!(r == Err(CallError::Server(rp::Error::BadPath)), "{bad:?}: {r:?}");
    }
    let motd = fs.stat("etc/motd").ctx("stat")?;
    let mut page = alloc::boxed::Box::new(Page::zeroed());
    for (h, off, want) in [(motd.handle, 4096, rp::Error::BadOffset), (motd.handle, 7, rp::Error::BadOffset), (u32::MAX, 0, rp::Error::BadHandle)] {
        let r = fs.load(h, off, &mut page);
        ensure!(r == Err(CallError::Server(want)), "load {h} at {off}: {r:?}");
    }
    fs.load(motd.handle, 0, &mut page).ctx("still serving")?;
    ensure!(page.0[motd.size as usize..].iter().all(|&b| b == 0), "zeros past the end of etc/motd");
    Ok(())
}
