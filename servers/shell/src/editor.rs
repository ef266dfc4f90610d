//! The line editor: a state machine fed one byte at a time from the serial
//! line, producing the echo to write back and, at Enter, the finished line.
//!
//! The echo works on any plain terminal (`qemu -serial stdio`, tmux,
//! `screen`, minicom): the cursor only ever moves left with backspace
//! (`BS SP BS` erases a character), so no terminal capabilities are
//! needed. Keys: printable ASCII inserts at the end; Backspace/DEL erases
//! one; Ctrl-U erases the line; Ctrl-C abandons it (`^C`, new prompt);
//! Up/Down arrows (`ESC [ A`/`ESC [ B` or `ESC O A`/`ESC O B`) walk the
//! history; CR, LF or CR LF end the line. Other escape sequences are
//! swallowed whole; other control bytes and non-ASCII bytes are ignored.
//! A line longer than [`MAX_LINE`] stops echoing and comes out as
//! [`Event::TooLong`] with its full length, so any input, however long,
//! ends in exactly one answer.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

/// Longest line kept (longer ones are counted and refused at Enter).
pub const MAX_LINE: usize = 256;
/// Lines kept in the history.
pub const HISTORY: usize = 32;

const BS: u8 = 0x08;
const DEL: u8 = 0x7f;
const ESC: u8 = 0x1b;
const CTRL_C: u8 = 0x03;
const CTRL_U: u8 = 0x15;
const ERASE: &[u8] = b"\x08 \x08";

/// What a byte finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Enter: the line (without its end), already added to the history.
    Line(String),
    /// Enter on a line longer than [`MAX_LINE`] bytes: its length.
    TooLong(usize),
    /// Ctrl-C: the line was abandoned.
    Cancel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    None,
    /// After ESC.
    Start,
    /// After `ESC [` or `ESC O`: parameters until a final byte.
    Sequence,
}

/// The line being typed and the history.
#[derive(Debug)]
pub struct Editor {
    line: Vec<u8>,
    /// Bytes typed beyond [`MAX_LINE`] (not kept).
    overflow: usize,
    history: VecDeque<String>,
    /// Position while walking the history (`history.len()` = the new line).
    browse: usize,
    esc: Esc,
    /// The last byte was CR (a following LF is the same Enter).
    after_cr: bool,
}

impl Default for Editor {
    fn default() -> Self {
        Editor::new()
    }
}

impl Editor {
    pub fn new() -> Editor {
        Editor { line: Vec::new(), overflow: 0, history: VecDeque::new(), browse: 0, esc: Esc::None, after_cr: false }
    }

    /// The line as typed so far (up to [`MAX_LINE`] bytes).
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(|s| s.as_str())
    }

    /// Take one byte; append what to echo to `echo`.
    pub fn feed(&mut self, b: u8, echo: &mut Vec<u8>) -> Option<Event> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.esc {
            Esc::Start => {
                self.esc = if b == b'[' || b == b'O' { Esc::Sequence } else { Esc::None };
                return None;
            }
            Esc::Sequence => {
                if (0x40..=0x7e).contains(&b) {
                    self.esc = Esc::None;
                    match b {
                        b'A' => self.walk_history(true, echo),
                        b'B' => self.walk_history(false, echo),
                        _ => {}
                    }
                } else if !(0x20..0x40).contains(&b) {
                    // Not a sequence after all: drop it.
                    self.esc = Esc::None;
                }
                return None;
            }
            Esc::None => {}
        }
        match b {
            b'\r' | b'\n' => {
                if b == b'\n' && after_cr {
                    return None;
                }
                self.after_cr = b == b'\r';
                echo.extend_from_slice(b"\r\n");
                Some(self.finish())
            }
            CTRL_C => {
                echo.extend_from_slice(b"^C\r\n");
                self.clear();
                Some(Event::Cancel)
            }
            CTRL_U => {
                self.erase_all(echo);
                self.overflow = 0;
                None
            }
            BS | DEL => {
                if self.overflow > 0 {
                    self.overflow -= 1;
                } else if self.line.pop().is_some() {
                    echo.extend_from_slice(ERASE);
                }
                None
            }
            ESC => {
                self.esc = Esc::Start;
                None
            }
            0x20..=0x7e => {
                if self.line.len() < MAX_LINE && self.overflow == 0 {
                    self.line.push(b);
                    echo.push(b);
                } else {
                    self.overflow += 1;
                }
                None
            }
            _ => None,
        }
    }

    fn finish(&mut self) -> Event {
        let event = if self.overflow > 0 {
            Event::TooLong(self.line.len() + self.overflow)
        } else {
            // Only printable ASCII is ever kept, so this is valid UTF-8.
            let text: String = self.line.iter().map(|&c| c as char).collect();
            if !text.trim().is_empty() && self.history.back() != Some(&text) {
                if self.history.len() == HISTORY {
                    self.history.pop_front();
                }
                self.history.push_back(text.clone());
            }
            Event::Line(text)
        };
        self.clear();
        event
    }

    fn clear(&mut self) {
        self.line.clear();
        self.overflow = 0;
        self.browse = self.history.len();
    }

    fn erase_all(&mut self, echo: &mut Vec<u8>) {
        for _ in 0..self.line.len() {
            echo.extend_from_slice(ERASE);
        }
        self.line.clear();
    }

    /// Replace the line with the previous (`up`) or next history entry.
    fn walk_history(&mut self, up: bool, echo: &mut Vec<u8>) {
        let next = if up {
            match self.browse.checked_sub(1) {
                Some(n) => n,
                None => return,
            }
        } else if self.browse < self.history.len() {
            self.browse + 1
        } else {
            return;
        };
        self.browse = next;
        self.erase_all(echo);
        self.overflow = 0;
        if let Some(entry) = self.history.get(next) {
            self.line.extend_from_slice(entry.as_bytes());
            echo.extend_from_slice(entry.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input`; the events and everything echoed.
    fn type_in(e: &mut Editor, input: &[u8]) -> (Vec<Event>, Vec<u8>) {
        let mut echo = Vec::new();
        let events = input.iter().filter_map(|&b| e.feed(b, &mut echo)).collect();
        (events, echo)
    }

    fn line(s: &str) -> Event {
        Event::Line(s.into())
    }

    #[test]
    fn typing_echoes_and_enter_ends_the_line() {
        let mut e = Editor::new();
        let (ev, echo) = type_in(&mut e, b"ls boot:/\r");
        assert_eq!(ev, [line("ls boot:/")]);
        assert_eq!(echo, b"ls boot:/\r\n");
        assert!(e.line().is_empty());
    }

    #[test]
    fn cr_lf_is_one_enter_but_lf_alone_is_one_too() {
        let mut e = Editor::new();
        assert_eq!(type_in(&mut e, b"a\r\nb\nc\r\r").0, [line("a"), line("b"), line("c"), line("")]);
        // An LF after a CR ends nothing, but an LF after other bytes does.
        assert_eq!(type_in(&mut e, b"\r\n\n").0, [line(""), line("")]);
    }

    #[test]
    fn backspace_and_delete_erase_one_byte_with_bs_space_bs() {
        let mut e = Editor::new();
        let (ev, echo) = type_in(&mut e, b"cax\x08t\x7f\x7fat\r");
        assert_eq!(ev, [line("cat")]);
        assert_eq!(echo, b"cax\x08 \x08t\x08 \x08\x08 \x08at\r\n");
        // Backspace on an empty line echoes nothing.
        assert_eq!(type_in(&mut e, b"\x08\x7f").1, b"");
    }

    #[test]
    fn ctrl_u_erases_the_line_and_ctrl_c_abandons_it() {
        let mut e = Editor::new();
        let (ev, echo) = type_in(&mut e, b"junk\x15ps\r");
        assert_eq!(ev, [line("ps")]);
        assert_eq!(&echo[..4], b"junk");
        assert_eq!(&echo[4..16], b"\x08 \x08".repeat(4).as_slice());
        let (ev, echo) = type_in(&mut e, b"kill 3\x03");
        assert_eq!(ev, [Event::Cancel]);
        assert!(echo.ends_with(b"^C\r\n"));
        assert!(e.line().is_empty());
        assert_eq!(type_in(&mut e, b"\r").0, [line("")]);
    }

    #[test]
    fn arrows_walk_the_history() {
        let mut e = Editor::new();
        type_in(&mut e, b"one\rtwo\rthree\r");
        let (ev, echo) = type_in(&mut e, b"\x1b[A");
        assert!(ev.is_empty());
        assert_eq!(echo, b"three");
        type_in(&mut e, b"\x1b[A\x1bOA");
        assert_eq!(e.line(), b"one");
        // Past the oldest: stays.
        type_in(&mut e, b"\x1b[A");
        assert_eq!(e.line(), b"one");
        let (_, echo) = type_in(&mut e, b"\x1b[B");
        assert_eq!(e.line(), b"two");
        assert_eq!(echo, [b"\x08 \x08".repeat(3), b"two".to_vec()].concat());
        type_in(&mut e, b"\x1b[B\x1b[B");
        assert_eq!(e.line(), b"", "down past the newest gives an empty line");
        // A recalled line can be edited and run.
        assert_eq!(type_in(&mut e, b"\x1b[A\x7f\x7f\x7f\x7f\x7fok\r").0, [line("ok")]);
        assert_eq!(e.history().collect::<Vec<_>>(), ["one", "two", "three", "ok"]);
    }

    #[test]
    fn history_skips_blank_and_repeated_lines_and_is_bounded() {
        let mut e = Editor::new();
        type_in(&mut e, b"ps\rps\r   \r\r");
        assert_eq!(e.history().collect::<Vec<_>>(), ["ps"]);
        for i in 0..HISTORY + 5 {
            type_in(&mut e, format!("cmd{i}\r").as_bytes());
        }
        assert_eq!(e.history().count(), HISTORY);
        assert_eq!(e.history().next(), Some("cmd5"));
    }

    #[test]
    fn other_escape_sequences_and_control_bytes_are_swallowed() {
        let mut e = Editor::new();
        // Right arrow, F5 (ESC [ 1 5 ~), Alt-x, a bell, a tab, UTF-8.
        let (ev, echo) = type_in(&mut e, b"a\x1b[C\x1b[15~b\x1bxc\x07\t\xc3\xa9d\r");
        assert_eq!(ev, [line("abcd")]);
        assert_eq!(echo, b"abcd\r\n");
    }

    #[test]
    fn a_10_kib_line_is_one_too_long_event_with_bounded_echo() {
        let mut e = Editor::new();
        let mut input = vec![b'x'; 10 * 1024];
        input.push(b'\r');
        let (ev, echo) = type_in(&mut e, &input);
        assert_eq!(ev, [Event::TooLong(10 * 1024)]);
        assert_eq!(echo.len(), MAX_LINE + 2);
        assert_eq!(e.history().count(), 0);
        // The editor is clean again.
        assert_eq!(type_in(&mut e, b"help\r").0, [line("help")]);
        // Backspacing out of the overflow gives the kept line back.
        let mut long = vec![b'y'; MAX_LINE + 3];
        long.extend_from_slice(b"\x7f\x7f\x7f\r");
        assert_eq!(type_in(&mut e, &long).0, [Event::Line("y".repeat(MAX_LINE))]);
    }

    #[test]
    fn random_bytes_never_panic_and_the_line_stays_printable() {
        let mut e = Editor::new();
        let mut x: u32 = 12345;
        let mut echo = Vec::new();
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if let Some(Event::Line(l)) = e.feed(x as u8, &mut echo) {
                assert!(l.len() <= MAX_LINE && l.bytes().all(|b| (0x20..0x7f).contains(&b)));
            }
            assert!(e.line().len() <= MAX_LINE);
        }
    }
}
