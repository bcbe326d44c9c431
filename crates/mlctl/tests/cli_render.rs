//! Whole CLI runs of `mlctl render`: formats, `--out-dir`, parameters, flags, and the exit
//! codes of invalid input.

use std::path::PathBuf;
use std::process::Command;

use insta_cmd::get_cargo_bin;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn mlctl() -> Command {
    let mut cmd = Command::new(get_cargo_bin("mlctl"));
    cmd.current_dir(repo()).env("NO_COLOR", "1");
    cmd
}

#[test]
fn render_yaml_is_ready_for_kubectl_and_stable() {
    let run = || {
        mlctl()
            .args(["render", "-f", "examples/"])
            .output()
            .expect("runs")
    };
    let first = run();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let yaml = String::from_utf8(first.stdout.clone()).expect("utf-8");
    assert!(
        yaml.starts_with("apiVersion: v1\nkind: Namespace\n"),
        "{}",
        &yaml[..200]
    );
    assert!(yaml.contains("\n---\n"));
    assert_eq!(first.stdout, run().stdout, "a second run is byte-identical");
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains(
            "warning: InferenceService/quickstart: model model/model.onnx is a local path"
        ),
        "{stderr}"
    );
}

#[test]
fn render_json_list_with_backends_and_flags() {
    let out = mlctl()
        .args([
            "render",
            "-f",
            "examples/quickstart/",
            "-o",
            "json",
            "-n",
            "team-a",
            "--kube-version",
            "1.36",
            "--serving",
            "kserve",
            "--server-image",
            "registry.example/mlctl:dev",
            "-p",
            "epochs=5",
        ])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list["kind"], "List");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items[0]["kind"], "Namespace");
    assert_eq!(items[0]["metadata"]["name"], "team-a");
    assert!(
        items
            .iter()
            .all(|i| i["kind"] == "Namespace" || i["metadata"]["namespace"] == "team-a")
    );
    let wf = items
        .iter()
        .find(|i| i["kind"] == "Workflow")
        .expect("workflow");
    let epochs = wf["spec"]["arguments"]["parameters"]
        .as_array()
        .expect("params")
        .iter()
        .find(|p| p["name"] == "epochs")
        .expect("epochs");
    assert_eq!(epochs["value"], "5");
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "InferenceService"
                && i["apiVersion"] == "serving.kserve.io/v1beta1")
    );
    let gang = wf["spec"]["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["name"] == "train")
        .expect("hand-over template");
    assert_eq!(gang["container"]["image"], "registry.example/mlctl:dev");
}

#[test]
fn render_out_dir_writes_one_file_per_object_in_apply_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = mlctl()
        .args([
            "render",
            "-f",
            "examples/seed/02-distributed-training.yaml",
            "--out-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "00-namespace-ml-training.yaml",
            "01-ml-training-service-distributed-training.yaml",
            "02-ml-training-job-distributed-training.yaml",
        ]
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn invalid_spec_is_exit_3_with_findings_on_stderr() {
    let out = mlctl()
        .args([
            "render",
            "-f",
            "crates/mlctl-core/tests/fixtures/invalid/dag-cycle.yaml",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dag-cycle"), "{stderr}");
    assert!(stderr.contains("error: the spec is invalid"), "{stderr}");
}

#[test]
fn unknown_parameter_is_exit_3_and_bad_flag_exit_2() {
    let out = mlctl()
        .args(["render", "-f", "examples/quickstart/", "-p", "nope=1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("failed to set parameter nope: no object declares it")
    );
    let out = mlctl()
        .args([
            "render",
            "-f",
            "examples/quickstart/",
            "--kube-version",
            "1.20",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}
