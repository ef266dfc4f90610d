//! Running one parsed command. Every failure is one line, `cmd: why`;
//! nothing here panics on what a user types.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use abi::debug::ChannelStats;
use runtime::ipc::debug;
use runtime::println;
use shell::command::{parse, Command, COMMANDS};
use shell::{hexdump, sha256};

use crate::files::Files;
use crate::jobs::{self, Jobs};
use crate::serial::SerialInput;

/// Ctrl-C, which stops a long command or a waited-for program.
const CTRL_C: u8 = 0x03;
/// How often a waited-for program's end and a Ctrl-C are looked for.
const WAIT_POLL_MS: u64 = 20;
/// Most bytes `hexdump` prints at once.
const HEXDUMP_MAX: u64 = 64 * 1024;
/// Most channels the monitor shows.
const MAX_CHANNELS: usize = 512;

pub struct Shell {
    files: Files,
    jobs: Jobs,
}

impl Shell {
    pub fn new() -> Shell {
        Shell { files: Files::new(), jobs: Jobs(Vec::new()) }
    }

    /// Parse and run one line.
    pub fn run_line(&mut self, line: &str, uart: &mut dyn SerialInput) {
        let cmd = match parse(line) {
            Ok(c) => c,
            Err(e) => {
                println!("{e}");
                return;
            }
        };
        match cmd {
            Command::Nothing => {}
            Command::Help => help(),
            Command::Ls(path) => self.ls(path),
            Command::Cat(path) => self.cat(path, uart),
            Command::Stat(path) => self.stat(path),
            Command::Sha256(path) => self.sha256(path),
            Command::Hexdump { target, offset, len } => self.hexdump(target, offset, len),
            Command::Run { path, args, background } => self.run(path, &args, background, uart),
            Command::Ps => self.ps(),
            Command::Kill(pid) => self.kill(pid),
            Command::Channels => channels(),
            Command::Top => top(uart),
            Command::Stats => stats(),
            Command::Trace(on) => match debug::trace(on) {
                Ok(()) => println!("trace: {}", if on { "on" } else { "off" }),
                Err(e) => println!("trace: {e:?}"),
            },
            Command::Devices => devices(),
            Command::Disks => crate::disks::list(),
            Command::ReadSector { disk, lba } => crate::disks::readsector(disk, lba),
            Command::Uptime => {
                let ms = runtime::time::uptime_ms();
                println!("up {}.{:03} s", ms / 1000, ms % 1000);
            }
            Command::Mem => mem(),
            Command::Exit => {
                println!("shell: exiting");
                runtime::exit(0);
            }
            Command::PowerOff => {
                println!("poweroff: stopping the machine");
                let e = runtime::power_off(0);
                println!("poweroff: refused: {e:?}");
            }
        }
    }

    /// Say which background programs ended since the last prompt.
    pub fn report_finished_jobs(&mut self) {
        for (job, exit) in self.jobs.reap() {
            if job.background {
                println!("[{}] {} {}", job.pid, job.name, jobs::describe(&exit));
            }
            let _ = runtime::caps::drop_cap(job.process.token());
        }
    }

    fn ls(&mut self, path: &str) {
        let listed = self.files.open(path).and_then(|f| f.list());
        match listed {
            Ok(entries) => {
                for e in entries {
                    let kind = if e.kind == ramfs::proto::Kind::Dir { "dir " } else { "file" };
                    println!("{kind} {:>9} {}", e.size, e.name);
                }
            }
            Err(e) => println!("ls: {}: {e}", shown(path)),
        }
    }

    fn stat(&mut self, path: &str) {
        match self.files.open(path).and_then(|f| f.stat()) {
            Ok(i) => {
                let kind = if i.kind == ramfs::proto::Kind::Dir { "directory" } else { "file" };
                println!("{path}: {kind}, {} bytes", i.size);
            }
            Err(e) => println!("stat: {}: {e}", shown(path)),
        }
    }

    fn cat(&mut self, path: &str, uart: &mut dyn SerialInput) {
        let mut last = b'\n';
        let mut stopped = false;
        let r = self.files.open(path).and_then(|f| {
            f.read(0, u64::MAX, |_, bytes| {
                runtime::print::write_bytes(bytes);
                if let Some(&b) = bytes.last() {
                    last = b;
                }
                stopped = ctrl_c(uart);
                !stopped
            })
        });
        if last != b'\n' {
            println!();
        }
        match r {
            Err(e) => println!("cat: {}: {e}", shown(path)),
            Ok(_) if stopped => println!("cat: stopped"),
            Ok(_) => {}
        }
    }

    fn sha256(&mut self, path: &str) {
        let mut h = sha256::Sha256::new();
        match self.files.open(path).and_then(|f| f.read(0, u64::MAX, |_, b| {
            h.update(b);
            true
        })) {
            Ok(_) => println!("{}  {path}", sha256::hex(&h.finish())),
            Err(e) => println!("sha256: {}: {e}", shown(path)),
        }
    }

    fn hexdump(&mut self, target: &str, offset: u64, len: u64) {
        let len = len.min(HEXDUMP_MAX);
        if !target.contains(':') {
            crate::disks::hexdump(target, offset, len);
            return;
        }
        let mut rows = hexdump::Rows::new(offset);
        let mut print = |l: String| println!("{l}");
        let r = self.files.open(target).and_then(|f| {
            f.read(offset, len, |_, bytes| {
                rows.push(bytes, &mut print);
                true
            })
        });
        rows.finish(&mut print);
        match r {
            Ok(info) if offset >= info.size && (info.size > 0 || offset > 0) => {
                println!("hexdump: {target}: offset {offset} is past the end ({} bytes)", info.size)
            }
            Ok(_) => {}
            Err(e) => println!("hexdump: {}: {e}", shown(target)),
        }
    }

    fn run(&mut self, path: &str, args: &[&str], background: bool, uart: &mut dyn SerialInput) {
        let name = path.rsplit(['/', ':']).next().filter(|n| !n.is_empty()).unwrap_or("program");
        let name: String = name.chars().take(16).collect();
        let mut argv = alloc::vec![name.as_str()];
        argv.extend_from_slice(args);
        let job = match jobs::start(path, &argv, background) {
            Ok(j) => j,
            Err(e) => {
                println!("run: {}: {e}", shown(path));
                return;
            }
        };
        if background {
            println!("[{}] {} started", job.pid, job.name);
            self.jobs.0.push(job);
            return;
        }
        // Wait, a little at a time, so Ctrl-C can end it.
        let exit = loop {
            match job.process.wait_timeout(WAIT_POLL_MS * 1_000_000) {
                Err(abi::Error::Timeout) => {
                    if ctrl_c(uart) {
                        let _ = job.process.kill();
                    }
                }
                r => break r,
            }
        };
        println!("[{}] {} {}", job.pid, job.name, jobs::describe(&exit));
        let _ = runtime::caps::drop_cap(job.process.token());
    }

    /// Every program `system` started (`SYSTEM::PROCESS`'s `List`), this
    /// shell's marked `shell`.
    fn ps(&mut self) {
        self.report_finished_jobs();
        let Some(list) = jobs::list("ps") else { return };
        if list.is_empty() {
            println!("ps: no programs running");
            return;
        }
        println!("  PID NAME             STATE      RESTARTS FROM");
        for p in &list {
            let from = if self.jobs.0.iter().any(|j| j.pid == p.pid) { "shell" } else { jobs::origin(p) };
            println!("{:>5} {:<16} {:<10} {:>8} {from}", p.pid, p.name.as_str(), jobs::state(p), p.restarts);
        }
    }

    /// End program `pid`: ours through its process capability, any other
    /// `system` started through `SYSTEM::PROCESS`'s `Kill` (admin key).
    fn kill(&mut self, pid: u64) {
        if let Some(i) = self.jobs.0.iter().position(|j| j.pid == pid) {
            let job = self.jobs.0.remove(i);
            match job.process.kill() {
                Ok(()) => {
                    let exit = job.process.wait_timeout(1_000_000_000);
                    println!("[{}] {} {}", job.pid, job.name, jobs::describe(&exit));
                }
                Err(e) => println!("kill: {pid}: {e:?}"),
            }
            let _ = runtime::caps::drop_cap(job.process.token());
            return;
        }
        let Some(list) = jobs::list("kill") else { return };
        let Some(p) = list.iter().find(|p| p.pid == pid && pid != 0) else {
            println!("kill: {pid}: no such program (see ps)");
            return;
        };
        match jobs::kill(pid) {
            Ok(()) if p.supervised => println!("[{pid}] {} killed (system restarts it)", p.name.as_str()),
            Ok(()) => println!("[{pid}] {} killed", p.name.as_str()),
            Err(e) => println!("kill: {pid}: {e}"),
        }
    }
}

/// A word the user typed, cut short for an error line.
pub fn shown(w: &str) -> String {
    let mut s: String = w.chars().take(64).collect();
    if w.len() > 64 {
        s.push_str("...");
    }
    s
}

/// Whether Ctrl-C is waiting on the line (other bytes typed meanwhile are dropped).
fn ctrl_c(uart: &mut dyn SerialInput) -> bool {
    let mut buf = [0u8; 16];
    let n = uart.read(&mut buf);
    buf[..n].contains(&CTRL_C)
}

fn help() {
    println!("commands:");
    for h in COMMANDS {
        let mut usage = String::from(h.name);
        if !h.args.is_empty() {
            usage.push(' ');
            usage.push_str(h.args);
        }
        println!("  {usage:<38} {}", h.what);
    }
    println!("keys: Backspace, Ctrl-U (erase line), Ctrl-C (abandon line / stop program), Up/Down (history)");
}

/// Every live channel's statistics and name.
fn channel_table() -> Result<Vec<(ChannelStats, String)>, abi::Error> {
    let mut ids = alloc::vec![0u64; MAX_CHANNELS];
    let (_, n) = debug::list_channels(&mut ids)?;
    let mut rows = Vec::with_capacity(n);
    for &id in &ids[..n] {
        // A channel can go between the list and the look-up.
        let Ok(s) = debug::channel_stats(id) else { continue };
        let mut name = [0u8; abi::limits::NAME_LEN];
        let len = debug::channel_name(id, &mut name).unwrap_or(0).min(name.len());
        rows.push((s, String::from(core::str::from_utf8(&name[..len]).unwrap_or("?"))));
    }
    Ok(rows)
}

fn print_channels() -> Result<usize, abi::Error> {
    let rows = channel_table()?;
    let mut out = String::new();
    let _ = writeln!(out, "CHANNEL OWNER NAME                    SENDS  RECVS REPLIES ERRORS PEAK SEND-W RECV-W");
    for (s, name) in &rows {
        let name = if name.is_empty() { "-" } else { name.as_str() };
        let _ = writeln!(
            out,
            "{:>7} {:>5} {:<20} {:>8} {:>6} {:>7} {:>6} {:>4} {:>6} {:>6}",
            s.id & 0xffff,
            s.owner,
            name,
            s.sends,
            s.receives,
            s.replies,
            s.errors,
            s.peak_depth,
            s.waiting_senders,
            s.waiting_receivers
        );
        if out.len() > 768 {
            runtime::print::write_bytes(out.as_bytes());
            out.clear();
        }
    }
    runtime::print::write_bytes(out.as_bytes());
    Ok(rows.len())
}

fn channels() {
    match print_channels() {
        Ok(n) => println!("{n} channels"),
        Err(e) => println!("channels: the IPC monitor refused: {e:?}"),
    }
}

/// The channel table, redrawn every second until a key is pressed.
fn top(uart: &mut dyn SerialInput) {
    loop {
        // Clear the screen and home the cursor (VT100; any terminal emulator).
        runtime::print::write_bytes(b"\x1b[2J\x1b[H");
        let ms = runtime::time::uptime_ms();
        println!("top: channels at {}.{:03} s (refreshed every second; any key quits)", ms / 1000, ms % 1000);
        if let Err(e) = print_channels() {
            println!("top: the IPC monitor refused: {e:?}");
            return;
        }
        let until = runtime::time::uptime_ms() + 1000;
        loop {
            let now = runtime::time::uptime_ms();
            if now >= until {
                break;
            }
            let mut buf = [0u8; 16];
            if uart.read_timeout(&mut buf, until - now) > 0 {
                return;
            }
        }
    }
}

/// Every entry of DEVMAN's registry; `None` (said as `cmd: why`) when
/// DEVMAN cannot answer.
fn registry(cmd: &str) -> Option<Vec<devman::proto::Entry>> {
    match devman::client::DevmanClient::connect().and_then(|c| c.query(devman::proto::Filter::All)) {
        Ok(entries) => Some(entries),
        Err(runtime::rpc::CallError::Ipc(abi::Error::NotFound)) => {
            println!("{cmd}: DEVMAN not running");
            None
        }
        Err(e) => {
            println!("{cmd}: DEVMAN refused: {e:?}");
            None
        }
    }
}

fn devices() {
    let Some(entries) = registry("devices") else { return };
    println!("{}", shell::devices::HEADER);
    for e in &entries {
        println!("{}", shell::devices::row(e));
    }
    println!("{} devices", entries.len());
}

fn stats() {
    match debug::totals() {
        Ok(t) => {
            println!("channels {}  names {}  messages in flight {}  delivered since boot {}", t.channels, t.names, t.in_flight, t.messages_total);
            println!(
                "kernel IPC memory: {} bytes in use ({} per channel, {} per message, {} per name)",
                t.bytes_in_use, t.bytes_per_channel, t.bytes_per_message, t.bytes_per_name
            );
        }
        Err(e) => println!("stats: the IPC monitor refused: {e:?}"),
    }
}

fn mem() {
    match debug::accounting() {
        Ok(a) => {
            let page = abi::PAGE_SIZE as u64;
            println!("free memory: {} frames ({} KiB)", a.free_frames, a.free_frames * page / 1024);
            println!(
                "free slots: processes {}  threads {}  channels {}  names {}  DMA regions {}",
                a.free_processes, a.free_threads, a.free_channels, a.free_names, a.free_dma
            );
        }
        Err(e) => println!("mem: the kernel's accounting refused: {e:?}"),
    }
    if let Ok(t) = debug::totals() {
        println!("kernel IPC memory: {} bytes in use", t.bytes_in_use);
    }
}
