//! The host-side steps: cargo invocations whose output streams straight
//! through, so a failing host test reads exactly as under plain cargo.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: this crate lives at `<root>/ci/runner`.
pub fn workspace() -> Result<PathBuf, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} has no grandparent directory", manifest.display()))?;
    if !root.join("Cargo.toml").is_file() {
        return Err(format!("{} is not the workspace root (no Cargo.toml)", root.display()));
    }
    Ok(root.to_path_buf())
}

/// The cargo that ran us (`cargo run` sets `CARGO`), else the one on PATH.
fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Run `cargo <args>` in the workspace root with inherited output.
pub fn run(ws: &Path, args: &[&str]) -> Result<(), String> {
    let cargo = cargo_program();
    let status = Command::new(&cargo)
        .current_dir(ws)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

/// Whether `cargo clippy` is installed (`ci/setup.sh` adds it where rustup can).
pub fn has_clippy(ws: &Path) -> bool {
    Command::new(cargo_program())
        .current_dir(ws)
        .args(["clippy", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The lints, warnings denied: the host build of every crate and target,
/// then every bare-metal crate for the bare-metal target.
pub fn clippy(ws: &Path) -> Result<(), String> {
    run(ws, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    let crates = image_builder::bare_metal_crates(ws)?;
    let mut args = vec!["clippy", "--target", image_builder::TARGET];
    for c in &crates {
        args.extend(["-p", c.as_str()]);
    }
    args.extend(["--", "-D", "warnings"]);
    run(ws, &args)
}

/// Build the boot image.
pub fn build_image(ws: &Path) -> Result<(), String> {
    run(ws, &["run", "-p", "image-builder"])
}
