//! The IPC fast path, in assembly: `Call` to a server waiting in
//! `ReplyWait` and `ReplyWait` answering it (in registers), `Send` to a
//! server waiting in `ReplyRecv` and `ReplyRecv` answering it (no bytes, a
//! page lent, or a copy within one page each way), each going on to the
//! other side at once.
//!
//! Why assembly: this is the round trip every client and server makes,
//! and the Rust fast path (`ipc::fast`), however it is arranged, pays for
//! being a function inside a general dispatcher: its frame and spills,
//! the kernel cell's scope, the `Switch` record, base pointers reloaded
//! after every store (about 230 instructions a direction). Here the entry
//! stub goes straight on: the checks read the thread table, the channel,
//! the scheduler's mask and the threads' page-table caches through fixed
//! offsets, and the switch is a handful of stores, since both threads are
//! *parked* (see `trap::Switch`): the caller parks, and the exit leaves as
//! the other thread. The scratch registers are enough; nothing is saved
//! but what the calls keep for the program (`Send`/`ReplyRecv`'s
//! callee-saved registers, stored at entry for any path that parks).
//!
//! It is the Rust fast path's exact twin for the cases it takes, and
//! declines everything else *before changing anything*, jumping to the
//! Rust dispatchers (`syscall_call_general`, ...) with the program's
//! registers as they came: the Rust fast path and the general path, which
//! host tests hold to the same results, then decide. What it declines on
//! top of the Rust fast path's conditions: a peer that is not parked (at
//! the frame of its kind), a receiver with a timeout armed, any data
//! segment selector that is not null (either side's), a page-table entry
//! it needs that is not in its thread's cache, a copy that crosses a page
//! or stays in one process, and a loan into a space tagged with a PCID
//! (whose flush while not loaded is the Rust path's).
//!
//! Every field offset, size and constant is taken from the Rust
//! definitions (`offset_of!`, `size_of`, the `abi` constants) as `const`
//! operands, so the two cannot disagree about a layout.
//!
//! The kernel is reached without `with_kernel`'s scope: a syscall enters
//! from user mode, where no scope is ever open, and interrupts are off
//! (SFMASK) until `sysretq`, so nothing else runs meanwhile.

use core::arch::global_asm;
use core::mem::{offset_of, size_of};

use abi::call::{MsgWords, CALLED, IN_REGISTERS, MSG_WORDS, REG_MESSAGE};
use abi::{ChannelRights, SendFlags};
use x86_64::structures::paging::PageTableFlags as Flags;

use crate::global::KernelCell;
use crate::ipc::channel::{Channel, ChannelTable, NO_CHANNEL};
use crate::kernel::Kernel;
use crate::mem::paging::sw;
use crate::proc::thread::{Message, WordsAt};
use crate::proc::{Queue, State, Thread, NO_THREAD};
use crate::sched::{Scheduler, SLICE_TICKS};

use super::cpu::{CPU, RSP0_AT};
use super::KERNEL;

/// The words a message of no bytes leaves in the receiver's registers.
static ZERO_WORDS: MsgWords = [0; MSG_WORDS];

/// Offsets in the kernel static of the fields the fast path uses.
const fn kernel_at(field: usize) -> usize {
    KernelCell::<Kernel>::VALUE_AT + field
}

const _: () = assert!(size_of::<State>() == 1 && size_of::<WordsAt>() == 8 && WordsAt::LIVE == 1);
const _: () = assert!(REG_MESSAGE == 64 && MSG_WORDS == 8);

global_asm!(
    r#"
    .section .text.entry, "ax"

    /* Register use: rax holds the running thread's `ret` from the entry to
       the switch (RUNNING holds it; the thread's other fields are
       addressed from there), r11 is scratch throughout, and rdi once the
       hint matched (the token is the hint's, so a decline restores it). */

    /* `Call` and `ReplyWait`: the thread's words pointer goes back to its
       own `mr`, where the eight message words go. */
    .macro fastpath_store_words
    sub rsp, 8
    mov rax, [rip + RUNNING]
    lea r11, [rax + {t_mr} - {t_ret}]
    mov [rax + {t_words} - {t_ret}], r11
    mov [r11], r8
    mov [r11 + 8], r9
    mov [r11 + 16], rbx
    mov [r11 + 24], rbp
    mov [r11 + 32], r12
    mov [r11 + 40], r13
    mov [r11 + 48], r14
    mov [r11 + 56], r15
    .endm

    /* `Send` and `ReplyRecv`: rbx, rbp, r12-r15 go to the thread's
       `park_regs` (in `switch_context`'s order), from where it resumes
       them if it parks; \stash (the argument the fast path does not need
       in a register) takes the stack slot that aligns the stack. */
    .macro fastpath_store_regs stash
    push \stash
    mov rax, [rip + RUNNING]
    mov [rax + {t_park_regs} - {t_ret} + 8], r15
    mov [rax + {t_park_regs} - {t_ret} + 16], r14
    mov [rax + {t_park_regs} - {t_ret} + 24], r13
    mov [rax + {t_park_regs} - {t_ret} + 32], r12
    mov [rax + {t_park_regs} - {t_ret} + 40], rbx
    mov [rax + {t_park_regs} - {t_ret} + 48], rbp
    .endm

    /* The thread's hint answers for token rdi with right \right, else to
       \fail. (While IPC tracing is on no hint holds: turning it on moves
       the epoch, and only the Rust fast path, which traces nothing, fills
       hints. So this is also the tracing check.) */
    .macro fastpath_hint right, fail
    cmp rdi, [rax + {t_hint_token} - {t_ret}]
    jne \fail
    mov r11, [rip + {epoch}]
    cmp r11, [rax + {t_hint_epoch} - {t_ret}]
    jne \fail
    test byte ptr [rax + {t_hint_rights} - {t_ret}], \right
    jz \fail
    .endm

    /* The hint's channel into \reg. */
    .macro fastpath_channel reg, reg32
    movzx \reg32, word ptr [rax + {t_hint_chan} - {t_ret}]
    imul \reg, \reg, {chan_size}
    add \reg, [rip + {kernel} + {k_channels}]
    .endm

    /* The running thread's data-segment selectors are all null (leaves
       edi = 0), else to \fail. */
    .macro fastpath_null_segs fail
    mov edi, ds
    mov r11d, es
    or edi, r11d
    mov r11d, fs
    or edi, r11d
    mov r11d, gs
    or edi, r11d
    jnz \fail
    .endm

    /* The first receiver of the channel at rcx (tid \tid, thread \ptr):
       parked at \frame with null selectors, untimed, at its own priority,
       at least ours, nothing ready more urgent; its process holds no
       unanswered message. Else to \fail. Clobbers rdi. */
    .macro fastpath_receiver tid, tid32, ptr, frame, fail
    movzx \tid32, byte ptr [rcx + {c_recv_head}]
    cmp \tid32, {no_thread}
    je \fail
    imul \ptr, \tid, {thread_size}
    add \ptr, [rip + {kernel} + {k_threads}]
    lea r11, [\ptr + \frame]
    cmp r11, [\ptr + {t_rsp}]
    jne \fail
    cmp qword ptr [\ptr + \frame], 0
    jne \fail
    cmp qword ptr [\ptr + {t_deadline}], -1
    jne \fail
    movzx r11d, byte ptr [\ptr + {t_prio}]
    cmp r11b, [rax + {t_prio} - {t_ret}]
    jb \fail
    bsr edi, dword ptr [rip + {kernel} + {k_nonempty}]
    jz 1f
    cmp edi, r11d
    ja \fail
1:
    movzx edi, byte ptr [\ptr + {t_process}]
    cmp word ptr [{kernel} + {k_unanswered} + rdi * 2], 0
    jne \fail
    .endm

    /* Commit: the receiver \ptr, head of the channel at rcx, takes the
       message: its process holds one, the sender's record names it, it
       leaves the queue, and the counters count it. */
    .macro fastpath_take ptr
    movzx r11d, byte ptr [\ptr + {t_process}]
    mov word ptr [{kernel} + {k_unanswered} + r11 * 2], 1
    movzx r11d, byte ptr [rcx + {c_recv_head}]
    mov [rax + {m_server} - {t_ret}], r11b
    movzx r11d, byte ptr [\ptr + {t_next}]
    mov [rcx + {c_recv_head}], r11b
    cmp r11d, {no_thread}
    je 7f
    imul r11, r11, {thread_size}
    add r11, [rip + {kernel} + {k_threads}]
    mov byte ptr [r11 + {t_prev}], {no_thread}
    jmp 8f
7:
    mov byte ptr [rcx + {c_recv_tail}], {no_thread}
8:
    mov byte ptr [\ptr + {t_next}], {no_thread}
    dec word ptr [rcx + {c_recv_len}]
    inc qword ptr [rcx + {c_sends}]
    inc qword ptr [rcx + {c_receives}]
    inc word ptr [rcx + {c_in_flight}]
    inc qword ptr [rip + {kernel} + {k_in_flight}]
    inc qword ptr [rip + {kernel} + {k_delivered}]
    .endm

    /* Commit: the sender's message record (size edx, received at \ptr's
       window), and it waits for the reply; leaves its cookie in r11 (its
       tid in \cur). \tag goes first, so it may be r11. */
    .macro fastpath_record ptr, tag, buf, loan, lent, flags, regs, cur, cur8
    mov [rax + {m_tag} - {t_ret}], \tag
    mov [rax + {m_buf} - {t_ret}], \buf
    mov [rax + {m_loan_pte} - {t_ret}], \loan
    mov qword ptr [rax + {m_xfer_token} - {t_ret}], 0
    mov [rax + {m_size} - {t_ret}], edx
    mov byte ptr [rax + {m_xfer_rights} - {t_ret}], 0
    mov byte ptr [rax + {m_lent} - {t_ret}], \lent
    mov byte ptr [rax + {m_flags} - {t_ret}], \flags
    mov byte ptr [rax + {m_displaced} - {t_ret}], 0
    mov byte ptr [rax + {m_regs} - {t_ret}], \regs
    mov byte ptr [rax + {t_state} - {t_ret}], {awaiting_reply}
    mov r11, [\ptr + {t_recv_buf}]
    mov [rax + {m_recv_va} - {t_ret}], r11
    movzx r11d, word ptr [rax + {t_hint_chan} - {t_ret}]
    mov [rax + {m_chan} - {t_ret}], r11w
    mov r11d, [rax + {m_seq} - {t_ret}]
    inc r11d
    mov [rax + {m_seq} - {t_ret}], r11d
    shl r11, {cookie_seq_shift}
    movzx \cur, byte ptr [rip + RUNNING + 8]
    or r11, \cur
    bts r11, {cookie_mark_bit}
    /* The receiver runs on the sender's time slice. */
    mov [rip + {kernel} + {k_on_behalf}], \cur8
    .endm

    /* Commit: the receiver \ptr's results [0, cookie (r11), \tag, \size,
       0]. */
    .macro fastpath_delivered ptr, tag, size
    mov qword ptr [\ptr + {t_ret}], 0
    mov [\ptr + {t_ret} + 8], r11
    mov [\ptr + {t_ret} + 16], \tag
    mov [\ptr + {t_ret} + 24], \size
    mov qword ptr [\ptr + {t_ret} + 32], 0
    .endm

    /* An answer, then a wait at the page of \window: a user page; the
       hint's channel (into \chan) has no sender and no interrupt waiting.
       Else to \fail (or \fail_hint once the hint matched). */
    .macro fastpath_answer_guards window, chan, chan32, scratch, fail, fail_hint
    mov r11, \window
    and r11, -{page}
    sub r11, {user_bottom}
    mov \scratch, {window_room}
    cmp r11, \scratch
    ja \fail
    fastpath_hint {receive}, \fail
    fastpath_channel \chan, \chan32
    cmp word ptr [\chan + {c_send_len}], 0
    jne \fail_hint
    cmp word ptr [\chan + {c_irq_pending}], 0
    jne \fail_hint
    .endm

    /* The cookie in rsi names a thread (r9) waiting for the reply to its
       message (exactly its current cookie: no junk bits) from us, no
       shorter than \len, sent with `Call` (\regs 1) or `Send` (0); it is
       parked at \frame with null selectors. We were not boosted, and
       nothing ready is more urgent than the client, nor as urgent if its
       slice is spent. Else to \fail. Clobbers rdi. */
    .macro fastpath_client len, regs, frame, fail
    movzx r9d, sil
    cmp r9d, {no_thread}
    je \fail
    imul r9, r9, {thread_size}
    add r9, [rip + {kernel} + {k_threads}]
    mov edi, [r9 + {m_seq}]
    shl rdi, {cookie_seq_shift}
    or dil, sil
    bts rdi, {cookie_mark_bit}
    cmp rdi, rsi
    jne \fail
    cmp byte ptr [r9 + {t_state}], {awaiting_reply}
    jne \fail
    movzx edi, byte ptr [rip + RUNNING + 8]
    cmp dil, [r9 + {m_server}]
    jne \fail
    mov edi, [r9 + {m_size}]
    cmp \len, rdi
    ja \fail
    cmp byte ptr [r9 + {m_displaced}], 0
    jne \fail
    cmp byte ptr [r9 + {m_regs}], \regs
    jne \fail
    lea r11, [r9 + \frame]
    cmp r11, [r9 + {t_rsp}]
    jne \fail
    cmp qword ptr [r9 + \frame], 0
    jne \fail
    movzx r11d, byte ptr [rax + {t_prio} - {t_ret}]
    cmp r11b, [rax + {t_base_prio} - {t_ret}]
    jne \fail
    bsr r11d, dword ptr [rip + {kernel} + {k_nonempty}]
    jz 1f
    cmp r11b, [r9 + {t_prio}]
    ja \fail
    jb 1f
    cmp dword ptr [r9 + {t_slice}], 0
    je \fail
1:
    .endm

    /* Commit: the client r9's results [0, \result, 0, \len, 0], its
       message answered (counters, our process's count). */
    .macro fastpath_answered result, len
    mov qword ptr [r9 + {t_ret}], 0
    mov [r9 + {t_ret} + 8], \result
    mov qword ptr [r9 + {t_ret} + 16], 0
    mov [r9 + {t_ret} + 24], \len
    mov qword ptr [r9 + {t_ret} + 32], 0
    mov byte ptr [r9 + {m_server}], {no_thread}
    movzx r11d, word ptr [r9 + {m_chan}]
    cmp r11d, {no_channel}
    je 1f
    imul r11, r11, {chan_size}
    add r11, [rip + {kernel} + {k_channels}]
    inc qword ptr [r11 + {c_replies}]
    dec word ptr [r11 + {c_in_flight}]
1:
    dec qword ptr [rip + {kernel} + {k_in_flight}]
    movzx r11d, byte ptr [rax + {t_process} - {t_ret}]
    dec word ptr [{kernel} + {k_unanswered} + r11 * 2]
    .endm

    /* Commit: we wait on the channel at \chan again, last of its
       receivers, at window \window (`recv_regs` \regs); no one is more
       urgent. Clobbers rdi. */
    .macro fastpath_wait chan, window, regs
    mov [rax + {t_recv_buf} - {t_ret}], \window
    mov byte ptr [rax + {t_recv_regs} - {t_ret}], \regs
    mov byte ptr [rax + {t_state} - {t_ret}], {recv_blocked}
    movzx r11d, word ptr [rax + {t_hint_chan} - {t_ret}]
    mov [rax + {t_wait_obj} - {t_ret}], r11w
    movzx edi, byte ptr [rip + RUNNING + 8]
    movzx r11d, byte ptr [\chan + {c_recv_tail}]
    mov [rax + {t_prev} - {t_ret}], r11b
    mov byte ptr [rax + {t_next} - {t_ret}], {no_thread}
    cmp r11d, {no_thread}
    jne 2f
    mov [\chan + {c_recv_head}], dil
    jmp 3f
2:
    imul r11, r11, {thread_size}
    add r11, [rip + {kernel} + {k_threads}]
    mov [r11 + {t_next}], dil
3:
    mov [\chan + {c_recv_tail}], dil
    inc word ptr [\chan + {c_recv_len}]
    mov byte ptr [rip + {kernel} + {k_on_behalf}], {no_thread}
    .endm

    /* Commit: the words r9 leaves with: a whole message is lent from our
       `mr` with words 2-7 live in registers, none is the zero words,
       anything else is copied with the rest cleared. Length in \len (a
       32-bit register); keeps every register but r11. */
    .macro fastpath_words len
    cmp \len, {reg_message}
    jne 3f
    lea r11, [rax + {t_mr} - {t_ret} + {live}]
    mov [r9 + {t_words}], r11
    jmp 5f
3:
    test \len, \len
    jnz 4f
    lea r11, [rip + {zero_words}]
    mov [r9 + {t_words}], r11
    jmp 5f
4:
    push rsi
    push rdi
    push rcx
    mov ecx, \len
    lea rsi, [rax + {t_mr} - {t_ret}]
    lea rdi, [r9 + {t_mr}]
    mov [r9 + {t_words}], rdi
    call fastpath_some_words
    pop rcx
    pop rdi
    pop rsi
5:
    .endm

    /* The thread at \next (tid in the byte register \tid) runs: its
       state, slice, space, kernel stack, and RUNNING (rax = its `ret`).
       Clobbers r11. */
    .macro fastpath_run next, tid
    mov byte ptr [\next + {t_state}], {running}
    cmp dword ptr [\next + {t_slice}], 0
    jne 1f
    mov dword ptr [\next + {t_slice}], {slice}
1:
    mov [rip + {kernel} + {k_current}], \tid
    mov r11, [\next + {t_root}]
    cmp r11, [rip + {kernel} + {k_active_root}]
    je 2f
    mov [rip + {kernel} + {k_active_root}], r11
    mov cr3, r11
2:
    mov r11, [\next + {t_stack_top}]
    mov [rip + {cpu} + {rsp0}], r11
    lea rax, [\next + {t_ret}]
    mov [rip + RUNNING], rax
    mov [rip + RUNNING + 8], \tid
    .endm

    /* The running thread parks at \frame with null selectors, and the
       thread at \next (tid \tid), parked at its own, runs. */
    .macro fastpath_switch frame, next, tid
    lea r11, [rax + \frame - {t_ret}]
    mov [rax + {t_rsp} - {t_ret}], r11
    mov qword ptr [r11], 0
    fastpath_run \next, \tid
    .endm

    /* The page-table entry in \pte has every bit of \flags (within the
       low 32), else to \fail; \scratch is clobbered. */
    .macro fastpath_has pte, flags, scratch, scratch32, fail
    mov \scratch, \pte
    not \scratch
    test \scratch32, \flags
    jnz \fail
    .endm

    /* The entry in \pte maps RAM (one of the `sw::RAM` bits), else to
       \fail; \scratch is clobbered. */
    .macro fastpath_ram pte, scratch, fail
    mov \scratch, {ram}
    test \pte, \scratch
    jz \fail
    .endm

    /* The frame address of the entry in \reg (bits 12-51), in place. */
    .macro fastpath_frame reg
    shl \reg, 12
    shr \reg, 24
    shl \reg, 12
    .endm

    /* Copy \len bytes from user address \src (our space is loaded) to
       kernel address rdi, else to \fail (the page-fault fixup of
       `user_copy_in`); keeps every register but rdi, r11. */
    .macro fastpath_copy src, len, fail
    push rax
    push rcx
    push rsi
    .ifnc \len, rdx
    push rdx
    mov rdx, \len
    .endif
    mov rsi, \src
    call user_copy_in
    mov r11d, eax
    .ifnc \len, rdx
    pop rdx
    .endif
    pop rsi
    pop rcx
    pop rax
    test r11d, r11d
    jnz \fail
    .endm

    /* `Call`: token rdi, tag rsi, size rdx, timeout r10 (ignored: the
       receiver waits), words 0-1 in r8, r9, 2-7 in rbx, rbp, r12-r15. To
       a receiver waiting in `ReplyWait` (rcx the channel, r8 its tid, r9
       its thread). */
    .global fastpath_call
fastpath_call:
    fastpath_store_words
fastpath_call_guards:
    cmp rdx, {reg_message}
    ja 90f
    fastpath_hint {send}, 90f
    fastpath_channel rcx, ecx
    fastpath_receiver r8, r8d, r9, {t_park}, 91f
    cmp byte ptr [r9 + {t_recv_regs}], 0
    je 91f
    fastpath_null_segs 91f
fastpath_call_commit:
    fastpath_take r9
    fastpath_record r9, rsi, rdi, rdi, 0, 0, 1, r10, r10b
    mov rdi, {in_registers_called}
    or rdi, rdx
    fastpath_delivered r9, rsi, rdi
    fastpath_words edx
fastpath_call_switch:
    fastpath_switch {t_park}, r9, r8b
    jmp syscall_exit_words

    /* `ReplyWait`: token rdi, cookie rsi, result rdx, window | length |
       poll r10, words 0-1 in r8, r9, 2-7 in rbx, rbp, r12-r15. A reply of
       at most 64 bytes (ecx), no poll, a window in user space; a channel
       (r8) with no sender and no interrupt waiting; the client (r9). */
    .global fastpath_reply_wait
fastpath_reply_wait:
    fastpath_store_words
fastpath_reply_wait_guards:
    test r10, r10
    js 92f
    mov ecx, r10d
    and ecx, {page} - 1
    cmp ecx, {reg_message}
    ja 92f
    fastpath_answer_guards r10, r8, r8d, r8, 92f, 93f
    fastpath_client rcx, 1, {t_park}, 93f
    fastpath_null_segs 93f
fastpath_reply_wait_commit:
    fastpath_answered rdx, rcx
    and r10, -{page}
    fastpath_wait r8, r10, 1
    fastpath_words ecx
    movzx ecx, sil
fastpath_reply_wait_switch:
    fastpath_switch {t_park}, r9, cl
    jmp syscall_exit_words

    /* `Send`: token rdi, tag rsi (stashed), size rdx, buf r10, timeout r8
       (stashed: ignored, the receiver waits), flags r9. Takes a message
       of no bytes, a page-aligned page lent, and a copy from a buffer
       within one page to a receiver in another process, waiting in
       `ReplyRecv` (rcx the channel, rsi the receiver). */
    .global fastpath_send
fastpath_send:
    fastpath_store_regs r8
    push rsi
fastpath_send_guards:
    test r9, {send_flags_unknown}
    jnz 94f
    /* r8: 0 for no bytes, 1 to lend, 2 to copy. Every range inside user
       space (`check_range`); a page lent is aligned and writable (not
       read-only); a copy comes from within one page. */
    xor r8d, r8d
    mov r11, {user_top}
    cmp r10, r11
    ja 94f
    test rdx, rdx
    jz 2f
    cmp r10, {user_bottom}
    jb 94f
    lea rsi, [r10 + rdx]
    cmp rsi, r11
    ja 94f
    mov r8d, 2
    mov esi, r10d
    and esi, {page} - 1
    add rsi, rdx
    cmp rsi, {page}
    ja 94f
    cmp rdx, {page}
    jne 2f
    test r10, {page} - 1
    jnz 2f
    test r9, {read_only}
    jnz 2f
    mov r8d, 1
2:
    fastpath_hint {send}, 94f
    fastpath_channel rcx, ecx
    fastpath_receiver rdi, edi, rsi, {t_park_regs}, 95f
    fastpath_null_segs 95f
    /* The receiver's window entry (rdi), through its window cache: not
       holding a lent page (`Busy` is the Rust path's answer). */
    mov r11, [rsi + {t_recv_buf}]
    cmp r11, [rsi + {t_window_page}]
    jne 95f
    mov rdi, [rsi + {t_window_at}]
    mov r11, {direct_map}
    mov rdi, [r11 + rdi]
    bt rdi, {loan_bit}
    jc 95f
    test r8d, r8d
    jz 4f
    cmp r8d, 1
    je 9f
    /* A copy: into the window's frame (writable user RAM) from the
       sender's buffer (user RAM, through its buffer cache), read through
       the MMU (the sender's space is loaded); a fault in it is the Rust
       path's to report (it finds the window written, as after its own
       failed copy). */
    fastpath_has rdi, {own_writable}, r8, r8d, 95f
    fastpath_ram rdi, r8, 95f
    movzx r8d, byte ptr [rsi + {t_process}]
    cmp r8b, [rax + {t_process} - {t_ret}]
    je 95f
    mov r8, r10
    and r8, -{page}
    cmp r8, [rax + {t_buffer_page} - {t_ret}]
    jne 95f
    mov r8, [rax + {t_buffer_at} - {t_ret}]
    mov r8, [r11 + r8]
    fastpath_has r8, {user_present}, r11, r11d, 95f
    fastpath_ram r8, r11, 95f
    fastpath_frame rdi
    mov r8, {direct_map}
    add rdi, r8
    fastpath_copy r10, rdx, 95f
    jmp 4f
9:
    /* A lent page: the sender's entry for it (r8, through its buffer
       cache) is its own writable user RAM, not lent, not the window's
       frame; the receiver's space is untagged (a tagged one needs the
       flush of a space not loaded: the Rust path's). */
    cmp r10, [rax + {t_buffer_page} - {t_ret}]
    jne 95f
    mov r8, [rax + {t_buffer_at} - {t_ret}]
    mov r8, [r11 + r8]
    fastpath_has r8, {own_writable}, r11, r11d, 95f
    test r8, {lendable}
    jz 95f
    bt r8, {loan_bit}
    jc 95f
    mov r11, r8
    xor r11, rdi
    shl r11, 12
    shr r11, 24
    jz 95f
    cmp qword ptr [rsi + {t_root}], 0
    jl 95f
fastpath_send_lend:
    /* Nothing fails from here on. The window maps the sender's frame
       (user, writable, no-execute, lent) and the sender's entry is hidden
       (send isolation), each page dropped from the TLB where it may be:
       the sender's space is the loaded one; the receiver's is loaded at
       the switch (which drops its entries), unless it is the same. */
    mov rdx, {direct_map}
    add rdx, [rsi + {t_window_at}]
    mov r11, r8
    fastpath_frame r11
    or r11, {loan_entry_low}
    bts r11, 63
    mov [rdx], r11
    mov rdx, {direct_map}
    add rdx, [rax + {t_buffer_at} - {t_ret}]
    btr r8, 0
    mov [rdx], r8
    invlpg [r10]
    mov r11, [rsi + {t_root}]
    cmp r11, [rip + {kernel} + {k_active_root}]
    jne 5f
    mov r11, [rsi + {t_recv_buf}]
    invlpg [r11]
5:
    mov edx, {page}
    mov r8d, 1
    jmp 6f
fastpath_send_commit:
4:
    /* No bytes, or copied: no window entry to put back, nothing lent. */
    xor edi, edi
    xor r8d, r8d
6:
    fastpath_take rsi
    mov r11, [rsp]
    fastpath_record rsi, r11, r10, rdi, r8b, r9b, 0, r8, r8b
    mov rdi, [rsp]
    fastpath_delivered rsi, rdi, rdx
    movzx ecx, byte ptr [rax + {m_server} - {t_ret}]
fastpath_send_switch:
    fastpath_switch {t_park_regs}, rsi, cl
    jmp fastpath_exit_regs

    /* `ReplyRecv`: token rdi, cookie rsi, result rdx, reply length r10,
       window r8, timeout r9 (stashed: it must be forever). Takes a reply
       with nothing to move (no bytes, a read-only send, or a lent page
       answered in place), and one copied from the message's window to a
       client buffer within one page, in another process. The channel
       (rcx) has no sender and no interrupt waiting; the client (r9). */
    .global fastpath_reply_recv
fastpath_reply_recv:
    fastpath_store_regs r9
fastpath_reply_recv_guards:
    cmp r9, -1
    jne 96f
    test r8, {page} - 1
    jnz 96f
    fastpath_answer_guards r8, rcx, ecx, r9, 96f, 97f
    fastpath_client r10, 0, {t_park_regs}, 97f
    /* The reply's bytes: nothing to move, or a copy (below), and a lent
       page's two entries at hand in the caches: ours for the window, the
       client's for its buffer. */
    test r10, r10
    jz 2f
    test byte ptr [r9 + {m_flags}], {read_only}
    jnz 2f
    cmp byte ptr [r9 + {m_lent}], 0
    jne 2f
    /* A copy back: into the client's buffer (writable user RAM within one
       page, through its buffer cache) from the message's window, read
       through the MMU (our space is loaded); a fault in it is the Rust
       path's to report. */
    movzx r11d, byte ptr [r9 + {t_process}]
    cmp r11b, [rax + {t_process} - {t_ret}]
    je 97f
    mov r11, [r9 + {m_buf}]
    mov edi, r11d
    and edi, {page} - 1
    add rdi, r10
    cmp rdi, {page}
    ja 97f
    and r11, -{page}
    cmp r11, [r9 + {t_buffer_page}]
    jne 97f
    mov r11, [r9 + {t_buffer_at}]
    mov rdi, {direct_map}
    mov r11, [rdi + r11]
    fastpath_has r11, {own_writable}, rdi, edi, 97f
    fastpath_ram r11, rdi, 97f
    fastpath_frame r11
    mov rdi, [r9 + {m_buf}]
    and edi, {page} - 1
    add rdi, r11
    mov r11, {direct_map}
    add rdi, r11
    fastpath_copy [r9 + {m_recv_va}], r10, 97f
2:
    cmp byte ptr [r9 + {m_lent}], 0
    je 3f
    mov r11, [r9 + {m_recv_va}]
    cmp r11, [rax + {t_window_page} - {t_ret}]
    jne 97f
    mov r11, [r9 + {m_buf}]
    cmp r11, [r9 + {t_buffer_page}]
    jne 97f
3:
    fastpath_null_segs 97f
fastpath_reply_recv_commit:
    /* Nothing fails from here on. A lent page goes back: the window's own
       entry returns (the page dropped from our TLB), the client's entry
       is present again (a not-present entry is never cached). */
    cmp byte ptr [r9 + {m_lent}], 0
    je 4f
    mov r11, {direct_map}
    add r11, [rax + {t_window_at} - {t_ret}]
    mov rdi, [r9 + {m_loan_pte}]
    mov [r11], rdi
    mov rdi, [r9 + {m_recv_va}]
    invlpg [rdi]
    mov r11, {direct_map}
    add r11, [r9 + {t_buffer_at}]
    or qword ptr [r11], 1
    mov byte ptr [r9 + {m_lent}], 0
4:
    /* What the client learns came back: nothing after a read-only send. */
    test byte ptr [r9 + {m_flags}], {read_only}
    jz 5f
    xor r10d, r10d
5:
    fastpath_answered rdx, r10
    fastpath_wait rcx, r8, 0
    movzx ecx, sil
fastpath_reply_recv_switch:
    fastpath_switch {t_park_regs}, r9, cl

    /* Leave as the thread at rax's `ret`, parked in `Send`/`ReplyRecv`:
       its registers back from its frame, then its exit. */
fastpath_exit_regs:
    mov r15, [rax + {t_park_regs} - {t_ret} + 8]
    mov r14, [rax + {t_park_regs} - {t_ret} + 16]
    mov r13, [rax + {t_park_regs} - {t_ret} + 24]
    mov r12, [rax + {t_park_regs} - {t_ret} + 32]
    mov rbx, [rax + {t_park_regs} - {t_ret} + 40]
    mov rbp, [rax + {t_park_regs} - {t_ret} + 48]
    jmp syscall_exit_regs

    /* Declined, nothing changed: the Rust dispatchers, with the program's
       registers (rdi back from the hint it matched; r8, r9 from `mr`, or
       the stashed ones from the stack), counted (`DebugIpc` totals). */
    .macro fastpath_token
    mov rdi, [rax + {t_hint_token} - {t_ret}]
    .endm
    .macro fastpath_words_back
    mov r8, [rax + {t_mr} - {t_ret}]
    mov r9, [rax + {t_mr} - {t_ret} + 8]
    .endm
fastpath_declined:
91:
    fastpath_token
90:
    inc qword ptr [rip + {kernel} + {k_declined}]
    fastpath_words_back
    jmp syscall_call_general
93:
    fastpath_token
92:
    inc qword ptr [rip + {kernel} + {k_declined}]
    fastpath_words_back
    jmp syscall_reply_wait_general
95:
    fastpath_token
94:
    inc qword ptr [rip + {kernel} + {k_declined}]
    pop rsi
    mov r8, [rsp]
    jmp syscall_send_general
97:
    fastpath_token
96:
    inc qword ptr [rip + {kernel} + {k_declined}]
    mov r9, [rsp]
    jmp syscall_reply_recv_general

    /* The first ecx (below 64) bytes of the eight words at rsi to rdi, the
       rest of its eight words zero. Clobbers rcx, rsi, rdi, r11. */
fastpath_some_words:
    push rax
    mov r11d, ecx
    shr ecx, 3
    rep movsq
    mov ecx, r11d
    and ecx, 7
    jz 1f
    shl ecx, 3
    mov rax, -1
    shl rax, cl
    not rax
    and rax, [rsi]
    stosq
1:
    mov ecx, 64
    sub ecx, r11d
    shr ecx, 3
    xor eax, eax
    rep stosq
    pop rax
    ret
"#,
    kernel = sym KERNEL,
    cpu = sym CPU,
    epoch = sym crate::cap::hint::EPOCH,
    zero_words = sym ZERO_WORDS,
    rsp0 = const RSP0_AT,
    k_in_flight = const kernel_at(offset_of!(Kernel, ipc.in_flight)),
    k_declined = const kernel_at(offset_of!(Kernel, ipc.declined)),
    k_delivered = const kernel_at(offset_of!(Kernel, ipc.delivered)),
    k_channels = const kernel_at(offset_of!(Kernel, channels) + ChannelTable::SLOTS_AT),
    k_threads = const kernel_at(offset_of!(Kernel, threads)),
    k_nonempty = const kernel_at(offset_of!(Kernel, sched) + Scheduler::NONEMPTY_AT),
    k_unanswered = const kernel_at(offset_of!(Kernel, unanswered)),
    k_current = const kernel_at(offset_of!(Kernel, current)),
    k_on_behalf = const kernel_at(offset_of!(Kernel, on_behalf)),
    k_active_root = const kernel_at(offset_of!(Kernel, active_root)),
    thread_size = const size_of::<Thread>(),
    t_state = const offset_of!(Thread, state),
    t_process = const offset_of!(Thread, process),
    t_root = const offset_of!(Thread, root),
    t_base_prio = const offset_of!(Thread, base_prio),
    t_prio = const offset_of!(Thread, prio),
    t_next = const offset_of!(Thread, next),
    t_prev = const offset_of!(Thread, prev),
    t_deadline = const offset_of!(Thread, deadline),
    t_wait_obj = const offset_of!(Thread, wait_obj),
    t_recv_buf = const offset_of!(Thread, recv_buf),
    t_recv_regs = const offset_of!(Thread, recv_regs),
    t_hint_chan = const offset_of!(Thread, hint_chan),
    t_hint_rights = const offset_of!(Thread, hint_rights),
    t_hint_token = const offset_of!(Thread, hint.token),
    t_hint_epoch = const offset_of!(Thread, hint.epoch),
    t_ret = const offset_of!(Thread, ret),
    t_words = const offset_of!(Thread, words),
    t_mr = const offset_of!(Thread, mr),
    t_slice = const offset_of!(Thread, slice),
    t_rsp = const offset_of!(Thread, arch.rsp),
    t_stack_top = const offset_of!(Thread, arch.stack_top),
    t_park = const offset_of!(Thread, arch.park),
    t_park_regs = const offset_of!(Thread, arch.park_regs),
    t_window_page = const offset_of!(Thread, window.page),
    t_window_at = const offset_of!(Thread, window.at),
    t_buffer_page = const offset_of!(Thread, buffer.page),
    t_buffer_at = const offset_of!(Thread, buffer.at),
    m_tag = const offset_of!(Thread, msg) + offset_of!(Message, tag),
    m_buf = const offset_of!(Thread, msg) + offset_of!(Message, buf),
    m_recv_va = const offset_of!(Thread, msg) + offset_of!(Message, recv_va),
    m_loan_pte = const offset_of!(Thread, msg) + offset_of!(Message, loan_pte),
    m_xfer_token = const offset_of!(Thread, msg) + offset_of!(Message, xfer_token),
    m_size = const offset_of!(Thread, msg) + offset_of!(Message, size),
    m_seq = const offset_of!(Thread, msg) + offset_of!(Message, seq),
    m_chan = const offset_of!(Thread, msg) + offset_of!(Message, chan),
    m_server = const offset_of!(Thread, msg) + offset_of!(Message, server),
    m_xfer_rights = const offset_of!(Thread, msg) + offset_of!(Message, xfer_rights),
    m_lent = const offset_of!(Thread, msg) + offset_of!(Message, lent),
    m_flags = const offset_of!(Thread, msg) + offset_of!(Message, flags),
    m_regs = const offset_of!(Thread, msg) + offset_of!(Message, regs),
    m_displaced = const offset_of!(Thread, msg) + offset_of!(Message, displaced),
    chan_size = const size_of::<Channel>(),
    c_send_len = const offset_of!(Channel, senders) + Queue::LEN_AT,
    c_recv_head = const offset_of!(Channel, receivers) + Queue::HEAD_AT,
    c_recv_tail = const offset_of!(Channel, receivers) + Queue::TAIL_AT,
    c_recv_len = const offset_of!(Channel, receivers) + Queue::LEN_AT,
    c_irq_pending = const offset_of!(Channel, irq_pending),
    c_in_flight = const offset_of!(Channel, in_flight),
    c_sends = const offset_of!(Channel, sends),
    c_receives = const offset_of!(Channel, receives),
    c_replies = const offset_of!(Channel, replies),
    no_thread = const NO_THREAD,
    no_channel = const NO_CHANNEL,
    running = const State::Running as u8,
    awaiting_reply = const State::AwaitingReply as u8,
    recv_blocked = const State::RecvBlocked as u8,
    slice = const SLICE_TICKS,
    send = const ChannelRights::SEND.bits() as u8,
    receive = const ChannelRights::RECEIVE.bits() as u8,
    reg_message = const REG_MESSAGE,
    live = const WordsAt::LIVE,
    in_registers_called = const IN_REGISTERS | CALLED,
    cookie_seq_shift = const crate::proc::thread::COOKIE_SEQ_SHIFT,
    cookie_mark_bit = const crate::proc::thread::COOKIE_MARK.trailing_zeros(),
    page = const abi::PAGE_SIZE,
    user_top = const abi::USER_TOP,
    send_flags_unknown = const !SendFlags::all().bits(),
    read_only = const SendFlags::READ_ONLY.bits(),
    direct_map = const super::DIRECT_MAP,
    loan_bit = const sw::LOAN.bits().trailing_zeros(),
    ram = const sw::RAM.bits(),
    user_present = const Flags::PRESENT.union(Flags::USER_ACCESSIBLE).bits(),
    own_writable = const (Flags::PRESENT.union(Flags::USER_ACCESSIBLE).union(Flags::WRITABLE)).bits(),
    lendable = const sw::LENDABLE.bits(),
    loan_entry_low = const (Flags::PRESENT.union(Flags::USER_ACCESSIBLE).union(Flags::WRITABLE).union(sw::LOAN)).bits(),
    user_bottom = const abi::USER_BOTTOM,
    window_room = const abi::USER_TOP - abi::PAGE_SIZE as u64 - abi::USER_BOTTOM,
);
