//! `ktest`: in-guest tests and benchmarks of the kernel.
//!
//! `system` starts `ktest <suite>` when the kernel command line says
//! `test=<suite>`. Each case prints `ok - <name>` or `FAIL - <name>:
//! <reason>`, the run ends with `N passed, N failed`, and the exit code
//! tells `system` whether to power off with success. Cases that need other
//! processes start copies of this binary as `ktest child <role> ...`
//! ([`child`]), so every interaction crosses real address spaces.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod child;
#[cfg(target_os = "none")]
mod fuzzgen;
#[cfg(target_os = "none")]
mod harness;
#[cfg(target_os = "none")]
mod rpc;
#[cfg(target_os = "none")]
mod suites;

#[cfg(target_os = "none")]
runtime::entry!(main);

#[cfg(target_os = "none")]
fn main(args: runtime::Args) -> i32 {
    match args.get(1) {
        Some("child") => child::run(args),
        Some(suite) => {
            settle();
            suites::run(suite, args)
        }
        None => {
            runtime::println!("usage: ktest <suite> | ktest child <role>");
            2
        }
    }
}

/// Let the boot finish before any suite: `system` starts `ktest` once the
/// boot servers are up, but DEVMAN then starts its PCI bus drivers through
/// `SYSTEM::PROCESS`; wait (at most 5 s) until they have registered
/// something, so no suite races them for `system`'s attention, process
/// slots or the kernel's accounting. That is enough because PCIDRV makes
/// everything it keeps before its first registration (its module docs):
/// when it made its server's window after registering, the fuzz suite's
/// "before" now and then missed that page and reported a one-frame leak.
#[cfg(target_os = "none")]
fn settle() {
    let Ok(d) = devman::DevmanClient::connect() else { return };
    let start = runtime::time::uptime_ms();
    while d.query_page(devman::proto::Filter::All, 0).is_ok_and(|m| m.total == 0) && runtime::time::uptime_ms() - start < 5000 {
        let _ = runtime::time::sleep_ms(5);
    }
    let _ = runtime::caps::drop_cap(d.client().channel().token());
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("ktest runs inside the machine: `cargo run -p ci -- test`");
    std::process::exit(2);
}
