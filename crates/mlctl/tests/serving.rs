//! InferenceServices on this machine, through the CLI: replicas behind the load balancer,
//! probes, the autoscaler scaling up under load and down after it, a killed replica replaced,
//! all measured with real HTTP requests from client threads.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use support::{Env, Load, free_port, http, wait_until};

/// `GET path`: the status and the body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http(port, "GET", path, "")
}

/// Client threads asking `/predict`, each answer tagged with the pid of the replica.
fn predictions(port: u16, clients: usize, pause: Duration) -> Load {
    Load::start(clients, pause, move || match get(port, "/predict") {
        Ok((200, body)) => serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["pid"].as_u64())
            .map(|pid| pid.to_string())
            .ok_or(body),
        other => Err(format!("{other:?}")),
    })
}

/// A replica: a plain HTTP server (Python's standard library) answering with its pid; its
/// liveness probe fails once a file `sick-PID` exists in the directory given as argument.
const SERVER: &str = r#"
import http.server, json, os, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # the head and the body are two writes: with Nagle's algorithm the body waits for the
    # delayed ACK of the head on a kept-alive connection, 40 ms per request
    disable_nagle_algorithm = True
    def do_GET(self):
        if self.path == "/live" and os.path.exists(os.path.join(sys.argv[2], f"sick-{os.getpid()}")):
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"pid": os.getpid(), "model": os.environ.get("MLCTL_MODEL", "")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

fn service(env: &Env, port: u16, extra: &str) {
    std::fs::write(env.dir.path().join("server.py"), SERVER).expect("server.py");
    env.spec(
        "service.yaml",
        &format!(
            "apiVersion: mlctl.dev/v1alpha1
kind: InferenceService
metadata: {{name: echo}}
spec:
  server:
    run: [python3, server.py, \"{{{{port}}}}\", {dir}]
  port: {port}
  resources: {{cpu: 100m, memory: 64Mi}}
  probes:
    readiness: {{path: /ready, period: 1s}}
    liveness: {{path: /live, period: 1s}}
{extra}",
            dir = env.dir.path().display()
        ),
    );
}

/// The service's stored state, from `mlctl get services -o json`.
fn status(env: &Env) -> Value {
    env.running_service()
        .map(|s| s["status"].clone())
        .unwrap_or(Value::Null)
}

fn ready_of(env: &Env, ready: u64, desired: u64) -> bool {
    let s = status(env);
    s["ready"] == ready && s["desired"] == desired && s["replicas"] == desired
}

#[test]
fn replicas_are_balanced_autoscaled_and_replaced_without_failed_requests() {
    let env = Env::new();
    let port = free_port();
    service(
        &env,
        port,
        "  replicas: {min: 1, max: 3}
  autoscale:
    requestsPerSecond: 20
    behavior:
      scaleDown: {stabilizationWindow: 0s}
",
    );
    let mut run = env.spawn_run(&["-f", "service.yaml", "--autoscale-interval", "1s"]);
    wait_until("one ready replica", Duration::from_secs(30), || {
        ready_of(&env, 1, 1)
    });
    let url = status(&env)["url"].clone();
    assert_eq!(url, format!("http://127.0.0.1:{port}"));

    // about 4 x 50 = 200 requests per second against a target of 20 per replica: scale up
    let load = predictions(port, 4, Duration::from_millis(20));
    wait_until("three ready replicas", Duration::from_secs(60), || {
        ready_of(&env, 3, 3)
    });
    // the new replicas get requests too
    wait_until("requests on every replica", Duration::from_secs(10), || {
        load.seen().len() == 3
    });

    // a replica fails its liveness probe: it is drained and restarted while the load goes on
    let sick = load.seen().first().cloned().expect("a pid");
    std::fs::write(env.dir.path().join(format!("sick-{sick}")), "").expect("sick file");
    wait_until(
        "the sick replica restarted",
        Duration::from_secs(60),
        || ready_of(&env, 3, 3) && load.seen().len() == 4,
    );
    // a few thousand requests in all
    wait_until("2,000 answers", Duration::from_secs(60), || {
        let failed = load.failures();
        assert!(failed.is_empty(), "failed requests: {failed:?}");
        load.ok.load(Ordering::Relaxed) >= 2000
    });
    let (_, failed, _) = load.finish();
    assert!(
        failed.is_empty(),
        "failed requests while scaling up and restarting: {failed:?}"
    );

    // a trickle, well under the target: back to one replica, draining the others
    let load = predictions(port, 1, Duration::from_millis(200));
    wait_until("one replica again", Duration::from_secs(60), || {
        ready_of(&env, 1, 1)
    });
    let (_, failed, _) = load.finish();
    assert!(
        failed.is_empty(),
        "failed requests while scaling down: {failed:?}"
    );

    // a replica killed: another replica replaces it (the run's retry), traffic resumes
    let (_, body) = get(port, "/predict").expect("a request");
    let pid: i32 = serde_json::from_str::<Value>(&body).unwrap()["pid"]
        .as_i64()
        .unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the replica");
    wait_until("the replica replaced", Duration::from_secs(30), || {
        ready_of(&env, 1, 1)
            && get(port, "/predict").is_ok_and(|(code, body)| {
                code == 200 && !body.contains(&format!("\"pid\": {pid},"))
            })
    });

    // cancel: the run ends, the port is free again
    let run_id = env.json(&["get", "services"])[0]["run"]
        .as_str()
        .unwrap()
        .to_string();
    env.cancel(&run_id);
    let status = run.wait().expect("mlctl run ends");
    assert_eq!(status.code(), Some(1), "a cancelled run is not a success");
    assert!(get(port, "/predict").is_err(), "the balancer still listens");
    let description = env.describe(&run_id);
    for reason in ["ScaledUp", "ScaledDown", "Ready", "Unhealthy"] {
        assert!(description.contains(reason), "{reason} in {description}");
    }
    // probes read their answers to the end: a probe that hangs up early resets the
    // connection, and http.server logs a ConnectionResetError for each one
    let logs = env.mlctl().args(["logs", &run_id]).output().expect("logs");
    let logs = support::text(&logs);
    assert!(!logs.contains("Traceback"), "{logs}");
}

#[test]
fn a_canary_gets_its_weight_of_the_requests() {
    // two versions told apart by their inputs: mlctl-serve's fixtures mlp.onnx ("input") and
    // fixed.onnx ("x"), served by the built-in server under one name
    let env = Env::new();
    let fixtures = support::repo().join("crates/mlctl-serve/tests/fixtures");
    std::fs::create_dir(env.dir.path().join("models")).expect("mkdir");
    for (from, to) in [("mlp.onnx", "v1.onnx"), ("fixed.onnx", "v2.onnx")] {
        std::fs::copy(fixtures.join(from), env.dir.path().join("models").join(to)).expect("copy");
    }
    let port = free_port();
    env.spec(
        "service.yaml",
        &format!(
            "apiVersion: mlctl.dev/v1alpha1
kind: InferenceService
metadata: {{name: clf}}
spec:
  model: {{uri: models/v1.onnx, format: onnx}}
  canary:
    model: {{uri: models/v2.onnx, format: onnx}}
    weight: 25
  port: {port}
  resources: {{cpu: 100m, memory: 64Mi}}
"
        ),
    );
    let mut run = env.spawn_run(&["-f", "service.yaml"]);
    wait_until(
        "the main replica and the canary ready",
        Duration::from_secs(30),
        || {
            let s = status(&env);
            s["ready"] == 1 && s["canary"]["ready"] == true
        },
    );
    let s = status(&env);
    assert_eq!(s["canary"]["weight"], 25.0, "{s}");
    assert!(
        s["model"].as_str().unwrap().ends_with("models/v1.onnx"),
        "{s}"
    );
    assert!(
        s["canary"]["model"]
            .as_str()
            .unwrap()
            .ends_with("models/v2.onnx"),
        "{s}"
    );

    // count which version answers the model metadata request
    let (mut main, mut canary) = (0, 0);
    for _ in 0..400 {
        let (code, body) = get(port, "/v2/models/clf").expect("a request");
        assert_eq!(code, 200, "{body}");
        let meta: Value = serde_json::from_str(&body).expect("metadata");
        match meta["inputs"][0]["name"].as_str() {
            Some("input") => main += 1,
            Some("x") => canary += 1,
            _ => panic!("unexpected metadata {meta}"),
        }
    }
    // 25% of 400 is 100; a random split stays within +-40 (4.6 standard deviations)
    assert!(
        (60..=140).contains(&canary),
        "the canary got {canary} of 400 ({main} to the main model)"
    );

    let run_id = env.json(&["get", "services"])[0]["run"]
        .as_str()
        .unwrap()
        .to_string();
    env.cancel(&run_id);
    run.wait().expect("mlctl run ends");
}

#[test]
fn a_deploy_step_fails_with_the_reason_when_the_service_port_is_taken() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    service(&env, port, "");
    std::fs::write(env.dir.path().join("model.bin"), "weights").expect("model");
    env.spec(
        "pipeline.yaml",
        "apiVersion: mlctl.dev/v1alpha1
kind: Pipeline
metadata: {name: ship}
spec:
  steps:
    deploy:
      deploy: {service: echo, model: model.bin}
",
    );
    let out = env.run(&["-f", "."]);
    assert_eq!(out.status.code(), Some(1), "{}", support::text(&out));
    let text = support::text(&out);
    assert!(
        text.contains("error: InferenceService echo (run echo-")
            && text.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{text}"
    );
}
