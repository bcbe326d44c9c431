//! The server for real: bound on a loopback port, the model loaded by the server itself,
//! requests sent by an HTTP client. Every route, every error, batching, back-pressure,
//! loading, a failed load, the admin port and draining on shutdown.

#![cfg(feature = "onnx")]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use mlctl_serve::{
    BatchConfig, Model, Phase, RunError, ServeError, Server, ServerConfig, ServerState, Settings,
    Signature, Tensor, router,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use common::{Answer, assert_close, binary_body, check, expected, fixture, flat_rows, floats};

const DEADLINE: Duration = Duration::from_secs(20);

struct Running {
    base: String,
    admin: Option<String>,
    state: Arc<ServerState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
    client: reqwest::Client,
}

async fn start(model: PathBuf, settings: Settings, admin_port: Option<u16>) -> Running {
    let server = Server::bind(ServerConfig {
        model_path: model,
        settings,
        address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        admin_port,
        drain_timeout: Duration::from_secs(10),
    })
    .await
    .expect("binds");
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let admin = server.admin_addr().map(|a| format!("http://{a}"));
    let state = server.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        base: format!("http://{addr}"),
        admin,
        state,
        stop: Some(stop),
        task,
        client: reqwest::Client::new(),
    }
}

async fn start_ready(file: &str, name: &str, settings: impl FnOnce(&mut Settings)) -> Running {
    let mut s = Settings::new(name);
    settings(&mut s);
    let running = start(fixture(file), s, None).await;
    wait_phase(&running.state, |p| *p == Phase::Ready).await;
    running
}

async fn wait_phase(state: &ServerState, want: impl Fn(&Phase) -> bool) -> Phase {
    let mut rx = state.watch_phase();
    tokio::time::timeout(DEADLINE, rx.wait_for(|p| want(p)))
        .await
        .expect("phase reached before the deadline")
        .expect("state alive")
        .clone()
}

/// Waits, with a deadline, until `probe` holds: for gauges that change when a request
/// reaches a given point.
async fn wait_until(what: &str, probe: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !probe() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

impl Running {
    /// POSTs an inference request in the binary tensor extension: the JSON header, then the
    /// tensors' bytes.
    async fn infer_binary(&self, path: &str, header: &Value, blob: &[u8]) -> Answer {
        let (body, len) = binary_body(header, blob);
        self.send(
            "POST",
            path,
            &[("Inference-Header-Content-Length", len.to_string())],
            body,
        )
        .await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Answer {
        send(
            &self.client,
            &format!("{}{path}", self.base),
            method,
            headers,
            body,
        )
        .await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[], Vec::new()).await
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send("POST", path, &[], body.to_string().into_bytes())
            .await
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("stops before the deadline")
            .expect("task")
            .expect("serves without error");
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    method: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url).body(body);
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.bytes().await.expect("body").to_vec();
    Answer::new(status, &headers, body)
}

fn one_row(row: &[f32]) -> Value {
    json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 16], "data": row}]})
}

fn metric(state: &ServerState, line_start: &str) -> f64 {
    let text = state.metrics().encode();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_start)
                .map(|v| v.trim().parse::<f64>().expect("number"))
        })
        .unwrap_or_else(|| panic!("no {line_start} in {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_over_http() {
    let server = start_ready("mlp.onnx", "mlp", |_| {}).await;
    let e = expected();
    for (path, want) in [
        ("/v2/health/live", json!({"live": true})),
        ("/v2/health/ready", json!({"ready": true})),
        (
            "/v2/models/mlp/ready",
            json!({"name": "mlp", "ready": true}),
        ),
        (
            "/v2/models/mlp/versions/1/ready",
            json!({"name": "mlp", "ready": true}),
        ),
    ] {
        let answer = server.get(path).await;
        assert_eq!((answer.status, answer.json()), (200, want), "{path}");
        assert_eq!(
            answer.content_type.as_deref(),
            Some("application/json"),
            "{path}"
        );
    }
    let meta = server.get("/v2").await.json();
    assert_eq!(meta["name"], "mlctl");
    assert_eq!(meta["version"], env!("CARGO_PKG_VERSION"));
    let model_meta = json!({
        "name": "mlp", "versions": ["1"], "platform": "tract_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 16]}],
        "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 2]}],
    });
    assert_eq!(server.get("/v2/models/mlp").await.json(), model_meta);
    assert_eq!(
        server.get("/v2/models/mlp/versions/1").await.json(),
        model_meta
    );
    let request = json!({"id": "abc", "inputs": [{"name": "input", "datatype": "FP32", "shape": [e.rows, 16], "data": e.input}]});
    for path in ["/v2/models/mlp/infer", "/v2/models/mlp/versions/1/infer"] {
        let answer = server.post(path, &request).await;
        assert_eq!(
            answer.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        let json = answer.json();
        assert_eq!(json["id"], "abc");
        assert_eq!(json["outputs"][0]["shape"], json!([e.rows, 2]));
        assert_close(&floats(&json["outputs"][0]["data"]), &e.output);
    }
    for path in ["/v1/models/mlp", "/v1/models/mlp/versions/1"] {
        let answer = server.get(path).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(
            answer.json(),
            json!({"name": "mlp", "ready": true, "model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]})
        );
    }
    let rows: Vec<&[f32]> = e.input.chunks(16).collect();
    for path in [
        "/v1/models/mlp:predict",
        "/v1/models/mlp/versions/1:predict",
    ] {
        let answer = server.post(path, &json!({"instances": rows})).await;
        assert_eq!(answer.status, 200, "{path}");
        assert_close(&flat_rows(&answer.json()["predictions"]), &e.output);
    }
    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body).expect("utf8");
    assert!(
        text.contains("model_requests_total{model=\"mlp\",code=\"200\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("model_inference_duration_seconds_bucket{le=\"+Inf\",model=\"mlp\"} 4"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_over_http() {
    for (file, name, cases) in [
        ("mlp.onnx", "mlp", common::mlp_error_cases()),
        ("multi.onnx", "multi", common::multi_error_cases()),
    ] {
        let server = start_ready(file, name, |_| {}).await;
        for case in cases {
            let answer = server
                .send(case.method, &case.path, &case.headers, case.body.clone())
                .await;
            check(&case, &answer);
        }
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_tensor_data_in_and_out() {
    let server = start_ready("mlp.onnx", "mlp", |_| {}).await;
    let e = expected();
    let blob: Vec<u8> = e.input.iter().flat_map(|x| x.to_le_bytes()).collect();
    let header = json!({
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [e.rows, 16], "parameters": {"binary_data_size": blob.len()}}],
        "parameters": {"binary_data_output": true},
    });
    let answer = server
        .infer_binary("/v2/models/mlp/infer", &header, &blob)
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(
        answer.content_type.as_deref(),
        Some("application/octet-stream")
    );
    let json_len: usize = answer
        .header_length
        .as_deref()
        .expect("header length")
        .parse()
        .expect("number");
    let head: Value = serde_json::from_slice(&answer.body[..json_len]).expect("json header");
    let size = head["outputs"][0]["parameters"]["binary_data_size"]
        .as_u64()
        .expect("size") as usize;
    assert_eq!(size, e.rows * 2 * 4);
    assert!(head["outputs"][0].get("data").is_none(), "{head}");
    let out: Vec<f32> = answer.body[json_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_close(&out, &e.output);
    // Binary in, JSON out when the output asks for it.
    let header = json!({
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [e.rows, 16], "parameters": {"binary_data_size": blob.len()}}],
        "outputs": [{"name": "output", "parameters": {"binary_data": false}}],
        "parameters": {"binary_data_output": true},
    });
    let answer = server
        .infer_binary("/v2/models/mlp/infer", &header, &blob)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header_length, None);
    assert_close(&floats(&answer.json()["outputs"][0]["data"]), &e.output);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_batched_and_split_back() {
    let e = expected();
    let server = start_ready("mlp.onnx", "mlp", |s| {
        s.batch = BatchConfig {
            max_batch_size: e.rows,
            // Long enough that the batch closes because it is full, not because time ran out.
            max_delay: Duration::from_secs(10),
            max_concurrency: 1,
            max_queue: 16,
        };
    })
    .await;
    let server = Arc::new(server);
    let mut tasks = Vec::new();
    for row in 0..e.rows {
        let server = server.clone();
        let input = e.input[row * 16..(row + 1) * 16].to_vec();
        tasks.push(tokio::spawn(async move {
            server.post("/v2/models/mlp/infer", &one_row(&input)).await
        }));
    }
    for (row, task) in tasks.into_iter().enumerate() {
        let answer = task.await.expect("task");
        answer.ok();
        assert_eq!(answer.json()["outputs"][0]["shape"], json!([1, 2]));
        assert_close(
            &floats(&answer.json()["outputs"][0]["data"]),
            &e.output[row * 2..(row + 1) * 2],
        );
    }
    assert_eq!(
        metric(&server.state, "model_batch_size_count{model=\"mlp\"}"),
        1.0
    );
    assert_eq!(
        metric(&server.state, "model_batch_size_sum{model=\"mlp\"}"),
        e.rows as f64
    );
    Arc::into_inner(server)
        .expect("sole owner")
        .shutdown()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_does_not_fit_starts_the_next_batch() {
    let e = expected();
    let server = start_ready("mlp.onnx", "mlp", |s| {
        s.batch = BatchConfig {
            max_batch_size: 3,
            max_delay: Duration::from_millis(300),
            max_concurrency: 1,
            max_queue: 16,
        };
    })
    .await;
    let two = |start: usize| json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 16], "data": e.input[start * 16..(start + 2) * 16]}]});
    let (first, second) = (two(0), two(2));
    let (a, b) = tokio::join!(
        server.post("/v2/models/mlp/infer", &first),
        server.post("/v2/models/mlp/infer", &second)
    );
    assert_close(&floats(&a.json()["outputs"][0]["data"]), &e.output[0..4]);
    assert_close(&floats(&b.json()["outputs"][0]["data"]), &e.output[4..8]);
    assert_eq!(
        metric(&server.state, "model_batch_size_count{model=\"mlp\"}"),
        2.0
    );
    assert_eq!(
        metric(&server.state, "model_batch_size_sum{model=\"mlp\"}"),
        4.0
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_without_a_batch_axis_run_each_request_alone() {
    let server = start_ready("fixed.onnx", "fixed", |s| {
        s.batch.max_delay = Duration::from_millis(200);
        s.batch.max_concurrency = 1;
    })
    .await;
    let request = json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 3], "data": [[-1, 2, -3], [4, -5, 6]]}]});
    let (a, b) = tokio::join!(
        server.post("/v2/models/fixed/infer", &request),
        server.post("/v2/models/fixed/infer", &request)
    );
    for answer in [a, b] {
        assert_eq!(
            answer.json()["outputs"][0]["data"],
            json!([0.0, 2.0, 0.0, 4.0, 0.0, 6.0])
        );
    }
    assert_eq!(
        metric(&server.state, "model_batch_size_count{model=\"fixed\"}"),
        2.0
    );
    let wrong =
        json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]});
    let answer = server.post("/v2/models/fixed/infer", &wrong).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["error"],
        "input \"x\" has shape [1, 3], but the model takes [2, 3]"
    );
    server.shutdown().await;
}

/// Serves `router(state)` on a loopback port (for states given a model by the test); returns
/// the model's infer URL and the serving task.
async fn serve_router(state: &Arc<ServerState>) -> (String, JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let url = format!(
        "http://{}/v2/models/mlp/infer",
        listener.local_addr().expect("addr")
    );
    let app = router(state.clone());
    (
        url,
        tokio::spawn(async move { axum::serve(listener, app).await }),
    )
}

/// The real MLP, held at a gate before each run so the test decides when runs finish.
struct Gated {
    inner: Arc<dyn Model>,
    open: Arc<(Mutex<bool>, Condvar)>,
    entered: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Model for Gated {
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RunError> {
        let _ = self.entered.send(());
        let (lock, cvar) = &*self.open;
        let mut open = lock.lock().expect("lock");
        while !*open {
            open = cvar.wait(open).expect("wait");
        }
        drop(open);
        self.inner.run(inputs)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    let mut settings = Settings::new("mlp");
    settings.batch = BatchConfig {
        max_batch_size: 1,
        max_delay: Duration::ZERO,
        max_concurrency: 1,
        max_queue: 1,
    };
    let state = ServerState::new(settings);
    let open = Arc::new((Mutex::new(false), Condvar::new()));
    let (entered, mut running) = tokio::sync::mpsc::unbounded_channel();
    state.set_model(Arc::new(Gated {
        inner: mlctl_serve::load(&fixture("mlp.onnx")).expect("loads"),
        open: open.clone(),
        entered,
    }));
    let (url, serving) = serve_router(&state).await;
    let client = reqwest::Client::new();
    let e = expected();
    let body = one_row(&e.input[..16]).to_string().into_bytes();
    let post = |client: reqwest::Client, url: String, body: Vec<u8>| async move {
        send(&client, &url, "POST", &[], body).await
    };

    // A runs (and waits at the gate), B waits in the queue, C finds the queue full.
    let a = tokio::spawn(post(client.clone(), url.clone(), body.clone()));
    tokio::time::timeout(DEADLINE, running.recv())
        .await
        .expect("A reaches the model");
    let b = tokio::spawn(post(client.clone(), url.clone(), body.clone()));
    wait_until("B to be queued", || state.metrics().queue_depth.get() == 1).await;
    let c = post(client.clone(), url.clone(), body.clone()).await;
    assert_eq!(c.status, 429, "{}", String::from_utf8_lossy(&c.body));
    assert_eq!(c.retry_after.as_deref(), Some("1"));
    assert_eq!(
        c.json(),
        json!({"error": "the server is at capacity: 1 requests are already waiting"})
    );

    {
        let (lock, cvar) = &*open;
        *lock.lock().expect("lock") = true;
        cvar.notify_all();
    }
    for task in [a, b] {
        let answer = tokio::time::timeout(DEADLINE, task)
            .await
            .expect("answered")
            .expect("task");
        assert_eq!(answer.status, 200);
        assert_close(
            &floats(&answer.json()["outputs"][0]["data"]),
            &e.output[..2],
        );
    }
    let text = state.metrics().encode();
    assert!(
        text.contains("model_requests_total{model=\"mlp\",code=\"429\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("model_requests_total{model=\"mlp\",code=\"200\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("model_queue_depth{model=\"mlp\"} 0"),
        "{text}"
    );
    serving.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_loading_then_ready() {
    // The model file is a pipe: loading blocks until the test writes the model into it.
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("model.onnx");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let server = start(fifo.clone(), Settings::new("mlp"), None).await;
    assert_eq!(server.state.phase(), Phase::Loading);
    let ready = server.get("/v2/health/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["error"], "model \"mlp\" is loading");
    assert_eq!(server.get("/v2/models/mlp/ready").await.status, 503);
    assert_eq!(server.get("/v2/health/live").await.status, 200);
    let e = expected();
    assert_eq!(
        server
            .post("/v2/models/mlp/infer", &one_row(&e.input[..16]))
            .await
            .status,
        503
    );

    let bytes = std::fs::read(fixture("mlp.onnx")).expect("fixture");
    let writer = std::thread::spawn(move || std::fs::write(&fifo, bytes));
    wait_phase(&server.state, |p| *p == Phase::Ready).await;
    writer.join().expect("writer").expect("write");
    assert_eq!(server.get("/v2/health/ready").await.status, 200);
    let answer = server
        .post("/v2/models/mlp/infer", &one_row(&e.input[..16]))
        .await;
    assert_close(
        &floats(&answer.json()["outputs"][0]["data"]),
        &e.output[..2],
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_fails_to_load_keeps_the_server_up_and_says_why() {
    let server = start(fixture("broken.onnx"), Settings::new("broken"), None).await;
    let phase = wait_phase(&server.state, |p| matches!(p, Phase::Failed(_))).await;
    let Phase::Failed(reason) = phase else {
        unreachable!()
    };
    assert!(reason.contains("ghost"), "{reason}");
    assert_eq!(server.get("/v2/health/live").await.status, 200);
    let ready = server.get("/v2/health/ready").await;
    assert_eq!(ready.status, 503);
    let error = ready.json()["error"].as_str().expect("error").to_owned();
    assert!(
        error.starts_with("model \"broken\" failed to load: failed to load ONNX model"),
        "{error}"
    );
    assert!(error.contains("ghost"), "{error}");
    let model_ready = server.get("/v2/models/broken/ready").await;
    assert_eq!(model_ready.status, 503);
    assert_eq!(server.get("/v2/models/broken").await.status, 503);
    let infer = server
        .post("/v2/models/broken/infer", &json!({"inputs": []}))
        .await;
    assert_eq!(
        (
            infer.status,
            infer.json()["error"].as_str().map(|e| e.contains("ghost"))
        ),
        (503, Some(true))
    );
    let status = server.get("/v1/models/broken").await.json();
    assert_eq!(status["model_version_status"][0]["state"], "END");
    assert!(
        status["model_version_status"][0]["status"]["error_message"]
            .as_str()
            .expect("message")
            .contains("ghost")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_serves_metrics_and_health_only() {
    let running = start(fixture("mlp.onnx"), Settings::new("mlp"), Some(0)).await;
    wait_phase(&running.state, |p| *p == Phase::Ready).await;
    let admin = running.admin.clone().expect("admin port");
    assert_ne!(admin, running.base);
    let metrics = send(
        &running.client,
        &format!("{admin}/metrics"),
        "GET",
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(metrics.status, 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("model_ready{model=\"mlp\"} 1"));
    let ready = send(
        &running.client,
        &format!("{admin}/v2/health/ready"),
        "GET",
        &[],
        Vec::new(),
    )
    .await;
    assert_eq!(ready.status, 200);
    let infer = send(
        &running.client,
        &format!("{admin}/v2/models/mlp/infer"),
        "POST",
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(infer.status, 404);
    assert!(
        infer.json()["error"]
            .as_str()
            .expect("error")
            .starts_with("no route for POST")
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight_and_then_stops() {
    let e = expected();
    let mut running = start_ready("mlp.onnx", "mlp", |s| {
        // A lone request waits this long for company: it is in flight when shutdown starts.
        s.batch.max_batch_size = 2;
        s.batch.max_delay = Duration::from_millis(800);
    })
    .await;
    let client = running.client.clone();
    let url = format!("{}/v2/models/mlp/infer", running.base);
    let body = one_row(&e.input[..16]).to_string().into_bytes();
    let in_flight = tokio::spawn(async move { send(&client, &url, "POST", &[], body).await });
    let state = running.state.clone();
    wait_until("the request to be in flight", || {
        state.metrics().inflight.get() == 1
    })
    .await;
    let _ = running.stop.take().expect("stop").send(());
    wait_phase(&running.state, |p| *p == Phase::Draining).await;
    let answer = tokio::time::timeout(DEADLINE, in_flight)
        .await
        .expect("answered")
        .expect("task");
    assert_eq!(answer.status, 200);
    assert_close(
        &floats(&answer.json()["outputs"][0]["data"]),
        &e.output[..2],
    );
    let base = running.base.clone();
    running.shutdown().await;
    let after = reqwest::Client::new()
        .get(format!("{base}/v2/health/live"))
        .send()
        .await;
    assert!(after.is_err(), "the listener is closed after shutdown");
}

/// The real MLP, except that it panics on an input whose first element is 999.
struct PanicsOn999(Arc<dyn Model>);

impl Model for PanicsOn999 {
    fn signature(&self) -> &Signature {
        self.0.signature()
    }

    fn run(&self, inputs: Vec<Tensor>) -> Result<Vec<Tensor>, RunError> {
        if inputs[0].data == mlctl_serve::TensorData::F32(vec![999.0; 16]) {
            panic!("the model fell over");
        }
        self.0.run(inputs)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_model_fails_its_requests_and_the_server_goes_on() {
    let state = ServerState::new(Settings::new("mlp"));
    state.set_model(Arc::new(PanicsOn999(
        mlctl_serve::load(&fixture("mlp.onnx")).expect("loads"),
    )));
    let (url, serving) = serve_router(&state).await;
    let client = reqwest::Client::new();
    let e = expected();
    let good = one_row(&e.input[..16]).to_string().into_bytes();
    let bad = one_row(&[999.0; 16]).to_string().into_bytes();
    // Many cheap runs first, so that later runs are made on the batching task itself: a panic
    // there must not stop it.
    for body in std::iter::repeat_n(&good, 20).chain([&bad, &good, &bad, &good]) {
        let answer = send(&client, &url, "POST", &[], body.clone()).await;
        if body == &bad {
            assert_eq!(answer.status, 500);
            assert_eq!(
                answer.json()["error"],
                "model run failed: the model run stopped without a result"
            );
        } else {
            assert_close(&floats(&answer.ok()["outputs"][0]["data"]), &e.output[..2]);
        }
    }
    serving.abort();
}
