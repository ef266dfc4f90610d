//! Running one boot check end to end: arguments, QEMU, verdict, log file,
//! report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::args;
use image_builder::media;
use crate::checks::{self, Boot, Check, Firmware, Medium};
use crate::expect::{Problem, Verdict, Watch};
use crate::qemu::{self, End, Run};
use crate::pattern::Pattern;
use crate::report::{indent, Outcome};
use crate::symbolize::Symbolizer;

/// Where each run's log goes, inside the target directory.
pub const LOG_DIR: &str = "ci-logs";
/// Where the disk checks' images go, inside the target directory.
pub const DISK_DIR: &str = "ci-disks";

/// A finished boot check.
pub struct Booted {
    pub outcome: Outcome,
    /// The serial output (the bench command reads its BENCH lines).
    pub lines: Vec<String>,
}

/// Boot `check` with `extra` QEMU arguments, report it as `label` (also the
/// log's file name), print its summary, and return the outcome.
pub fn run(ws: &Path, check: &Check, label: &str, extra: &[&str], verbose: bool) -> Booted {
    let dir = image_builder::image_dir(ws);
    let needed = match check.boot {
        Boot::Direct { .. } => dir.join("kernel.elf"),
        Boot::Netboot => dir.join("tftp").join("boot.ipxe"),
        Boot::Media { medium: Medium::Network, .. } => dir.join(media::UEFI_NET).join(media::UEFI_NET_LOADER),
        Boot::Media { .. } => dir.join(media::ISO),
    };
    if !needed.is_file() {
        let why = format!(
            "{} is missing; build the image with `cargo run -p image-builder` (GRUB's media need `ci/setup.sh` first)",
            needed.display()
        );
        return not_run(label, why);
    }
    if matches!(check.boot, Boot::Media { firmware: Firmware::Ovmf, .. }) && !Path::new(args::OVMF_CODE).is_file() {
        return not_run(label, format!("{} is missing; install the `ovmf` package (ci/setup.sh does)", args::OVMF_CODE));
    }
    let mut watch = match Watch::with_lines(check.pass, check.also) {
        Ok(w) => w,
        Err(e) => return not_run(label, format!("checks table: {e}")),
    };
    let disks = match crate::disk::prepare(&image_builder::target_dir(ws).join(DISK_DIR), &check.name) {
        Ok(d) => d,
        Err(e) => return not_run(label, format!("disk images: {e}")),
    };
    let mut qemu_args = args::with_extra(args::for_boot(&check.boot, &dir), extra);
    qemu_args.extend(disks.iter().flat_map(|d| d.qemu_args.iter().cloned()));
    let mut sym = Symbolizer::new(ws, &dir);
    let run = qemu::run(&qemu_args, check.timeout, |line| {
        if verbose {
            println!("  | {}", sym.annotate(line));
        }
        watch.feed(line)
    });
    let mut verdict = watch.verdict(&run.end);
    if let Some(d) = &disks {
        verdict.problems.extend(d.verify(&run.lines).into_iter().map(Problem::Disk));
    }
    let shown = sym.annotate_all(&run.lines);
    verdict.problems.extend(missing_symbolized(&check.name, &shown));
    let log = write_log(ws, label, &qemu_args, &run, &shown, &verdict);

    let outcome = if verdict.passed() {
        Outcome::pass(label, run.elapsed, verdict.result_line.clone())
    } else {
        let mut reasons: Vec<String> = verdict.problems.iter().map(|p| p.to_string()).collect();
        reasons.extend(verdict.fail_lines().iter().map(|l| format!("  {l}")));
        Outcome::fail(label, run.elapsed, reasons)
    };
    println!("{}", outcome.summary_line());
    if !verdict.passed() {
        print!("{}", failure_details(check, &qemu_args, &run, &shown, &verdict, log.as_deref()));
    }
    Booted { outcome, lines: run.lines }
}

/// The check's [`checks::SYMBOLIZED_LINES`] that no symbolized line
/// matches.
fn missing_symbolized(check: &str, shown: &[String]) -> Vec<Problem> {
    let wanted = checks::SYMBOLIZED_LINES.iter().filter(|(name, _)| *name == check).flat_map(|(_, lines)| lines.iter());
    wanted
        .filter_map(|p| match Pattern::new(p) {
            Ok(pat) if shown.iter().any(|l| pat.is_match(l)) => None,
            Ok(_) => Some(Problem::Missing(p.to_string())),
            Err(e) => Some(Problem::Missing(e.to_string())),
        })
        .collect()
}

fn not_run(label: &str, why: String) -> Booted {
    let outcome = Outcome::fail(label, Default::default(), vec![why.clone()]);
    println!("{}\n  {why}", outcome.summary_line());
    Booted { outcome, lines: Vec::new() }
}

fn command_line(qemu_args: &[String]) -> String {
    let quoted: Vec<String> =
        qemu_args.iter().map(|a| if a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect();
    format!("{} {}", qemu::QEMU, quoted.join(" "))
}

/// Everything needed to debug a failed check without re-running it.
fn failure_details(check: &Check, qemu_args: &[String], run: &Run, shown: &[String], verdict: &Verdict, log: Option<&Path>) -> String {
    let mut s = String::new();
    for p in &verdict.problems {
        let _ = writeln!(s, "  - {p}");
    }
    if !verdict.fail_lines().is_empty() {
        let _ = writeln!(s, "  failing cases:");
        for l in verdict.fail_lines() {
            let _ = writeln!(s, "    {l}");
        }
    }
    let timed_out = if run.end == End::TimedOut { "yes" } else { "no" };
    let _ = writeln!(s, "  timed out: {timed_out} (limit {} s)", check.timeout.as_secs());
    let _ = writeln!(s, "  exit status: {}", run.end.describe());
    let _ = writeln!(s, "  command: {}", command_line(qemu_args));
    let saved = log.map(|p| format!("; saved in {}", p.display())).unwrap_or_default();
    let _ = writeln!(s, "  serial log ({} lines{saved}):", run.lines.len());
    for l in shown {
        let _ = writeln!(s, "  | {l}");
    }
    if !run.stderr.trim().is_empty() {
        let _ = writeln!(s, "  qemu stderr:");
        s.push_str(&indent(&run.stderr, "  ! "));
    }
    s
}

/// Write `<target>/ci-logs/<label>.log` (the serial lines as `shown`,
/// symbolized); a failure to write is a warning, not a failed check.
fn write_log(ws: &Path, label: &str, qemu_args: &[String], run: &Run, shown: &[String], verdict: &Verdict) -> Option<PathBuf> {
    let dir = image_builder::target_dir(ws).join(LOG_DIR);
    let path = dir.join(format!("{label}.log"));
    let mut text = format!("# {}\n", command_line(qemu_args));
    for l in shown {
        text.push_str(l);
        text.push('\n');
    }
    let _ = writeln!(text, "# end: {} after {:.1} s", run.end.describe(), run.elapsed.as_secs_f64());
    let _ = writeln!(text, "# verdict: {}", if verdict.passed() { "PASS" } else { "FAIL" });
    for p in &verdict.problems {
        let _ = writeln!(text, "#   {p}");
    }
    if !run.stderr.is_empty() {
        text.push_str("# qemu stderr:\n");
        text.push_str(&indent(&run.stderr, "# ! "));
    }
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, text)) {
        Ok(()) => Some(path),
        Err(e) => {
            eprintln!("ci: warning: cannot write {}: {e}", path.display());
            None
        }
    }
}
