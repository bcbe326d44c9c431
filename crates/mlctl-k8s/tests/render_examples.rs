//! Renders every example under `examples/` with every backend choice that applies to it:
//! golden snapshots of the YAML, a byte-identical second run, and the invariants every
//! rendered pod must satisfy (Pod Security "restricted", requests and limits on every
//! container, GPU limits equal to requests).

use std::path::{Path, PathBuf};

use mlctl_core::spec::{Kind, SourceText};
use mlctl_core::validate::{ValidatedSpec, validate_sources};
use mlctl_k8s::render::{
    KubeVersion, RenderOptions, Rendered, ServingBackend, TrainingBackend, render,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every example file, in path order, as (name relative to the repo, text).
fn example_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("examples dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&repo().join("examples"), &mut paths);
    paths.sort();
    assert!(paths.len() >= 14, "examples are missing: {paths:?}");
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(repo())
                .expect("under repo")
                .display()
                .to_string();
            (name, std::fs::read_to_string(&p).expect("readable"))
        })
        .collect()
}

fn validated(files: &[(String, String)]) -> ValidatedSpec {
    let sources: Vec<SourceText<'_>> = files
        .iter()
        .map(|(name, text)| SourceText { name, text })
        .collect();
    let report = validate_sources(&sources);
    report
        .spec
        .unwrap_or_else(|| panic!("examples must be valid: {:#?}", report.diagnostics))
}

fn options(training: TrainingBackend, serving: ServingBackend) -> RenderOptions {
    let mut opts = RenderOptions::new("0.1.0");
    opts.training = training;
    opts.serving = serving;
    opts
}

/// The backend choices that change how `spec` renders.
fn choices(spec: &ValidatedSpec) -> Vec<(&'static str, TrainingBackend, ServingBackend)> {
    let kinds: Vec<Kind> = spec.objects().iter().map(|o| o.kind()).collect();
    let mut out = vec![("native", TrainingBackend::Native, ServingBackend::Native)];
    if kinds.contains(&Kind::TrainingJob) {
        out.push((
            "kubeflow",
            TrainingBackend::Kubeflow,
            ServingBackend::Native,
        ));
    }
    if kinds.contains(&Kind::InferenceService) {
        out.push(("kserve", TrainingBackend::Native, ServingBackend::Kserve));
        out.push(("seldon", TrainingBackend::Native, ServingBackend::Seldon));
    }
    out
}

fn rendered_text(r: &Rendered) -> String {
    let mut text = r.to_yaml().expect("yaml");
    for w in &r.warnings {
        text.push_str(&format!("# warning: {w}\n"));
    }
    text
}

#[test]
fn every_example_with_every_backend_matches_its_snapshot() {
    // Examples refer to each other (a pipeline deploys a service declared in another file),
    // so they render together; each file's objects are snapshotted on their own.
    let files = example_files();
    let spec = validated(&files);
    let file_of = |source: &str| {
        spec.objects()
            .iter()
            .find(|o| o.id() == source)
            .map_or_else(|| "shared".to_string(), |o| o.origin.file.clone())
    };
    for (choice, training, serving) in choices(&spec) {
        let rendered =
            render(&spec, &options(training, serving)).unwrap_or_else(|e| panic!("{choice}: {e}"));
        let mut names: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
        names.push("shared".into());
        for file in names {
            let objects: Vec<_> = rendered
                .objects
                .iter()
                .filter(|m| file_of(&m.source) == file)
                .cloned()
                .collect();
            let sources: Vec<String> = spec
                .objects()
                .iter()
                .filter(|o| o.origin.file == file)
                .map(|o| o.id())
                .collect();
            let part = Rendered {
                objects,
                warnings: rendered
                    .warnings
                    .iter()
                    .filter(|w| sources.contains(&w.object))
                    .cloned()
                    .collect(),
            };
            let name = format!(
                "{}-{choice}",
                file.trim_start_matches("examples/")
                    .trim_end_matches(".yaml")
                    .replace('/', "-")
            );
            insta::assert_snapshot!(name, rendered_text(&part));
        }
    }
}

#[test]
fn rendering_all_examples_together_is_byte_stable() {
    let files = example_files();
    let spec = validated(&files);
    for (_, training, serving) in choices(&spec) {
        let opts = options(training, serving);
        let first = render(&spec, &opts)
            .expect("renders")
            .to_yaml()
            .expect("yaml");
        let again = render(&validated(&files), &opts)
            .expect("renders")
            .to_yaml()
            .expect("yaml");
        assert_eq!(first, again);
        let json = render(&spec, &opts)
            .expect("renders")
            .to_json()
            .expect("json");
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("valid json");
        assert_eq!(parsed["kind"], "List");
    }
}

/// Every object, with the manifests Argo resource templates carry parsed and included.
fn all_objects(r: &Rendered) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for m in &r.objects {
        out.push(m.body.clone());
        if m.kind == "Workflow" {
            for t in m.body["spec"]["templates"].as_array().into_iter().flatten() {
                if let Some(manifest) = t["resource"]["manifest"].as_str() {
                    let inner: serde_json::Value =
                        serde_saphyr::from_str(manifest).expect("resource manifest is YAML");
                    out.push(inner);
                }
            }
        }
    }
    out
}

fn visit<'a>(v: &'a serde_json::Value, found: &mut Vec<&'a serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => {
            if map.contains_key("containers")
                || map.contains_key("container")
                || map.contains_key("modelFormat")
                || map.contains_key("coreRequest")
            {
                found.push(v);
            }
            for child in map.values() {
                visit(child, found);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| visit(i, found)),
        _ => {}
    }
}

fn check_container(c: &serde_json::Value, whole: &str) {
    let name = c["name"].as_str().unwrap_or("?");
    let res = &c["resources"];
    for key in ["cpu", "memory"] {
        assert!(
            res["requests"][key].is_string() && res["limits"][key].is_string(),
            "{whole}: container {name} lacks {key} requests or limits: {res}"
        );
    }
    if let Some(gpu) = res["requests"].get("nvidia.com/gpu") {
        assert_eq!(
            Some(gpu),
            res["limits"].get("nvidia.com/gpu"),
            "{whole}: GPU limits must equal requests"
        );
    }
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{whole}: {name}");
    assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{whole}: {name}");
    assert_eq!(sc["runAsNonRoot"], true, "{whole}: {name}");
    assert_eq!(
        sc["seccompProfile"]["type"], "RuntimeDefault",
        "{whole}: {name}"
    );
    assert!(sc["readOnlyRootFilesystem"].is_boolean(), "{whole}: {name}");
}

#[test]
fn every_rendered_container_is_restricted_and_sized() {
    let files = example_files();
    let spec = validated(&files);
    for (choice, training, serving) in choices(&spec) {
        let r = render(&spec, &options(training, serving)).expect("renders");
        let mut containers = 0;
        for object in all_objects(&r) {
            let whole = format!(
                "{choice}: {} {}",
                object["kind"], object["metadata"]["name"]
            );
            let mut holders = Vec::new();
            visit(&object, &mut holders);
            for holder in holders {
                if holder.get("coreRequest").is_some() {
                    // A Spark driver or executor: the operator builds the pod from these.
                    assert_eq!(
                        holder["podSecurityContext"]["runAsNonRoot"], true,
                        "{whole}"
                    );
                    assert_eq!(holder["securityContext"]["allowPrivilegeEscalation"], false);
                    containers += 1;
                    continue;
                }
                if holder.get("modelFormat").is_some() {
                    check_container(holder, &whole);
                    containers += 1;
                    continue;
                }
                for c in holder["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .chain(holder["initContainers"].as_array().into_iter().flatten())
                    .chain(holder.get("container"))
                {
                    // Seldon's prepackaged servers fill their container in; it still
                    // carries mlctl's resources and security context.
                    check_container(c, &whole);
                    containers += 1;
                }
                if holder.get("containers").is_some() && holder.get("restartPolicy").is_some() {
                    assert_eq!(holder["securityContext"]["runAsNonRoot"], true, "{whole}");
                }
            }
        }
        assert!(
            containers > 15,
            "{choice}: only {containers} containers found"
        );
    }
}

#[test]
fn objects_come_in_dependency_order() {
    let spec = validated(&example_files());
    let r = render(
        &spec,
        &options(TrainingBackend::Native, ServingBackend::Native),
    )
    .expect("renders");
    let position = |kind: &str| r.objects.iter().position(|m| m.kind == kind);
    let last = |kind: &str| r.objects.iter().rposition(|m| m.kind == kind);
    assert_eq!(position("Namespace"), Some(0));
    assert!(last("Namespace") < position("ServiceAccount"));
    assert!(last("ServiceAccount") < position("Role"));
    assert!(last("ConfigMap") < position("Service"));
    assert!(last("Service") < position("Deployment"));
    assert!(last("Deployment") < position("HorizontalPodAutoscaler"));
}

#[test]
fn seed_mistakes_are_not_rendered() {
    let spec = validated(&example_files());
    let r = render(
        &spec,
        &options(TrainingBackend::Native, ServingBackend::Native),
    )
    .expect("renders");
    let yaml = r.to_yaml().expect("yaml");
    assert!(
        !yaml.contains("CUDA_VISIBLE_DEVICES"),
        "the device plugin assigns GPUs"
    );
    assert!(
        !yaml.contains("limits.nvidia.com/gpu"),
        "no limits quota for GPUs"
    );
    assert!(!yaml.contains("PodSecurityPolicy"));
    assert!(
        !yaml.contains("LoadBalancer"),
        "the Dask scheduler stays inside the cluster"
    );
    assert!(!yaml.contains("EXTRA_PIP_PACKAGES"));
    assert!(
        !yaml.contains("\"graph\""),
        "dashboards use timeseries panels"
    );
    // The TF Serving deployment under an HPA has no replica count, and probes the REST port.
    let tf = r
        .objects
        .iter()
        .find(|m| m.kind == "Deployment" && m.namespace.as_deref() == Some("ml-production"))
        .expect("the seed's TF Serving deployment");
    assert!(tf.body["spec"].get("replicas").is_none());
    let c = &tf.body["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"],
        "/v1/models/text_classifier"
    );
    assert_eq!(c["readinessProbe"]["initialDelaySeconds"], 30);
    let ports: Vec<i64> = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["containerPort"].as_i64().expect("port"))
        .collect();
    assert_eq!(ports, vec![8501, 8500]);
    // p95 latency aggregates buckets by le.
    let rule = r
        .objects
        .iter()
        .find(|m| m.kind == "PrometheusRule" && m.namespace.as_deref() == Some("ml-production"))
        .expect("alerts");
    let expr = rule.body["spec"]["groups"][0]["rules"][0]["expr"]
        .as_str()
        .expect("expr");
    assert!(
        expr.starts_with("histogram_quantile(0.95, sum by (le) (rate("),
        "{expr}"
    );
    // The quota bounds GPU requests only; the limit range gives no GPU default.
    let quota = r
        .objects
        .iter()
        .find(|m| m.kind == "ResourceQuota" && m.namespace.as_deref() == Some("ml-training"))
        .expect("quota");
    assert_eq!(quota.body["spec"]["hard"]["requests.nvidia.com/gpu"], "8");
    let lr = r
        .objects
        .iter()
        .find(|m| m.kind == "LimitRange" && m.namespace.as_deref() == Some("ml-training"))
        .expect("limit range");
    let item = &lr.body["spec"]["limits"][0];
    for bound in ["default", "defaultRequest", "max", "min"] {
        assert!(item[bound].get("nvidia.com/gpu").is_none(), "{bound}");
    }
    assert_eq!(item["max"]["cpu"], "32");
}

#[test]
fn distributed_job_has_the_rendezvous_contract() {
    let spec = validated(&example_files());
    let r = render(
        &spec,
        &options(TrainingBackend::Native, ServingBackend::Native),
    )
    .expect("renders");
    let job = r
        .objects
        .iter()
        .find(|m| m.kind == "Job" && m.name == "distributed-training")
        .expect("job");
    let spec = &job.body["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 4);
    assert_eq!(spec["parallelism"], 4);
    assert_eq!(spec["backoffLimitPerIndex"], 3);
    assert_eq!(spec["maxFailedIndexes"], 0);
    assert_eq!(spec["successPolicy"]["rules"][0]["succeededIndexes"], "0");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["subdomain"], "distributed-training");
    let env = pod["containers"][0]["env"].as_array().expect("env");
    let get = |n: &str| {
        env.iter()
            .find(|e| e["name"] == n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .clone()
    };
    assert_eq!(
        get("MASTER_ADDR")["value"],
        "distributed-training-0.distributed-training"
    );
    assert_eq!(get("WORLD_SIZE")["value"], "4");
    assert_eq!(get("PET_NNODES")["value"], "4");
    assert_eq!(get("MASTER_PORT")["value"], "29500");
    assert_eq!(get("LOCAL_RANK")["value"], "0");
    for n in ["RANK", "NODE_RANK", "JOB_COMPLETION_INDEX", "PET_NODE_RANK"] {
        assert_eq!(
            get(n)["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
    }
    let svc = r
        .objects
        .iter()
        .find(|m| m.kind == "Service" && m.name == "distributed-training")
        .expect("headless service");
    assert_eq!(svc.body["spec"]["clusterIP"], "None");
    assert_eq!(svc.body["spec"]["publishNotReadyAddresses"], true);
    let shm = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "dshm")
        .expect("/dev/shm");
    assert_eq!(shm["emptyDir"]["medium"], "Memory");
    assert_eq!(shm["emptyDir"]["sizeLimit"], "2Gi");
}

#[test]
fn parameters_override_defaults_and_unknown_ones_are_refused() {
    let files: Vec<(String, String)> = example_files()
        .into_iter()
        .filter(|(n, _)| n.ends_with("04-pipeline.yaml"))
        .collect();
    let spec = validated(&files);
    let mut opts = options(TrainingBackend::Native, ServingBackend::Native);
    opts.params.insert("gpus".into(), "4".into());
    opts.kube_version = KubeVersion::V1_36;
    let r = render(&spec, &opts).expect("renders");
    let wf = r
        .objects
        .iter()
        .find(|m| m.kind == "Workflow")
        .expect("workflow");
    assert_eq!(wf.body["spec"]["arguments"]["parameters"][0]["value"], "4");
    let train = wf.body["spec"]["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .find(|t| t["name"] == "model-training")
        .expect("training template");
    let patch: serde_json::Value =
        serde_json::from_str(train["podSpecPatch"].as_str().expect("podSpecPatch")).expect("json");
    assert_eq!(
        patch["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
        "{{workflow.parameters.gpus}}"
    );
    assert_eq!(
        train["container"]["resources"]["limits"]["nvidia.com/gpu"], "4",
        "the container shows the value in force"
    );
    opts.params.insert("nope".into(), "1".into());
    let err = render(&spec, &opts).expect_err("unknown parameter");
    assert_eq!(
        err.to_string(),
        "failed to set parameter nope: no object declares it"
    );
}

#[test]
fn jobs_run_by_pipeline_steps_render_inside_the_workflow_only() {
    let text =
        std::fs::read_to_string(repo().join("crates/mlctl-k8s/tests/fixtures/job-steps.yaml"))
            .expect("fixture");
    let spec = validated(&[("job-steps.yaml".to_string(), text)]);
    let r = render(
        &spec,
        &options(TrainingBackend::Native, ServingBackend::Native),
    )
    .expect("renders");
    let kinds: Vec<&str> = r.objects.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Service",
            "Workflow"
        ]
    );
    let wf = &r.objects[4].body;
    let templates = wf["spec"]["templates"].as_array().expect("templates");
    let etl = templates.iter().find(|t| t["name"] == "etl").expect("etl");
    assert_eq!(
        etl["resource"]["successCondition"],
        "status.jobStatus == Successful"
    );
    let train = templates
        .iter()
        .find(|t| t["name"] == "train")
        .expect("train");
    let manifest = train["resource"]["manifest"].as_str().expect("manifest");
    assert!(
        manifest.contains("- \"0.1\""),
        "the job's own parameter is resolved: {manifest}"
    );
    assert!(
        manifest.contains("cloud.google.com/gke-accelerator: nvidia-l4"),
        "{manifest}"
    );
    assert_eq!(train["retryStrategy"]["limit"], "1");
    assert!(train["retryStrategy"]["backoff"].get("factor").is_none());
    let role = &r.objects[1].body;
    let resources: Vec<&str> = role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| rule["resources"][0].as_str().expect("resource"))
        .collect();
    assert_eq!(resources, ["workflowtaskresults", "jobs", "daskjobs"]);
    assert_eq!(wf["spec"]["onExit"], "notify");
}

/// Acceptance of issue 5: every document `mlctl render -f examples/` prints, for every backend,
/// validates against the strict upstream schemas of Kubernetes 1.33 and 1.36 and the CRDs
/// embedded for `check`, with 0 violations — and every kind rendered is one they know.
#[test]
fn every_rendered_document_validates_against_the_strict_schemas() {
    use mlctl_k8s::schema::{self, KubeVersion};
    let files = example_files();
    let spec = validated(&files);
    let mut checked = 0;
    for (label, training, serving) in choices(&spec) {
        let rendered = render(&spec, &options(training, serving)).expect("renders");
        for object in all_objects(&rendered) {
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let kind = object["kind"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            for version in [KubeVersion::V1_33, KubeVersion::V1_36] {
                assert!(
                    schema::status(version, api_version, kind).is_validated(),
                    "{label}: {api_version} {kind} has no schema for {version:?}"
                );
                let violations = schema::validate(version, &object);
                assert!(
                    violations.is_empty(),
                    "{label}: {kind}/{name} violates the {version:?} schema: {violations:#?}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "validated {checked} documents");
}
