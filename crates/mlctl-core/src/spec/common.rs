//! Building blocks shared by several kinds: resources, environment and secrets, volumes,
//! retries, scheduling constraints, outputs, Python environments, and values that may be a
//! `{{params.x}}` template.

use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::quantity::Quantity;
use crate::scalar::{Duration, ScalarText};
use crate::template;

/// What a value type is called in error messages.
pub trait Expecting {
    /// "a quantity such as 500m or 16Gi".
    const WHAT: &'static str;
}

impl Expecting for Quantity {
    const WHAT: &'static str = "a quantity such as 500m, 4 or 16Gi";
}

impl Expecting for u32 {
    const WHAT: &'static str = "a non-negative integer";
}

/// A value that may instead be a template resolved when the run starts
/// (`gpu: "{{params.gpus}}"`): parameters can be used in resource fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Templated<T> {
    /// A literal value.
    Value(T),
    /// A template, to be resolved from parameters.
    Template(String),
}

impl<T> Templated<T> {
    /// The literal value, if this is not a template.
    pub fn value(&self) -> Option<&T> {
        match self {
            Templated::Value(v) => Some(v),
            Templated::Template(_) => None,
        }
    }
}

impl<T: FromStr + Expecting> Templated<T>
where
    T::Err: fmt::Display,
{
    /// Resolves the template with `resolve` (see [`template::render`]) and parses the result.
    pub fn resolve(
        &self,
        resolve: impl FnMut(&template::Ref) -> Option<String>,
    ) -> Result<T, String>
    where
        T: Clone,
    {
        match self {
            Templated::Value(v) => Ok(v.clone()),
            Templated::Template(text) => {
                let resolved = template::render(text, resolve)
                    .map_err(|r| format!("`{{{{{r}}}}}` has no value"))?;
                parse_value::<T>(&resolved)
            }
        }
    }
}

fn parse_value<T: FromStr + Expecting>(text: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    text.trim().parse::<T>().map_err(|e| {
        let e = e.to_string();
        if e.contains(text.trim()) {
            e
        } else {
            format!("{text:?} is not {}: {e}", T::WHAT)
        }
    })
}

impl<T: fmt::Display> fmt::Display for Templated<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Templated::Value(v) => v.fmt(f),
            Templated::Template(t) => f.write_str(t),
        }
    }
}

impl<T: fmt::Display> Serialize for Templated<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, T: FromStr + Expecting> Deserialize<'de> for Templated<T>
where
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = ScalarText::deserialize(d)?.0;
        if template::is_template(&text) {
            Ok(Templated::Template(text))
        } else {
            parse_value::<T>(&text)
                .map(Templated::Value)
                .map_err(de::Error::custom)
        }
    }
}

impl<T: JsonSchema> JsonSchema for Templated<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Templated{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let inner = generator.subschema_for::<T>();
        schemars::json_schema!({
            "anyOf": [inner, {"type": "string", "pattern": "\\{\\{.*\\}\\}", "description": "a template such as {{params.gpus}}"}]
        })
    }
}

/// Compute resources of one process (one worker, one replica, one step).
///
/// `cpu`, `memory` and `gpu` are requests. Unless `limits` says otherwise, the memory limit
/// equals the request (no overcommit of memory), the CPU limit equals the request, and the GPU
/// limit always equals the request (the Kubernetes rule for extended resources).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    /// CPU cores (`500m`, `4`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Templated<Quantity>>,
    /// Memory (`512Mi`, `16Gi`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Templated<Quantity>>,
    /// Whole GPUs (`1`, `"{{params.gpus}}"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Templated<Quantity>>,
    /// GPU model the process needs (`nvidia-tesla-v100`); a node selector on Kubernetes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
    /// Limits above the requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// Size of `/dev/shm` (shared memory for data loaders and NCCL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm: Option<Quantity>,
}

/// Limits that differ from the requests.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    /// CPU limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Templated<Quantity>>,
    /// Memory limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Templated<Quantity>>,
}

/// A key of a Kubernetes Secret, used as an environment variable or as credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub secret: String,
    /// The key in the Secret.
    pub key: String,
}

/// A node taint to tolerate (Kubernetes semantics).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Toleration {
    /// The taint key (`nvidia.com/gpu`); empty with `Exists` tolerates everything.
    #[serde(default)]
    pub key: String,
    /// `Exists` or `Equal` (default `Equal`).
    #[serde(default)]
    pub operator: TolerationOperator,
    /// The taint value for `Equal`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; absent matches all effects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
}

/// How a toleration matches a taint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum TolerationOperator {
    /// Key and value must match.
    #[default]
    Equal,
    /// The key must exist.
    Exists,
}

/// What a taint does to pods that do not tolerate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum TaintEffect {
    /// Not scheduled.
    NoSchedule,
    /// Avoided.
    PreferNoSchedule,
    /// Not scheduled and evicted.
    NoExecute,
}

/// A volume mounted into the process.
///
/// Exactly one source: `claim` (a PersistentVolumeClaim; locally a directory under the mlctl
/// home that outlives runs), `emptyDir` (scratch space of the given size), `configMap` or
/// `secret`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    /// Where it is mounted: relative to the working directory (`data`; the same on this
    /// machine and in the container), or absolute (`/data`; on Kubernetes only: locally the
    /// directory is in `$MLCTL_VOLUME_<NAME>`).
    pub path: String,
    /// A PersistentVolumeClaim name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// Scratch space of at most this size (`10Gi`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<Quantity>,
    /// A ConfigMap name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// A Secret name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Mounted read-only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Retry policy, with Argo's `retryStrategy` semantics.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retries {
    /// Retries after the first attempt (3 means up to 4 attempts).
    pub limit: u32,
    /// Which failures are retried.
    #[serde(default)]
    pub policy: RetryPolicy,
    /// Delay between attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// Which failures a retry policy retries (Argo's `retryPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum RetryPolicy {
    /// Failures of the process (non-zero exit) and errors of the system.
    Always,
    /// Failures of the process (non-zero exit); the default, as in Argo.
    #[default]
    OnFailure,
    /// Errors of the system (could not start, lost, killed by the system).
    OnError,
    /// Errors of the system that are transient.
    OnTransientError,
}

/// Backoff between retries: `duration * factor^n`, capped by `maxDuration` (Argo).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backoff {
    /// First delay.
    pub duration: Duration,
    /// Multiplier per retry (default: none, every wait is `duration`, as in Argo).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Longest total time to keep retrying (Argo's `maxDuration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<Duration>,
}

/// Outputs a process leaves for later steps.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Outputs {
    /// Output parameters: the process writes output `x` to `$MLCTL_OUTPUTS/x`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<String>,
    /// Output artifacts: files or directories (relative to the working directory) that later
    /// steps receive as paths (`{{steps.s.outputs.artifacts.NAME}}`, NAME being the last
    /// path component).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
}

impl Outputs {
    /// The artifact names with their paths (`features/` is named `features`).
    pub fn artifact_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.artifacts
            .iter()
            .map(|p| (artifact_name(p), p.as_str()))
    }
}

/// The name of an artifact: the last component of its path.
pub fn artifact_name(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
}

/// A Python virtual environment the process runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PythonEnv {
    /// pip requirement specifiers (`numpy>=1.26`).
    #[serde(default)]
    pub requirements: Vec<String>,
}

/// Key/value pairs (labels, node selectors, annotations).
pub type StringMap = IndexMap<String, String>;
