//! Hand-modelled types of the operators' custom resources, with only the fields mlctl
//! renders: Argo `Workflow`, Kubeflow `PyTorchJob`, KServe `InferenceService`, Seldon Core
//! v1 `SeldonDeployment`, Spark operator `SparkApplication`, Dask `DaskJob`, Prometheus
//! operator `ServiceMonitor` and `PrometheusRule`, and the `VerticalPodAutoscaler`.
//!
//! Pod-shaped subtrees reuse k8s-openapi's types. Field names follow the CRDs in
//! `shared/schemas/crds/` (the versions listed in their doc comments); the schema tests
//! check every rendered object against them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaim, PodSecurityContext, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecurityContext, ServicePort, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;

macro_rules! custom_resource {
    ($(#[$doc:meta])* $name:ident, $api_version:literal, $kind:literal, $spec:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            api_version: &'static str,
            kind: &'static str,
            /// Metadata.
            pub metadata: ObjectMeta,
            /// The spec.
            pub spec: $spec,
        }

        impl $name {
            /// `apiVersion`.
            pub const API_VERSION: &'static str = $api_version;
            /// `kind`.
            pub const KIND: &'static str = $kind;

            /// A new object.
            pub fn new(metadata: ObjectMeta, spec: $spec) -> Self {
                Self {
                    api_version: $api_version,
                    kind: $kind,
                    metadata,
                    spec,
                }
            }
        }
    };
}

// ---- Kubeflow training operator v1 ---------------------------------------------------

custom_resource!(
    /// Kubeflow `PyTorchJob` (training operator v1.9).
    PyTorchJob, "kubeflow.org/v1", "PyTorchJob", PyTorchJobSpec);

/// `PyTorchJob.spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PyTorchJobSpec {
    /// Processes per pod (mlctl runs one per pod).
    pub nproc_per_node: String,
    /// `Master` and `Worker` replicas.
    pub pytorch_replica_specs: BTreeMap<String, ReplicaSpec>,
    /// Retries and cleanup.
    pub run_policy: RunPolicy,
}

/// One replica type of a PyTorchJob.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSpec {
    /// How many pods.
    pub replicas: i32,
    /// `Never`, `OnFailure` or `ExitCode`.
    pub restart_policy: String,
    /// The pods.
    pub template: PodTemplateSpec,
}

/// `PyTorchJob.spec.runPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunPolicy {
    /// Retries of the job.
    pub backoff_limit: i32,
    /// Which pods to delete when the job ends.
    pub clean_pod_policy: String,
    /// Time limit of the whole job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
}

// ---- VPA -----------------------------------------------------------------------------

custom_resource!(
    /// `VerticalPodAutoscaler` (autoscaler 1.7).
    Vpa, "autoscaling.k8s.io/v1", "VerticalPodAutoscaler", VpaSpec);

/// `VerticalPodAutoscaler.spec`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpaSpec {
    /// The controller whose pods are right-sized.
    pub target_ref: VpaTargetRef,
    /// When recommendations are applied.
    pub update_policy: VpaUpdatePolicy,
    /// Which resources of which containers.
    pub resource_policy: VpaResourcePolicy,
}

/// A VPA target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpaTargetRef {
    /// API version of the target.
    pub api_version: String,
    /// Kind of the target.
    pub kind: String,
    /// Name of the target.
    pub name: String,
}

/// `updatePolicy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpaUpdatePolicy {
    /// `Off`, `Initial`, `Recreate`, `InPlaceOrRecreate`.
    pub update_mode: String,
}

/// `resourcePolicy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpaResourcePolicy {
    /// Per container.
    pub container_policies: Vec<VpaContainerPolicy>,
}

/// One container's policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VpaContainerPolicy {
    /// The container.
    pub container_name: String,
    /// `cpu`, `memory`.
    pub controlled_resources: Vec<String>,
    /// `RequestsAndLimits` or `RequestsOnly`.
    pub controlled_values: String,
}

// ---- Argo Workflows ------------------------------------------------------------------

custom_resource!(
    /// Argo `Workflow` (Argo Workflows 3.6+/4.x).
    Workflow, "argoproj.io/v1alpha1", "Workflow", WorkflowSpec);

/// `Workflow.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    /// The template run first.
    pub entrypoint: String,
    /// Workflow parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Service account of the workflow's pods.
    pub service_account_name: String,
    /// At most this many pods at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// Time limit of the whole workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// The exit handler template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<String>,
    /// Pod security context of every pod.
    pub security_context: PodSecurityContext,
    /// Delete pods once they succeeded.
    #[serde(rename = "podGC")]
    pub pod_gc: PodGc,
    /// Per-run volumes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_claim_templates: Vec<PersistentVolumeClaim>,
    /// The templates.
    pub templates: Vec<Template>,
}

/// `podGC`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodGc {
    /// `OnPodSuccess`, `OnWorkflowSuccess`, ...
    pub strategy: String,
}

/// Arguments: parameters and artifacts.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Arguments {
    /// Parameters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// Artifacts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
}

/// A parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    /// Name.
    pub name: String,
    /// Value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where an output parameter's value comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// `valueFrom` of an output parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A file in the main container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A JSONPath into a resource template's object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
}

/// An artifact.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Name.
    pub name: String,
    /// Path in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Another task's artifact (`{{tasks.t.outputs.artifacts.a}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Inputs of a template.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inputs {
    /// Parameters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// Artifacts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<Artifact>,
}

impl Inputs {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.parameters.is_empty() && self.artifacts.is_empty()
    }
}

/// A template.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Name.
    pub name: String,
    /// Inputs.
    #[serde(skip_serializing_if = "Inputs::is_empty")]
    pub inputs: Inputs,
    /// Outputs.
    #[serde(skip_serializing_if = "Inputs::is_empty")]
    pub outputs: Inputs,
    /// Labels of the template's pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// A DAG.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag: Option<Dag>,
    /// A container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// A Kubernetes resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceTemplate>,
    /// Volumes of the pod.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Node selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Priority class of the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Service account of the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Time limit of one attempt (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    /// Caching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memoize: Option<Memoize>,
    /// A JSON patch of the pod spec (parameters in resource fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_spec_patch: Option<String>,
}

/// Pod labels of a template.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A DAG.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dag {
    /// Stop scheduling new tasks after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<bool>,
    /// The tasks.
    pub tasks: Vec<DagTask>,
}

/// A DAG task.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DagTask {
    /// Name.
    pub name: String,
    /// The template it runs.
    pub template: String,
    /// Tasks that must finish first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Run only when this holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Failures tolerated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continue_on: Option<ContinueOn>,
}

/// `continueOn`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContinueOn {
    /// On failure.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// On error.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
}

/// A resource template.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTemplate {
    /// `create`, `apply`, ...
    pub action: String,
    /// Label-selector-style condition on the object for success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// Condition for failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Owned by the workflow (deleted with it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub set_owner_reference: bool,
    /// The object, as YAML.
    pub manifest: String,
}

/// `retryStrategy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Retries.
    pub limit: String,
    /// `Always`, `OnFailure`, `OnError`, `OnTransientError`.
    pub retry_policy: String,
    /// Backoff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// Backoff of retries.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// First delay.
    pub duration: String,
    /// Multiplier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    /// Longest total time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
}

/// `memoize`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memoize {
    /// Cache key.
    pub key: String,
    /// How old a cached result may be.
    pub max_age: String,
    /// Where the cache is kept.
    pub cache: MemoizeCache,
}

/// A memoization cache.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoizeCache {
    /// In a ConfigMap.
    pub config_map: ConfigMapKeyRef,
}

/// A ConfigMap by name.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// Name.
    pub name: String,
}

// ---- KServe --------------------------------------------------------------------------

custom_resource!(
    /// KServe `InferenceService` (KServe 0.14+).
    KserveInferenceService, "serving.kserve.io/v1beta1", "InferenceService", KserveSpec);

/// `InferenceService.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KserveSpec {
    /// The predictor.
    pub predictor: KservePredictor,
}

/// The predictor: a model with its runtime, or containers.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KservePredictor {
    /// Fewest replicas.
    pub min_replicas: i32,
    /// Most replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    /// Autoscaling metric (`cpu`, `memory`, `rps`, `concurrency`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_metric: Option<String>,
    /// Autoscaling target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_target: Option<i32>,
    /// Percent of traffic to the latest revision (canary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_traffic_percent: Option<i64>,
    /// Requests one replica handles at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_concurrency: Option<i64>,
    /// The model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<KserveModel>,
    /// Custom containers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<Vec<Container>>,
    /// Service account (storage credentials are attached to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Node selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Priority class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Pod security context.
    pub security_context: PodSecurityContext,
    /// Labels of the predictor's pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A KServe model.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KserveModel {
    /// The format, which picks the serving runtime.
    pub model_format: KserveModelFormat,
    /// `v1` or `v2` (Open Inference Protocol).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// Where the model is.
    pub storage_uri: String,
    /// Environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    /// Requests and limits.
    pub resources: ResourceRequirements,
    /// Container security context.
    pub security_context: SecurityContext,
}

/// A model format.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KserveModelFormat {
    /// `onnx`, `tensorflow`, `pytorch`, `sklearn`, `xgboost`, `triton`.
    pub name: String,
}

// ---- Seldon Core v1 ------------------------------------------------------------------

custom_resource!(
    /// Seldon Core v1 `SeldonDeployment` (1.17).
    SeldonDeployment, "machinelearning.seldon.io/v1", "SeldonDeployment", SeldonSpec);

/// `SeldonDeployment.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeldonSpec {
    /// Name of the deployment.
    pub name: String,
    /// `seldon` or `v2` (Open Inference Protocol), `tensorflow`.
    pub protocol: String,
    /// The predictors.
    pub predictors: Vec<SeldonPredictor>,
}

/// A predictor.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeldonPredictor {
    /// Name.
    pub name: String,
    /// Replicas.
    pub replicas: i32,
    /// Percent of traffic.
    pub traffic: i32,
    /// The inference graph.
    pub graph: SeldonGraph,
    /// Pod specs of the graph's containers.
    pub component_specs: Vec<SeldonComponentSpec>,
    /// An explainer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explainer: Option<SeldonExplainer>,
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A graph node.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeldonGraph {
    /// Name (the container's name).
    pub name: String,
    /// `MODEL`.
    #[serde(rename = "type")]
    pub type_: String,
    /// A prepackaged server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
    /// Where the model is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_uri: Option<String>,
    /// Secret with storage credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_secret_ref_name: Option<String>,
    /// How the graph reaches the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<SeldonEndpoint>,
    /// No children.
    pub children: Vec<serde_json::Value>,
}

/// A graph node's endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeldonEndpoint {
    /// `REST` or `GRPC`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Port.
    pub http_port: i32,
}

/// A component spec.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeldonComponentSpec {
    /// Pod labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// The pod.
    pub spec: PodSpec,
}

/// A Seldon explainer.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeldonExplainer {
    /// Alibi explainer type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Where it is stored.
    pub model_uri: String,
    /// Secret with storage credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_secret_ref_name: Option<String>,
    /// Its container.
    pub container_spec: Container,
}

// ---- Prometheus operator -------------------------------------------------------------

custom_resource!(
    /// `ServiceMonitor` (prometheus-operator 0.80+).
    ServiceMonitor, "monitoring.coreos.com/v1", "ServiceMonitor", ServiceMonitorSpec);

/// `ServiceMonitor.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// The Services scraped.
    pub selector: LabelSelector,
    /// Their endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// A scraped endpoint.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The Service port's name.
    pub port: String,
    /// The path.
    pub path: String,
    /// Scrape interval.
    pub interval: String,
}

custom_resource!(
    /// `PrometheusRule` (prometheus-operator 0.80+).
    PrometheusRule, "monitoring.coreos.com/v1", "PrometheusRule", PrometheusRuleSpec);

/// `PrometheusRule.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusRuleSpec {
    /// Rule groups.
    pub groups: Vec<RuleGroup>,
}

/// A rule group.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroup {
    /// Name.
    pub name: String,
    /// Rules.
    pub rules: Vec<Rule>,
}

/// An alerting rule.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// Alert name.
    pub alert: String,
    /// PromQL.
    pub expr: String,
    /// How long it must hold.
    #[serde(rename = "for")]
    pub for_: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

// ---- Spark operator ------------------------------------------------------------------

custom_resource!(
    /// `SparkApplication` (Kubeflow Spark operator 2.x).
    SparkApplication, "sparkoperator.k8s.io/v1beta2", "SparkApplication", SparkSpec);

/// `SparkApplication.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkSpec {
    /// `Python`, `Scala`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// Python version (`3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
    /// `cluster`.
    pub mode: String,
    /// Image.
    pub image: String,
    /// `IfNotPresent`.
    pub image_pull_policy: String,
    /// The driver script.
    pub main_application_file: String,
    /// Its arguments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// Spark version.
    pub spark_version: String,
    /// Spark configuration.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub spark_conf: BTreeMap<String, String>,
    /// Dependencies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deps: Option<SparkDeps>,
    /// Retries.
    pub restart_policy: SparkRestartPolicy,
    /// Volumes of driver and executors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// The driver.
    pub driver: SparkPod,
    /// The executors.
    pub executor: SparkPod,
}

/// `deps`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkDeps {
    /// Jars.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jars: Vec<String>,
    /// Python files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub py_files: Vec<String>,
    /// Maven packages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}

/// `restartPolicy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkRestartPolicy {
    /// `Never`, `OnFailure`, `Always`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Retries after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure_retries: Option<i32>,
    /// Seconds between them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure_retry_interval: Option<i64>,
    /// Retries of a failed submission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_submission_failure_retries: Option<i32>,
    /// Seconds between them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_submission_failure_retry_interval: Option<i64>,
}

/// A driver or the executors.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkPod {
    /// Cores (whole).
    pub cores: i32,
    /// CPU request (Kubernetes quantity).
    pub core_request: String,
    /// CPU limit.
    pub core_limit: String,
    /// JVM memory, in Spark units (`8g`).
    pub memory: String,
    /// Executors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<i32>,
    /// GPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<SparkGpu>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Service account (driver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Node selector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Priority class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
    /// Pod security context.
    pub pod_security_context: PodSecurityContext,
    /// Container security context.
    pub security_context: SecurityContext,
}

/// GPUs of a Spark pod.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SparkGpu {
    /// The resource name.
    pub name: String,
    /// How many.
    pub quantity: i64,
}

// ---- Dask ----------------------------------------------------------------------------

custom_resource!(
    /// `DaskJob` (dask-kubernetes operator 2025.x).
    DaskJob, "kubernetes.dask.org/v1", "DaskJob", DaskJobSpec);

/// `DaskJob.spec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaskJobSpec {
    /// The pod running the client script.
    pub job: DaskPod,
    /// The cluster it runs on.
    pub cluster: DaskClusterTemplate,
}

/// A pod template of the Dask operator.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaskPod {
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<DaskMetadata>,
    /// The pod.
    pub spec: PodSpec,
}

/// Labels of Dask pods.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaskMetadata {
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// `DaskJob.spec.cluster`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaskClusterTemplate {
    /// The cluster.
    pub spec: DaskClusterSpec,
}

/// A Dask cluster.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaskClusterSpec {
    /// The scheduler.
    pub scheduler: DaskScheduler,
    /// The workers.
    pub worker: DaskWorker,
}

/// The Dask scheduler.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaskScheduler {
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<DaskMetadata>,
    /// The pod.
    pub spec: PodSpec,
    /// Its Service.
    pub service: DaskService,
}

/// The scheduler's Service.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaskService {
    /// `ClusterIP`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Pods selected.
    pub selector: BTreeMap<String, String>,
    /// Ports.
    pub ports: Vec<ServicePort>,
}

/// The Dask workers.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DaskWorker {
    /// How many.
    pub replicas: i32,
    /// Labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<DaskMetadata>,
    /// The pod.
    pub spec: PodSpec,
}
