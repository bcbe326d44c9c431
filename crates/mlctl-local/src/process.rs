//! Child processes: started from an argument vector (never a shell), each in its own process
//! group, with its output appended to a log file; stopped by signalling the whole group
//! (SIGTERM, a grace period, then SIGKILL), so that nothing a workload started outlives it.
//!
//! Processes are identified across mlctl restarts by pid and start time (from `/proc`), so
//! a recovering mlctl never signals an unrelated process that reused a pid.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// What to start.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProcSpec {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Variables added to (or replacing) the inherited environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// File that receives stdout and stderr (appended).
    pub log: PathBuf,
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The argument vector is empty.
    #[error("the command is empty")]
    EmptyCommand,
    /// The log file could not be opened.
    #[error("failed to open the log file {path}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reaper could not start it (the message says why).
    #[error("{0}")]
    Reaper(String),
    /// The program could not be started (not found, not executable, bad directory).
    #[error("failed to start `{program}` in {cwd}")]
    Start {
        /// The program.
        program: String,
        /// The working directory.
        cwd: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A process's pid and start time once it runs, or why it did not start.
pub type Running = Pin<Box<dyn Future<Output = Result<(u32, u64), SpawnError>> + Send>>;

/// A process asked to start. Through the reaper it starts while its caller goes on, so its
/// pid is known later.
pub struct Spawned {
    /// Once it runs: its pid, which is also its process group id, and its start time in clock
    /// ticks since boot (0 if unknown). Or why it did not start.
    pub running: Running,
    /// How it ends, once it ran.
    pub ended: Pin<Box<dyn Future<Output = Exit> + Send>>,
}

impl std::fmt::Debug for Spawned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawned").finish_non_exhaustive()
    }
}

/// The command that starts `spec` in a new process group, its output appended to its log
/// (opened here, its directory created if missing). `found`, when given, is the file that
/// `spec`'s program, named without a slash, was found to be on PATH: it is run as it is,
/// without a search, and still sees its name as its first argument.
pub fn command(spec: &ProcSpec, found: Option<&Path>) -> Result<std::process::Command, SpawnError> {
    let (program, args) = spec.argv.split_first().ok_or(SpawnError::EmptyCommand)?;
    let log_err = |source| SpawnError::Log {
        path: spec.log.clone(),
        source,
    };
    let open = || OpenOptions::new().create(true).append(true).open(&spec.log);
    // the log's directory is usually there (an attempt's is prepared before its processes
    // start), and a `mkdir` that finds it costs a step's start as much as the `open`
    let out = match (open(), spec.log.parent()) {
        (Err(e), Some(dir)) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(log_err)?;
            open()
        }
        (opened, _) => opened,
    }
    .map_err(log_err)?;
    let err = out.try_clone().map_err(log_err)?;
    let mut command = match found {
        Some(file) => {
            let mut command = std::process::Command::new(file);
            command.arg0(program);
            command
        }
        None => std::process::Command::new(program),
    };
    command
        .args(args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    Ok(command)
}

/// Why `spec` did not start, from the error of spawning its command.
pub fn start_error(spec: &ProcSpec, source: std::io::Error) -> SpawnError {
    SpawnError::Start {
        program: spec.argv.first().cloned().unwrap_or_default(),
        cwd: spec.cwd.clone(),
        source,
    }
}

/// Starts a process in a new process group. Must be called inside a tokio runtime.
pub fn spawn(spec: &ProcSpec) -> Result<Spawned, SpawnError> {
    let mut child = tokio::process::Command::from(command(spec, None)?)
        .kill_on_drop(false)
        .spawn()
        .map_err(|source| start_error(spec, source))?;
    let pid = child.id().unwrap_or(0);
    let running = Ok((pid, start_time(pid).unwrap_or(0)));
    Ok(Spawned {
        running: Box::pin(std::future::ready(running)),
        ended: Box::pin(
            async move { child.wait().await.map_or(Exit::Code(-1), Exit::from_status) },
        ),
    })
}

/// The start time of `pid` in clock ticks since boot, from `/proc/<pid>/stat`.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name is in parentheses and may contain spaces: split after the last ')'
    let rest = &stat[stat.rfind(')')? + 1..];
    // fields after the name start at field 3 (state); starttime is field 22
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process `pid` that started at `start_time` is still running (a zombie counts
/// as gone).
pub fn is_alive(pid: u32, start_time: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let mut fields = stat[close + 1..].split_whitespace();
    let state = fields.next().unwrap_or("Z");
    if state == "Z" || state == "X" {
        return false;
    }
    start_time == 0 || fields.nth(18).and_then(|s| s.parse::<u64>().ok()) == Some(start_time)
}

/// Sends `signal` to the process group `pgid`. A group that no longer exists is not an error.
pub fn signal_group(pgid: u32, signal: Signal) -> std::io::Result<()> {
    let Ok(raw) = i32::try_from(pgid) else {
        return Ok(());
    };
    if raw <= 1 {
        // never signal init or "every process"
        return Ok(());
    }
    match killpg(Pid::from_raw(raw), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

/// The `/proc/<pid>/stat` fields after the command name (state first) of every running
/// (not zombie) process of group `pgid`.
fn group_members(pgid: u32) -> impl Iterator<Item = Vec<String>> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(move |entry| {
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let fields: Vec<String> = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .map(str::to_string)
                .collect();
            // fields: state, ppid, pgrp
            let running = !matches!(fields.first().map(String::as_str), Some("Z" | "X") | None);
            (running && fields.get(2).and_then(|s| s.parse::<u32>().ok()) == Some(pgid))
                .then_some(fields)
        })
}

/// Whether any process of group `pgid` is still running (zombies excluded).
pub fn group_alive(pgid: u32) -> bool {
    group_members(pgid).next().is_some()
}

/// The CPU time (user + system, in clock ticks) used so far by the running processes of
/// group `pgid`.
pub fn group_cpu_ticks(pgid: u32) -> u64 {
    group_members(pgid)
        .map(|f| {
            // utime and stime are fields 14 and 15 of stat
            let tick = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
            tick(11) + tick(12)
        })
        .sum()
}

fn sysconf(var: nix::unistd::SysconfVar, default: u64) -> u64 {
    nix::unistd::sysconf(var)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

/// Clock ticks per second, the unit of [`group_cpu_ticks`].
pub fn ticks_per_second() -> u64 {
    sysconf(nix::unistd::SysconfVar::CLK_TCK, 100)
}

/// The resident memory, in bytes, of the running processes of group `pgid`.
pub fn group_rss_bytes(pgid: u32) -> u64 {
    let page = sysconf(nix::unistd::SysconfVar::PAGE_SIZE, 4096);
    group_members(pgid)
        .map(|f| {
            // rss (pages) is field 24 of stat
            f.get(21).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) * page
        })
        .sum()
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

impl Exit {
    /// From a wait status.
    pub fn from_status(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            (None, None) => Exit::Code(-1),
        }
    }

    /// Whether it is a success.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => match Signal::try_from(*s) {
                Ok(sig) => write!(f, "killed by {}", sig.as_str()),
                Err(_) => write!(f, "killed by signal {s}"),
            },
        }
    }
}

/// Stops a process group: SIGTERM, then SIGKILL after `grace` if any member is still
/// running; returns once no member runs (or after a further second, to stay bounded).
pub async fn stop_group(pgid: u32, grace: Duration) {
    let _ = signal_group(pgid, Signal::SIGTERM);
    if wait_group_gone(pgid, grace).await {
        return;
    }
    let _ = signal_group(pgid, Signal::SIGKILL);
    wait_group_gone(pgid, Duration::from_secs(1)).await;
}

async fn wait_group_gone(pgid: u32, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates `work` as a view of `source`: a symlink for every top-level entry of `source`
/// (hidden entries and the mlctl home excluded), so that a process started in `work` finds
/// the project's files while what it writes stays in `work`.
pub fn make_view(source: &Path, work: &Path, exclude: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(work)?;
    // the home is recognised by its device and inode: no path of every entry is resolved
    let home = std::fs::metadata(exclude).ok().map(|m| (m.dev(), m.ino()));
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let target = entry.path();
        // only a directory, or a link that may lead to one, can be the home
        let maybe_home = entry.file_type().map_or(true, |t| !t.is_file());
        if maybe_home
            && let Some(home) = home
            && std::fs::metadata(&target).is_ok_and(|m| (m.dev(), m.ino()) == home)
        {
            continue;
        }
        match std::os::unix::fs::symlink(&target, work.join(&name)) {
            // an entry the view already has (a view prepared again) stays as it is
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, argv: &[&str]) -> ProcSpec {
        ProcSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("MLCTL_TEST_VAR".into(), "hello".into())],
            cwd: dir.to_path_buf(),
            log: dir.join("logs/out.log"),
        }
    }

    #[tokio::test]
    async fn runs_argv_with_env_and_captures_output() {
        let dir = tempfile::tempdir().expect("tmp");
        let started = spawn(&spec(
            dir.path(),
            &[
                "sh",
                "-c",
                "echo \"$MLCTL_TEST_VAR $(pwd)\"; echo err >&2; exit 3",
            ],
        ))
        .expect("spawn");
        let (pid, start_time) = started.running.await.expect("running");
        assert!(pid > 1 && start_time > 0);
        assert_eq!(started.ended.await, Exit::Code(3));
        let log = std::fs::read_to_string(dir.path().join("logs/out.log")).expect("log");
        let cwd = std::fs::canonicalize(dir.path()).expect("canon");
        assert_eq!(log, format!("hello {}\nerr\n", cwd.display()));
    }

    #[tokio::test]
    async fn a_missing_program_is_a_start_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let err = spawn(&spec(dir.path(), &["definitely-not-a-program-xyz"])).expect_err("missing");
        assert!(matches!(err, SpawnError::Start { .. }), "{err}");
    }

    #[tokio::test]
    async fn stop_group_kills_grandchildren_that_ignore_sigterm() {
        let dir = tempfile::tempdir().expect("tmp");
        // the child starts a grandchild that ignores SIGTERM, and ignores it itself
        let started = spawn(&spec(
            dir.path(),
            &[
                "sh",
                "-c",
                "trap '' TERM; (trap '' TERM; sleep 60) & echo ready; wait",
            ],
        ))
        .expect("spawn");
        let (pid, _) = started.running.await.expect("running");
        let log = dir.path().join("logs/out.log");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(&log).unwrap_or_default() != "ready\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "child never became ready"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(group_alive(pid));
        stop_group(pid, Duration::from_millis(200)).await;
        assert_eq!(started.ended.await, Exit::Signal(9));
        assert!(!group_alive(pid), "no member of the group survives");
    }

    #[test]
    fn liveness_uses_start_time() {
        let me = std::process::id();
        let t = start_time(me).expect("own start time");
        assert!(is_alive(me, t));
        assert!(
            !is_alive(me, t + 1),
            "a different start time is another process"
        );
        assert!(!is_alive(u32::MAX - 1, 0));
    }

    #[test]
    fn view_links_top_level_entries_except_hidden_and_home() {
        let src = tempfile::tempdir().expect("src");
        std::fs::write(src.path().join("train.py"), "x").expect("write");
        std::fs::create_dir(src.path().join(".git")).expect("mkdir");
        std::fs::create_dir(src.path().join("home")).expect("mkdir");
        let work = src.path().join("home/work");
        let home = std::fs::canonicalize(src.path().join("home")).expect("canon");
        make_view(src.path(), &work, &home).expect("view");
        assert_eq!(
            std::fs::read_to_string(work.join("train.py")).expect("read"),
            "x"
        );
        assert!(!work.join(".git").exists());
        assert!(!work.join("home").exists());
    }
}
