//! A task: what the dispatcher runs for one job of a run — a gang of identical workers with
//! its resources, retries and deadline — and how its processes are started on a placement.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mlctl_core::contract;
use mlctl_core::sched::{Placement, PodRequest};
use mlctl_core::spec::common::Retries;

use crate::home::Home;
use crate::process::{self, ProcSpec, Spawned};
use crate::reaper::{Reaper, StatusFile};

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

/// The paths of one attempt. Its working directory is named after it in its run's directory,
/// and its other files are beside it, named `<working directory>.<file>`: a directory of the
/// attempt's own around them would be one `mkdir` more at the start of every step, the costliest
/// thing a step's start does (BENCHMARKS.md).
#[derive(Debug, Clone)]
pub struct AttemptDirs {
    /// Working directory (the view).
    pub work: PathBuf,
    /// `$MLCTL_OUTPUTS`.
    pub outputs: PathBuf,
    /// Where the attempt's other files are.
    files: Files,
}

/// The file, in a run's directory, where the reaper records the run's workers.
const WORKERS_STATUS: &str = "workers.status";

/// Where an attempt's logs, status records and scratch volumes are.
#[derive(Debug, Clone)]
enum Files {
    /// Beside the working directory `<dir>/<stem>`: `<dir>/<stem>.<file>`.
    Beside { dir: PathBuf, stem: String },
    /// In a directory of the attempt's own (`<root>/<file>`, with `<root>/work` and
    /// `<root>/outputs`), where mlctl kept them until 2026-11-29.
    In(PathBuf),
}

impl AttemptDirs {
    /// The paths of attempt `number` of `job` in `run`.
    pub fn new(home: &Home, run: &str, job: &str, number: u32) -> Self {
        let work = home.attempt_dir(run, job, number);
        let dir = home.run_dir(run);
        let stem = work
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            outputs: dir.join(format!("{stem}.outputs")),
            work,
            files: Files::Beside { dir, stem },
        }
    }

    /// The paths of an attempt that may have been made before: those of a run that an older
    /// mlctl started are where it made them. An attempt of this layout makes its outputs
    /// directory before its working directory, so that it is recognised from the moment it
    /// has either.
    pub fn existing(home: &Home, run: &str, job: &str, number: u32) -> Self {
        let dirs = Self::new(home, run, job, number);
        if dirs.outputs.is_dir() {
            return dirs;
        }
        // a real directory, not a link of a view to a project's `outputs`
        let is_dir = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_dir());
        let older = [dirs.work.clone(), home.nested_attempt_dir(run, job, number)];
        match older.into_iter().find(|root| is_dir(&root.join("outputs"))) {
            Some(root) => Self {
                work: root.join("work"),
                outputs: root.join("outputs"),
                files: Files::In(root),
            },
            None => dirs,
        }
    }

    /// The attempt's file `name`.
    fn file(&self, name: &str) -> PathBuf {
        match &self.files {
            Files::Beside { dir, stem } => dir.join(format!("{stem}.{name}")),
            Files::In(root) => root.join(name),
        }
    }

    /// The log file of worker `rank`.
    pub fn log(&self, rank: u32) -> PathBuf {
        self.file(&format!("{rank}.log"))
    }

    /// Where the reaper records worker `rank`: its pid, then how it ended. In the file of
    /// every worker of the run (`<run>/workers.status`), not one of the worker's own: a file
    /// less to create at every step's start.
    pub fn status(&self, rank: u32) -> StatusFile {
        match &self.files {
            Files::Beside { dir, stem } => StatusFile {
                path: dir.join(WORKERS_STATUS),
                key: format!("{stem}.{rank}"),
            },
            Files::In(root) => StatusFile {
                path: root.join(format!("{rank}.status")),
                key: String::new(),
            },
        }
    }

    /// The log file of the sidecar `name`.
    pub fn sidecar_log(&self, name: &str) -> PathBuf {
        self.file(&format!("{name}.log"))
    }

    /// The directory of the attempt's scratch volume (`emptyDir`) `name`.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.file("volumes").join(name)
    }

    /// The ranks the reaper recorded: it started them.
    pub fn ranks_with_status(&self) -> Vec<u32> {
        match &self.files {
            Files::Beside { dir, stem } => crate::reaper::keys(&dir.join(WORKERS_STATUS))
                .iter()
                .filter_map(|key| key.strip_prefix(stem.as_str())?.strip_prefix('.'))
                .filter_map(|rank| rank.parse().ok())
                .collect(),
            Files::In(root) => std::fs::read_dir(root)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name();
                    name.to_str()?.strip_suffix(".status")?.parse().ok()
                })
                .collect(),
        }
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
    // the outputs first: they tell an attempt of this layout from an older one (see
    // `AttemptDirs::existing`)
    prepare(&dirs.outputs, std::fs::create_dir_all(&dirs.outputs))?;
    prepare(
        &dirs.work,
        process::make_view(&spec.spec_dir, &dirs.work, home.root()),
    )?;
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
        let dir = v.dir.clone().unwrap_or_else(|| dirs.scratch(&v.name));
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
    fn an_attempt_is_a_working_directory_with_its_files_beside_it_and_older_ones_are_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = Home::open(dir.path()).expect("home");
        let run = home.run_dir("r");
        let dirs = AttemptDirs::new(&home, "r", "train", 2);
        assert_eq!(dirs.work, run.join("train-attempt-2"));
        assert_eq!(dirs.outputs, run.join("train-attempt-2.outputs"));
        assert_eq!(dirs.log(0), run.join("train-attempt-2.0.log"));
        assert_eq!(
            dirs.status(1),
            StatusFile {
                path: run.join("workers.status"),
                key: "train-attempt-2.1".into()
            }
        );
        assert_eq!(
            dirs.sidecar_log("dask-scheduler"),
            run.join("train-attempt-2.dask-scheduler.log")
        );
        assert_eq!(dirs.scratch("tmp"), run.join("train-attempt-2.volumes/tmp"));
        let found = |home: &Home| {
            let d = AttemptDirs::existing(home, "r", "train", 2);
            let log = d.log(0);
            (d.work, d.outputs, log)
        };
        let this = (dirs.work.clone(), dirs.outputs.clone(), dirs.log(0));
        // nothing made yet: where a new attempt goes
        assert_eq!(found(&home), this);
        // an attempt of a run that mlctl started before 2026-11-29
        std::fs::create_dir_all(run.join("train/attempt-2/outputs")).expect("mkdir");
        let nested = run.join("train/attempt-2");
        assert_eq!(
            found(&home),
            (
                nested.join("work"),
                nested.join("outputs"),
                nested.join("0.log")
            )
        );
        // one of an attempt directory holding it all: found before the nested one
        let root = run.join("train-attempt-2");
        std::fs::create_dir_all(root.join("outputs")).expect("mkdir");
        std::fs::write(root.join("3.status"), "pid 1 2\n").expect("write");
        let older = AttemptDirs::existing(&home, "r", "train", 2);
        assert_eq!(
            (older.work.clone(), older.outputs.clone(), older.log(0)),
            (root.join("work"), root.join("outputs"), root.join("0.log"))
        );
        assert_eq!(older.ranks_with_status(), vec![3]);
        assert_eq!(
            older.status(3),
            StatusFile {
                path: root.join("3.status"),
                key: String::new()
            }
        );
        // once the outputs beside it exist, the attempt is one of this layout, whatever its
        // working directory holds (here, a real `outputs` directory a step made)
        std::fs::create_dir_all(&dirs.outputs).expect("mkdir");
        assert_eq!(found(&home), this);
        // the ranks of this attempt in the file of the run's workers, not those of another
        std::fs::write(
            run.join("workers.status"),
            "train-attempt-20.5 pid 1 2\ntrain-attempt-2.0 pid 3 4\ntrain-attempt-2.4 pid 5 6\n",
        )
        .expect("write");
        assert_eq!(dirs.ranks_with_status(), vec![0, 4]);
    }
}
