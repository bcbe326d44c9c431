//! The examples are valid, cover every kind, and name every seed manifest they replace.

use std::path::{Path, PathBuf};

use mlctl_core::diag;
use mlctl_core::spec::{Kind, SourceText};
use mlctl_core::validate::validate_sources;

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("examples dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}

fn examples() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files = Vec::new();
    yaml_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            (p.display().to_string(), text)
        })
        .collect()
}

#[test]
fn examples_are_valid_without_warnings_and_cover_every_kind() {
    let files = examples();
    let sources: Vec<SourceText<'_>> = files
        .iter()
        .map(|(name, text)| SourceText { name, text })
        .collect();
    let report = validate_sources(&sources);
    assert!(
        report.diagnostics.is_empty(),
        "{}",
        diag::render_text(&report.diagnostics)
    );
    let spec = report.spec.expect("valid");
    for kind in Kind::ALL {
        assert!(
            spec.objects().iter().any(|o| o.kind() == kind),
            "no example of {kind}"
        );
    }
}

#[test]
fn every_seed_manifest_is_replaced_by_an_example() {
    let seed = [
        "01-ml-training-pod.yaml",
        "02-distributed-training-job.yaml",
        "03-model-serving-service.yaml",
        "04-kubeflow-pipeline.yaml",
        "05-seldon-deployment.yaml",
        "06-ml-training-workflow.yaml",
        "07-gpu-node-pool.yaml",
        "08-gpu-resource-quota.yaml",
        "09-spark-application.yaml",
        "10-dask-cluster.yaml",
        "11-ml-model-serving-hpa.yaml",
        "12-training-job-vpa.yaml",
        "13-ml-metrics-servicemonitor.yaml",
        "14-ml-dashboard-configmap.yaml",
        "15-ml-workload-network-policy.yaml",
        "16-pod-security-policy.yaml",
    ];
    let files = examples();
    for manifest in seed {
        assert!(
            files
                .iter()
                .any(|(name, text)| name.contains("/seed/") && text.contains(manifest)),
            "no example in examples/seed names {manifest}"
        );
    }
}

#[test]
fn the_json_schema_accepts_every_example_and_rejects_typos() {
    let schema = mlctl_core::spec::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    for (name, text) in examples() {
        for doc in mlctl_core::yaml::parse_documents(&text).expect("yaml") {
            let json = doc.to_json();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{name}: {errors:#?}");
        }
    }
    let typo = serde_json::json!({
        "apiVersion": "mlctl.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "t"},
        "spec": {"run": ["python3"], "resources": {"gpus": 1}}
    });
    assert!(!validator.is_valid(&typo), "unknown fields are rejected");
}
