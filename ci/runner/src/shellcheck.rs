//! The `shell` check: boot normally and use the serial shell the way a
//! person would, through [`crate::session`], checking each answer against
//! what the host knows about the image (the packed files, their bytes, a
//! SHA-256 computed here with `sha256sum`).
//!
//! Each case prints `ok - <case>` or `FAIL - <case>: <why>`; the check
//! passes when every case does and `poweroff` ends QEMU.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::qemu::{End, QEMU};
use crate::report::Outcome;
use crate::session::Session;

/// The check's name for `ci boot` and `ci list`.
pub const NAME: &str = "shell";
/// The whole session (boot included).
pub const TIMEOUT: Duration = Duration::from_secs(180);
/// One command's answer.
const STEP: Duration = Duration::from_secs(30);
/// What the shell prints before each line (`shell::PROMPT`).
const PROMPT: &str = "> ";
/// Longest line the shell keeps (`shell::editor::MAX_LINE`).
const MAX_LINE: usize = 256;
/// QEMU's exit status after the guest's `poweroff` (code 0: 0 * 2 + 1).
const POWEROFF_STATUS: i32 = 1;

/// One line for `ci list`.
pub fn describe() -> String {
    format!(
        "{NAME:<8} normal boot; type commands into the serial shell and check the answers, then poweroff (timeout {} s)",
        TIMEOUT.as_secs()
    )
}

/// What the host knows about the packed image.
struct Facts {
    /// Top-level entries of the RAMFS: (name, is_dir, size).
    top: Vec<(String, bool, usize)>,
    motd: String,
    data_sha256: String,
    /// The bytes of the disk attached as `disk0` (the runner made them).
    disk: Vec<u8>,
    /// The channel the shell takes COM1's interrupts on (from its boot line
    /// `shell: COM1 input by interrupt (ISA IRQ 4) on channel N`).
    irq_channel: Option<u64>,
}

/// The shell's boot line naming its interrupt channel.
const IRQ_LINE: &str = "shell: COM1 input by interrupt (ISA IRQ 4) on channel ";

fn irq_channel(boot: &str) -> Option<u64> {
    boot.lines().find_map(|l| l.strip_prefix(IRQ_LINE)?.trim().parse().ok())
}

fn facts(image_dir: &Path) -> Result<Facts, String> {
    let bytes = std::fs::read(image_dir.join("ramfs.img")).map_err(|e| format!("ramfs.img: {e}"))?;
    let archive = cpio::Archive::new(&bytes).map_err(|e| format!("ramfs.img: {e:?}"))?;
    let top = archive
        .entries()
        .filter(|e| !e.name.contains('/') && e.name != ".")
        .map(|e| (e.name.to_string(), e.is_dir(), e.data.len()))
        .collect();
    let file = |name: &str| archive.find(name).map(|e| e.data.to_vec()).ok_or(format!("{name} is not in the image"));
    let motd = String::from_utf8(file("etc/motd")?).map_err(|_| "etc/motd is not text")?;
    Ok(Facts { top, motd, data_sha256: sha256sum(&file("test/data.bin")?)?, irq_channel: None, disk: Vec::new() })
}

/// The host's `sha256sum` of `data`.
fn sha256sum(data: &[u8]) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("sha256sum: {e}"))?;
    child.stdin.take().ok_or("sha256sum stdin")?.write_all(data).map_err(|e| format!("sha256sum: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("sha256sum: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let hash = text.split_whitespace().next().unwrap_or("");
    if hash.len() == 64 {
        Ok(hash.to_string())
    } else {
        Err(format!("sha256sum printed {text:?}"))
    }
}

type Case = Result<(), String>;

fn ensure(cond: bool, why: impl FnOnce() -> String) -> Case {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

/// Exactly one output line, equal to `want`.
fn one_line(got: &[String], want: &str) -> Case {
    ensure(got.len() == 1 && got[0] == want, || format!("want exactly [{want:?}], got {got:?}"))
}

fn help(s: &mut Session, _: &Facts) -> Case {
    let out = s.command(b"help", STEP)?;
    for name in [
        "ls", "cat", "stat", "sha256", "hexdump", "run", "ps", "kill", "channels", "top", "stats", "trace", "devices",
        "disks", "readsector", "uptime", "mem", "poweroff", "exit",
    ] {
        let listed = out.iter().any(|l| l.strip_prefix("  ").and_then(|l| l.split_whitespace().next()) == Some(name));
        ensure(listed, || format!("`{name}` not in help: {out:?}"))?;
    }
    Ok(())
}

fn ls(s: &mut Session, f: &Facts) -> Case {
    let out = s.command(b"ls boot:/", STEP)?;
    ensure(out.len() == f.top.len(), || format!("{} lines for {} packed entries: {out:?}", out.len(), f.top.len()))?;
    for (name, dir, size) in &f.top {
        let want: Vec<String> = if *dir { vec!["dir".into(), "0".into(), name.clone()] } else { vec!["file".into(), size.to_string(), name.clone()] };
        let found = out.iter().any(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>() == want);
        ensure(found, || format!("no line `{}` in {out:?}", want.join(" ")))?;
    }
    Ok(())
}

fn cat(s: &mut Session, f: &Facts) -> Case {
    let out = s.command(b"cat boot:/etc/motd", STEP)?;
    let want: Vec<&str> = f.motd.lines().collect();
    ensure(out == want, || format!("want {want:?}, got {out:?}"))
}

fn sha256(s: &mut Session, f: &Facts) -> Case {
    let out = s.command(b"sha256 boot:/test/data.bin", STEP)?;
    one_line(&out, &format!("{}  boot:/test/data.bin", f.data_sha256))
}

/// `[pid] name <rest>`: the pid.
fn job_line(out: &[String], rest: &str) -> Result<u64, String> {
    out.iter()
        .find_map(|l| {
            let (pid, tail) = l.strip_prefix('[')?.split_once("] ")?;
            (tail == rest).then(|| pid.parse().ok()).flatten()
        })
        .ok_or_else(|| format!("no `[pid] {rest}` line in {out:?}"))
}

fn run_output_and_code(s: &mut Session, _: &Facts) -> Case {
    // ktest without arguments prints its usage and exits with 2.
    let out = s.command(b"run boot:/ktest", STEP)?;
    ensure(out.iter().any(|l| l == "usage: ktest <suite> | ktest child <role>"), || format!("no usage line: {out:?}"))?;
    job_line(&out, "ktest exited with code 2")?;
    let out = s.command(b"run boot:/ktest child sleeper 300 7", STEP)?;
    job_line(&out, "ktest exited with code 7").map(|_| ())
}

fn ps_and_kill(s: &mut Session, _: &Facts) -> Case {
    let out = s.command(b"run boot:/ktest child sleeper 600000 0 &", STEP)?;
    let pid = job_line(&out, "ktest started")?;
    let out = s.command(b"ps", STEP)?;
    ensure(ps_row(&out, pid, "shell"), || format!("ps does not list {pid} as this shell's: {out:?}"))?;
    // Every program system started, not only this shell's: the boot servers too.
    ensure(out.iter().any(|l| l.split_whitespace().nth(1) == Some("vfs")), || format!("ps does not list vfs: {out:?}"))?;
    let out = s.command(format!("kill {pid}").as_bytes(), STEP)?;
    ensure(out.iter().any(|l| *l == format!("[{pid}] ktest killed")), || format!("kill: {out:?}"))?;
    let out = s.command(b"ps", STEP)?;
    ensure(!out.iter().any(|l| l.split_whitespace().next() == Some(pid.to_string().as_str())), || format!("ps still lists {pid}: {out:?}"))?;
    let out = s.command(format!("kill {pid}").as_bytes(), STEP)?;
    one_line(&out, &format!("kill: {pid}: no such program (see ps)"))
}

/// The shell's own answer to `line`: the output without the lines other
/// programs print at their own pace (the kernel's log, `system`'s reports
/// of ended children) and without the echo when such a line pushed it
/// down.
fn answer(s: &mut Session, line: &[u8]) -> Result<Vec<String>, String> {
    let typed = String::from_utf8_lossy(line).to_string();
    let out = s.command(line, STEP)?;
    Ok(out.into_iter().filter(|l| !(l.starts_with("system: ") || l.starts_with("[info ]") || l.starts_with("[warn ]") || *l == typed)).collect())
}

/// Whether `ps` lists `pid` as a running ktest from `from`.
fn ps_row(out: &[String], pid: u64, from: &str) -> bool {
    out.iter().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() == 5 && w[0] == pid.to_string() && w[1] == "ktest" && w[2] == "running" && w[4] == from
    })
}

/// The `sends` column of `name`'s row in a `channels` table.
fn sends(out: &[String], name: &str) -> Result<u64, String> {
    let header: Vec<&str> = out.first().ok_or("no channels table")?.split_whitespace().collect();
    let col = header.iter().position(|h| *h == "SENDS").ok_or_else(|| format!("no SENDS column: {header:?}"))?;
    let row = out.iter().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|r| r.get(2) == Some(&name));
    let row = row.ok_or_else(|| format!("no {name} row: {out:?}"))?;
    row.get(col).and_then(|v| v.parse().ok()).ok_or_else(|| format!("bad row {row:?}"))
}

/// The `RECVS` and `ERRORS` columns of channel `id`'s row in a table.
fn recvs_errors(out: &[String], id: u64) -> Result<(u64, u64), String> {
    let header: Vec<&str> = out.iter().find(|l| l.starts_with("CHANNEL")).ok_or("no channels table")?.split_whitespace().collect();
    let col = |name: &str| header.iter().position(|h| *h == name).ok_or_else(|| format!("no {name} column: {header:?}"));
    let (recvs, errors) = (col("RECVS")?, col("ERRORS")?);
    let row = out.iter().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|r| r.first() == Some(&id.to_string().as_str()));
    let row = row.ok_or_else(|| format!("no row for channel {id}: {out:?}"))?;
    let num = |c: usize| row.get(c).and_then(|v| v.parse().ok()).ok_or_else(|| format!("bad row {row:?}"));
    Ok((num(recvs)?, num(errors)?))
}

/// The shell sleeps until COM1's interrupt: its interrupt channel (which
/// the kernel's monitor counts, an event being a receive and a timed-out
/// wait an error) shows no wake-up while nobody types for two seconds,
/// and at least one (at most one per byte) for a typed line. A shell that
/// polled the UART, with sleeps or with timed receives, fails this.
fn by_interrupt(s: &mut Session, f: &Facts) -> Case {
    let ch = f.irq_channel.ok_or_else(|| format!("no `{IRQ_LINE}N` line at boot"))?;
    let (r1, e1) = recvs_errors(&s.command(b"channels", STEP)?, ch)?;
    std::thread::sleep(Duration::from_secs(2));
    let line = b"channels";
    let (r2, e2) = recvs_errors(&s.command(line, STEP)?, ch)?;
    let typed = line.len() as u64 + 1;
    ensure(r2 > r1, || format!("no interrupt event for a typed line (receives {r1} -> {r2})"))?;
    ensure(e2 == e1 && r2 - r1 <= typed, || {
        format!("woke {} times (receives {r1} -> {r2}, timeouts {e1} -> {e2}) in 2 s idle and {typed} typed bytes", r2 - r1 + e2 - e1)
    })
}

fn channels(s: &mut Session, _: &Facts) -> Case {
    let before = sends(&s.command(b"channels", STEP)?, "SYSTEM::VFS")?;
    // Two look-ups through VFS.
    s.command(b"stat boot:/etc/motd", STEP)?;
    s.command(b"stat boot:/test", STEP)?;
    let out = s.command(b"channels", STEP)?;
    let after = sends(&out, "SYSTEM::VFS")?;
    ensure(after >= before + 2, || format!("SYSTEM::VFS sends went {before} -> {after}"))?;
    ensure(out.last().is_some_and(|l| l.ends_with(" channels")), || format!("no count line: {out:?}"))
}

fn bad_input(s: &mut Session, _: &Facts) -> Case {
    one_line(&s.command(b"frobnicate --now", STEP)?, "frobnicate: unknown command (try help)")?;
    one_line(&s.command(b"cat boot:/nope", STEP)?, "cat: boot:/nope: not found")?;
    one_line(&s.command(b"cat nope", STEP)?, "cat: nope: bad path (want PREFIX:/PATH, e.g. boot:/etc/motd)")?;
    one_line(&s.command(b"kill me", STEP)?, "kill: not a number: me")?;
    one_line(&s.command(b"ls boot:/etc/motd", STEP)?, "ls: boot:/etc/motd: not a directory")?;
    // Control bytes and escape sequences in the middle of a line are dropped.
    one_line(&s.command(b"\x01\x02frob\x1b[Cnicate\x07", STEP)?, "frobnicate: unknown command (try help)")
}

fn long_line(s: &mut Session, _: &Facts) -> Case {
    let line = vec![b'x'; 10 * 1024];
    one_line(&s.command(&line, STEP)?, &format!("shell: line too long ({} bytes, at most {MAX_LINE})", line.len()))?;
    let out = s.command(b"uptime", STEP)?;
    ensure(out.len() == 1 && out[0].starts_with("up "), || format!("after the long line: {out:?}"))
}

fn line_editing(s: &mut Session, f: &Facts) -> Case {
    // Backspace (DEL and BS) fixes a typo.
    let out = s.command(b"cax\x7ft boot:/etc/motdd\x08", STEP)?;
    ensure(out == f.motd.lines().collect::<Vec<_>>(), || format!("after backspace: {out:?}"))?;
    // Ctrl-U erases the line so far.
    let out = s.command(b"cat boot:/etc/motd\x15uptime", STEP)?;
    ensure(out.len() == 1 && out[0].starts_with("up "), || format!("after Ctrl-U: {out:?}"))?;
    // Ctrl-C abandons the line: nothing runs, a new prompt comes.
    s.send(b"poweroff\x03")?;
    let text = s.until_prompt(STEP)?;
    ensure(text.ends_with("^C\n") && !text.contains("stopping"), || format!("after Ctrl-C: {text:?}"))?;
    // Up arrow twice: the line before the last (uptime, then the cat).
    let out = s.command(b"\x1b[A\x1b[A", STEP)?;
    ensure(out == f.motd.lines().collect::<Vec<_>>(), || format!("history: {out:?}"))
}

/// `mem` reports the kernel's free frames, and they go down while a
/// program holds memory and come back when it ends.
fn mem(s: &mut Session, _: &Facts) -> Case {
    let free = |out: &[String]| -> Result<u64, String> {
        out.iter()
            .find_map(|l| l.strip_prefix("free memory: ")?.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| format!("no `free memory:` line in {out:?}"))
    };
    let before = free(&s.command(b"mem", STEP)?)?;
    let out = s.command(b"run boot:/ktest child sleeper 600000 0 &", STEP)?;
    let pid = job_line(&out, "ktest started")?;
    let during = free(&s.command(b"mem", STEP)?)?;
    s.command(format!("kill {pid}").as_bytes(), STEP)?;
    let after = free(&s.command(b"mem", STEP)?)?;
    ensure(during < before && after == before, || format!("free frames {before} -> {during} (running) -> {after} (killed)"))
}

/// `top` redraws the channel table every second until a key comes; the
/// counters it shows are read afresh: the shell's own interrupt channel
/// counts one timed-out wait per second between redraws.
fn top(s: &mut Session, f: &Facts) -> Case {
    const TITLE: &str = "refreshed every second; any key quits)";
    let ch = f.irq_channel.ok_or_else(|| format!("no `{IRQ_LINE}N` line at boot"))?;
    s.send(b"top\r")?;
    s.until(TITLE, STEP)?;
    let start = Instant::now();
    let first = s.until(TITLE, STEP)?;
    let second = s.until(TITLE, STEP)?;
    let gap = start.elapsed();
    let lines = |t: &str| t.lines().map(String::from).collect::<Vec<_>>();
    ensure(first.contains("SYSTEM::VFS"), || format!("no channel table between refreshes: {first:?}"))?;
    ensure(gap >= Duration::from_millis(1800), || format!("two refreshes after {gap:?}"))?;
    let (e1, e2) = (recvs_errors(&lines(&first), ch)?.1, recvs_errors(&lines(&second), ch)?.1);
    ensure(e2 > e1, || format!("counters did not rise between refreshes (channel {ch} errors {e1} -> {e2})"))?;
    s.send(b"q")?;
    let rest = s.until_prompt(STEP)?;
    ensure(rest.matches(TITLE).count() <= 1, || format!("still refreshing after the key: {rest:?}"))
}

/// The PCI functions PCIDRV announced at boot (`pcidrv: BB:DD.F VVVV:DDDD
/// class CC.SS.PP ...`), as (`0000:BB:DD.F`, `VVVV:DDDD`, `CC.SS.PP`).
fn pci_functions(boot: &str) -> Vec<(String, String, String)> {
    boot.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.strip_prefix("pcidrv: ")?.split_whitespace().collect();
            let (at, ids, class) = (w.first()?, w.get(1)?, w.get(3)?);
            let is_function = at.len() == 7 && at.as_bytes()[2] == b':' && w.get(2) == Some(&"class");
            is_function.then(|| (format!("0000:{at}"), ids.to_string(), class.to_string()))
        })
        .collect()
}

/// `devices` lists DEVMAN's registry: exactly the PCI functions PCIDRV
/// printed at boot, each with its ids and class.
fn devices(s: &mut Session, _: &Facts) -> Case {
    let want = pci_functions(s.transcript());
    ensure(!want.is_empty(), || "PCIDRV printed no functions at boot".into())?;
    let out = s.command(b"devices", STEP)?;
    ensure(out.first().is_some_and(|h| h.split_whitespace().take(2).eq(["ID", "DEVICE"])), || format!("no header: {out:?}"))?;
    for (at, ids, class) in &want {
        let listed = out.iter().any(|l| l.split_whitespace().skip(1).take(3).eq([at.as_str(), ids.as_str(), class.as_str()]));
        ensure(listed, || format!("no row `{at} {ids} {class}` in {out:?}"))?;
    }
    // The disk ahcidrv registered: behind the controller, on port 0.
    let disk = out.iter().any(|l| l.split_whitespace().skip(1).take(3).eq(["0000:00:1f.2/p0", "0000:0000", "80.00.00"]));
    ensure(disk, || format!("no row for the disk on 00:1f.2 port 0: {out:?}"))?;
    let rows = out.len().saturating_sub(2);
    ensure(out.last() == Some(&format!("{rows} devices")) && rows == want.len() + 1, || format!("want {} devices: {out:?}", want.len() + 1))
}

/// The hexdump lines (`OFFSET  hex bytes  |ASCII|`) of `bytes` at `offset`:
/// the offset and the bytes each line shows.
fn dumped(out: &[String]) -> Result<Vec<(u64, Vec<u8>)>, String> {
    out.iter()
        .map(|l| {
            let (at, rest) = l.split_once(' ').ok_or_else(|| format!("not a hexdump line: {l:?}"))?;
            let at = u64::from_str_radix(at, 16).map_err(|_| format!("bad offset in {l:?}"))?;
            let hex = rest.split('|').next().unwrap_or("");
            let bytes = hex.split_whitespace().map(|h| u8::from_str_radix(h, 16)).collect::<Result<Vec<_>, _>>();
            Ok((at, bytes.map_err(|_| format!("bad bytes in {l:?}"))?))
        })
        .collect()
}

/// Exactly `want`, 16 bytes a line from `offset`.
fn same_bytes(out: &[String], offset: u64, want: &[u8]) -> Case {
    let rows = dumped(out)?;
    let lines = want.len().div_ceil(16);
    ensure(rows.len() == lines, || format!("{} lines for {} bytes: {out:?}", rows.len(), want.len()))?;
    for (i, (at, bytes)) in rows.iter().enumerate() {
        let chunk = &want[i * 16..(i * 16 + 16).min(want.len())];
        ensure(*at == offset + i as u64 * 16 && bytes == chunk, || format!("line {i}: {at:#x} {bytes:02x?}, want {:#x} {chunk:02x?}", offset + i as u64 * 16))?;
    }
    Ok(())
}

/// `disks` lists the runner's 4 MiB image; `readsector` and `hexdump
/// disk0` show exactly its bytes (read through ahcidrv); bad disks and a
/// sector past the end get one error line.
fn disks(s: &mut Session, f: &Facts) -> Case {
    let out = answer(s, b"disks")?;
    ensure(out.len() == 1 && out[0].starts_with("disk0  port 0  8192 sectors (4 MiB)  model \"QEMU HARDDISK\""), || format!("disks: {out:?}"))?;
    let sector = |lba: usize| &f.disk[lba * 512..lba * 512 + 512];
    same_bytes(&answer(s, b"readsector disk0 1000")?, 1000 * 512, sector(1000))?;
    same_bytes(&answer(s, b"readsector disk0 8191")?, 8191 * 512, sector(8191))?;
    // Across a sector boundary and more than one request (8 sectors each).
    let (off, len) = (2 * 512 - 24, 9 * 512 + 40);
    same_bytes(&answer(s, format!("hexdump disk0 {off} {len}").as_bytes())?, off as u64, &f.disk[off..off + len])?;
    let out = answer(s, b"readsector disk0 8192")?;
    ensure(out.len() == 1 && out[0].starts_with("readsector: disk0: at sector 8192: "), || format!("past the end: {out:?}"))?;
    one_line(&answer(s, b"readsector disk7 0")?, "readsector: disk7: no such disk (see disks)")?;
    one_line(&answer(s, b"hexdump sda 0 16")?, "hexdump: sda: not a disk (disks are disk0, disk1, ...; files are PREFIX:/PATH)")
}

/// `exit` ends the shell; `system` (boot.conf: `restart`) starts a new one,
/// which answers.
fn restart(s: &mut Session, _: &Facts) -> Case {
    // A program this shell starts outlives it; the next shell can still
    // list and kill it (SYSTEM::PROCESS's List and Kill, with the admin key).
    let out = s.command(b"run boot:/ktest child sleeper 600000 0 &", STEP)?;
    let pid = job_line(&out, "ktest started")?;
    s.send(b"exit\r")?;
    s.until("shell: exiting", STEP)?;
    s.until("system: shell (pid", STEP)?;
    // The new shell and `system`'s report of the restart come in either order.
    let seen = s.until("system: restarted shell as pid", STEP)?;
    if !seen.contains("shell: ready") {
        s.until("shell: ready", STEP)?;
    }
    // Line up with the prompts again: everything before this answer is read.
    s.send(b"sync-after-restart\r")?;
    s.until("sync-after-restart: unknown command (try help)\n> ", STEP)?;
    let out = s.command(b"uptime", STEP)?;
    ensure(out.len() == 1 && out[0].starts_with("up "), || format!("the new shell: {out:?}"))?;
    let out = answer(s, b"ps")?;
    ensure(ps_row(&out, pid, "request"), || format!("the new shell's ps does not list {pid}: {out:?}"))?;
    one_line(&answer(s, format!("kill {pid}").as_bytes())?, &format!("[{pid}] ktest killed"))?;
    let out = answer(s, b"ps")?;
    ensure(!ps_row(&out, pid, "request"), || format!("ps still lists {pid} after the kill: {out:?}"))?;
    one_line(&answer(s, format!("kill {pid}").as_bytes())?, &format!("kill: {pid}: no such program (see ps)"))
}

/// One shell case: it drives the session and checks against the image's facts.
type CaseFn = fn(&mut Session, &Facts) -> Case;

const CASES: &[(&str, CaseFn)] = &[
    ("help lists every command", help),
    ("ls boot:/ lists the packed files", ls),
    ("cat prints a text file", cat),
    ("sha256 equals sha256sum on the host", sha256),
    ("run shows the output and exit code", run_output_and_code),
    ("ps lists a background program and kill ends it", ps_and_kill),
    ("the shell sleeps until COM1's interrupt (no wake-ups while idle)", by_interrupt),
    ("channels shows named channels with rising counters", channels),
    ("mem shows free frames going and coming back with a program", mem),
    ("devices lists DEVMAN's registry: the PCI functions PCIDRV found", devices),
    ("disks, readsector and hexdump DISK show the disk's bytes", disks),
    ("top refreshes every second and any key quits", top),
    ("bad commands get one error line and a prompt", bad_input),
    ("a 10 KiB line gets one error line and a prompt", long_line),
    ("backspace, Ctrl-U, Ctrl-C and history", line_editing),
    ("exit ends the shell, system starts a new one; its ps and kill reach the old one's program", restart),
];

/// Boot, run every case, power off.
pub fn run(ws: &Path, verbose: bool) -> Outcome {
    let start = Instant::now();
    let dir = image_builder::image_dir(ws);
    let fail = |why: String| {
        let o = Outcome::fail(NAME, start.elapsed(), vec![why.clone()]);
        println!("{}\n  {why}", o.summary_line());
        o
    };
    let mut facts = match facts(&dir) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot read the image: {e}")),
    };
    let disks = match crate::disk::prepare(&image_builder::target_dir(ws).join(crate::boot::DISK_DIR), NAME) {
        Ok(Some(d)) => d,
        Ok(None) => return fail("no disk for the shell check".into()),
        Err(e) => return fail(format!("cannot make the disk image: {e}")),
    };
    facts.disk = disks.image(0).unwrap_or_default().to_vec();
    let mut args = image_builder::qemu_args(&dir, "");
    args.extend(disks.qemu_args.iter().cloned());
    let mut s = match Session::start(QEMU, &args, TIMEOUT, PROMPT) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut lines = Vec::new();
    // DEVMAN's bus drivers print the PCI list whenever they get there,
    // possibly after the prompt: wait for their last line before typing.
    let booted = s
        .until("system: ready", STEP * 2)
        .and_then(|before| s.until("shell: ready", STEP).map(|text| before + &text))
        .map(|text| facts.irq_channel = irq_channel(&text))
        .and_then(|_| s.until_prompt(STEP))
        .and_then(|_| s.settle(crate::checks::DEVICES_REGISTERED, STEP * 2));
    let mut failed = 0;
    if let Err(e) = booted {
        lines.push(format!("FAIL - a prompt after boot: {e}"));
        failed += 1;
    } else {
        lines.push("ok - a prompt after boot".to_string());
        for (name, case) in CASES {
            let line = match case(&mut s, &facts) {
                Ok(()) => format!("ok - {name}"),
                Err(e) => {
                    failed += 1;
                    format!("FAIL - {name}: {e}")
                }
            };
            if verbose {
                println!("  {line}");
            }
            lines.push(line);
        }
        let _ = s.send(b"poweroff\r");
    }
    let (end, text) = s.finish(STEP);
    let log_lines: Vec<String> = text.lines().map(String::from).collect();
    for problem in disks.verify(&log_lines) {
        failed += 1;
        lines.push(format!("FAIL - the disk is unchanged after the session: {problem}"));
    }
    if end == End::Exited(POWEROFF_STATUS) {
        lines.push("ok - poweroff ends the machine".into());
    } else {
        failed += 1;
        lines.push(format!("FAIL - poweroff ends the machine: {}", end.describe()));
    }
    let passed = lines.len() - failed;
    let result = format!("{passed} passed, {failed} failed");
    let log = ws.join(crate::boot::LOG_DIR).join(format!("{NAME}.log"));
    let _ = std::fs::create_dir_all(log.parent().unwrap_or(ws));
    let _ = std::fs::write(&log, format!("{text}\n# cases:\n{}\n{result}\n", lines.join("\n")));
    let outcome = if failed == 0 {
        Outcome::pass(NAME, start.elapsed(), Some(result))
    } else {
        let mut reasons: Vec<String> = lines.iter().filter(|l| l.starts_with("FAIL")).cloned().collect();
        reasons.push(format!("serial log: {}", log.display()));
        Outcome::fail(NAME, start.elapsed(), reasons)
    };
    println!("{}", outcome.summary_line());
    for r in &outcome.reasons {
        println!("  {r}");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn job_lines_and_channel_columns_are_read_exactly() {
        let out = strings(&["usage", "[12] ktest exited with code 7"]);
        assert_eq!(job_line(&out, "ktest exited with code 7"), Ok(12));
        assert!(job_line(&out, "ktest exited with code 2").is_err());
        let table = strings(&[
            "CHANNEL OWNER NAME                    SENDS  RECVS REPLIES ERRORS PEAK SEND-W RECV-W",
            "      0     2 SYSTEM::VFS                 4      4       4      0    0      0      1",
            "      1     3 -                         260    260     260      0    0      0      1",
        ]);
        assert_eq!(sends(&table, "SYSTEM::VFS"), Ok(4));
        assert_eq!(recvs_errors(&table, 1), Ok((260, 0)));
        assert!(recvs_errors(&table, 2).is_err());
        assert_eq!(irq_channel("x\nshell: COM1 input by interrupt (ISA IRQ 4) on channel 12\nshell: ready"), Some(12));
        assert_eq!(irq_channel("shell: ready"), None);
        let boot = "pcidrv: segment 0 buses 00-ff: 2 functions\npcidrv: 00:00.0 8086:29c0 class 06.00.00\n\
                    pcidrv: 00:1f.2 8086:2922 class 01.06.01 BAR4 io 0x0+0x20\npcidrv: registered 2 functions";
        let f = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(pci_functions(boot), vec![f("0000:00:00.0", "8086:29c0", "06.00.00"), f("0000:00:1f.2", "8086:2922", "01.06.01")]);
        assert!(sends(&table, "SYSTEM::NOPE").is_err());
        assert_eq!(one_line(&strings(&["a"]), "a"), Ok(()));
        assert!(one_line(&strings(&["a", "b"]), "a").is_err());
    }

    #[test]
    fn the_host_hash_is_sha256sum() {
        assert_eq!(sha256sum(b"abc").unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
