//! What the local-runtime commands share: the machine flags, opening the runtime, printing
//! progress and logs of runs, and starting detached supervisors.

use std::io::{IsTerminal, Write};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use mlctl_local::home::Home;
use mlctl_local::reaper::Reaper;
use mlctl_local::runtime::{Driven, EventKind, MachineOptions, Observer, Runtime};

use crate::exit::{self, Failure};

/// What this machine offers, when not discovered.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MachineArgs {
    /// GPUs this machine has, when NVML cannot tell (no NVIDIA driver, or to use fewer).
    #[arg(long, env = "MLCTL_GPUS", value_name = "N")]
    pub gpus: Option<u32>,
    /// The model of declared GPUs, matched against `gpuType` (default nvidia-gpu).
    #[arg(long, env = "MLCTL_GPU_TYPE", value_name = "MODEL", requires = "gpus")]
    pub gpu_type: Option<String>,
    /// CPU cores to offer (default: all).
    #[arg(long, env = "MLCTL_CPUS", value_name = "N")]
    pub cpus: Option<u32>,
    /// Memory to offer, as a quantity (default: all), e.g. 8Gi.
    #[arg(long, env = "MLCTL_MEMORY", value_name = "QUANTITY")]
    pub memory: Option<mlctl_core::quantity::Quantity>,
}

impl MachineArgs {
    pub fn options(&self) -> MachineOptions {
        MachineOptions {
            gpus: self.gpus,
            gpu_type: self.gpu_type.clone(),
            cpus: self.cpus,
            memory_bytes: self
                .memory
                .as_ref()
                .map(|q| u64::try_from(q.units_ceil().max(0)).unwrap_or(u64::MAX)),
        }
    }
}

fn runtime_failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::LOCAL_RUNTIME, e)
}

/// The mlctl home.
pub fn home() -> Result<Home, Failure> {
    Home::from_env()
        .map_err(runtime_failure)
        .map_err(|f| f.with_hint("set MLCTL_HOME to a writable directory"))
}

/// Opens the runtime for this process.
pub fn open(machine: &MachineArgs) -> Result<Runtime, Failure> {
    open_runtime(machine, false)
}

/// Opens the runtime for a process that runs workers: their reaper starts while the store
/// opens, instead of delaying the first worker.
pub fn open_to_run(machine: &MachineArgs) -> Result<Runtime, Failure> {
    open_runtime(machine, true)
}

/// Opens the runtime for `run` or `resume`: a detached one only submits (its supervisor runs
/// the workers), any other runs them here.
pub fn open_for(machine: &MachineArgs, detach: bool) -> Result<Runtime, Failure> {
    open_runtime(machine, !detach)
}

fn open_runtime(machine: &MachineArgs, early: bool) -> Result<Runtime, Failure> {
    let home = home()?;
    let exe = std::env::current_exe()
        .context("failed to find the mlctl executable")
        .map_err(runtime_failure)?;
    let reaper = Reaper::new(exe);
    if early {
        reaper.start_early();
    }
    let mut runtime = Runtime::open(home, &machine.options()).map_err(runtime_failure)?;
    runtime.set_reaper(reaper);
    Ok(runtime)
}

/// Opens the store for reading.
pub fn store() -> Result<mlctl_local::store::Store, Failure> {
    let home = home()?;
    mlctl_local::store::Store::open(&home.db()).map_err(runtime_failure)
}

/// Drives `runs` until they end: this process is their dispatcher from now on. It turns
/// transparent huge pages off for itself here, after any supervisor was started, because
/// children inherit the setting; its reaper keeps the machine's for the workers (started
/// before, or told to restore it).
pub fn drive(
    runtime: &mut Runtime,
    runs: &[String],
    observer: &mut dyn Observer,
) -> Result<Driven, Failure> {
    if mlctl_local::reaper::dispatch_without_thp()
        && let Some(reaper) = runtime.reaper()
    {
        reaper.restore_thp();
    }
    block_on(runtime.drive(runs, observer))?.map_err(runtime_failure)
}

/// A single-threaded tokio runtime for a command.
pub fn block_on<F: Future>(f: F) -> Result<F::Output, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
        .map_err(runtime_failure)?;
    Ok(rt.block_on(f))
}

/// Starts `mlctl __supervise RUN...` in the background, detached from the terminal, and
/// waits until it has taken the runs over.
pub fn spawn_supervisor(runtime: &Runtime, runs: &[String]) -> Result<(), Failure> {
    if runs.is_empty() {
        return Ok(());
    }
    let exe = std::env::current_exe()
        .context("failed to find the mlctl executable")
        .map_err(runtime_failure)?;
    let dir = runtime.home().run_dir(&runs[0]);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create {}", dir.display()))
        .map_err(runtime_failure)?;
    let log_path = dir.join("supervisor.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("failed to open {}", log_path.display()))
        .map_err(runtime_failure)?;
    let err = log.try_clone().map_err(runtime_failure)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("__supervise")
        .args(runs)
        .env("MLCTL_HOME", runtime.home().root())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn()
        .context("failed to start a background supervisor")
        .map_err(runtime_failure)?;
    // hand over: wait until the supervisor owns every run (or has already ended it, e.g. a
    // service whose port is taken: the caller reads why from the store)
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut all = true;
        for id in runs {
            let row = runtime.store().find_run(id).map_err(runtime_failure)?;
            if row.is_some_and(|r| r.owner == Some(runtime.owner()) && r.finished_at.is_none()) {
                all = false;
            }
        }
        if all {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(runtime_failure(anyhow::anyhow!(
                "the background supervisor did not take over (see {})",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Prints progress to stderr and workers' output to stdout, each line prefixed with its
/// source (and run, when several run at once).
pub struct Printer {
    color: bool,
    show_run: bool,
    /// On a terminal: the time since the start and each job's state, shown with every event.
    tty: Option<Tally>,
}

/// What a terminal's progress shows: elapsed time and how many jobs are in each state.
struct Tally {
    start: std::time::Instant,
    jobs: std::collections::BTreeMap<(String, String), &'static str>,
}

impl Tally {
    fn record(&mut self, run: &str, job: &str, reason: &str) {
        let state = match reason {
            "Started" | "SidecarsStarted" | "Preparing" => "running",
            "Pending" | "BackOff" => "waiting",
            "Succeeded" | "Cached" | "Deployed" => "done",
            "Skipped" | "Omitted" => "skipped",
            "Failed" | "Error" | "FailedToStart" | "DeadlineExceeded" => "failed",
            _ => return,
        };
        if !job.is_empty() {
            self.jobs.insert((run.to_string(), job.to_string()), state);
        }
    }

    fn summary(&self) -> String {
        let count = |s| self.jobs.values().filter(|v| **v == s).count();
        let mut parts = Vec::new();
        for state in ["running", "waiting", "done", "skipped", "failed"] {
            let n = count(state);
            if n > 0 {
                parts.push(format!("{n} {state}"));
            }
        }
        let secs = self.start.elapsed().as_secs_f64();
        format!("{secs:6.1}s  [{}]", parts.join(", "))
    }
}

impl Printer {
    pub fn new(runs: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Self {
            color: std::env::var_os("NO_COLOR").is_none() && terminal,
            show_run: runs > 1,
            tty: terminal.then(|| Tally {
                start: std::time::Instant::now(),
                jobs: std::collections::BTreeMap::new(),
            }),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

impl Observer for Printer {
    fn event(&mut self, run: &str, job: &str, kind: EventKind, reason: &str, message: &str) {
        let who = match (self.show_run, job.is_empty()) {
            (true, true) => run.to_string(),
            (true, false) => format!("{run}/{job}"),
            (false, true) => "run".to_string(),
            (false, false) => job.to_string(),
        };
        let reason_text = reason;
        let reason = match kind {
            EventKind::Normal => self.paint("36", reason),
            EventKind::Warning => self.paint("33", reason),
        };
        let progress = match &mut self.tty {
            Some(tally) => {
                tally.record(run, job, reason_text);
                format!("{} ", tally.summary())
            }
            None => String::new(),
        };
        // one write per line: unbuffered stderr would get each piece of the format as its own
        let line = format!(
            "{}{} {who}: {reason}: {message}\n",
            self.paint("2", &progress),
            self.paint("2", "▸")
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn log(&mut self, run: &str, source: &str, line: &str) {
        let prefix = if self.show_run {
            format!("{run}/{source}")
        } else {
            source.to_string()
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {line}", self.paint("2", &format!("[{prefix}]")));
        let _ = out.flush();
    }
}

/// Prints how each driven run ended and returns the exit code: 130 when Ctrl-C stopped them,
/// 1 when one did not succeed.
pub fn conclude(driven: &Driven) -> u8 {
    for r in &driven.runs {
        let detail = if r.message.is_empty() || r.message == "cancelled" {
            String::new()
        } else {
            format!(": {}", r.message)
        };
        eprintln!("run {} {}{detail}", r.id, r.phase.as_str().to_lowercase());
    }
    if driven.interrupted {
        exit::INTERRUPTED
    } else if driven
        .runs
        .iter()
        .all(|r| r.phase == mlctl_local::controller::RunPhase::Succeeded)
    {
        exit::OK
    } else {
        exit::NEGATIVE
    }
}

/// Human-readable elapsed time: `3s`, `2m10s`, `1h4m`, `3d2h`.
pub fn elapsed(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Seconds since the epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
