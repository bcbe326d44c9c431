//! The reaper: one process per dispatcher (`mlctl __reaper`, started before the store opens by the
//! commands that run workers, or else at the first worker) that starts every worker and waits for
//! it, so that how a worker ended is known even when the mlctl that started it was killed
//! meanwhile: a recovering mlctl then finishes the attempt from the status records (and does not
//! run a succeeded step twice).
//!
//! The dispatcher sends one JSON request per line on the reaper's stdin (argv, environment, working
//! directory, log and status file); the reaper starts the worker in its own process group, with its
//! output appended to the log, and answers on stdout with `started ID PID START` or `failed ID
//! MESSAGE`; when the worker ends it appends the ending to the status file and answers
//! `exited ID code N` or `exited ID signal N`. The dispatcher does not wait for the `started`
//! answer: it prepares the next worker while the reaper starts this one. It holds the requests of
//! each of its passes back until it has committed what the pass stored (see [`Reaper::hold`]), then
//! sends them in one write. The reaper is in a process group of its own, so Ctrl-C and the signals
//! sent to workers do not reach it. When its stdin closes (the dispatcher exited, or was killed) it
//! starts nothing more, waits for the workers it started and exits.
//!
//! A status file is a file of lines, each written by one `write` in append mode, shared by the
//! workers of a run (`<run>/workers.status`): `KEY pid PID START` (the worker's pid and start
//! time: recovery stops a worker that no mlctl recorded), then `KEY code N` or `KEY signal N`,
//! `KEY` naming the worker (`<job>-attempt-<n>.<rank>`). The order of the endings is the order
//! of the reaps, which tells the first failure of a gang. One process per dispatcher rather than
//! one shim per worker, and one file per run rather than one per worker: a process start and
//! every new file cost the machine more than the worker `true` itself (BENCHMARKS.md, "local
//! runtime").

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use nix::sys::wait::{WaitStatus, waitpid};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::process::{self, Exit, ProcSpec, SpawnError, Spawned};
use crate::{error_chain, lock};

/// Where the reaper records one worker: the lines of the file `path` that start with `key` and
/// a space, in the file of a run's workers. Recovery also reads the files of one worker each
/// that mlctl wrote until 2026-11-29: `key` is then empty, and every line is the worker's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusFile {
    /// The file.
    pub path: PathBuf,
    /// The worker's key in it (`<job>-attempt-<n>.<rank>`).
    #[serde(default)]
    pub key: String,
}

/// The complete lines of a status file.
fn lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // a line without its newline is still being written
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete.lines().map(str::to_string).collect()
}

/// A line of a file of several workers as (key, rest).
fn keyed(line: &str) -> Option<(&str, &str)> {
    line.split_once(' ')
}

impl StatusFile {
    /// This worker's lines as (kind, value).
    fn entries(&self) -> Vec<(String, String)> {
        lines(&self.path)
            .iter()
            .filter_map(|line| match self.key.as_str() {
                "" => Some(line.as_str()),
                key => keyed(line).filter(|(k, _)| *k == key).map(|(_, rest)| rest),
            })
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Appends `line` for this worker in one `write` (a reader sees all of it or none).
    fn record(&self, file: &std::fs::File, line: &str) {
        let _ = (&mut &*file).write_all(format!("{} {line}\n", self.key).as_bytes());
    }
}

fn parse_end(kind: &str, value: &str) -> Option<Exit> {
    match kind {
        "code" => value.parse().ok().map(Exit::Code),
        "signal" => value.parse().ok().map(Exit::Signal),
        _ => None,
    }
}

fn end_text(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("code {c}"),
        Exit::Signal(s) => format!("signal {s}"),
    }
}

/// Reads how a worker ended from its status file: none while it runs.
pub fn read_status(status: &StatusFile) -> Option<Exit> {
    status
        .entries()
        .iter()
        .find_map(|(kind, value)| parse_end(kind, value))
}

/// Reads the pid and start time of a worker from its status file.
pub fn read_pid(status: &StatusFile) -> Option<(u32, u64)> {
    status.entries().into_iter().find_map(|(kind, value)| {
        let (pid, start) = value.split_once(' ').filter(|_| kind == "pid")?;
        Some((pid.parse().ok()?, start.parse().ok()?))
    })
}

/// The keys of the workers recorded in the file of several workers `path`.
pub fn keys(path: &Path) -> Vec<String> {
    let mut keys: Vec<String> = lines(path)
        .iter()
        .filter_map(|line| keyed(line).map(|(k, _)| k.to_string()))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The endings recorded in the file of several workers `path`, in the order they were
/// recorded, as (key, exit).
pub fn endings(path: &Path) -> Vec<(String, Exit)> {
    lines(path)
        .iter()
        .filter_map(|line| {
            let (key, rest) = keyed(line)?;
            let (kind, value) = rest.split_once(' ')?;
            Some((key.to_string(), parse_end(kind, value)?))
        })
        .collect()
}

/// What the dispatcher asks the reaper to start.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: u64,
    spec: ProcSpec,
    status: StatusFile,
}

/// The dispatcher's side of a request in flight.
struct Waiting {
    started: Option<oneshot::Sender<Result<(u32, u64), String>>>,
    ended: Option<oneshot::Sender<Exit>>,
}

type Table = Arc<Mutex<HashMap<u64, Waiting>>>;

struct Running {
    child: Child,
    stdin: ChildStdin,
    /// Its answers until the first request, which hands them to `answers`.
    stdout: Option<ChildStdout>,
    /// The task reading its answers, on the runtime that sent the first request.
    answers: Option<tokio::task::JoinHandle<()>>,
}

/// The dispatcher's handle on its reaper. Its answers are read by a task on the tokio runtime
/// that sends the first request, so it serves the dispatcher of one runtime.
pub struct Reaper {
    exe: PathBuf,
    running: Mutex<Option<Running>>,
    table: Table,
    next: AtomicU64,
    /// While requests are held (see [`Reaper::hold`]): their ids and lines, not sent yet.
    held: Mutex<Option<(Vec<u64>, String)>>,
    /// Whether it turns transparent huge pages back on (see [`Reaper::restore_thp`]).
    restore_thp: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper").field("exe", &self.exe).finish()
    }
}

impl Reaper {
    /// A reaper run as `exe __reaper` (not started yet).
    pub fn new(exe: PathBuf) -> Self {
        Self {
            exe,
            running: Mutex::new(None),
            table: Arc::new(Mutex::new(HashMap::new())),
            next: AtomicU64::new(1),
            held: Mutex::new(None),
            restore_thp: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Makes a reaper started from now on turn transparent huge pages back on for itself and
    /// its workers: the dispatcher turned them off for itself, which its children inherit.
    pub fn restore_thp(&self) {
        self.restore_thp.store(true, Ordering::Relaxed);
    }

    /// The mlctl executable it runs as.
    pub fn exe(&self) -> &Path {
        &self.exe
    }

    fn start(&self) -> std::io::Result<Running> {
        let mut child = Command::new(&self.exe)
            .arg("__reaper")
            .args(
                self.restore_thp
                    .load(Ordering::Relaxed)
                    .then_some("--restore-thp"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("failed to start {} __reaper: {e}", self.exe.display()),
                )
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the reaper has no pipes"));
        };
        Ok(Running {
            child,
            stdin,
            stdout: Some(stdout),
            answers: None,
        })
    }

    /// Starts the reaper now rather than at the first worker, so that its start (that of the
    /// mlctl executable) overlaps other work, such as opening the store. A failure is left
    /// for the first worker's start to report.
    pub fn start_early(&self) {
        let mut running = lock(&self.running);
        if running.is_none() {
            *running = self.start().ok();
        }
    }

    /// From now on, requests are held until [`Reaper::send_held`]: the dispatcher stores a pass's
    /// starts, commits them once, and only then lets their processes start.
    pub fn hold(&self) {
        lock(&self.held).get_or_insert_default();
    }

    /// Whether requests are held and some wait.
    pub fn holds_any(&self) -> bool {
        lock(&self.held)
            .as_ref()
            .is_some_and(|(ids, _)| !ids.is_empty())
    }

    /// Whether requests are held.
    pub fn holding(&self) -> bool {
        lock(&self.held).is_some()
    }

    /// Sends the held requests, in one write; later requests are held still. When they cannot
    /// be sent, their processes fail to start, with the reason.
    pub fn send_held(&self) {
        let Some((ids, lines)) = lock(&self.held).as_mut().map(std::mem::take) else {
            return;
        };
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.send(&lines) {
            self.fail(ids, &e.to_string());
        }
    }

    /// Stops holding requests. Those not sent are dropped: their processes fail to start.
    pub fn stop_holding(&self) {
        if let Some((ids, _)) = lock(&self.held).take() {
            self.fail(ids, "not sent to the reaper: its dispatcher stopped");
        }
    }

    /// Fails the starts of the requests `ids`, saying `why`.
    fn fail(&self, ids: Vec<u64>, why: &str) {
        let mut table = lock(&self.table);
        for id in ids {
            if let Some(tx) = table.remove(&id).and_then(|mut w| w.started.take()) {
                let _ = tx.send(Err(why.to_string()));
            }
        }
    }

    /// Asks the reaper to start `spec` and record its ending to `status` (a file of several
    /// workers: its key names this one). Returns once the request is sent, or held: the
    /// caller does other work while the reaper starts the process.
    pub fn spawn(&self, spec: &ProcSpec, status: &StatusFile) -> Result<Spawned, SpawnError> {
        if spec.argv.is_empty() {
            return Err(SpawnError::EmptyCommand);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (started_tx, started_rx) = oneshot::channel();
        let (ended_tx, ended_rx) = oneshot::channel();
        lock(&self.table).insert(
            id,
            Waiting {
                started: Some(started_tx),
                ended: Some(ended_tx),
            },
        );
        let request = Request {
            id,
            spec: spec.clone(),
            status: status.clone(),
        };
        let sent = serde_json::to_string(&request)
            .map_err(std::io::Error::other)
            .and_then(|line| match lock(&self.held).as_mut() {
                Some((ids, lines)) => {
                    ids.push(id);
                    lines.push_str(&line);
                    lines.push('\n');
                    Ok(())
                }
                None => self.send(&format!("{line}\n")),
            });
        if let Err(e) = sent {
            lock(&self.table).remove(&id);
            return Err(SpawnError::Reaper(e.to_string()));
        }
        Ok(Spawned {
            running: Box::pin(async move {
                started_rx
                    .await
                    .unwrap_or_else(|_| Err("the reaper exited".to_string()))
                    .map_err(SpawnError::Reaper)
            }),
            ended: Box::pin(async move { ended_rx.await.unwrap_or(Exit::Code(-1)) }),
        })
    }

    /// Sends `lines` (requests), starting the reaper first if needed.
    fn send(&self, lines: &str) -> std::io::Result<()> {
        let mut running = lock(&self.running);
        let r = match &mut *running {
            Some(r) => r,
            none => none.insert(self.start()?),
        };
        // read on the dispatcher's runtime: a thread of its own would add a wake-up (the
        // thread's, then the runtime's) to every answer
        if let Some(stdout) = r.stdout.take() {
            let answers = tokio::net::unix::pipe::Receiver::from_owned_fd(stdout.into())?;
            r.answers = Some(tokio::spawn(read_answers(answers, self.table.clone())));
        }
        // its answers would never be read: fail now rather than wait for them forever
        if r.answers
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            return Err(std::io::Error::other(
                "the reaper stopped answering (it exited, or the runtime reading it stopped)",
            ));
        }
        r.stdin.write_all(lines.as_bytes())
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // closing its stdin tells the reaper to exit once its workers have ended, which is at
        // once when the dispatcher is done; it is waited for (a second at most: a reaper whose
        // workers still run finishes on its own), so that its time counts as this process's
        // children's, as the workers' did when they were its children
        if let Some(Running {
            mut child, stdin, ..
        }) = lock(&self.running).take()
        {
            drop(stdin);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            // it is usually done within a millisecond: short pauses at first
            let mut pause = std::time::Duration::from_micros(50);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// Hands the reaper's answers to the requests waiting for them; when the reaper is gone, every
/// waiting request learns it.
async fn read_answers(stdout: tokio::net::unix::pipe::Receiver, table: Table) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut parts = line.splitn(3, ' ');
        let (Some(kind), Some(id), rest) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(id) = id.parse::<u64>() else { continue };
        let rest = rest.unwrap_or_default();
        let mut table = lock(&table);
        match kind {
            "started" => {
                let parsed = rest
                    .split_once(' ')
                    .and_then(|(p, s)| Some((p.parse().ok()?, s.parse().ok()?)))
                    .ok_or_else(|| format!("the reaper said: {line}"));
                if let Some(tx) = table.get_mut(&id).and_then(|w| w.started.take()) {
                    let _ = tx.send(parsed);
                }
            }
            "failed" => {
                if let Some(tx) = table.remove(&id).and_then(|mut w| w.started.take()) {
                    let _ = tx.send(Err(rest.to_string()));
                }
            }
            "exited" => {
                let exit = rest.split_once(' ').and_then(|(k, v)| parse_end(k, v));
                if let (Some(mut w), Some(exit)) = (table.remove(&id), exit)
                    && let Some(tx) = w.ended.take()
                {
                    let _ = tx.send(exit);
                }
            }
            _ => {}
        }
    }
    // the reaper is gone: requests waiting for a start fail, endings are unknown
    lock(&table).clear();
}

/// The reaper's own state.
#[derive(Default)]
struct Workers {
    /// Running workers by pid: the request, where it records them, and that file.
    running: HashMap<u32, (u64, StatusFile, Arc<std::fs::File>)>,
    /// The dispatcher closed the reaper's stdin.
    closed: bool,
}

fn say(out: &Mutex<std::io::Stdout>, line: &str) {
    let mut out = lock(out);
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

/// Where programs named without a slash were found on the PATH they run with. Without it,
/// every start of such a program tries the PATH's directories in turn, each miss a failed
/// `execve` in the new process (eight per worker for `true` on this project's CI PATH); a
/// shell's table of commands saves the same.
#[derive(Default)]
struct Programs(HashMap<(String, OsString), PathBuf>);

impl Programs {
    /// The key of `spec`'s program: its name, when it has no slash, and the PATH it runs with.
    fn key(spec: &ProcSpec) -> Option<(String, OsString)> {
        let name = spec
            .argv
            .first()
            .filter(|n| !n.is_empty() && !n.contains('/'))?;
        let path = spec
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| OsString::from(v))
            .or_else(|| std::env::var_os("PATH"))?;
        Some((name.clone(), path))
    }

    /// The executable file `spec`'s program is, searched as `execvp` does; none when the
    /// search would reach a relative directory (which the worker resolves from its own
    /// working directory) or finds nothing (the start then fails as it would have).
    fn find(&mut self, spec: &ProcSpec) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let key = Self::key(spec)?;
        if let Some(file) = self.0.get(&key) {
            return Some(file.clone());
        }
        for dir in std::env::split_paths(&key.1) {
            if !dir.is_absolute() {
                return None;
            }
            let file = dir.join(&key.0);
            if std::fs::metadata(&file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            {
                self.0.insert(key, file.clone());
                return Some(file);
            }
        }
        None
    }

    /// Forgets where `spec`'s program was (it is gone).
    fn forget(&mut self, spec: &ProcSpec) {
        if let Some(key) = Self::key(spec) {
            self.0.remove(&key);
        }
    }
}

/// The status files the reaper has open (one per run), kept open.
#[derive(Default)]
struct StatusFiles(HashMap<PathBuf, Arc<std::fs::File>>);

impl StatusFiles {
    /// The file `status` is in, opened for appending (created if missing).
    fn open(&mut self, status: &StatusFile) -> Result<Arc<std::fs::File>, String> {
        if let Some(file) = self.0.get(&status.path) {
            return Ok(file.clone());
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&status.path)
            .map(Arc::new)
            .map_err(|e| {
                format!(
                    "failed to open the status file {}: {e}",
                    status.path.display()
                )
            })?;
        self.0.insert(status.path.clone(), file.clone());
        Ok(file)
    }
}

fn start_worker(
    request: &Request,
    programs: &mut Programs,
    files: &mut StatusFiles,
) -> Result<(Child, Arc<std::fs::File>), String> {
    let spec = &request.spec;
    let found = programs.find(spec);
    let mut command = process::command(spec, found.as_deref()).map_err(|e| error_chain(&e))?;
    let status = files.open(&request.status)?;
    let spawned = match command.spawn() {
        // the file found before is gone: search the PATH again
        Err(e) if found.is_some() && e.kind() == std::io::ErrorKind::NotFound => {
            programs.forget(spec);
            process::command(spec, None)
                .map_err(|e| error_chain(&e))?
                .spawn()
        }
        spawned => spawned,
    };
    let child = spawned.map_err(|e| error_chain(&process::start_error(spec, e)))?;
    Ok((child, status))
}

/// Turns transparent huge pages off for this process, which drives workers, unless they were
/// off already; returns whether it did. mlctl's allocator asks for huge pages, and each 2 MB
/// region the dispatcher first touched was then zeroed whole: ~7% of the CPU time of a
/// 200-step pipeline (BENCHMARKS.md), for a heap of a few megabytes. Children inherit the
/// setting, which the reaper therefore turns back on (see [`Reaper::restore_thp`]).
pub fn dispatch_without_thp() -> bool {
    use nix::sys::prctl;
    matches!(prctl::get_thp_disable(), Ok(false)) && prctl::set_thp_disable(true).is_ok()
}

/// Runs the reaper (`mlctl __reaper`) until its stdin closes and its workers have ended;
/// returns its exit code. With `restore_thp`, it first turns transparent huge pages back on
/// (see [`Reaper::restore_thp`]).
pub fn serve(restore_thp: bool) -> u8 {
    if restore_thp {
        let _ = nix::sys::prctl::set_thp_disable(false);
    }
    let state = Arc::new((Mutex::new(Workers::default()), Condvar::new()));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let waiter = {
        let (state, out) = (state.clone(), out.clone());
        std::thread::spawn(move || wait_for_workers(&state, &out))
    };
    let mut programs = Programs::default();
    let mut files = StatusFiles::default();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(request) = serde_json::from_str::<Request>(&line) else {
            eprintln!("error: mlctl reaper: not a request: {line}");
            continue;
        };
        let (lock_, wake) = &*state;
        // holds the table while starting, so that the waiter finds every worker it reaps
        let mut workers = lock(lock_);
        match start_worker(&request, &mut programs, &mut files) {
            Ok((child, file)) => {
                let pid = child.id();
                let start_time = process::start_time(pid).unwrap_or(0);
                request
                    .status
                    .record(&file, &format!("pid {pid} {start_time}"));
                workers
                    .running
                    .insert(pid, (request.id, request.status, file));
                // said before the table is let go: its ending is said after it
                say(&out, &format!("started {} {pid} {start_time}", request.id));
                drop(workers);
                wake.notify_all();
            }
            Err(message) => {
                drop(workers);
                say(&out, &format!("failed {} {message}", request.id));
            }
        }
    }
    let (lock_, wake) = &*state;
    lock(lock_).closed = true;
    wake.notify_all();
    let _ = waiter.join();
    0
}

fn wait_for_workers(state: &(Mutex<Workers>, Condvar), out: &Mutex<std::io::Stdout>) {
    let (lock_, wake) = state;
    loop {
        {
            let mut workers = lock(lock_);
            while workers.running.is_empty() && !workers.closed {
                workers = wake.wait(workers).unwrap_or_else(PoisonError::into_inner);
            }
            if workers.running.is_empty() {
                return;
            }
        }
        let (pid, exit) = match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, Exit::Code(code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, Exit::Signal(sig as i32)),
            Ok(_) => continue,
            Err(_) => {
                // no child to wait for although one is listed: it was reaped elsewhere
                lock(lock_).running.clear();
                continue;
            }
        };
        let Ok(pid) = u32::try_from(pid.as_raw()) else {
            continue;
        };
        let Some((id, status, file)) = lock(lock_).running.remove(&pid) else {
            continue;
        };
        let end = end_text(exit);
        status.record(&file, &end);
        say(out, &format!("exited {id} {end}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_once_complete() {
        let dir = tempfile::tempdir().expect("tmp");
        let own = StatusFile {
            path: dir.path().join("0.status"),
            key: String::new(),
        };
        std::fs::write(&own.path, "pid 12 34\ncode 3").expect("write");
        assert_eq!(read_pid(&own), Some((12, 34)));
        assert_eq!(read_status(&own), None, "a line being written is not read");
        std::fs::write(&own.path, "pid 12 34\nsignal 9\n").expect("write");
        assert_eq!(read_status(&own), Some(Exit::Signal(9)));
        let none = StatusFile {
            path: dir.path().join("none"),
            key: String::new(),
        };
        assert_eq!(read_status(&none), None);
    }

    #[test]
    fn a_file_of_several_workers_keeps_each_apart_and_its_endings_in_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("workers.status");
        let worker = |key: &str| StatusFile {
            path: path.clone(),
            key: key.to_string(),
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open");
        let (a, a1) = (worker("a-attempt-1.0"), worker("a-attempt-1.1"));
        a.record(&file, "pid 10 100");
        a1.record(&file, "pid 11 110");
        a1.record(&file, "signal 9");
        a.record(&file, "code 3");
        assert_eq!(read_pid(&a), Some((10, 100)));
        assert_eq!(read_pid(&a1), Some((11, 110)));
        assert_eq!(read_status(&a), Some(Exit::Code(3)));
        assert_eq!(read_status(&a1), Some(Exit::Signal(9)));
        assert_eq!(read_status(&worker("a-attempt-1.2")), None);
        assert_eq!(keys(&path), vec!["a-attempt-1.0", "a-attempt-1.1"]);
        assert_eq!(
            endings(&path),
            vec![
                ("a-attempt-1.1".to_string(), Exit::Signal(9)),
                ("a-attempt-1.0".to_string(), Exit::Code(3)),
            ]
        );
    }

    /// A script in `dir` called `name` that says `says`.
    fn script(dir: &Path, name: &str, says: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let file = dir.join(name);
        std::fs::write(&file, format!("#!/bin/sh\necho {says}\n")).expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        file
    }

    fn request(dir: &Path, argv: &[&str], path: &str) -> Request {
        Request {
            id: 1,
            spec: ProcSpec {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                env: vec![("PATH".into(), path.into())],
                cwd: dir.to_path_buf(),
                log: dir.join("0.log"),
            },
            status: StatusFile {
                path: dir.join("workers.status"),
                key: "w.0".into(),
            },
        }
    }

    /// A temporary directory with two directories `a` and `b` in it, and the PATH `a:b`.
    fn two_path_dirs() -> (tempfile::TempDir, PathBuf, PathBuf, String) {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).expect("a");
        std::fs::create_dir_all(&b).expect("b");
        let path = format!("{}:{}", a.display(), b.display());
        (dir, a, b, path)
    }

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        let (dir, a, b, path) = two_path_dirs();
        // not executable in a: skipped for the one in b
        std::fs::write(a.join("prog"), "").expect("write");
        let in_b = script(&b, "prog", "b");
        let mut programs = Programs::default();
        let spec = |argv: &[&str], path: &str| request(dir.path(), argv, path).spec;
        assert_eq!(programs.find(&spec(&["prog", "x"], &path)), Some(in_b));
        // a name with a slash is not searched; nor is a PATH with a relative directory first
        assert_eq!(programs.find(&spec(&["./prog"], &path)), None);
        let relative = format!("bin:{}", b.display());
        assert_eq!(programs.find(&spec(&["prog"], &relative)), None);
        // nothing found: the start fails as it would have
        assert_eq!(programs.find(&spec(&["no-such-prog"], &path)), None);
        // each PATH has its own answers
        let in_a = script(&a, "prog", "a");
        assert_eq!(
            programs.find(&spec(&["prog"], &a.display().to_string())),
            Some(in_a)
        );
    }

    #[test]
    fn a_program_found_before_and_gone_since_is_searched_again() {
        let (dir, a, b, path) = two_path_dirs();
        let in_a = script(&a, "prog", "from-a");
        script(&b, "prog", "from-b");
        let mut programs = Programs::default();
        let run = |programs: &mut Programs| {
            let request = request(dir.path(), &["prog"], &path);
            let (mut child, _) =
                start_worker(&request, programs, &mut StatusFiles::default()).expect("start");
            assert!(child.wait().expect("wait").success());
        };
        run(&mut programs);
        std::fs::remove_file(&in_a).expect("rm");
        run(&mut programs);
        let log = std::fs::read_to_string(dir.path().join("0.log")).expect("log");
        assert_eq!(log, "from-a\nfrom-b\n");
    }
}
