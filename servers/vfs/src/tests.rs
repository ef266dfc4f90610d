//! Host tests of the path rules and of VFS's logic through the runtime's
//! host transport.


use runtime::rpc::host::HostChannel;
use runtime::rpc::{CallError, Op, Request as _, WireError};

use crate::path::{check_rest, split, PathError};
use crate::proto::*;
use crate::fake::FakeKernel;
use crate::server::Vfs;
use crate::mount_name;

const DRIVER: abi::ChannelRights = abi::ChannelRights::SEND.union(abi::ChannelRights::DELEGATE);

fn prefix(s: &str) -> Prefix {
    Prefix::try_from(s).unwrap()
}

fn find(ch: &mut HostChannel, v: &mut Vfs<FakeKernel>, path: &str) -> Result<(Found, u64), CallError<Error>> {
    let (found, grant) = ch.call_cap(v, &Find { path: PathBuf::try_from(path).unwrap() }, 0)?;
    let g = grant.expect("a Find reply carries a capability");
    assert_eq!(g.rights, abi::RightsMask::from(abi::ChannelRights::SEND), "clients get SEND only");
    Ok((found, g.token))
}

#[test]
fn path_rules() {
    assert_eq!(split("boot:bin/system"), Ok(("boot", "bin/system")));
    assert_eq!(split("boot:/bin/system"), Ok(("boot", "bin/system")));
    assert_eq!(split("boot:"), Ok(("boot", "")));
    assert_eq!(split("boot:/"), Ok(("boot", "")));
    assert_eq!(split(""), Err(PathError::Empty));
    assert_eq!(split("bin/system"), Err(PathError::NoPrefix));
    assert_eq!(split(":x"), Err(PathError::BadPrefix));
    assert_eq!(split("Boot:x"), Err(PathError::BadPrefix));
    assert_eq!(split("a/b:x"), Err(PathError::BadPrefix));
    assert_eq!(split("sixteen_chars_xx:x"), Err(PathError::BadPrefix));
    assert_eq!(split("boot:a//b"), Err(PathError::EmptyComponent));
    assert_eq!(split("boot:a/"), Err(PathError::EmptyComponent));
    assert_eq!(split("boot://"), Err(PathError::EmptyComponent));
    assert_eq!(split("boot:../etc"), Err(PathError::DotComponent));
    assert_eq!(split("boot:a/./b"), Err(PathError::DotComponent));
    assert_eq!(split("boot:a/.."), Err(PathError::DotComponent));
    assert_eq!(split("boot:a\0b"), Err(PathError::BadChar));
    assert_eq!(split("boot:a\nb"), Err(PathError::BadChar));
    let long = format!("boot:{}", "a".repeat(251));
    assert_eq!(split(&long), Err(PathError::TooLong));
    assert!(split(&long[..255]).is_ok());
    assert_eq!(check_rest("..."), Ok("..."), "only . and .. are special");
}

#[test]
fn register_find_unregister() {
    let mut k = FakeKernel::default();
    let drv = k.mount_cap(10, 1000, DRIVER | abi::ChannelRights::RECEIVE, "boot");
    let (mut ch, mut v) = (HostChannel::new(), Vfs::new(k));
    ch.call_cap(&mut v, &Register { prefix: prefix("boot") }, drv).unwrap();
    let (found, token) = find(&mut ch, &mut v, "boot:/etc/motd").unwrap();
    assert_eq!(found.path, "etc/motd");
    assert_eq!(token, drv, "the reply delegates the driver's channel");
    assert_eq!(ch.call(&mut v, &Mounts).unwrap().as_slice(), &[prefix("boot")]);
    // Twice: refused.
    let again = v_kernel(&mut v).channel_cap(13, 1000, DRIVER);
    assert_eq!(ch.call_cap(&mut v, &Register { prefix: prefix("boot") }, again).map(|r| r.0), Err(CallError::Server(Error::AlreadyMounted)));
    // Another channel, not published as boot::mount: no authority.
    let drv2 = v_kernel(&mut v).channel_cap(11, 1001, DRIVER);
    assert_eq!(ch.call_cap(&mut v, &Register { prefix: prefix("boot") }, drv2).map(|r| r.0), Err(CallError::Server(Error::NotAuthorized)));
    // Unregister needs the same channel.
    assert_eq!(ch.call_cap(&mut v, &Unregister { prefix: prefix("boot") }, drv2).map(|r| r.0), Err(CallError::Server(Error::NotOwner)));
    let proof = v_kernel(&mut v).channel_cap(12, 1000, DRIVER);
    ch.call_cap(&mut v, &Unregister { prefix: prefix("boot") }, proof).unwrap();
    assert_eq!(find(&mut ch, &mut v, "boot:x").map(|r| r.0), Err(CallError::Server(Error::UnknownPrefix)));
    assert_eq!(ch.call_cap(&mut v, &Unregister { prefix: prefix("boot") }, proof).map(|r| r.0), Err(CallError::Server(Error::NotMounted)));
    // The refused registration's capability, the proofs and the unmounted
    // driver's capability were all dropped.
    let dropped = &v.kernel().dropped;
    for t in [again, drv2, proof, drv] {
        assert!(dropped.contains(&t), "{t} not dropped: {dropped:?}");
    }
}

fn v_kernel(v: &mut Vfs<FakeKernel>) -> &mut FakeKernel {
    v.kernel_mut()
}

#[test]
fn registration_needs_a_channel_that_can_be_passed_on() {
    let mut k = FakeKernel::default();
    let send_only = k.channel_cap(20, 2000, abi::ChannelRights::SEND);
    let (mut ch, mut v) = (HostChannel::new(), Vfs::new(k));
    let reg = |p: &str| Register { prefix: prefix(p) };
    assert_eq!(ch.call(&mut v, &reg("boot")), Err(CallError::Server(Error::NoCapability)));
    assert_eq!(ch.call_cap(&mut v, &reg("boot"), send_only).map(|r| r.0), Err(CallError::Server(Error::NoCapability)));
    assert_eq!(ch.call_cap(&mut v, &reg("boot"), 999).map(|r| r.0), Err(CallError::Server(Error::NoCapability)));
    let good = v_kernel(&mut v).channel_cap(21, 2001, DRIVER);
    assert_eq!(ch.call_cap(&mut v, &reg("Bad!"), good).map(|r| r.0), Err(CallError::Server(Error::BadPath)));
    assert!(ch.call(&mut v, &Mounts).unwrap().is_empty());
}

#[test]
fn the_table_is_bounded() {
    let (mut ch, mut v) = (HostChannel::new(), Vfs::new(FakeKernel::default()));
    for i in 0..MAX_MOUNTS as u64 {
        let t = v_kernel(&mut v).mount_cap(100 + i, 5000 + i, DRIVER, &format!("fs{i}"));
        ch.call_cap(&mut v, &Register { prefix: prefix(&format!("fs{i}")) }, t).unwrap();
    }
    let t = v_kernel(&mut v).mount_cap(99, 4999, DRIVER, "more");
    assert_eq!(ch.call_cap(&mut v, &Register { prefix: prefix("more") }, t).map(|r| r.0), Err(CallError::Server(Error::TableFull)));
}

#[test]
fn a_dead_driver_is_dropped() {
    let mut k = FakeKernel::default();
    let drv = k.mount_cap(10, 1000, DRIVER, "boot");
    let (mut ch, mut v) = (HostChannel::new(), Vfs::new(k));
    ch.call_cap(&mut v, &Register { prefix: prefix("boot") }, drv).unwrap();
    assert!(find(&mut ch, &mut v, "boot:a").is_ok());
    v_kernel(&mut v).live.remove(&1000);
    assert_eq!(find(&mut ch, &mut v, "boot:a").map(|r| r.0), Err(CallError::Server(Error::UnknownPrefix)));
    assert!(v.kernel().dropped.contains(&drv));
    assert!(ch.call(&mut v, &Mounts).unwrap().is_empty());
    // The prefix is free again.
    let drv2 = v_kernel(&mut v).mount_cap(11, 1001, DRIVER, "boot");
    ch.call_cap(&mut v, &Register { prefix: prefix("boot") }, drv2).unwrap();
}

#[test]
fn mounting_needs_the_mount_name() {
    let mut k = FakeKernel::default();
    let stranger = k.channel_cap(30, 3000, DRIVER);
    let (mut ch, mut v) = (HostChannel::new(), Vfs::new(k));
    let reg = |p: &str| Register { prefix: prefix(p) };
    let refused = Err(CallError::Server(Error::NotAuthorized));
    // Nobody published boot::mount; then another channel did; then the
    // stranger's channel under another prefix's name.
    assert_eq!(ch.call_cap(&mut v, &reg("boot"), stranger).map(|r| r.0), refused);
    let owner = v_kernel(&mut v).mount_cap(31, 3001, DRIVER, "boot");
    assert_eq!(ch.call_cap(&mut v, &reg("boot"), stranger).map(|r| r.0), refused);
    v_kernel(&mut v).publish(&crate::mount_name("disk"), 3000);
    assert_eq!(ch.call_cap(&mut v, &reg("boot"), stranger).map(|r| r.0), refused);
    assert!(ch.call(&mut v, &Mounts).unwrap().is_empty(), "a refused mount is in the table");
    assert!(v.kernel().dropped.contains(&stranger), "a refused driver's capability kept");
    let stranger = v_kernel(&mut v).channel_cap(32, 3000, DRIVER);
    ch.call_cap(&mut v, &reg("disk"), stranger).unwrap();
    ch.call_cap(&mut v, &reg("boot"), owner).unwrap();
    assert_eq!(mount_name("boot").as_str(), "boot::mount");
}

#[test]
fn bad_paths_get_clear_errors() {
    let mut k = FakeKernel::default();
    let drv = k.mount_cap(10, 1000, DRIVER, "boot");
    let (mut ch, mut v) = (HostChannel::new(), Vfs::new(k));
    ch.call_cap(&mut v, &Register { prefix: prefix("boot") }, drv).unwrap();
    for bad in ["", "boot:..", "boot:a/../b", "noprefix", "boot:a//b", "BOOT:a"] {
        assert_eq!(find(&mut ch, &mut v, bad).map(|r| r.0), Err(CallError::Server(Error::BadPath)), "{bad:?}");
    }
    assert_eq!(find(&mut ch, &mut v, "disk:a").map(|r| r.0), Err(CallError::Server(Error::UnknownPrefix)));
    // A body that is not UTF-8 is a framing error, before any handler.
    let r = ch.raw_call(&mut v, Find::OP, &[2, 0xff, 0xfe]).unwrap();
    assert_eq!(runtime::rpc::wire::split_result(r.result).0, WireError::Malformed.status());
    // 4 KiB of garbage to every operation: errors, then VFS still works.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 31 + 7) as u8).collect();
    for &op in Request::OPS {
        let r = ch.raw_call(&mut v, op, &garbage).unwrap();
        assert_ne!(runtime::rpc::wire::split_result(r.result).0, 0);
    }
    assert_eq!(find(&mut ch, &mut v, "boot:x").unwrap().0.path, "x");
}

/// Arbitrary bytes decode into an error or a request, never a panic.
#[test]
fn fuzz_requests() {
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut buf = [0u8; 600];
    for i in 0..20_000 {
        let len = (x as usize >> 3) % if i % 2 == 0 { 20 } else { buf.len() };
        for b in &mut buf[..len] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = if i % 3 == 0 { b'a' + (x % 30) as u8 } else { x as u8 };
        }
        for op in 0..6 {
            let _ = Request::decode(op, &buf[..len]);
        }
    }
}

#[test]
fn message_bounds() {
    assert_eq!(<Find as Op>::MESSAGE, 2 + 255);
    assert_eq!(<Register as Op>::MESSAGE, 1 + 15);
    assert_eq!(<Mounts as Op>::MESSAGE, 1 + MAX_MOUNTS * 16);
}
