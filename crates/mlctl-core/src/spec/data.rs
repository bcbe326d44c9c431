//! `DataJob`: a Spark or Dask job: a driver script and executors (Spark executors, Dask
//! workers).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;
use crate::scalar::{Duration, ScalarText};
use crate::spec::common::{
    PythonEnv, Resources, Retries, SecretKeyRef, StringMap, Templated, Toleration, Volume,
};

/// A data-processing job.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DataJobSpec {
    /// Parameters with their defaults, overridable with `-p name=value`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, ScalarText>,
    /// `spark` or `dask`.
    pub engine: Engine,
    /// The driver script: a path relative to the spec file, or a URI (`s3a://...`).
    pub script: String,
    /// Arguments of the script.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ScalarText>,
    /// Container image (Kubernetes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Environment variables of the driver and the executors.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, ScalarText>,
    /// Environment variables taken from Secrets (credentials never go in the spec).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub secret_env: IndexMap<String, SecretKeyRef>,
    /// Resources of the driver (Spark driver; the process running the Dask script).
    #[serde(default)]
    pub driver: Resources,
    /// The executors (Spark executors; Dask workers).
    #[serde(default)]
    pub executors: Executors,
    /// Resources of the Dask scheduler.
    #[serde(default)]
    pub scheduler: Resources,
    /// Spark-only settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spark: Option<SparkOptions>,
    /// Run the script in a Python virtual environment with these requirements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<PythonEnv>,
    /// Retries after a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,
    /// Time limit of one attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
    /// Node labels the pods must run on.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub node_selector: StringMap,
    /// Node taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Volumes by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub volumes: IndexMap<String, Volume>,
    /// Priority class (declared by a Platform).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    /// Kubernetes service account of the driver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// The engine of a data job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Apache Spark (`spark-submit`; SparkApplication on Kubernetes).
    Spark,
    /// Dask distributed (scheduler and workers; DaskJob on Kubernetes).
    Dask,
}

/// Executors of a data job.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Executors {
    /// How many (default 2).
    #[serde(default = "two")]
    pub instances: Templated<u32>,
    /// CPU cores of each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Templated<Quantity>>,
    /// Memory of each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Templated<Quantity>>,
    /// GPUs of each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Templated<Quantity>>,
    /// GPU model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
}

fn two() -> Templated<u32> {
    Templated::Value(2)
}

impl Default for Executors {
    fn default() -> Self {
        Self {
            instances: two(),
            cpu: None,
            memory: None,
            gpu: None,
            gpu_type: None,
        }
    }
}

impl Executors {
    /// The resources of one executor.
    pub fn resources(&self) -> Resources {
        Resources {
            cpu: self.cpu.clone(),
            memory: self.memory.clone(),
            gpu: self.gpu.clone(),
            gpu_type: self.gpu_type.clone(),
            limits: None,
            shm: None,
        }
    }
}

/// Spark-only settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SparkOptions {
    /// Spark version of the image (`3.5.3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Extra Spark configuration (`spark.sql.shuffle.partitions: "200"`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub conf: IndexMap<String, ScalarText>,
    /// Extra jars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jars: Vec<String>,
    /// Extra Python files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub py_files: Vec<String>,
    /// Maven packages (`org.apache.hadoop:hadoop-aws:3.3.4`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
}
