//! The serial shell: a prompt on COM1 that drives every server.
//!
//! `system` starts it at a normal boot (never with `test=`), handing it
//! COM1's I/O ports (read-only) and COM1's interrupt line; it is the only
//! program holding them. It sleeps until the UART's receive interrupt,
//! reads the bytes ([`serial`]), edits lines ([`shell::editor`]), parses them
//! ([`shell::command`]) and runs them ([`commands`]). Output goes through
//! `DebugPrint`, so the kernel's log and the shell's output share COM1 a
//! whole write at a time and never interleave mid-line.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod commands;
#[cfg(target_os = "none")]
mod disks;
#[cfg(target_os = "none")]
mod files;
#[cfg(target_os = "none")]
mod jobs;
#[cfg(target_os = "none")]
mod serial;

#[cfg(target_os = "none")]
mod shell_main {
    use alloc::vec::Vec;

    use runtime::println;
    use shell::editor::{Editor, Event, MAX_LINE};
    use shell::PROMPT;

    use crate::commands::Shell;
    use crate::serial::{IrqUart, SerialInput};

    runtime::entry!(main);

    fn main(_args: runtime::Args) -> i32 {
        let mut uart = match IrqUart::from_start_caps() {
            Ok(u) => u,
            Err(e) => {
                println!("shell: cannot read COM1 by interrupt ({e}); not starting");
                return 1;
            }
        };
        // The channel COM1's interrupts arrive on: its row in `channels`
        // shows how often the shell woke (the `shell` check counts them).
        println!("shell: COM1 input by interrupt (ISA IRQ 4) on channel {}", uart.channel_id().unwrap_or(u64::MAX));
        let mut shell = Shell::new();
        let mut editor = Editor::new();
        println!("shell: ready; type help for the commands");
        runtime::print::write_bytes(PROMPT.as_bytes());
        let mut input = [0u8; 64];
        let mut echo: Vec<u8> = Vec::new();
        loop {
            let n = uart.read_wait(&mut input);
            for &b in &input[..n] {
                let event = editor.feed(b, &mut echo);
                // Echo up to here before a command runs (its output follows
                // the line it answers, even when lines were typed ahead).
                if event.is_some() || echo.len() >= 256 {
                    runtime::print::write_bytes(&echo);
                    echo.clear();
                }
                let Some(event) = event else { continue };
                match event {
                    Event::Line(line) => shell.run_line(&line, &mut uart),
                    Event::TooLong(len) => println!("shell: line too long ({len} bytes, at most {MAX_LINE})"),
                    Event::Cancel => {}
                }
                shell.report_finished_jobs();
                runtime::print::write_bytes(PROMPT.as_bytes());
            }
            if !echo.is_empty() {
                runtime::print::write_bytes(&echo);
                echo.clear();
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the shell runs on the microkernel: build the image with `cargo run -p image-builder`");
    std::process::exit(2);
}
