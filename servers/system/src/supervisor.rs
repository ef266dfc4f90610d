//! What `system` does at boot.

use abi::quota::Quota;
use runtime::process::{Exit, Spawn};
use runtime::{println, Args};

runtime::entry!(main);

/// Power-off codes: QEMU exits with `code * 2 + 1`.
const PASS: u64 = 0x10;
const FAIL: u64 = 0x11;

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
    start_servers(&archive);
    if let Some(suite) = args.value("test") {
        run_tests(&archive, suite, args);
    }
    start_shell(&archive);
    println!("system: ready");
    loop {
        let _ = runtime::time::sleep_ms(60_000);
    }
}

/// The file servers, each its own process: VFS (SYSTEM::VFS) and RAMFS,
/// which mounts the boot image as `boot:`. Until the process service and
/// the boot configuration take this over, they start here with the
/// runtime's ELF loader and every capability `system` holds.
const SERVERS: &[&str] = &["vfs", "ramfs"];

/// Priority of the servers: that of their clients (ktest runs at 16), so
/// a call switches straight to the server and back.
const SERVER_PRIORITY: u8 = 16;

fn start_servers(archive: &cpio::Archive<'static>) {
    for &name in SERVERS {
        let started = match archive.find(name) {
            None => Err("not in the RAMFS".into()),
            Some(image) => Spawn::new(name, image.data).inherit_all().priority(SERVER_PRIORITY).start().map_err(|e| alloc::format!("{e:?}")),
        };
        match started {
            Ok(_) => println!("system: started {name}"),
            Err(e) => println!("system: cannot start {name}: {e}"),
        }
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

/// The serial shell (only at a normal boot: with `test=` the console
/// belongs to the test driver). It gets every capability `system` holds,
/// COM1's ports among them, so it can drive every server, and a quota
/// with room for a few programs it starts (each with the runtime's default
/// quota, carved out of the shell's) besides itself.
fn start_shell(archive: &cpio::Archive<'static>) {
    const PRIORITY: u8 = 8;
    const QUOTA: Quota = Quota { threads: 64, pages: 6 * Quota::DEFAULT.pages, channels: 64, processes: 8, ..Quota::DEFAULT };
    let started = match archive.find("shell") {
        None => Err("not in the RAMFS".into()),
        Some(image) => {
            Spawn::new("shell", image.data).inherit_all().priority(PRIORITY).quota(QUOTA).start().map_err(|e| alloc::format!("{e:?}"))
        }
    };
    match started {
        Ok(_) => println!("system: started shell"),
        Err(e) => println!("system: cannot start shell: {e}"),
    }
}

/// Run `ktest <suite>`, report, and power off with the outcome.
fn run_tests(archive: &cpio::Archive<'static>, suite: &str, args: Args) -> ! {
    let outcome = match archive.find("ktest") {
        None => {
            println!("system: no ktest in the RAMFS");
            FAIL
        }
        Some(image) => match test_args(Spawn::new("ktest", image.data).arg(suite), args).inherit_all().priority(16).quota(abi::quota::Quota::REST).start() {
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
