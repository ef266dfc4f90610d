//! The foundation: user mode, bad syscalls, faults, sleep and yield.

use core::sync::atomic::Ordering;

use abi::{Error, SyscallClass};
use runtime::process::Exit;
use runtime::time::{sleep_ms, uptime_ms};

use crate::child::SHARED_VA;
use crate::ensure;
use crate::harness::{expect_err, expect_exit, spawn, Context, Suite, SHARED};

pub fn run() -> i32 {
    let mut s = Suite::new("boot");
    s.case("runs in ring 3", ring3);
    s.case("unknown syscall numbers are refused", unknown_syscalls);
    s.case("bad pointers give BadAddress, not a crash", bad_pointers);
    s.case("null write kills the program, not the system", || fault_case("null", 14));
    s.case("write to kernel memory kills the program", || fault_case("kernel", 14));
    s.case("invalid opcode kills the program", || fault_case("ud", 6));
    s.case("privileged instruction kills the program", || fault_case("gp", 13));
    s.case("divide error kills the program", || fault_case("divide", 0));
    s.case("executing data (NX) kills the program", || fault_case("nx", 14));
    s.case("stack overflow kills the program", || fault_case("stack", 14));
    s.case("x87 instructions kill the program (no FPU state is kept)", || fault_case("x87", 7));
    s.case("SSE instructions kill the program (no vector state is kept)", || fault_case("sse", 6));
    s.case("system goes on after twenty faults", many_faults);
    s.case("sleep waits at least as long as asked", sleep_waits);
    s.case("a sleeper wakes while another program keeps the CPU busy", sleep_between_programs);
    s.case("yield hands the CPU to the other program", yield_between_programs);
    s.finish()
}

fn ring3() -> crate::harness::Outcome {
    let cpl = runtime::privilege_level();
    ensure!(cpl == 3, "running at CPL {cpl}, not ring 3");
    Ok(())
}

fn unknown_syscalls() -> crate::harness::Outcome {
    // Also the IPC calls' numbers with high bits set: the whole of rax is
    // the number (the entry once compared only its low half).
    let ipc = [abi::Syscall::Send, abi::Syscall::ReplyRecv, abi::Syscall::Call, abi::Syscall::ReplyWait].map(|s| 1 << 32 | s as u64);
    for nr in [9, 19, 99, 1000, u64::MAX, 1 << 63 | 1].into_iter().chain(ipc) {
        // SAFETY: unknown syscalls do nothing.
        let (status, _) = unsafe { runtime::sys::raw(nr, 0, [0; 5]) };
        ensure!(status == Error::UnknownSyscall as u64, "syscall {nr} gave status {status}");
    }
    Ok(())
}

fn bad_pointers() -> crate::harness::Outcome {
    // DebugPrint only reads, and none of these point at memory of ours.
    let print = |ptr: u64, len: u64| {
        runtime::sys::calls::DEBUG_PRINT.call(runtime::class_token(SyscallClass::DebugPrint), abi::call::PrintArgs { ptr, len })
    };
    expect_err(print(0, 10), Error::BadAddress, "null")?;
    expect_err(print(0xffff_ffff_8010_0000, 10), Error::BadAddress, "kernel text")?;
    expect_err(print(0xdead_0000_0000, 10), Error::BadAddress, "unmapped")?;
    expect_err(print(u64::MAX - 4, 10), Error::BadAddress, "wrapping")?;
    expect_err(print(0x1000, 1 << 40), Error::TooLarge, "huge length")?;
    Ok(())
}

fn fault_case(kind: &str, vector: u64) -> crate::harness::Outcome {
    let p = spawn("fault", &[kind], &[], 8)?;
    expect_exit(&p, Exit::Fault(vector), kind)
}

fn many_faults() -> crate::harness::Outcome {
    let kinds = ["null", "ud", "gp", "kernel"];
    for i in 0..20 {
        let p = spawn("fault", &[kinds[i % 4]], &[], 8)?;
        let e = p.wait().ctx("wait")?;
        ensure!(matches!(e, Exit::Fault(_)), "child {i} ended {e:?}");
    }
    // And ordinary work still runs.
    let p = spawn("sleeper", &["1", "42"], &[], 8)?;
    expect_exit(&p, Exit::Code(42), "sleeper after faults")
}

fn sleep_waits() -> crate::harness::Outcome {
    for ms in [1u64, 10, 50] {
        let t0 = uptime_ms();
        sleep_ms(ms).ctx("sleep")?;
        let dt = uptime_ms() - t0;
        // At least as long as asked; the upper bound only catches a hang
        // (TCG's clock follows a possibly busy host).
        ensure!(dt >= ms && dt < ms + 2000, "sleep({ms}) took {dt} ms");
    }
    Ok(())
}

fn sleep_between_programs() -> crate::harness::Outcome {
    // The spinner keeps the CPU for 300 ms without ever yielding; the
    // sleeper (same priority) must wake after its 50 ms and end before the
    // spinner: only the timer's preemption can give it the CPU.
    let t0 = uptime_ms();
    let busy = spawn("spinner", &["300", "9"], &[], 8)?;
    let sleeper = spawn("sleeper", &["50", "7"], &[], 8)?;
    expect_exit(&sleeper, Exit::Code(7), "sleeper")?;
    let woke = uptime_ms() - t0;
    let spinner_still_running = busy.wait_timeout(0) == Err(abi::Error::Timeout);
    ensure!(woke >= 50, "sleeper ended after only {woke} ms");
    ensure!(spinner_still_running, "the sleeper only ended after the busy program ({woke} ms)");
    expect_exit(&busy, Exit::Code(9), "spinner")?;
    let all = uptime_ms() - t0;
    ensure!(all >= 300, "spinner ended after only {all} ms");
    Ok(())
}

fn yield_between_programs() -> crate::harness::Outcome {
    const TURNS: u64 = 500;
    let (page, _) = runtime::mem::dma_alloc(1).ctx("shared page")?;
    page.map(SHARED_VA, 0, 4096, abi::MapFlags::READ | abi::MapFlags::WRITE).ctx("map")?;
    let a = spawn("turns", &["0", "500"], &[(SHARED, page.0, (abi::PhysRights::READ | abi::PhysRights::WRITE).into())], 8)?;
    let b = spawn("turns", &["1", "500"], &[(SHARED, page.0, (abi::PhysRights::READ | abi::PhysRights::WRITE).into())], 8)?;
    expect_exit(&a, Exit::Code(0), "turns 0")?;
    expect_exit(&b, Exit::Code(0), "turns 1")?;
    // SAFETY: mapped above; the children are gone.
    let shared = unsafe { &*(SHARED_VA as *const [core::sync::atomic::AtomicU64; 3]) };
    let (turns, y0, y1) = (shared[0].load(Ordering::Acquire), shared[1].load(Ordering::Relaxed), shared[2].load(Ordering::Relaxed));
    ensure!(turns == 2 * TURNS, "{turns} turns taken");
    // With a working yield each wait for the other side costs about one
    // yield; if yield did nothing, a waiter would spin until preempted.
    ensure!(y0 + y1 <= 4 * TURNS, "{} yields for {} turns", y0 + y1, 2 * TURNS);
    // SAFETY: `shared` is not used again.
    let _ = unsafe { runtime::mem::unmap(SHARED_VA, 4096) };
    Ok(())
}
