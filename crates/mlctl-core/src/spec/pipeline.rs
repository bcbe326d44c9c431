//! `Pipeline`: parameters and a graph of steps (Argo Workflows DAG semantics).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scalar::{Duration, ScalarText};
use crate::spec::job::JobSpec;

/// A pipeline of steps.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PipelineSpec {
    /// Parameters with their defaults, overridable with `-p name=value`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, ScalarText>,
    /// Default image of the steps that do not name one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Environment variables of every step.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, ScalarText>,
    /// The steps by name, in the order they are shown.
    pub steps: IndexMap<String, JobSpec>,
    /// At most this many steps run at the same time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    /// Stop starting new steps after a failure (default true, as Argo's DAG `failFast`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_fast: Option<bool>,
    /// A step that always runs last, whatever the outcome (Argo's `onExit`); it is not part
    /// of the graph and sees the pipeline's status in `MLCTL_PIPELINE_STATUS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_exit: Option<String>,
    /// Time limit of the whole pipeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
    /// Kubernetes service account of the steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}
