//! Controllers: what a run of each kind does with its jobs. A controller says which tasks are
//! ready, hears how each job ended, and says when the run is over; the dispatcher does the
//! rest (scheduling, processes, retries). A controller is rebuilt from the stored spec, so a
//! run can be resumed by another mlctl process.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use mlctl_core::dag::{self, DagBuilder, Execution, NodeId};
use mlctl_core::sched::NamespacePolicy;
use mlctl_core::spec::data::{DataJobSpec, Engine};
use mlctl_core::spec::{JobSpec, Kind, Object, PipelineSpec, Spec};
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

/// Something a controller wants recorded about a job it decided without running it (a
/// skipped or omitted step, a deploy decision).
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// The job.
    pub job: String,
    /// Its final phase, when the note ends it (`Skipped`, `Omitted`, `Succeeded`, `Error`).
    pub phase: Option<&'static str>,
    /// A one-word reason.
    pub reason: &'static str,
    /// Details.
    pub message: String,
    /// Whether it is worth attention.
    pub warning: bool,
}

/// What a controller asks the dispatcher to do with one of its running jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Stop the job for good (SIGTERM, grace, SIGKILL): it ends `Stopped`, not retried.
    Stop {
        /// The job.
        job: String,
    },
    /// Stop the current attempt as failed, so that the job's retry policy starts another.
    Restart {
        /// The job.
        job: String,
        /// Why (an event).
        reason: String,
    },
    /// New tasks are ready: ask [`Controller::ready`].
    Ready,
}

/// What a job did in an earlier run of the same run (for resuming).
#[derive(Debug, Clone, PartialEq)]
pub struct JobHistory {
    /// Its stored phase.
    pub phase: String,
    /// Its output parameters.
    pub outputs: Vec<(String, String)>,
    /// The working directory of its successful attempt.
    pub work: Option<PathBuf>,
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
    /// Notes about jobs decided without running them, since the last call.
    fn take_notes(&mut self) -> Vec<Note> {
        Vec::new()
    }
    /// A job's attempt started its workers, listening on `port` (when it has one), with these
    /// process ids.
    fn attempt_started(&mut self, _job: &str, _port: Option<u16>, _pids: &[u32]) {}
    /// A job's attempt ended (its processes exited).
    fn attempt_ended(&mut self, _job: &str) {}
    /// Called on every tick of the dispatcher (every 50 ms): work to do over time (probes,
    /// autoscaling) and commands for the dispatcher.
    fn tick(&mut self) -> Vec<Command> {
        Vec::new()
    }
    /// One line describing a long-running run (a service's address and replicas), stored as
    /// the run's message.
    fn summary(&self) -> Option<String> {
        None
    }
    /// The state of a service run, stored for `mlctl get services` and deploy steps.
    fn service(&self) -> Option<crate::service::ServiceStatus> {
        None
    }
    /// Serve `model` from now on (asked by a deploy step).
    fn update_model(&mut self, _model: String) {}
}

/// Why a controller could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

/// What a controller needs to know about its run.
pub struct RunContext<'a> {
    /// The mlctl home.
    pub home: &'a Home,
    /// The run's id.
    pub run_id: &'a str,
    /// The validated spec set the run comes from.
    pub spec: &'a ValidatedSpec,
    /// The run's object.
    pub object: &'a Object,
    /// The directory relative paths resolve against.
    pub spec_dir: &'a Path,
    /// Parameter overrides (`-p`).
    pub overrides: &'a IndexMap<String, String>,
    /// What the run's jobs did before, when it is resumed.
    pub history: &'a BTreeMap<String, JobHistory>,
    /// The run's options (`mlctl run` flags, as stored).
    pub options: &'a RunOptions,
    /// The mlctl executable (model servers and deploy steps run it).
    pub exe: Option<&'a Path>,
}

/// The options of a run, as `mlctl run` stores them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunOptions {
    /// Run every step, even those whose results could be reused (`--no-cache`).
    pub no_cache: bool,
    /// The model an InferenceService run serves instead of its spec's (set by deploy steps).
    pub model: Option<String>,
    /// How often services' autoscalers decide (`--autoscale-interval`, seconds).
    pub autoscale_interval: Option<f64>,
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
        Spec::Pipeline(p) => Ok(Box::new(Pipeline::new(ctx, p)?)),
        Spec::DataJob(d) => {
            let params = workload::params(&d.params, ctx.overrides).map_err(BuildError)?;
            let task = data_task(ctx, ctx.object.name(), d, &params)?;
            Ok(Box::new(Single {
                task: Some(task),
                result: None,
                namespaces: namespace_policies(ctx.spec),
            }))
        }
        Spec::InferenceService(s) => Ok(Box::new(crate::service::Service::new(ctx, s)?)),
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
        cache_key: None,
        python: job
            .python
            .as_ref()
            .map(|p| p.requirements.clone())
            .unwrap_or_default(),
        sidecars: Vec::new(),
        port: false,
    })
}

/// The task of a data job: Spark runs the script with `spark-submit --master local[N]`
/// (N = executors × their cores; driver and executor memory mapped to Spark's settings); Dask
/// runs a real scheduler and N workers (`distributed`) on the loopback interface as sidecars,
/// and the script with `DASK_SCHEDULER_ADDRESS` (and `DASK_N_WORKERS`) set.
pub fn data_task(
    ctx: &RunContext<'_>,
    name: &str,
    d: &DataJobSpec,
    params: &Params,
) -> Result<TaskSpec, BuildError> {
    let script = d.script.strip_prefix("local://").unwrap_or(&d.script);
    if script.contains("://") {
        return Err(BuildError(format!(
            "script {script} is remote: on this machine a DataJob runs a script next to its spec (a path, or local://)"
        )));
    }
    let args = d
        .args
        .iter()
        .map(|a| render_text(&a.0, params, &[]))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = Vec::new();
    for (k, v) in &d.env {
        env.push((k.clone(), render_text(&v.0, params, &[])?));
    }
    for (k, r) in &d.secret_env {
        env.push((k.clone(), secret_value(ctx.home, k, &r.secret, &r.key)?));
    }
    let instances = workload::resolve(&d.executors.instances, params)
        .map_err(BuildError)?
        .max(1);
    let executor =
        workload::container("executor", &d.executors.resources(), params).map_err(BuildError)?;
    let mut containers =
        vec![workload::container("driver", &d.driver, params).map_err(BuildError)?];
    if d.engine == Engine::Dask {
        containers
            .push(workload::container("scheduler", &d.scheduler, params).map_err(BuildError)?);
    }
    containers.extend((0..instances).map(|_| executor.clone()));
    let mut pod = mlctl_core::sched::PodRequest::of(containers);
    if let Some(t) = &d.executors.gpu_type {
        pod = pod.gpu_type(t.clone());
    }
    let cores = executor
        .requests
        .cpu_milli
        .map_or(1, |m| m.div_ceil(1000).max(1));
    let mib = |bytes: Option<u64>| bytes.map(|b| format!("{}m", b.div_ceil(1 << 20)));
    let (argv, sidecars) = match d.engine {
        Engine::Spark => {
            let mut argv = vec![
                "spark-submit".to_string(),
                "--master".into(),
                format!("local[{}]", u64::from(instances) * cores),
                "--name".into(),
                name.to_string(),
            ];
            if let Some(m) = mib(containers_memory(&d.driver, params)) {
                argv.extend(["--driver-memory".into(), m]);
            }
            if let Some(m) = mib(executor.requests.memory_bytes) {
                argv.extend(["--conf".into(), format!("spark.executor.memory={m}")]);
            }
            if let Some(spark) = &d.spark {
                for (k, v) in &spark.conf {
                    argv.extend([
                        "--conf".into(),
                        format!("{k}={}", render_text(&v.0, params, &[])?),
                    ]);
                }
                for (flag, list) in [
                    ("--jars", &spark.jars),
                    ("--py-files", &spark.py_files),
                    ("--packages", &spark.packages),
                ] {
                    if !list.is_empty() {
                        argv.extend([flag.to_string(), list.join(",")]);
                    }
                }
            }
            argv.push(script.to_string());
            argv.extend(args);
            env.push(("PYSPARK_PYTHON".into(), "python3".into()));
            // the driver, its block manager and the web UI listen on loopback only (Spark's
            // default is every interface), unless the spec says otherwise
            if !env.iter().any(|(k, _)| k == "SPARK_LOCAL_IP") {
                env.push(("SPARK_LOCAL_IP".into(), "127.0.0.1".into()));
            }
            (argv, Vec::new())
        }
        Engine::Dask => {
            let address = format!("tcp://127.0.0.1:{}", crate::task::PORT_TOKEN);
            let mut sidecars = vec![crate::task::Sidecar {
                name: "dask-scheduler".into(),
                argv: vec![
                    "python3".into(),
                    "-m".into(),
                    "distributed.cli.dask_scheduler".into(),
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    crate::task::PORT_TOKEN.into(),
                    "--no-dashboard".into(),
                    "--dashboard-address".into(),
                    "127.0.0.1:0".into(),
                ],
                env: Vec::new(),
                ready: true,
            }];
            for i in 0..instances {
                let mut argv = vec![
                    "python3".to_string(),
                    "-m".into(),
                    "distributed.cli.dask_worker".into(),
                    address.clone(),
                    "--name".into(),
                    format!("worker-{i}"),
                    "--host".into(),
                    "127.0.0.1".into(),
                    "--nthreads".into(),
                    cores.to_string(),
                    "--no-dashboard".into(),
                ];
                if let Some(bytes) = executor.requests.memory_bytes {
                    argv.extend(["--memory-limit".into(), bytes.to_string()]);
                }
                sidecars.push(crate::task::Sidecar {
                    name: format!("dask-worker-{i}"),
                    argv,
                    env: Vec::new(),
                    ready: false,
                });
            }
            env.push(("DASK_SCHEDULER_ADDRESS".into(), address));
            env.push(("DASK_N_WORKERS".into(), instances.to_string()));
            let mut argv = vec!["python3".to_string(), script.to_string()];
            argv.extend(args);
            (argv, sidecars)
        }
    };
    let volumes = d
        .volumes
        .iter()
        .map(|(vname, v)| LocalVolume {
            name: vname.clone(),
            dir: v.claim.as_ref().map(|c| ctx.home.volume(c)),
            mount: (!v.path.starts_with('/')).then(|| v.path.clone()),
        })
        .collect();
    Ok(TaskSpec {
        job: name.to_string(),
        workers: 1,
        distributed: false,
        master_port: None,
        pod,
        namespace: ctx.object.namespace().to_string(),
        priority: workload::priority(d.priority_class.as_deref(), ctx.spec.platforms()),
        retries: d.retries.clone(),
        deadline: d.deadline.map(|x| x.0),
        argv,
        env,
        spec_dir: ctx.spec_dir.to_path_buf(),
        working_dir: None,
        volumes,
        outputs: Vec::new(),
        cache_key: None,
        python: d
            .python
            .as_ref()
            .map(|p| p.requirements.clone())
            .unwrap_or_default(),
        port: d.engine == Engine::Dask,
        sidecars,
    })
}

fn containers_memory(resources: &mlctl_core::spec::Resources, params: &Params) -> Option<u64> {
    workload::container("driver", resources, params)
        .ok()
        .and_then(|c| c.requests.memory_bytes)
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

/// What later steps of a pipeline can refer to: the output values of succeeded steps that
/// have some, and the working directories of those that declare output artifacts (steps with
/// nothing to give are not kept, so that finding what is known does not cost more with every
/// step that ended).
#[derive(Default)]
struct Known {
    outputs: HashMap<String, Vec<(String, String)>>,
    workdirs: HashMap<String, PathBuf>,
}

impl Known {
    /// Keeps what the succeeded step `step` gives (its working directory is `work`).
    fn remember(
        &mut self,
        spec: &PipelineSpec,
        step: &str,
        values: &[(String, String)],
        work: Option<&PathBuf>,
    ) {
        if !values.is_empty() {
            self.outputs.insert(step.to_string(), values.to_vec());
        }
        let artifacts = spec
            .steps
            .get(step)
            .is_some_and(|s| s.outputs.artifact_names().next().is_some());
        if let Some(work) = work.filter(|_| artifacts) {
            self.workdirs.insert(step.to_string(), work.clone());
        }
    }

    /// Every step output and artifact known, with its value.
    fn values(&self, spec: &PipelineSpec) -> Vec<(Ref, String)> {
        let mut out = Vec::new();
        for (step, values) in &self.outputs {
            for (name, value) in values {
                out.push((
                    Ref::StepOutput {
                        step: step.clone(),
                        name: name.clone(),
                    },
                    value.clone(),
                ));
            }
        }
        for (step, work) in &self.workdirs {
            if let Some(s) = spec.steps.get(step) {
                for (name, path) in s.outputs.artifact_names() {
                    out.push((
                        Ref::StepArtifact {
                            step: step.clone(),
                            name: name.to_string(),
                        },
                        work.join(path.trim_end_matches('/')).display().to_string(),
                    ));
                }
            }
        }
        out
    }
}

/// A pipeline run: the DAG engine decides which steps run, when each `when` is evaluated
/// (after its templates are substituted, as Argo does) and what the pipeline's phase is.
struct Pipeline {
    spec: PipelineSpec,
    set: ValidatedSpec,
    object: Object,
    home: Home,
    run_id: String,
    spec_dir: PathBuf,
    params: Params,
    overrides: IndexMap<String, String>,
    exec: Execution,
    known: Known,
    notes: Vec<Note>,
    done: Option<(RunPhase, String)>,
    namespaces: Vec<NamespacePolicy>,
    options: RunOptions,
    exe: Option<PathBuf>,
    /// The project directory's fingerprint, computed once (for cache keys).
    fingerprint: Option<String>,
}

impl Pipeline {
    fn new(ctx: &RunContext<'_>, spec: &PipelineSpec) -> Result<Self, BuildError> {
        let params = workload::params(&spec.params, ctx.overrides).map_err(BuildError)?;
        let mut b = DagBuilder::new();
        for (name, step) in &spec.steps {
            let node = if spec.on_exit.as_deref() == Some(name.as_str()) {
                b.exit_handler(name.clone())
            } else {
                b.node(name.clone())
            };
            node.needs(step.needs.iter().cloned())
                .continue_on(dag::ContinueOn {
                    failed: step.continue_on.as_ref().is_some_and(|c| c.failed),
                    error: step.continue_on.as_ref().is_some_and(|c| c.error),
                });
        }
        let graph = b
            .seal()
            .map_err(|e| BuildError(format!("the pipeline's graph is invalid: {e}")))?;
        let options = dag::Options {
            fail_fast: spec.fail_fast.unwrap_or(true),
            parallelism: spec
                .parallelism
                .and_then(|p| std::num::NonZeroUsize::new(p as usize)),
        };
        let mut known = Known::default();
        let mut recorded = Vec::new();
        for (name, h) in ctx.history {
            let Some(id) = graph.id(name) else { continue };
            let outcome = match h.phase.as_str() {
                "Succeeded" | "Cached" => dag::Recorded::Succeeded,
                "Failed" => dag::Recorded::Failed,
                "Error" => dag::Recorded::Error,
                "Skipped" => dag::Recorded::Skipped,
                _ => continue,
            };
            if outcome == dag::Recorded::Succeeded {
                known.remember(spec, name, &h.outputs, h.work.as_ref());
            }
            recorded.push((id, outcome));
        }
        let exec = Execution::resume(graph, options, recorded)
            .map_err(|e| BuildError(format!("cannot resume the pipeline: {e}")))?;
        Ok(Self {
            spec: spec.clone(),
            set: ctx.spec.clone(),
            object: ctx.object.clone(),
            home: ctx.home.clone(),
            run_id: ctx.run_id.to_string(),
            spec_dir: ctx.spec_dir.to_path_buf(),
            params,
            overrides: ctx.overrides.clone(),
            exec,
            known,
            notes: Vec::new(),
            done: None,
            namespaces: namespace_policies(ctx.spec),
            options: ctx.options.clone(),
            exe: ctx.exe.map(Path::to_path_buf),
            fingerprint: None,
        })
    }

    /// The memoization key of a step's task: its resolved command and environment, image,
    /// resources, requirements, the project's files and the content of its input artifacts.
    /// `None` (no reuse) when the step opts out or an input cannot be read.
    fn cache_key(
        &mut self,
        name: &str,
        step: &JobSpec,
        task: &TaskSpec,
        known: &[(Ref, String)],
    ) -> Option<String> {
        if self.options.no_cache || step.cache == Some(false) {
            return None;
        }
        let mut texts: Vec<&str> = step.run.iter().map(|a| a.0.as_str()).collect();
        texts.extend(step.env.values().map(|v| v.0.as_str()));
        let mut inputs = Vec::new();
        for text in texts {
            for r in template::references(text).ok()? {
                if let Ref::StepArtifact { .. } = &r {
                    let path = known.iter().find(|(k, _)| *k == r)?.1.clone();
                    inputs.push((
                        r.to_string(),
                        crate::cache::digest_tree(Path::new(&path)).ok()?,
                    ));
                }
            }
        }
        if self.fingerprint.is_none() {
            self.fingerprint = crate::cache::fingerprint_dir(&self.spec_dir, self.home.root()).ok();
        }
        let mut env = task.env.clone();
        env.sort();
        Some(crate::cache::key(&serde_json::json!({
            "version": 1,
            "step": name,
            "argv": task.argv,
            "env": env,
            "image": step.image.as_ref().or(self.spec.image.as_ref()),
            "job": step.job,
            "workers": task.workers,
            "pod": task.pod,
            "python": step.python.as_ref().map(|p| &p.requirements),
            "project": self.fingerprint.as_ref()?,
            "inputs": inputs,
        })))
    }

    fn note(
        &mut self,
        job: &str,
        phase: Option<&'static str>,
        reason: &'static str,
        message: String,
        warning: bool,
    ) {
        self.notes.push(Note {
            job: job.to_string(),
            phase,
            reason,
            message,
            warning,
        });
    }

    /// The values of every step output and artifact known so far.
    fn known(&self) -> Vec<(Ref, String)> {
        self.known.values(&self.spec)
    }

    fn decide(&mut self, id: NodeId) -> dag::Decision {
        let name = self.exec.dag().name(id).to_string();
        let Some(when) = self.spec.steps.get(&name).and_then(|s| s.when.clone()) else {
            return dag::Decision::Run;
        };
        let known = self.known();
        let text = match render_text(&when, &self.params, &known) {
            Ok(t) => t,
            Err(e) => {
                self.note(
                    &name,
                    None,
                    "WhenError",
                    format!("`when: {when}`: {}", e.0),
                    true,
                );
                return dag::Decision::Error;
            }
        };
        match mlctl_core::expr::should_execute(&text) {
            Ok(true) => dag::Decision::Run,
            Ok(false) => {
                self.note(
                    &name,
                    Some("Skipped"),
                    "Skipped",
                    format!("when `{text}` is false"),
                    false,
                );
                dag::Decision::Skip
            }
            Err(e) => {
                self.note(
                    &name,
                    None,
                    "WhenError",
                    format!("when `{text}`: {e}"),
                    true,
                );
                dag::Decision::Error
            }
        }
    }

    /// The task of a step, or why it cannot run.
    fn task(&mut self, name: &str) -> Result<Option<TaskSpec>, BuildError> {
        let step = self
            .spec
            .steps
            .get(name)
            .cloned()
            .ok_or_else(|| BuildError(format!("no step {name}")))?;
        let known = self.known();
        let ctx = RunContext {
            home: &self.home,
            run_id: &self.run_id,
            spec: &self.set,
            object: &self.object,
            spec_dir: &self.spec_dir,
            overrides: &self.overrides,
            history: &BTreeMap::new(),
            options: &self.options,
            exe: self.exe.as_deref(),
        };
        if let Some(deploy) = &step.deploy {
            return self
                .deploy_task(&ctx, name, &step, deploy, &known)
                .map(Some);
        }
        let mut task = match &step.job {
            Some(job) => {
                let target = self
                    .set
                    .objects()
                    .iter()
                    .find(|o| {
                        o.name() == job
                            && o.namespace() == self.object.namespace()
                            && o.kind() == Kind::TrainingJob
                    })
                    .ok_or_else(|| {
                        BuildError(format!(
                            "step {name} runs {job}, which is not a TrainingJob of this namespace"
                        ))
                    })?;
                let Spec::TrainingJob(spec) = &target.spec else {
                    return Err(BuildError(format!("{job} is not a TrainingJob")));
                };
                // the job's own parameters, with the pipeline's values of the same names
                let mut params =
                    workload::params(&spec.params, &IndexMap::new()).map_err(BuildError)?;
                for (k, v) in params.iter_mut() {
                    if let Some(p) = self.params.get(k) {
                        v.clone_from(p);
                    }
                }
                // the step's retries, when it has its own, win over the job's
                let mut job_spec = spec.clone();
                if step.retries.is_some() {
                    job_spec.retries.clone_from(&step.retries);
                }
                job_task(&ctx, name, &job_spec, &params, &known)?
            }
            None => {
                let mut step = step.clone();
                if step.image.is_none() {
                    step.image.clone_from(&self.spec.image);
                }
                for (k, v) in &self.spec.env {
                    step.env.entry(k.clone()).or_insert_with(|| v.clone());
                }
                job_task(&ctx, name, &step, &self.params, &known)?
            }
        };
        task.cache_key = self.cache_key(name, &step, &task, &known);
        if self
            .exec
            .dag()
            .exit_handler()
            .is_some_and(|e| self.exec.dag().name(e) == name)
        {
            let status = self
                .exec
                .main_phase()
                .map_or_else(|| "Running".to_string(), |p| p.to_string());
            task.env.push(("MLCTL_PIPELINE_STATUS".into(), status));
        }
        Ok(Some(task))
    }
}

impl Pipeline {
    /// A deploy step runs `mlctl __deploy`, which starts the InferenceService with the model
    /// (or updates the running one) and waits until it serves it.
    fn deploy_task(
        &self,
        ctx: &RunContext<'_>,
        name: &str,
        step: &JobSpec,
        deploy: &mlctl_core::spec::job::Deploy,
        known: &[(Ref, String)],
    ) -> Result<TaskSpec, BuildError> {
        let exe = ctx.exe.ok_or_else(|| {
            BuildError("deploy steps need the mlctl executable, which is unknown here".into())
        })?;
        let mut step = step.clone();
        step.run = [
            &exe.display().to_string(),
            "__deploy",
            "--run",
            ctx.run_id,
            "--service",
            &deploy.service,
            "--model",
            &deploy.model,
        ]
        .into_iter()
        .map(|a| mlctl_core::scalar::ScalarText(a.to_string()))
        .collect();
        let mut task = job_task(ctx, name, &step, &self.params, known)?;
        let home = std::path::absolute(self.home.root())
            .unwrap_or_else(|_| self.home.root().to_path_buf());
        task.env
            .push(("MLCTL_HOME".into(), home.display().to_string()));
        task.outputs = DEPLOY_OUTPUTS.iter().map(|o| o.to_string()).collect();
        Ok(task)
    }
}

/// The output parameters of a deploy step.
pub const DEPLOY_OUTPUTS: [&str; 4] = ["service", "run", "model", "url"];

impl Controller for Pipeline {
    fn ready(&mut self) -> Vec<TaskSpec> {
        let mut tasks = Vec::new();
        loop {
            match self.exec.next_action() {
                dag::Action::Decide(id) => {
                    let decision = self.decide(id);
                    // the engine asked for this step: it cannot refuse the answer
                    let _ = self.exec.decide(id, decision);
                }
                dag::Action::Start(id) => {
                    let _ = self.exec.started(id);
                    let name = self.exec.dag().name(id).to_string();
                    match self.task(&name) {
                        Ok(Some(task)) => tasks.push(task),
                        Ok(None) => {
                            let _ = self.exec.finished(id, dag::Outcome::Succeeded);
                        }
                        Err(e) => {
                            self.note(&name, Some("Error"), "Error", e.0, true);
                            let _ = self.exec.finished(id, dag::Outcome::Error);
                        }
                    }
                }
                dag::Action::Wait => break,
                dag::Action::Done(phase) => {
                    if self.done.is_none() {
                        for id in self.exec.dag().ids().collect::<Vec<_>>() {
                            if let dag::Status::Omitted(why) = self.exec.status(id) {
                                let name = self.exec.dag().name(id).to_string();
                                let message = match why {
                                    dag::Omission::DependsNotMet => {
                                        "its dependencies did not succeed"
                                    }
                                    dag::Omission::FailFast => {
                                        "fail-fast: a step failed before it could start"
                                    }
                                    dag::Omission::Stopped => "the pipeline was stopped",
                                };
                                self.note(
                                    &name,
                                    Some("Omitted"),
                                    "Omitted",
                                    message.to_string(),
                                    false,
                                );
                            }
                        }
                        let failed: Vec<String> = self
                            .exec
                            .dag()
                            .ids()
                            .filter(|id| {
                                let tolerated = self.exec.dag().continue_on(*id);
                                match self.exec.status(*id) {
                                    dag::Status::Failed => !tolerated.failed,
                                    dag::Status::Error => !tolerated.error,
                                    _ => false,
                                }
                            })
                            .map(|id| self.exec.dag().name(id).to_string())
                            .collect();
                        self.done = Some(match phase {
                            dag::Phase::Succeeded => (RunPhase::Succeeded, String::new()),
                            _ => (
                                RunPhase::Failed,
                                format!(
                                    "pipeline {}: step {} did not succeed",
                                    phase.to_string().to_lowercase(),
                                    failed.join(", ")
                                ),
                            ),
                        });
                    }
                    break;
                }
            }
        }
        tasks
    }

    fn finished(&mut self, job: &str, result: &JobResult) {
        let Some(id) = self.exec.dag().id(job) else {
            return;
        };
        let outcome = match result {
            JobResult::Succeeded { outputs, work } => {
                self.known.remember(&self.spec, job, outputs, Some(work));
                dag::Outcome::Succeeded
            }
            JobResult::Failed { .. } => dag::Outcome::Failed,
            JobResult::Cancelled => {
                self.exec.stop();
                dag::Outcome::Failed
            }
        };
        let _ = self.exec.finished(id, outcome);
    }

    fn outcome(&self) -> Option<(RunPhase, String)> {
        self.done.clone()
    }

    fn namespaces(&self) -> Vec<NamespacePolicy> {
        self.namespaces.clone()
    }

    fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }
}
