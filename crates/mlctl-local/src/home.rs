//! The mlctl home: where the local runtime keeps its state, logs, working directories,
//! volumes and caches (`$MLCTL_HOME`, default `./.mlctl`).
//!
//! ```text
//! state.db                                  runs, attempts, processes, events, scheduler log
//! runs/<run>/<job>-attempt-<n>/             working directory (a view of the spec directory)
//! runs/<run>/<job>-attempt-<n>.outputs/     $MLCTL_OUTPUTS
//! runs/<run>/<job>-attempt-<n>.<rank>.log     a worker's output (a sidecar's: .<name>.log)
//! runs/<run>/workers.status                 every worker's pid, then how it ended (the reaper's)
//! runs/<run>/supervisor.log                 a detached run's own messages
//! runs/<run>/<job>-attempt-<n>.volumes/<v>/ `emptyDir` volumes
//! volumes/<claim>/                          `claim` volumes: outlive runs
//! configmaps/<name>/                        `configMap` volumes
//! secrets/<secret>/<key>                    values of secret references and `secret` volumes
//! ```

use std::path::{Path, PathBuf};

/// The home directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// Why the home cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("failed to create the mlctl home {path}")]
pub struct HomeError {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl Home {
    /// The home at `root`, created if missing. The path is made absolute, because child
    /// processes run in other directories.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, HomeError> {
        let root = root.as_ref();
        let err = |source| HomeError {
            path: root.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(root).map_err(err)?;
        let root = std::fs::canonicalize(root).map_err(err)?;
        Ok(Self { root })
    }

    /// `$MLCTL_HOME`, or `.mlctl` in the current directory.
    pub fn from_env() -> Result<Self, HomeError> {
        let root = std::env::var_os("MLCTL_HOME")
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(".mlctl"), PathBuf::from);
        Self::open(root)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The state database.
    pub fn db(&self) -> PathBuf {
        self.root.join("state.db")
    }

    /// The directory of a run.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.root.join("runs").join(run)
    }

    /// The working directory of one attempt of a job of a run, whose other files are beside
    /// it (see `task::AttemptDirs`): one level below the run's, because every directory is a
    /// `mkdir` at the start of a step, the costliest part of preparing it. The name is
    /// unambiguous: the attempt is the number after the last `-attempt-`.
    pub fn attempt_dir(&self, run: &str, job: &str, attempt: u32) -> PathBuf {
        self.run_dir(run).join(format!("{job}-attempt-{attempt}"))
    }

    /// Where earlier builds of mlctl kept an attempt's directory (`<job>/attempt-<n>`, until
    /// 2026-11-29): recovery still finds the attempts of the runs they started.
    pub fn nested_attempt_dir(&self, run: &str, job: &str, attempt: u32) -> PathBuf {
        self.run_dir(run)
            .join(job)
            .join(format!("attempt-{attempt}"))
    }

    /// The directory of a `claim` volume.
    pub fn volume(&self, claim: &str) -> PathBuf {
        self.root.join("volumes").join(claim)
    }

    /// The file holding a secret's key, for secret references run locally.
    pub fn secret(&self, secret: &str, key: &str) -> PathBuf {
        self.root.join("secrets").join(secret).join(key)
    }
}
