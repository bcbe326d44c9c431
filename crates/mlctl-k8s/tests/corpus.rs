//! `mlctl check` on real upstream manifests (copied into `tests/corpus/`, see its SOURCES.md):
//! it never panics, recovers from the two upstream files that are not valid YAML, and every
//! error it reports was reviewed as a true problem (listed, with the reason, below and in
//! `docs/check-on-the-seed.md`). A new error here is either a new false positive to fix at the
//! rule, or a true problem to add to the list with its reason.

mod common;

use mlctl_core::diag::Severity;
use mlctl_k8s::check::{Options, Source, check};
use mlctl_k8s::schema::KubeVersion;

/// The reviewed errors: (file suffix, line, rule).
const REVIEWED_ERRORS: &[(&str, u32, &str)] = &[
    // duplicate `image:` key in a mis-indented container list (not valid YAML upstream)
    ("seldon_ov_predict_ensemble.yaml", 23, "yaml-syntax"),
    // unquoted `{IMAGE_REGISTRY}/...` placeholder parses as a flow mapping
    ("spark-pi-prometheus.yaml", 25, "yaml-syntax"),
    // `cpu: 0.5` in a CRD: int-or-string rejects floats (the API server answers
    // "must be of type integer,string: number"); Kueue's sample needs "500m"
    ("sample-xgboostjob.yaml", 20, "schema-type"),
    ("sample-xgboostjob.yaml", 43, "schema-type"),
    // GPUCluster CRD of the same gpu-operator tag has no hostPaths.rootFS (only
    // ClusterPolicy does): kubectl's strict field validation rejects it, else it is pruned
    (
        "nvidia_v1alpha1_gpucluster.yaml",
        71,
        "schema-unknown-field",
    ),
    // Argo's CRD keeps only name/labels/annotations/... of embedded metadata: the
    // ownerReferences of the PVC template are rejected (strict) or silently dropped
    (
        "hdfs-argo-workflows/workflow.yaml",
        16,
        "schema-unknown-field",
    ),
];

fn run(dirs: &[&str], version: KubeVersion) -> mlctl_k8s::check::Report {
    common::check_tree(dirs, version)
}

#[test]
fn every_error_on_the_corpus_is_a_reviewed_true_problem() {
    for version in [KubeVersion::V1_33, KubeVersion::V1_36] {
        let report = run(&["corpus"], version);
        assert_eq!(report.objects, 181, "{version}");
        assert_eq!(report.unparseable.len(), 2, "{version}");
        let errors: Vec<(String, u32, String)> = report
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| (d.file.clone(), d.pos.line, d.code.clone()))
            .collect();
        let unexpected: Vec<_> = errors
            .iter()
            .filter(|(f, l, c)| {
                !REVIEWED_ERRORS
                    .iter()
                    .any(|(rf, rl, rc)| f.ends_with(rf) && l == rl && c == rc)
            })
            .collect();
        assert!(
            unexpected.is_empty(),
            "{version}: unreviewed errors: {unexpected:?}"
        );
        assert_eq!(errors.len(), REVIEWED_ERRORS.len(), "{version}: {errors:?}");
    }
}

#[test]
fn corpus_findings_snapshot() {
    let report = run(&["corpus"], KubeVersion::V1_33);
    let lines: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Info)
        .map(|d| {
            format!(
                "{}:{}: {}[{}] {}",
                d.file, d.pos, d.severity, d.code, d.message
            )
        })
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn each_upstream_project_checked_alone_never_panics_and_finds_no_new_error() {
    for dir in
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus")).expect("corpus")
    {
        let dir = dir.expect("entry").path();
        if !dir.is_dir() {
            continue;
        }
        let name = format!(
            "corpus/{}",
            dir.file_name().expect("name").to_string_lossy()
        );
        let report = run(&[&name], KubeVersion::V1_33);
        for d in report
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
        {
            assert!(
                REVIEWED_ERRORS
                    .iter()
                    .any(|(f, l, c)| d.file.ends_with(f) && d.pos.line == *l && d.code == *c),
                "{name}: unreviewed error {d}"
            );
        }
    }
}

#[test]
fn every_document_alone_never_panics() {
    for (name, text) in common::read_tree("corpus") {
        for version in [KubeVersion::V1_33, KubeVersion::V1_36] {
            let _ = check(
                &[Source {
                    name: &name,
                    text: &text,
                }],
                &Options {
                    kube_version: version,
                },
            );
        }
    }
}
