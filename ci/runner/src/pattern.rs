//! A small regular-expression subset for the expected serial lines.
//!
//! The checks need little more than "a number here" and "some word here",
//! and the runner stays std-only so it adds no third-party crates to the
//! shared lock file. Anything the subset does not support (groups,
//! alternation, classes, counted repeats) is rejected when the pattern is
//! compiled rather than silently matched as literal text, so a pattern that
//! compiles means what it says.
//!
//! Supported: literal characters; `.`; `\d` (ASCII digit), `\s`
//! (whitespace), `\S` (non-whitespace), `\w` (ASCII word character); a
//! backslash before any other character makes it literal (`\(`, `\.`,
//! `\\`); the repeats `+`, `*`, `?` after one item; `^` at the start and `$`
//! at the end. Without `^` the pattern may match anywhere in the line.

use std::fmt;

/// A pattern the subset cannot express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "bad pattern `{}`: {}", self.pattern, self.reason)
    }
}

impl std::error::Error for PatternError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Char(char),
    Any,
    Digit,
    Space,
    NotSpace,
    Word,
}

impl Atom {
    fn matches(self, c: char) -> bool {
        match self {
            Atom::Char(x) => c == x,
            Atom::Any => true,
            Atom::Digit => c.is_ascii_digit(),
            Atom::Space => c.is_whitespace(),
            Atom::NotSpace => !c.is_whitespace(),
            Atom::Word => c.is_ascii_alphanumeric() || c == '_',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Once,
    Optional,
    ZeroOrMore,
    OneOrMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    atom: Atom,
    repeat: Repeat,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    anchored_start: bool,
    anchored_end: bool,
    items: Vec<Item>,
}

impl Pattern {
    /// Compile `source`, rejecting syntax outside the subset.
    pub fn new(source: &str) -> Result<Pattern, PatternError> {
        let fail = |reason: &str| PatternError { pattern: source.to_string(), reason: reason.to_string() };
        let mut chars = source.chars().peekable();
        let anchored_start = chars.next_if_eq(&'^').is_some();
        let mut anchored_end = false;
        let mut items: Vec<Item> = Vec::new();
        while let Some(c) = chars.next() {
            let atom = match c {
                '\\' => match chars.next() {
                    Some('d') => Atom::Digit,
                    Some('s') => Atom::Space,
                    Some('S') => Atom::NotSpace,
                    Some('w') => Atom::Word,
                    Some(x) if x.is_ascii_alphanumeric() => return Err(fail(&format!("unsupported escape `\\{x}`"))),
                    Some(x) => Atom::Char(x),
                    None => return Err(fail("trailing backslash")),
                },
                '.' => Atom::Any,
                '+' | '*' | '?' => {
                    let repeat = match c {
                        '+' => Repeat::OneOrMore,
                        '*' => Repeat::ZeroOrMore,
                        _ => Repeat::Optional,
                    };
                    match items.last_mut() {
                        Some(last) if last.repeat == Repeat::Once => last.repeat = repeat,
                        Some(_) => return Err(fail("a repeat after a repeat")),
                        None => return Err(fail("a repeat with nothing before it")),
                    }
                    continue;
                }
                '$' if chars.peek().is_none() => {
                    anchored_end = true;
                    continue;
                }
                '^' | '$' => return Err(fail("`^` and `$` are only allowed at the ends")),
                '(' | ')' | '[' | ']' | '{' | '}' | '|' => {
                    return Err(fail(&format!("`{c}` is not supported (escape it as `\\{c}` for a literal)")))
                }
                c => Atom::Char(c),
            };
            items.push(Item { atom, repeat: Repeat::Once });
        }
        Ok(Pattern { source: source.to_string(), anchored_start, anchored_end, items })
    }

    /// The text the pattern was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches `line` (anywhere, unless anchored).
    pub fn is_match(&self, line: &str) -> bool {
        let text: Vec<char> = line.chars().collect();
        if self.anchored_start {
            return self.match_here(&self.items, &text);
        }
        (0..=text.len()).any(|i| self.match_here(&self.items, &text[i..]))
    }

    /// Backtracking match of `items` at the start of `text`. The patterns
    /// are short and the lines a few hundred characters, so the worst case
    /// does not matter here.
    fn match_here(&self, items: &[Item], text: &[char]) -> bool {
        let Some((item, rest)) = items.split_first() else {
            return !self.anchored_end || text.is_empty();
        };
        let first = text.first().is_some_and(|&c| item.atom.matches(c));
        match item.repeat {
            Repeat::Once => first && self.match_here(rest, &text[1..]),
            Repeat::Optional => (first && self.match_here(rest, &text[1..])) || self.match_here(rest, text),
            Repeat::ZeroOrMore | Repeat::OneOrMore => {
                let min = usize::from(item.repeat == Repeat::OneOrMore);
                let run = text.iter().take_while(|&&c| item.atom.matches(c)).count();
                (min..=run).rev().any(|n| self.match_here(rest, &text[n..]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, line: &str) -> bool {
        Pattern::new(p).unwrap().is_match(line)
    }

    #[test]
    fn literal_matches_anywhere() {
        assert!(m("memory map: ", "[info ] memory map: 0x0..0x9fc00 usable"));
        assert!(!m("memory map: ", "[info ] memory: 252 MiB usable"));
    }

    #[test]
    fn classes_and_repeats() {
        assert!(m(r"kernel \S+ booting", "[info ] kernel 0.1.0 booting"));
        assert!(!m(r"kernel \S+ booting", "[info ] kernel  booting"));
        assert!(m(r"memory: \d+ MiB usable", "memory: 252 MiB usable, 64658 frames"));
        assert!(!m(r"memory: \d+ MiB usable", "memory: lots MiB usable"));
        assert!(m(r"system:   file +\d+ ktest", "system:   file   1124848 ktest"));
        assert!(!m(r"system:   file +\d+ ktest", "system:   dir          0 ktest"));
        assert!(m("ab*c", "ac") && m("ab*c", "abbbc") && !m("ab+c", "ac"));
        assert!(m("colou?r", "color") && m("colou?r", "colour") && !m("colou?r", "colouur"));
        assert!(m(r"a.c", "abc") && !m(r"a.c", "ac"));
        assert!(m(r"\w+=\w+", "test=ipc"));
    }

    #[test]
    fn backtracking_gives_back_characters() {
        // `\S+` must not swallow the `g` that the literal needs.
        assert!(m(r"^\S+g$", "booting"));
        assert!(m(r"a\d*1", "a0001"));
    }

    #[test]
    fn escapes_are_literal() {
        assert!(m(r"user mode \(CPL 3\)", "system: v0.1 started in user mode (CPL 3)"));
        assert!(!m(r"user mode \(CPL 3\)", "system: v0.1 started in user mode CPL 3"));
        assert!(m(r"1\.5", "1.5") && !m(r"1\.5", "125"));
        assert!(m(r"a\\b", r"a\b"));
    }

    #[test]
    fn anchors() {
        let p = Pattern::new(r"^\d+ passed$").unwrap();
        assert!(p.is_match("12 passed"));
        assert!(!p.is_match("x 12 passed"));
        assert!(!p.is_match("12 passed!"));
        assert!(m("^$", ""));
        assert!(!m("^$", " "));
    }

    #[test]
    fn unsupported_syntax_is_rejected() {
        for bad in [r"(\d+) passed", "a|b", "[0-9]", "a{2}", "+a", "a+*", "a$b", "a^", r"\x41", "ab\\"] {
            assert!(Pattern::new(bad).is_err(), "{bad} should be rejected");
        }
        let e = Pattern::new("(x)").unwrap_err();
        assert_eq!(e.pattern, "(x)");
        assert!(e.to_string().contains("not supported"), "{e}");
    }
}
