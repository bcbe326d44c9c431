//! The runtime: submits runs to the store and drives them. One dispatcher task owns all the
//! state of the runs this process drives and orders every event (a worker exited, a deadline
//! passed, a retry is due, Ctrl-C); child processes and timers only send it events.
//!
//! For each job the dispatcher asks the machine's scheduler for a placement (through the
//! store, see `schedsync`), starts the gang of workers when it gets one, stops the whole gang
//! when one worker fails, decides retries with Argo's semantics, and reports each job's final
//! result to the run's controller.
//!
//! Recovery: every process registers as an owner (pid + start time). Attempts of an owner
//! that is gone are *lost*: their leftover process groups are killed, the scheduler is told
//! they finished, and their runs are handed to a new supervisor that retries them per policy.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use mlctl_core::retry::{self, Outcome};
use mlctl_core::sched::{Decision, Event, GpuDevice, JobId, JobRequest, Node};
use mlctl_core::spec::{Kind, Object, SourceText};
use mlctl_core::validate::{self, ValidatedSpec};
use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use crate::controller::{
    self, Command, Controller, JobHistory, JobResult, RunContext, RunOptions, RunPhase,
};
use crate::error_chain;
use crate::gpu::{self, Declared};
use crate::home::{Home, HomeError};
use crate::process::{self, Exit};
use crate::reaper::{self, Reaper};
use crate::schedsync::{SchedSync, SyncError};
use crate::store::{NewRun, Store, StoreError};
use crate::tail::{Tailer, Which};
use crate::task::{self, AttemptDirs, TaskSpec};

/// Why the runtime failed (not the workloads: those fail as runs).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The home directory.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared scheduler.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A stored run cannot be driven.
    #[error("run {run}: {message}")]
    Run {
        /// The run.
        run: String,
        /// Why.
        message: String,
    },
    /// Signal handling could not be set up.
    #[error("failed to watch for Ctrl-C")]
    Signals(#[source] std::io::Error),
}

/// What the machine offers, when it is not discovered.
#[derive(Debug, Clone, Default)]
pub struct MachineOptions {
    /// Declared GPUs (`--gpus N`); without it NVML is asked.
    pub gpus: Option<u32>,
    /// The model label of declared GPUs (default `nvidia-gpu`).
    pub gpu_type: Option<String>,
    /// CPU cores to offer (default: all).
    pub cpus: Option<u32>,
    /// Memory to offer in bytes (default: all).
    pub memory_bytes: Option<u64>,
}

/// Whether an event is routine or worth attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Routine.
    Normal,
    /// Worth attention.
    Warning,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Normal => "Normal",
            EventKind::Warning => "Warning",
        }
    }
}

/// Receives what happens while runs are driven (the CLI prints it).
pub trait Observer {
    /// An event of a run (also stored for `describe`).
    fn event(&mut self, run: &str, job: &str, kind: EventKind, reason: &str, message: &str);
    /// A line a worker wrote; `source` is `job/rank`.
    fn log(&mut self, run: &str, source: &str, line: &str);
}

/// How a driven run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run.
    pub id: String,
    /// Its phase.
    pub phase: RunPhase,
    /// Why, when not successful.
    pub message: String,
}

/// What driving runs came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Driven {
    /// Each run's end.
    pub runs: Vec<RunSummary>,
    /// Whether Ctrl-C (or SIGTERM) cancelled them.
    pub interrupted: bool,
}

/// What a deploy step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The service's run.
    pub run: String,
    /// Whether the run was submitted now (it needs a supervisor), rather than asked to
    /// update its model.
    pub started: bool,
}

/// The local runtime of this process.
pub struct Runtime {
    home: Home,
    store: Store,
    owner: i64,
    sync: SchedSync,
    grace: Duration,
    gpu_note: Option<String>,
    reaper: Option<Reaper>,
    /// The specs submitted through this runtime, by the id of their stored sources: driving
    /// their runs does not parse and validate them again.
    submitted: BTreeMap<i64, ValidatedSpec>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn total_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(8 << 30, |kb| kb * 1024)
}

/// The name of the local node.
pub const LOCAL_NODE: &str = "local";

/// A short random suffix for run ids.
fn suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    let mut n = h.finish();
    let alphabet = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = alphabet[(n % alphabet.len() as u64) as usize] as char;
            n /= alphabet.len() as u64;
            c
        })
        .collect()
}

impl Runtime {
    /// Opens the home's store and registers this process as an owner.
    pub fn open(home: Home, machine: &MachineOptions) -> Result<Self, RuntimeError> {
        let store = Store::open(&home.db())?;
        let pid = std::process::id();
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        let owner =
            store.register_owner(pid, process::start_time(pid).unwrap_or(0), &command, now())?;
        // a declaration is remembered, so that background supervisors and later runs see the
        // same machine
        let (gpus, gpu_type) = match machine.gpus {
            Some(n) => {
                store.set_setting("gpus", &n.to_string())?;
                store.set_setting("gpu-type", machine.gpu_type.as_deref().unwrap_or(""))?;
                (Some(n), machine.gpu_type.clone())
            }
            None => (
                store.setting("gpus")?.and_then(|v| v.parse().ok()),
                store.setting("gpu-type")?.filter(|t| !t.is_empty()),
            ),
        };
        let declared = gpus.map(|count| Declared {
            count,
            model: gpu_type.unwrap_or_else(|| "nvidia-gpu".into()),
        });
        let (gpus, gpu_note) = gpu::discover(declared);
        let cpus = machine.cpus.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
            u64::from,
        );
        let mut node = Node::new(
            LOCAL_NODE,
            cpus * 1000,
            machine.memory_bytes.unwrap_or_else(total_memory_bytes),
        );
        node.gpus = gpus
            .into_iter()
            .map(|g| GpuDevice {
                id: g.id,
                model: g.model,
            })
            .collect();
        Ok(Self {
            home,
            store,
            owner,
            sync: SchedSync::new(owner, node),
            grace: Duration::from_secs(10),
            gpu_note,
            reaper: None,
            submitted: BTreeMap::new(),
        })
    }

    /// Sets the reaper that starts every worker and records how each ended, so that recovery
    /// knows the workers that ended while no mlctl watched them. Model servers and deploy
    /// steps run its mlctl executable.
    pub fn set_reaper(&mut self, reaper: Reaper) {
        self.reaper = Some(reaper);
    }

    /// The reaper, when one is set.
    pub fn reaper(&self) -> Option<&Reaper> {
        self.reaper.as_ref()
    }

    /// Sets the time workers get between SIGTERM and SIGKILL (default 10s).
    pub fn set_grace(&mut self, grace: Duration) {
        self.grace = grace;
    }

    /// The store (for reading).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// This process's owner id.
    pub fn owner(&self) -> i64 {
        self.owner
    }

    /// Why no GPUs were found, when none were.
    pub fn gpu_note(&self) -> Option<&str> {
        self.gpu_note.as_deref()
    }

    /// Creates one run per runnable object of `spec` (TrainingJob, Pipeline, DataJob; an
    /// InferenceService that no pipeline deploys) and returns their ids.
    pub fn submit(
        &mut self,
        spec: &ValidatedSpec,
        sources: &[(String, String)],
        overrides: &IndexMap<String, String>,
        options: &RunOptions,
    ) -> Result<Vec<String>, RuntimeError> {
        let sources_id = self.store.put_sources(
            &serde_json::to_string(
                &sources
                    .iter()
                    .map(|(name, text)| {
                        serde_json::json!({
                            "name": name,
                            "text": text,
                            "dir": spec_dir_of(name).display().to_string(),
                        })
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default(),
        )?;
        self.submitted.insert(sources_id, spec.clone());
        let deployed: Vec<(&str, &str)> = spec
            .pipeline_steps()
            .filter_map(|(o, s)| Some((o.namespace(), s.deploy.as_ref()?.service.as_str())))
            .collect();
        let params_json = serde_json::to_string(overrides).unwrap_or_default();
        let mut ids = Vec::new();
        for object in spec.objects() {
            let runnable = match object.kind() {
                Kind::TrainingJob | Kind::Pipeline | Kind::DataJob => true,
                // a deployed service starts when its pipeline deploys a model
                Kind::InferenceService => !deployed.contains(&(object.namespace(), object.name())),
                _ => false,
            };
            if runnable {
                let spec_dir = spec_dir_of(&object.origin.file);
                ids.push(self.insert_run(object, &spec_dir, sources_id, &params_json, options)?);
            }
        }
        Ok(ids)
    }

    fn insert_run(
        &mut self,
        object: &Object,
        spec_dir: &Path,
        sources: i64,
        params: &str,
        options: &RunOptions,
    ) -> Result<String, RuntimeError> {
        let id = loop {
            let id = format!("{}-{}", object.name(), suffix());
            if !self.store.run_exists(&id)? {
                break id;
            }
        };
        self.store.insert_run(&NewRun {
            id: &id,
            name: object.name(),
            kind: object.kind().as_str(),
            namespace: object.namespace(),
            spec_dir: &spec_dir.display().to_string(),
            sources,
            params,
            options: &serde_json::to_string(options).unwrap_or_default(),
            owner: self.owner,
            now: now(),
        })?;
        self.store.event(
            &id,
            "",
            "Normal",
            "Submitted",
            &format!("{} {} submitted", object.kind(), object.name()),
            now(),
        )?;
        Ok(id)
    }

    /// A deploy step of run `from_run`: asks the running InferenceService `service` (of the
    /// run's namespace and specs) to serve `model`, or submits a run of it serving `model`
    /// when none runs (the caller starts its supervisor).
    pub fn deploy(
        &mut self,
        from_run: &str,
        service: &str,
        model: &str,
    ) -> Result<Deployment, RuntimeError> {
        let err = |message: String| RuntimeError::Run {
            run: from_run.to_string(),
            message,
        };
        let row = self
            .store
            .find_run(from_run)?
            .ok_or_else(|| err("no such run".into()))?;
        let kind = Kind::InferenceService.as_str();
        if let Some(active) = self.store.active_run(kind, service, &row.namespace)? {
            self.store.request_model(&active.id, model, now())?;
            return Ok(Deployment {
                run: active.id,
                started: false,
            });
        }
        let spec = load_spec(&self.store, row.sources).map_err(err)?;
        let object = spec
            .objects()
            .iter()
            .find(|o| {
                o.kind() == Kind::InferenceService
                    && o.name() == service
                    && o.namespace() == row.namespace
            })
            .ok_or_else(|| {
                err(format!(
                    "no InferenceService {service} in namespace {} of its specs",
                    row.namespace
                ))
            })?;
        let spec_dir = self
            .store
            .source_dir(row.sources, &object.origin.file)?
            .map_or_else(|| PathBuf::from(&row.spec_dir), PathBuf::from);
        let mut options: RunOptions = serde_json::from_str(&row.options).unwrap_or_default();
        options.model = Some(model.to_string());
        let run = self.insert_run(object, &spec_dir, row.sources, "{}", &options)?;
        Ok(Deployment { run, started: true })
    }

    /// Finds runs whose owner is gone: their unfinished attempts are marked lost (leftover
    /// processes are killed and the scheduler is told), and the runs are returned for a new
    /// supervisor to adopt.
    pub fn recover(&mut self) -> Result<Vec<String>, RuntimeError> {
        let owners = self.store.owners()?;
        let dead: Vec<i64> = owners
            .iter()
            .filter(|o| o.id != self.owner && !process::is_alive(o.pid, o.start_time))
            .map(|o| o.id)
            .collect();
        // catch up, so that the scheduler knows the dead owners' jobs
        self.sync.sync(&mut self.store, Vec::new())?;
        let mut events = Vec::new();
        let mut orphans = Vec::new();
        for &owner in &dead {
            for (run, job, attempt) in self.store.unfinished_attempts_of(owner)? {
                self.recover_attempt(&run, &job, &attempt)?;
            }
            for (job, by) in self.sync.jobs().clone() {
                if by == owner {
                    let placed = self.sync.scheduler().placement(&job).is_some();
                    events.push(if placed {
                        Event::Finish { job }
                    } else {
                        Event::Cancel { job }
                    });
                }
            }
            for run in self.store.active_runs_of(owner)? {
                self.store.set_run_owner(&run.id, self.owner)?;
                orphans.push(run.id);
            }
            self.store.forget_owner(owner)?;
        }
        if !events.is_empty() {
            self.sync.sync(&mut self.store, events)?;
        }
        Ok(orphans)
    }

    /// Settles an attempt whose mlctl died: workers still running are killed and the attempt is
    /// lost, unless every worker had ended and its reaper recorded how — then the attempt ended
    /// that way (so a step that succeeded is not run again).
    fn recover_attempt(
        &mut self,
        run: &str,
        job: &str,
        attempt: &crate::store::AttemptRow,
    ) -> Result<(), RuntimeError> {
        let dirs = AttemptDirs::existing(&self.home, run, job, attempt.number);
        let processes = self.store.processes(attempt.id)?;
        let workers = self
            .store
            .job(attempt.job_id)?
            .map_or(1, |j| j.workers.max(1));
        // a worker may have been started without being recorded (mlctl killed in between):
        // its status file tells (workers start once the working directory is prepared)
        let mut ended = attempt.started_at.is_some() || dirs.work.exists();
        let mut failure: Option<String> = None;
        // workers are ranks 0..workers; sidecars are numbered after them
        let mut ranks: std::collections::BTreeSet<u32> = (0..workers).collect();
        ranks.extend(processes.iter().map(|p| p.rank));
        ranks.extend(dirs.ranks_with_status());
        for rank in ranks {
            let row = processes.iter().find(|p| p.rank == rank);
            if rank >= workers {
                // a sidecar: stopped with its attempt, whatever its workers did
                for (pid, start_time) in row
                    .map(|p| (p.pid, p.start_time))
                    .into_iter()
                    .chain(reaper::read_pid(&dirs.status(rank)))
                {
                    if process::is_alive(pid, start_time) {
                        let _ = process::signal_group(pid, Signal::SIGKILL);
                    }
                }
                if let Some(p) = row.filter(|p| p.finished_at.is_none()) {
                    self.store.finish_process(p.id, "stopped", now())?;
                }
                continue;
            }
            if let Some(p) = row.filter(|p| p.finished_at.is_some()) {
                if p.exit.as_deref() != Some("exit code 0") {
                    failure.get_or_insert_with(|| {
                        format!(
                            "worker {rank} ended with {}",
                            p.exit.as_deref().unwrap_or("?")
                        )
                    });
                }
                continue;
            }
            let candidates = row
                .map(|p| (p.pid, p.start_time))
                .into_iter()
                .chain(reaper::read_pid(&dirs.status(rank)));
            let mut running = false;
            for (pid, start_time) in candidates {
                if process::is_alive(pid, start_time) {
                    let _ = process::signal_group(pid, Signal::SIGKILL);
                    running = true;
                }
            }
            let end = match (running, reaper::read_status(&dirs.status(rank))) {
                (true, _) | (false, None) => {
                    ended = false;
                    "lost".to_string()
                }
                (false, Some(exit)) => {
                    if !exit.success() {
                        failure.get_or_insert_with(|| format!("worker {rank} ended with {exit}"));
                    }
                    exit.to_string()
                }
            };
            if let Some(p) = row {
                self.store.finish_process(p.id, &end, now())?;
            }
        }
        let (phase, message) = match (ended, failure) {
            (true, None) => (
                "Succeeded",
                "its workers had succeeded while no mlctl watched them".to_string(),
            ),
            (true, Some(why)) => ("Failed", why),
            (false, _) => (
                "Lost",
                "the mlctl process driving it was killed".to_string(),
            ),
        };
        self.store
            .update_attempt(attempt.id, phase, phase, &message, now(), true)?;
        if phase == "Succeeded" {
            let mut outputs = BTreeMap::new();
            for entry in std::fs::read_dir(&dirs.outputs)
                .into_iter()
                .flatten()
                .flatten()
            {
                if let (Some(name), Ok(value)) = (
                    entry.file_name().to_str().map(str::to_string),
                    std::fs::read_to_string(entry.path()),
                ) {
                    outputs.insert(name, value.trim_end_matches(['\n', '\r']).to_string());
                }
            }
            self.store.set_job_outputs(
                attempt.job_id,
                &serde_json::to_string(&outputs).unwrap_or_default(),
            )?;
            self.store
                .update_job(attempt.job_id, "Succeeded", "", attempt.number, now(), true)?;
        }
        let kind = if phase == "Succeeded" {
            "Normal"
        } else {
            "Warning"
        };
        self.store.event(
            run,
            job,
            kind,
            "Recovered",
            &format!(
                "attempt {} {}: {message}",
                attempt.number,
                phase.to_lowercase()
            ),
            now(),
        )?;
        Ok(())
    }

    /// Drives `runs` until each has ended (or Ctrl-C cancelled them).
    pub async fn drive(
        &mut self,
        runs: &[String],
        observer: &mut dyn Observer,
    ) -> Result<Driven, RuntimeError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let specs = std::mem::take(&mut self.submitted);
        let mut d = Dispatcher {
            rt: self,
            observer,
            runs: Vec::new(),
            tasks: Vec::new(),
            open: Vec::new(),
            dirty: std::collections::BTreeSet::new(),
            by_sched: BTreeMap::new(),
            outbox: Vec::new(),
            tx,
            tail: Tailer::default(),
            specs,
            forced: false,
            interrupted: false,
            last_cancel_check: 0.0,
        };
        for id in runs {
            d.load_run(id)?;
        }
        d.run(rx).await
    }
}

/// Parses and validates stored sources.
fn load_spec(store: &Store, id: i64) -> Result<ValidatedSpec, String> {
    let texts = store.source_texts(id).map_err(|e| e.to_string())?;
    let refs: Vec<SourceText<'_>> = texts
        .iter()
        .map(|(name, text)| SourceText { name, text })
        .collect();
    validate::validate_sources(&refs)
        .spec
        .ok_or_else(|| "the stored spec no longer validates".to_string())
}

/// The directory relative paths of a spec file resolve against.
pub fn spec_dir_of(file: &str) -> PathBuf {
    let dir = if file == "-" {
        PathBuf::from(".")
    } else {
        Path::new(file)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// How long the dispatcher's writes wait for the next events' writes to share their commit.
const GROUP_COMMIT: Duration = Duration::from_millis(5);

enum Ev {
    SidecarsReady {
        task: usize,
        attempt: u32,
        ready: Result<(), String>,
    },
    Prepared {
        task: usize,
        env: Result<PathBuf, String>,
    },
    /// A process asked for runs (its pid and start time), or did not start.
    Running {
        task: usize,
        attempt: u32,
        rank: u32,
        running: Result<(u32, u64), process::SpawnError>,
    },
    Exited {
        task: usize,
        attempt: u32,
        rank: u32,
        exit: Exit,
    },
    Deadline {
        task: usize,
        attempt: u32,
    },
    RetryDue {
        task: usize,
    },
}

struct RunState {
    id: String,
    controller: Box<dyn Controller>,
    phase: Option<RunPhase>,
    cancelled: bool,
    /// The service state last stored.
    service: Option<crate::service::ServiceStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Preparing,
    Queued,
    Running,
    Waiting,
    Done,
}

struct ProcState {
    rank: u32,
    /// A sidecar's name; `None` for a worker.
    sidecar: Option<String>,
    /// Its row in the store and its process group id, once it runs.
    running: Option<(i64, u32)>,
    log: PathBuf,
    exit: Option<Exit>,
}

struct AttemptState {
    id: i64,
    number: u32,
    sched: JobId,
    dirs: AttemptDirs,
    procs: Vec<ProcState>,
    failure: Option<(Outcome, &'static str, String)>,
    /// The placement, kept until the workers start (after the sidecars are ready).
    placement: Option<mlctl_core::sched::Placement>,
    /// Whether the workers (not only the sidecars) were started.
    workers_started: bool,
    /// The `Started` event's message, said once every worker runs.
    started_message: Option<String>,
    /// Whether the sidecars were told to stop (their workers are done).
    sidecars_stopping: bool,
    /// The task as this attempt runs it (its port filled in).
    spec: TaskSpec,
    /// The attempt's port, when the task asks for one.
    port: Option<u16>,
}

impl AttemptState {
    /// Its workers' processes (not its sidecars').
    fn workers(&self) -> impl Iterator<Item = &ProcState> {
        self.procs.iter().filter(|p| p.sidecar.is_none())
    }

    /// Whether its workers were started and every one of them is as `is` says.
    fn all_workers(&self, is: impl Fn(&ProcState) -> bool) -> bool {
        self.workers_started && self.workers().all(is)
    }
}

struct TaskState {
    run: usize,
    spec: TaskSpec,
    job_id: i64,
    attempts: u32,
    /// Attempts lost to a killed mlctl: they do not count against the retry limit.
    lost: u32,
    first_start: Option<f64>,
    phase: Phase,
    attempt: Option<AttemptState>,
    pending_reason: String,
    /// Its controller asked to stop it for good.
    stopping: bool,
}

struct Dispatcher<'a> {
    rt: &'a mut Runtime,
    observer: &'a mut dyn Observer,
    runs: Vec<RunState>,
    tasks: Vec<TaskState>,
    /// Per run: tasks not yet done.
    open: Vec<usize>,
    /// Runs to look at in the next `advance`.
    dirty: std::collections::BTreeSet<usize>,
    by_sched: BTreeMap<JobId, usize>,
    outbox: Vec<Event>,
    tx: mpsc::UnboundedSender<Ev>,
    tail: Tailer,
    specs: BTreeMap<i64, ValidatedSpec>,
    forced: bool,
    interrupted: bool,
    last_cancel_check: f64,
}

impl Dispatcher<'_> {
    fn event(&mut self, run: usize, job: &str, kind: EventKind, reason: &str, message: &str) {
        let id = self.runs[run].id.clone();
        let _ = self
            .rt
            .store
            .event(&id, job, kind.as_str(), reason, message, now());
        self.observer.event(&id, job, kind, reason, message);
    }

    fn load_run(&mut self, id: &str) -> Result<(), RuntimeError> {
        self.open.push(0);
        self.dirty.insert(self.runs.len());
        let err = |message: String| RuntimeError::Run {
            run: id.to_string(),
            message,
        };
        let row = self
            .rt
            .store
            .find_run(id)?
            .ok_or_else(|| err("no such run".into()))?;
        if !self.specs.contains_key(&row.sources) {
            let spec = load_spec(&self.rt.store, row.sources).map_err(err)?;
            self.specs.insert(row.sources, spec);
        }
        let spec = &self.specs[&row.sources];
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == row.kind)
            .ok_or_else(|| err(format!("unknown kind {}", row.kind)))?;
        let object = spec
            .objects()
            .iter()
            .find(|o| o.kind() == kind && o.name() == row.name && o.namespace() == row.namespace)
            .ok_or_else(|| err("its object is not in the stored spec".into()))?;
        let overrides: IndexMap<String, String> =
            serde_json::from_str(&row.params).map_err(|e| err(format!("stored params: {e}")))?;
        let spec_dir = PathBuf::from(&row.spec_dir);
        let mut history = BTreeMap::new();
        for job in self.rt.store.jobs(&row.id)? {
            let outputs: BTreeMap<String, String> =
                serde_json::from_str(&job.outputs).unwrap_or_default();
            let work = self
                .rt
                .store
                .attempts(job.id)?
                .iter()
                .rev()
                .find(|a| a.phase == "Succeeded")
                .map(|a| AttemptDirs::existing(&self.rt.home, &row.id, &job.name, a.number).work);
            history.insert(
                job.name.clone(),
                JobHistory {
                    phase: job.phase.clone(),
                    outputs: outputs.into_iter().collect(),
                    work,
                },
            );
        }
        let options: RunOptions =
            serde_json::from_str(&row.options).map_err(|e| err(format!("stored options: {e}")))?;
        let controller = controller::build(&RunContext {
            home: &self.rt.home,
            run_id: &row.id,
            spec,
            object,
            spec_dir: &spec_dir,
            overrides: &overrides,
            history: &history,
            options: &options,
            exe: self.rt.reaper.as_ref().map(Reaper::exe),
        });
        let run_index = self.runs.len();
        match controller {
            Ok(controller) => {
                for ns in controller.namespaces() {
                    self.outbox.push(Event::SetNamespace(ns));
                }
                self.runs.push(RunState {
                    id: row.id.clone(),
                    controller,
                    phase: None,
                    cancelled: row.cancel_requested,
                    service: None,
                });
                self.rt.store.set_run_owner(&row.id, self.rt.owner)?;
                self.rt.store.set_run_phase(&row.id, "Running", "", None)?;
            }
            Err(e) => {
                // a run that cannot be built fails as a run, with the reason
                self.runs.push(RunState {
                    id: row.id.clone(),
                    controller: Box::new(Failed(e.0.clone())),
                    phase: None,
                    cancelled: false,
                    service: None,
                });
                self.event(run_index, "", EventKind::Warning, "Invalid", &e.0);
            }
        }
        Ok(())
    }

    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Ev>) -> Result<Driven, RuntimeError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigint = signal(SignalKind::interrupt()).map_err(RuntimeError::Signals)?;
        let mut sigterm = signal(SignalKind::terminate()).map_err(RuntimeError::Signals)?;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // What passes write is one transaction, committed before processes start (the reaper
        // holds their requests until `send_held`), and otherwise once no event came for
        // GROUP_COMMIT after the first uncommitted write: a burst of events (a worker's start,
        // then its exit) is one commit. Every state a crash can leave is therefore one that
        // statement-by-statement commits could leave too.
        self.rt.store.begin_batch();
        if let Some(reaper) = &self.rt.reaper {
            reaper.hold();
        }
        let passes = async {
            loop {
                self.flush()?;
                self.send_held()?;
                if self.finished() {
                    return Ok(());
                }
                // uncommitted writes wait what is left of GROUP_COMMIT for the next event
                let left = self
                    .rt
                    .store
                    .uncommitted_for()
                    .and_then(|waited| GROUP_COMMIT.checked_sub(waited));
                let grouped = match left {
                    Some(left) => tokio::time::timeout(left, rx.recv()).await.ok().flatten(),
                    None => None,
                };
                if let Some(ev) = grouped {
                    self.handle(ev)?;
                } else {
                    self.rt.store.commit_batch()?;
                    tokio::select! {
                        Some(ev) = rx.recv() => self.handle(ev)?,
                        _ = tick.tick() => self.on_tick()?,
                        _ = sigint.recv() => self.interrupt(),
                        _ = sigterm.recv() => self.interrupt(),
                    }
                }
                // drain whatever else is ready before syncing, so that a burst is one sync
                while let Ok(ev) = rx.try_recv() {
                    self.handle(ev)?;
                }
            }
        };
        let passed: Result<(), RuntimeError> = passes.await;
        if let Some(reaper) = &self.rt.reaper {
            reaper.stop_holding();
        }
        // on an error too: what was written before it stays, as without the batch
        let ended = self.rt.store.end_batch();
        passed?;
        ended?;
        self.drain_logs(Which::All);
        let runs = self
            .runs
            .iter()
            .map(|r| {
                let (phase, message) = r
                    .controller
                    .outcome()
                    .unwrap_or((RunPhase::Cancelled, "cancelled".into()));
                RunSummary {
                    id: r.id.clone(),
                    phase: r.phase.unwrap_or(phase),
                    message,
                }
            })
            .collect();
        Ok(Driven {
            runs,
            interrupted: self.interrupted,
        })
    }

    fn finished(&self) -> bool {
        self.runs.iter().all(|r| r.phase.is_some())
            && self.tasks.iter().all(|t| t.attempt.is_none())
    }

    /// Asks every controller for ready tasks and closes finished runs.
    fn advance(&mut self) -> Result<(), RuntimeError> {
        while let Some(run) = self.dirty.pop_first() {
            if self.runs[run].phase.is_some() {
                continue;
            }
            if !self.runs[run].cancelled {
                let ready = self.runs[run].controller.ready();
                self.record_notes(run)?;
                for spec in ready {
                    self.add_task(run, spec)?;
                }
            }
            if self.open[run] > 0 {
                continue;
            }
            let outcome = self.runs[run].controller.outcome();
            let outcome = match (outcome, self.runs[run].cancelled) {
                (Some(o), _) => Some(o),
                (None, true) => Some((RunPhase::Cancelled, "cancelled".into())),
                (None, false) => None,
            };
            if let Some((phase, message)) = outcome {
                self.runs[run].phase = Some(phase);
                let id = self.runs[run].id.clone();
                self.rt
                    .store
                    .set_run_phase(&id, phase.as_str(), &message, Some(now()))?;
                let kind = if phase == RunPhase::Succeeded {
                    EventKind::Normal
                } else {
                    EventKind::Warning
                };
                let text = if message.is_empty() {
                    format!("run {}", phase.as_str().to_lowercase())
                } else {
                    message
                };
                self.event(run, "", kind, phase.as_str(), &text);
            }
        }
        Ok(())
    }

    /// Carries out a controller's command on one of its jobs.
    fn command(&mut self, run: usize, command: Command) {
        let (job, stop, reason) = match command {
            Command::Stop { job } => (job, true, "stopped by its controller".to_string()),
            Command::Restart { job, reason } => (job, false, reason),
            Command::Ready => {
                self.dirty.insert(run);
                return;
            }
        };
        let Some(index) = self
            .tasks
            .iter()
            .rposition(|t| t.run == run && t.spec.job == job && t.phase != Phase::Done)
        else {
            return;
        };
        if stop {
            self.tasks[index].stopping = true;
        }
        match self.tasks[index].phase {
            Phase::Running => {
                let (outcome, why) = if stop {
                    (Outcome::Failed, "Stopped")
                } else {
                    (Outcome::Failed, "Unhealthy")
                };
                self.fail_attempt(index, outcome, why, reason);
            }
            Phase::Queued if stop => {
                if let Some(a) = self.tasks[index].attempt.take() {
                    self.outbox.push(Event::Cancel {
                        job: a.sched.clone(),
                    });
                    self.by_sched.remove(&a.sched);
                    let _ =
                        self.rt
                            .store
                            .update_attempt(a.id, "Cancelled", "Stopped", "", now(), true);
                }
                let _ = self.cancel_job(index);
            }
            Phase::Waiting | Phase::Preparing if stop => {
                let _ = self.cancel_job(index);
            }
            _ => {}
        }
    }

    /// Records what the run's controller decided about jobs without running them.
    fn record_notes(&mut self, run: usize) -> Result<(), RuntimeError> {
        let id = self.runs[run].id.clone();
        for note in self.runs[run].controller.take_notes() {
            if let Some(phase) = note.phase {
                let (job, _) = self.rt.store.upsert_job(&id, &note.job, 1)?;
                self.rt
                    .store
                    .update_job(job, phase, &note.message, 0, now(), true)?;
            }
            let kind = if note.warning {
                EventKind::Warning
            } else {
                EventKind::Normal
            };
            self.event(run, &note.job, kind, note.reason, &note.message);
        }
        Ok(())
    }

    /// Marks a task done; its run is looked at again by the next `advance`.
    fn mark_done(&mut self, index: usize) {
        let t = &mut self.tasks[index];
        if t.phase != Phase::Done {
            t.phase = Phase::Done;
            self.open[t.run] -= 1;
            self.dirty.insert(t.run);
        }
    }

    fn add_task(&mut self, run: usize, spec: TaskSpec) -> Result<(), RuntimeError> {
        self.open[run] += 1;
        let run_id = self.runs[run].id.clone();
        let (job_id, new) = self.rt.store.upsert_job(&run_id, &spec.job, spec.workers)?;
        // a job just added has no past: only a resumed one is looked up
        let previous = if new {
            Vec::new()
        } else {
            self.rt.store.attempts(job_id)?
        };
        let index = self.tasks.len();
        self.tasks.push(TaskState {
            run,
            spec,
            job_id,
            attempts: u32::try_from(previous.len()).unwrap_or(u32::MAX),
            lost: u32::try_from(previous.iter().filter(|a| a.phase == "Lost").count()).unwrap_or(0),
            first_start: previous
                .iter()
                .filter_map(|a| a.started_at)
                .reduce(f64::min),
            phase: Phase::Waiting,
            attempt: None,
            pending_reason: String::new(),
            stopping: false,
        });
        let row = if new {
            None
        } else {
            self.rt.store.job(job_id)?
        };
        match (row.as_ref().map(|r| r.phase.as_str()), previous.last()) {
            // a resumed job that already ended
            (Some("Succeeded"), Some(last)) => {
                let outputs: BTreeMap<String, String> = serde_json::from_str(
                    &row.as_ref().map_or_else(String::new, |r| r.outputs.clone()),
                )
                .unwrap_or_default();
                let work = AttemptDirs::existing(
                    &self.rt.home,
                    &run_id,
                    &self.tasks[index].spec.job,
                    last.number,
                )
                .work;
                self.mark_done(index);
                let job = self.tasks[index].spec.job.clone();
                let result = JobResult::Succeeded {
                    outputs: outputs.into_iter().collect(),
                    work,
                };
                self.runs[run].controller.finished(&job, &result);
            }
            (Some("Failed"), _) => {
                let message = row.map(|r| r.message).unwrap_or_default();
                self.give_up(index, message)?;
            }
            // a resumed job whose last attempt was lost or failed: decide as after that attempt
            (_, Some(last)) if last.phase != "Succeeded" => {
                let outcome = match last.phase.as_str() {
                    "Failed" => Outcome::Failed,
                    "Error" => Outcome::Error,
                    _ => Outcome::Lost,
                };
                self.after_failure(
                    index,
                    outcome,
                    format!("attempt {} {}", last.number, last.phase.to_lowercase()),
                )?;
            }
            (_, None) if self.reuse(index)? => {}
            _ => self.prepare(index)?,
        }
        Ok(())
    }

    /// Builds the task's Python environment when it needs one that does not exist yet (in the
    /// background: the task holds no resources meanwhile), then submits it.
    fn prepare(&mut self, index: usize) -> Result<(), RuntimeError> {
        let reqs = self.tasks[index].spec.python.clone();
        if reqs.is_empty() {
            return self.submit(index);
        }
        let dir = crate::pyenv::env_dir(&self.rt.home, &reqs);
        if crate::pyenv::is_ready(&dir) {
            crate::pyenv::apply(&mut self.tasks[index].spec, &dir);
            self.tasks[index].spec.python.clear();
            return self.submit(index);
        }
        let (run, job) = (self.tasks[index].run, self.tasks[index].spec.job.clone());
        let log = self
            .rt
            .home
            .run_dir(&self.runs[run].id)
            .join(&job)
            .join("python-env.log");
        self.tasks[index].phase = Phase::Preparing;
        self.event(
            run,
            &job,
            EventKind::Normal,
            "Preparing",
            &format!(
                "building a Python environment with {} (log {})",
                reqs.join(" "),
                log.display()
            ),
        );
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let env = crate::pyenv::build(&dir, &reqs, &log).map(|()| dir);
            let _ = tx.send(Ev::Prepared { task: index, env });
        });
        Ok(())
    }

    /// Ends a new task at once with the results of an identical earlier run, when its
    /// memoization key has some whose working directory still exists.
    fn reuse(&mut self, index: usize) -> Result<bool, RuntimeError> {
        let Some(key) = self.tasks[index].spec.cache_key.clone() else {
            return Ok(false);
        };
        let Some((from_run, from_job, outputs, work)) = self.rt.store.cached(&key)? else {
            return Ok(false);
        };
        if !Path::new(&work).exists() {
            return Ok(false);
        }
        let (run, job, job_id) = {
            let t = &self.tasks[index];
            (t.run, t.spec.job.clone(), t.job_id)
        };
        self.rt.store.set_job_outputs(job_id, &outputs)?;
        let message = format!("reused the results of {from_run}/{from_job} (unchanged inputs)");
        self.rt
            .store
            .update_job(job_id, "Cached", &message, 0, now(), true)?;
        self.mark_done(index);
        self.event(run, &job, EventKind::Normal, "Cached", &message);
        let outputs: BTreeMap<String, String> = serde_json::from_str(&outputs).unwrap_or_default();
        let result = JobResult::Succeeded {
            outputs: outputs.into_iter().collect(),
            work: PathBuf::from(work),
        };
        self.runs[run].controller.finished(&job, &result);
        Ok(true)
    }

    fn submit(&mut self, index: usize) -> Result<(), RuntimeError> {
        let t = &mut self.tasks[index];
        t.attempts += 1;
        let run_id = self.runs[t.run].id.clone();
        let sched = JobId(format!("{run_id}/{}/{}", t.spec.job, t.attempts));
        let mut pod = t.spec.pod.clone();
        // one local node: node selectors and tolerations are for clusters; the GPU model stays
        pod.node_selector.clear();
        pod.tolerations.clear();
        let request = JobRequest {
            id: sched.clone(),
            namespace: t.spec.namespace.clone(),
            priority: t.spec.priority,
            workers: t.spec.workers,
            pod,
        };
        let attempt_id = self
            .rt
            .store
            .insert_attempt(t.job_id, t.attempts, &sched.0, now())?;
        self.rt
            .store
            .update_job(t.job_id, "Queued", "", t.attempts, now(), false)?;
        t.phase = Phase::Queued;
        t.pending_reason.clear();
        t.attempt = Some(AttemptState {
            id: attempt_id,
            number: t.attempts,
            sched: sched.clone(),
            dirs: AttemptDirs::new(&self.rt.home, &run_id, &t.spec.job, t.attempts),
            procs: Vec::new(),
            failure: None,
            placement: None,
            workers_started: false,
            started_message: None,
            sidecars_stopping: false,
            spec: t.spec.clone(),
            port: None,
        });
        self.by_sched.insert(sched, index);
        self.outbox.push(Event::Submit(request));
        Ok(())
    }

    /// Appends our scheduler events and acts on the decisions for our jobs.
    /// Lets controllers act on what changed, then appends our scheduler events and acts on
    /// the decisions for our jobs, until nothing is left to do. The only place `advance` is
    /// called from, so that a run's state is never changed from inside its own update.
    fn flush(&mut self) -> Result<(), RuntimeError> {
        loop {
            if !self.dirty.is_empty() {
                self.advance()?;
            }
            if self.outbox.is_empty() {
                if self.dirty.is_empty() {
                    return Ok(());
                }
                continue;
            }
            let events = std::mem::take(&mut self.outbox);
            let synced = self.rt.sync.sync(&mut self.rt.store, events)?;
            for (event, why) in synced.refused {
                tracing::warn!(?event, %why, "the scheduler refused an event");
            }
            self.decide(synced.decisions)?;
        }
    }

    fn decide(&mut self, decisions: Vec<Decision>) -> Result<(), RuntimeError> {
        for decision in decisions {
            match decision {
                Decision::Place(placement) => {
                    if let Some(&index) = self.by_sched.get(&placement.job)
                        && self.tasks[index].phase == Phase::Queued
                    {
                        self.start(index, &placement)?;
                    }
                }
                Decision::Queue { job, reason } => {
                    if let Some(&index) = self.by_sched.get(&job) {
                        let text = reason.to_string();
                        if self.tasks[index].pending_reason != text {
                            self.tasks[index].pending_reason.clone_from(&text);
                            let (run, name) =
                                (self.tasks[index].run, self.tasks[index].spec.job.clone());
                            self.rt.store.update_job(
                                self.tasks[index].job_id,
                                "Queued",
                                &text,
                                self.tasks[index].attempts,
                                now(),
                                false,
                            )?;
                            self.event(run, &name, EventKind::Normal, "Pending", &text);
                        }
                    }
                }
                Decision::Reject { job, reason } => {
                    if let Some(&index) = self.by_sched.get(&job) {
                        let message = format!("can never run here: {reason}");
                        if let Some(a) = &mut self.tasks[index].attempt {
                            a.failure = Some((Outcome::Error, "Unschedulable", message.clone()));
                        }
                        self.by_sched.remove(&job);
                        self.finish_attempt(index, false)?;
                    }
                }
                Decision::Evict { job, node } => {
                    if let Some(&index) = self.by_sched.get(&job) {
                        self.fail_attempt(
                            index,
                            Outcome::Lost,
                            "Evicted",
                            format!("node {node} left"),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn start(
        &mut self,
        index: usize,
        placement: &mlctl_core::sched::Placement,
    ) -> Result<(), RuntimeError> {
        let run = self.tasks[index].run;
        let port = if self.tasks[index].spec.port {
            match task::free_port() {
                Ok(p) => Some(p),
                Err(e) => {
                    self.fail_attempt(
                        index,
                        Outcome::Error,
                        "FailedToStart",
                        format!("no free port: {e}"),
                    );
                    return self.maybe_finish_attempt(index);
                }
            }
        } else {
            None
        };
        let (spec, attempt_no, dirs, attempt_id) = {
            let t = &mut self.tasks[index];
            let spec = t.spec.for_attempt(port);
            let a = t.attempt.as_mut().expect("a queued task has an attempt");
            a.spec = spec.clone();
            a.port = port;
            (spec, a.number, a.dirs.clone(), a.id)
        };
        let placement_json = serde_json::to_string(placement).unwrap_or_default();
        self.rt
            .store
            .start_attempt(attempt_id, &placement_json, now())?;
        let started_at = now();
        let t = &mut self.tasks[index];
        t.phase = Phase::Running;
        t.first_start.get_or_insert(started_at);
        self.rt
            .store
            .update_job(t.job_id, "Running", "", t.attempts, started_at, false)?;
        if spec.sidecars.is_empty() {
            return self.start_workers(index, placement);
        }
        if let Some(a) = self.tasks[index].attempt.as_mut() {
            a.placement = Some(placement.clone());
        }
        self.commit_before_start()?;
        match task::start_sidecars(
            &self.rt.home,
            &spec,
            &dirs,
            placement,
            self.rt.reaper.as_ref(),
        ) {
            Ok(started) => {
                self.track(index, started, spec.workers)?;
                let names: Vec<&str> = spec.sidecars.iter().map(|c| c.name.as_str()).collect();
                self.event(
                    run,
                    &spec.job,
                    EventKind::Normal,
                    "SidecarsStarted",
                    &format!("attempt {attempt_no}: started {}", names.join(", ")),
                );
                let ports: Vec<(String, u16)> = spec
                    .sidecars
                    .iter()
                    .filter(|c| c.ready)
                    .filter_map(|c| port.map(|p| (c.name.clone(), p)))
                    .collect();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let ready = wait_for_ports(&ports, Duration::from_secs(120)).await;
                    let _ = tx.send(Ev::SidecarsReady {
                        task: index,
                        attempt: attempt_no,
                        ready,
                    });
                });
            }
            Err((started, e)) => {
                self.track(index, started, spec.workers)?;
                self.fail_attempt(index, Outcome::Error, "FailedToStart", error_chain(&e));
                self.maybe_finish_attempt(index)?;
            }
        }
        Ok(())
    }

    /// Commits what the pass wrote so far before processes start: recovery finds a process
    /// that outlives a killed mlctl through its attempt, which must therefore be stored first.
    /// Processes that the reaper starts wait for `send_held` instead, which commits first: one
    /// commit for all the starts of a pass.
    fn commit_before_start(&mut self) -> Result<(), RuntimeError> {
        if self.rt.reaper.as_ref().is_some_and(Reaper::holding) {
            return Ok(());
        }
        Ok(self.rt.store.commit_batch()?)
    }

    /// Lets the processes that the pass started run: commits what it wrote, then sends their
    /// requests to the reaper.
    fn send_held(&mut self) -> Result<(), RuntimeError> {
        if let Some(reaper) = &self.rt.reaper
            && reaper.holds_any()
        {
            self.rt.store.commit_batch()?;
            reaper.send_held();
        }
        Ok(())
    }

    /// Starts the workers of the current attempt of task `index`.
    fn start_workers(
        &mut self,
        index: usize,
        placement: &mlctl_core::sched::Placement,
    ) -> Result<(), RuntimeError> {
        let (spec, attempt_no, dirs) = {
            let a = self.tasks[index]
                .attempt
                .as_ref()
                .expect("a started task has an attempt");
            (a.spec.clone(), a.number, a.dirs.clone())
        };
        if let Some(a) = self.tasks[index].attempt.as_mut() {
            a.workers_started = true;
        }
        let gpus: Vec<String> = placement
            .workers
            .iter()
            .flat_map(|w| w.gpus.iter().cloned())
            .collect();
        self.commit_before_start()?;
        match task::start(
            &self.rt.home,
            &spec,
            &dirs,
            placement,
            self.rt.reaper.as_ref(),
        ) {
            Ok(started) => {
                let where_ = if gpus.is_empty() {
                    format!("on {LOCAL_NODE}")
                } else {
                    format!("on {LOCAL_NODE} with GPUs {}", gpus.join(","))
                };
                let msg = if spec.workers > 1 {
                    format!(
                        "attempt {attempt_no}: {} workers started {where_}",
                        spec.workers
                    )
                } else {
                    format!("attempt {attempt_no} started {where_}")
                };
                if let Some(a) = self.tasks[index].attempt.as_mut() {
                    a.started_message = Some(msg);
                }
                self.track(index, started, 0)?;
                if let Some(deadline) = spec.deadline {
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(deadline).await;
                        let _ = tx.send(Ev::Deadline {
                            task: index,
                            attempt: attempt_no,
                        });
                    });
                }
            }
            Err((started, e)) => {
                self.track(index, started, 0)?;
                self.fail_attempt(index, Outcome::Error, "FailedToStart", error_chain(&e));
                self.maybe_finish_attempt(index)?;
            }
        }
        Ok(())
    }

    /// Follows started processes: workers (ranks from 0), or sidecars (numbered from
    /// `first`, which is then the number of workers).
    fn track(
        &mut self,
        index: usize,
        started: Vec<process::Spawned>,
        first: u32,
    ) -> Result<(), RuntimeError> {
        let t = &mut self.tasks[index];
        let a = t.attempt.as_mut().expect("running task has an attempt");
        for (i, s) in started.into_iter().enumerate() {
            let rank = first + u32::try_from(i).unwrap_or(u32::MAX - first);
            let sidecar = (first > 0 || rank >= t.spec.workers)
                .then(|| {
                    t.spec
                        .sidecars
                        .get((rank - t.spec.workers) as usize)
                        .map(|c| c.name.clone())
                })
                .flatten();
            let log = match &sidecar {
                Some(name) => a.dirs.sidecar_log(name),
                None => a.dirs.log(rank),
            };
            a.procs.push(ProcState {
                rank,
                sidecar,
                running: None,
                log,
                exit: None,
            });
            let tx = self.tx.clone();
            let attempt = a.number;
            tokio::spawn(async move {
                let running = s.running.await;
                let ran = running.is_ok();
                let _ = tx.send(Ev::Running {
                    task: index,
                    attempt,
                    rank,
                    running,
                });
                if ran {
                    let exit = s.ended.await;
                    let _ = tx.send(Ev::Exited {
                        task: index,
                        attempt,
                        rank,
                        exit,
                    });
                }
            });
        }
        Ok(())
    }

    /// The time a stopped process gets between SIGTERM and SIGKILL: none after a second
    /// Ctrl-C.
    fn stop_grace(&self) -> Duration {
        if self.forced {
            Duration::ZERO
        } else {
            self.rt.grace
        }
    }

    /// Records that process `rank` of attempt `attempt` of task `index` runs, stopping it if
    /// its attempt was told to stop meanwhile; or fails the attempt if it did not start.
    fn running(
        &mut self,
        index: usize,
        attempt: u32,
        rank: u32,
        running: Result<(u32, u64), process::SpawnError>,
    ) -> Result<(), RuntimeError> {
        let grace = self.stop_grace();
        let t = &mut self.tasks[index];
        let Some(a) = t.attempt.as_mut().filter(|a| a.number == attempt) else {
            // its attempt is over: nothing of it may run on
            if let Ok((pid, _)) = running {
                let _ = process::signal_group(pid, Signal::SIGKILL);
            }
            return Ok(());
        };
        let Some(p) = a.procs.iter_mut().find(|p| p.rank == rank) else {
            return Ok(());
        };
        let (pid, start_time) = match running {
            Ok(running) => running,
            Err(source) => {
                p.exit = Some(Exit::Code(-1));
                let e = task::StartError::Spawn { rank, source };
                self.fail_attempt(index, Outcome::Error, "FailedToStart", error_chain(&e));
                return self.maybe_finish_attempt(index);
            }
        };
        let row = self.rt.store.insert_process(
            a.id,
            rank,
            pid,
            start_time,
            &p.log.display().to_string(),
            now(),
        )?;
        p.running = Some((row, pid));
        // its log is followed from now on: the reaper made it before starting the process
        let source = match &p.sidecar {
            Some(name) => format!("{}/{name}", t.spec.job),
            None if t.spec.workers > 1 => format!("{}/{rank}", t.spec.job),
            None => t.spec.job.clone(),
        };
        let run_id = &self.runs[t.run].id;
        self.tail
            .follow(p.log.clone(), format!("{run_id}\u{0}{source}"), 0);
        if a.failure.is_some() || (p.sidecar.is_some() && a.sidecars_stopping) {
            tokio::spawn(process::stop_group(pid, grace));
        }
        if a.all_workers(|p| p.running.is_some())
            && let Some(msg) = a.started_message.take()
        {
            let pids: Vec<u32> = a
                .workers()
                .filter_map(|p| p.running.map(|(_, pid)| pid))
                .collect();
            let (run, port, job) = (t.run, a.port, t.spec.job.clone());
            self.event(run, &job, EventKind::Normal, "Started", &msg);
            self.runs[run].controller.attempt_started(&job, port, &pids);
        }
        Ok(())
    }

    fn handle(&mut self, ev: Ev) -> Result<(), RuntimeError> {
        match ev {
            Ev::Running {
                task,
                attempt,
                rank,
                running,
            } => self.running(task, attempt, rank, running)?,
            Ev::Exited {
                task,
                attempt,
                rank,
                exit,
            } => {
                let t = &mut self.tasks[task];
                let Some(a) = t.attempt.as_mut().filter(|a| a.number == attempt) else {
                    return Ok(());
                };
                let Some(p) = a.procs.iter_mut().find(|p| p.rank == rank) else {
                    return Ok(());
                };
                p.exit = Some(exit);
                let (running, log, sidecar) = (p.running, p.log.clone(), p.sidecar.clone());
                if let Some((row, _)) = running {
                    self.rt
                        .store
                        .finish_process(row, &exit.to_string(), now())?;
                }
                self.tail.close(&log);
                self.drain_logs(Which::Closing);
                let a = self.tasks[task].attempt.as_ref().expect("checked above");
                let workers_done = a.all_workers(|p| p.exit.is_some());
                if let Some(name) = sidecar {
                    // a sidecar ending before the workers is a failure; after them, expected
                    if !workers_done && a.failure.is_none() {
                        let job = self.tasks[task].spec.job.clone();
                        self.fail_attempt(
                            task,
                            Outcome::Failed,
                            "SidecarFailed",
                            format!("{name} of {job} ended with {exit} before the job did"),
                        );
                    }
                } else if !exit.success() {
                    let (rank, exit) = self.first_failure(task, rank, exit);
                    let job = self.tasks[task].spec.job.clone();
                    let workers = self.tasks[task].spec.workers;
                    let who = if workers > 1 {
                        format!("worker {rank}")
                    } else {
                        "the process".to_string()
                    };
                    self.fail_attempt(
                        task,
                        Outcome::Failed,
                        "Failed",
                        format!("{who} of {job} ended with {exit}"),
                    );
                }
                let grace = self.rt.grace;
                let a = self.tasks[task].attempt.as_mut().expect("checked above");
                let workers_done = a.all_workers(|p| p.exit.is_some());
                if workers_done && !a.sidecars_stopping {
                    // the workers are done: the sidecars that serve them are stopped
                    a.sidecars_stopping = true;
                    for (_, pgid) in a
                        .procs
                        .iter()
                        .filter(|p| p.sidecar.is_some() && p.exit.is_none())
                        .filter_map(|p| p.running)
                    {
                        tokio::spawn(process::stop_group(pgid, grace));
                    }
                }
                self.maybe_finish_attempt(task)?;
            }
            Ev::Deadline { task, attempt } => {
                let running = self.tasks[task].attempt.as_ref().is_some_and(|a| {
                    a.number == attempt && a.procs.iter().any(|p| p.exit.is_none())
                });
                if running {
                    let deadline = self.tasks[task].spec.deadline.unwrap_or_default();
                    self.fail_attempt(
                        task,
                        Outcome::Failed,
                        "DeadlineExceeded",
                        format!(
                            "attempt {attempt} ran longer than its deadline {}",
                            mlctl_core::scalar::Duration(deadline)
                        ),
                    );
                }
            }
            Ev::Prepared { task, env } => {
                if self.tasks[task].phase != Phase::Preparing {
                    return Ok(());
                }
                match env {
                    Ok(dir) => {
                        crate::pyenv::apply(&mut self.tasks[task].spec, &dir);
                        self.tasks[task].spec.python.clear();
                        self.submit(task)?;
                    }
                    Err(why) => {
                        let (run, job) = (self.tasks[task].run, self.tasks[task].spec.job.clone());
                        self.event(run, &job, EventKind::Warning, "PythonEnvFailed", &why);
                        self.give_up(task, why)?;
                    }
                }
            }
            Ev::SidecarsReady {
                task,
                attempt,
                ready,
            } => {
                let current = self.tasks[task]
                    .attempt
                    .as_ref()
                    .filter(|a| a.number == attempt && a.failure.is_none() && !a.workers_started)
                    .and_then(|a| a.placement.clone());
                let Some(placement) = current else {
                    return Ok(());
                };
                match ready {
                    Ok(()) => self.start_workers(task, &placement)?,
                    Err(why) => {
                        self.fail_attempt(task, Outcome::Error, "SidecarNotReady", why);
                    }
                }
            }
            Ev::RetryDue { task } => {
                if self.tasks[task].phase == Phase::Waiting
                    && !self.runs[self.tasks[task].run].cancelled
                {
                    self.submit(task)?;
                }
            }
        }
        Ok(())
    }

    /// The worker of the current attempt that failed first: `rank` (whose failed exit is being
    /// handled) or one whose reaper already recorded an earlier failure that the dispatcher has
    /// not seen yet. Exits of a gang arrive in any order on a busy machine, and the first
    /// failure is the cause (the others fail because their peer is gone).
    fn first_failure(&self, task: usize, rank: u32, exit: Exit) -> (u32, Exit) {
        let Some(a) = self.tasks[task].attempt.as_ref() else {
            return (rank, exit);
        };
        if self.rt.reaper.is_none() || a.failure.is_some() {
            return (rank, exit);
        }
        // the workers whose failure may come first: this one, and those not heard of yet
        let candidates: Vec<(String, u32)> = a
            .procs
            .iter()
            .filter(|p| p.sidecar.is_none() && (p.rank == rank || p.exit.is_none()))
            .map(|p| (a.dirs.status(p.rank).key, p.rank))
            .collect();
        // the reaper records endings in the order it reaps them
        reaper::endings(&a.dirs.status(rank).path)
            .into_iter()
            .filter(|(_, e)| !e.success())
            .find_map(|(key, e)| {
                let (_, r) = candidates.iter().find(|(k, _)| *k == key)?;
                Some((*r, if *r == rank { exit } else { e }))
            })
            .unwrap_or((rank, exit))
    }

    /// Records the first failure of the current attempt and stops its workers.
    fn fail_attempt(
        &mut self,
        index: usize,
        outcome: Outcome,
        reason: &'static str,
        message: String,
    ) {
        let grace = self.stop_grace();
        let Some(a) = self.tasks[index].attempt.as_mut() else {
            return;
        };
        if a.failure.is_none() {
            a.failure = Some((outcome, reason, message));
        }
        // a process not running yet is stopped when it runs (see `running`)
        for (_, pgid) in a
            .procs
            .iter()
            .filter(|p| p.exit.is_none())
            .filter_map(|p| p.running)
        {
            tokio::spawn(process::stop_group(pgid, grace));
        }
    }

    /// When every worker of the current attempt has exited, closes the attempt.
    fn maybe_finish_attempt(&mut self, index: usize) -> Result<(), RuntimeError> {
        let done = self.tasks[index]
            .attempt
            .as_ref()
            .is_some_and(|a| a.procs.iter().all(|p| p.exit.is_some()));
        if !done {
            return Ok(());
        }
        self.finish_attempt(index, true)?;
        Ok(())
    }

    /// Closes the current attempt (telling the scheduler when `placed`) and decides what is
    /// next for the job.
    fn finish_attempt(&mut self, index: usize, placed: bool) -> Result<(), RuntimeError> {
        let Some(a) = self.tasks[index].attempt.take() else {
            return Ok(());
        };
        // members of the groups that outlived their leader (daemons a worker started)
        for (_, pgid) in a.procs.iter().filter_map(|p| p.running) {
            let _ = process::signal_group(pgid, Signal::SIGKILL);
        }
        if placed {
            self.outbox.push(Event::Finish {
                job: a.sched.clone(),
            });
        }
        self.by_sched.remove(&a.sched);
        let (run, job, job_id) = {
            let t = &self.tasks[index];
            (t.run, t.spec.job.clone(), t.job_id)
        };
        self.runs[run].controller.attempt_ended(&job);
        let cancelled = self.runs[run].cancelled || self.tasks[index].stopping;
        match a.failure {
            None if !cancelled => {
                let outputs = match task::collect_outputs(&a.dirs, &self.tasks[index].spec.outputs)
                {
                    Ok(outputs) => outputs,
                    Err(why) => {
                        self.rt.store.update_attempt(
                            a.id,
                            "Failed",
                            "MissingOutput",
                            &why,
                            now(),
                            true,
                        )?;
                        self.event(run, &job, EventKind::Warning, "MissingOutput", &why);
                        return self.after_failure(index, Outcome::Failed, why);
                    }
                };
                self.rt
                    .store
                    .update_attempt(a.id, "Succeeded", "", "", now(), true)?;
                let outputs_json =
                    serde_json::to_string(&outputs.iter().cloned().collect::<BTreeMap<_, _>>())
                        .unwrap_or_default();
                self.rt.store.set_job_outputs(job_id, &outputs_json)?;
                if let Some(key) = &self.tasks[index].spec.cache_key {
                    let run_id = &self.runs[run].id;
                    let work = a.dirs.work.display().to_string();
                    self.rt
                        .store
                        .put_cached(key, run_id, &job, &outputs_json, &work, now())?;
                }
                let attempts = self.tasks[index].attempts;
                self.rt
                    .store
                    .update_job(job_id, "Succeeded", "", attempts, now(), true)?;
                self.mark_done(index);
                self.event(
                    run,
                    &job,
                    EventKind::Normal,
                    "Succeeded",
                    &format!("attempt {} succeeded", a.number),
                );
                let result = JobResult::Succeeded {
                    outputs,
                    work: a.dirs.work.clone(),
                };
                self.runs[run].controller.finished(&job, &result);
            }
            None => {
                self.rt
                    .store
                    .update_attempt(a.id, "Cancelled", "Cancelled", "", now(), true)?;
                self.cancel_job(index)?;
            }
            Some((outcome, reason, message)) => {
                if outcome == Outcome::Lost {
                    self.tasks[index].lost += 1;
                }
                let phase = match outcome {
                    Outcome::Error => "Error",
                    Outcome::Lost => "Lost",
                    _ => "Failed",
                };
                let phase = if cancelled { "Cancelled" } else { phase };
                self.rt
                    .store
                    .update_attempt(a.id, phase, reason, &message, now(), true)?;
                if cancelled {
                    self.cancel_job(index)?;
                } else {
                    self.event(run, &job, EventKind::Warning, reason, &message);
                    if reason == "Unschedulable" {
                        // no retry can help
                        self.give_up(index, message)?;
                    } else {
                        self.after_failure(index, outcome, message)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn cancel_job(&mut self, index: usize) -> Result<(), RuntimeError> {
        self.mark_done(index);
        let t = &self.tasks[index];
        if t.stopping {
            self.rt.store.update_job(
                t.job_id,
                "Stopped",
                "stopped by its controller",
                t.attempts,
                now(),
                true,
            )?;
            let (run, job) = (t.run, t.spec.job.clone());
            self.runs[run]
                .controller
                .finished(&job, &JobResult::Cancelled);
            return Ok(());
        }
        self.rt
            .store
            .update_job(t.job_id, "Cancelled", "cancelled", t.attempts, now(), true)?;
        let (run, job) = (t.run, t.spec.job.clone());
        self.runs[run]
            .controller
            .finished(&job, &JobResult::Cancelled);
        Ok(())
    }

    fn after_failure(
        &mut self,
        index: usize,
        outcome: Outcome,
        message: String,
    ) -> Result<(), RuntimeError> {
        let t = &self.tasks[index];
        let since = t.first_start.map_or(0.0, |s| (now() - s).max(0.0));
        match retry::decide(
            t.spec.retries.as_ref(),
            t.attempts.saturating_sub(t.lost),
            outcome,
            Duration::from_secs_f64(since),
        ) {
            retry::Decision::Retry { after } => {
                let (run, job) = (t.run, t.spec.job.clone());
                let t = &mut self.tasks[index];
                t.phase = Phase::Waiting;
                self.rt.store.update_job(
                    t.job_id,
                    "Retrying",
                    &message,
                    t.attempts,
                    now(),
                    false,
                )?;
                let text = if after.is_zero() {
                    format!("retrying now: {message}")
                } else {
                    format!(
                        "retrying in {}: {message}",
                        mlctl_core::scalar::Duration(after)
                    )
                };
                self.event(run, &job, EventKind::Normal, "BackOff", &text);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send(Ev::RetryDue { task: index });
                });
            }
            retry::Decision::GiveUp { why } => {
                let full = if t.spec.retries.is_some() {
                    format!("{message} ({why})")
                } else {
                    message
                };
                self.give_up(index, full)?;
            }
        }
        Ok(())
    }

    fn give_up(&mut self, index: usize, message: String) -> Result<(), RuntimeError> {
        self.mark_done(index);
        let t = &self.tasks[index];
        self.rt
            .store
            .update_job(t.job_id, "Failed", &message, t.attempts, now(), true)?;
        let (run, job) = (t.run, t.spec.job.clone());
        self.runs[run]
            .controller
            .finished(&job, &JobResult::Failed { message });
        Ok(())
    }

    /// Hands the lines that `which` workers wrote since the last call to the observer: every
    /// worker's at a tick, the last lines of those that ended when they end (the others'
    /// follow at the next tick).
    fn drain_logs(&mut self, which: Which) {
        let Self { tail, observer, .. } = self;
        tail.poll(which, |source, line| {
            let (run, source) = source.split_once('\u{0}').unwrap_or(("", source));
            observer.log(run, source, line);
        });
    }

    fn on_tick(&mut self) -> Result<(), RuntimeError> {
        self.drain_logs(Which::All);
        for run in 0..self.runs.len() {
            if self.runs[run].phase.is_some() {
                continue;
            }
            let before = self.runs[run].controller.summary();
            for command in self.runs[run].controller.tick() {
                self.command(run, command);
            }
            self.record_notes(run)?;
            let after = self.runs[run].controller.summary();
            if after != before
                && let Some(summary) = after
            {
                let id = self.runs[run].id.clone();
                self.rt
                    .store
                    .set_run_phase(&id, "Running", &summary, None)?;
            }
            let service = self.runs[run].controller.service();
            if service != self.runs[run].service
                && let Some(status) = &service
            {
                let json = serde_json::to_string(status).unwrap_or_default();
                let id = &self.runs[run].id;
                self.rt.store.set_service_status(id, &json, now())?;
            }
            self.runs[run].service = service;
        }
        // learn about room freed by other processes
        if self.tasks.iter().any(|t| t.phase == Phase::Queued) {
            let synced = self.rt.sync.sync(&mut self.rt.store, Vec::new())?;
            self.decide(synced.decisions)?;
        }
        let t = now();
        if t - self.last_cancel_check > 0.25 {
            self.last_cancel_check = t;
            let asked = self.rt.store.cancel_requested_runs(self.rt.owner)?;
            for run in 0..self.runs.len() {
                let r = &self.runs[run];
                if r.phase.is_none() && !r.cancelled && asked.contains(&r.id) {
                    self.cancel_run(run);
                }
            }
            for (id, model) in self.rt.store.take_model_requests(self.rt.owner)? {
                if let Some(r) = self
                    .runs
                    .iter_mut()
                    .find(|r| r.id == id && r.phase.is_none())
                {
                    r.controller.update_model(model);
                }
            }
        }
        Ok(())
    }

    fn interrupt(&mut self) {
        let again = self.interrupted;
        self.interrupted = true;
        if again {
            // a second Ctrl-C skips the grace period
            self.forced = true;
            for t in &self.tasks {
                for p in t.attempt.iter().flat_map(|a| a.procs.iter()) {
                    if let (None, Some((_, pgid))) = (p.exit, p.running) {
                        let _ = process::signal_group(pgid, Signal::SIGKILL);
                    }
                }
            }
            return;
        }
        for run in 0..self.runs.len() {
            self.cancel_run(run);
        }
    }

    /// Stops a run: queued jobs are withdrawn, running ones stopped, nothing new starts.
    fn cancel_run(&mut self, run: usize) {
        if self.runs[run].phase.is_some() {
            return;
        }
        self.runs[run].cancelled = true;
        self.dirty.insert(run);
        for index in 0..self.tasks.len() {
            if self.tasks[index].run != run {
                continue;
            }
            match self.tasks[index].phase {
                Phase::Queued => {
                    if let Some(a) = self.tasks[index].attempt.take() {
                        self.outbox.push(Event::Cancel {
                            job: a.sched.clone(),
                        });
                        self.by_sched.remove(&a.sched);
                        let _ = self.rt.store.update_attempt(
                            a.id,
                            "Cancelled",
                            "Cancelled",
                            "",
                            now(),
                            true,
                        );
                    }
                    let _ = self.cancel_job(index);
                }
                Phase::Running => {
                    self.fail_attempt(index, Outcome::Failed, "Cancelled", "cancelled".into());
                }
                Phase::Waiting | Phase::Preparing => {
                    let _ = self.cancel_job(index);
                }
                Phase::Done => {}
            }
        }
    }
}

/// Waits until every port accepts a connection on the loopback interface.
async fn wait_for_ports(ports: &[(String, u16)], within: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    for (name, port) in ports {
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", *port))
                .await
                .is_ok()
            {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{name} did not listen on port {port} within {}s",
                    within.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// The controller of a run that cannot be driven: it fails at once with the reason.
struct Failed(String);

impl Controller for Failed {
    fn ready(&mut self) -> Vec<TaskSpec> {
        Vec::new()
    }
    fn finished(&mut self, _job: &str, _result: &JobResult) {}
    fn outcome(&self) -> Option<(RunPhase, String)> {
        Some((RunPhase::Failed, self.0.clone()))
    }
    fn namespaces(&self) -> Vec<mlctl_core::sched::NamespacePolicy> {
        Vec::new()
    }
}
