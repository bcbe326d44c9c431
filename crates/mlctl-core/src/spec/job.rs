//! `TrainingJob` and pipeline steps: one process (or a gang of distributed workers) with its
//! command, image, environment, resources, retries and outputs.
//!
//! A pipeline step is a [`JobSpec`] too, with the step-only fields (`needs`, `when`,
//! `continueOn`, `cache`, `deploy`, `job`) that validation rejects on a `TrainingJob`. One type
//! serves both because a step is a job in a graph, and because serde's `flatten` would lose the
//! precise error locations users get.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scalar::{Duration, ScalarText};
use crate::spec::common::{
    Outputs, PythonEnv, Resources, Retries, SecretKeyRef, StringMap, Templated, Toleration, Volume,
};

/// A training job, or a pipeline step.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobSpec {
    /// Parameters with their defaults, overridable with `-p name=value` (TrainingJob only; a
    /// pipeline declares them at the pipeline level).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, ScalarText>,
    /// Container image, used on Kubernetes (locally the command runs on this machine).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The command as an argument vector (no shell): `[python, train.py, --epochs, "3"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run: Vec<ScalarText>,
    /// Working directory: relative to the spec file locally, absolute in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, ScalarText>,
    /// Environment variables taken from Secrets (never written in the spec).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub secret_env: IndexMap<String, SecretKeyRef>,
    /// Resources of each process (each worker, when distributed).
    #[serde(default)]
    pub resources: Resources,
    /// Number of distributed workers started together (gang) with the torchrun environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<Templated<u32>>,
    /// Rendezvous port of rank 0 (default: a free port locally, 29500 on Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_port: Option<u16>,
    /// Node labels the process must run on.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub node_selector: StringMap,
    /// Node taints the process tolerates (GPU taints are added for GPU processes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Volumes by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub volumes: IndexMap<String, Volume>,
    /// Retries after a failure (a distributed job retries as a whole gang).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// Time limit of one attempt (`2h`); the process is stopped when it is reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
    /// Output parameters and artifacts.
    #[serde(default)]
    pub outputs: Outputs,
    /// Run in a Python virtual environment with these requirements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonEnv>,
    /// Priority class (declared by a Platform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    /// Kubernetes service account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Right-size the requests from observed usage (a VerticalPodAutoscaler on Kubernetes).
    /// `recommend` only reports; `initial` applies the recommendation when pods are created.
    /// Running training pods are never evicted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rightsizing: Option<Rightsizing>,

    /// Step only: steps that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Step only: run the step only if this Argo-style condition holds
    /// (`"{{steps.evaluate.outputs.accuracy}} > 0.85"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Step only: let the pipeline go on when this step fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continue_on: Option<ContinueOn>,
    /// Step only: reuse the outputs of an identical earlier run of this step (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    /// Step only: deploy a model to an InferenceService instead of running a command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Step only: run the TrainingJob or DataJob of this name instead of a command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// How requests are right-sized from observed usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rightsizing {
    /// Report recommendations only (VPA `updateMode: Off`).
    Recommend,
    /// Apply recommendations to new pods only (VPA `updateMode: Initial`).
    Initial,
}

/// What failures of a step the pipeline tolerates (Argo's `continueOn`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContinueOn {
    /// Go on when the step's process fails.
    #[serde(default)]
    pub failed: bool,
    /// Go on when the step errors (could not run).
    #[serde(default)]
    pub error: bool,
}

/// A deploy step: start or update an InferenceService with a model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Deploy {
    /// The InferenceService (declared in the same files).
    pub service: String,
    /// The model to serve, usually a step output (`"{{steps.train.outputs.model-path}}"`).
    pub model: String,
}

impl JobSpec {
    /// The step-only fields that are set, by their spec names.
    pub fn step_fields_set(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if !self.needs.is_empty() {
            set.push("needs");
        }
        if self.when.is_some() {
            set.push("when");
        }
        if self.continue_on.is_some() {
            set.push("continueOn");
        }
        if self.cache.is_some() {
            set.push("cache");
        }
        if self.deploy.is_some() {
            set.push("deploy");
        }
        if self.job.is_some() {
            set.push("job");
        }
        set
    }

    /// The command as strings.
    pub fn argv(&self) -> Vec<&str> {
        self.run.iter().map(|a| a.0.as_str()).collect()
    }
}
