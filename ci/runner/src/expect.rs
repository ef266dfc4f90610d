//! Judging a serial log against a check's pass rule.
//!
//! Pure logic, kept apart from process handling so it can be tested on
//! canned logs. A [`Watch`] is fed the lines as they arrive (so a run can
//! stop the moment its outcome is known) and then turned into a
//! [`Verdict`] together with how the run ended.

use std::fmt;
use std::time::Duration;

use crate::checks::{Pass, FATAL, SUITE_NEVER};
use crate::pattern::{Pattern, PatternError};
use crate::qemu::{Control, End, EXIT_PANIC, EXIT_PASS};

/// How long to keep reading after a panic or fault line, for the backtrace
/// that follows it (the kernel powers off right after, normally sooner).
pub const FATAL_GRACE: Duration = Duration::from_secs(2);

/// One reason a check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// QEMU did not start; nothing else is worth reporting.
    Launch(String),
    /// A line contained one of [`FATAL`].
    Fatal(String),
    /// An expected pattern never matched.
    Missing(String),
    /// QEMU did not exit with the status the check wants.
    ExitStatus { want: i32, got: End },
    /// No `N passed, M failed` line.
    NoResultLine,
    /// The result line reported failures.
    CasesFailed { passed: u32, failed: u32 },
    /// The result line reported that nothing ran.
    NothingRan,
    /// The guest printed `FAIL` lines.
    FailLines(Vec<String>),
    /// The disk images or the guest's report of them are wrong
    /// ([`crate::disk`]).
    Disk(String),
    /// A suite's log has lines of a program that must not run under
    /// `test=` ([`SUITE_NEVER`]: the shell, which would compete with the
    /// tests for COM1).
    Forbidden(Vec<String>),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Problem::Launch(why) => write!(f, "QEMU did not start: {why}"),
            Problem::Fatal(line) => write!(f, "fatal line: {line}"),
            Problem::Forbidden(lines) => write!(f, "lines that must not appear under test=: {lines:?}"),
            Problem::Missing(p) => write!(f, "expected line never appeared: `{p}`"),
            Problem::ExitStatus { want, got } => write!(f, "expected QEMU exit status {want}, got: {}", got.describe()),
            Problem::NoResultLine => f.write_str("no `N passed, M failed` line"),
            Problem::CasesFailed { passed, failed } => write!(f, "{passed} passed, {failed} failed"),
            Problem::NothingRan => f.write_str("0 passed: no test case ran"),
            Problem::FailLines(lines) => write!(f, "{} `FAIL` line(s)", lines.len()),
            Problem::Disk(why) => write!(f, "disk: {why}"),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub problems: Vec<Problem>,
    /// The suite's last `N passed, M failed` line, if any.
    pub result_line: Option<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The `FAIL` lines, for the summary.
    pub fn fail_lines(&self) -> &[String] {
        self.problems
            .iter()
            .find_map(|p| match p {
                Problem::FailLines(l) => Some(l.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }
}

/// Parse a suite's result line, `^(\d+) passed, (\d+) failed$`.
pub fn parse_result(line: &str) -> Option<(u32, u32)> {
    let rest = line.trim_end().strip_suffix(" failed")?;
    let (passed, failed) = rest.split_once(" passed, ")?;
    Some((number(passed)?, number(failed)?))
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Whether `line` reports a failed case.
pub fn is_fail_line(line: &str) -> bool {
    line.starts_with("FAIL")
}

/// State built up from the lines of one run.
#[derive(Debug)]
pub struct Watch {
    pass: Pass,
    patterns: Vec<Pattern>,
    seen: Vec<bool>,
    fatal: Vec<String>,
    fail_lines: Vec<String>,
    /// Lines of [`SUITE_NEVER`] seen in a suite's run.
    forbidden: Vec<String>,
    /// The last result line and its counts.
    result: Option<(String, u32, u32)>,
    /// The first result line that reported failures (a suite should print
    /// one result line; if it prints more, none may report a failure).
    failed_result: Option<(u32, u32)>,
}

impl Watch {
    /// Start watching for `pass`, also requiring the lines `also` (for a
    /// suite: what only the serial log can show, such as the kernel's own
    /// output). Fails only on a bad pattern in the tables.
    pub fn with_lines(pass: Pass, also: &[&str]) -> Result<Watch, PatternError> {
        let listed: &[&str] = match pass {
            Pass::Lines(list) | Pass::Crash(list) => list,
            Pass::Suite => &[],
        };
        let patterns = listed.iter().chain(also).map(|p| Pattern::new(p)).collect::<Result<Vec<_>, _>>()?;
        let seen = vec![false; patterns.len()];
        Ok(Watch { pass, patterns, seen, fatal: Vec::new(), fail_lines: Vec::new(), forbidden: Vec::new(), result: None, failed_result: None })
    }

    /// Take in one line and say whether the run can stop.
    pub fn feed(&mut self, line: &str) -> Control {
        if FATAL.iter().any(|f| line.contains(f)) {
            self.fatal.push(line.to_string());
        }
        for (p, seen) in self.patterns.iter().zip(self.seen.iter_mut()) {
            *seen |= p.is_match(line);
        }
        if is_fail_line(line) {
            self.fail_lines.push(line.to_string());
        }
        if self.pass == Pass::Suite && SUITE_NEVER.iter().any(|n| line.contains(n)) {
            self.forbidden.push(line.to_string());
        }
        if let Some((passed, failed)) = parse_result(line) {
            self.result = Some((line.trim_end().to_string(), passed, failed));
            if failed > 0 && self.failed_result.is_none() {
                self.failed_result = Some((passed, failed));
            }
        }
        // A crash check waits for the kernel's own power-off: its exit
        // status is part of what is checked.
        if !self.fatal.is_empty() && !matches!(self.pass, Pass::Crash(_)) {
            Control::StopAfter(FATAL_GRACE)
        } else if matches!(self.pass, Pass::Lines(_)) && self.seen.iter().all(|&s| s) {
            Control::Stop
        } else {
            Control::Continue
        }
    }

    /// The patterns not seen so far.
    pub fn missing(&self) -> Vec<&str> {
        self.patterns.iter().zip(&self.seen).filter(|(_, &s)| !s).map(|(p, _)| p.source()).collect()
    }

    /// Judge the run, given how it ended.
    pub fn verdict(&self, end: &End) -> Verdict {
        if let End::Launch(why) = end {
            return Verdict { problems: vec![Problem::Launch(why.clone())], result_line: None };
        }
        let mut problems = Vec::new();
        if let Pass::Crash(_) = self.pass {
            if *end != End::Exited(EXIT_PANIC) {
                problems.push(Problem::ExitStatus { want: EXIT_PANIC, got: end.clone() });
            }
        } else {
            problems.extend(self.fatal.iter().cloned().map(Problem::Fatal));
        }
        problems.extend(self.missing().into_iter().map(|p| Problem::Missing(p.to_string())));
        if self.pass == Pass::Suite {
            if *end != End::Exited(EXIT_PASS) {
                problems.push(Problem::ExitStatus { want: EXIT_PASS, got: end.clone() });
            }
            match (&self.result, self.failed_result) {
                (None, _) => problems.push(Problem::NoResultLine),
                (_, Some((passed, failed))) => problems.push(Problem::CasesFailed { passed, failed }),
                (Some((_, 0, _)), None) => problems.push(Problem::NothingRan),
                (Some(_), None) => {}
            }
            if !self.fail_lines.is_empty() {
                problems.push(Problem::FailLines(self.fail_lines.clone()));
            }
            if !self.forbidden.is_empty() {
                problems.push(Problem::Forbidden(self.forbidden.clone()));
            }
        }
        Verdict { problems, result_line: self.result.as_ref().map(|r| r.0.clone()) }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checks::BOOT_LINES;

    /// Judge a complete log in one go (what the runner does incrementally).
    fn evaluate<S: AsRef<str>>(pass: Pass, lines: &[S], end: &End) -> Result<Verdict, PatternError> {
        let mut w = Watch::with_lines(pass, &[])?;
        for l in lines {
            w.feed(l.as_ref());
        }
        Ok(w.verdict(end))
    }

    /// A real netboot log (the plain-boot checks use it too).
    pub(crate) const BOOT_LOG: &[&str] = &[
        "[info ] kernel 0.1.0 booting",
        "[info ] command line: tftp://10.0.2.2/kernel.elf",
        "[info ] memory map: 0x000000000000..0x00000009fc00 usable",
        "[info ] memory: 252 MiB usable, 64658 frames free; kernel 0x100000..0x140000",
        "[info ] started process 1 'system'",
        "system: v0.1.0 started in user mode (CPL 3)",
        "system: ramfs: 4 entries",
        "system:   file   1149864 system",
        "system:   file   1124848 ktest",
        "system: acpi: RSDP revision 0 (BOCHS ) at 0xd17000, checksum ok",
        "system: acpi: RSDT at 0xffe22e1, 56 bytes, checksum ok",
        "system: started vfs (pid 2) from boot:/vfs (boot module)",
        "system: started ramfs (pid 3) from boot:/ramfs (boot module)",
        "vfs: serving SYSTEM::VFS",
        "ramfs: serving boot: (10 objects)",
        "system: started devman (pid 4) from boot:/devman",
        "devman: serving DEVMAN::REGISTRY",
        "devman: RSDP at 0xf36a0 (BIOS area scan), revision 0, RSDT at 0xd22e1",
        "devman: MCFG: 1 ECAM window(s)",
        "[info ] pcid: off",
        "pcidrv: 00:00.0 8086:29c0 class 06.00.00",
        "pcidrv: 00:1f.2 8086:2922 class 01.06.01 BAR4 io 0x0+0x20 BAR5 mem32 0xc1001000+0x1000",
        "devman: started pcidrv (pid 5) for segment 0 buses 00-ff at 0xb0000000",
        "pcidrv: registered 6 functions with DEVMAN::REGISTRY",
        "system: started shell (pid 6) from boot:/shell",
        "system: boot servers up: vfs ramfs devman shell in 28 ms",
        "system: ready",
        "shell: ready; type help for the commands",
    ];

    fn suite_log(extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = BOOT_LOG[..7].iter().map(|s| s.to_string()).collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    }

    const PANIC_LOG: &[&str] = &[
        "[info ] lapic: base 0xfee00000, timer 62714 counts/ms",
        "KERNEL PANIC: panicked at kernel/src/boot/selftest.rs:32:26:",
        "self-test: panic on request",
        "backtrace:",
        "  #0 0xffffffff8011b1ac",
        "  #1 0xffffffff801184d6",
        "[info ] power off (code 127)",
    ];

    #[test]
    fn a_crash_check_wants_the_report_and_the_panic_status() {
        let pass = Pass::Crash(crate::checks::PANIC_LINES);
        let mut w = Watch::with_lines(pass, &[]).unwrap();
        for l in PANIC_LOG {
            assert_eq!(w.feed(l), Control::Continue, "a crash check waits for the power-off");
        }
        assert!(w.verdict(&End::Exited(EXIT_PANIC)).passed());
        assert_eq!(w.verdict(&End::TimedOut).problems, [Problem::ExitStatus { want: EXIT_PANIC, got: End::TimedOut }]);
        // Without the backtrace the report is incomplete.
        let v = evaluate(pass, &PANIC_LOG[..3], &End::Exited(EXIT_PANIC)).unwrap();
        assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
        // Elsewhere the same lines are a failure.
        let v = evaluate(Pass::Lines(&[]), PANIC_LOG, &End::Exited(EXIT_PANIC)).unwrap();
        assert_eq!(v.problems, [Problem::Fatal(PANIC_LOG[1].into())]);
    }

    #[test]
    fn suites_can_require_lines() {
        let also = [r"ipc: t\d+ send"];
        let mut w = Watch::with_lines(Pass::Suite, &also).unwrap();
        for l in suite_log(&["ok - a", "1 passed, 0 failed"]) {
            assert_eq!(w.feed(&l), Control::Continue, "a suite runs to its end");
        }
        let v = w.verdict(&End::Exited(33));
        assert_eq!(v.problems, [Problem::Missing(also[0].to_string())]);
        let mut w = Watch::with_lines(Pass::Suite, &also).unwrap();
        for l in suite_log(&["[info ] ipc: t2 send ch61 tag 0x2 size 0", "ok - a", "1 passed, 0 failed"]) {
            w.feed(&l);
        }
        assert!(w.verdict(&End::Exited(33)).passed());
    }

    #[test]
    fn a_suite_run_with_the_shell_started_fails() {
        for bad in ["system: started shell (pid 5) from boot:/shell", "shell: ready; type help for the commands"] {
            let mut w = Watch::with_lines(Pass::Suite, &[]).unwrap();
            for l in suite_log(&[bad, "ok - a", "1 passed, 0 failed"]) {
                w.feed(&l);
            }
            assert_eq!(w.verdict(&End::Exited(33)).problems, [Problem::Forbidden(vec![bad.to_string()])]);
        }
        // A normal boot starts it, of course.
        let mut w = Watch::with_lines(Pass::Lines(&["shell: ready"]), &[]).unwrap();
        w.feed("system: started shell (pid 5) from boot:/shell");
        w.feed("shell: ready; type help for the commands");
        assert!(w.verdict(&End::Stopped).passed());
    }

    #[test]
    fn all_lines_present_passes_and_stops_at_the_last() {
        let mut w = Watch::with_lines(Pass::Lines(BOOT_LINES), &[]).unwrap();
        let (last, rest) = BOOT_LOG.split_last().unwrap();
        for l in rest {
            assert_eq!(w.feed(l), Control::Continue, "{l}");
        }
        assert_eq!(w.feed(last), Control::Stop);
        let v = w.verdict(&End::Stopped);
        assert!(v.passed(), "{:?}", v.problems);
    }

    #[test]
    fn order_does_not_matter() {
        let mut log = BOOT_LOG.to_vec();
        log.reverse();
        assert!(evaluate(Pass::Lines(BOOT_LINES), &log, &End::Stopped).unwrap().passed());
    }

    #[test]
    fn a_missing_line_is_reported() {
        let log: Vec<&str> = BOOT_LOG.iter().copied().filter(|l| *l != "system: ready").collect();
        let v = evaluate(Pass::Lines(BOOT_LINES), &log, &End::TimedOut).unwrap();
        assert!(!v.passed());
        assert_eq!(v.problems, [Problem::Missing("system: ready".into())]);
    }

    #[test]
    fn an_empty_log_misses_everything() {
        let v = evaluate::<&str>(Pass::Lines(BOOT_LINES), &[], &End::TimedOut).unwrap();
        assert_eq!(v.problems.len(), BOOT_LINES.len());
    }

    #[test]
    fn a_panic_line_fails_even_with_every_line_present() {
        let mut log = BOOT_LOG.to_vec();
        log.insert(3, "[error] KERNEL PANIC: panicked at kernel/src/mem.rs:10:5: oops");
        let mut w = Watch::with_lines(Pass::Lines(BOOT_LINES), &[]).unwrap();
        let controls: Vec<Control> = log.iter().map(|l| w.feed(l)).collect();
        assert_eq!(controls[3], Control::StopAfter(FATAL_GRACE), "a panic ends the run soon");
        let v = w.verdict(&End::Exited(255));
        assert!(!v.passed());
        assert!(matches!(&v.problems[0], Problem::Fatal(l) if l.contains("KERNEL PANIC")));
    }

    #[test]
    fn a_fault_line_fails_a_passing_suite() {
        let log = suite_log(&["ok - a", "KERNEL FAULT: page fault (vector 14)", "1 passed, 0 failed"]);
        let v = evaluate(Pass::Suite, &log, &End::Exited(33)).unwrap();
        assert_eq!(v.problems.len(), 1);
        assert!(matches!(&v.problems[0], Problem::Fatal(_)));
    }

    #[test]
    fn a_clean_suite_passes() {
        let log = suite_log(&["ok - send", "ok - recv", "2 passed, 0 failed"]);
        let v = evaluate(Pass::Suite, &log, &End::Exited(33)).unwrap();
        assert!(v.passed(), "{:?}", v.problems);
        assert_eq!(v.result_line.as_deref(), Some("2 passed, 0 failed"));
    }

    #[test]
    fn a_suite_with_a_fail_line_fails_even_if_the_counts_say_otherwise() {
        let log = suite_log(&["ok - send", "FAIL - recv: got 3, expected 4", "2 passed, 0 failed"]);
        let v = evaluate(Pass::Suite, &log, &End::Exited(33)).unwrap();
        assert!(!v.passed());
        assert_eq!(v.fail_lines(), ["FAIL - recv: got 3, expected 4"]);
    }

    #[test]
    fn a_failing_suite_reports_counts_status_and_cases() {
        let log = suite_log(&["ok - send", "FAIL - recv: timeout", "1 passed, 1 failed"]);
        let v = evaluate(Pass::Suite, &log, &End::Exited(35)).unwrap();
        assert_eq!(
            v.problems,
            [
                Problem::ExitStatus { want: EXIT_PASS, got: End::Exited(35) },
                Problem::CasesFailed { passed: 1, failed: 1 },
                Problem::FailLines(vec!["FAIL - recv: timeout".into()]),
            ]
        );
    }

    #[test]
    fn zero_cases_is_a_failure() {
        let v = evaluate(Pass::Suite, &suite_log(&["0 passed, 0 failed"]), &End::Exited(33)).unwrap();
        assert_eq!(v.problems, [Problem::NothingRan]);
    }

    #[test]
    fn the_pass_status_alone_is_not_enough() {
        let v = evaluate(Pass::Suite, &suite_log(&["ok - a"]), &End::Exited(33)).unwrap();
        assert_eq!(v.problems, [Problem::NoResultLine]);
    }

    #[test]
    fn a_good_result_line_without_the_pass_status_fails() {
        let log = suite_log(&["ok - a", "1 passed, 0 failed"]);
        for end in [End::Exited(0), End::Exited(255), End::TimedOut, End::Stopped] {
            let v = evaluate(Pass::Suite, &log, &end).unwrap();
            assert_eq!(v.problems, [Problem::ExitStatus { want: EXIT_PASS, got: end }]);
        }
    }

    #[test]
    fn a_silent_timeout_fails_a_suite() {
        let v = evaluate::<&str>(Pass::Suite, &[], &End::TimedOut).unwrap();
        assert_eq!(v.problems, [Problem::ExitStatus { want: EXIT_PASS, got: End::TimedOut }, Problem::NoResultLine]);
    }

    #[test]
    fn a_launch_failure_is_the_only_problem_reported() {
        for pass in [Pass::Lines(&[]), Pass::Lines(BOOT_LINES), Pass::Suite] {
            let v = evaluate::<&str>(pass, &[], &End::Launch("no qemu".into())).unwrap();
            assert_eq!(v.problems, [Problem::Launch("no qemu".into())]);
        }
    }

    #[test]
    fn result_line_parsing() {
        assert_eq!(parse_result("12 passed, 0 failed"), Some((12, 0)));
        assert_eq!(parse_result("0 passed, 0 failed"), Some((0, 0)));
        assert_eq!(parse_result("3 passed, 2 failed\r"), Some((3, 2)));
        for bad in [
            "",
            "passed, 0 failed",
            " 1 passed, 0 failed",
            "ktest: 1 passed, 0 failed",
            "1 passed, 0 failed!",
            "+1 passed, 0 failed",
            "1 passed,  0 failed",
            "1 passed, -1 failed",
            "99999999999 passed, 0 failed",
        ] {
            assert_eq!(parse_result(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn no_result_line_may_report_failures() {
        let log = suite_log(&["1 passed, 1 failed", "ok - a", "2 passed, 0 failed"]);
        let v = evaluate(Pass::Suite, &log, &End::Exited(33)).unwrap();
        assert_eq!(v.result_line.as_deref(), Some("2 passed, 0 failed"));
        assert_eq!(v.problems, [Problem::CasesFailed { passed: 1, failed: 1 }]);
    }

    #[test]
    fn fail_lines_must_start_the_line() {
        assert!(is_fail_line("FAIL - x: y"));
        assert!(!is_fail_line("system: no FAIL here"));
        assert!(!is_fail_line("ok - FAIL handling"));
    }
}
