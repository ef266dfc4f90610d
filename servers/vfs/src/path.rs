//! Path rules, enforced by VFS and by every driver.
//!
//! A path is `<prefix>:<rest>`:
//! - `prefix`: 1 to [`PREFIX_MAX`] bytes of `a-z`, `0-9`, `_` (`boot`).
//! - `rest`: the path inside the filesystem. An optional leading `/`, then
//!   components separated by single `/`; empty means the root. No empty
//!   component (`a//b`, a trailing `/`), no `.` or `..` (paths are
//!   canonical: nothing to resolve, nothing to escape), no NUL or control
//!   characters.
//! - At most [`PATH_MAX`] bytes in all.
//!
//! A driver receives the rest without its leading `/` ([`split`]).

/// Longest prefix in bytes (without the `:`).
pub const PREFIX_MAX: usize = 15;
/// Longest path in bytes, prefix included.
pub const PATH_MAX: usize = 255;

/// What is wrong with a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    Empty,
    /// No `prefix:`.
    NoPrefix,
    /// The prefix is empty, too long, or has a character outside `a-z0-9_`.
    BadPrefix,
    /// `//` or a trailing `/`.
    EmptyComponent,
    /// A `.` or `..` component.
    DotComponent,
    /// A NUL or control character.
    BadChar,
    TooLong,
}

/// Check a prefix (without the `:`).
pub fn check_prefix(prefix: &str) -> Result<(), PathError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= PREFIX_MAX
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PathError::BadPrefix)
    }
}

/// Check the part of a path inside a filesystem; returns it without its
/// leading `/` (empty for the root).
pub fn check_rest(rest: &str) -> Result<&str, PathError> {
    if rest.len() > PATH_MAX {
        return Err(PathError::TooLong);
    }
    if rest.bytes().any(|b| b.is_ascii_control()) {
        return Err(PathError::BadChar);
    }
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(rest);
    }
    for c in rest.split('/') {
        match c {
            "" => return Err(PathError::EmptyComponent),
            "." | ".." => return Err(PathError::DotComponent),
            _ => {}
        }
    }
    Ok(rest)
}

/// Split a full path into (prefix, rest inside the filesystem).
pub fn split(path: &str) -> Result<(&str, &str), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > PATH_MAX {
        return Err(PathError::TooLong);
    }
    let (prefix, rest) = path.split_once(':').ok_or(PathError::NoPrefix)?;
    check_prefix(prefix)?;
    Ok((prefix, check_rest(rest)?))
}
