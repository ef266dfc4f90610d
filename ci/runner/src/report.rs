//! What the runner prints: one summary line per step, failure details, and
//! the closing tally.
//!
//! Success is kept to one line so a passing run reads as a short list;
//! failure prints everything needed to debug without re-running.

use std::time::Duration;

/// The result of one step (host tests, image build, or a boot check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub name: String,
    pub passed: bool,
    pub elapsed: Duration,
    /// Appended to the summary line (e.g. the suite's counts).
    pub note: Option<String>,
    /// Why it failed, one entry per reason, for the closing tally.
    pub reasons: Vec<String>,
}

impl Outcome {
    pub fn pass(name: &str, elapsed: Duration, note: Option<String>) -> Outcome {
        Outcome { name: name.into(), passed: true, elapsed, note, reasons: Vec::new() }
    }

    pub fn fail(name: &str, elapsed: Duration, reasons: Vec<String>) -> Outcome {
        Outcome { name: name.into(), passed: false, elapsed, note: None, reasons }
    }

    /// `ci: PASS boot (1.8 s): 12 passed, 0 failed`.
    pub fn summary_line(&self) -> String {
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        let mut s = format!("ci: {verdict} {} ({:.1} s)", self.name, self.elapsed.as_secs_f64());
        if let Some(note) = &self.note {
            s.push_str(": ");
            s.push_str(note);
        }
        s
    }
}

/// The closing lines: `ci: all N checks passed`, or the failures with
/// their reasons.
pub fn tally(outcomes: &[Outcome]) -> String {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.passed).collect();
    if failed.is_empty() {
        return format!("ci: all {} checks passed", outcomes.len());
    }
    let mut s = format!("ci: {} of {} checks failed:", failed.len(), outcomes.len());
    for o in failed {
        s.push_str(&format!("\nci:   FAIL {}", o.name));
        for r in &o.reasons {
            s.push_str(&format!("\nci:     {r}"));
        }
    }
    s
}

/// `text` with every line prefixed (for logs inside the runner's output).
pub fn indent(text: &str, prefix: &str) -> String {
    text.lines().map(|l| format!("{prefix}{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        let ms = Duration::from_millis(1840);
        assert_eq!(Outcome::pass("boot", ms, None).summary_line(), "ci: PASS boot (1.8 s)");
        let o = Outcome::pass("ipc", ms, Some("3 passed, 0 failed".into()));
        assert_eq!(o.summary_line(), "ci: PASS ipc (1.8 s): 3 passed, 0 failed");
        assert_eq!(Outcome::fail("mem", Duration::from_secs(120), vec![]).summary_line(), "ci: FAIL mem (120.0 s)");
    }

    #[test]
    fn tally_all_passed() {
        let all = vec![Outcome::pass("a", Duration::ZERO, None); 3];
        assert_eq!(tally(&all), "ci: all 3 checks passed");
    }

    #[test]
    fn tally_lists_failures_with_reasons() {
        let v = vec![
            Outcome::pass("plain", Duration::ZERO, None),
            Outcome::fail("ipc", Duration::ZERO, vec!["FAIL - send: x".into()]),
            Outcome::fail("netboot", Duration::ZERO, vec!["timed out".into()]),
        ];
        assert_eq!(
            tally(&v),
            "ci: 2 of 3 checks failed:\nci:   FAIL ipc\nci:     FAIL - send: x\nci:   FAIL netboot\nci:     timed out"
        );
    }

    #[test]
    fn indent_prefixes_every_line() {
        assert_eq!(indent("a\nb\n", "  | "), "  | a\n  | b\n");
        assert_eq!(indent("", "  | "), "");
    }
}
