//! `BENCH <name> <value> <unit>` lines from the benchmark suite.
//!
//! The suite runs twice, under `-icount` (deterministic instruction counts)
//! and plain TCG (rough wall-clock rates), so each reported line gets the
//! mode as its second word. The guest's names, values and units are kept
//! exactly as printed, so the output can be compared across runs with text
//! tools.

use std::fmt;

/// The QEMU arguments that make the guest TSC count guest instructions.
pub const ICOUNT_ARGS: &[&str] = &["-icount", "shift=0,align=off,sleep=off"];

/// The calibration line: TSC ticks per guest instruction, times 1000.
/// Under `-icount shift=0` it must be exactly 1000, or the `tsc` figures
/// are not instruction counts.
pub const CALIBRATION: &str = "tsc_per_instruction_x1000";

/// Which side of its limit a figure must stay on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    AtMost(f64),
    AtLeast(f64),
}

impl Limit {
    fn met(self, v: f64) -> bool {
        match self {
            Limit::AtMost(max) => v <= max,
            Limit::AtLeast(min) => v >= min,
        }
    }
}

/// A figure the IPC work promised to reach (issues #3 and #11), checked on
/// the `-icount` run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    pub name: &'static str,
    pub limit: Limit,
    pub what: &'static str,
}

const fn at_most(name: &'static str, max: f64, what: &'static str) -> Target {
    Target { name, limit: Limit::AtMost(max), what }
}

pub const TARGETS: &[Target] = &[
    at_most("ipc_rt_64", 500.0, "instructions per checked 64-byte round trip"),
    at_most("ipc_rt_tag", 400.0, "instructions per checked tag-only round trip"),
    at_most("ipc_rt_4k_lent_vs_64_x100", 125.0, "4 KiB lent round trip, % of the 64-byte one"),
    at_most("syscall_null", 100.0, "instructions per null syscall"),
    Target { name: "fair_8_min_x100", limit: Limit::AtLeast(80.0), what: "least share of 8 equal clients, % of a fair share" },
    at_most("fair_8_max_x100", 120.0, "largest share of 8 equal clients, % of a fair share"),
    at_most("serve_vs_raw_x100", 130.0, "postcard call through the serve loop, % of the raw round trip of the same size"),
    at_most("file_read_page", 2000.0, "instructions per 4 KiB page read through VFS -> RAMFS"),
    at_most("ipc_channel_bytes", 128.0, "bytes of kernel memory per channel"),
    at_most("ipc_message_bytes", 64.0, "bytes per in-flight message"),
];

/// The line `system` prints when every boot server is up.
pub const BOOT_UP: &str = "system: boot servers up:";
/// Boot target: from QEMU's launch to [`BOOT_UP`] under plain TCG.
pub const BOOT_TARGET_MS: u64 = 500;
/// Plain boots timed; the median is reported.
pub const BOOT_RUNS: usize = 5;

/// The median of some durations in milliseconds (`None` if there are none).
pub fn median_ms(mut ms: Vec<u64>) -> Option<u64> {
    ms.sort_unstable();
    ms.get(ms.len() / 2).copied()
}

/// Check the icount run really counted instructions.
pub fn check_calibration(results: &[Bench]) -> Result<(), String> {
    match results.iter().find(|b| b.name == CALIBRATION) {
        None => Err(format!("no {CALIBRATION} line")),
        Some(b) if b.value == "1000" => Ok(()),
        Some(b) => Err(format!("{CALIBRATION} is {}, not 1000: the TSC does not count instructions", b.value)),
    }
}

/// One line per target: the figure, the limit, and whether it is met
/// (missing figures are reported as such). Returns (lines, all met).
pub fn against_targets(results: &[Bench]) -> (Vec<String>, bool) {
    let mut all = true;
    let lines = TARGETS
        .iter()
        .map(|t| {
            let got = results.iter().find(|b| b.name == t.name).and_then(|b| b.value.parse::<f64>().ok());
            let verdict = match (got, t.limit) {
                (Some(v), Limit::AtMost(max)) if t.limit.met(v) => format!("{v} <= {max} met"),
                (Some(v), Limit::AtMost(max)) => format!("{v} > {max} MISSED by {:.1}%", (v / max - 1.0) * 100.0),
                (Some(v), Limit::AtLeast(min)) if t.limit.met(v) => format!("{v} >= {min} met"),
                (Some(v), Limit::AtLeast(min)) => format!("{v} < {min} MISSED by {:.1}%", (1.0 - v / min) * 100.0),
                (None, _) => "no figure".to_string(),
            };
            all &= got.is_some_and(|v| t.limit.met(v));
            format!("target {}: {} ({})", t.name, verdict, t.what)
        })
        .collect();
    (lines, all)
}

/// One benchmark result, as printed by the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bench {
    pub name: String,
    /// The value exactly as printed (checked to be a number).
    pub value: String,
    /// The unit; the rest of the line, so it may contain spaces.
    pub unit: String,
}

impl Bench {
    /// The line with the mode inserted: `BENCH <mode> <name> <value> <unit>`.
    pub fn tagged(&self, mode: &str) -> String {
        format!("BENCH {mode} {} {} {}", self.name, self.value, self.unit)
    }
}

/// A line that starts with `BENCH` but is not `BENCH <name> <value> <unit>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "malformed BENCH line (want `BENCH <name> <value> <unit>`): {}", self.0)
    }
}

/// `None` for lines that are not BENCH lines at all.
pub fn parse(line: &str) -> Option<Result<Bench, Malformed>> {
    let rest = line.trim_end().strip_prefix("BENCH")?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None; // e.g. `BENCHMARKS:` is ordinary output
    }
    let malformed = || Some(Err(Malformed(line.trim_end().to_string())));
    let mut words = rest.split_whitespace();
    let (Some(name), Some(value)) = (words.next(), words.next()) else { return malformed() };
    let unit = words.collect::<Vec<_>>().join(" ");
    if unit.is_empty() || value.parse::<f64>().map_or(true, |v| !v.is_finite()) {
        return malformed();
    }
    Some(Ok(Bench { name: name.into(), value: value.into(), unit }))
}

/// Every BENCH line of a log, plus the malformed ones.
pub fn collect<S: AsRef<str>>(lines: &[S]) -> (Vec<Bench>, Vec<Malformed>) {
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for r in lines.iter().filter_map(|l| parse(l.as_ref())) {
        match r {
            Ok(b) => good.push(b),
            Err(m) => bad.push(m),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod boot_tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median_ms(vec![300, 100, 200, 900, 250]), Some(250));
        assert_eq!(median_ms(vec![]), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_tags() {
        let b = parse("BENCH ipc_rt_64 512 instructions").unwrap().unwrap();
        assert_eq!(b, Bench { name: "ipc_rt_64".into(), value: "512".into(), unit: "instructions".into() });
        assert_eq!(b.tagged("icount"), "BENCH icount ipc_rt_64 512 instructions");
        let r = parse("BENCH ipc_rt_64_rate 123456.5 roundtrips/s\r").unwrap().unwrap();
        assert_eq!(r.tagged("tcg"), "BENCH tcg ipc_rt_64_rate 123456.5 roundtrips/s");
    }

    #[test]
    fn multi_word_units_are_kept() {
        let b = parse("BENCH map 7 ns per page").unwrap().unwrap();
        assert_eq!(b.unit, "ns per page");
        assert_eq!(b.tagged("tcg"), "BENCH tcg map 7 ns per page");
    }

    #[test]
    fn other_lines_are_ignored() {
        for l in ["ok - bench ipc", "system: BENCH x 1 y", "BENCHMARKS: starting", "", "1 passed, 0 failed"] {
            assert_eq!(parse(l), None, "{l:?}");
        }
    }

    #[test]
    fn malformed_lines_are_reported() {
        for l in ["BENCH", "BENCH x", "BENCH x 12", "BENCH x fast instructions", "BENCH x NaN y", "BENCH x inf y"] {
            assert!(matches!(parse(l), Some(Err(_))), "{l:?}");
        }
    }

    fn benches(lines: &[&str]) -> Vec<Bench> {
        collect(lines).0
    }

    #[test]
    fn calibration_must_be_exact() {
        assert!(check_calibration(&benches(&["BENCH tsc_per_instruction_x1000 1000 milli"])).is_ok());
        assert!(check_calibration(&benches(&["BENCH tsc_per_instruction_x1000 1001 milli"])).is_err());
        assert!(check_calibration(&benches(&["BENCH ipc_rt_64 700 tsc"])).is_err());
    }

    #[test]
    fn targets_are_compared() {
        let (lines, met) = against_targets(&benches(&[
            "BENCH ipc_rt_64 499 tsc",
            "BENCH ipc_rt_tag 400 tsc",
            "BENCH ipc_rt_4k_lent_vs_64_x100 96 percent",
            "BENCH syscall_null 90 tsc",
            "BENCH fair_8_min_x100 80 percent",
            "BENCH fair_8_max_x100 119 percent",
            "BENCH serve_vs_raw_x100 129 percent",
            "BENCH file_read_page 1573 tsc",
            "BENCH ipc_channel_bytes 56 bytes",
            "BENCH ipc_message_bytes 56 bytes",
        ]));
        assert!(met, "{lines:?}");
        assert_eq!(lines[0], "target ipc_rt_64: 499 <= 500 met (instructions per checked 64-byte round trip)");
        assert_eq!(lines[4], "target fair_8_min_x100: 80 >= 80 met (least share of 8 equal clients, % of a fair share)");
        let (lines, met) = against_targets(&benches(&["BENCH ipc_rt_64 550 tsc", "BENCH fair_8_min_x100 60 percent"]));
        assert!(!met);
        assert_eq!(lines[0], "target ipc_rt_64: 550 > 500 MISSED by 10.0% (instructions per checked 64-byte round trip)");
        assert!(lines[2].ends_with("no figure (4 KiB lent round trip, % of the 64-byte one)"), "{}", lines[2]);
        assert_eq!(lines[4], "target fair_8_min_x100: 60 < 80 MISSED by 25.0% (least share of 8 equal clients, % of a fair share)");
    }

    #[test]
    fn one_missed_target_is_enough() {
        let all: Vec<String> = TARGETS
            .iter()
            .map(|t| match t.limit {
                Limit::AtMost(v) | Limit::AtLeast(v) => format!("BENCH {} {v} x", t.name),
            })
            .collect();
        let (_, met) = against_targets(&collect(&all).0);
        assert!(met);
        let mut one_off = all.clone();
        one_off[5] = "BENCH fair_8_max_x100 121 percent".into();
        assert!(!against_targets(&collect(&one_off).0).1);
    }

    #[test]
    fn collect_splits_good_and_bad() {
        let log = ["ok - a", "BENCH a 1 cycles", "BENCH b", "BENCH c 2.5 us", "1 passed, 0 failed"];
        let (good, bad) = collect(&log);
        assert_eq!(good.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(bad, [Malformed("BENCH b".into())]);
    }
}
