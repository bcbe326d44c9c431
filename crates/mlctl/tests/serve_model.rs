//! `mlctl serve-model` as a process: the port line on stderr, real clients from PyPI
//! (tritonclient, the KServe SDK) checked against numpy, signals and exit codes.
//!
//! The Python scripts in `tests/serve_model/` need the packages of .ci/requirements.txt; a
//! missing package fails the test rather than skipping it.

#![cfg(feature = "onnx")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

const DEADLINE: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mlctl-serve/tests/fixtures")
        .join(name)
}

/// A running `mlctl serve-model`, killed when dropped.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    address: String,
}

impl Served {
    fn start(model: &Path, name: &str, extra: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mlctl"))
            .arg("serve-model")
            .arg("--model")
            .arg(model)
            .args(["--name", name, "--port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mlctl starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            lines,
            seen: Vec::new(),
            address: String::new(),
        };
        let line = served.wait_line(|l| l.starts_with("listening on "));
        // The documented, machine-readable form: `listening on http://127.0.0.1:PORT`.
        let address = line
            .strip_prefix("listening on http://")
            .expect("http URL")
            .to_owned();
        let port: u16 = address
            .strip_prefix("127.0.0.1:")
            .expect("loopback by default")
            .parse()
            .expect("a port number");
        assert_ne!(port, 0);
        served.address = address;
        served
    }

    /// Waits for a stderr line matching `want`, with a deadline.
    fn wait_line(&mut self, want: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|l| want(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("no such line on stderr ({e}); saw {:?}", self.seen),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("signal sent");
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "mlctl did not exit; stderr {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_client(script: &str, served: &Served, model: &Path, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/serve_model");
    let out = Command::new("python3")
        .arg(dir.join(script))
        .arg(&served.address)
        .arg(model)
        .arg(name)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{script} failed (pip install -r .ci/requirements.txt?):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tritonclient_gets_what_numpy_computes() {
    let model = fixture("mlp.onnx");
    let mut served = Served::start(&model, "mlp", &["--max-batch-delay", "2ms"]);
    served.wait_line(|l| l == "model mlp ready");
    run_client("triton_client.py", &served, &model, "mlp");
}

#[test]
fn the_kserve_sdk_gets_what_numpy_computes() {
    let model = fixture("mlp.onnx");
    let mut served = Served::start(&model, "mlp", &[]);
    served.wait_line(|l| l == "model mlp ready");
    run_client("kserve_client.py", &served, &model, "mlp");
}

#[test]
fn the_admin_port_is_printed_too() {
    let mut served = Served::start(&fixture("mlp.onnx"), "mlp", &["--admin-port", "0"]);
    let line = served.wait_line(|l| l.starts_with("admin listening on "));
    let admin = line
        .strip_prefix("admin listening on http://")
        .expect("url");
    assert_ne!(admin, served.address);
    assert!(admin.starts_with("127.0.0.1:"), "{admin}");
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_then_exits_0() {
    // A lone request waits up to a second for company: it is in flight when SIGTERM comes.
    let mut served = Served::start(
        &fixture("mlp.onnx"),
        "mlp",
        &["--max-batch-size", "2", "--max-batch-delay", "1s"],
    );
    served.wait_line(|l| l == "model mlp ready");
    let url = served.url("/v2/models/mlp/infer");
    let body = serde_json::json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "data": vec![0.25; 16]}]});
    let request = tokio::spawn(async move {
        let response = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("POST");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    });
    let metrics = served.url("/metrics");
    let deadline = Instant::now() + DEADLINE;
    while !get(&metrics)
        .await
        .1
        .contains("model_inflight_requests{model=\"mlp\"} 1")
    {
        assert!(Instant::now() < deadline, "the request never got in flight");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    served.signal(Signal::SIGTERM);
    served.wait_line(|l| l.starts_with("shutting down"));
    let (status, text) = request.await.expect("task");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"shape\":[1,2]"), "{text}");
    let exit = tokio::task::block_in_place(|| served.wait_exit());
    assert_eq!(exit.code(), Some(0));
}

#[test]
fn ctrl_c_exits_130() {
    let mut served = Served::start(&fixture("mlp.onnx"), "mlp", &[]);
    served.wait_line(|l| l == "model mlp ready");
    served.signal(Signal::SIGINT);
    assert_eq!(served.wait_exit().code(), Some(130));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_fails_to_load_leaves_the_server_up_and_not_ready() {
    let mut served = Served::start(&fixture("broken.onnx"), "broken", &[]);
    let line = served.wait_line(|l| l.starts_with("error: model broken failed to load: "));
    assert!(line.contains("ghost"), "{line}");
    assert_eq!(get(&served.url("/v2/health/live")).await.0, 200);
    let (status, body) = get(&served.url("/v2/health/ready")).await;
    assert_eq!(status, 503);
    assert!(body.contains("ghost"), "{body}");
    served.signal(Signal::SIGTERM);
    let exit = tokio::task::block_in_place(|| served.wait_exit());
    assert_eq!(exit.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_file_is_reported_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut served = Served::start(&dir.path().join("absent.onnx"), "absent", &[]);
    let line = served.wait_line(|l| l.starts_with("error: model absent failed to load: "));
    assert!(line.contains("failed to read model file"), "{line}");
    assert_eq!(get(&served.url("/v2/health/ready")).await.0, 503);
}

#[test]
fn a_busy_port_exits_5_with_a_hint() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_mlctl"))
        .args(["serve-model", "--name", "mlp", "--port", &port, "--model"])
        .arg(fixture("mlp.onnx"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("error: failed to listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: another process may be using the port"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    for bad in [
        ["--max-batch-size", "0"],
        ["--max-batch-delay", "soon"],
        ["--busy-poll", "fast"],
        ["--max-queue", "0"],
        ["--address", "localhost:80"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mlctl"))
            .args(["serve-model", "--name", "mlp", "--model", "m.onnx"])
            .args(bad)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("invalid value '{}'", bad[1])),
            "{stderr}"
        );
    }
}
