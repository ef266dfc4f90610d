#!/usr/bin/env python3
"""Where the instructions of the 64-byte round trip (or of the null syscall) go.

Boots `test=bench` under QEMU (TCG) with its gdbstub, stops at the bench
suite's first `trace_mark`, single-steps every instruction (kernel and both
processes) up to the second one (ten checked 64-byte round trips), then
names each instruction by the innermost and outermost function its address
belongs to (DWARF, inlining included: `llvm-addr2line -i`) and sums them by
group. QEMU's single step counts each iteration of a `rep movs` as one
instruction, as `-icount` does, and keeps interrupts off while stepping.

With `--null`, the same for the bench suite's ten null syscalls
(`runtime::time::priority()`, as `syscall_null` measures it) between its
other pair of marks, grouped by the null syscall's own stages.

With `--serve`, the ten postcard calls (`Add`) through the serve loop
between the bench suite's third pair of marks, grouped as the round trips
(the client's and server's user code both count as the server's).

With `--lent`, ten checked round trips of a lent 4 KiB page (`Send` and
`ReplyRecv`), and with `--tag` ten tag-only ones, grouped as the round
trips.

Usage (after `cargo run -p image-builder`): python3 ci/trace/breakdown.py [--null|--serve|--lent|--tag] [--detail]
Needs gdb and llvm-addr2line. Takes about half a minute.
"""
import collections, json, os, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNEL = os.path.join(ROOT, "target/image/kernel.elf")
KTEST = os.path.join(ROOT, "target/x86_64-unknown-none/release/ktest")
ROUNDS = 10  # the calls between the two marks (ci/ktest/src/suites/bench.rs)
NULL = "--null" in sys.argv
# The argument of the bench suite's `trace_mark` that starts the traced
# calls: 0 for the round trips, `NULL_MARKS` for the null syscalls.
SERVE = "--serve" in sys.argv
LENT = "--lent" in sys.argv
TAG = "--tag" in sys.argv
START = 2 if NULL else 4 if SERVE else 6 if LENT else 8 if TAG else 0
PORT = 12345

GDB_SCRIPT = r'''
import gdb
gdb.execute("set pagination off")
gdb.execute("set architecture i386:x86-64")
gdb.execute("target remote :%(port)d")
gdb.execute("hbreak *%(mark)#x if $rdi == %(start)d")
gdb.execute("continue")
gdb.execute("delete")
pcs, first = [], True
while len(pcs) < 100000:
    pc = int(gdb.parse_and_eval("$pc")) & 0xffffffffffffffff
    if pc == %(mark)#x and not first:
        break
    first = False
    pcs.append(pc)
    gdb.execute("stepi", to_string=True)
open("%(out)s", "w").write("\n".join("%%x" %% p for p in pcs))
gdb.execute("kill")
'''


def symbol(elf, name):
    for line in subprocess.run(["nm", "-C", elf], capture_output=True, text=True, check=True).stdout.splitlines():
        if line.endswith(" " + name):
            return int(line.split()[0], 16)
    sys.exit(f"no {name} in {elf}")


def trace():
    mark = symbol(KTEST, "ktest::suites::bench::trace_mark")
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "pcs")
    script = os.path.join(tmp, "step.py")
    open(script, "w").write(GDB_SCRIPT % {"port": PORT, "mark": mark, "start": START, "out": out})
    qemu = subprocess.Popen(
        ["timeout", "600", "qemu-system-x86_64", "-machine", "q35", "-cpu", "max", "-accel", "tcg", "-m", "256M",
         "-bios", "/usr/share/qemu/qboot.rom", "-serial", "file:" + os.path.join(tmp, "serial"), "-display", "none",
         "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", KERNEL,
         "-initrd", os.path.join(ROOT, "target/image/ramfs.img"), "-append", "test=bench", "-gdb", f"tcp::{PORT}", "-S"])
    try:
        subprocess.run(["timeout", "600", "gdb", "-q", "-batch", "-x", script], check=True, capture_output=True)
    finally:
        qemu.kill()
    return [int(l, 16) for l in open(out).read().split()]


def symbolise(pcs):
    names = {}
    for elf, addrs in ((KERNEL, [a for a in set(pcs) if a >> 63]), (KTEST, [a for a in set(pcs) if not a >> 63])):
        out = subprocess.run(["llvm-addr2line", "--output-style=JSON", "-f", "-i", "-C", "-e", elf] + ["%#x" % a for a in addrs],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            for j in json.loads(line) if line.startswith("[") else [json.loads(line)]:
                names[int(j["Address"], 16)] = [(re.sub(r"::h[0-9a-f]{16}$", "", s["FunctionName"]), s["FileName"].split("/")[-1], s["Line"]) for s in j["Symbol"]]
    return names


SWITCH = "thread switch (run queue, channel queues, CR3, kernel stack; parking, or switch_context's callee-saved registers)"
COPY = "copy: the 64 bytes each way (rep movs under stac/clac, client buffer walk, checks)"
# Checked on the inlined frames from the outside in: the first match names the instruction.
DISPATCH = "entry/exit: the IPC dispatchers (Rust side: the kernel cell's scope, results pointer)"
SEGS = "selectors: DS/ES/FS/GS read, OR, compare (switch_context, or the parking switch)"
RULES = [
    (r"KernelCell|Kernel.*::syscall(_send|_reply_recv|_call|_reply_wait)?$|fast_or_general|run_then_switch|run_then_exit", DISPATCH),
    (r"fast_channel|ChanHint|hint::|CapTable.*::get|ChannelTable::get|decode_cookie", "capability lookup (token -> channel: the thread's hint, else the table) and cookie decoding"),
    (r"give_back|read_user|carry", COPY),
    (r"route|leaf_of|entry_of|user_ram|check_range|Kernel::space|Kernel::entry$|unlend", "window and buffer checks (page-table entries, user ranges)"),
    (r"run_next|switch_to_current|switch_if_needed|activate|Scheduler::highest|Queue.*::|Switch::|set_kernel_stack|load_address_space|set_running|park|ThreadContext::", SWITCH),
]
FRAME = "the IPC dispatchers with the fast path inlined: prologue, epilogue, spills (no source line)"
FAST_RS = open(os.path.join(ROOT, "kernel/src/ipc/fast.rs")).read().splitlines()


def fast_line(n):
    """What line `n` of ipc/fast.rs is: a guard (a test that may send the
    call to the general path), a frame line (signature, closing brace, or no
    line at all: prologue, epilogue, spills), or work."""
    text = FAST_RS[n - 1].strip() if 0 < n <= len(FAST_RS) else ""
    if not text or text.startswith(("pub(crate) fn", "}")):
        return "frame"
    if text.startswith(("if ", "|| ", "let Some(", "let Ok(", "let rprio", "let cprio", "let rbuf", "let ct ", "let st ", "let s ", "let p ", "let t ")) or "return false" in text:
        return "guard"
    return "work"


def group(pc, frames, asm):
    outer = frames[-1][0] if frames else "?"
    if not pc >> 63:
        who = "client" if "bench::" in outer else "server"
        if any(re.search(r"runtime::|abi::Error", f[0]) for f in frames):
            return f"user, {who}: syscall stubs (runtime::ipc, raw syscall, result decoding)"
        return "user, client: loop, sequence words, reply check" if who == "client" else "user, server: loop and BUMP"
    if outer.startswith("syscall_entry") or outer.startswith("syscall_exit") or outer.startswith("parked_exit"):
        return "entry/exit: syscall entry and sysret (assembly)"
    # The assembly fast path (kernel/src/arch/x86_64/fastpath.rs), by its
    # labels.
    if outer.startswith("fastpath_"):
        if outer.endswith("_guards"):
            return "fast-path guards (arguments, states, priorities, caches, selectors)"
        if outer.endswith("_commit"):
            return "bookkeeping: message record, counters, states, queues, cookie, results"
        if outer.endswith("_switch"):
            return SWITCH
        if outer.endswith("_lend"):
            return "lending: the two page-table entries and their TLB entries"
        if outer == "fastpath_some_words":
            return "message words: a short message's copy (masked)"
        if outer == "fastpath_declined":
            return "declined by the assembly fast path (to the Rust dispatchers)"
        return "entry: message words or callee-saved registers stored (assembly)"
    if outer in ("smap_site_stac", "smap_site_clac"):
        return "SMAP: stac/clac" if asm.get(pc, "").startswith(("stac", "clac")) else COPY
    if outer == "switch_context":
        return SEGS if re.match(r"(mov\s+%[defg]s|or |je |pop\s+%rcx|cmp |jne )", asm.get(pc, "")) else SWITCH
    # The entry's own frames wrap everything a syscall does: they name an
    # instruction only when nothing inside them does.
    # The fast path is inlined into its dispatcher: an instruction of its
    # own (not of a helper named above) is judged by its line in fast.rs.
    if any(re.search(r"read_segs|load_segs", f[0]) for f in frames):
        return SEGS
    found, fast = None, None
    for f in reversed(frames[:-1]):
        name = next((n for pat, n in RULES if re.search(pat, f[0])), None)
        if name and name != DISPATCH:
            return name
        found = found or name
        if "fast::" in f[0]:
            fast = f
    if fast is None and "fast::" in outer:
        fast = frames[0]
    if fast is not None:
        kind = fast_line(fast[2] if fast[1] == "fast.rs" else 0)
        if kind == "guard":
            return "fast-path guards (arguments, states, priorities)"
        if kind == "frame":
            return FRAME
        return "bookkeeping: message record, counters, states, cookie, ret registers"
    if found:
        return found
    if re.search(r"run_next|switch_to_current|switch_if_needed|Queue.*::", outer):
        return SWITCH
    if outer.startswith("syscall_dispatch"):
        # No source line: the dispatcher's prologue, epilogue and spills,
        # which with the fast path inlined are the fast path's.
        return FRAME
    return "other: " + outer


NULL_RULES = [
    (r"syscall_short", "short path (syscall::short): the call number, the answer into the thread's ret"),
    (r"KernelCell|with_kernel|mem::replace", "the kernel cell's scope (lend, release)"),
    (r"Kernel.*::lookup|CapTable.*::get|Kernel.*::class|class_cap|allows|as_ref|proc_of", "token check: the caller's process, its class capability (lookup, kind, rights, class)"),
    (r"catch_up_ticks|take_late_ticks", "late-tick check (ticks counted during a long syscall)"),
    (r"reschedule|higher_ready|Scheduler::highest|preempt", "reschedule(): current still running, no higher priority ready"),
    (r"run_then_switch|running_results|running$", "switch check (running == current) and the results pointer"),
    (r"from_raw|from_regs|to_regs|Kernel.*::dispatch$|results$|Kernel.*::syscall_general", "dispatch: decoding, the match, the handler, results into the thread's ret"),
]


def group_null(pc, frames):
    """The null syscall's stages, for `--null`."""
    outer = frames[-1][0] if frames else "?"
    if not pc >> 63:
        if any(re.search(r"runtime::|abi::", f[0]) for f in frames):
            return "user: runtime stub (class token, raw syscall, status and result decoding)"
        return "user: the bench loop (closure, Result)"
    if outer.startswith("syscall_entry"):
        return "entry/exit: syscall_entry and sysretq (assembly)"
    # Innermost first: the call a line belongs to names it.
    for f in frames:
        name = next((n for pat, n in NULL_RULES if re.search(pat, f[0])), None)
        if name:
            return name
    if outer.startswith("syscall_dispatch"):
        return "syscall_dispatch: prologue, epilogue, spills (no source line)"
    return "other: " + outer


def disassembly(pcs):
    asm = {}
    lo, hi = min(a for a in pcs if a >> 63), max(a for a in pcs if a >> 63)
    for line in subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={lo:#x}", f"--stop-address={hi + 16:#x}", KERNEL],
                               capture_output=True, text=True).stdout.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+(.*)", line)
        if m:
            asm[int(m.group(1), 16)] = m.group(2).strip()
    return asm


def main():
    pcs = trace()
    names = symbolise(pcs)
    asm = disassembly(pcs)
    groups, detail = collections.Counter(), collections.defaultdict(collections.Counter)
    for pc in pcs:
        frames = names.get(pc) or [("?", "", 0)]
        g = group_null(pc, frames) if NULL else group(pc, frames, asm)
        groups[g] += 1
        detail[g][frames[0][0] if len(frames) == 1 else frames[-1][0].split("::")[-1] + " > " + frames[0][0]] += 1
    for g, n in groups.most_common():
        print(f"{n / ROUNDS:6.1f}  {g}")
        if "--detail" in sys.argv:
            for d, k in detail[g].most_common(int(os.environ.get("DETAIL", "8"))):
                print(f"          {k / ROUNDS:6.1f} {d[:110]}")
    what = "null syscall" if NULL else "round trip"
    print(f"{len(pcs) / ROUNDS:6.1f}  per {what} ({len(pcs)} instructions stepped over {ROUNDS} {what}s)")


if __name__ == "__main__":
    main()
