//! Driving a guest through its serial line, as a person at a terminal
//! would: QEMU's `-serial stdio` with the runner writing to QEMU's stdin
//! and reading its stdout.
//!
//! A [`Session`] keeps everything the guest printed (without `\r`) and a
//! read position. [`Session::until`] waits, with a deadline, for text to
//! appear after that position; [`Session::command`] types a line and
//! returns the output lines between the echoed line and the next prompt.
//! QEMU stops reading stdin while the UART's receive FIFO is full, so text
//! of any length reaches the guest intact, at the pace it reads.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::qemu::End;

/// A running guest and its output so far.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Vec<u8>>,
    /// Everything printed, `\r` removed.
    text: String,
    /// Where the next wait starts looking.
    pos: usize,
    /// No wait goes past this.
    deadline: Instant,
    /// The prompt the shell prints before each line.
    prompt: String,
}

impl Session {
    /// Start `program` with `args`; the whole session ends by `timeout`.
    pub fn start(program: &str, args: &[String], timeout: Duration, prompt: &str) -> Result<Session, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().ok_or("stdout not captured")?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Session {
            child,
            stdin,
            rx,
            text: String::new(),
            pos: 0,
            deadline: Instant::now() + timeout,
            prompt: prompt.to_string(),
        })
    }

    /// Everything the guest printed so far (read or not).
    pub fn transcript(&self) -> &str {
        &self.text
    }

    /// Type `bytes`.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        stdin.write_all(bytes).and_then(|()| stdin.flush()).map_err(|e| format!("cannot type: {e}"))
    }

    /// Take in output until `done(unread text)` gives the length of the
    /// part it wants, or `wait` passes; returns that part and moves past it.
    fn wait(&mut self, what: &str, wait: Duration, done: impl Fn(&str) -> Option<usize>) -> Result<String, String> {
        let limit = (Instant::now() + wait).min(self.deadline);
        loop {
            if let Some(n) = done(&self.text[self.pos..]) {
                let got = self.text[self.pos..self.pos + n].to_string();
                self.pos += n;
                return Ok(got);
            }
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("timed out waiting for {what}"));
            }
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes).replace('\r', "")),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(format!("the guest stopped before {what}")),
            }
        }
    }

    /// Wait for `needle`; returns the text up to and including it.
    pub fn until(&mut self, needle: &str, wait: Duration) -> Result<String, String> {
        self.wait(&format!("`{needle}`"), wait, |t| t.find(needle).map(|i| i + needle.len()))
    }

    /// Wait until `needle` has appeared anywhere in the output (before or
    /// after where the last wait stopped), then count everything printed so
    /// far as read: for output that other programs print at their own pace
    /// while the shell waits at its prompt.
    pub fn settle(&mut self, needle: &str, wait: Duration) -> Result<(), String> {
        let limit = (Instant::now() + wait).min(self.deadline);
        while !self.text.contains(needle) {
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("timed out waiting for `{needle}`"));
            }
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.text.push_str(&String::from_utf8_lossy(&bytes).replace('\r', "")),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(format!("the guest stopped before `{needle}`")),
            }
        }
        self.pos = self.text.len();
        Ok(())
    }

    /// Wait for a prompt at the start of a line; returns the text before it.
    pub fn until_prompt(&mut self, wait: Duration) -> Result<String, String> {
        let marker = format!("\n{}", self.prompt);
        let text = self.wait("the prompt", wait, |t| t.find(&marker).map(|i| i + marker.len()))?;
        Ok(text[..text.len() - self.prompt.len()].to_string())
    }

    /// Type `line` and Enter; the output lines between the echo and the
    /// next prompt.
    pub fn command(&mut self, line: &[u8], wait: Duration) -> Result<Vec<String>, String> {
        let mut typed = line.to_vec();
        typed.push(b'\r');
        self.send(&typed)?;
        let text = self.until_prompt(wait)?;
        // The first line is the echo of what was typed.
        Ok(text.lines().skip(1).map(String::from).collect())
    }

    /// Wait for the guest to end by itself (up to `wait`), else kill it;
    /// returns how it ended and everything it printed.
    pub fn finish(mut self, wait: Duration) -> (End, String) {
        self.stdin = None;
        let limit = (Instant::now() + wait).min(self.deadline);
        let end = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status.code().map_or(End::Signalled(status.to_string()), End::Exited),
                Ok(None) if Instant::now() < limit => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break End::TimedOut;
                }
            }
        };
        while let Ok(bytes) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.text.push_str(&String::from_utf8_lossy(&bytes).replace('\r', ""));
        }
        (end, std::mem::take(&mut self.text))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake "shell" in bash: a prompt, then echo each line (ended by
    /// CR, as a terminal sends Enter) and answer it.
    const FAKE: &str = r#"printf 'boot\r\n> '; while IFS= read -r -d $'\r' l; do printf '%s\r\n' "$l"; [ "$l" = quit ] && exit 3; printf 'got %s\r\n> ' "${#l}"; done"#;

    fn fake() -> Session {
        Session::start("bash", &["-c".into(), FAKE.into()], Duration::from_secs(20), "> ").unwrap()
    }

    #[test]
    fn commands_get_the_lines_between_echo_and_prompt() {
        let mut s = fake();
        let first = s.until_prompt(Duration::from_secs(5));
        assert_eq!(first, Ok("boot\n".to_string()), "{:?}", s.text);
        assert_eq!(s.command(b"hello", Duration::from_secs(5)).unwrap(), ["got 5"]);
        let long = vec![b'x'; 10 * 1024];
        assert_eq!(s.command(&long, Duration::from_secs(5)).unwrap(), ["got 10240"]);
        s.send(b"quit\r").unwrap();
        let (end, text) = s.finish(Duration::from_secs(5));
        assert_eq!(end, End::Exited(3));
        assert!(text.ends_with("quit\n"), "{text:?}");
    }

    #[test]
    fn a_missing_answer_times_out_quickly() {
        let mut s = fake();
        let start = Instant::now();
        assert!(s.until("never printed", Duration::from_millis(300)).unwrap_err().contains("timed out"));
        assert!(start.elapsed() < Duration::from_secs(3));
    }
}
