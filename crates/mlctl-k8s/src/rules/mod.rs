//! The rules of `mlctl check`: each has a stable ID, a default severity and a one-line
//! summary, and runs over all objects of one invocation.
//!
//! Rule families: what the API server rejects that schemas miss ([`apiserver`]), GPUs
//! ([`gpu`]), distributed training ([`training`]), references between documents
//! ([`refs`]), probes and ports of model servers ([`ports`]), autoscaling ([`autoscaling`]),
//! security ([`security`]), Argo Workflows ([`argo`]) and monitoring ([`monitoring`],
//! including KServe). Every rule has a passing and a failing fixture in
//! `tests/rules/<id>/`; a test enforces it.

use std::collections::HashMap;

use mlctl_core::diag::{Diagnostic, Severity};
use mlctl_core::path::FieldPath;

use crate::manifest::Object;
use crate::schema::KubeVersion;

pub mod apiserver;
pub mod argo;
pub mod autoscaling;
pub mod gpu;
pub mod monitoring;
pub mod ports;
pub mod refs;
pub mod security;
pub mod training;

/// What a rule sees: every object of the invocation.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    /// All objects, in input order.
    pub objects: &'a [Object<'a>],
    /// The Kubernetes release checked against.
    pub version: KubeVersion,
    by_kind: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Ctx<'a> {
    /// The context of `objects`, indexed by kind.
    pub fn new(objects: &'a [Object<'a>], version: KubeVersion) -> Self {
        let mut by_kind: HashMap<&'a str, Vec<usize>> = HashMap::new();
        for (i, o) in objects.iter().enumerate() {
            by_kind.entry(o.kind).or_default().push(i);
        }
        Self {
            objects,
            version,
            by_kind,
        }
    }

    /// Objects of `kind` in `group` (any version), in input order.
    pub fn of_kind<'s>(
        &'s self,
        group: &'s str,
        kind: &str,
    ) -> impl Iterator<Item = &'a Object<'a>> + 's {
        let objects = self.objects;
        self.by_kind
            .get(kind)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(move |&i| &objects[i])
            .filter(move |o| o.group() == group)
    }
}

/// A rule: stable ID, default severity, summary, and the check itself.
#[derive(Debug)]
pub struct Rule {
    /// The stable ID (`gpu-cuda-visible-devices`).
    pub id: &'static str,
    /// The severity of its findings, unless a finding says otherwise.
    pub severity: Severity,
    /// What it finds, in one line.
    pub summary: &'static str,
    /// The check; `None` for findings made by the checker itself (syntax, schemas).
    pub run: Option<fn(&Ctx<'_>, &mut Emitter<'_>)>,
}

/// Collects the findings of the rules.
#[derive(Debug)]
pub struct Emitter<'f> {
    files: &'f [&'f str],
    out: Vec<Diagnostic>,
    /// The rule that is running.
    pub rule: Option<&'static Rule>,
}

impl<'f> Emitter<'f> {
    /// A new emitter for findings in `files`.
    pub fn new(files: &'f [&'f str]) -> Self {
        Self {
            files,
            out: Vec::new(),
            rule: None,
        }
    }

    /// The name of file number `file`.
    pub fn file_name(&self, file: usize) -> &'f str {
        self.files.get(file).copied().unwrap_or("")
    }

    /// Adds a finished diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.out.push(d);
    }

    /// Reports a finding of the running rule about `path` of `obj`.
    pub fn report(
        &mut self,
        obj: &Object<'_>,
        path: FieldPath,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        if let Some(rule) = self.rule {
            self.report_as(rule, rule.severity, obj, path, message, hint);
        }
    }

    /// Reports a finding of `rule` with an explicit severity.
    pub fn report_as(
        &mut self,
        rule: &Rule,
        severity: Severity,
        obj: &Object<'_>,
        path: FieldPath,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        let mut full = obj.base.clone();
        for seg in path.segments() {
            match seg {
                mlctl_core::path::Segment::Key(k) => full.push_key(k.clone()),
                mlctl_core::path::Segment::Index(i) => full.push_index(*i),
            }
        }
        let pos = obj.doc.locate(&full);
        let mut d = Diagnostic::new(severity, rule.id, full, message)
            .with_object(obj.display())
            .at(self.file_name(obj.file), pos);
        d.hint = hint.into();
        self.out.push(d);
    }

    /// Adds the findings of another emitter, after those already here.
    pub fn extend(&mut self, found: Vec<Diagnostic>) {
        self.out.extend(found);
    }

    /// The findings.
    pub fn finish(self) -> Vec<Diagnostic> {
        self.out
    }
}

macro_rules! builtin {
    ($name:ident, $id:literal, $sev:ident, $summary:literal) => {
        #[doc = $summary]
        pub static $name: Rule = Rule {
            id: $id,
            severity: Severity::$sev,
            summary: $summary,
            run: None,
        };
    };
}

builtin!(
    YAML_SYNTAX,
    "yaml-syntax",
    Error,
    "The file is not valid YAML (the other documents are still checked)"
);
builtin!(
    NOT_AN_OBJECT,
    "not-an-object",
    Error,
    "A document is not a Kubernetes object (no apiVersion/kind)"
);
builtin!(
    UNKNOWN_KIND,
    "unknown-kind",
    Info,
    "No schema for this apiVersion/kind: not checked against a schema (an error when the kind is served under another apiVersion or is a likely typo)"
);
builtin!(
    REMOVED_API,
    "removed-api",
    Error,
    "The apiVersion is no longer served; the finding names the replacement"
);
builtin!(
    DEPRECATED_API,
    "deprecated-api",
    Warning,
    "The apiVersion is deprecated upstream"
);
builtin!(
    SCHEMA_UNKNOWN_FIELD,
    "schema-unknown-field",
    Error,
    "A field the schema does not define (the API server drops or rejects it)"
);
builtin!(
    SCHEMA_TYPE,
    "schema-type",
    Error,
    "A value of the wrong type"
);
builtin!(
    SCHEMA_REQUIRED,
    "schema-required",
    Error,
    "A required field is missing"
);
builtin!(
    SCHEMA_ENUM,
    "schema-enum",
    Error,
    "A value outside the allowed set"
);
builtin!(
    SCHEMA_INVALID,
    "schema-invalid",
    Error,
    "A value breaks another schema constraint (pattern, bounds)"
);

/// The rule of a schema violation code.
pub fn schema_rule(code: &str) -> &'static Rule {
    match code {
        "schema-unknown-field" => &SCHEMA_UNKNOWN_FIELD,
        "schema-type" => &SCHEMA_TYPE,
        "schema-required" => &SCHEMA_REQUIRED,
        "schema-enum" => &SCHEMA_ENUM,
        _ => &SCHEMA_INVALID,
    }
}

macro_rules! rule {
    ($id:literal, $sev:ident, $summary:literal, $run:path) => {
        Rule {
            id: $id,
            severity: Severity::$sev,
            summary: $summary,
            run: Some($run),
        }
    };
}

/// Every rule that runs over the objects, in the order they run.
pub static RULES: &[Rule] = &[
    rule!(
        "invalid-name",
        Error,
        "metadata.name is not a valid DNS-1123 name for this kind",
        apiserver::invalid_name
    ),
    rule!(
        "invalid-label",
        Error,
        "A label key or value the API server rejects",
        apiserver::invalid_label
    ),
    rule!(
        "selector-mismatch",
        Error,
        "A workload's selector does not select its own pod template",
        apiserver::selector_mismatch
    ),
    rule!(
        "duplicate-container-name",
        Error,
        "Two containers of one pod have the same name",
        apiserver::duplicate_container_name
    ),
    rule!(
        "invalid-port-name",
        Error,
        "A container or Service port name the API server rejects (length, characters, duplicates, missing on multi-port Services)",
        apiserver::invalid_port_name
    ),
    rule!(
        "extended-resource-limits",
        Error,
        "Extended resources (GPUs) need a whole-number limit equal to the request",
        apiserver::extended_resource_limits
    ),
    rule!(
        "quota-extended-resource",
        Error,
        "ResourceQuota items for extended resources other than requests.<name> are never enforced",
        apiserver::quota_extended_resource
    ),
    rule!(
        "gpu-cuda-visible-devices",
        Warning,
        "CUDA_VISIBLE_DEVICES set by hand in a container whose GPUs the device plugin assigns",
        gpu::cuda_visible_devices
    ),
    rule!(
        "limitrange-gpu-default",
        Warning,
        "A LimitRange default gives every container of the namespace a GPU",
        gpu::limitrange_gpu_default
    ),
    rule!(
        "completion-index-without-indexed",
        Error,
        "A Job reads its completion index but is not in Indexed completion mode",
        training::completion_index
    ),
    rule!(
        "rendezvous-host",
        Warning,
        "The rendezvous/master host of a distributed job does not resolve to a Service of the checked documents",
        training::rendezvous_host
    ),
    rule!(
        "pytorchjob-no-master",
        Error,
        "A PyTorchJob without a Master replica and without an elastic policy",
        training::pytorchjob_no_master
    ),
    rule!(
        "dev-shm-missing",
        Warning,
        "A PyTorch training pod without a memory-backed /dev/shm (64 MiB default crashes DataLoader workers and NCCL)",
        training::dev_shm_missing
    ),
    rule!(
        "servicemonitor-port",
        Error,
        "A ServiceMonitor scrapes a port name its Services do not have",
        refs::servicemonitor_port
    ),
    rule!(
        "servicemonitor-selector",
        Warning,
        "A ServiceMonitor selects none of the Services of the checked documents",
        refs::servicemonitor_selector
    ),
    rule!(
        "scale-target-not-found",
        Warning,
        "An HPA/VPA targets a workload that is not among the checked documents",
        refs::scale_target_not_found
    ),
    rule!(
        "container-name-not-found",
        Error,
        "An HPA/VPA names a container its target does not have",
        refs::container_name_not_found
    ),
    rule!(
        "networkpolicy-selects-nothing",
        Warning,
        "A NetworkPolicy's podSelector matches no pod of the checked documents",
        refs::networkpolicy_selects_nothing
    ),
    rule!(
        "namespace-name-label",
        Warning,
        "A namespaceSelector uses a `name` label that namespaces do not have",
        refs::namespace_name_label
    ),
    rule!(
        "probe-port",
        Error,
        "A probe targets a port the container does not expose or its server does not listen on",
        ports::probe_port
    ),
    rule!(
        "service-target-port",
        Error,
        "A Service targets a port its pods do not expose or their server does not listen on",
        ports::service_target_port
    ),
    rule!(
        "hpa-fixed-replicas",
        Warning,
        "The target of an HPA sets spec.replicas, which every apply resets",
        autoscaling::hpa_fixed_replicas
    ),
    rule!(
        "hpa-missing-requests",
        Error,
        "An HPA scales on CPU/memory utilization of containers that request none",
        autoscaling::hpa_missing_requests
    ),
    rule!(
        "hpa-memory",
        Warning,
        "An HPA scales on memory utilization, which rarely goes down",
        autoscaling::hpa_memory
    ),
    rule!(
        "vpa-gpu",
        Error,
        "A VPA set to control GPUs (it manages only cpu and memory)",
        autoscaling::vpa_gpu
    ),
    rule!(
        "vpa-training-job",
        Warning,
        "A VPA in Auto/Recreate mode evicts the pods of a training job",
        autoscaling::vpa_training_job
    ),
    rule!(
        "hpa-vpa-conflict",
        Warning,
        "An HPA and a VPA both act on the CPU/memory of the same workload",
        autoscaling::hpa_vpa_conflict
    ),
    rule!(
        "pss-baseline",
        Warning,
        "A pod breaks the Pod Security Standard `baseline` (an error where the namespace enforces it)",
        security::pss_baseline
    ),
    rule!(
        "pss-restricted",
        Info,
        "A pod does not meet the Pod Security Standard `restricted` (an error where the namespace enforces it)",
        security::pss_restricted
    ),
    rule!(
        "secret-in-env",
        Warning,
        "A secret as a literal env value",
        security::secret_in_env
    ),
    rule!(
        "exposed-dashboard",
        Error,
        "An unauthenticated Dask/Jupyter/Ray endpoint behind a LoadBalancer or NodePort",
        security::exposed_dashboard
    ),
    rule!(
        "argo-undefined-template",
        Error,
        "An Argo step/task/entrypoint names a template that is not defined",
        argo::undefined_template
    ),
    rule!(
        "argo-undefined-task",
        Error,
        "An Argo DAG depends on, or an expression reads, a task/step that does not exist",
        argo::undefined_task
    ),
    rule!(
        "argo-undeclared-output",
        Error,
        "An Argo expression reads an output or input parameter the template does not declare",
        argo::undeclared_output
    ),
    rule!(
        "promql-histogram-quantile",
        Warning,
        "histogram_quantile over rate() of buckets without `sum by (le)`",
        monitoring::histogram_quantile
    ),
    rule!(
        "grafana-dashboard-wrapper",
        Error,
        "A provisioned Grafana dashboard wrapped as {\"dashboard\": ...} (the HTTP API format)",
        monitoring::grafana_dashboard_wrapper
    ),
    rule!(
        "grafana-removed-panel",
        Warning,
        "A Grafana panel type that current Grafana no longer ships",
        monitoring::grafana_removed_panel
    ),
    rule!(
        "kserve-canary-raw",
        Warning,
        "A KServe canary traffic split in RawDeployment mode, where it is ignored",
        monitoring::kserve_canary_raw
    ),
];

/// Every rule ID with its severity and summary: the checker's own findings, then [`RULES`].
pub fn catalog() -> Vec<&'static Rule> {
    let builtins: [&'static Rule; 10] = [
        &YAML_SYNTAX,
        &NOT_AN_OBJECT,
        &UNKNOWN_KIND,
        &REMOVED_API,
        &DEPRECATED_API,
        &SCHEMA_UNKNOWN_FIELD,
        &SCHEMA_TYPE,
        &SCHEMA_REQUIRED,
        &SCHEMA_ENUM,
        &SCHEMA_INVALID,
    ];
    builtins.into_iter().chain(RULES.iter()).collect()
}

/// The display of a list of names: `a`, `b` and `c`.
pub(crate) fn list(names: &[impl AsRef<str>]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match quoted.len() {
        0 => "none".to_string(),
        1 => quoted[0].clone(),
        n => format!("{} and {}", quoted[..n - 1].join(", "), quoted[n - 1]),
    }
}
