//! Pipeline → an Argo `Workflow` (a DAG), with the `ServiceAccount`, `Role` and
//! `RoleBinding` its pods need and a headless `Service` per distributed step.
//!
//! Translation of the spec's templates: `{{params.x}}` becomes `{{workflow.parameters.x}}`;
//! `{{steps.s.outputs.x}}` becomes an input parameter `s__x` of the step's template, passed
//! by its task as `{{tasks.s.outputs.parameters.x}}` (so that memoization sees it); in
//! `when`, it is `{{tasks.s.outputs.parameters.x}}` directly. Parameters in resource fields
//! (`gpu: "{{params.gpus}}"`) go through `podSpecPatch`, the container showing the default.
//!
//! Data between steps: a step writes output `x` to `$MLCTL_OUTPUTS/x` (`/mlctl/outputs`, an
//! `emptyDir`) and Argo reads it with `valueFrom.path`. Artifacts travel on a per-run volume
//! (`volumeClaimTemplates`, `ReadWriteMany`, 10Gi): the producer's `WORKDIR/PATH` is the
//! volume's `artifacts/STEP/PATH`, and a consumer finds it read-only at
//! `/mlctl/inputs/STEP/NAME`, the path `{{steps.STEP.outputs.artifacts.NAME}}` stands for. A
//! volume rather than Argo's artifact repository because the workers of a distributed step
//! are not Argo pods: they read and write the same volume.
//!
//! A distributed step (`workers`) is a `resource` template that creates an Indexed Job
//! (see [`super::training`]; the first failing worker fails it) and waits for it; Argo's
//! `retryStrategy` then restarts the whole gang as a new Job, with the spec's backoff. Rank
//! 0's output parameters land on the run volume and a small template named after the step
//! hands them to Argo. A deploy step is a `resource` template that applies the service's
//! workload with the new model; a `job` step inlines the TrainingJob it names (or creates
//! the DataJob's object).

use std::collections::BTreeMap;

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mlctl_core::scalar::ScalarText;
use mlctl_core::spec::common::{Retries, RetryPolicy, Templated};
use mlctl_core::spec::job::JobSpec;
use mlctl_core::spec::pipeline::PipelineSpec;
use mlctl_core::spec::{Kind, Object, Spec};
use mlctl_core::template::{self, Piece, Ref};

use super::crd::{
    Arguments, Backoff, ConfigMapKeyRef, ContinueOn, Dag, DagTask, Inputs, Memoize, MemoizeCache,
    Parameter, PodGc, ResourceTemplate, RetryStrategy, Template, TemplateMetadata, ValueFrom,
    Workflow, WorkflowSpec,
};
use super::pod;
use super::training::{self, GangRetries};
use super::{Ctx, RenderError, ServingBackend, TrainingBackend, meta, secs, serving};

/// The name of the per-run volume (its claim is `WORKFLOW-mlctl-work`).
pub const WORK_VOLUME: &str = "mlctl-work";

/// Template references of one step, gathered while translating its strings.
#[derive(Default)]
struct Refs {
    /// Input parameters of the template, with the task's argument values.
    params: Vec<(String, String)>,
    /// Input artifacts: (step, artifact name, path in the producer's working directory).
    artifacts: Vec<(String, String, String)>,
    /// Pipeline parameters used.
    pipeline_params: Vec<String>,
    /// Steps whose output parameters are used.
    output_steps: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Scope {
    /// Inside a template: step outputs are template inputs.
    Template,
    /// In a DAG task (`when`): step outputs are task outputs.
    Task,
}

struct Translator<'a> {
    pipeline: &'a PipelineSpec,
}

impl Translator<'_> {
    fn text(&self, text: &str, refs: &mut Refs, scope: Scope) -> String {
        let Ok(pieces) = template::parse(text) else {
            return text.to_string();
        };
        let mut out = String::new();
        for piece in pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Ref(Ref::Param(p)) => {
                    if !refs.pipeline_params.contains(&p) {
                        refs.pipeline_params.push(p.clone());
                    }
                    out.push_str(&format!("{{{{workflow.parameters.{p}}}}}"));
                }
                Piece::Ref(Ref::StepOutput { step, name }) => match scope {
                    Scope::Task => {
                        out.push_str(&format!("{{{{tasks.{step}.outputs.parameters.{name}}}}}"))
                    }
                    Scope::Template => {
                        if !refs.output_steps.contains(&step) {
                            refs.output_steps.push(step.clone());
                        }
                        let input = format!("{step}__{name}");
                        if !refs.params.iter().any(|(n, _)| n == &input) {
                            refs.params.push((
                                input.clone(),
                                format!("{{{{tasks.{step}.outputs.parameters.{name}}}}}"),
                            ));
                        }
                        out.push_str(&format!("{{{{inputs.parameters.{input}}}}}"));
                    }
                },
                Piece::Ref(Ref::StepArtifact { step, name }) => {
                    let path =
                        self.pipeline
                            .steps
                            .get(&step)
                            .and_then(|s| {
                                s.outputs.artifact_names().find(|(n, _)| *n == name).map(
                                    |(_, p)| {
                                        p.trim_start_matches("./").trim_end_matches('/').to_string()
                                    },
                                )
                            })
                            .unwrap_or_else(|| name.clone());
                    if !refs
                        .artifacts
                        .iter()
                        .any(|(s, n, _)| s == &step && n == &name)
                    {
                        refs.artifacts.push((step.clone(), name.clone(), path));
                    }
                    out.push_str(&format!("{}/{step}/{name}", pod::INPUTS_DIR));
                }
            }
        }
        out
    }
}

/// What the workflow's service account must be allowed to do.
#[derive(Default)]
struct Permissions {
    rules: BTreeMap<(String, String), Vec<&'static str>>,
}

impl Permissions {
    fn allow(&mut self, group: &str, resource: &str, verbs: &[&'static str]) {
        let entry = self
            .rules
            .entry((group.to_string(), resource.to_string()))
            .or_default();
        for v in verbs {
            if !entry.contains(v) {
                entry.push(v);
            }
        }
        entry.sort_unstable();
    }
}

/// Renders a Pipeline.
pub fn render(ctx: &mut Ctx<'_>, object: &Object, p: &PipelineSpec) -> Result<(), RenderError> {
    let ns = ctx.namespace(object);
    let name = object.name().to_string();
    let tr = Translator { pipeline: p };
    let mut perms = Permissions::default();
    // The Argo executor reports outputs through WorkflowTaskResults.
    perms.allow("argoproj.io", "workflowtaskresults", &["create", "patch"]);
    let mut templates = Vec::new();
    let mut tasks = Vec::new();
    let mut uses_work_volume = false;
    for (step_name, step) in &p.steps {
        let is_exit = p.on_exit.as_deref() == Some(step_name.as_str());
        let mut refs = Refs::default();
        let (mut step_templates, work) = step_templates(
            ctx, object, &ns, p, &tr, step_name, step, &mut refs, &mut perms,
        )?;
        uses_work_volume |= work;
        if is_exit {
            templates.append(&mut step_templates);
            continue;
        }
        let when = step
            .when
            .as_ref()
            .map(|w| tr.text(w, &mut Refs::default(), Scope::Task));
        let args = arguments(&refs);
        let continue_on = step.continue_on.as_ref().map(|c| ContinueOn {
            failed: c.failed,
            error: c.error,
        });
        let dependencies = step.needs.clone();
        // A distributed step with outputs is two tasks: the gang, then the hand-over.
        if step_templates.len() == 2 {
            let gang = step_templates[0].name.clone();
            tasks.push(DagTask {
                name: gang.clone(),
                template: gang.clone(),
                dependencies,
                when,
                arguments: args,
                continue_on: continue_on.clone(),
            });
            tasks.push(DagTask {
                name: step_name.clone(),
                template: step_templates[1].name.clone(),
                dependencies: vec![gang],
                continue_on,
                ..DagTask::default()
            });
        } else {
            tasks.push(DagTask {
                name: step_name.clone(),
                template: step_templates[0].name.clone(),
                dependencies,
                when,
                arguments: args,
                continue_on,
            });
        }
        templates.append(&mut step_templates);
    }
    let mut all = vec![Template {
        name: "main".into(),
        dag: Some(Dag {
            fail_fast: (p.fail_fast == Some(false)).then_some(false),
            tasks,
        }),
        ..Template::default()
    }];
    all.extend(templates);
    let sa = match &p.service_account {
        Some(sa) => sa.clone(),
        None => {
            let sa = format!("{name}-workflow");
            rbac(ctx, object, &ns, &sa, &perms)?;
            sa
        }
    };
    let params: Vec<Parameter> = p
        .params
        .keys()
        .map(|k| Parameter {
            name: k.clone(),
            value: ctx.param(&p.params, k),
            value_from: None,
        })
        .collect();
    let wf = Workflow::new(
        meta(object, &name, Some(&ns), "pipeline"),
        WorkflowSpec {
            entrypoint: "main".into(),
            arguments: (!params.is_empty()).then(|| Arguments {
                parameters: params,
                artifacts: Vec::new(),
            }),
            service_account_name: sa,
            parallelism: p.parallelism,
            active_deadline_seconds: p.deadline.as_ref().map(secs),
            on_exit: p.on_exit.clone(),
            security_context: pod::pod_security(),
            pod_gc: PodGc {
                strategy: "OnWorkflowSuccess".into(),
            },
            volume_claim_templates: if uses_work_volume {
                vec![work_claim()]
            } else {
                Vec::new()
            },
            templates: all,
        },
    );
    ctx.push(Workflow::API_VERSION, Workflow::KIND, &wf.metadata, &wf)
}

fn work_claim() -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(WORK_VOLUME.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    K8sQuantity("10Gi".into()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

fn arguments(refs: &Refs) -> Option<Arguments> {
    (!refs.params.is_empty()).then(|| Arguments {
        parameters: refs
            .params
            .iter()
            .map(|(n, v)| Parameter {
                name: n.clone(),
                value: Some(v.clone()),
                value_from: None,
            })
            .collect(),
        artifacts: Vec::new(),
    })
}

fn inputs(refs: &Refs) -> Inputs {
    Inputs {
        parameters: refs
            .params
            .iter()
            .map(|(n, _)| Parameter {
                name: n.clone(),
                ..Parameter::default()
            })
            .collect(),
        artifacts: Vec::new(),
    }
}

fn rbac(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    sa: &str,
    perms: &Permissions,
) -> Result<(), RenderError> {
    let rules = perms
        .rules
        .iter()
        .map(|((group, resource), verbs)| PolicyRule {
            api_groups: Some(vec![group.clone()]),
            resources: Some(vec![resource.clone()]),
            verbs: verbs.iter().map(|v| (*v).to_string()).collect(),
            ..PolicyRule::default()
        })
        .collect();
    super::service_account_with_role(ctx, object, ns, sa, "pipeline", rules)
}

fn retry_strategy(r: &Retries) -> RetryStrategy {
    RetryStrategy {
        limit: r.limit.to_string(),
        retry_policy: match r.policy {
            RetryPolicy::Always => "Always",
            RetryPolicy::OnFailure => "OnFailure",
            RetryPolicy::OnError => "OnError",
            RetryPolicy::OnTransientError => "OnTransientError",
        }
        .into(),
        backoff: r.backoff.as_ref().map(|b| Backoff {
            duration: b.duration.to_string(),
            // No factor: every wait is `duration`, as in Argo.
            factor: b.factor.map(|f| {
                if f.fract() == 0.0 {
                    IntOrString::Int(f as i32)
                } else {
                    IntOrString::String(mlctl_core::yaml::format_float(f))
                }
            }),
            max_duration: b.max_duration.map(|d| d.to_string()),
        }),
    }
}

/// A stable 64-bit FNV-1a hash, for cache keys.
fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The templates of one step (one, or two for a distributed step with outputs) and whether
/// they use the run volume.
#[allow(clippy::too_many_arguments)]
fn step_templates(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    p: &PipelineSpec,
    tr: &Translator<'_>,
    step_name: &str,
    step: &JobSpec,
    refs: &mut Refs,
    perms: &mut Permissions,
) -> Result<(Vec<Template>, bool), RenderError> {
    if let Some(deploy) = &step.deploy {
        let model = tr.text(&deploy.model, refs, Scope::Template);
        return Ok((
            vec![deploy_template(
                ctx,
                object,
                ns,
                step_name,
                &deploy.service,
                &model,
                refs,
                perms,
            )?],
            false,
        ));
    }
    if let Some(job_name) = &step.job {
        let target = ctx
            .spec
            .objects()
            .iter()
            .find(|o| {
                o.name() == job_name
                    && matches!(o.kind(), Kind::TrainingJob | Kind::DataJob)
                    && o.namespace() == object.namespace()
            })
            .cloned();
        return match target.as_ref().map(|o| &o.spec) {
            Some(Spec::TrainingJob(job)) => {
                // The TrainingJob runs as this step: its spec, the step's place in the graph.
                let mut inlined = job.clone();
                inlined.run = job
                    .run
                    .iter()
                    .map(|a| pod::resolve_params(ctx, object, &job.params, &a.0).map(ScalarText))
                    .collect::<Result<_, _>>()?;
                inlined.env = job
                    .env
                    .iter()
                    .map(|(k, v)| {
                        Ok((
                            k.clone(),
                            ScalarText(pod::resolve_params(ctx, object, &job.params, &v.0)?),
                        ))
                    })
                    .collect::<Result<_, RenderError>>()?;
                inlined.workers = match &job.workers {
                    Some(w) => Some(Templated::Value(resolve_u32(ctx, object, &job.params, w)?)),
                    None => None,
                };
                if inlined.retries.is_none() {
                    inlined.retries.clone_from(&step.retries);
                }
                let lookup_params = job.params.clone();
                run_templates(
                    ctx,
                    object,
                    ns,
                    p,
                    tr,
                    step_name,
                    &inlined,
                    refs,
                    perms,
                    &lookup_params,
                )
            }
            Some(Spec::DataJob(_)) => {
                let target = target
                    .as_ref()
                    .ok_or_else(|| unsupported(object, "missing job"))?;
                Ok((
                    vec![data_job_template(ctx, target, step_name, perms)?],
                    false,
                ))
            }
            _ => Err(unsupported(
                object,
                &format!("step {step_name}: no TrainingJob or DataJob named {job_name}"),
            )),
        };
    }
    let params = p.params.clone();
    run_templates(
        ctx, object, ns, p, tr, step_name, step, refs, perms, &params,
    )
}

fn unsupported(object: &Object, message: &str) -> RenderError {
    RenderError::Unsupported {
        object: object.id(),
        message: message.into(),
    }
}

fn resolve_u32(
    ctx: &Ctx<'_>,
    object: &Object,
    params: &IndexMap<String, ScalarText>,
    v: &Templated<u32>,
) -> Result<u32, RenderError> {
    v.resolve(|r| match r {
        Ref::Param(p) => ctx.param(params, p),
        _ => None,
    })
    .map_err(|why| RenderError::InvalidValue {
        object: object.id(),
        message: format!("workers: {why}"),
    })
}

/// Templates of a step that runs a command.
#[allow(clippy::too_many_arguments)]
fn run_templates(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    p: &PipelineSpec,
    tr: &Translator<'_>,
    step_name: &str,
    step: &JobSpec,
    refs: &mut Refs,
    perms: &mut Permissions,
    params: &IndexMap<String, ScalarText>,
) -> Result<(Vec<Template>, bool), RenderError> {
    let Some(image) = step.image.clone().or_else(|| p.image.clone()) else {
        return Err(unsupported(
            object,
            &format!("step {step_name} needs an image on Kubernetes (its own or the pipeline's)"),
        ));
    };
    let run: Vec<String> = step
        .argv()
        .iter()
        .map(|a| tr.text(a, refs, Scope::Template))
        .collect();
    let mut env_vars: IndexMap<String, ScalarText> = p.env.clone();
    env_vars.extend(step.env.clone());
    let mut env = Vec::new();
    for (k, v) in &env_vars {
        env.push(pod::env(
            k,
            pod::escape(&tr.text(&v.0, refs, Scope::Template)),
        ));
    }
    if p.on_exit.as_deref() == Some(step_name) {
        env.push(pod::env("MLCTL_PIPELINE_STATUS", "{{workflow.status}}"));
    }
    let workers = match &step.workers {
        Some(w) => Some(resolve_u32(ctx, object, params, w)?),
        None => None,
    };
    if matches!(step.workers, Some(Templated::Template(_))) {
        ctx.warn(
            object,
            format!(
                "step {step_name}: workers is fixed at render time ({})",
                workers.unwrap_or(1)
            ),
        );
    }
    let lookup = |name: &str| ctx.param(params, name);
    // Artifacts live on the run volume, not in emptyDirs.
    let mut plain = step.clone();
    plain.outputs.artifacts.clear();
    if plain.working_dir.is_none() && !step.outputs.artifacts.is_empty() {
        plain.working_dir = Some(pod::DEFAULT_WORKDIR.into());
    }
    let workdir = plain
        .working_dir
        .clone()
        .unwrap_or_else(|| pod::DEFAULT_WORKDIR.into());
    let svc = format!("{}-{step_name}", object.name());
    if let Some(n) = workers {
        let mut dist = training::distributed_env(None, &svc, n, training::master_port(step));
        dist.extend(env);
        env = dist;
    }
    let container_name = if workers.is_some() { "worker" } else { "main" };
    let mut proc = training::process(
        ctx,
        object,
        ns,
        &plain,
        container_name,
        &image,
        &run,
        env,
        &lookup,
    )?;
    let mut mounts: Vec<VolumeMount> = Vec::new();
    for (s, n, path) in &refs.artifacts {
        mounts.push(VolumeMount {
            name: WORK_VOLUME.into(),
            mount_path: format!("{}/{s}/{n}", pod::INPUTS_DIR),
            sub_path: Some(format!("artifacts/{s}/{path}")),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    let mut firsts: Vec<String> = Vec::new();
    for path in &step.outputs.artifacts {
        let clean = path.trim_start_matches("./").trim_end_matches('/');
        let first = clean.split('/').next().unwrap_or(clean).to_string();
        if !path.contains('/') {
            return Err(unsupported(
                object,
                &format!(
                    "step {step_name}: artifact {path:?} is a file at the top of the working \
                     directory, which is read-only on Kubernetes; write it into a directory \
                     (`out/{path}`, declared as `out/`)"
                ),
            ));
        }
        if !firsts.contains(&first) {
            mounts.push(VolumeMount {
                name: WORK_VOLUME.into(),
                mount_path: format!("{}/{first}", workdir.trim_end_matches('/')),
                sub_path: Some(format!("artifacts/{step_name}/{first}")),
                ..VolumeMount::default()
            });
            firsts.push(first);
        }
    }
    // An output parameter is often a path into the producer's artifacts (`model-path`):
    // the consumer sees those artifacts at the same absolute paths, read-only.
    for producer in &refs.output_steps {
        let Some(ps) = p.steps.get(producer) else {
            continue;
        };
        let pdir = pod::workdir(ps.working_dir.as_deref(), true)
            .unwrap_or_else(|| pod::DEFAULT_WORKDIR.into());
        let mut seen: Vec<String> = Vec::new();
        for path in &ps.outputs.artifacts {
            let clean = path.trim_start_matches("./").trim_end_matches('/');
            let first = clean.split('/').next().unwrap_or(clean).to_string();
            let at = format!("{}/{first}", pdir.trim_end_matches('/'));
            if seen.contains(&first) || mounts.iter().any(|m| m.mount_path == at) {
                continue;
            }
            seen.push(first.clone());
            mounts.push(VolumeMount {
                name: WORK_VOLUME.into(),
                mount_path: at,
                sub_path: Some(format!("artifacts/{producer}/{first}")),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        }
    }
    let uses_volume = !mounts.is_empty() || (workers.is_some() && !step.outputs.params.is_empty());
    let resources_patch = resource_patch(tr, step, container_name, refs);
    let outputs = Inputs {
        parameters: step
            .outputs
            .params
            .iter()
            .map(|o| Parameter {
                name: o.clone(),
                value_from: Some(ValueFrom {
                    path: Some(format!("{}/{o}", pod::OUTPUTS_DIR)),
                    ..ValueFrom::default()
                }),
                ..Parameter::default()
            })
            .collect(),
        artifacts: Vec::new(),
    };
    let mut labels = super::labels(object, "pipeline-step");
    labels.insert("mlctl.dev/step".into(), step_name.into());
    let Some(n) = workers else {
        proc.container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .extend(mounts);
        let static_key = fnv(&serde_json::to_string(&proc.container).unwrap_or_default());
        let memoize = (step.cache != Some(false)
            && step.outputs.artifacts.is_empty()
            && !step.outputs.params.is_empty())
        .then(|| memoize(object, step_name, &static_key, refs));
        let template = Template {
            name: step_name.into(),
            inputs: inputs(refs),
            outputs,
            metadata: Some(TemplateMetadata { labels }),
            container: Some(proc.container),
            volumes: proc.mounts.volumes,
            node_selector: proc.node_selector,
            tolerations: proc.tolerations,
            priority_class_name: step.priority_class.clone(),
            service_account_name: step.service_account.clone(),
            active_deadline_seconds: step.deadline.as_ref().map(secs),
            retry_strategy: step.retries.as_ref().map(retry_strategy),
            memoize,
            pod_spec_patch: resources_patch,
            ..Template::default()
        };
        return Ok((vec![template], uses_volume));
    };
    // A distributed step: a gang Job on the run volume.
    let port = training::master_port(step);
    let mut selector = BTreeMap::from([
        (
            "app.kubernetes.io/instance".to_string(),
            object.name().to_string(),
        ),
        ("mlctl.dev/step".to_string(), step_name.to_string()),
    ]);
    ctx.push_k8s(&training::headless_service(
        object,
        &svc,
        ns,
        "pipeline-step",
        selector.clone(),
        port,
    ))?;
    if !step.outputs.params.is_empty() {
        for m in proc.container.volume_mounts.iter_mut().flatten() {
            if m.name == "mlctl-outputs" {
                m.name = WORK_VOLUME.into();
                m.sub_path_expr = Some(format!("outputs/{step_name}/rank-$(RANK)"));
            }
        }
        proc.mounts.volumes.retain(|v| v.name != "mlctl-outputs");
    }
    proc.container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .extend(mounts);
    if uses_volume {
        proc.mounts.volumes.push(Volume {
            name: WORK_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{{{{workflow.name}}}}-{WORK_VOLUME}"),
                ..PersistentVolumeClaimVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    if resources_patch.is_some() {
        ctx.warn(object, format!("step {step_name}: parameters in the resources of a distributed step are fixed at render time"));
    }
    let mut spec = training::pod_spec(proc, step, "Never");
    spec.subdomain = Some(svc.clone());
    let mut pod_labels = labels.clone();
    pod_labels.append(&mut selector);
    pod_labels.insert(
        "workflows.argoproj.io/workflow".into(),
        "{{workflow.name}}".into(),
    );
    if ctx.opts.training == TrainingBackend::Kubeflow {
        ctx.warn(
            object,
            format!(
                "step {step_name}: a distributed pipeline step is an Indexed Job whatever \
                 --training says: Argo restarts it as a gang and reads rank 0's outputs"
            ),
        );
    }
    perms.allow("batch", "jobs", &["create", "get"]);
    let job = k8s_openapi::api::batch::v1::Job {
        metadata: ObjectMeta {
            generate_name: Some(format!("{{{{workflow.name}}}}-{step_name}-")),
            namespace: Some(ns.into()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(training::indexed_job_spec(
            n,
            GangRetries::None,
            pod_labels,
            spec,
        )),
        ..Default::default()
    };
    let kind = "Job";
    // completionTime is set only when the Job succeeds (rank 0 succeeded); the first failed
    // worker fails the Job (podFailurePolicy FailJob).
    let (success, failure) = ("status.completionTime", "status.failed > 0");
    let manifest = serde_json::to_value(&job);
    let manifest = manifest.map_err(|e| RenderError::Serialize {
        object: format!("{kind}/{step_name}"),
        message: e.to_string(),
    })?;
    let yaml = serde_saphyr::to_string(&manifest).map_err(|e| RenderError::Serialize {
        object: format!("{kind}/{step_name}"),
        message: e.to_string(),
    })?;
    let gang = Template {
        name: if step.outputs.params.is_empty() {
            step_name.into()
        } else {
            format!("{step_name}-gang")
        },
        inputs: inputs(refs),
        resource: Some(ResourceTemplate {
            action: "create".into(),
            success_condition: Some(success.into()),
            failure_condition: Some(failure.into()),
            set_owner_reference: true,
            manifest: yaml,
        }),
        retry_strategy: step.retries.as_ref().map(retry_strategy),
        ..Template::default()
    };
    if step.outputs.params.is_empty() {
        return Ok((vec![gang], uses_volume));
    }
    // Rank 0's outputs, handed to Argo by a container that only mounts them.
    let sized = pod::size(
        ctx,
        object,
        ns,
        &mlctl_core::spec::common::Resources {
            cpu: Some(Templated::Value(
                mlctl_core::quantity::Quantity::from_milli(100),
            )),
            memory: Some(Templated::Value(
                mlctl_core::quantity::Quantity::from_bytes(64 << 20),
            )),
            ..Default::default()
        },
        &|_| None,
    )?;
    let mut m = pod::Mounts::default();
    m.tmp();
    let mut collect = pod::container(
        "main",
        &ctx.opts.server_image,
        &["mlctl".into(), "version".into()],
        Vec::new(),
        &sized,
        &m,
        false,
    );
    collect
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(VolumeMount {
            name: WORK_VOLUME.into(),
            mount_path: pod::OUTPUTS_DIR.into(),
            sub_path: Some(format!("outputs/{step_name}/rank-0")),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    let hand_over = Template {
        name: step_name.into(),
        outputs,
        metadata: Some(TemplateMetadata { labels }),
        container: Some(collect),
        volumes: m.volumes,
        ..Template::default()
    };
    Ok((vec![gang, hand_over], true))
}

fn memoize(object: &Object, step: &str, static_key: &str, refs: &Refs) -> Memoize {
    let mut dynamic: Vec<String> = refs
        .pipeline_params
        .iter()
        .map(|p| format!("workflow.parameters['{p}']"))
        .collect();
    dynamic.extend(
        refs.params
            .iter()
            .map(|(n, _)| format!("inputs.parameters['{n}']")),
    );
    let key = if dynamic.is_empty() {
        format!("{step}-{static_key}")
    } else {
        format!(
            "{step}-{static_key}-{{{{=sprig.sha256sum({})}}}}",
            dynamic.join(" + '|' + ")
        )
    };
    Memoize {
        key,
        // Argo requires a bound; a month keeps results of the same inputs reusable.
        max_age: "720h".into(),
        cache: MemoizeCache {
            config_map: ConfigMapKeyRef {
                name: format!("{}-cache", object.name()),
            },
        },
    }
}

/// A `podSpecPatch` for resource fields that are parameters.
fn resource_patch(
    tr: &Translator<'_>,
    step: &JobSpec,
    container: &str,
    refs: &mut Refs,
) -> Option<String> {
    let r = &step.resources;
    let mut requests = serde_json::Map::new();
    let mut limits = serde_json::Map::new();
    let mut any = false;
    for (key, value, limit) in [
        (
            "cpu",
            &r.cpu,
            r.limits
                .as_ref()
                .and_then(|l| l.cpu.as_ref())
                .or(r.cpu.as_ref()),
        ),
        (
            "memory",
            &r.memory,
            r.limits
                .as_ref()
                .and_then(|l| l.memory.as_ref())
                .or(r.memory.as_ref()),
        ),
        (pod::GPU_RESOURCE, &r.gpu, r.gpu.as_ref()),
    ] {
        if let Some(Templated::Template(t)) = value {
            requests.insert(key.into(), tr.text(t, refs, Scope::Template).into());
            any = true;
        }
        if let Some(Templated::Template(t)) = limit {
            limits.insert(key.into(), tr.text(t, refs, Scope::Template).into());
            any = true;
        }
    }
    any.then(|| {
        serde_json::json!({
            "containers": [{
                "name": container,
                "resources": {"requests": requests, "limits": limits},
            }]
        })
        .to_string()
    })
}

#[allow(clippy::too_many_arguments)]
fn deploy_template(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    step_name: &str,
    service: &str,
    model: &str,
    refs: &Refs,
    perms: &mut Permissions,
) -> Result<Template, RenderError> {
    let Some(svc_object) = ctx
        .spec
        .objects()
        .iter()
        .find(|o| {
            o.kind() == Kind::InferenceService
                && o.name() == service
                && o.namespace() == object.namespace()
        })
        .cloned()
    else {
        return Err(unsupported(
            object,
            &format!("step {step_name}: no InferenceService named {service}"),
        ));
    };
    let Spec::InferenceService(spec) = &svc_object.spec else {
        return Err(unsupported(object, "not an InferenceService"));
    };
    let value = match ctx.opts.serving {
        ServingBackend::Native => {
            perms.allow("apps", "deployments", &["create", "get", "patch"]);
            ctx.deploy_manifest = None;
            serving::native(ctx, &svc_object, ns, spec, Some(model))?;
            ctx.deploy_manifest.take()
        }
        ServingBackend::Kserve => {
            perms.allow(
                "serving.kserve.io",
                "inferenceservices",
                &["create", "get", "patch"],
            );
            let (isvc, _) = serving::kserve_object(ctx, &svc_object, ns, spec, Some(model))?;
            serde_json::to_value(&isvc).ok()
        }
        ServingBackend::Seldon => {
            perms.allow(
                "machinelearning.seldon.io",
                "seldondeployments",
                &["create", "get", "patch"],
            );
            let (sdep, _) = serving::seldon_object(ctx, &svc_object, ns, spec, Some(model))?;
            serde_json::to_value(&sdep).ok()
        }
    };
    let value =
        value.ok_or_else(|| unsupported(object, "the deploy manifest could not be built"))?;
    let yaml = serde_saphyr::to_string(&value).map_err(|e| RenderError::Serialize {
        object: svc_object.id(),
        message: e.to_string(),
    })?;
    Ok(Template {
        name: step_name.into(),
        inputs: inputs(refs),
        resource: Some(ResourceTemplate {
            action: "apply".into(),
            manifest: yaml,
            ..ResourceTemplate::default()
        }),
        ..Template::default()
    })
}

fn data_job_template(
    ctx: &mut Ctx<'_>,
    target: &Object,
    step_name: &str,
    perms: &mut Permissions,
) -> Result<Template, RenderError> {
    let Spec::DataJob(d) = &target.spec else {
        return Err(unsupported(target, "not a DataJob"));
    };
    let (value, success, failure) = super::data::workload(ctx, target, d)?;
    let mut value = value;
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("name");
        meta.insert(
            "generateName".into(),
            format!("{{{{workflow.name}}}}-{step_name}-").into(),
        );
    }
    match d.engine {
        mlctl_core::spec::data::Engine::Spark => perms.allow(
            "sparkoperator.k8s.io",
            "sparkapplications",
            &["create", "get"],
        ),
        mlctl_core::spec::data::Engine::Dask => {
            perms.allow("kubernetes.dask.org", "daskjobs", &["create", "get"])
        }
    }
    let yaml = serde_saphyr::to_string(&value).map_err(|e| RenderError::Serialize {
        object: target.id(),
        message: e.to_string(),
    })?;
    Ok(Template {
        name: step_name.into(),
        resource: Some(ResourceTemplate {
            action: "create".into(),
            success_condition: Some(success.into()),
            failure_condition: Some(failure.into()),
            set_owner_reference: true,
            manifest: yaml,
        }),
        ..Template::default()
    })
}
