//! Controllers: what a run of each kind does with its jobs. A controller says which tasks are
//! ready, hears how each job ended, and says when the run is over; the dispatcher does the
//! rest (scheduling, processes, retries). A controller is rebuilt from the stored spec, so a
//! run can be resumed by another mlctl process.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use mlctl_core::sched::NamespacePolicy;
use mlctl_core::spec::{JobSpec, Object, Spec};
use mlctl_core::template::{self, Ref};
use mlctl_core::validate::ValidatedSpec;
use mlctl_core::workload::{self, Params};

use crate::home::Home;
use crate::task::{LocalVolume, TaskSpec};

/// How a job ended for good (after its retries).
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    /// It succeeded, with these output parameters.
    Succeeded {
        /// Output parameters.
        outputs: Vec<(String, String)>,
        /// The working directory of the successful attempt (artifacts are there).
        work: PathBuf,
    },
    /// It failed.
    Failed {
        /// Why.
        message: String,
    },
    /// It was cancelled.
    Cancelled,
}

/// The phase of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    /// Everything succeeded.
    Succeeded,
    /// Something failed.
    Failed,
    /// It was cancelled.
    Cancelled,
}

impl RunPhase {
    /// As stored.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunPhase::Succeeded => "Succeeded",
            RunPhase::Failed => "Failed",
            RunPhase::Cancelled => "Cancelled",
        }
    }
}

/// What a run of some kind does with its jobs.
pub trait Controller {
    /// Tasks that can start now (each returned once).
    fn ready(&mut self) -> Vec<TaskSpec>;
    /// A job ended for good.
    fn finished(&mut self, job: &str, result: &JobResult);
    /// The run's outcome, once every job it will run has ended.
    fn outcome(&self) -> Option<(RunPhase, String)>;
    /// Namespace policies the run's spec declares.
    fn namespaces(&self) -> Vec<NamespacePolicy>;
}

/// Why a controller could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// What a controller needs to know about its run.
pub struct RunContext<'a> {
    /// The mlctl home.
    pub home: &'a Home,
    /// The validated spec set the run comes from.
    pub spec: &'a ValidatedSpec,
    /// The run's object.
    pub object: &'a Object,
    /// The directory relative paths resolve against.
    pub spec_dir: &'a Path,
    /// Parameter overrides (`-p`).
    pub overrides: &'a IndexMap<String, String>,
}

/// Builds the controller for a run's object.
pub fn build(ctx: &RunContext<'_>) -> Result<Box<dyn Controller>, BuildError> {
    match &ctx.object.spec {
        Spec::TrainingJob(job) => {
            let params = workload::params(&job.params, ctx.overrides).map_err(BuildError)?;
            let task = job_task(ctx, ctx.object.name(), job, &params, &[])?;
            Ok(Box::new(Single {
                task: Some(task),
                result: None,
                namespaces: namespace_policies(ctx.spec),
            }))
        }
        other => Err(BuildError(format!(
            "running a {} locally is not supported by this mlctl",
            other.kind()
        ))),
    }
}

/// The namespace policies every Platform of the set declares.
pub fn namespace_policies(spec: &ValidatedSpec) -> Vec<NamespacePolicy> {
    spec.platforms()
        .flat_map(|p| p.namespaces.iter())
        .map(|(name, ns)| workload::namespace_policy(name, ns))
        .collect()
}

/// Resolves `{{params.x}}` in `text` (other references are resolved by `extra`).
pub fn render_text(
    text: &str,
    params: &Params,
    extra: &[(Ref, String)],
) -> Result<String, BuildError> {
    template::render(text, |r| match r {
        Ref::Param(p) => params.get(p).cloned(),
        other => extra
            .iter()
            .find(|(k, _)| k == other)
            .map(|(_, v)| v.clone()),
    })
    .map_err(|r| BuildError(format!("`{{{{{r}}}}}` has no value")))
}

/// The task of a job spec (a TrainingJob or a pipeline step), with its templates resolved.
pub fn job_task(
    ctx: &RunContext<'_>,
    name: &str,
    job: &JobSpec,
    params: &Params,
    extra: &[(Ref, String)],
) -> Result<TaskSpec, BuildError> {
    let argv = job
        .run
        .iter()
        .map(|a| render_text(&a.0, params, extra))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = Vec::new();
    for (k, v) in &job.env {
        env.push((k.clone(), render_text(&v.0, params, extra)?));
    }
    for (k, r) in &job.secret_env {
        env.push((k.clone(), secret_value(ctx.home, k, &r.secret, &r.key)?));
    }
    let workers = match &job.workers {
        Some(w) => workload::resolve(w, params).map_err(BuildError)?,
        None => 1,
    };
    let pod = workload::pod(&job.resources, &job.node_selector, &job.tolerations, params)
        .map_err(BuildError)?;
    let volumes = job
        .volumes
        .iter()
        .map(|(name, v)| LocalVolume {
            name: name.clone(),
            dir: match (&v.claim, &v.config_map, &v.secret) {
                (Some(claim), _, _) => Some(ctx.home.volume(claim)),
                (_, Some(map), _) => Some(ctx.home.root().join("configmaps").join(map)),
                (_, _, Some(secret)) => Some(ctx.home.root().join("secrets").join(secret)),
                _ => None,
            },
            mount: (!v.path.starts_with('/')).then(|| v.path.clone()),
        })
        .collect();
    Ok(TaskSpec {
        job: name.to_string(),
        workers,
        distributed: job.workers.is_some(),
        master_port: job.master_port,
        pod,
        namespace: ctx.object.namespace().to_string(),
        priority: workload::priority(job.priority_class.as_deref(), ctx.spec.platforms()),
        retries: job.retries.clone(),
        deadline: job.deadline.map(|d| d.0),
        argv,
        env,
        spec_dir: ctx.spec_dir.to_path_buf(),
        working_dir: job.working_dir.clone(),
        volumes,
        outputs: job.outputs.params.clone(),
    })
}

/// The local value of a secret reference: mlctl's own environment variable of the same
/// name, else the file `$MLCTL_HOME/secrets/<secret>/<key>`.
fn secret_value(home: &Home, env: &str, secret: &str, key: &str) -> Result<String, BuildError> {
    if let Ok(v) = std::env::var(env) {
        return Ok(v);
    }
    let path = home.secret(secret, key);
    std::fs::read_to_string(&path)
        .map(|v| v.trim_end_matches('\n').to_string())
        .map_err(|_| {
            BuildError(format!(
                "secret {secret}/{key} (for {env}) has no local value: set {env} in the environment or write it to {}",
                path.display()
            ))
        })
}

/// A run of one job (a TrainingJob).
struct Single {
    task: Option<TaskSpec>,
    result: Option<JobResult>,
    namespaces: Vec<NamespacePolicy>,
}

impl Controller for Single {
    fn ready(&mut self) -> Vec<TaskSpec> {
        self.task.take().into_iter().collect()
    }

    fn finished(&mut self, _job: &str, result: &JobResult) {
        self.task = None;
        self.result = Some(result.clone());
    }

    fn outcome(&self) -> Option<(RunPhase, String)> {
        Some(match self.result.as_ref()? {
            JobResult::Succeeded { .. } => (RunPhase::Succeeded, String::new()),
            JobResult::Failed { message } => (RunPhase::Failed, message.clone()),
            JobResult::Cancelled => (RunPhase::Cancelled, "cancelled".into()),
        })
    }

    fn namespaces(&self) -> Vec<NamespacePolicy> {
        self.namespaces.clone()
    }
}
