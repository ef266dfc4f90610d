//! What `system` does at boot: banner, RAMFS listing, the boot servers of
//! `etc/boot.conf`, then `SYSTEM::PROCESS` and, on request, the tests.

use alloc::boxed::Box;
use alloc::vec::Vec;

use abi::quota::Quota;
use runtime::process::{Exit, Spawn};
use runtime::{println, Args};
use abi::SyscallClass;
use system::config::{self, CapName, Entry, Names};
use system::policy::Policy;
use system::service::{Service, Spec, CHILD_QUOTA};

use crate::host::{SystemFiles, Machine};

runtime::entry!(main);

/// Power-off codes: QEMU exits with `code * 2 + 1`.
const PASS: u64 = 0x10;
const FAIL: u64 = 0x11;
/// How long a boot server may take to register its name.
const UP_TIMEOUT_MS: u64 = 5000;

pub type Svc = Service<Machine, SystemFiles>;

fn main(args: Args) -> i32 {
    println!("system: v{} started in user mode (CPL {})", env!("CARGO_PKG_VERSION"), runtime::privilege_level());
    let mut line = runtime::print::LineWriter::new();
    {
        use core::fmt::Write;
        let _ = write!(line, "system: arguments:");
        for a in args.iter() {
            let _ = write!(line, " {a}");
        }
        let _ = writeln!(line);
    }
    line.flush();
    let archive = match runtime::ramfs::archive() {
        Ok(a) => a,
        Err(e) => {
            println!("system: cannot read the RAMFS: {e:?}");
            return 1;
        }
    };
    println!("system: ramfs: {} entries", archive.entries().count());
    for e in archive.entries() {
        let kind = if e.is_file() { "file" } else { "dir " };
        println!("system:   {kind} {:>9} {}", e.data.len(), e.name);
    }
    crate::acpi::report();
    let mut svc = Box::new(Service::new(Machine { starter: None }, SystemFiles, Policy::DEFAULT));
    // The admin key: a channel nobody receives on, whose only use is to
    // be presented with a kill (its object is what `system` compares).
    let admin = runtime::ipc::Channel::create().map(|c| c.token()).ok();
    if let Some(key) = admin {
        svc.set_admin(key);
    }
    match archive.find(config::RAMFS_PATH).map(|f| config::parse(core::str::from_utf8(f.data).unwrap_or("\u{fffd}"))) {
        None => println!("system: no {}: no boot servers", config::RAMFS_PATH),
        Some(Err(e)) => println!("system: {e}"),
        Some(Ok(entries)) => start_boot_servers(&mut svc, &entries, args.value("test").is_some(), admin),
    }
    if let Err(e) = crate::serve::start(svc) {
        println!("system: cannot serve SYSTEM::PROCESS: {e:?}");
    }
    if let Some(suite) = args.value("test") {
        run_tests(&archive, suite, args, admin);
    }
    println!("system: ready");
    loop {
        let _ = runtime::time::sleep_ms(60_000);
    }
}

/// The capabilities an entry asks for: ours, with the rights its name
/// gives (all but `com1_rx`'s, COM1's ports read-only, and the admin key's:
/// DELEGATE only, which is all presenting it takes); `names` narrowed to
/// the entry's `names=` scope.
fn caps_for(e: &Entry, admin: Option<u64>) -> Vec<(u64, u64, u32)> {
    e.caps
        .iter()
        .filter_map(|c| {
            if *c == config::CapName::Admin {
                let copy = runtime::caps::derive(admin?, abi::RightsMask::DELEGATE).ok()?;
                return Some((c.id(), copy, abi::RightsMask::DELEGATE.bits()));
            }
            let token = runtime::init_cap(c.id())?;
            // A copy of our own, so the supervisor can drop it without
            // losing the original.
            let copy = match (c, &e.names) {
                (CapName::Class(SyscallClass::Names), Names::FindOnly) => runtime::caps::names_scope(token, ""),
                (CapName::Class(SyscallClass::Names), Names::Provider(p)) => runtime::caps::names_scope(token, p),
                _ => runtime::caps::derive(token, abi::RightsMask::ALL),
            };
            match copy {
                Ok(copy) => Some((c.id(), copy, c.rights())),
                Err(err) => {
                    println!("system: {}: no {} capability: {err:?}", e.name, c.name());
                    None
                }
            }
        })
        .collect()
}

/// Start each boot server in order; the bootstrap ones (VFS and its file
/// system) come straight from the boot module. Then wait until every named
/// service is found and say so, with the time since the machine started.
/// When the tests run (`testing`), the `console` servers (the shell) stay
/// off: the serial line is the tests'.
fn start_boot_servers(svc: &mut Svc, entries: &[Entry], testing: bool, admin: Option<u64>) {
    let entries: Vec<&Entry> = entries.iter().filter(|e| !(testing && e.console)).collect();
    let mut started: Vec<&Entry> = Vec::new();
    let start = runtime::time::uptime_ms();
    let mut missing: Vec<&Entry> = Vec::new();
    for e in entries.iter().copied() {
        // The first server loaded through VFS needs the file system up.
        if !e.bootstrap && started.iter().all(|s| s.bootstrap) {
            wait_up(&mut missing, start);
        }
        let mut argv = alloc::vec![e.name.clone()];
        argv.extend(e.args.iter().cloned());
        let spec = Spec { path: e.path.clone(), args: argv, caps: caps_for(e, admin), stack_size: e.stack, priority: e.priority, bootstrap: e.bootstrap };
        match svc.start(spec, e.restart) {
            Ok((pid, _)) => {
                println!("system: started {} (pid {pid}) from {}{}", e.name, e.path, if e.bootstrap { " (boot module)" } else { "" });
                started.push(e);
                if e.service.is_some() || e.mount.is_some() {
                    missing.push(e);
                }
            }
            Err(err) => println!("system: cannot start {}: {err:?}", e.name),
        }
    }
    wait_up(&mut missing, start);
    let names: Vec<&str> = started.iter().map(|e| e.name.as_str()).collect();
    if missing.is_empty() && started.len() == entries.len() {
        println!("system: boot servers up: {} in {} ms", names.join(" "), runtime::time::uptime_ms());
    } else {
        let m: Vec<&str> = missing.iter().map(|e| e.name.as_str()).collect();
        println!("system: boot incomplete: {} of {} started, not up: {}", started.len(), entries.len(), m.join(" "));
    }
}

/// Wait (until [`UP_TIMEOUT_MS`] after `start`) for the servers in
/// `missing` to be up; those still down stay in it.
fn wait_up(missing: &mut Vec<&Entry>, start: u64) {
    while !missing.is_empty() && runtime::time::uptime_ms() - start < UP_TIMEOUT_MS {
        missing.retain(|e| !is_up(e));
        if !missing.is_empty() {
            let _ = runtime::time::sleep_ms(1);
        }
    }
}

/// Has the server registered its name, and has VFS its mount?
fn is_up(e: &Entry) -> bool {
    let named = e.service.as_deref().is_none_or(|name| match runtime::ipc::Channel::find(name) {
        Ok(c) => runtime::caps::drop_cap(c.token()).is_ok(),
        Err(_) => false,
    });
    let mounted = e.mount.as_deref().is_none_or(|prefix| {
        let Ok(vfs) = vfs::VfsClient::connect() else { return false };
        let found = vfs.find(&alloc::format!("{prefix}:")).map(|(driver, _)| runtime::caps::drop_cap(driver.token()));
        let _ = runtime::caps::drop_cap(vfs.client().channel().token());
        found.is_ok()
    });
    named && mounted
}

/// What `SYSTEM::PROCESS` keeps back while the tests run: room for four
/// programs the tests ask it to start at once (each gets [`CHILD_QUOTA`],
/// carved out of `system`'s) and for loading them.
const RESERVE: Quota = Quota {
    threads: 4 * CHILD_QUOTA.threads + 8,
    pages: 5 * CHILD_QUOTA.pages,
    channels: 4 * CHILD_QUOTA.channels + 8,
    caps: 0,
    processes: 4 * (CHILD_QUOTA.processes + 1) + 1,
};

/// `ktest` gets everything `system` has left but [`RESERVE`].
fn ktest_quota() -> Quota {
    let Ok(q) = runtime::ipc::debug::quota_use() else { return Quota::REST };
    let left = |limit: u64, used: u64, keep: u64| if limit == abi::quota::REST { limit } else { limit.saturating_sub(used).saturating_sub(keep) };
    Quota {
        threads: left(q.limit.threads, q.used.threads, RESERVE.threads),
        pages: left(q.limit.pages, q.used.pages, RESERVE.pages),
        channels: left(q.limit.channels, q.used.channels, RESERVE.channels),
        caps: Quota::REST.caps,
        processes: left(q.limit.processes, q.used.processes, RESERVE.processes),
    }
}

/// Pass the command line's other `key=value` arguments (e.g. `fuzz_seed=`)
/// on to `ktest`, after the suite.
fn test_args<'a>(mut s: Spawn<'a>, args: Args) -> Spawn<'a> {
    for a in args.iter().skip(1).filter(|a| a.contains('=') && !a.starts_with("test=")) {
        s = s.arg(a);
    }
    s
}

/// `ktest` holds the admin key too (the `process` and `disk` suites kill
/// through `SYSTEM::PROCESS`).
fn with_admin(s: Spawn<'_>, admin: Option<u64>) -> Spawn<'_> {
    match admin {
        Some(key) => s.cap(system::protocol::ADMIN_CAP, key, abi::RightsMask::DELEGATE),
        None => s,
    }
}

/// Run `ktest <suite>`, report, and power off with the outcome.
fn run_tests(archive: &cpio::Archive<'static>, suite: &str, args: Args, admin: Option<u64>) -> ! {
    let outcome = match archive.find("ktest") {
        None => {
            println!("system: no ktest in the RAMFS");
            FAIL
        }
        Some(image) => match with_admin(test_args(Spawn::new("ktest", image.data).arg(suite), args).inherit_all(), admin).priority(16).quota(ktest_quota()).start() {
            Err(e) => {
                println!("system: cannot start ktest: {e:?}");
                FAIL
            }
            Ok(p) => {
                let exit = p.wait();
                println!("system: ktest {suite} ended: {exit:?}");
                if exit == Ok(Exit::Code(0)) {
                    PASS
                } else {
                    FAIL
                }
            }
        },
    };
    let e = runtime::power_off(outcome);
    println!("system: power-off refused: {e:?}");
    loop {
        let _ = runtime::time::sleep_ms(60_000);
    }
}
