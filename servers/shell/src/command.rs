//! The command parser: one input line to one [`Command`], or one
//! [`ParseError`] whose `Display` is the line the shell prints.
//!
//! Words are separated by spaces (no quoting: paths have no spaces).
//! Numbers are decimal or `0x` hex. [`COMMANDS`] is the one table that
//! `help` prints and the parser checks usage against.

use alloc::vec::Vec;
use core::fmt;

/// One entry of `help`: name, arguments, what it does.
#[derive(Debug, PartialEq, Eq)]
pub struct Help {
    pub name: &'static str,
    pub args: &'static str,
    pub what: &'static str,
}

const fn h(name: &'static str, args: &'static str, what: &'static str) -> Help {
    Help { name, args, what }
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[Help] = &[
    h("help", "", "this list"),
    h("ls", "[PATH]", "list a directory (default boot:)"),
    h("cat", "PATH", "print a file"),
    h("stat", "PATH", "kind and size of a file or directory"),
    h("sha256", "PATH", "SHA-256 of a file (compare with sha256sum on the host)"),
    h("hexdump", "PATH|DISK [OFFSET] [LEN]", "hex and ASCII of a file's bytes (default 256 from 0)"),
    h("run", "PATH [ARGS...] [&]", "start a program and wait for it (& : do not wait)"),
    h("ps", "", "programs started from this shell"),
    h("kill", "PID", "end a program"),
    h("channels", "", "every channel: owner, name, sends/receives/replies/errors, peak queue, waiters"),
    h("top", "", "channels, refreshed every second (any key quits)"),
    h("stats", "", "system-wide IPC totals and kernel IPC memory"),
    h("trace", "on|off", "log every IPC operation on the console"),
    h("devices", "", "DEVMAN's device registry"),
    h("disks", "", "disks"),
    h("readsector", "DISK LBA", "hexdump of one disk sector"),
    h("uptime", "", "time since boot"),
    h("mem", "", "kernel memory"),
    h("poweroff", "", "stop the machine"),
    h("exit", "", "end this shell (system starts a new one)"),
];

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// A blank line.
    Nothing,
    Help,
    Ls(&'a str),
    Cat(&'a str),
    Stat(&'a str),
    Sha256(&'a str),
    Hexdump { target: &'a str, offset: u64, len: u64 },
    Run { path: &'a str, args: Vec<&'a str>, background: bool },
    Ps,
    Kill(u64),
    Channels,
    Top,
    Stats,
    Trace(bool),
    Devices,
    Disks,
    ReadSector { disk: &'a str, lba: u64 },
    Uptime,
    Mem,
    PowerOff,
    Exit,
}

/// Why a line is not a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError<'a> {
    Unknown(&'a str),
    /// Wrong number or shape of arguments: the command's [`Help`].
    Usage(&'static Help),
    BadNumber { command: &'static str, word: &'a str },
}

impl fmt::Display for ParseError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            ParseError::Unknown(w) => {
                // A command name can be anything typed: show a bounded, printable part.
                let shown: alloc::string::String = w.chars().take(32).collect();
                write!(f, "{shown}: unknown command (try help)")
            }
            ParseError::Usage(h) => write!(f, "{}: usage: {} {}", h.name, h.name, h.args),
            ParseError::BadNumber { command, word } => {
                let shown: alloc::string::String = word.chars().take(32).collect();
                write!(f, "{command}: not a number: {shown}")
            }
        }
    }
}

/// Default length of a `hexdump`.
pub const HEXDUMP_LEN: u64 = 256;

/// Parse a number: decimal or `0x` hex.
pub fn number(w: &str) -> Option<u64> {
    match w.strip_prefix("0x").or_else(|| w.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok().filter(|_| !hex.starts_with('+')),
        None => w.parse().ok().filter(|_| !w.starts_with('+')),
    }
}

/// Parse one line.
pub fn parse(line: &str) -> Result<Command<'_>, ParseError<'_>> {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let Some(name) = words.next() else { return Ok(Command::Nothing) };
    let args: Vec<&str> = words.collect();
    let Some(help) = COMMANDS.iter().find(|h| h.name == name) else { return Err(ParseError::Unknown(name)) };
    let usage = Err(ParseError::Usage(help));
    let number_at = |i: usize| -> Result<u64, ParseError<'_>> {
        number(args[i]).ok_or(ParseError::BadNumber { command: help.name, word: args[i] })
    };
    let cmd = match (name, args.len()) {
        ("help", 0) => Command::Help,
        ("ls", 0) => Command::Ls("boot:"),
        ("ls", 1) => Command::Ls(args[0]),
        ("cat", 1) => Command::Cat(args[0]),
        ("stat", 1) => Command::Stat(args[0]),
        ("sha256", 1) => Command::Sha256(args[0]),
        ("hexdump", 1..=3) => Command::Hexdump {
            target: args[0],
            offset: if args.len() > 1 { number_at(1)? } else { 0 },
            len: if args.len() > 2 { number_at(2)? } else { HEXDUMP_LEN },
        },
        ("run", 1..) => {
            let mut args = args;
            let mut background = false;
            if let Some(last) = args.last_mut() {
                if *last == "&" {
                    background = true;
                    args.pop();
                } else if let Some(stripped) = last.strip_suffix('&') {
                    background = true;
                    *last = stripped;
                }
            }
            if args.is_empty() {
                return usage;
            }
            let path = args.remove(0);
            Command::Run { path, args, background }
        }
        ("ps", 0) => Command::Ps,
        ("kill", 1) => Command::Kill(number_at(0)?),
        ("channels", 0) => Command::Channels,
        ("top", 0) => Command::Top,
        ("stats", 0) => Command::Stats,
        ("trace", 1) => match args[0] {
            "on" => Command::Trace(true),
            "off" => Command::Trace(false),
            _ => return usage,
        },
        ("devices", 0) => Command::Devices,
        ("disks", 0) => Command::Disks,
        ("readsector", 2) => Command::ReadSector { disk: args[0], lba: number_at(1)? },
        ("uptime", 0) => Command::Uptime,
        ("mem", 0) => Command::Mem,
        ("poweroff", 0) => Command::PowerOff,
        ("exit", 0) => Command::Exit,
        _ => return usage,
    };
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn help_of(name: &str) -> &'static Help {
        COMMANDS.iter().find(|h| h.name == name).unwrap()
    }

    #[test]
    fn every_command_parses_with_its_arguments() {
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert_eq!(parse("   "), Ok(Command::Nothing));
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("ls"), Ok(Command::Ls("boot:")));
        assert_eq!(parse("  ls   boot:/etc  "), Ok(Command::Ls("boot:/etc")));
        assert_eq!(parse("cat boot:/etc/motd"), Ok(Command::Cat("boot:/etc/motd")));
        assert_eq!(parse("stat boot:/x"), Ok(Command::Stat("boot:/x")));
        assert_eq!(parse("sha256 boot:/x"), Ok(Command::Sha256("boot:/x")));
        assert_eq!(parse("hexdump boot:/x"), Ok(Command::Hexdump { target: "boot:/x", offset: 0, len: 256 }));
        assert_eq!(parse("hexdump boot:/x 0x10"), Ok(Command::Hexdump { target: "boot:/x", offset: 16, len: 256 }));
        assert_eq!(parse("hexdump boot:/x 4096 32"), Ok(Command::Hexdump { target: "boot:/x", offset: 4096, len: 32 }));
        assert_eq!(parse("ps"), Ok(Command::Ps));
        assert_eq!(parse("kill 12"), Ok(Command::Kill(12)));
        assert_eq!(parse("channels"), Ok(Command::Channels));
        assert_eq!(parse("top"), Ok(Command::Top));
        assert_eq!(parse("stats"), Ok(Command::Stats));
        assert_eq!(parse("trace on"), Ok(Command::Trace(true)));
        assert_eq!(parse("trace off"), Ok(Command::Trace(false)));
        assert_eq!(parse("devices"), Ok(Command::Devices));
        assert_eq!(parse("disks"), Ok(Command::Disks));
        assert_eq!(parse("readsector ahci0 7"), Ok(Command::ReadSector { disk: "ahci0", lba: 7 }));
        assert_eq!(parse("uptime"), Ok(Command::Uptime));
        assert_eq!(parse("mem"), Ok(Command::Mem));
        assert_eq!(parse("poweroff"), Ok(Command::PowerOff));
        assert_eq!(parse("exit"), Ok(Command::Exit));
        assert_eq!(parse("exit 1"), Err(ParseError::Usage(help_of("exit"))));
    }

    #[test]
    fn run_takes_arguments_and_an_ampersand() {
        let run = |path, args: &[&'static str], background| Command::Run { path, args: args.to_vec(), background };
        assert_eq!(parse("run boot:/ktest"), Ok(run("boot:/ktest", &[], false)));
        assert_eq!(parse("run boot:/ktest child sleeper 10 3"), Ok(run("boot:/ktest", &["child", "sleeper", "10", "3"], false)));
        assert_eq!(parse("run boot:/ktest a &"), Ok(run("boot:/ktest", &["a"], true)));
        assert_eq!(parse("run boot:/ktest a&"), Ok(run("boot:/ktest", &["a"], true)));
        assert_eq!(parse("run boot:/ktest&"), Ok(run("boot:/ktest", &[], true)));
        assert_eq!(parse("run &"), Err(ParseError::Usage(help_of("run"))));
        assert_eq!(parse("run"), Err(ParseError::Usage(help_of("run"))));
    }

    #[test]
    fn errors_are_one_clear_line() {
        let msg = |l: &str| parse(l).unwrap_err().to_string();
        assert_eq!(msg("frobnicate now"), "frobnicate: unknown command (try help)");
        assert_eq!(msg("cat"), "cat: usage: cat PATH");
        assert_eq!(msg("cat a b"), "cat: usage: cat PATH");
        assert_eq!(msg("kill me"), "kill: not a number: me");
        assert_eq!(msg("kill -1"), "kill: not a number: -1");
        assert_eq!(msg("kill +1"), "kill: not a number: +1");
        assert_eq!(msg("kill 0x"), "kill: not a number: 0x");
        assert_eq!(msg("kill 99999999999999999999999"), "kill: not a number: 99999999999999999999999");
        assert_eq!(msg("trace maybe"), "trace: usage: trace on|off");
        assert_eq!(msg("hexdump a b"), "hexdump: not a number: b");
        assert_eq!(msg("hexdump a 1 2 3"), "hexdump: usage: hexdump PATH|DISK [OFFSET] [LEN]");
        assert_eq!(msg("ps aux"), "ps: usage: ps ");
        // A long unknown word is cut, so the error stays one short line.
        let long = "x".repeat(300);
        assert_eq!(msg(&long), format!("{}: unknown command (try help)", "x".repeat(32)));
        assert!(!msg(&format!("kill {long}")).contains(&long));
    }

    #[test]
    fn names_are_exact_and_case_matters() {
        for l in ["LS", "Help", "help2", "cat\tx", "poweroff!"] {
            assert!(matches!(parse(l), Err(ParseError::Unknown(_))), "{l}");
        }
    }

    #[test]
    fn every_listed_command_parses_somehow() {
        // Each COMMANDS entry reaches the parser's table (no entry `help`
        // shows that the shell would call unknown).
        for h in COMMANDS {
            assert!(!matches!(parse(h.name), Err(ParseError::Unknown(_))), "{}", h.name);
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(number("0"), Some(0));
        assert_eq!(number("4096"), Some(4096));
        assert_eq!(number("0x1F"), Some(31));
        assert_eq!(number("0XfF"), Some(255));
        assert_eq!(number("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "x", "0x", "1.5", "-3", "+3", "0x+1", "18446744073709551616", "1 2"] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }
}
