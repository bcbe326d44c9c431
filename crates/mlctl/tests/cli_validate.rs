//! Whole CLI runs of `mlctl validate`, `schema`, `version` and `completion`, as a user types
//! them (from the repository root), with their exit codes.

use std::io::Write;
use std::process::Stdio;

mod support;

use insta_cmd::assert_cmd_snapshot;
use support::mlctl;

#[test]
fn validate_examples() {
    assert_cmd_snapshot!(mlctl().args(["validate", "-f", "examples/"]));
}

#[test]
fn validate_reports_every_problem_with_location_and_exit_1() {
    assert_cmd_snapshot!(mlctl().args([
        "validate",
        "-f",
        "crates/mlctl-core/tests/fixtures/invalid/dag-cycle.yaml",
        "-f",
        "crates/mlctl-core/tests/fixtures/invalid/unknown-field-with-suggestion.yaml",
        "-f",
        "crates/mlctl-core/tests/fixtures/invalid/yaml-syntax-unclosed-flow.yaml",
        "-f",
        "crates/mlctl-core/tests/fixtures/invalid/type-string-for-list.yaml",
    ]));
}

#[test]
fn validate_json_output() {
    let out = mlctl()
        .args([
            "validate",
            "-o",
            "json",
            "-f",
            "crates/mlctl-core/tests/fixtures/invalid/dag-cycle.yaml",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(json["valid"], false);
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "dag-cycle");
    assert_eq!(d["line"], 9);
    assert_eq!(d["column"], 7);
    assert_eq!(d["path"], "spec.steps.a.needs");
    assert_eq!(d["object"], "Pipeline/pipe");
}

#[test]
fn validate_reads_stdin() {
    let mut child = mlctl()
        .args(["validate", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(
            b"apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: t}\nspec:\n  run: [python3, t.py]\n  resources: {memroy: 1Gi}\n",
        )
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "-:6:15: error[unknown-field]: TrainingJob/t: spec.resources: unknown field `memroy`\n  hint: did you mean `memory`?\ninvalid: 1 error, 0 warnings\n"
    );
}

#[test]
fn unreadable_input_is_exit_3() {
    assert_cmd_snapshot!(mlctl().args(["validate", "-f", "does/not/exist.yaml"]));
}

#[test]
fn usage_errors_are_exit_2() {
    let out = mlctl().args(["validate"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn schema_is_json_schema_of_all_kinds() {
    let out = mlctl().arg("schema").output().expect("runs");
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "TrainingJob",
        "Pipeline",
        "InferenceService",
        "DataJob",
        "Platform",
    ] {
        assert!(text.contains(&format!("\"{kind}\"")), "{kind} missing");
    }
}

#[test]
fn version_and_completions() {
    let out = mlctl().arg("version").output().expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("mlctl "));
    for shell in ["bash", "zsh", "fish"] {
        let out = mlctl().args(["completion", shell]).output().expect("runs");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("validate"), "{shell} completes subcommands");
    }
}

#[test]
fn a_closed_output_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    for args in [
        vec!["render", "-f", "examples/"],
        vec!["check", "crates/mlctl-k8s/tests/seed/"],
        vec!["completion", "bash"],
        vec!["schema"],
    ] {
        let mut child = mlctl()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("a line");
        // the reader is gone (as with `| head -1`)
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!first.is_empty(), "{args:?}");
    }
}
