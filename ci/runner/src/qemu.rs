//! Running QEMU with a hard deadline while watching its serial output.
//!
//! The guest is untrusted in the sense that matters here: it may print
//! nothing, loop forever, or never power off. So the runner, not QEMU or the
//! guest, decides when a run ends: lines are read on a thread and handed
//! over a channel, the caller's watcher sees each one as it arrives and may
//! stop the run early, and at the deadline QEMU is killed. QEMU is a direct
//! child in the runner's process group, so Ctrl-C stops it too.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The emulator binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// What the watcher wants after seeing a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Stop now: the outcome is decided.
    Stop,
    /// Stop after a short grace period (e.g. to collect a backtrace that
    /// follows a panic line), unless QEMU exits first.
    StopAfter(Duration),
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// QEMU exited by itself with this status code.
    Exited(i32),
    /// QEMU died from a signal the runner did not send.
    Signalled(String),
    /// The watcher stopped the run and the runner killed QEMU.
    Stopped,
    /// The deadline passed and the runner killed QEMU.
    TimedOut,
    /// QEMU could not be started.
    Launch(String),
}

impl End {
    /// A human description, including what QEMU exit codes mean for this
    /// kernel (isa-debug-exit turns a guest write of `v` into `v * 2 + 1`).
    pub fn describe(&self) -> String {
        match self {
            End::Exited(code) => format!("QEMU exited with status {code} ({})", exit_meaning(*code)),
            End::Signalled(s) => format!("QEMU was killed by a signal ({s})"),
            End::Stopped => "stopped by the runner (outcome decided)".into(),
            End::TimedOut => "timed out; QEMU killed".into(),
            End::Launch(e) => format!("QEMU did not start: {e}"),
        }
    }
}

/// QEMU exit status of an in-guest pass (`isa-debug-exit` value 0x10).
pub const EXIT_PASS: i32 = 33;
/// QEMU exit status of an in-guest failure (value 0x11).
pub const EXIT_FAIL: i32 = 35;
/// QEMU exit status of a kernel panic or fatal fault (value 0x7f).
pub const EXIT_PANIC: i32 = 255;

fn exit_meaning(code: i32) -> String {
    match code {
        EXIT_PASS => "in-guest test driver passed".into(),
        EXIT_FAIL => "in-guest test driver failed".into(),
        EXIT_PANIC => "kernel panic or fatal fault".into(),
        0 => "no debug-exit write: QEMU quit, e.g. a triple fault under -no-reboot".into(),
        1 => "QEMU error, see its stderr".into(),
        c if c > 0 && c % 2 == 1 => format!("guest wrote {:#x} to debug-exit", (c - 1) / 2),
        _ => "unexpected".into(),
    }
}

/// Everything a run produced.
#[derive(Debug)]
pub struct Run {
    /// Serial output, one entry per line, without the line ending.
    pub lines: Vec<String>,
    pub stderr: String,
    pub end: End,
    pub elapsed: Duration,
}

/// How long to keep collecting output after QEMU is gone. Only a process
/// that QEMU left behind holding the pipes could make this matter.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Run QEMU with `args` for at most `timeout`, passing every serial line to
/// `watch` as it arrives. Never blocks past the deadline (plus the time to
/// reap the killed process and collect the rest of its output).
pub fn run(args: &[String], timeout: Duration, watch: impl FnMut(&str) -> Control) -> Run {
    run_program(QEMU, args, timeout, watch)
}

/// [`run`] for any program (the tests use `sh`).
fn run_program(program: &str, args: &[String], timeout: Duration, mut watch: impl FnMut(&str) -> Control) -> Run {
    let start = Instant::now();
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let end = End::Launch(launch_error(program, &e));
            return Run { lines: Vec::new(), stderr: String::new(), end, elapsed: start.elapsed() };
        }
    };
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill(&mut child);
        let end = End::Launch("stdout/stderr were not captured".into());
        return Run { lines: Vec::new(), stderr: String::new(), end, elapsed: start.elapsed() };
    };
    let lines_rx = spawn_line_reader(stdout);
    let (err_tx, err_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        let _ = err_tx.send(String::from_utf8_lossy(&buf).into_owned());
    });

    let mut lines = Vec::new();
    let end = watch_lines(&lines_rx, &mut child, start + timeout, &mut lines, &mut watch);
    // A no-op if QEMU already exited and was reaped.
    kill(&mut child);
    // Lines that were still in the pipe: the watcher sees them (a panic
    // line there must count) but can no longer stop anything.
    let drain_until = Instant::now() + DRAIN_LIMIT;
    while let Some(left) = drain_until.checked_duration_since(Instant::now()) {
        match lines_rx.recv_timeout(left) {
            Ok(line) => {
                let _ = watch(&line);
                lines.push(line);
            }
            Err(_) => break,
        }
    }
    let left = drain_until.saturating_duration_since(Instant::now());
    let stderr = err_rx.recv_timeout(left.max(Duration::from_millis(100))).unwrap_or_default();
    Run { lines, stderr, end, elapsed: start.elapsed() }
}

fn launch_error(program: &str, e: &std::io::Error) -> String {
    if e.kind() != std::io::ErrorKind::NotFound {
        format!("cannot run {program}: {e}")
    } else if program == QEMU {
        format!("{QEMU} not found; install it with `apt-get install -y qemu-system-x86` (or run ci/setup.sh)")
    } else {
        format!("{program} not found")
    }
}

/// Feed lines to the watcher until QEMU exits, the watcher stops the run,
/// or the deadline passes.
fn watch_lines(
    rx: &Receiver<String>,
    child: &mut Child,
    deadline: Instant,
    lines: &mut Vec<String>,
    watch: &mut impl FnMut(&str) -> Control,
) -> End {
    let mut stop_at: Option<Instant> = None;
    loop {
        let limit = stop_at.map_or(deadline, |s| s.min(deadline));
        let Some(left) = limit.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
            return if stop_at.is_some_and(|s| s < deadline) { End::Stopped } else { End::TimedOut };
        };
        match rx.recv_timeout(left) {
            Ok(line) => {
                let control = watch(&line);
                lines.push(line);
                match control {
                    Control::Continue => {}
                    Control::Stop => return End::Stopped,
                    Control::StopAfter(grace) => {
                        let at = Instant::now() + grace;
                        stop_at = Some(stop_at.map_or(at, |s| s.min(at)));
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            // stdout closed: QEMU is exiting. If it somehow keeps running,
            // the deadline still holds.
            Err(RecvTimeoutError::Disconnected) => {
                return match wait_until(child, limit) {
                    Some(status) => ended_by(status),
                    None if stop_at.is_some_and(|s| s < deadline) => End::Stopped,
                    None => End::TimedOut,
                };
            }
        }
    }
}

/// Read lines from `out` on a thread; the channel closes at EOF.
fn spawn_line_reader(out: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Poll for the child's exit until `limit`.
fn wait_until(child: &mut Child, limit: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < limit => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

fn ended_by(status: ExitStatus) -> End {
    match status.code() {
        Some(code) => End::Exited(code),
        None => End::Signalled(status.to_string()),
    }
}

fn kill(child: &mut Child) {
    // Errors mean it has already exited; `wait` reaps it either way.
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_explained() {
        assert!(End::Exited(33).describe().contains("passed"));
        assert!(End::Exited(35).describe().contains("failed"));
        assert!(End::Exited(255).describe().contains("panic"));
        assert!(End::Exited(7).describe().contains("0x3"));
    }

    fn sh(script: &str, timeout_ms: u64, watch: impl FnMut(&str) -> Control) -> Run {
        run_program("sh", &["-c".to_string(), script.to_string()], Duration::from_millis(timeout_ms), watch)
    }

    #[test]
    fn lines_status_and_stderr_are_collected() {
        let mut seen = Vec::new();
        let run = sh(r#"printf 'a\r\nb\n'; echo oops >&2; printf c; exit 33"#, 10_000, |l| {
            seen.push(l.to_string());
            Control::Continue
        });
        assert_eq!(run.end, End::Exited(33));
        assert_eq!(run.lines, ["a", "b", "c"]);
        assert_eq!(seen, run.lines, "the watcher sees every line");
        assert_eq!(run.stderr, "oops\n");
    }

    #[test]
    fn a_silent_hang_times_out() {
        let run = sh("exec sleep 30", 300, |_| Control::Continue);
        assert_eq!(run.end, End::TimedOut);
        assert!(run.lines.is_empty());
        assert!(run.elapsed < Duration::from_secs(5), "took {:?}", run.elapsed);
    }

    #[test]
    fn the_watcher_can_stop_a_run() {
        let run = sh("echo ready; exec sleep 30", 10_000, |l| if l == "ready" { Control::Stop } else { Control::Continue });
        assert_eq!(run.end, End::Stopped);
        assert_eq!(run.lines, ["ready"]);
        assert!(run.elapsed < Duration::from_secs(5), "took {:?}", run.elapsed);
    }

    #[test]
    fn stop_after_keeps_collecting_for_the_grace_period() {
        let run = sh("echo PANIC; echo backtrace; exec sleep 30", 10_000, |l| {
            if l == "PANIC" {
                Control::StopAfter(Duration::from_millis(500))
            } else {
                Control::Continue
            }
        });
        assert_eq!(run.end, End::Stopped);
        assert_eq!(run.lines, ["PANIC", "backtrace"]);
        assert!(run.elapsed < Duration::from_secs(5), "took {:?}", run.elapsed);
    }

    #[test]
    fn an_exit_within_the_grace_period_is_reported() {
        let run = sh("echo PANIC; exit 255", 10_000, |_| Control::StopAfter(Duration::from_secs(5)));
        assert_eq!(run.end, End::Exited(255));
    }

    #[test]
    fn a_leftover_process_holding_the_pipe_does_not_block() {
        let run = sh("sleep 4 & echo x; exec sleep 30", 300, |_| Control::Continue);
        assert_eq!(run.end, End::TimedOut);
        assert_eq!(run.lines, ["x"]);
        assert!(run.elapsed < Duration::from_secs(4), "took {:?}", run.elapsed);
    }

    #[test]
    fn a_missing_program_is_a_launch_error() {
        let run = run_program("/nonexistent/qemu", &[], Duration::from_secs(1), |_| Control::Continue);
        assert!(matches!(&run.end, End::Launch(m) if m.contains("not found")), "{:?}", run.end);
        assert!(launch_error(QEMU, &std::io::ErrorKind::NotFound.into()).contains("apt-get install -y qemu-system-x86"));
    }
}
