//! Entry and exit paths: interrupt stubs, the `syscall` entry, the context
//! switch, and the initial stack frames of new threads.
//!
//! Every interrupt and exception enters through a stub that pushes the
//! vector (and a zero where the CPU pushes no error code), then all general
//! registers, forming a [`TrapFrame`]; the common exit pops them and
//! `iretq`s. `syscall` switches to the thread's kernel stack (never running
//! on the user stack), saves only what the syscall convention needs, and
//! returns with `sysretq`. A thread switch saves the callee-saved registers
//! and the data-segment selectors on the old kernel stack and resumes the
//! new one where it stopped, so a blocked syscall simply continues when its
//! thread runs again, and no program sees another's DS, ES, FS or GS. A
//! thread leaving an IPC call parks instead (`trap::Switch`), in a frame
//! of its `ThreadContext` that resumes at that call's exit: from `Call` or
//! `ReplyWait`, whose exit reloads everything a program sees, only its
//! selectors; from `Send` or `ReplyRecv`, also the callee-saved registers
//! their entry stored. The IPC calls enter through the assembly fast path
//! (`super::fastpath`), which comes back here when it declines.

use core::arch::global_asm;

use x86_64::structures::paging::PageTableFlags as Flags;
use x86_64::VirtAddr;

use crate::kernel::OutOfMemory;
use crate::mem::user::BadAddress;
use crate::mem::{FrameAllocator, PageTables, PhysMem};
use crate::proc::Tid;

use super::cpu::{USER_CS, USER_SS};
use super::KSTACKS;

/// Registers saved on interrupt or exception entry, lowest address first.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Registers saved on `syscall` entry, lowest address first. The dispatcher
/// reads the call from it; results go to the thread's `ret` and from there
/// straight into registers.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct SyscallFrame {
    pub rax: u64,
    /// The token and five arguments: `rdi, rsi, rdx, r10, r8, r9`.
    pub args: [u64; 6],
    pub r11: u64,
    pub rcx: u64,
    pub rsp: u64,
}

// `syscall_entry` pushes exactly these ten registers, in this order.
const _: () = assert!(size_of::<SyscallFrame>() == 10 * 8 && core::mem::offset_of!(SyscallFrame, args) == 8);

/// Distance between interrupt stubs.
pub const STUB_STRIDE: u64 = 16;

/// Exceptions for which the CPU pushes an error code (#DF, #TS, #NP, #SS,
/// #GP, #PF, #AC, #CP, #VC, #SX), one bit per vector. An external
/// interrupt on one of these vectors comes without one.
pub const ERROR_CODE_VECTORS: u64 =
    1 << 8 | 1 << 10 | 1 << 11 | 1 << 12 | 1 << 13 | 1 << 14 | 1 << 17 | 1 << 21 | 1 << 29 | 1 << 30;

extern "C" {
    /// The first of 256 interrupt stubs, 16 bytes apart.
    pub fn isr_stubs();
    pub fn syscall_entry();
    fn interrupt_return();
    /// Save the data-segment selectors and callee-saved registers on the
    /// stack and the stack pointer into `*save`, load `next` as the stack
    /// pointer, restore and return there.
    pub fn switch_context(save: *mut u64, next: u64);
    /// The second half of `switch_context`: load `next` as the stack
    /// pointer, restore (the selectors if they differ from `segs`, the
    /// running thread's) and return there.
    pub fn resume_context(next: u64, segs: u32) -> !;
    /// Where a thread parked in `Call`/`ReplyWait` resumes (its exit).
    fn parked_exit();
    /// Where a thread parked in `Send`/`ReplyRecv` resumes (its exit).
    fn parked_exit_regs();
    fn user_copy_in(dst: *mut u8, src: u64, len: usize) -> u64;
    pub fn user_copy_in_end();
    pub fn user_copy_fault();
    fn smap_site_entry();
    fn smap_site_stac();
    fn smap_site_clac();
    fn smap_site_clac_fault();
}

/// Where the `stac`/`clac` instructions are (3 bytes each), to turn into
/// NOPs on a CPU without SMAP.
pub fn smap_sites() -> [u64; 4] {
    [smap_site_entry as *const () as u64, smap_site_stac as *const () as u64, smap_site_clac as *const () as u64, smap_site_clac_fault as *const () as u64]
}

/// The instructions of the user copy that may fault.
pub fn user_copy_range() -> core::ops::Range<u64> {
    user_copy_in as *const () as u64..user_copy_in_end as *const () as u64
}

/// Copy `len` bytes at user address `va` of the active address space to
/// physical memory at `dst`, through the MMU. The range must lie in user
/// space (checked by the caller, so kernel memory cannot be read this way);
/// an unmapped page ends the copy with an error instead of a fault.
///
/// # Safety
/// `dst..dst + len` must be RAM in `phys`'s window that no reference covers
/// (a receive window's or a client buffer's frame, found through a page
/// table).
pub unsafe fn read_user(phys: &PhysMem, _active: &PageTables, va: u64, dst: x86_64::PhysAddr, len: usize) -> Result<(), BadAddress> {
    // Callers check the whole range; this keeps the one rule that matters
    // here, whatever they do: the copy never reaches above user space.
    if va.checked_add(len as u64).is_none_or(|end| end > abi::USER_TOP) {
        return Err(BadAddress);
    }
    // SAFETY: `dst..dst+len` is memory no reference covers (the caller's
    // contract); the source is user memory, and a fault on it is turned
    // into an error by the page-fault handler.
    match unsafe { user_copy_in(phys.ptr(dst), va, len) } {
        0 => Ok(()),
        _ => Err(BadAddress),
    }
}

/// Where `syscall` parks the user stack pointer while it switches to the
/// running thread's kernel stack, whose top it takes from the TSS
/// (`rsp0`, which the CPU's interrupt entries from user mode take too: one
/// place, written once per thread switch).
#[no_mangle]
static mut SYSCALL_USER_RSP: u64 = 0;

global_asm!(
    r#"
    .section .text.entry, "ax"
    /* 256 stubs of 16 bytes each: stub v is at isr_stubs + 16 * v. */
    .balign 16
    .global isr_stubs
isr_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec < 32) && (({error_code_vectors} >> vec) & 1)
    .else
    push 0
    .endif
    push vec
    jmp interrupt_common
    .set vec, vec + 1
    .endr

interrupt_common:
    /* User code may have set AC (popf); an interrupt gate keeps it, and a
       switch from here would carry it into another thread's kernel code:
       clear it, so SMAP holds in the kernel. */
    .global smap_site_entry
smap_site_entry:
    clac
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call interrupt_dispatch
    test eax, eax
    jnz missing_error_code
    .global interrupt_return
interrupt_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    /* interrupt_dispatch returned 1: an external interrupt arrived on an
       exception vector whose stub expects an error code, and the CPU pushed
       none. Open the missing slot by moving the saved registers and the
       vector down 8 bytes, so the common exit finds the CPU's frame. */
missing_error_code:
    mov rsi, rsp
    sub rsp, 8
    mov rdi, rsp
    mov ecx, 16
    rep movsq
    jmp interrupt_return

    /* Every syscall's way out: the results (rax points at [status, v0,
       v1, v2, v3]) into rax, rsi, rdx, r8, r9, then the user rflags, rip
       and rsp the entry pushed (rsp at them). */
    .macro leave_with_results
    mov rsi, [rax + 8]
    mov rdx, [rax + 16]
    mov r8, [rax + 24]
    mov r9, [rax + 32]
    mov rax, [rax]
    pop r11
    pop rcx
    pop rsp
    sysretq
    .endm

    .global syscall_entry
syscall_entry:
    mov [rip + SYSCALL_USER_RSP], rsp
    mov rsp, [rip + {cpu} + {rsp0}]
    push qword ptr [rip + SYSCALL_USER_RSP]
    push rcx
    push r11
    /* (No cld: SFMASK clears DF on every syscall.) */
    /* The calls of every request (Call or Send, ReplyWait or ReplyRecv)
       go to IPC dispatchers of their own, which try the fast path first
       and take the token and arguments in registers (the C convention's
       rdi, rsi, rdx, rcx, r8, r9: the syscall's with r10 moved to rcx);
       every other call gets the whole frame (`SyscallFrame`) and the
       general dispatcher, through `syscall_table` (one compare and an
       indirect jump for every call; the whole of rax is the number, so a
       number with high bits set is unknown, not its low half's call). */
    cmp rax, {last}
    ja syscall_entry_general
    jmp qword ptr [8 * rax + syscall_table]
    .global syscall_entry_general
syscall_entry_general:
    push r9
    push r8
    push r10
    push rdx
    push rsi
    push rdi
    push rax
    mov rdi, rsp
    call syscall_dispatch
    jmp 5f
    /* Send and ReplyRecv enter at `fastpath_send` and
       `fastpath_reply_recv` (`super::fastpath`), which store rbx, rbp,
       r12-r15 in the running thread's `park_regs` and try the assembly fast
       path; what it declines comes here, with the registers as the program
       passed them. A dispatcher that returns did not switch; one that
       switched parked the thread, which resumes at `parked_exit_regs`. */
    .global syscall_reply_recv_general
syscall_reply_recv_general:
    mov rcx, r10
    call syscall_dispatch_reply_recv
    jmp 12f
    .global syscall_send_general
syscall_send_general:
    mov rcx, r10
    call syscall_dispatch_send
    /* The IPC exit: results (rax points at [status, v0, v1, v2, v3]);
       rdi and r10 zero. */
12:
    add rsp, 8
    xor edi, edi
    xor r10d, r10d
    leave_with_results
    /* The same exit for a thread that parked in Send or ReplyRecv, from
       the top of its stack (its rbx, rbp, r12-r15 are back: restored from
       `park_regs` by `switch_context`, or by the fast path). */
    .global syscall_exit_regs
syscall_exit_regs:
    mov rsp, [rip + {cpu} + {rsp0}]
    sub rsp, 24
    xor edi, edi
    xor r10d, r10d
    leave_with_results
    /* Call and ReplyWait enter at `fastpath_call` and
       `fastpath_reply_wait` (`super::fastpath`), which store the message
       words (r8, r9, rbx, rbp, r12-r15) in the running thread's `mr` and
       try the assembly fast path; what it declines comes here, with the
       registers as the program passed them. On the way out the words
       `words` points at come back in rdi, r10, rbx, rbp, r12-r15 (the
       thread's own, a message delivered there, or one lent by a fast path;
       see `proc::thread::WordsAt`). */
    .global syscall_call_general
syscall_call_general:
    mov rcx, r10
    call syscall_dispatch_call
    jmp syscall_exit_words
    .global syscall_reply_wait_general
syscall_reply_wait_general:
    mov rcx, r10
    call syscall_dispatch_reply_wait
    .global syscall_exit_words
syscall_exit_words:
    /* The stack of the thread that leaves: this one's, or, after a fast
       path switched straight to a parked thread, that thread's (see
       `trap::Switch`); its user rsp, rip and rflags sit at the top. */
    mov rsp, [rip + {cpu} + {rsp0}]
    sub rsp, 24
    mov rcx, [rax + 40]
    /* Tagged LIVE (bit 0): words 2-7 are in the registers already. */
    btr rcx, 0
    mov rdi, [rcx]
    mov r10, [rcx + 8]
    jc 10f
    mov rbx, [rcx + 16]
    mov rbp, [rcx + 24]
    mov r12, [rcx + 32]
    mov r13, [rcx + 40]
    mov r14, [rcx + 48]
    mov r15, [rcx + 56]
10:
    leave_with_results
5:
    /* rax points at [status, v0, v1, v2, v3]; the saved arguments go. */
    add rsp, 56
    xor edi, edi
    xor r10d, r10d
    leave_with_results
    /* Where `switch_context` returns to when it resumes a parked thread
       (see `trap::Switch`): the `Call`/`ReplyWait` exit, for the thread
       now running. */
    .global parked_exit
parked_exit:
    mov rax, [rip + RUNNING]
    jmp syscall_exit_words
    .global parked_exit_regs
parked_exit_regs:
    mov rax, [rip + RUNNING]
    jmp syscall_exit_regs

    /* Copy rdx bytes from user address rsi to kernel address rdi; rax = 0,
       or 1 if the user address faulted (the page-fault handler resumes at
       user_copy_fault). DF is clear: SFMASK clears it on entry. One
       stac/clac pair around the whole copy (SMAP); the iretq after a fault
       brings AC back set, so the fault exit clears it too. */
    .global user_copy_in
user_copy_in:
    .global smap_site_stac
smap_site_stac:
    stac
    mov rcx, rdx
    shr rcx, 3
    rep movsq
    mov rcx, rdx
    and rcx, 7
    rep movsb
    .global user_copy_in_end
user_copy_in_end:
    .global smap_site_clac
smap_site_clac:
    clac
    xor eax, eax
    ret
    .global user_copy_fault
user_copy_fault:
    .global smap_site_clac_fault
smap_site_clac_fault:
    clac
    mov eax, 1
    ret

    /* DS, ES, FS, GS belong to the thread (nothing else resets them
       between programs): they are saved below the callee-saved registers,
       packed as DS | ES << 8 | FS << 16 | GS << 24 (see `read_segs`; 0 when all are null,
       the usual case, which one OR shows), and the next thread's are loaded
       if they differ. */
    .global switch_context
switch_context:
    mov eax, ds
    mov ecx, es
    or eax, ecx
    mov ecx, fs
    or eax, ecx
    mov ecx, gs
    or eax, ecx
    jz 1f
    mov rax, gs
    shl eax, 8
    mov rcx, fs
    or eax, ecx
    shl eax, 8
    mov rcx, es
    or eax, ecx
    shl eax, 8
    mov rcx, ds
    or eax, ecx
1:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rax
    mov [rdi], rsp
    mov rsp, rsi
    pop rcx
    cmp rcx, rax
    jne 3f
2:
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
3:
    movzx edx, cl
    mov ds, edx
    movzx edx, ch
    mov es, edx
    shr ecx, 16
    movzx edx, cl
    mov fs, edx
    movzx edx, ch
    mov gs, edx
    jmp 2b

    /* Where the entry stub goes for each call number up to {last}. */
    .pushsection .rodata.syscall_table, "a"
    .balign 8
    .global syscall_table
syscall_table:
    .set nr, 0
    .rept {last} + 1
    .if nr == {send}
    .quad fastpath_send
    .elseif nr == {reply_recv}
    .quad fastpath_reply_recv
    .elseif nr == {call}
    .quad fastpath_call
    .elseif nr == {reply_wait}
    .quad fastpath_reply_wait
    .else
    .quad syscall_entry_general
    .endif
    .set nr, nr + 1
    .endr
    .popsection

    .global resume_context
resume_context:
    mov rsp, rdi
    mov eax, esi
    pop rcx
    cmp rcx, rax
    jne 3b
    jmp 2b

"#,
    error_code_vectors = const ERROR_CODE_VECTORS,
    send = const abi::Syscall::Send as u32,
    reply_recv = const abi::Syscall::ReplyRecv as u32,
    call = const abi::Syscall::Call as u32,
    reply_wait = const abi::Syscall::ReplyWait as u32,
    last = const LAST_IPC,
    cpu = sym super::cpu::CPU,
    rsp0 = const super::cpu::RSP0_AT,
);

/// The highest call number with a dispatcher of its own (the table's end).
const LAST_IPC: u32 = {
    let n = [abi::Syscall::Send as u32, abi::Syscall::ReplyRecv as u32, abi::Syscall::Call as u32, abi::Syscall::ReplyWait as u32];
    let mut max = 0;
    let mut i = 0;
    while i < n.len() {
        if n[i] > max {
            max = n[i];
        }
        i += 1;
    }
    max
};

/// The data-segment selectors, packed as `switch_context` keeps them:
/// `DS | ES << 8 | FS << 16 | GS << 24` (every selector user code can
/// load is below 256: the GDT has fewer than 32 entries, and there is no
/// LDT), found 0 with one OR in the usual case, all null.
#[inline(always)]
pub fn read_segs() -> u32 {
    let packed: u32;
    // SAFETY: reads segment registers only.
    unsafe {
        core::arch::asm!(
            "mov eax, ds",
            "mov ecx, es",
            "or eax, ecx",
            "mov ecx, fs",
            "or eax, ecx",
            "mov ecx, gs",
            "or eax, ecx",
            "jz 2f",
            "mov rax, gs",
            "shl eax, 8",
            "mov rcx, fs",
            "or eax, ecx",
            "shl eax, 8",
            "mov rcx, es",
            "or eax, ecx",
            "shl eax, 8",
            "mov rcx, ds",
            "or eax, ecx",
            "2:",
            out("eax") packed,
            out("rcx") _,
            options(nomem, nostack),
        );
    }
    packed
}

/// Load the data-segment selectors `packed` (from [`read_segs`]).
///
/// # Safety
/// `packed` must come from `read_segs` in user context (selectors user
/// code could load); the kernel does not depend on DS, ES, FS or GS.
#[inline(always)]
pub unsafe fn load_segs(packed: u32) {
    // SAFETY: the caller's contract.
    unsafe {
        core::arch::asm!(
            "movzx edx, cl",
            "mov ds, edx",
            "movzx edx, ch",
            "mov es, edx",
            "shr ecx, 16",
            "movzx edx, cl",
            "mov fs, edx",
            "movzx edx, ch",
            "mov gs, edx",
            inout("ecx") packed => _,
            out("edx") _,
            options(nomem, nostack),
        );
    }
}

// Every selector fits in 8 bits of the packing (see `read_segs`).
const _: () = assert!(size_of::<x86_64::structures::gdt::GlobalDescriptorTable>() <= 32 * 8);

/// Size of a kernel stack and of the unmapped guard below it.
const KSTACK_SIZE: u64 = 16 * 1024;
const KSTACK_SLOT: u64 = 2 * KSTACK_SIZE;

/// A thread's kernel-side state: its kernel stack and, while it is not
/// running, the stack pointer it stopped at, or that it is parked.
///
/// A *parked* thread (see `trap::Switch`) keeps nothing on its kernel
/// stack but the user `rsp`, `rip` and `rflags` its entry pushed at the
/// top, and resumes at its syscall's exit, which takes its stack from
/// the TSS (`rsp0`); it stopped at one of two frames here, which
/// `switch_context` resumes like any other (selectors, six registers, the
/// address it returns to). Which frame says which exit.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadContext {
    /// Where the thread stopped: on its stack, or one of its park frames.
    pub rsp: u64,
    pub stack_top: u64,
    /// Parked in `Call` or `ReplyWait`: its selectors, six registers
    /// (junk: the exit loads all six from the message words) and
    /// `parked_exit`.
    pub park: [u64; 8],
    /// Parked in `Send` or `ReplyRecv`: its selectors, its `r15, r14, r13,
    /// r12, rbx, rbp` (stored by every `Send`/`ReplyRecv` entry, since
    /// those calls keep them for the program) and `parked_exit_regs`.
    pub park_regs: [u64; 8],
}

/// Where the exit is in a park frame (after the selectors and six
/// registers).
pub const PARK_EXIT: usize = 7;

/// How a thread parks (see [`ThreadContext`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Park {
    /// In `Call` or `ReplyWait`: at `park`.
    Words,
    /// In `Send` or `ReplyRecv`: at `park_regs`.
    Regs,
}

impl ThreadContext {
    /// Whether the thread is parked at `kind`'s frame.
    #[inline(always)]
    pub fn parked(&self, kind: Park) -> bool {
        self.rsp == self.frame(kind) as u64
    }

    fn frame(&self, kind: Park) -> *const u64 {
        match kind {
            Park::Words => self.park.as_ptr(),
            Park::Regs => self.park_regs.as_ptr(),
        }
    }

    /// Park the thread at `kind`'s frame (its selectors then written by
    /// [`Self::park_frame`]); returns the frame.
    #[inline(always)]
    pub fn set_parked(&mut self, kind: Park) -> *mut u64 {
        let frame = match kind {
            Park::Words => self.park.as_mut_ptr(),
            Park::Regs => self.park_regs.as_mut_ptr(),
        };
        self.rsp = frame as u64;
        frame
    }

    /// Fill a parked thread's frame: `frame` is its `park` or `park_regs`,
    /// `segs` its selectors (from [`read_segs`]). (The exits are written
    /// once, by `prepare_user`; the registers of `park_regs` by the entry.)
    ///
    /// # Safety
    /// `frame` points at a park frame in the thread table, and no reference
    /// to it is live.
    #[inline(always)]
    pub unsafe fn park_frame(frame: *mut u64, segs: u32) {
        // SAFETY: the caller's contract.
        unsafe { frame.write(segs as u64) };
    }

    /// Give the thread slot its kernel stack (once; slots keep theirs).
    fn ensure_stack(&mut self, tid: Tid, phys: &PhysMem, frames: &mut FrameAllocator, kernel: &mut PageTables) -> Result<(), OutOfMemory> {
        if self.stack_top != 0 {
            return Ok(());
        }
        let base = KSTACKS + tid as u64 * KSTACK_SLOT + (KSTACK_SLOT - KSTACK_SIZE);
        let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_EXECUTE | Flags::GLOBAL;
        let mut va = base;
        while va < base + KSTACK_SIZE {
            let mapped = frames.alloc().ok_or(OutOfMemory).and_then(|f| {
                kernel.map(phys, frames, VirtAddr::new(va), f, flags).map_err(|_| {
                    let _ = frames.free(f);
                    OutOfMemory
                })
            });
            if let Err(e) = mapped {
                // Give back what this attempt mapped, so the slot stays clean
                // for the next one.
                let mut undo = base;
                while undo < va {
                    if let Some((f, _)) = kernel.unmap(phys, VirtAddr::new(undo)) {
                        let _ = frames.free(f);
                    }
                    undo += 4096;
                }
                return Err(e);
            }
            va += 4096;
        }
        self.stack_top = base + KSTACK_SIZE;
        Ok(())
    }
}

impl crate::arch::UserThread for ThreadContext {
    /// Prepare the thread to enter user mode at `entry` with stack `stack`
    /// and `rdi`, `rsi` = `args` the first time it is switched to.
    fn prepare_user(
        &mut self,
        tid: Tid,
        phys: &PhysMem,
        frames: &mut FrameAllocator,
        kernel: &mut PageTables,
        entry: u64,
        stack: u64,
        args: [u64; 2],
    ) -> Result<(), OutOfMemory> {
        self.ensure_stack(tid, phys, frames, kernel)?;
        let frame = TrapFrame {
            rip: entry,
            cs: USER_CS as u64,
            rflags: 0x202, // IF set
            rsp: stack,
            ss: USER_SS as u64,
            rdi: args[0],
            rsi: args[1],
            ..TrapFrame::default()
        };
        let frame_at = self.stack_top - core::mem::size_of::<TrapFrame>() as u64;
        // The switch frame below it: the data-segment selectors (0: null,
        // not those of the slot's previous thread), six callee-saved
        // registers, then the address `switch_context` returns to.
        let switch_at = frame_at - 8 * 8;
        // SAFETY: the stack belongs to this thread slot, which is not running
        // (the kernel never prepares the running thread), and is mapped in
        // the shared kernel half of every address space.
        unsafe {
            (frame_at as *mut TrapFrame).write(frame);
            for i in 0..7 {
                ((switch_at + i * 8) as *mut u64).write(0);
            }
            ((switch_at + 56) as *mut u64).write(interrupt_return as *const () as u64);
        }
        self.rsp = switch_at;
        // Where each park frame resumes (see `ThreadContext`).
        self.park[PARK_EXIT] = parked_exit as *const () as u64;
        self.park_regs[PARK_EXIT] = parked_exit_regs as *const () as u64;
        Ok(())
    }
}
