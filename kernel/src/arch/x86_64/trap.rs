//! What happens on every kernel entry: syscalls, interrupts, exceptions,
//! panics. (The boot sequence is in `crate::boot::start`.)

use core::fmt::Write;
use core::panic::PanicInfo;

use x86_64::registers::control::{Cr2, Cr3};
use x86_64::VirtAddr;

use crate::kernel::Kernel;
use crate::log::Console;
use crate::mem::{PageTables, PhysMem};
use crate::proc::thread::WordsAt;
use crate::proc::Tid;

use super::entry::{load_segs, read_segs, resume_context, switch_context, Park, SyscallFrame, ThreadContext, TrapFrame};
use super::{
    cpu, lapic, running, running_results, set_running, with_kernel, DIRECT_MAP, KERNEL,
};

/// QEMU exit code (`code * 2 + 1`) after a kernel panic or fatal fault.
const PANIC_EXIT: u64 = 0x7f;

/// Run `f` with the kernel, then, with its scope over, switch to `current`
/// if that is another thread (returning once this thread runs again).
///
/// This is how every entry path uses the kernel: the scope always ends
/// before the stack switch, so no thread leaves the kernel (to another
/// thread's stack, or to user mode by `sysret` or `iret`) with it lent.
#[inline(always)]
pub(crate) fn run_then_switch<R>(f: impl FnOnce(&mut Kernel) -> R) -> R {
    let (r, switch) = with_kernel(|k| {
        let r = f(k);
        let prev = running();
        if prev == k.current {
            return (r, None);
        }
        // Off the straight line: a syscall that switches pays one jump
        // more, one that does not (the common case outside IPC) one less.
        core::hint::cold_path();
        (r, Some(Switch::prepare(k, prev, None)))
    });
    if let Some(s) = switch {
        s.run();
    }
    r
}

/// [`run_then_switch`] for the IPC dispatchers, which return straight to
/// their exit: a switch from there parks this thread (`kind`), and, from
/// `Call` or `ReplyWait` to a thread parked there too, leaves through the
/// other's exit instead of switching stacks (see [`Switch`]).
#[inline(always)]
fn run_then_exit(kind: Park, f: impl FnOnce(&mut Kernel)) {
    let switch = with_kernel(|k| {
        f(k);
        let prev = running();
        (prev != k.current).then(|| Switch::prepare(k, prev, Some(kind)))
    });
    if let Some(s) = switch {
        s.run();
    }
}

/// A thread switch, worked out inside a kernel scope and carried out after
/// it (all in registers: this is on the IPC fast path).
///
/// A thread that leaves from an IPC dispatcher is *parked* rather than
/// saved: nothing of it stays on its kernel stack but the user `rsp`,
/// `rip` and `rflags` its entry pushed at the top, and it resumes at its
/// syscall's exit, from a frame in its [`ThreadContext`] (its selectors,
/// six registers and the exit's address), which `switch_context` resumes
/// like any other. From `Call` or `ReplyWait` ([`Park::Words`]) the exit
/// loads every other register a user thread sees (results and message
/// words); from `Send` or `ReplyRecv` ([`Park::Regs`]) the frame holds the
/// program's `rbx`, `rbp`, `r12`-`r15`, which the entry stored there. If a
/// thread parking in `Call`/`ReplyWait` switches to one parked there too,
/// the dispatcher just returns to the exit, which leaves as the thread now
/// running (it takes the stack from the TSS's `rsp0` and the results
/// from `RUNNING`): no stack switch, no registers saved or restored but
/// the selectors, when they differ. Otherwise the next thread is resumed
/// from its saved stack pointer (`resume_context`, `switch_context`
/// without the save). (The assembly fast path, `super::fastpath`, makes
/// the same switches between parked threads of either kind.)
struct Switch {
    next: Tid,
    next_rsp: u64,
    /// Where `next`'s syscall results are.
    results: *const [u64; 5],
    /// Where `next`'s exit finds its message words.
    next_words: *mut WordsAt,
    /// Where the running thread's stack pointer goes, or, when it parks,
    /// its park frame.
    save: *mut u64,
    /// The running thread parks.
    park: bool,
    /// `next` is parked (and the running thread parks): no stack switch.
    direct: bool,
}

impl Switch {
    /// Make `current` the running thread in the kernel's books (its
    /// address space the active one, its stack the one entries use) and
    /// note what the CPU must do. `park`: the running thread is in an IPC
    /// dispatcher, called straight from its entry, and parks so.
    #[inline(always)]
    fn prepare(k: &mut Kernel, prev: Tid, park: Option<Park>) -> Switch {
        let next = k.current;
        // SAFETY: this is the switch to `next`, after the syscall's or
        // interrupt's work (the kernel is still lent, which the kernel half
        // of the new space serves as well).
        unsafe { k.activate(next) };
        let t = &k.threads[next as usize].arch;
        // SAFETY: `next`'s own kernel stack, mapped while its slot lives.
        unsafe { cpu::set_kernel_stack(t.stack_top) };
        let next_rsp = t.rsp;
        let direct = park == Some(Park::Words) && t.parked(Park::Words);
        let next_words = &raw mut k.threads[next as usize].words;
        // Raw pointers into the thread table, which is a heap block that
        // lives (and stays put) forever. Only `switch_context` or `run`
        // writes `save`, and only the syscall exit reads `results`, both
        // when no reference into the kernel is live.
        let results = &raw const k.threads[next as usize].ret;
        let pt = &mut k.threads[prev as usize].arch;
        let save = match park {
            Some(kind) => pt.set_parked(kind),
            None => &raw mut pt.rsp,
        };
        Switch { next, next_rsp, results, next_words, save, park: park.is_some(), direct }
    }

    /// Switch from the running thread to `next`. Returns when the calling
    /// thread is switched back to, or, if `direct`, at once, for the
    /// dispatcher to return to the exit, which then leaves as `next`; a
    /// parking thread that is not `direct` never returns here.
    #[inline(always)]
    fn run(self) {
        // A thread must never leave with the kernel lent: the next one
        // would find it busy, and this one would resume holding a
        // reference the other's work invalidated.
        assert!(!KERNEL.is_lent(), "thread switch inside a kernel scope");
        set_running(self.next, self.results);
        if self.park {
            let segs = read_segs();
            // SAFETY: `save` is the parking thread's `park` frame (see
            // `prepare`); no reference into the kernel is live.
            unsafe { ThreadContext::park_frame(self.save, segs) };
            if !self.direct {
                // Words lent by the fast path that ran are not in registers
                // when `next` leaves (only the `Call`/`ReplyWait` fast
                // paths lend, and they run in dispatchers that park).
                // SAFETY: `next`'s `words` in the thread table; no
                // reference into the kernel is live.
                unsafe { (*self.next_words).settle() };
                // SAFETY: `next_rsp` is where `next` stopped; this thread
                // is parked and keeps nothing on its stack (no reference
                // into the kernel is live, checked above).
                unsafe { resume_context(self.next_rsp, segs) };
            }
            // SAFETY: `next` is parked: `next_rsp` is its `park` frame,
            // whose first word is its selectors.
            let next_segs = unsafe { (self.next_rsp as *const u64).read() } as u32;
            if segs != next_segs {
                // SAFETY: selectors `next` had in user mode.
                unsafe { load_segs(next_segs) };
            }
            return;
        }
        // SAFETY: `next_rsp` is where `next` stopped (or its prepared start
        // frame); `save` points into the thread table (see `prepare`), and
        // no reference into the kernel is live (checked above).
        unsafe { switch_context(self.save, self.next_rsp) };
    }
}

/// Called by `syscall_entry` on the thread's kernel stack for every call
/// but the four IPC calls. Returns where the thread's results are
/// (status and four values), which the entry code loads into
/// `rax, rsi, rdx, r8, r9`. The cheap calls the short path answers
/// (`syscall::short`) switch nothing and need no second scope.
#[no_mangle]
extern "C" fn syscall_dispatch(f: &SyscallFrame) -> *const [u64; 5] {
    if with_kernel(|k| k.syscall_short(f.rax, f.args[0])) {
        return running_results();
    }
    run_then_switch(|k| k.syscall_general(f.rax, f.args));
    // This thread runs again (maybe after others did), so the results are
    // its own (see `Switch::prepare`).
    running_results()
}

/// The IPC dispatchers (the assembly fast path comes here when it
/// declines), with the token and arguments in registers: the Rust fast
/// path, inlined into each, then the general path if it declines. For
/// `Call` and `ReplyWait` the entry has stored the message words in the
/// thread's `mr`, and the exit loads the running thread's back; for `Send`
/// and `ReplyRecv` it has stored the callee-saved registers in its
/// `park_regs`, from where a thread that parks here resumes them.
macro_rules! ipc_dispatchers {
    ($($name:ident => $method:ident parking $kind:ident,)*) => {$(
        #[no_mangle]
        extern "C" fn $name(token: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> *const [u64; 5] {
            let a = [token, a1, a2, a3, a4, a5];
            run_then_exit(Park::$kind, |k| k.$method(&a));
            running_results()
        }
    )*};
}

ipc_dispatchers! {
    syscall_dispatch_send => syscall_send parking Regs,
    syscall_dispatch_reply_recv => syscall_reply_recv parking Regs,
    syscall_dispatch_call => syscall_call parking Words,
    syscall_dispatch_reply_wait => syscall_reply_wait parking Words,
}

/// Called by the interrupt stubs. Returns 1 if the CPU pushed no error code
/// where the stub expected one (the exit path then repairs the frame).
#[no_mangle]
extern "C" fn interrupt_dispatch(f: &mut TrapFrame) -> u64 {
    smap_guard(f);
    // An exception vector the local APIC has in service is an external
    // interrupt (a stray MSI), not an exception: it has no error code, and
    // for vectors whose exceptions have one, nothing above `vector` in `f`
    // is what it says (its last field lies beyond the CPU's frame).
    if f.vector < 32 && lapic::in_service(f.vector as u8) {
        unexpected_interrupt(f.vector as u8);
        return (super::entry::ERROR_CODE_VECTORS >> f.vector) & 1;
    }
    match f.vector {
        v if v == lapic::TIMER_VECTOR as u64 => {
            lapic::eoi();
            // In a long syscall's tick window the tick is only counted (the
            // kernel is lent to that syscall: taking it here would panic).
            if !super::window::count_if_in_window() {
                run_then_switch(|k| k.tick());
            }
        }
        v if crate::irq::IrqTable::slot_of_vector(v).is_some() => msi_interrupt(v),
        2 => crate::warn!("NMI at rip {:#x}", f.rip),
        0..=31 => exception(f),
        v => unexpected_interrupt(v as u8),
    }
    0
}

/// SMAP holds in the kernel only while RFLAGS.AC is clear. A program may
/// set AC (`popf`), an interrupt gate keeps it, and the kernel code that runs
/// next (this handler, or another thread's after a switch) would then reach
/// user memory unchecked: the entry stub clears it (`smap_site_entry`). Were
/// that ever lost, the kernel stops here rather than run without SMAP (the
/// `hostile` suite interrupts and faults programs running with AC set).
fn smap_guard(f: &TrapFrame) {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    use x86_64::registers::rflags::{self, RFlags};
    if rflags::read().contains(RFlags::ALIGNMENT_CHECK) && Cr4::read().contains(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION) {
        panic!("SMAP off in the kernel: AC set at interrupt entry (vector {}, rip {:#x})", f.vector, f.rip);
    }
}

/// An MSI vector the kernel hands out: the event goes to the driver that
/// bound it. Inside a long syscall's tick window it is only noted (see
/// `window`); a vector nobody holds is unexpected (the irq self-test's 64).
fn msi_interrupt(v: u64) {
    let s = crate::irq::IrqTable::slot_of_vector(v).unwrap_or(usize::MAX);
    if super::window::defer_irq_if_in_window(s) {
        lapic::eoi();
        return;
    }
    if !with_kernel(|k| k.irqs.slots.get(s).is_some_and(|slot| slot.live)) {
        unexpected_interrupt(v as u8);
        return;
    }
    run_then_switch(|k| {
        k.irq_fire(s);
        // After the fire: a level-triggered line is masked by then, so the
        // EOI (which the I/O APIC sees too) cannot make it fire again.
        lapic::eoi();
        k.reschedule();
    });
}

/// An external interrupt nobody asked for (a stray MSI, a remapped PIC's
/// spurious IRQ, the LAPIC's spurious vector): acknowledge it if the LAPIC
/// has it in service, which an EOI for anything else would wrongly end (and
/// a missing EOI would block every lower vector, the timer's too), log it,
/// and go on with whatever was interrupted.
fn unexpected_interrupt(v: u8) {
    if lapic::in_service(v) {
        lapic::eoi();
    } else if v == lapic::SPURIOUS_VECTOR {
        return; // the LAPIC's own: no EOI, nothing to report
    }
    crate::warn!("unexpected interrupt {v}");
}

const EXCEPTIONS: [&str; 32] = [
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range", "invalid opcode",
    "device not available", "double fault", "coprocessor overrun", "invalid TSS", "segment not present",
    "stack fault", "general protection", "page fault", "reserved", "x87 floating point", "alignment check",
    "machine check", "SIMD floating point", "virtualization", "control protection", "reserved", "reserved",
    "reserved", "reserved", "reserved", "reserved", "hypervisor injection", "VMM communication",
    "security", "reserved",
];

/// Why a page fault happened, from its error code.
fn page_fault_cause(err: u64) -> &'static str {
    match (err & 1 != 0, err & 2 != 0, err & 16 != 0) {
        (_, _, true) => "instruction fetch",
        (false, true, _) => "write to an unmapped page",
        (false, false, _) => "read of an unmapped page",
        (true, true, _) => "write to a protected page",
        (true, false, _) => "read of a protected page",
    }
}

fn exception(f: &mut TrapFrame) {
    let v = f.vector as usize;
    let cr2 = Cr2::read_raw();
    if f.cs & 3 == 3 {
        // A user program faulted: report it, end its process, run something else.
        run_then_switch(|k| {
            let t = k.current;
            let p = k.proc_of(t);
            let mut detail = [0u8; 64];
            let mut w = Buf(&mut detail, 0);
            if v == 14 {
                let _ = write!(w, ", {} at {:#x}", page_fault_cause(f.error), cr2);
            }
            let len = w.1;
            crate::warn!(
                "fault: process {p} '{}' thread {t}: {} (vector {v}, error {:#x}) at rip {:#x}, rsp {:#x}{}",
                k.procs[p].name(),
                EXCEPTIONS[v],
                f.error,
                f.rip,
                f.rsp,
                core::str::from_utf8(&detail[..len]).unwrap_or("")
            );
            k.end_process(p, abi::exit::FAULTED, v as u64);
            k.reschedule();
        });
        unreachable!("a thread of a dead process was resumed");
    }
    // A user page missing under `read_user`: resume at its error exit.
    if v == 14 && super::entry::user_copy_range().contains(&f.rip) {
        f.rip = super::entry::user_copy_fault as *const () as u64;
        return;
    }
    crate::error!(
        "KERNEL FAULT: {} (vector {v}, error {:#x}) at rip {:#x}, rsp {:#x}, cr2 {:#x}",
        EXCEPTIONS[v],
        f.error,
        f.rip,
        f.rsp,
        cr2
    );
    backtrace(f.rbp);
    crate::arch::power_off(PANIC_EXIT);
}

/// A formatter into a fixed buffer (no heap in fault paths).
struct Buf<'a>(&'a mut [u8], usize);
impl Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.0.len() - self.1);
        self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
        self.1 += n;
        Ok(())
    }
}

/// Print return addresses by following saved frame pointers, checking each
/// frame is mapped before reading it.
fn backtrace(mut rbp: u64) {
    let (root, _) = Cr3::read();
    // SAFETY: CR3 holds the active top-level table, and the direct map
    // covers all RAM, where every page table is.
    let pt = unsafe { PageTables::from_root(root) };
    // SAFETY: the direct map covers all RAM, including page tables.
    let phys = unsafe { PhysMem::new(DIRECT_MAP as *mut u8) };
    let _ = writeln!(Console, "backtrace:");
    for depth in 0..16 {
        if rbp < DIRECT_MAP || !rbp.is_multiple_of(8) || pt.translate(&phys, VirtAddr::new(rbp)).is_none() {
            break;
        }
        // SAFETY: `rbp` is mapped (checked) and 8-aligned, so the saved
        // frame pointer and return address can be read.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        let _ = writeln!(Console, "  #{depth} {ret:#018x}");
        rbp = next;
    }
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    let _ = writeln!(Console, "KERNEL PANIC: {info}");
    let rbp: u64;
    // SAFETY: reading the frame pointer register has no side effects.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp) };
    backtrace(rbp);
    crate::arch::power_off(PANIC_EXIT);
    super::halt_forever()
}
