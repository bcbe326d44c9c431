//! The quickstart as a new user runs it: `mlctl run -f examples/quickstart/` trains, evaluates
//! and deploys; the served model answers real Open Inference Protocol clients through the load
//! balancer with what the ONNX file computes; a rerun with other parameters rolls the new model
//! out under load without a failed request; `mlctl cancel` stops the service.

#![cfg(feature = "onnx")]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use support::{Env, Load, free_port, http, repo, text, wait_until};

/// The running service's row of `mlctl get services -o json`.
fn service(env: &Env) -> Value {
    env.running_service().expect("a running service")
}

/// Cancels the service's run when the test ends, passed or failed: the service outlives
/// `mlctl run`.
struct CancelOnDrop<'a>(&'a Env, String);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.mlctl().args(["cancel", &self.1]).output();
    }
}

fn run_quickstart(env: &Env, args: &[&str]) {
    let out = env.run(&[&["-f", "quickstart"], args].concat());
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_quickstart_trains_deploys_serves_and_rolls_out_a_retrained_model() {
    let env = Env::new();
    // the example as it is in the repository, on a free port instead of 8080
    let dir = env.dir.path().join("quickstart");
    std::fs::create_dir(&dir).expect("mkdir");
    let port = free_port();
    for entry in std::fs::read_dir(repo().join("examples/quickstart")).expect("example") {
        let path = entry.expect("entry").path();
        let mut content = std::fs::read_to_string(&path).expect("read");
        if path.extension().is_some_and(|e| e == "yaml") {
            assert!(content.contains("port: 8080"), "{}", path.display());
            content = content.replace("port: 8080", &format!("port: {port}"));
        }
        std::fs::write(dir.join(path.file_name().expect("name")), content).expect("write");
    }

    run_quickstart(&env, &[]);
    let first = service(&env);
    let run = first["run"].as_str().expect("run id").to_string();
    let _cancel = CancelOnDrop(&env, run.clone());
    let status = &first["status"];
    assert_eq!(status["url"], format!("http://127.0.0.1:{port}"));
    assert!(status["ready"].as_u64() >= Some(1), "{first}");
    let model = status["model"].as_str().expect("model").to_string();
    assert!(Path::new(&model).is_file(), "{model}");

    // the real clients ask the service, and check its answers against the model file
    let ask = |model: &str| {
        let out = Command::new("python3")
            .arg(repo().join("crates/mlctl/tests/quickstart/client.py"))
            .arg(format!("127.0.0.1:{port}"))
            .arg(model)
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "{}", text(&out));
    };
    ask(&model);

    // retrain with more epochs while clients keep asking: the new model replaces the old one
    // replica by replica, and no request fails
    let body = format!(
        r#"{{"inputs":[{{"name":"input","shape":[1,8],"datatype":"FP32","data":[{}]}}]}}"#,
        ["0.5"; 8].join(",")
    );
    let load = Load::start(2, Duration::from_millis(10), move || {
        match http(port, "POST", "/v2/models/quickstart/infer", &body) {
            Ok((200, answer)) if answer.contains("probabilities") => Ok(String::new()),
            other => Err(format!("{other:?}")),
        }
    });
    run_quickstart(&env, &["-p", "epochs=30"]);
    let answered_during_rerun = load.ok.load(Ordering::Relaxed);
    let (_, failed, _) = load.finish();
    assert!(
        failed.is_empty(),
        "failed requests during the rollout: {failed:?}"
    );
    assert!(answered_during_rerun > 0);
    let second = service(&env);
    assert_eq!(second["run"], first["run"], "the same service was updated");
    let retrained = second["status"]["model"].as_str().expect("model");
    assert_ne!(retrained, model, "the retrained model is served");
    ask(retrained);

    // the service runs until cancelled
    env.cancel(&run);
    wait_until("the service stopped", Duration::from_secs(30), || {
        http(port, "GET", "/v2/health/ready", "").is_err()
    });
}
