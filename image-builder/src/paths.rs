//! Where builds and the image live.
//!
//! Cargo puts its output in `CARGO_TARGET_DIR` when that is set, so the
//! image builder (which reads the bare-metal binaries back) and the ci
//! runner (which boots the image and writes logs) must look there too, or
//! they read stale files or none. The rule is resolved once, here: the
//! variable if set and non-empty (a relative value is taken from the
//! workspace root, where every cargo call of this project runs), else
//! `<workspace>/target`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The environment variable cargo reads.
pub const TARGET_DIR_VAR: &str = "CARGO_TARGET_DIR";

/// The target directory for a `CARGO_TARGET_DIR` value of `var`.
pub fn target_dir_from(workspace: &Path, var: Option<&OsStr>) -> PathBuf {
    match var {
        Some(v) if !v.is_empty() => workspace.join(v),
        _ => workspace.join("target"),
    }
}

/// The target directory cargo uses for this process's environment.
pub fn target_dir(workspace: &Path) -> PathBuf {
    target_dir_from(workspace, std::env::var_os(TARGET_DIR_VAR).as_deref())
}

/// Where the built image lives: `<target>/image`.
pub fn image_dir(workspace: &Path) -> PathBuf {
    target_dir(workspace).join("image")
}

/// The unstripped programs beside the image (for gdb and symbolizing):
/// `<image>/debug`.
pub fn debug_dir(image_dir: &Path) -> PathBuf {
    image_dir.join("debug")
}
