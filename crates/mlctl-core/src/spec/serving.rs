//! `InferenceService`: a served model (or a custom server), its replicas and autoscaling,
//! probes, canary, monitoring and alerts.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;
use crate::scalar::{Duration, Percent, ScalarText};
use crate::spec::common::{Resources, SecretKeyRef, StringMap, Toleration};

/// A model server with its replicas.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InferenceServiceSpec {
    /// The model to serve with the server for its format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Model>,
    /// A custom server command instead of a model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<CustomServer>,
    /// How many replicas.
    #[serde(default)]
    pub replicas: Replicas,
    /// Scale between `replicas.min` and `replicas.max` on these targets (HPA v2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    /// Resources of each replica.
    #[serde(default)]
    pub resources: Resources,
    /// Environment variables of the server.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, ScalarText>,
    /// Environment variables taken from Secrets.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub secret_env: IndexMap<String, SecretKeyRef>,
    /// Node labels the replicas must run on.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub node_selector: StringMap,
    /// Node taints the replicas tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Probes; the defaults are the server's real health endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probes: Option<Probes>,
    /// A second model version that receives part of the traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Canary>,
    /// Dynamic batching of requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batching: Option<Batching>,
    /// Requests one replica works on at once; more wait in a bounded queue, then get 429.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Alerts on the server's metrics (PrometheusRule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<Alerts>,
    /// Metrics scraping and dashboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    /// An explainer next to the model (KServe/Seldon only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explainer: Option<Explainer>,
    /// Credentials for downloading the model (`s3://`, `gs://`), as a Secret name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_secret: Option<String>,
    /// Replicas that may be down at once during voluntary disruptions (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<u32>,
    /// Local port of the service (the load balancer in front of the replicas); on Kubernetes
    /// the Service's HTTP port. Default 8080.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Priority class (declared by a Platform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    /// Kubernetes service account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// A model: where it is and what format it has.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Model {
    /// A path (relative to the spec file) or a URI (`s3://`, `gs://`, `pvc://`).
    pub uri: String,
    /// The model's format; it chooses the server.
    pub format: ModelFormat,
    /// The name clients use (`/v2/models/NAME`); default: the service's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Model formats and the server each is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// ONNX, served by mlctl's built-in server (locally and in the cluster).
    Onnx,
    /// TensorFlow SavedModel, served by TensorFlow Serving.
    Tensorflow,
    /// TorchServe model archive.
    Pytorch,
    /// scikit-learn, served by MLServer.
    Sklearn,
    /// XGBoost, served by MLServer.
    Xgboost,
    /// A Triton model repository.
    Triton,
}

impl ModelFormat {
    /// The format as a spec spells it (`onnx`, `tensorflow`, ...): also KServe's
    /// `modelFormat.name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onnx => "onnx",
            Self::Tensorflow => "tensorflow",
            Self::Pytorch => "pytorch",
            Self::Sklearn => "sklearn",
            Self::Xgboost => "xgboost",
            Self::Triton => "triton",
        }
    }
}

impl std::fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A server of the user's own.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CustomServer {
    /// Container image (Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The command (argv). `{{port}}` is replaced by the port the replica must listen on.
    #[serde(default)]
    pub run: Vec<ScalarText>,
    /// Ports it listens on.
    #[serde(default)]
    pub ports: ServerPorts,
}

/// Named ports of a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerPorts {
    /// HTTP (REST) port (default 8080).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<u16>,
    /// gRPC port, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Option<u16>,
    /// Prometheus metrics port, if not the HTTP port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<u16>,
}

/// Replica bounds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replicas {
    /// Fewest replicas (default 1).
    #[serde(default = "one")]
    pub min: u32,
    /// Most replicas (default: `min`; autoscaling needs `max > min`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
}

fn one() -> u32 {
    1
}

impl Default for Replicas {
    fn default() -> Self {
        Self { min: 1, max: None }
    }
}

impl Replicas {
    /// The upper bound.
    pub fn max(&self) -> u32 {
        self.max.unwrap_or(self.min)
    }
}

/// Autoscaling targets (any subset; the largest recommendation wins, as in the HPA).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Autoscale {
    /// Target average CPU utilization of the requests (`70%`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Percent>,
    /// Target average memory utilization of the requests (`80%`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Percent>,
    /// Target requests per second per replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<Quantity>,
    /// Target in-flight requests per replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Quantity>,
    /// Scaling behaviour (HPA v2 `behavior`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,
}

/// HPA v2 scaling behaviour.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Behavior {
    /// Rules when adding replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    /// Rules when removing replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

/// HPA v2 scaling rules of one direction.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingRules {
    /// Look back this long before changing (`300s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stabilization_window: Option<Duration>,
    /// How the policies combine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    /// Limits on the change per period.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<ScalingPolicy>,
}

/// How scaling policies combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// One scaling policy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// Pods or percent per period.
    pub value: u32,
    /// The period (`60s`).
    pub period: Duration,
}

/// The unit of a scaling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum PolicyKind {
    /// A number of pods.
    Pods,
    /// A percentage of the current replicas.
    Percent,
}

/// Probes of the server.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Probes {
    /// Gates traffic to a replica.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
    /// Restarts a replica that fails it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    /// Holds the other probes until the model is loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup: Option<Probe>,
}

/// An HTTP GET probe.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Probe {
    /// Path (default: the server's health path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Port (default: the HTTP port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Wait before the first probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<Duration>,
    /// Time between probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Duration>,
    /// Time a probe may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Failures in a row that count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
}

/// A canary: a second model that receives `weight` percent of the requests.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Canary {
    /// The canary model.
    pub model: Model,
    /// Percent of requests it receives (1-99).
    pub weight: Percent,
}

/// Dynamic batching.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Batching {
    /// Largest batch.
    pub max_batch_size: u32,
    /// Longest a request waits for others to batch with.
    pub max_delay: Duration,
}

/// Alerts (PrometheusRule).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Alerts {
    /// Alert when the 95th percentile inference latency is above this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_p95: Option<Duration>,
    /// Alert when the share of failed requests is above this (`1%`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<Percent>,
    /// Alert when the `model_accuracy` metric is below this (`0.85`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_accuracy: Option<f64>,
    /// How long a condition holds before it fires (default 5m).
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Duration>,
}

/// Monitoring of the service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Monitoring {
    /// Scrape interval (default 30s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Render a Grafana dashboard (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<bool>,
}

/// An explainer of the model's predictions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Explainer {
    /// Alibi explainer type (`AnchorTabular`, `AnchorText`, `AnchorImages`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the explainer is stored.
    pub uri: String,
}
