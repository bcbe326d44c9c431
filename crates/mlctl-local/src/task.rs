//! A task: what the dispatcher runs for one job of a run — a gang of identical workers with
//! its resources, retries and deadline — and how its processes are started on a placement.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlctl_core::contract;
use mlctl_core::sched::{Placement, PodRequest};
use mlctl_core::spec::common::Retries;

use crate::home::Home;
use crate::process::{self, Exit, ProcSpec, Started};

/// What to run for one job.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The job's name in its run.
    pub job: String,
    /// Gang size.
    pub workers: u32,
    /// Whether workers get the distributed-training environment.
    pub distributed: bool,
    /// Rendezvous port of rank 0 (a free port when `None`).
    pub master_port: Option<u16>,
    /// What each worker asks for.
    pub pod: PodRequest,
    /// Namespace (quota and limit ranges).
    pub namespace: String,
    /// Priority.
    pub priority: i32,
    /// Retry policy.
    pub retries: Option<Retries>,
    /// Time limit of one attempt.
    pub deadline: Option<Duration>,
    /// The command.
    pub argv: Vec<String>,
    /// Environment added to mlctl's own.
    pub env: Vec<(String, String)>,
    /// The spec's directory: the working directory is a view of it.
    pub spec_dir: PathBuf,
    /// A subdirectory of the view to start in.
    pub working_dir: Option<String>,
    /// Volumes.
    pub volumes: Vec<LocalVolume>,
    /// Output parameters to collect after success.
    pub outputs: Vec<String>,
    /// The memoization key, when the job's results may be reused (see `cache`).
    pub cache_key: Option<String>,
    /// Python requirements: the job runs in a virtual environment with them (see `pyenv`).
    pub python: Vec<String>,
}

/// A volume on this machine: a directory, linked into the working directory when its mount
/// path is relative.
#[derive(Debug, Clone)]
pub struct LocalVolume {
    /// The volume's name (`$MLCTL_VOLUME_<NAME>` holds its directory).
    pub name: String,
    /// The directory that backs it; `None` for scratch space of the attempt (`emptyDir`).
    pub dir: Option<PathBuf>,
    /// Its mount path, when relative to the working directory.
    pub mount: Option<String>,
}

/// The directories of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptDirs {
    /// The attempt's directory.
    pub root: PathBuf,
    /// Working directory (the view).
    pub work: PathBuf,
    /// `$MLCTL_OUTPUTS`.
    pub outputs: PathBuf,
}

impl AttemptDirs {
    /// The directories of attempt `number` of `job` in `run`.
    pub fn new(home: &Home, run: &str, job: &str, number: u32) -> Self {
        let root = home.attempt_dir(run, job, number);
        Self {
            work: root.join("work"),
            outputs: root.join("outputs"),
            root,
        }
    }

    /// The log file of worker `rank`.
    pub fn log(&self, rank: u32) -> PathBuf {
        self.root.join("logs").join(format!("{rank}.log"))
    }

    /// Where the shim writes how worker `rank` ended.
    pub fn status(&self, rank: u32) -> PathBuf {
        self.root.join("status").join(rank.to_string())
    }
}

/// How a worker ended, as its shim recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// It ran and ended so.
    Exit(Exit),
    /// It could not be started.
    StartError(String),
}

/// Reads the pid file of the shim of worker `rank`: its pid and start time.
pub fn read_shim_pid(dirs: &AttemptDirs, rank: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("{}.pid", dirs.status(rank).display())).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Reads a status file written by `mlctl __exec`.
pub fn read_status(path: &Path) -> Option<Recorded> {
    let text = std::fs::read_to_string(path).ok()?;
    let (kind, value) = text.trim().split_once(' ')?;
    match kind {
        "code" => value.parse().ok().map(|c| Recorded::Exit(Exit::Code(c))),
        "signal" => value.parse().ok().map(|s| Recorded::Exit(Exit::Signal(s))),
        "start-error" => Some(Recorded::StartError(value.to_string())),
        _ => None,
    }
}

/// Why a task could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Preparing the working directory failed.
    #[error("failed to prepare the working directory {path}")]
    Prepare {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No free port for the rendezvous.
    #[error("failed to find a free port for the rendezvous")]
    Port(#[source] std::io::Error),
    /// A worker could not be started.
    #[error("failed to start worker {rank}")]
    Spawn {
        /// The worker.
        rank: u32,
        /// Why.
        #[source]
        source: process::SpawnError,
    },
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn volume_env_name(name: &str) -> String {
    format!(
        "MLCTL_VOLUME_{}",
        name.to_ascii_uppercase().replace(['-', '.'], "_")
    )
}

/// Prepares the attempt's directories and starts every worker of `spec` on `placement`,
/// each under `shim` (`mlctl __exec`) when given. On failure, workers already started are
/// returned with the error so that they can be stopped.
pub fn start(
    home: &Home,
    spec: &TaskSpec,
    dirs: &AttemptDirs,
    placement: &Placement,
    shim: Option<&Path>,
) -> Result<Vec<Started>, (Vec<Started>, StartError)> {
    let prepare = |path: &Path, r: std::io::Result<()>| {
        r.map_err(|source| {
            (
                Vec::new(),
                StartError::Prepare {
                    path: path.to_path_buf(),
                    source,
                },
            )
        })
    };
    prepare(
        &dirs.work,
        process::make_view(&spec.spec_dir, &dirs.work, home.root()),
    )?;
    prepare(&dirs.outputs, std::fs::create_dir_all(&dirs.outputs))?;
    let status_dir = dirs.root.join("status");
    prepare(&status_dir, std::fs::create_dir_all(&status_dir))?;
    let cwd = match &spec.working_dir {
        Some(sub) => dirs.work.join(sub),
        None => dirs.work.clone(),
    };
    let volumes: Vec<(String, PathBuf)> = spec
        .volumes
        .iter()
        .map(|v| {
            let dir = v
                .dir
                .clone()
                .unwrap_or_else(|| dirs.root.join("volumes").join(&v.name));
            (v.name.clone(), dir)
        })
        .collect();
    for (v, (_, dir)) in spec.volumes.iter().zip(&volumes) {
        prepare(dir, std::fs::create_dir_all(dir))?;
        if let Some(mount) = &v.mount {
            let link = cwd.join(mount);
            prepare(&link, link_volume(dir, &link))?;
        }
    }
    let master_port = match spec.master_port {
        Some(p) => p,
        None if spec.distributed => free_port().map_err(|e| (Vec::new(), StartError::Port(e)))?,
        None => 0,
    };
    let mut started = Vec::new();
    for rank in 0..spec.workers {
        let mut env: Vec<(String, String)> = spec.env.clone();
        env.push((
            contract::OUTPUTS_ENV.to_string(),
            dirs.outputs.display().to_string(),
        ));
        if spec.distributed {
            env.extend(
                contract::worker_env(spec.workers, rank, "127.0.0.1", master_port)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v)),
            );
        }
        let gpus = placement
            .workers
            .iter()
            .find(|w| w.rank == rank)
            .map(|w| w.gpus.clone())
            .unwrap_or_default();
        env.extend(
            contract::gpu_env(&gpus)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v)),
        );
        for (name, dir) in &volumes {
            env.push((volume_env_name(name), dir.display().to_string()));
        }
        let argv = match shim {
            Some(shim) => {
                let mut argv = vec![
                    shim.display().to_string(),
                    "__exec".to_string(),
                    dirs.status(rank).display().to_string(),
                    "--parent".to_string(),
                    std::process::id().to_string(),
                    "--".to_string(),
                ];
                argv.extend(spec.argv.iter().cloned());
                argv
            }
            None => spec.argv.clone(),
        };
        let proc_spec = ProcSpec {
            argv,
            env,
            cwd: cwd.clone(),
            log: dirs.log(rank),
        };
        match process::spawn(&proc_spec) {
            Ok(s) => started.push(s),
            Err(source) => return Err((started, StartError::Spawn { rank, source })),
        }
    }
    Ok(started)
}

/// Makes `link` point at `dir` (replacing what the view put there, such as a link to a
/// directory of the same name next to the spec).
fn link_volume(dir: &Path, link: &Path) -> std::io::Result<()> {
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(link)?;
    }
    std::os::unix::fs::symlink(dir, link)
}

/// Reads the output parameters a successful attempt wrote; a missing one is an error.
pub fn collect_outputs(
    dirs: &AttemptDirs,
    names: &[String],
) -> Result<Vec<(String, String)>, String> {
    names
        .iter()
        .map(|name| {
            let path = dirs.outputs.join(name);
            std::fs::read_to_string(&path)
                .map(|v| (name.clone(), v.trim_end_matches(['\n', '\r']).to_string()))
                .map_err(|_| {
                    format!(
                        "output {name} was not written (expected the file $MLCTL_OUTPUTS/{name})"
                    )
                })
        })
        .collect()
}
