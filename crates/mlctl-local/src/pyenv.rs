//! Python environments for steps that declare `python: {requirements: [...]}`: one virtual
//! environment per distinct set of requirements, built once under `$MLCTL_HOME/venvs/` and
//! reused by every run; the step runs with it first on `PATH` (and `python`/`python3` as its
//! command resolve to it).
//!
//! An environment is built in place under a lock file (so that two mlctl processes needing it
//! at once build it once) and marked complete last, so a half-built one is never used (and is
//! rebuilt). It is built where it is used: a virtual environment's scripts name their
//! interpreter by absolute path.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};

use crate::home::Home;
use crate::task::TaskSpec;

/// The directory of the environment for `requirements` (sorted and deduplicated first).
pub fn env_dir(home: &Home, requirements: &[String]) -> PathBuf {
    let mut reqs: Vec<&str> = requirements.iter().map(|r| r.trim()).collect();
    reqs.sort_unstable();
    reqs.dedup();
    let digest = Sha256::digest(reqs.join("\n").as_bytes());
    let name: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    home.root().join("venvs").join(name)
}

/// Whether the environment is complete.
pub fn is_ready(dir: &Path) -> bool {
    dir.join(".mlctl-ready").exists()
}

fn step(cmd: &mut std::process::Command, what: &str, log: &Path) -> Result<(), String> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("failed to open {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("failed to open {}: {e}", log.display()))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("failed to {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "failed to {what} ({status}); see {}",
            log.display()
        ))
    }
}

/// Builds the environment for `requirements` at `dir` unless it exists, writing pip's output
/// to `log`. Blocks (on the lock and on pip): run it off the dispatcher's thread.
pub fn build(dir: &Path, requirements: &[String], log: &Path) -> Result<(), String> {
    if is_ready(dir) {
        return Ok(());
    }
    let create = |d: &Path| {
        std::fs::create_dir_all(d).map_err(|e| format!("failed to create {}: {e}", d.display()))
    };
    if let Some(parent) = log.parent() {
        create(parent)?;
    }
    let parent = dir.parent().unwrap_or(dir);
    create(parent)?;
    let lock_path = dir.with_extension("lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| format!("failed to create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("failed to lock {}: {e}", lock_path.display()))?;
    if is_ready(dir) {
        return Ok(()); // built by another mlctl while this one waited
    }
    let _ = std::fs::remove_dir_all(dir);
    step(
        std::process::Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(dir),
        "create a Python virtual environment",
        log,
    )?;
    step(
        std::process::Command::new(dir.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .args(requirements),
        &format!("install {}", requirements.join(" ")),
        log,
    )?;
    std::fs::write(dir.join(".mlctl-ready"), requirements.join("\n"))
        .map_err(|e| format!("failed to mark {} complete: {e}", dir.display()))
}

/// Makes `task` run in the environment at `dir`: first on `PATH`, `VIRTUAL_ENV` set, and a
/// `python`/`python3` command resolved to its interpreter.
///
pub fn apply(task: &mut TaskSpec, dir: &Path) {
    let bin = dir.join("bin");
    if let Some(first) = task.argv.first_mut()
        && (first == "python" || first == "python3")
    {
        *first = bin.join("python").display().to_string();
    }
    let path = std::env::var("PATH").unwrap_or_default();
    task.env
        .push(("PATH".into(), format!("{}:{path}", bin.display())));
    task.env
        .push(("VIRTUAL_ENV".into(), dir.display().to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_environment_per_set_of_requirements() {
        let home = Home::open(tempfile::tempdir().expect("tmp").path()).expect("home");
        let a = env_dir(&home, &["numpy".into(), "six==1.16.0".into()]);
        let b = env_dir(
            &home,
            &["six==1.16.0".into(), " numpy".into(), "numpy".into()],
        );
        let c = env_dir(&home, &["numpy".into()]);
        assert_eq!(a, b, "order, duplicates and spaces do not matter");
        assert_ne!(a, c);
    }
}
