//! `cargo run -p ci -- <command>`: the project's test runner.
//!
//! The kernel can only be tested by booting it, so besides the host tests
//! this builds the boot image and boots it under QEMU in every mode that
//! matters (direct boot, each in-guest test suite, network boot), judging
//! each run from its serial output and the exit status the guest sets
//! through QEMU's isa-debug-exit device. Everything runs from the
//! workspace root regardless of the current directory.

mod args;
mod bench;
mod boot;
mod cargo;
mod checks;
mod disk;
mod expect;
mod pattern;
mod qemu;
mod report;
mod session;
mod shellcheck;
mod symbolize;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use report::Outcome;

const USAGE: &str = "\
usage: cargo run -p ci -- <command> [options]

commands:
  test            host tests, clippy, image build, every boot check, netboot
  boot <name> [key=value..]
                  build the image, then run one check (see `list`); any
                  key=value words go on the kernel command line (e.g.
                  `boot fuzz fuzz_seed=42`)
  bench           build the image, boot the bench suite under -icount and TCG
  symbolize <log> print a saved serial log with ` [function at file:line]`
                  after every fault report and backtrace address (from the
                  ELFs of the image as it is now)
  list            print the checks
  help            print this

options:
  --no-build      (boot, bench) use the image in <target>/image as it is
                  (<target>: $CARGO_TARGET_DIR, else target/)
  -v, --verbose   print serial output as it arrives";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Command {
    Test,
    /// A check, with extra kernel command-line arguments.
    Boot(String, Vec<String>),
    Bench,
    /// Print a saved log, symbolized.
    Symbolize(String),
    List,
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    command: Command,
    build: bool,
    verbose: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut build = true;
    let mut verbose = false;
    let mut words = Vec::new();
    for a in args {
        match a.as_str() {
            "--no-build" => build = false,
            "-v" | "--verbose" => verbose = true,
            "-h" | "--help" => words.insert(0, "help"),
            s if s.starts_with('-') => return Err(format!("unknown option `{s}`")),
            s => words.push(s),
        }
    }
    let command = match words.as_slice() {
        ["test"] => Command::Test,
        ["boot", name, extra @ ..] if extra.iter().all(|w| w.contains('=')) => {
            Command::Boot(name.to_string(), extra.iter().map(|w| w.to_string()).collect())
        }
        ["boot"] => return Err("`boot` needs a check name (see `list`)".into()),
        ["bench"] => Command::Bench,
        ["symbolize", log] => Command::Symbolize(log.to_string()),
        ["symbolize"] => return Err("`symbolize` needs a log file".into()),
        ["list"] => Command::List,
        ["help", ..] | [] => Command::Help,
        [cmd, ..] if ["test", "boot", "bench", "list", "symbolize"].contains(cmd) => {
            return Err(format!("too many arguments for `{cmd}`"))
        }
        [cmd, ..] => return Err(format!("unknown command `{cmd}`")),
    };
    if !build && !matches!(command, Command::Boot(..) | Command::Bench | Command::Help) {
        return Err("--no-build only applies to `boot` and `bench`".into());
    }
    Ok(Options { command, build, verbose })
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&argv) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ci: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let ws = match cargo::workspace() {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("ci: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = match opts.command {
        Command::Help => {
            println!("{USAGE}");
            true
        }
        Command::List => {
            for c in checks::all_checks() {
                println!("{}", c.describe());
            }
            println!("{}", shellcheck::describe());
            true
        }
        Command::Test => test(&ws, opts.verbose),
        Command::Boot(name, extra) => boot_one(&ws, &name, &extra, opts.build, opts.verbose),
        Command::Bench => bench(&ws, opts.build, opts.verbose),
        Command::Symbolize(log) => symbolize_log(&ws, &log),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A cargo step, announced (its output streams) and summarized.
fn cargo_step(name: &str, what: &str, step: impl FnOnce() -> Result<(), String>) -> Outcome {
    println!("ci: ==> {name}: {what}");
    let start = Instant::now();
    let outcome = match step() {
        Ok(()) => Outcome::pass(name, start.elapsed(), None),
        Err(e) => Outcome::fail(name, start.elapsed(), vec![e]),
    };
    println!("{}", outcome.summary_line());
    for r in &outcome.reasons {
        println!("  {r}");
    }
    outcome
}

/// `clippy`, or a pass with a note saying it was skipped when clippy is
/// not installed (`rustup component add clippy` needs the network).
fn clippy_step(ws: &Path) -> Outcome {
    if !cargo::has_clippy(ws) {
        let o = Outcome::pass("clippy", Default::default(), Some("SKIPPED: cargo clippy is not installed (run `rustup component add clippy`)".into()));
        println!("{}", o.summary_line());
        return o;
    }
    cargo_step("clippy", "cargo clippy, host and bare-metal, -D warnings", || cargo::clippy(ws))
}

/// Build the image, then check that its RAMFS holds the programs stripped
/// (with the unstripped copies beside it).
fn build_step(ws: &Path) -> Outcome {
    cargo_step("image", "cargo run -p image-builder", || {
        cargo::build_image(ws)?;
        let dir = image_builder::image_dir(ws);
        image_builder::check_packed(&dir).map(|_| ()).map_err(|e| format!("image check: {e}"))
    })
}

/// `ci test`: everything, in order; a failing step does not stop the
/// independent ones after it, so one run shows every problem.
fn test(ws: &Path, verbose: bool) -> bool {
    let mut outcomes = vec![cargo_step("host-tests", "cargo test --workspace", || {
        cargo::run(ws, &["test", "--workspace"])
    })];
    outcomes.push(clippy_step(ws));
    let image = build_step(ws);
    let image_ok = image.passed;
    outcomes.push(image);
    for check in checks::test_checks() {
        if image_ok {
            outcomes.push(boot::run(ws, &check, &check.name, check.qemu, verbose).outcome);
        } else {
            let o = Outcome::fail(&check.name, Default::default(), vec!["not run: the image did not build".into()]);
            println!("{}: not run (no image)", o.summary_line());
            outcomes.push(o);
        }
    }
    if image_ok {
        outcomes.push(shellcheck::run(ws, verbose));
    } else {
        outcomes.push(Outcome::fail(shellcheck::NAME, Default::default(), vec!["not run: the image did not build".into()]));
    }
    println!("{}", report::tally(&outcomes));
    outcomes.iter().all(|o| o.passed)
}

/// `ci boot <name> [key=value..]`.
fn boot_one(ws: &Path, name: &str, extra: &[String], build: bool, verbose: bool) -> bool {
    if name == shellcheck::NAME {
        return (!build || build_step(ws).passed) && shellcheck::run(ws, verbose).passed;
    }
    let Some(mut check) = checks::find(name) else {
        let mut names: Vec<String> = checks::all_checks().into_iter().map(|c| c.name).collect();
        names.push(shellcheck::NAME.into());
        eprintln!("ci: no check `{name}`; the checks are: {}", names.join(", "));
        return false;
    };
    if let checks::Boot::Direct { append } = &mut check.boot {
        for word in extra {
            append.push(' ');
            append.push_str(word);
        }
    } else if !extra.is_empty() {
        eprintln!("ci: `{name}` has no kernel command line to add {extra:?} to");
        return false;
    }
    if build && !build_step(ws).passed {
        return false;
    }
    boot::run(ws, &check, &check.name, check.qemu, verbose).outcome.passed
}

/// `ci symbolize <log>`.
fn symbolize_log(ws: &Path, log: &str) -> bool {
    let text = match std::fs::read_to_string(log) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ci: {log}: {e}");
            return false;
        }
    };
    let mut sym = symbolize::Symbolizer::new(ws, &image_builder::image_dir(ws));
    for line in text.lines() {
        println!("{}", sym.annotate(line));
    }
    true
}

/// `ci bench`: the bench suite under `-icount` (instruction counts) and
/// plain TCG (rates), with every BENCH line tagged by its mode.
fn bench(ws: &Path, build: bool, verbose: bool) -> bool {
    if build && !build_step(ws).passed {
        return false;
    }
    let check = checks::bench_check();
    let modes: [(&str, &[&str]); 2] = [("icount", bench::ICOUNT_ARGS), ("tcg", &[])];
    let mut all_passed = true;
    let mut results = Vec::new();
    let mut targets = Vec::new();
    for (mode, extra) in modes {
        let booted = boot::run(ws, &check, &format!("bench-{mode}"), extra, verbose);
        all_passed &= booted.outcome.passed;
        let (good, bad) = bench::collect(&booted.lines);
        for m in bad {
            println!("ci: warning: {mode}: {m}");
        }
        if good.is_empty() {
            println!("ci: warning: {mode}: the run printed no BENCH lines");
        }
        if mode == "icount" {
            // Without exact calibration the figures are not instruction
            // counts: fail rather than report them as such.
            if let Err(e) = bench::check_calibration(&good) {
                println!("ci: bench FAILED: icount: {e}");
                all_passed = false;
            }
            // Targets are reported, not enforced: a missed one is news for
            // the issue, not a red build.
            let (lines, met) = bench::against_targets(&good);
            targets = lines;
            targets.push(if met { "every target met".into() } else { "some targets missed (see above)".into() });
        }
        results.extend(good.into_iter().map(|b| b.tagged(mode)));
    }
    match boot_time(ws) {
        Some(ms) => {
            results.push(format!("BENCH tcg boot_to_servers_up {ms} ms"));
            let met = if ms < bench::BOOT_TARGET_MS { "met" } else { "MISSED" };
            targets.push(format!("target boot_to_servers_up: {ms} < {} {met} (ms from QEMU launch to `{}`, median of {})", bench::BOOT_TARGET_MS, bench::BOOT_UP, bench::BOOT_RUNS));
        }
        None => {
            println!("ci: bench FAILED: the plain boot never printed `{}`", bench::BOOT_UP);
            all_passed = false;
        }
    }
    for line in &results {
        println!("{line}");
    }
    for line in &targets {
        println!("ci: {line}");
    }
    if all_passed {
        println!("ci: bench passed in both modes");
    } else {
        println!("ci: bench FAILED (see above); the BENCH lines printed may be incomplete");
    }
    all_passed
}

/// Milliseconds from launching QEMU (plain TCG, the README's boot) to the
/// line saying every boot server is up: the median of a few boots.
fn boot_time(ws: &Path) -> Option<u64> {
    let dir = image_builder::image_dir(ws);
    let args = args::for_boot(&checks::Boot::Direct { append: String::new() }, &dir);
    let mut times = Vec::new();
    for _ in 0..bench::BOOT_RUNS {
        let start = std::time::Instant::now();
        let mut at = None;
        qemu::run(&args, checks::PLAIN_TIMEOUT, |line| {
            if line.contains(bench::BOOT_UP) {
                at = Some(start.elapsed().as_millis() as u64);
                return qemu::Control::Stop;
            }
            qemu::Control::Continue
        });
        times.push(at?);
    }
    bench::median_ms(times)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Options, String> {
        parse_args(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn commands_and_flags() {
        assert_eq!(parse("test").unwrap(), Options { command: Command::Test, build: true, verbose: false });
        let o = parse("boot netboot --no-build -v").unwrap();
        assert_eq!(o, Options { command: Command::Boot("netboot".into(), vec![]), build: false, verbose: true });
        let o = parse("boot fuzz fuzz_seed=7 fuzz_calls=10").unwrap();
        assert_eq!(o.command, Command::Boot("fuzz".into(), vec!["fuzz_seed=7".into(), "fuzz_calls=10".into()]));
        assert_eq!(parse("--no-build bench").unwrap().command, Command::Bench);
        assert_eq!(parse("").unwrap().command, Command::Help);
        assert_eq!(parse("test --help").unwrap().command, Command::Help);
        assert_eq!(parse("symbolize x.log").unwrap().command, Command::Symbolize("x.log".into()));
    }

    #[test]
    fn bad_command_lines_are_rejected() {
        for bad in ["frobnicate", "boot", "boot a b", "test extra", "list --no-build", "test --fast", "symbolize", "symbolize a b", "symbolize a --no-build"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
