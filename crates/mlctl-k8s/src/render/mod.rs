//! `mlctl render`: validated specs to Kubernetes objects, as an expert would write them.
//!
//! Each kind has its module: `training` (TrainingJob → Indexed `Job` + headless `Service`,
//! or Kubeflow `PyTorchJob`), `pipeline` (Pipeline → Argo `Workflow` with its RBAC),
//! `serving` (InferenceService → `Deployment`/`Service`/`HPA`/`PDB`, KServe or Seldon, plus
//! monitoring), `data` (DataJob → `SparkApplication` / `DaskJob`) and `platform`
//! (Platform → `Namespace`, `ResourceQuota`, `LimitRange`, `PriorityClass`,
//! `NetworkPolicy`). `pod` builds what every pod shares: the restricted security context,
//! requests and limits, GPU scheduling, volumes and the environment.
//!
//! Objects are typed (k8s-openapi for built-in kinds, [`crd`] for the operators' kinds) and
//! turned into JSON values only at the end. The output is byte-stable: objects are sorted
//! by a fixed kind order (dependencies first), then namespace and name; names derive from
//! the spec; nothing reads the clock.

pub mod crd;
mod data;
mod pipeline;
mod platform;
mod pod;
mod serving;
mod training;

use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use mlctl_core::spec::platform::PodSecurityLevel;
use mlctl_core::spec::{Kind, Object, Spec};
use mlctl_core::validate::ValidatedSpec;
use serde::Serialize;

/// The Kubernetes release rendered for: the one whose schemas the output is checked against.
/// Both supported releases get the same objects today (everything rendered is GA in 1.33: Job
/// `successPolicy`, `backoffLimitPerIndex`, `podFailurePolicy`, native sidecars).
pub use crate::schema::KubeVersion;

/// How TrainingJobs (and distributed pipeline steps) are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrainingBackend {
    /// An Indexed `Job` with a headless `Service` (no operator needed).
    #[default]
    Native,
    /// A Kubeflow training-operator `PyTorchJob` (kubeflow.org/v1).
    Kubeflow,
}

/// How InferenceServices are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServingBackend {
    /// `Deployment` + `Service` + `HorizontalPodAutoscaler` + `PodDisruptionBudget`.
    #[default]
    Native,
    /// A KServe `InferenceService` (serving.kserve.io/v1beta1), raw deployment mode.
    Kserve,
    /// A Seldon Core v1 `SeldonDeployment` (machinelearning.seldon.io/v1).
    Seldon,
}

/// What to render and how.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    /// The namespace of objects that name none (kubectl's `-n`); `default` when unset.
    pub namespace: Option<String>,
    /// The Kubernetes version.
    pub kube_version: KubeVersion,
    /// TrainingJob backend.
    pub training: TrainingBackend,
    /// InferenceService backend.
    pub serving: ServingBackend,
    /// Parameter values overriding the specs' defaults (`-p name=value`).
    pub params: IndexMap<String, String>,
    /// The image of mlctl's built-in model server (`mlctl serve-model`).
    pub server_image: String,
}

impl RenderOptions {
    /// Options with the defaults: native backends, Kubernetes 1.33, and the model server
    /// image of this mlctl version.
    pub fn new(mlctl_version: &str) -> Self {
        Self {
            namespace: None,
            kube_version: KubeVersion::default(),
            training: TrainingBackend::default(),
            serving: ServingBackend::default(),
            params: IndexMap::new(),
            server_image: format!("ghcr.io/mlctl/mlctl:{mlctl_version}"),
        }
    }
}

/// Why rendering failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// `-p name=value` names a parameter no object declares.
    #[error("failed to set parameter {name}: no object declares it")]
    UnknownParam {
        /// The parameter.
        name: String,
    },
    /// A parameter value does not fit the field it is used in.
    #[error("failed to render {object}: {message}")]
    InvalidValue {
        /// `Kind/name` of the spec object.
        object: String,
        /// What is wrong.
        message: String,
    },
    /// The spec asks for something the chosen backend cannot express.
    #[error("failed to render {object}: {message}")]
    Unsupported {
        /// `Kind/name` of the spec object.
        object: String,
        /// What cannot be rendered, and what to do instead.
        message: String,
    },
    /// An object could not be turned into JSON or YAML (a bug).
    #[error("failed to serialize {object}: {message}")]
    Serialize {
        /// `Kind/name` of the rendered object.
        object: String,
        /// The serializer's message.
        message: String,
    },
}

/// Something the user should know about the rendered objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// `Kind/name` of the spec object.
    pub object: String,
    /// What to know.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.message)
    }
}

/// One rendered Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace` (None for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// `metadata.name` (or `generateName`).
    pub name: String,
    /// The whole object.
    pub body: serde_json::Value,
    /// `Kind/name` of the spec object it was rendered from (empty for namespaces rendered
    /// for several objects).
    pub source: String,
}

impl Manifest {
    /// `Kind/namespace/name`, as messages name rendered objects.
    pub fn id(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    fn order(&self) -> u8 {
        kind_order(&self.kind)
    }
}

/// Where a kind goes in the output: what others depend on comes first.
fn kind_order(kind: &str) -> u8 {
    match kind {
        "Namespace" => 0,
        "PriorityClass" => 1,
        "ResourceQuota" => 2,
        "LimitRange" => 3,
        "NetworkPolicy" => 4,
        "ServiceAccount" => 5,
        "Role" | "ClusterRole" => 6,
        "RoleBinding" | "ClusterRoleBinding" => 7,
        "ConfigMap" | "Secret" => 8,
        "PersistentVolumeClaim" => 9,
        "Service" => 10,
        "Deployment" | "Job" | "PyTorchJob" | "InferenceService" | "SeldonDeployment"
        | "SparkApplication" | "DaskJob" => 11,
        "Workflow" => 12,
        "HorizontalPodAutoscaler" | "PodDisruptionBudget" | "VerticalPodAutoscaler" => 13,
        "ServiceMonitor" | "PrometheusRule" => 14,
        _ => 15,
    }
}

/// The rendered objects, in apply order, and what the user should know about them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rendered {
    /// The objects, dependencies first.
    pub objects: Vec<Manifest>,
    /// Warnings, in the order of the spec objects.
    pub warnings: Vec<Warning>,
}

impl Rendered {
    /// Every object as YAML documents separated by `---`, ready for `kubectl apply -f -`.
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        let mut out = String::new();
        for (i, m) in self.objects.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&manifest_yaml(m)?);
        }
        Ok(out)
    }

    /// Every object in a `v1` `List`, as pretty JSON (kubectl applies lists).
    pub fn to_json(&self) -> Result<String, RenderError> {
        let list = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": self.objects.iter().map(|m| &m.body).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&list)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| RenderError::Serialize {
                object: "List".into(),
                message: e.to_string(),
            })
    }
}

/// One object as a YAML document.
pub fn manifest_yaml(m: &Manifest) -> Result<String, RenderError> {
    serde_saphyr::to_string(&m.body).map_err(|e| RenderError::Serialize {
        object: m.id(),
        message: e.to_string(),
    })
}

/// Renders every object of `spec`.
pub fn render(spec: &ValidatedSpec, opts: &RenderOptions) -> Result<Rendered, RenderError> {
    check_params(spec, opts)?;
    let mut ctx = Ctx::new(spec, opts);
    // A TrainingJob or DataJob that a pipeline step runs (`job: NAME`) is rendered inside
    // the pipeline's Workflow only: applied on its own too, it would run twice.
    let in_pipelines: Vec<(&str, &str)> = spec
        .pipeline_steps()
        .filter_map(|(o, s)| Some((o.namespace(), s.job.as_deref()?)))
        .collect();
    for object in spec.objects() {
        if matches!(object.kind(), Kind::TrainingJob | Kind::DataJob)
            && in_pipelines.contains(&(object.namespace(), object.name()))
        {
            continue;
        }
        ctx.current = object.id();
        match &object.spec {
            Spec::TrainingJob(job) => training::render(&mut ctx, object, job)?,
            Spec::Pipeline(p) => pipeline::render(&mut ctx, object, p)?,
            Spec::InferenceService(s) => serving::render(&mut ctx, object, s)?,
            Spec::DataJob(d) => data::render(&mut ctx, object, d)?,
            Spec::Platform(p) => platform::render(&mut ctx, object, p)?,
        }
    }
    ctx.current = String::new();
    ctx.namespaces()?;
    Ok(ctx.finish())
}

fn check_params(spec: &ValidatedSpec, opts: &RenderOptions) -> Result<(), RenderError> {
    for name in opts.params.keys() {
        let declared = spec.objects().iter().any(|o| match &o.spec {
            Spec::TrainingJob(j) => j.params.contains_key(name),
            Spec::Pipeline(p) => p.params.contains_key(name),
            Spec::DataJob(d) => d.params.contains_key(name),
            _ => false,
        });
        if !declared {
            return Err(RenderError::UnknownParam { name: name.clone() });
        }
    }
    Ok(())
}

/// What the renderers of one run share: options, the whole spec, and the output.
pub(crate) struct Ctx<'a> {
    pub(crate) spec: &'a ValidatedSpec,
    pub(crate) opts: &'a RenderOptions,
    objects: Vec<Manifest>,
    warnings: Vec<Warning>,
    /// Namespaces workloads run in (rendered as `Namespace` unless `default` or declared).
    used_namespaces: Vec<String>,
    /// The serving workload a pipeline's deploy step applies (set by the serving renderer).
    pub(crate) deploy_manifest: Option<serde_json::Value>,
    /// The spec object being rendered.
    current: String,
}

impl<'a> Ctx<'a> {
    fn new(spec: &'a ValidatedSpec, opts: &'a RenderOptions) -> Self {
        Self {
            spec,
            opts,
            objects: Vec::new(),
            warnings: Vec::new(),
            used_namespaces: Vec::new(),
            deploy_manifest: None,
            current: String::new(),
        }
    }

    /// The namespace `object`'s Kubernetes objects go to.
    pub(crate) fn namespace(&mut self, object: &Object) -> String {
        let ns = object
            .metadata
            .namespace
            .clone()
            .or_else(|| self.opts.namespace.clone())
            .unwrap_or_else(|| "default".to_string());
        if !self.used_namespaces.contains(&ns) {
            self.used_namespaces.push(ns.clone());
        }
        ns
    }

    /// The node label carrying the GPU model (a Platform's `gpuTypeLabel`, else
    /// `accelerator`).
    pub(crate) fn gpu_type_label(&self) -> String {
        self.spec
            .platforms()
            .find_map(|p| p.gpu_type_label.clone())
            .unwrap_or_else(|| "accelerator".to_string())
    }

    /// The value of parameter `name`: `-p` first, then the declared default.
    pub(crate) fn param(
        &self,
        declared: &IndexMap<String, mlctl_core::scalar::ScalarText>,
        name: &str,
    ) -> Option<String> {
        if !declared.contains_key(name) {
            return None;
        }
        self.opts
            .params
            .get(name)
            .cloned()
            .or_else(|| declared.get(name).map(|v| v.0.clone()))
    }

    /// Adds a typed object.
    pub(crate) fn push<T: Serialize>(
        &mut self,
        api_version: &str,
        kind: &str,
        meta: &ObjectMeta,
        object: &T,
    ) -> Result<(), RenderError> {
        let name = meta
            .name
            .clone()
            .or_else(|| meta.generate_name.clone())
            .unwrap_or_default();
        let body = serde_json::to_value(object).map_err(|e| RenderError::Serialize {
            object: format!("{kind}/{name}"),
            message: e.to_string(),
        })?;
        let manifest = Manifest {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: meta.namespace.clone(),
            name,
            body,
            source: self.current.clone(),
        };
        // Two spec objects may need the same dependency (a namespace, a service account):
        // identical objects are rendered once.
        if !self
            .objects
            .iter()
            .any(|m| m.body == manifest.body && m.kind == manifest.kind)
        {
            self.objects.push(manifest);
        }
        Ok(())
    }

    /// Adds a built-in object typed by k8s-openapi.
    pub(crate) fn push_k8s<T>(&mut self, object: &T) -> Result<(), RenderError>
    where
        T: Serialize + k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta>,
    {
        self.push(T::API_VERSION, T::KIND, object.metadata(), object)
    }

    /// Records a warning about `object`.
    pub(crate) fn warn(&mut self, object: &Object, message: impl Into<String>) {
        let w = Warning {
            object: object.id(),
            message: message.into(),
        };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    fn has(&self, kind: &str, name: &str) -> bool {
        self.objects
            .iter()
            .any(|m| m.kind == kind && m.name == name && m.namespace.is_none())
    }

    /// A `Namespace` for every namespace workloads use that no Platform declared, with the
    /// Pod Security Admission labels of the restricted level (never `default`, which every
    /// cluster has and which mlctl does not relabel).
    fn namespaces(&mut self) -> Result<(), RenderError> {
        for ns in self.used_namespaces.clone() {
            if ns == "default" || self.has("Namespace", &ns) {
                continue;
            }
            let ns_obj = Namespace {
                metadata: ObjectMeta {
                    name: Some(ns.clone()),
                    labels: Some(platform::namespace_labels(
                        &ns,
                        PodSecurityLevel::Restricted,
                        &IndexMap::new(),
                    )),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            self.push_k8s(&ns_obj)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Rendered {
        // A stable sort: equal keys keep the spec's order (there are none: names are unique
        // per kind and namespace).
        self.objects.sort_by(|a, b| {
            (a.order(), &a.namespace, &a.kind, &a.name).cmp(&(
                b.order(),
                &b.namespace,
                &b.kind,
                &b.name,
            ))
        });
        Rendered {
            objects: self.objects,
            warnings: self.warnings,
        }
    }
}

/// The labels every object rendered from `object` carries: the recommended
/// `app.kubernetes.io/*` labels and the spec's own.
pub(crate) fn labels(object: &Object, component: &str) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = object
        .metadata
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert("app.kubernetes.io/name".into(), object.name().to_string());
    labels.insert(
        "app.kubernetes.io/instance".into(),
        object.name().to_string(),
    );
    labels.insert("app.kubernetes.io/component".into(), component.to_string());
    labels.insert(
        "app.kubernetes.io/part-of".into(),
        part_of(object.kind()).into(),
    );
    labels.insert("app.kubernetes.io/managed-by".into(), "mlctl".into());
    labels
}

/// The labels a workload's pods are selected by (stable across updates).
pub(crate) fn selector_labels(object: &Object) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            object.name().to_string(),
        ),
        (
            "app.kubernetes.io/instance".to_string(),
            object.name().to_string(),
        ),
    ])
}

fn part_of(kind: Kind) -> &'static str {
    match kind {
        Kind::TrainingJob => "mlctl-training",
        Kind::Pipeline => "mlctl-pipeline",
        Kind::InferenceService => "mlctl-serving",
        Kind::DataJob => "mlctl-data",
        Kind::Platform => "mlctl-platform",
    }
}

/// Metadata of a top-level object: name, namespace, labels, and the spec's annotations.
pub(crate) fn meta(
    object: &Object,
    name: &str,
    namespace: Option<&str>,
    component: &str,
) -> ObjectMeta {
    let annotations: BTreeMap<String, String> = object
        .metadata
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(object, component)),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    }
}

/// A ServiceAccount, a Role with `rules`, and the RoleBinding between them.
pub(crate) fn service_account_with_role(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    sa: &str,
    component: &str,
    rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
) -> Result<(), RenderError> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
    ctx.push_k8s(&ServiceAccount {
        metadata: meta(object, sa, Some(ns), component),
        ..ServiceAccount::default()
    })?;
    ctx.push_k8s(&Role {
        metadata: meta(object, sa, Some(ns), component),
        rules: Some(rules),
    })?;
    ctx.push_k8s(&RoleBinding {
        metadata: meta(object, sa, Some(ns), component),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: sa.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: sa.into(),
            namespace: Some(ns.into()),
            ..Subject::default()
        }]),
    })
}

/// Seconds of a duration, for fields that count whole seconds (rounded up).
pub(crate) fn secs(d: &mlctl_core::scalar::Duration) -> i64 {
    i64::try_from(d.as_secs_ceil()).unwrap_or(i64::MAX)
}
