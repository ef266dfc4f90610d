//! Addresses in a boot log turned into function, file and line.
//!
//! The kernel prints bare addresses when it dies (`KERNEL FAULT ... at rip
//! 0x...`, then `backtrace:` and `  #N 0x...` return addresses) and when it
//! kills a program (`fault: process N 'name' thread T: ... at rip 0x...`):
//! it has no symbols of its own, and should not need them. The runner has
//! the ELFs with their debug info, so it appends ` [function at file:line]`
//! to each such line (inlined calls as `..., inlined into ...`), in the logs
//! it shows and saves and for `ci symbolize <log>`.
//!
//! Kernel addresses are looked up in `<image>/kernel.elf`, program addresses
//! in the unstripped copy the image builder keeps in `<image>/debug/`, found
//! by the process name in the report: the program of that name, else the
//! name up to its last `-` (`ktest-child` is a process of `ktest`), and so on.
//! An address no function or symbol covers (a jump to nowhere) gets no
//! note.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use addr2line::Loader;

/// Where a log line points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// A kernel address; `ret` for a return address (looked up one byte
    /// before, inside the call instruction).
    Kernel { addr: u64, ret: bool },
    /// An address in the program of the process named `process`.
    User { process: String, addr: u64 },
}

/// The address a kernel or user fault report, or a backtrace line, names.
pub fn site(line: &str) -> Option<Site> {
    if let Some(rest) = line.strip_prefix("  #") {
        let (depth, addr) = rest.split_once(' ')?;
        if depth.is_empty() || !depth.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some(Site::Kernel { addr: whole_hex(addr)?, ret: true });
    }
    if line.contains("KERNEL FAULT: ") {
        return Some(Site::Kernel { addr: rip(line)?, ret: false });
    }
    let (_, rest) = line.split_once("fault: process ")?;
    let (_, rest) = rest.split_once(" '")?;
    let (process, rest) = rest.split_once('\'')?;
    Some(Site::User { process: process.to_string(), addr: rip(rest)? })
}

/// `0x<hex>` and nothing else.
fn whole_hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// The value after ` at rip 0x`.
fn rip(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once(" at rip ")?;
    let end = rest.bytes().skip(2).position(|b| !b.is_ascii_hexdigit()).map_or(rest.len(), |i| i + 2);
    whole_hex(rest.get(..end)?)
}

/// Looks addresses up in the image's ELFs, each loaded the first time it is
/// needed.
pub struct Symbolizer {
    image_dir: PathBuf,
    /// Source paths under it are shown relative to it.
    workspace: PathBuf,
    kernel: Option<Option<Loader>>,
    programs: HashMap<String, Option<Loader>>,
}

impl Symbolizer {
    pub fn new(workspace: &Path, image_dir: &Path) -> Symbolizer {
        Symbolizer { image_dir: image_dir.to_path_buf(), workspace: workspace.to_path_buf(), kernel: None, programs: HashMap::new() }
    }

    /// `line` with ` [function at file:line]` appended if it names an
    /// address the ELFs know; unchanged otherwise (also when it already
    /// ends with an annotation, so a saved log can be symbolized again).
    pub fn annotate(&mut self, line: &str) -> String {
        if line.ends_with(']') {
            return line.to_string();
        }
        match site(line).and_then(|s| self.describe(&s)) {
            Some(what) => format!("{line} [{what}]"),
            None => line.to_string(),
        }
    }

    /// Every line of `lines`, annotated.
    pub fn annotate_all(&mut self, lines: &[String]) -> Vec<String> {
        lines.iter().map(|l| self.annotate(l)).collect()
    }

    /// `function at file:line`, innermost inlined call first.
    pub fn describe(&mut self, site: &Site) -> Option<String> {
        let (probe, loader) = match site {
            Site::Kernel { addr, ret } => {
                let path = self.image_dir.join("kernel.elf");
                let loader = self.kernel.get_or_insert_with(|| Loader::new(path).ok()).as_ref()?;
                (if *ret { addr.checked_sub(1)? } else { *addr }, loader)
            }
            Site::User { process, addr } => {
                if !self.programs.contains_key(process) {
                    let loader = program_for(&image_builder::debug_dir(&self.image_dir), process).and_then(|p| Loader::new(p).ok());
                    self.programs.insert(process.clone(), loader);
                }
                (*addr, self.programs[process].as_ref()?)
            }
        };
        describe_in(loader, probe, &self.workspace)
    }
}

/// The unstripped program for process `name`: `dir/name`, else `name` cut
/// at its last `-`, repeatedly.
fn program_for(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut name = name;
    loop {
        let path = dir.join(name);
        if !name.is_empty() && !name.contains('/') && path.is_file() {
            return Some(path);
        }
        name = &name[..name.rfind('-')?];
    }
}

fn describe_in(loader: &Loader, probe: u64, workspace: &Path) -> Option<String> {
    let mut parts = Vec::new();
    if let Ok(mut frames) = loader.find_frames(probe) {
        while let Ok(Some(frame)) = frames.next() {
            let function = frame.function.as_ref().and_then(|f| f.demangle().ok()).map_or("??".into(), |f| f.into_owned());
            let place = frame.location.as_ref().and_then(|l| Some((l.file?, l.line?)));
            parts.push(match place {
                Some((file, line)) => format!("{function} at {}:{line}", shorten(file, workspace)),
                None => function,
            });
        }
    }
    if parts.is_empty() {
        // No line information: the symbol table's name, if any.
        let name = loader.find_symbol(probe)?;
        parts.push(addr2line::demangle_auto(name.into(), None).into_owned());
    }
    Some(parts.join(", inlined into "))
}

/// `file` relative to the workspace when it is inside it.
fn shorten(file: &str, workspace: &Path) -> String {
    match Path::new(file).strip_prefix(workspace) {
        Ok(rel) => rel.display().to_string(),
        Err(_) => file.to_string(),
    }
}

#[cfg(test)]
mod tests;
