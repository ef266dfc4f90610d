//! IPC benchmark between two processes, printing `BENCH <name> <value> <unit>`.
//!
//! Round-trip costs are TSC ticks per round trip; under QEMU with
//! `-icount shift=0` the TSC advances once per guest instruction, which
//! `tsc_per_instruction` verifies on a loop of known length. Rates use the
//! kernel's clock and are meaningful under plain TCG.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use runtime::ipc::{debug, Channel, Page, Window};
use runtime::println;
use runtime::process::Exit;
use runtime::time::{rdtsc, uptime_ms, uptime_ns};

use crate::child::{seq, tag};
use crate::ensure;
use crate::harness::{expect_exit, spawn, spawn_quota, Context, Outcome, Suite, CHAN, NEXT};

const WARMUP: u64 = 500;
const ROUNDS: u64 = 20_000;

pub fn run() -> i32 {
    let mut s = Suite::new("bench");
    s.case("TSC calibration", calibration);
    s.case("null syscall", null_syscall);
    s.case("IPC round trips between two address spaces, sizes 0 to 4096, every reply checked", round_trips);
    s.case("fairness: 8 equal clients calling one server for a second", || fairness(8));
    s.case("fairness: 32 equal clients calling one server for a second", || fairness(32));
    s.case("IPC kernel memory", memory);
    s.case("serve loop against the raw round trip", serve_loop);
    s.case("file read through VFS and RAMFS", file_read);
    s.case("disk reads through ahcidrv", disk_read);
    s.finish()
}

fn bench(name: &str, value: u64, unit: &str) {
    println!("BENCH {name} {value} {unit}");
}

/// TSC ticks for `n` runs of `f`, after a warm-up; min over 5 batches of
/// the per-call average (robust against a timer tick landing in a batch).
///
/// `f` is called from one place only, so the compiler inlines it into the
/// loop: called from two (the warm-up and the batches) it stayed a separate
/// function, and each run paid a call and a `Result` through memory that no
/// program making the calls would (about 30 instructions per round trip).
fn measure(n: u64, mut f: impl FnMut() -> Result<(), alloc::string::String>) -> Result<u64, alloc::string::String> {
    let batch = n / 5;
    let mut best = u64::MAX;
    let mut t0 = 0;
    // Batch 0 is the warm-up, not measured.
    for b in 0..6u64 {
        let runs = if b == 0 { WARMUP } else { batch };
        if b > 1 {
            best = best.min((rdtsc() - t0) / batch);
        }
        t0 = rdtsc();
        for _ in 0..runs {
            f()?;
        }
    }
    best = best.min((rdtsc() - t0) / batch);
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

// Kept out of `run`: with `priority()` inlined here, the cases inlined
// into `run` are compiled as before (the round trips moved by +1 when this
// one grew inside `run`).
#[inline(never)]
fn null_syscall() -> Outcome {
    let t = measure(ROUNDS, || runtime::time::priority().map(|_| ()).ctx("syscall"))?;
    bench("syscall_null", t, "tsc");
    // Ten more between two marks, for single-stepping (the README's
    // breakdown of the null syscall, `breakdown.py --null`).
    trace_mark(NULL_MARKS);
    for _ in 0..10 {
        runtime::time::priority().map(|_| ()).ctx("syscall")?;
    }
    trace_mark(NULL_MARKS + 1);
    Ok(())
}

/// One checked round trip of `buf.len()` bytes through the bench server:
/// call `n` goes out in the tag and the sequence words (`child::seq`), and
/// `n + 1` must come back in the result and in both words, with the whole
/// length. A kernel that skipped a copy, or a part of one, fails here.
#[inline(always)]
fn bump_call(chan: &Channel, buf: &mut [u8], n: &mut u64) -> Outcome {
    *n += 1;
    let len = buf.len();
    seq::put(buf, *n);
    match chan.call(tag::BUMP | *n << 8, buf, len) {
        Ok(r) if r.result == *n + 1 && r.len == len && seq::holds(buf, *n + 1) => Ok(()),
        other => wrong_reply(len, *n, other),
    }
}

#[cold]
#[inline(never)]
fn wrong_reply(len: usize, n: u64, got: Result<runtime::ipc::Reply, abi::Error>) -> Outcome {
    match got {
        Ok(r) => Err(format!("{len}-byte call {n}: result {} ({} bytes back), or sequence words not {}", r.result, r.len, n + 1)),
        Err(e) => Err(format!("{len}-byte call {n}: {e:?}")),
    }
}

/// A place a debugger can stop at: `trace_mark(0)` starts the ten traced
/// round trips, `trace_mark(1)` ends them; `trace_mark(NULL_MARKS)` and
/// `NULL_MARKS + 1` bracket ten null syscalls, `SERVE_MARKS` and
/// `SERVE_MARKS + 1` ten calls through the serve loop, `LENT_MARKS` and
/// `LENT_MARKS + 1` ten lent 4 KiB round trips, `TAG_MARKS` and
/// `TAG_MARKS + 1` ten tag-only ones
/// (`ci/trace/breakdown.py` stops at the mark whose argument it wants).
#[inline(never)]
fn trace_mark(which: u64) {
    core::hint::black_box(which);
}

/// The null syscall's marks (`breakdown.py --null` stops at this one).
const NULL_MARKS: u64 = 2;
/// The serve loop's marks (`breakdown.py --serve`).
const SERVE_MARKS: u64 = 4;
/// The lent page's marks (`breakdown.py --lent`).
const LENT_MARKS: u64 = 6;
/// The tag-only call's marks (`breakdown.py --tag`).
const TAG_MARKS: u64 = 8;

/// Copied sizes of the sweep (0 is the tag-only call); 4096 is also sent
/// lent and copied below.
const SWEEP: [usize; 7] = [0, 8, 64, 256, 1024, 2048, 4095];

fn round_trips() -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    // Same priority as us: each side hands the CPU straight to the other.
    let server = spawn("bench-server", &[], &[(CHAN, chan.token(), abi::ChannelRights::RECEIVE.into())], 16)?;
    let mut n = 0;

    // Copied both ways, from an unaligned buffer (so never lent).
    let mut v = vec![0u8; 8192];
    let mut rt64 = 0;
    for size in SWEEP {
        let rounds = if size <= 256 { ROUNDS } else { ROUNDS / 4 };
        let t = measure(rounds, || bump_call(&chan, &mut v[8..8 + size], &mut n))?;
        match size {
            0 => {
                bench("ipc_rt_tag", t, "tsc");
                // Ten more between two marks (`breakdown.py --tag`).
                trace_mark(TAG_MARKS);
                for _ in 0..10 {
                    bump_call(&chan, &mut v[8..8], &mut n)?;
                }
                trace_mark(TAG_MARKS + 1);
            }
            64 => {
                rt64 = t;
                bench("ipc_rt_64", t, "tsc");
            }
            _ => bench(&format!("ipc_rt_{size}"), t, "tsc"),
        }
    }

    // Ten more 64-byte calls between two marks, for single-stepping under
    // a debugger (the README's breakdown of the round trip).
    // (One first, so that the server waits in `ReplyWait` again after the
    // sweep's larger sizes: the ten are the steady state.)
    bump_call(&chan, &mut v[8..8 + 64], &mut n)?;
    trace_mark(0);
    for _ in 0..10 {
        bump_call(&chan, &mut v[8..8 + 64], &mut n)?;
    }
    trace_mark(1);

    // A page-aligned page, lent both ways: the server bumps it in place.
    let mut page = Box::new(Page::zeroed());
    let t = measure(ROUNDS, || bump_call(&chan, &mut page.0, &mut n))?;
    // Ten more between two marks (`breakdown.py --lent`).
    trace_mark(LENT_MARKS);
    for _ in 0..10 {
        bump_call(&chan, &mut page.0, &mut n)?;
    }
    trace_mark(LENT_MARKS + 1);
    bench("ipc_rt_4k_lent", t, "tsc");
    bench("ipc_rt_4k_lent_vs_64_x100", t * 100 / rt64.max(1), "percent");

    // The same 4 KiB from an unaligned buffer: copied there and back.
    let t = measure(ROUNDS / 4, || bump_call(&chan, &mut v[8..8 + 4096], &mut n))?;
    bench("ipc_rt_4k_copy", t, "tsc");

    // Round trips per second by the kernel clock.
    let rounds = ROUNDS * 2;
    let mut small = [0u8; 64];
    let t0 = uptime_ns();
    for _ in 0..rounds {
        bump_call(&chan, &mut small, &mut n)?;
    }
    let ns = (uptime_ns() - t0).max(1);
    bench("ipc_rt_64_rate", rounds * 1_000_000_000 / ns, "roundtrips/s");

    chan.send(tag::EXIT, &[]).ctx("exit")?;
    expect_exit(&server, Exit::Code(0), "server")
}

/// `clients` processes at the server's priority make checked 64-byte calls
/// to one bench server for one second, released together by a gate; each
/// one's share is its calls against the mean (fair = 100).
fn fairness(clients: usize) -> Outcome {
    let chan = Channel::create().ctx("channel")?;
    let gate = Channel::create().ctx("gate")?;
    let server = spawn("bench-server", &[], &[(CHAN, chan.token(), abi::ChannelRights::RECEIVE.into())], 16)?;
    let mut kids = Vec::new();
    let caps = [(CHAN, chan.token(), abi::ChannelRights::SEND.into()), (NEXT, gate.token(), abi::ChannelRights::SEND.into())];
    let r = (|| {
        for _ in 0..clients {
            kids.push(spawn_quota("fair-client", &[], &caps, 16, true, CLIENT_QUOTA)?);
        }
        race(clients, &gate, &kids)
    })();
    // Whatever happened, nothing of this case outlives it.
    for k in &kids {
        let _ = k.kill();
    }
    let calls = r.inspect_err(|_| {
        let _ = server.kill();
    })?;
    chan.send(tag::EXIT, &[]).ctx("exit")?;
    expect_exit(&server, Exit::Code(0), "server")?;
    let total: u64 = calls.iter().sum();
    let share = |c: u64| c * 100 * clients as u64 / total.max(1);
    bench(&format!("fair_{clients}_min_x100"), share(*calls.iter().min().unwrap_or(&0)), "percent");
    bench(&format!("fair_{clients}_max_x100"), share(*calls.iter().max().unwrap_or(&0)), "percent");
    bench(&format!("fair_{clients}_calls"), total, "calls/s");
    Ok(())
}

/// What a fairness client needs (the ktest image, its heap and stack),
/// small enough for 32 of them.
const CLIENT_QUOTA: abi::quota::Quota = abi::quota::Quota { threads: 2, pages: 1024, channels: 4, caps: abi::limits::CAPS_PER_PROCESS as u64, processes: 0 };

/// Open the gate for every client at once, then collect their call counts.
fn race(clients: usize, gate: &Channel, kids: &[runtime::process::Process]) -> Result<Vec<u64>, alloc::string::String> {
    // Every client waits at the gate; then all learn the same end.
    let mut w = Window::new().ctx("window")?;
    let mut waiting = Vec::new();
    for _ in 0..clients {
        waiting.push(gate.receive(&mut w, 30 * 1_000_000_000).ctx("gate")?.hold());
    }
    let end = uptime_ms() + 1000;
    for h in waiting {
        h.reply(end, &[]).ctx("open the gate")?;
    }
    let mut calls = Vec::new();
    for k in kids {
        match k.wait_timeout(30 * 1_000_000_000).ctx("client")? {
            Exit::Code(c) if c > 0 => calls.push(c as u64),
            other => return Err(format!("a client ended {other:?}")),
        }
    }
    Ok(calls)
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
    let raw_server = spawn("bench-server", &[], &[(CHAN, raw.token(), abi::ChannelRights::RECEIVE.into())], 16)?;
    let size = <Add as Op>::MESSAGE;
    let mut buf = [7u8; 64];
    let mut n = 0;
    let t_raw = measure(ROUNDS, || bump_call(&raw, &mut buf[..size], &mut n))?;
    raw.send(tag::EXIT, &[]).ctx("exit")?;
    expect_exit(&raw_server, Exit::Code(0), "raw server")?;

    let s = crate::harness::serve("rpc-server", &[])?;
    let c = Client::new(Channel::from_token(s.chan.token()));
    let mut i = 0u32;
    // (The error report out of line, as `bump_call`'s: inline, its
    // formatting kept the closure a function of its own, and every call
    // paid for that, not for the serve loop.)
    let t = measure(ROUNDS, || {
        i = i.wrapping_add(1);
        match c.call(&Add { a: i, b: 1000 }) {
            Ok(v) if v == i + 1000 => Ok(()),
            other => wrong_sum(i, 1000, other),
        }
    })?;
    // Ten more between two marks, for single-stepping
    // (`breakdown.py --serve`).
    // (The same calls as measured: the sizes of the varints matter.)
    trace_mark(SERVE_MARKS);
    for _ in 0..10 {
        i = i.wrapping_add(1);
        match c.call(&Add { a: i, b: 1000 }) {
            Ok(v) if v == i + 1000 => {}
            other => return wrong_sum(i, 1000, other),
        }
    }
    trace_mark(SERVE_MARKS + 1);
    bench(&alloc::format!("ipc_rt_{size}"), t_raw, "tsc");
    bench(&alloc::format!("serve_rt_{size}"), t, "tsc");
    bench("serve_vs_raw_x100", t * 100 / t_raw.max(1), "percent");
    Ok(())
}

#[cold]
#[inline(never)]
fn wrong_sum(a: u32, b: u32, got: Result<u32, runtime::rpc::CallError<<crate::rpc::Add as runtime::rpc::Op>::Error>>) -> Outcome {
    Err(alloc::format!("add {a} + {b} gave {got:?}"))
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

/// 4 KiB reads (the per-request limit) from the runner's disk through
/// `ahcidrv`: each is a READ DMA EXT completed by its MSI, copied from the
/// driver's DMA page into the lent page.
fn disk_read() -> Outcome {
    super::disk::boot_driver()?;
    let mut d = ahcidrv::client::Disk::open(0).map_err(|e| alloc::format!("disk 0: {e:?}"))?;
    let read = |d: &mut ahcidrv::client::Disk, i: u64| -> Outcome {
        d.read((i * 8) % 8000, 8).map(|_| ()).map_err(|e| alloc::format!("read: {e:?}"))
    };
    for i in 0..16 {
        read(&mut d, i)?;
    }
    let mut best = u64::MAX;
    for _ in 0..5 {
        let t0 = rdtsc();
        for i in 0..32 {
            read(&mut d, i)?;
        }
        best = best.min((rdtsc() - t0) / 32);
    }
    bench("disk_read_4k", best, "tsc");
    // Rates by the kernel clock: 1 MiB in 4 KiB requests (lent pages), and
    // in 64 KiB requests (one command each, into a DMA buffer attached once).
    let rate = |name: &str, mib: u64, t0: u64| bench(name, mib * 10 * 1_000_000_000 / (uptime_ns() - t0).max(1), "MiB/s_x10");
    let t0 = uptime_ns();
    for i in 0..256 {
        read(&mut d, i)?;
    }
    rate("disk_read_4k_rate", 1, t0);
    let (buf, _) = runtime::mem::dma_alloc(16).map_err(|e| alloc::format!("DMA buffer: {e:?}"))?;
    d.attach(&buf).map_err(|e| alloc::format!("attach: {e:?}"))?;
    // 16 MiB: enough time to measure even where the DMA costs nothing.
    let t0 = uptime_ns();
    for i in 0..256 {
        d.read_into_buffer((i * 128) % 7936, 128).map_err(|e| alloc::format!("64 KiB read: {e:?}"))?;
    }
    rate("disk_read_64k_rate", 16, t0);
    Ok(())
}
