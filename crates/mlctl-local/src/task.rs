//! A task: what the dispatcher runs for one job of a run — a gang of identical workers with
//! its resources, retries and deadline — and how its processes are started on a placement.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlctl_core::contract;
use mlctl_core::sched::{Placement, PodRequest};
use mlctl_core::spec::common::Retries;

use crate::home::Home;
use crate::process::{self, ProcSpec, Spawned};
use crate::reaper::Reaper;

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
    /// Processes that serve the workers (a Dask scheduler and its workers): started first,
    /// waited for until their ports accept connections, stopped when the workers end.
    pub sidecars: Vec<Sidecar>,
    /// Whether each attempt gets a free loopback port, written where `{{port}}` appears in
    /// the commands and environment of its workers and sidecars.
    pub port: bool,
}

/// The token replaced by an attempt's port.
pub const PORT_TOKEN: &str = "{{port}}";

impl TaskSpec {
    /// This task for one attempt: `{{port}}` replaced by `port`.
    pub fn for_attempt(&self, port: Option<u16>) -> TaskSpec {
        let mut spec = self.clone();
        if let Some(port) = port {
            let port = port.to_string();
            let fill = |s: &mut String| {
                if s.contains(PORT_TOKEN) {
                    *s = s.replace(PORT_TOKEN, &port);
                }
            };
            spec.argv.iter_mut().for_each(fill);
            spec.env.iter_mut().for_each(|(_, v)| fill(v));
            for sidecar in &mut spec.sidecars {
                sidecar.argv.iter_mut().for_each(fill);
                sidecar.env.iter_mut().for_each(|(_, v)| fill(v));
            }
        }
        spec
    }
}

/// A process that serves a task's workers.
#[derive(Debug, Clone)]
pub struct Sidecar {
    /// Its name (`dask-scheduler`, `dask-worker-0`).
    pub name: String,
    /// The command.
    pub argv: Vec<String>,
    /// Environment added to the task's.
    pub env: Vec<(String, String)>,
    /// Whether the workers wait until it listens on the attempt's port.
    pub ready: bool,
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
        Self::at(home.attempt_dir(run, job, number))
    }

    /// The directories of an attempt that may have been made before: those of a run that an
    /// older mlctl started are where it made them.
    pub fn existing(home: &Home, run: &str, job: &str, number: u32) -> Self {
        let dirs = Self::new(home, run, job, number);
        let nested = home.nested_attempt_dir(run, job, number);
        if !dirs.root.exists() && nested.is_dir() {
            return Self::at(nested);
        }
        dirs
    }

    fn at(root: PathBuf) -> Self {
        Self {
            work: root.join("work"),
            outputs: root.join("outputs"),
            root,
        }
    }

    /// The log file of worker `rank`.
    pub fn log(&self, rank: u32) -> PathBuf {
        self.root.join(format!("{rank}.log"))
    }

    /// Where the reaper records worker `rank`: its pid, then how it ended.
    pub fn status(&self, rank: u32) -> PathBuf {
        self.root.join(format!("{rank}.status"))
    }

    /// The log file of the sidecar `name`.
    pub fn sidecar_log(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.log"))
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

/// The working directory of an attempt, ready, and the environment every process of it gets.
struct Prepared {
    cwd: PathBuf,
    env: Vec<(String, String)>,
}

/// Prepares the attempt's directories: the view of the project, outputs and volumes.
/// Idempotent.
fn prepare(home: &Home, spec: &TaskSpec, dirs: &AttemptDirs) -> Result<Prepared, StartError> {
    let prepare = |path: &Path, r: std::io::Result<()>| {
        r.map_err(|source| StartError::Prepare {
            path: path.to_path_buf(),
            source,
        })
    };
    // the attempt's own directory first: creating `work` in it is then one `mkdir`
    prepare(&dirs.root, std::fs::create_dir_all(&dirs.root))?;
    prepare(
        &dirs.work,
        process::make_view(&spec.spec_dir, &dirs.work, home.root()),
    )?;
    prepare(&dirs.outputs, std::fs::create_dir_all(&dirs.outputs))?;
    let cwd = match &spec.working_dir {
        Some(sub) => dirs.work.join(sub),
        None => dirs.work.clone(),
    };
    let mut env: Vec<(String, String)> = spec.env.clone();
    env.push((
        contract::OUTPUTS_ENV.to_string(),
        dirs.outputs.display().to_string(),
    ));
    for v in &spec.volumes {
        let dir = v
            .dir
            .clone()
            .unwrap_or_else(|| dirs.root.join("volumes").join(&v.name));
        prepare(&dir, std::fs::create_dir_all(&dir))?;
        if let Some(mount) = &v.mount {
            let link = cwd.join(mount);
            prepare(&link, link_volume(&dir, &link))?;
        }
        env.push((volume_env_name(&v.name), dir.display().to_string()));
    }
    Ok(Prepared { cwd, env })
}

/// Starts one process of an attempt (worker `rank`, or a sidecar numbered after the
/// workers), through the reaper when there is one.
fn spawn_one(
    reaper: Option<&Reaper>,
    dirs: &AttemptDirs,
    rank: u32,
    argv: &[String],
    env: Vec<(String, String)>,
    cwd: &Path,
    log: PathBuf,
) -> Result<Spawned, process::SpawnError> {
    let spec = ProcSpec {
        argv: argv.to_vec(),
        env,
        cwd: cwd.to_path_buf(),
        log,
    };
    match reaper {
        Some(reaper) => reaper.spawn(&spec, &dirs.status(rank)),
        None => process::spawn(&spec),
    }
}

fn gpus_of(placement: &Placement, rank: u32) -> Vec<(String, String)> {
    let gpus = placement
        .workers
        .iter()
        .find(|w| w.rank == rank)
        .map(|w| w.gpus.clone())
        .unwrap_or_default();
    contract::gpu_env(&gpus)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Prepares the attempt's directories and starts every worker of `spec` on `placement`,
/// through `reaper` when given. A worker the reaper then fails to start says so through its
/// [`Spawned::running`]. On an error here, workers already asked for are returned with the
/// error so that they can be stopped.
pub fn start(
    home: &Home,
    spec: &TaskSpec,
    dirs: &AttemptDirs,
    placement: &Placement,
    reaper: Option<&Reaper>,
) -> Result<Vec<Spawned>, (Vec<Spawned>, StartError)> {
    let prepared = prepare(home, spec, dirs).map_err(|e| (Vec::new(), e))?;
    let master_port = match spec.master_port {
        Some(p) => p,
        None if spec.distributed => free_port().map_err(|e| (Vec::new(), StartError::Port(e)))?,
        None => 0,
    };
    let mut started = Vec::new();
    for rank in 0..spec.workers {
        let mut env = prepared.env.clone();
        if spec.distributed {
            env.extend(
                contract::worker_env(spec.workers, rank, "127.0.0.1", master_port)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v)),
            );
        }
        env.extend(gpus_of(placement, rank));
        match spawn_one(
            reaper,
            dirs,
            rank,
            &spec.argv,
            env,
            &prepared.cwd,
            dirs.log(rank),
        ) {
            Ok(s) => started.push(s),
            Err(source) => return Err((started, StartError::Spawn { rank, source })),
        }
    }
    Ok(started)
}

/// Starts the sidecars of `spec` (numbered after its workers), with the environment of
/// worker 0.
pub fn start_sidecars(
    home: &Home,
    spec: &TaskSpec,
    dirs: &AttemptDirs,
    placement: &Placement,
    reaper: Option<&Reaper>,
) -> Result<Vec<Spawned>, (Vec<Spawned>, StartError)> {
    let prepared = prepare(home, spec, dirs).map_err(|e| (Vec::new(), e))?;
    let mut started = Vec::new();
    for (i, sidecar) in spec.sidecars.iter().enumerate() {
        let rank = spec.workers + u32::try_from(i).unwrap_or(u32::MAX - spec.workers);
        let mut env = prepared.env.clone();
        env.extend(sidecar.env.iter().cloned());
        env.extend(gpus_of(placement, 0));
        let log = dirs.sidecar_log(&sidecar.name);
        match spawn_one(reaper, dirs, rank, &sidecar.argv, env, &prepared.cwd, log) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_is_one_directory_of_its_run_and_older_runs_are_found_where_they_were() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        let run = home.run_dir("r");
        let dirs = AttemptDirs::new(&home, "r", "train", 2);
        assert_eq!(dirs.root, run.join("train-attempt-2"));
        assert_eq!(dirs.work, run.join("train-attempt-2/work"));
        assert_eq!(dirs.outputs, run.join("train-attempt-2/outputs"));
        // nothing made yet: where a new attempt goes
        assert_eq!(
            AttemptDirs::existing(&home, "r", "train", 2).root,
            dirs.root
        );
        // an attempt of a run that an earlier mlctl started
        std::fs::create_dir_all(run.join("train/attempt-2")).expect("mkdir");
        let old = AttemptDirs::existing(&home, "r", "train", 2);
        assert_eq!(old.root, run.join("train/attempt-2"));
        assert_eq!(old.work, run.join("train/attempt-2/work"));
        assert_eq!(old.log(0), run.join("train/attempt-2/0.log"));
        // once the attempt's own directory exists, it is the one
        std::fs::create_dir_all(&dirs.root).expect("mkdir");
        assert_eq!(
            AttemptDirs::existing(&home, "r", "train", 2).root,
            dirs.root
        );
    }
}
