//! IPC benchmark between two processes, printing `BENCH <name> <value> <unit>`.
//!
//! Round-trip costs are TSC ticks per round trip; under QEMU with
//! `-icount shift=0` the TSC advances once per guest instruction, which
//! `tsc_per_instruction` verifies on a loop of known length. Rates use the
//! kernel's clock and are meaningful under plain TCG.

use alloc::boxed::Box;
use alloc::vec;

use abi::rights;
use runtime::ipc::{debug, Channel, Page};
use runtime::println;
use runtime::process::Exit;
use runtime::time::{rdtsc, uptime_ns};

use crate::child::tag;
use crate::ensure;
use crate::harness::{expect_exit, spawn, Context, Outcome, Suite, CHAN};

const WARMUP: u64 = 500;
const ROUNDS: u64 = 20_000;

pub fn run() -> i32 {
    let mut s = Suite::new("bench");
    s.case("TSC calibration", calibration);
    s.case("null syscall", null_syscall);
    s.case("IPC round trips between two address spaces", round_trips);
    s.case("IPC kernel memory", memory);
    s.case("serve loop against the raw round trip", serve_loop);
    s.case("file read through VFS and RAMFS", file_read);
    s.finish()
}

fn bench(name: &str, value: u64, unit: &str) {
    println!("BENCH {name} {value} {unit}");
}

/// TSC ticks for `n` runs of `f`, after a warm-up; min over 5 batches of
/// the per-call average (robust against a timer tick landing in a batch).
fn measure(n: u64, mut f: impl FnMut() -> Result<(), alloc::string::String>) -> Result<u64, alloc::string::String> {
    for _ in 0..WARMUP {
        f()?;
    }
    let mut best = u64::MAX;
    for _ in 0..5 {
        let t0 = rdtsc();
        for _ in 0..n / 5 {
            f()?;
        }
        best = best.min((rdtsc() - t0) / (n / 5));
    }
    Ok(best)
}

fn calibration() -> Outcome {
    // 3 instructions per iteration (add, dec, jnz): under icount the TSC
    // must advance by about 3 * N.
    const N: u64 = 300_000;
    let t0 = rdtsc();
    // SAFETY: a register-only loop.
    unsafe {
        core::arch::asm!("2:", "add {x}, 1", "dec {n}", "jnz 2b", n = inout(reg) N => _, x = inout(reg) 0u64 => _, options(nomem, nostack));
    }
    let dt = rdtsc() - t0;
    bench("tsc_per_instruction_x1000", dt * 1000 / (3 * N), "milli");
    Ok(())
}

fn null_syscall() -> Outcome {
    let t = measure(ROUNDS, || runtime::time::priority().map(|_| ()).ctx("syscall"))?;
    bench("syscall_null", t, "tsc");
    Ok(())
}

fn round_trips() -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    // Same priority as us: each side hands the CPU straight to the other.
    let server = spawn("bench-server", &[], &[(CHAN, chan.token(), rights::RECEIVE)], 16)?;

    let t = measure(ROUNDS, || chan.send(9, &[]).map(|_| ()).ctx("tag-only"))?;
    bench("ipc_rt_tag", t, "tsc");

    // 64 bytes to the server and 64 bytes back (reply_len 64), copied.
    let mut small = [1u8; 64];
    let t = measure(ROUNDS, || chan.call(tag::REFLECT, &mut small, 64).map(|_| ()).ctx("64 B"))?;
    bench("ipc_rt_64", t, "tsc");
    let rt64 = t;

    // A page-aligned page, lent both ways: the server touches it in place.
    let mut page = Box::new(Page::zeroed());
    let before = page.0[0];
    let t = measure(ROUNDS, || chan.call(tag::TOUCH, &mut page.0, 4096).map(|_| ()).ctx("4 KiB lent"))?;
    bench("ipc_rt_4k_lent", t, "tsc");
    bench("ipc_rt_4k_lent_vs_64_x100", t * 100 / rt64.max(1), "percent");
    let calls = WARMUP + 5 * (ROUNDS / 5);
    ensure!(page.0[0] == before.wrapping_add(calls as u8), "the server's writes did not all reach the lent page");

    // The same 4 KiB from an unaligned buffer: copied there and back.
    let mut v = vec![0u8; 8192];
    let t = measure(ROUNDS / 4, || chan.call(tag::REFLECT, &mut v[8..8 + 4096], 4096).map(|_| ()).ctx("4 KiB copied"))?;
    bench("ipc_rt_4k_copy", t, "tsc");

    // Round trips per second by the kernel clock.
    let n = ROUNDS * 2;
    let t0 = uptime_ns();
    for _ in 0..n {
        chan.call(tag::REFLECT, &mut small, 64).ctx("64 B")?;
    }
    let ns = (uptime_ns() - t0).max(1);
    bench("ipc_rt_64_rate", n * 1_000_000_000 / ns, "roundtrips/s");

    chan.send(tag::EXIT, &[]).ctx("exit")?;
    expect_exit(&server, Exit::Code(0), "server")
}

fn memory() -> Outcome {
    let t = debug::totals().ctx("totals")?;
    bench("ipc_channel_bytes", t.bytes_per_channel, "bytes");
    bench("ipc_message_bytes", t.bytes_per_message, "bytes");
    bench("ipc_name_bytes", t.bytes_per_name, "bytes");
    // The accounting must follow real objects.
    let before = t.bytes_in_use;
    let chans: alloc::vec::Vec<Channel> = (0..10).map(|_| Channel::create()).collect::<Result<_, _>>().ctx("channels")?;
    let after = debug::totals().ctx("totals")?.bytes_in_use;
    ensure!(after - before == 10 * t.bytes_per_channel, "10 channels added {} bytes", after - before);
    for c in chans {
        c.destroy().ctx("destroy")?;
    }
    ensure!(t.bytes_per_channel <= 128, "channel {} bytes > 128", t.bytes_per_channel);
    ensure!(t.bytes_per_message <= 64, "message {} bytes > 64", t.bytes_per_message);
    Ok(())
}

/// A small postcard request and reply through `serve` against the raw
/// round trip of the same message size.
fn serve_loop() -> Outcome {
    use crate::rpc::Add;
    use runtime::rpc::{Client, Op};

    let raw = Channel::create().ctx("channel")?;
    let raw_server = spawn("bench-server", &[], &[(CHAN, raw.token(), rights::RECEIVE)], 16)?;
    let size = <Add as Op>::MESSAGE;
    let mut buf = [7u8; 64];
    let t_raw = measure(ROUNDS, || raw.call(tag::REFLECT, &mut buf[..size], size).map(|_| ()).ctx("raw"))?;
    raw.send(tag::EXIT, &[]).ctx("exit")?;
    expect_exit(&raw_server, Exit::Code(0), "raw server")?;

    let s = crate::harness::serve("rpc-server", &[])?;
    let c = Client::new(Channel::from_token(s.chan.token()));
    let mut i = 0u32;
    let t = measure(ROUNDS, || {
        i = i.wrapping_add(1);
        match c.call(&Add { a: i, b: 1000 }) {
            Ok(v) if v == i + 1000 => Ok(()),
            other => Err(alloc::format!("add gave {other:?}")),
        }
    })?;
    bench(&alloc::format!("ipc_rt_{size}"), t_raw, "tsc");
    bench(&alloc::format!("serve_rt_{size}"), t, "tsc");
    bench("serve_vs_raw_x100", t * 100 / t_raw.max(1), "percent");
    Ok(())
}

/// A 1 MiB file read page by page through VFS -> RAMFS: the page is lent,
/// RAMFS fills it in place.
fn file_read() -> Outcome {
    use ramfs::RamfsClient;
    use vfs::VfsClient;

    let (chan, path) = VfsClient::connect_wait(5_000).ctx("vfs")?.find_wait("boot:test/data.bin", 5_000).ctx("find")?;
    let fs = RamfsClient::new(chan);
    let info = fs.stat(&path).ctx("stat")?;
    ensure!(info.size == 1 << 20, "test/data.bin is {} bytes", info.size);
    let pages = info.size / 4096;
    let mut page = Box::new(Page::zeroed());
    let mut read_all = || -> Outcome {
        for p in 0..pages {
            fs.load(info.handle, p * 4096, &mut page).ctx("load")?;
        }
        Ok(())
    };
    read_all()?;
    // Per page: the best of 5 whole-file reads.
    let mut best = u64::MAX;
    for _ in 0..5 {
        let t0 = rdtsc();
        read_all()?;
        best = best.min((rdtsc() - t0) / pages);
    }
    bench("file_read_page", best, "tsc");
    // Rate by the kernel clock.
    let rounds = 8;
    let t0 = uptime_ns();
    for _ in 0..rounds {
        read_all()?;
    }
    let ns = (uptime_ns() - t0).max(1);
    let kib_s = rounds * info.size * 1_000_000_000 / ns / 1024;
    bench("file_read_rate", kib_s * 10 / 1024, "MiB/s_x10");
    Ok(())
}
