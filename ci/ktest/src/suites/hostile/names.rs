//! Hostile use of the name service: a program posing as a server. Its
//! `Names` capability covers one provider (or none, as the shell's), so it
//! must not register another provider's name (`AHCI::DISK0` while the disk
//! driver restarts, `SYSTEM::X`), nor widen its scope by `NamesScope` or
//! `CapDerive`; its own provider still works and it still finds names.
//! Nor can it mount a file system: VFS wants the driver's channel
//! published as `<prefix>::mount`, which needs a scope over `<prefix>`.

use abi::{cap_id, Error, RightsMask, SyscallClass};
use runtime::ipc::Channel;
use runtime::process::Exit;

use super::goes_on;
use crate::harness::{expect_err, expect_exit, spawn_with, Context, Outcome, Suite};

/// The provider the scoped child may register under.
const PROVIDER: &str = "KTNAME";
/// Names nobody but their servers may take.
const SQUATTED: [&str; 2] = ["AHCI::DISK0", "SYSTEM::X"];

pub fn cases(s: &mut Suite) {
    s.case("names: a program scoped to KTNAME cannot register AHCI::DISK0 or SYSTEM::X nor widen its scope (Incapable); KTNAME::ok and finding work", || {
        squatter(PROVIDER)
    });
    s.case("names: a find-only program (the shell's scope) registers nothing and cannot widen its scope; it still finds names", || squatter(""));
    s.case("vfs: a program without a scope over the prefix cannot mount a free prefix (ktsquat:) nor boot: (NotAuthorized); boot: still served", mount_squatter);
    s.case("devman: a stranger (scope KTNAME, its channel published as KTNAME::dev) cannot register a device (NotAuthorized); nothing is added", || {
        let before = devman_count()?;
        scoped_child("hostile-device")?;
        let after = devman_count()?;
        crate::ensure!(after == before, "DEVMAN had {before} entries, now {after}");
        Ok(())
    });
}

/// How many entries DEVMAN has.
fn devman_count() -> Result<u16, alloc::string::String> {
    let d = devman::DevmanClient::connect().ctx("DEVMAN")?;
    let m = d.query_page(devman::proto::Filter::All, 0).map_err(|e| alloc::format!("query: {e:?}"))?;
    let _ = runtime::caps::drop_cap(d.client().channel().token());
    Ok(m.total)
}

/// A device nobody has: what the stranger tries to register.
fn stranger_device() -> devman::proto::Device {
    use devman::proto::{Device, Identity, Location};
    let at = Location { segment: 0x4b, bus: 0x53, device: 0, function: 0 };
    Device { class: 0xff, subclass: 0, prog_if: 0, vendor: 0x4b54, device: 0x5353, identity: Identity::Pci(at), parent: None, bars: heapless::Vec::new() }
}

/// Register [`stranger_device`] with DEVMAN on a channel published as
/// `KTNAME::dev`; exit 0 only if refused with `NotAuthorized`.
fn device() -> i32 {
    let Ok(d) = devman::DevmanClient::connect() else { return 0x100 };
    let Ok(chan) = Channel::create() else { return 0x200 };
    if chan.register("KTNAME::dev").is_err() {
        return 0x400;
    }
    let r = d.register(stranger_device(), &chan);
    if r != Err(runtime::rpc::CallError::Server(devman::proto::Error::NotAuthorized)) {
        runtime::println!("hostile-device: {r:?}");
        return 1;
    }
    0
}

/// A child in `role`, scoped to [`PROVIDER`] (with the classes to run).
fn scoped_child(role: &str) -> Outcome {
    let all = runtime::class_token(SyscallClass::Names);
    let scoped = runtime::caps::names_scope(all, PROVIDER).ctx("NamesScope")?;
    let class = |c: SyscallClass| (cap_id::class(c), runtime::class_token(c), RightsMask::ALL);
    let caps = [class(SyscallClass::Thread), class(SyscallClass::DebugPrint), class(SyscallClass::ChannelCreate), (cap_id::class(SyscallClass::Names), scoped, RightsMask::ALL)];
    let child = spawn_with(role, &[], &caps, 8, false)?;
    let ended = expect_exit(&child, Exit::Code(0), role);
    let _ = runtime::caps::drop_cap(child.token());
    let _ = runtime::caps::drop_cap(scoped);
    ended
}

/// After the mount squatter: `ktsquat:` not mounted, `boot:` still served.
fn mount_squatter() -> Outcome {
    scoped_child("hostile-mount")?;
    let v = vfs::VfsClient::connect().ctx("VFS")?;
    let mounts = v.mounts().ctx("mounts")?;
    crate::ensure!(!mounts.iter().any(|m| m == "ktsquat"), "ktsquat mounted: {mounts:?}");
    let (driver, _) = v.find("boot:/etc/motd").ctx("boot: after the squatter")?;
    crate::ensure!(channel_id(driver.token()) != 0, "no driver for boot:");
    let _ = runtime::caps::drop_cap(driver.token());
    let _ = runtime::caps::drop_cap(v.client().channel().token());
    goes_on()
}

fn channel_id(token: u64) -> u64 {
    runtime::caps::inspect(token).map_or(0, |c| c.2)
}

/// Mount a channel of ours at `ktsquat:` and at `boot:`; one bit for each
/// answer that is not `NotAuthorized`.
fn mount() -> i32 {
    let Ok(v) = vfs::VfsClient::connect() else { return 0x100 };
    let Ok(chan) = Channel::create() else { return 0x200 };
    let mut wrong = 0;
    for (bit, prefix) in [(1, "ktsquat"), (2, "boot")] {
        let r = v.register(prefix, &chan);
        if r != Err(runtime::rpc::CallError::Server(vfs::proto::Error::NotAuthorized)) {
            runtime::println!("hostile-mount: {prefix}: {r:?}");
            wrong |= bit;
        }
    }
    wrong
}

/// Roles of this topic's children.
pub fn child(role: &str, args: &runtime::Args) -> Option<i32> {
    Some(match role {
        "hostile-names" => squat(args.get(3).unwrap_or("")),
        "hostile-mount" => mount(),
        "hostile-device" => device(),
        _ => return None,
    })
}

/// Start a child with only a `Names` capability scoped to `provider` (empty:
/// find only) and the classes to run; check what it reports and that none
/// of the names it tried to take exists afterwards.
fn squatter(provider: &str) -> Outcome {
    let all = runtime::class_token(SyscallClass::Names);
    // (AHCI::DISK0 is ahcidrv's when the machine has a disk: the child is
    // refused for want of authority before the name is looked at.)
    let free: alloc::vec::Vec<&str> = SQUATTED
        .into_iter()
        .filter(|name| match Channel::find(name) {
            Ok(c) => {
                let _ = runtime::caps::drop_cap(c.token());
                false
            }
            Err(_) => true,
        })
        .collect();
    let scoped = runtime::caps::names_scope(all, provider).ctx("NamesScope")?;
    let (kind, _, _, flavour) = runtime::caps::inspect(scoped).ctx("inspect")?;
    crate::ensure!(kind == abi::CapKind::Class, "a scoped Names capability is a {kind:?}");
    let want = if provider.is_empty() { abi::names_scope::FIND_ONLY } else { provider.len() as u8 };
    crate::ensure!(flavour == want, "scope flavour {flavour}, expected {want}");
    let class = |c: SyscallClass| (cap_id::class(c), runtime::class_token(c), RightsMask::ALL);
    let caps = [
        class(SyscallClass::Thread),
        class(SyscallClass::DebugPrint),
        class(SyscallClass::ChannelCreate),
        (cap_id::class(SyscallClass::Names), scoped, RightsMask::ALL),
    ];
    let args: &[&str] = if provider.is_empty() { &[] } else { &[provider] };
    let child = spawn_with("hostile-names", args, &caps, 8, false)?;
    let ended = expect_exit(&child, Exit::Code(0), "the squatter (exit bits: see `squat`)");
    let _ = runtime::caps::drop_cap(child.token());
    let _ = runtime::caps::drop_cap(scoped);
    ended?;
    for name in free {
        expect_err(Channel::find(name).map(|c| c.token()), Error::NotFound, name)?;
    }
    goes_on()
}

/// Try to take names outside `provider` (empty: every name is outside);
/// exit code: one bit for each thing that went wrong.
fn squat(provider: &str) -> i32 {
    let names = runtime::class_token(SyscallClass::Names);
    let Ok(chan) = Channel::create() else { return 0x100 };
    let mut wrong = 0;
    let refused = |r: Result<u64, Error>| r == Err(Error::Incapable);
    if !refused(chan.register(SQUATTED[0]).map(|_| 0)) {
        wrong |= 1;
    }
    if !refused(chan.register(SQUATTED[1]).map(|_| 0)) {
        wrong |= 2;
    }
    if !refused(runtime::caps::names_scope(names, "AHCI")) {
        wrong |= 4;
    }
    if !refused(runtime::caps::names_scope(names, "SYSTEM")) {
        wrong |= 8;
    }
    // A copy with every right is no wider than the original.
    match runtime::caps::derive(names, RightsMask::ALL) {
        Ok(copy) if refused(chan.register_with("AHCI::DISK1", copy).map(|_| 0)) => {}
        _ => wrong |= 16,
    }
    let own = alloc::format!("{}::ok", if provider.is_empty() { "KTNAME" } else { provider });
    let mine = chan.register(&own);
    if provider.is_empty() != refused(mine.map(|_| 0)) {
        wrong |= 32;
    }
    match Channel::find(if provider.is_empty() { "SYSTEM::VFS" } else { own.as_str() }) {
        Ok(c) => {
            let _ = runtime::caps::drop_cap(c.token());
        }
        Err(_) => wrong |= 64,
    }
    if runtime::caps::names_scope(names, "").is_err() {
        wrong |= 128;
    }
    if wrong != 0 {
        runtime::println!("hostile-names ({provider:?}): wrong bits {wrong:#x}");
    }
    wrong
}
