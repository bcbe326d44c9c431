//! What the CLI tests share: running the built `mlctl` from the repository root.

use std::path::PathBuf;
use std::process::Command;

use insta_cmd::get_cargo_bin;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `mlctl`, run from the repository root without colours.
pub fn mlctl() -> Command {
    let mut cmd = Command::new(get_cargo_bin("mlctl"));
    cmd.current_dir(repo()).env("NO_COLOR", "1");
    cmd
}
