//! `mlctl check` on the seed's manifests (copied into `tests/seed/`): it must find the seed's
//! real mistakes, each explained in `docs/check-on-the-seed.md`. The full output is a
//! snapshot; the findings the document relies on are asserted one by one.

mod common;

use mlctl_k8s::schema::KubeVersion;

fn run(version: KubeVersion) -> mlctl_k8s::check::Report {
    common::check_tree(&["seed"], version)
}

#[test]
fn the_seed_findings() {
    let report = run(KubeVersion::V1_33);
    assert_eq!(report.objects, 19);
    assert!(report.unparseable.is_empty());
    insta::assert_snapshot!(mlctl_core::diag::render_text(&report.diagnostics));
}

#[test]
fn the_seed_mistakes_the_documentation_explains_are_found() {
    let report = run(KubeVersion::V1_33);
    let has = |file: &str, code: &str, line: u32| {
        report
            .diagnostics
            .iter()
            .any(|d| d.file.ends_with(file) && d.code == code && d.pos.line == line)
    };
    let expected = [
        ("01-ml-training-pod.yaml", "gpu-cuda-visible-devices", 22),
        (
            "02-distributed-training-job.yaml",
            "completion-index-without-indexed",
            28,
        ),
        (
            "02-distributed-training-job.yaml",
            "extended-resource-limits",
            24,
        ),
        ("02-distributed-training-job.yaml", "rendezvous-host", 14),
        ("02-distributed-training-job.yaml", "dev-shm-missing", 14),
        ("03-model-serving-service.yaml", "service-target-port", 12),
        ("03-model-serving-service.yaml", "probe-port", 59),
        ("03-model-serving-service.yaml", "probe-port", 65),
        ("03-model-serving-service.yaml", "hpa-fixed-replicas", 24),
        ("04-kubeflow-pipeline.yaml", "extended-resource-limits", 42),
        ("05-seldon-deployment.yaml", "gpu-cuda-visible-devices", 29),
        (
            "06-ml-training-workflow.yaml",
            "argo-undefined-template",
            34,
        ),
        (
            "06-ml-training-workflow.yaml",
            "argo-undefined-template",
            41,
        ),
        (
            "06-ml-training-workflow.yaml",
            "extended-resource-limits",
            76,
        ),
        ("07-gpu-node-pool.yaml", "schema-unknown-field", 10),
        ("08-gpu-resource-quota.yaml", "quota-extended-resource", 9),
        ("08-gpu-resource-quota.yaml", "limitrange-gpu-default", 22),
        ("10-dask-cluster.yaml", "exposed-dashboard", 35),
        ("10-dask-cluster.yaml", "schema-type", 40),
        ("11-ml-model-serving-hpa.yaml", "hpa-memory", 19),
        ("12-training-job-vpa.yaml", "vpa-training-job", 11),
        ("12-training-job-vpa.yaml", "vpa-gpu", 23),
        ("12-training-job-vpa.yaml", "scale-target-not-found", 9),
        (
            "13-ml-metrics-servicemonitor.yaml",
            "servicemonitor-port",
            12,
        ),
        (
            "13-ml-metrics-servicemonitor.yaml",
            "promql-histogram-quantile",
            25,
        ),
        (
            "14-ml-dashboard-configmap.yaml",
            "grafana-dashboard-wrapper",
            8,
        ),
        ("14-ml-dashboard-configmap.yaml", "grafana-removed-panel", 8),
        (
            "15-ml-workload-network-policy.yaml",
            "networkpolicy-selects-nothing",
            7,
        ),
        (
            "15-ml-workload-network-policy.yaml",
            "namespace-name-label",
            17,
        ),
        ("16-pod-security-policy.yaml", "removed-api", 1),
    ];
    let missing: Vec<_> = expected.iter().filter(|(f, c, l)| !has(f, c, *l)).collect();
    assert!(missing.is_empty(), "not found: {missing:?}");
}

#[test]
fn the_seed_on_1_36_finds_the_same_mistakes() {
    let a = run(KubeVersion::V1_33);
    let b = run(KubeVersion::V1_36);
    let strip = |r: &mlctl_k8s::check::Report| {
        r.diagnostics
            .iter()
            .map(|d| (d.file.clone(), d.pos, d.code.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
}
