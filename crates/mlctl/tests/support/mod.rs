//! What the CLI integration tests share: running the built `mlctl` from the repository root,
//! and an isolated mlctl home and project directory to run it in.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use insta_cmd::get_cargo_bin;
use serde_json::Value;

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

pub struct Env {
    pub home: tempfile::TempDir,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            home: tempfile::tempdir().expect("home"),
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    pub fn mlctl(&self) -> Command {
        let mut cmd = Command::new(get_cargo_bin("mlctl"));
        cmd.env("MLCTL_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env_remove("MLCTL_GPUS")
            .current_dir(self.dir.path());
        cmd
    }

    pub fn spec(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).expect("write spec");
        path
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.mlctl()
            .arg("run")
            .args(args)
            .output()
            .expect("mlctl runs")
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self
            .mlctl()
            .args(args)
            .args(["-o", "json"])
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    pub fn job(&self, name: &str) -> Value {
        let jobs = self.json(&["get", "jobs"]);
        jobs.as_array()
            .expect("list")
            .iter()
            .find(|j| j["job"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no job {name} in {jobs}"))
    }

    pub fn describe(&self, run_prefix: &str) -> String {
        let out = self
            .mlctl()
            .args(["describe", "run", run_prefix])
            .output()
            .expect("describe");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The running InferenceService's row of `mlctl get services -o json`, if there is one.
    pub fn running_service(&self) -> Option<Value> {
        let services = self.json(&["get", "services"]);
        services
            .as_array()
            .and_then(|s| s.iter().find(|s| s["phase"] == "Running"))
            .cloned()
    }

    /// `mlctl cancel RUN`, which must succeed.
    pub fn cancel(&self, run: &str) {
        let out = self.mlctl().args(["cancel", run]).output().expect("cancel");
        assert!(out.status.success(), "{}", text(&out));
    }

    pub fn spawn_run(&self, args: &[&str]) -> Child {
        self.mlctl()
            .arg("run")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mlctl run")
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Waits for `ready`; how long it took goes to stderr, which the test harness shows when the
/// test fails, so a timeout shows which step was slow.
pub fn wait_until(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("{what}: {:.1?}", start.elapsed());
}

/// Reads the child's stdout until `n` lines contain `needle`.
pub fn wait_for_lines(child: &mut Child, needle: &str, n: usize) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.iter().filter(|l: &&String| l.contains(needle)).count() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("timed out waiting for {n} lines with {needle:?}: {seen:?}"),
        }
    }
    seen
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().chars().next()))
        .flatten()
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// A free loopback port (bound, then released for a service to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.1 request with `Connection: close` (a JSON body unless empty): the status and
/// the body of the answer.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    // one write, as HTTP clients send a small request: with several, Nagle's algorithm may
    // hold a piece until the server acknowledges the one before
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if !body.is_empty() {
        request += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    request += &format!("\r\n{body}");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Client threads sending one request after another until stopped. A request answers
/// `Ok(tag)` (the tags seen are collected, e.g. which replica answered) or `Err(what failed)`.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub ok: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<BTreeSet<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(
        clients: usize,
        pause: Duration,
        request: impl Fn() -> Result<String, String> + Send + Sync + 'static,
    ) -> Load {
        let request = Arc::new(request);
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let threads = (0..clients)
            .map(|_| {
                let (request, stop, ok, failed, seen) = (
                    request.clone(),
                    stop.clone(),
                    ok.clone(),
                    failed.clone(),
                    seen.clone(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match request() {
                            Ok(tag) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                seen.lock().expect("lock").insert(tag);
                            }
                            Err(what) => failed.lock().expect("lock").push(what),
                        }
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            seen,
            threads,
        }
    }

    /// The failures so far.
    pub fn failures(&self) -> Vec<String> {
        self.failed.lock().expect("lock").clone()
    }

    /// The tags seen so far.
    pub fn seen(&self) -> BTreeSet<String> {
        self.seen.lock().expect("lock").clone()
    }

    /// Stops the clients: (answered, failures, tags seen).
    pub fn finish(self) -> (u64, Vec<String>, BTreeSet<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("client thread");
        }
        let failed = self.failed.lock().expect("lock").clone();
        let seen = self.seen.lock().expect("lock").clone();
        (self.ok.load(Ordering::Relaxed), failed, seen)
    }
}
