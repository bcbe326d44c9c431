//! TrainingJob → an Indexed `Job` with a headless `Service` (native), or a Kubeflow
//! `PyTorchJob`; plus a `VerticalPodAutoscaler` when the job asks for right-sizing.
//!
//! The distributed contract (the same as the local runtime's): one pod per worker, each with
//! `MASTER_ADDR` (rank 0's stable DNS name `JOB-0.SERVICE`, from the Indexed Job's hostnames
//! and the headless Service as subdomain), `MASTER_PORT`, `WORLD_SIZE`, `RANK` = `NODE_RANK` =
//! `JOB_COMPLETION_INDEX` (the completion index), `LOCAL_RANK=0`, and torchrun's `PET_*`.
//!
//! Gang semantics with a plain Job: the Job succeeds when rank 0 succeeds (`successPolicy`
//! on index 0; the other workers are then stopped). Without retries, the first worker that
//! fails fails the Job, and the Job stops every other worker (`podFailurePolicy` `FailJob`).
//! With `retries.limit = L`, each worker can be replaced L times (`backoffLimitPerIndex`),
//! at the same hostname, and the first index out of retries fails the whole Job
//! (`maxFailedIndexes: 0`); its peers fail on the broken collective and are replaced with
//! it, so the gang re-forms at the same addresses. Evictions and preemptions
//! (`DisruptionTarget`) never count. Each attempt is bounded by the pod's
//! `activeDeadlineSeconds` (the spec's `deadline`). In a Pipeline, Argo retries the gang as
//! a whole instead (see [`super::pipeline`]).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec as K8sJobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule, SuccessPolicy, SuccessPolicyRule,
};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mlctl_core::spec::Object;
use mlctl_core::spec::job::{JobSpec, Rightsizing};

use super::crd::{
    PyTorchJob, PyTorchJobSpec, ReplicaSpec, RunPolicy, Vpa, VpaContainerPolicy, VpaResourcePolicy,
    VpaSpec, VpaTargetRef, VpaUpdatePolicy,
};
use super::pod::{self, Mounts};
use super::{Ctx, RenderError, TrainingBackend, meta, secs};

/// The default rendezvous port on Kubernetes (torchrun's).
pub const DEFAULT_MASTER_PORT: u16 = 29500;

/// One process of a job, ready to be put in a pod: its container, volumes and placement.
#[derive(Debug, Clone)]
pub struct Process {
    /// The main container.
    pub container: Container,
    /// Its volumes and mounts.
    pub mounts: Mounts,
    /// Node selector.
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Tolerations.
    pub tolerations: Option<Vec<Toleration>>,
}

/// Builds the container of a job or step process: resources, scratch space, the outputs
/// directory, `/dev/shm`, the spec's volumes, artifacts and environment.
///
/// `run` and `env` are already substituted; `lookup` resolves parameters of resource fields.
#[allow(clippy::too_many_arguments)]
pub fn process(
    ctx: &Ctx<'_>,
    object: &Object,
    namespace: &str,
    job: &JobSpec,
    container_name: &str,
    image: &str,
    run: &[String],
    mut env: Vec<EnvVar>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Process, RenderError> {
    let sized = pod::size(ctx, object, namespace, &job.resources, lookup)?;
    let gpu = sized.gpus > 0 || sized.gpu_templated;
    let mut mounts = Mounts::default();
    mounts.tmp();
    mounts.scratch("mlctl-outputs", pod::OUTPUTS_DIR, None, false);
    if job.workers.is_some() || job.resources.shm.is_some() || gpu {
        mounts.scratch("dshm", "/dev/shm", job.resources.shm.as_ref(), true);
    }
    let relative_volumes = job.volumes.values().any(|v| !v.path.starts_with('/'));
    let workdir = pod::workdir(
        job.working_dir.as_deref(),
        relative_volumes || !job.outputs.artifacts.is_empty(),
    );
    mounts.spec_volumes(
        &job.volumes,
        workdir.as_deref().unwrap_or(pod::DEFAULT_WORKDIR),
    );
    let writable_root = match &workdir {
        Some(dir) => mounts.artifacts(dir, &job.outputs.artifacts),
        None => false,
    };
    env.insert(0, pod::env("MLCTL_OUTPUTS", pod::OUTPUTS_DIR));
    env.extend(pod::secret_env(&job.secret_env));
    let mut container = pod::container(
        container_name,
        image,
        run,
        env,
        &sized,
        &mounts,
        writable_root,
    );
    container.working_dir = workdir;
    let (node_selector, tolerations) = pod::scheduling(
        ctx,
        &job.node_selector,
        &job.tolerations,
        gpu,
        job.resources.gpu_type.as_deref(),
    );
    Ok(Process {
        container,
        mounts,
        node_selector,
        tolerations,
    })
}

/// The distributed environment of an Indexed Job's workers. `job_name` is the Job's name,
/// or `None` when it is generated (then it is read from the pod's `job-name` label).
pub fn distributed_env(
    job_name: Option<&str>,
    service: &str,
    workers: u32,
    port: u16,
) -> Vec<EnvVar> {
    const INDEX: &str = "metadata.annotations['batch.kubernetes.io/job-completion-index']";
    let mut env = Vec::new();
    let master = match job_name {
        Some(name) => format!("{name}-0.{service}"),
        None => {
            env.push(pod::env_field(
                "MLCTL_JOB_NAME",
                "metadata.labels['batch.kubernetes.io/job-name']",
            ));
            format!("$(MLCTL_JOB_NAME)-0.{service}")
        }
    };
    env.extend([
        pod::env_field("JOB_COMPLETION_INDEX", INDEX),
        pod::env_field("RANK", INDEX),
        pod::env_field("NODE_RANK", INDEX),
        pod::env("LOCAL_RANK", "0"),
        pod::env("WORLD_SIZE", workers.to_string()),
        pod::env("MASTER_ADDR", master.clone()),
        pod::env("MASTER_PORT", port.to_string()),
        pod::env("PET_NNODES", workers.to_string()),
        pod::env("PET_NPROC_PER_NODE", "1"),
        pod::env_field("PET_NODE_RANK", INDEX),
        pod::env("PET_MASTER_ADDR", master),
        pod::env("PET_MASTER_PORT", port.to_string()),
    ]);
    env
}

/// The rendezvous port of a job.
pub fn master_port(job: &JobSpec) -> u16 {
    job.master_port.unwrap_or(DEFAULT_MASTER_PORT)
}

/// The headless Service that gives each worker of `job_selector`'s pods a DNS name.
pub fn headless_service(
    object: &Object,
    name: &str,
    namespace: &str,
    component: &str,
    selector: BTreeMap<String, String>,
    port: u16,
) -> Service {
    Service {
        metadata: meta(object, name, Some(namespace), component),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector),
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![ServicePort {
                name: Some("rendezvous".into()),
                port: i32::from(port),
                target_port: Some(IntOrString::Int(i32::from(port))),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// How a gang Job handles failures.
#[derive(Debug, Clone, Copy)]
pub enum GangRetries {
    /// The Job itself replaces failed workers up to this many times per worker.
    PerIndex(u32),
    /// The first failure fails the Job (a workflow engine retries the gang).
    None,
}

/// The spec of an Indexed Job running `workers` copies of `pod_spec`.
pub fn indexed_job_spec(
    workers: u32,
    retries: GangRetries,
    pod_labels: BTreeMap<String, String>,
    pod_spec: PodSpec,
) -> K8sJobSpec {
    let n = i32::try_from(workers).unwrap_or(i32::MAX);
    let ignore_disruptions = PodFailurePolicyRule {
        action: "Ignore".into(),
        on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
        }]),
        ..PodFailurePolicyRule::default()
    };
    let mut rules = vec![ignore_disruptions];
    let (backoff_limit, per_index, max_failed) = match retries {
        GangRetries::PerIndex(limit) if limit > 0 => (
            None,
            Some(i32::try_from(limit).unwrap_or(i32::MAX)),
            Some(0),
        ),
        _ => {
            rules.push(PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    operator: "NotIn".into(),
                    values: vec![0],
                    ..PodFailurePolicyOnExitCodesRequirement::default()
                }),
                ..PodFailurePolicyRule::default()
            });
            (Some(0), None, None)
        }
    };
    K8sJobSpec {
        completion_mode: Some("Indexed".into()),
        completions: Some(n),
        parallelism: Some(n),
        backoff_limit,
        backoff_limit_per_index: per_index,
        max_failed_indexes: max_failed,
        pod_failure_policy: Some(PodFailurePolicy { rules }),
        pod_replacement_policy: Some("Failed".into()),
        success_policy: Some(SuccessPolicy {
            rules: vec![SuccessPolicyRule {
                succeeded_indexes: Some("0".into()),
                ..SuccessPolicyRule::default()
            }],
        }),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(pod_labels),
                ..ObjectMeta::default()
            }),
            spec: Some(pod_spec),
        },
        ..K8sJobSpec::default()
    }
}

/// A pod spec for one process with the restricted security context.
pub fn pod_spec(p: Process, job: &JobSpec, restart_policy: &str) -> PodSpec {
    PodSpec {
        containers: vec![p.container],
        volumes: (!p.mounts.volumes.is_empty()).then_some(p.mounts.volumes),
        node_selector: p.node_selector,
        tolerations: p.tolerations,
        restart_policy: Some(restart_policy.into()),
        security_context: Some(pod::pod_security()),
        active_deadline_seconds: job.deadline.as_ref().map(secs),
        priority_class_name: job.priority_class.clone(),
        service_account_name: job.service_account.clone(),
        // Training processes do not talk to the API server unless given an account.
        automount_service_account_token: job.service_account.is_none().then_some(false),
        ..PodSpec::default()
    }
}

/// Renders a TrainingJob.
pub fn render(ctx: &mut Ctx<'_>, object: &Object, job: &JobSpec) -> Result<(), RenderError> {
    let ns = ctx.namespace(object);
    let name = object.name().to_string();
    let params = &job.params;
    let lookup = |p: &str| ctx.param(params, p);
    let workers = match &job.workers {
        Some(w) => Some(
            w.resolve(|r| match r {
                mlctl_core::template::Ref::Param(p) => ctx.param(params, p),
                _ => None,
            })
            .map_err(|why| RenderError::InvalidValue {
                object: object.id(),
                message: format!("workers: {why}"),
            })?,
        ),
        None => None,
    };
    let run = job
        .argv()
        .iter()
        .map(|a| pod::resolve_params(ctx, object, params, a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = pod::plain_env(&job.env, |v| pod::resolve_params(ctx, object, params, v))?;
    let Some(image) = job.image.clone() else {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: "a TrainingJob needs `image` on Kubernetes".into(),
        });
    };
    let port = master_port(job);
    let mut pod_labels = super::labels(object, "training");
    match ctx.opts.training {
        TrainingBackend::Native => {
            if let Some(n) = workers {
                env.extend(distributed_env(Some(&name), &name, n, port));
            }
            let p = process(ctx, object, &ns, job, "worker", &image, &run, env, &lookup)?;
            let mut spec = pod_spec(p, job, "Never");
            let job_spec = if let Some(n) = workers {
                spec.subdomain = Some(name.clone());
                let retries = job.retries.as_ref().map_or(0, |r| r.limit);
                let svc = headless_service(
                    object,
                    &name,
                    &ns,
                    "training",
                    BTreeMap::from([("batch.kubernetes.io/job-name".into(), name.clone())]),
                    port,
                );
                ctx.push_k8s(&svc)?;
                indexed_job_spec(n, GangRetries::PerIndex(retries), pod_labels, spec)
            } else {
                K8sJobSpec {
                    backoff_limit: Some(
                        job.retries
                            .as_ref()
                            .map_or(0, |r| i32::try_from(r.limit).unwrap_or(i32::MAX)),
                    ),
                    pod_failure_policy: Some(PodFailurePolicy {
                        rules: vec![PodFailurePolicyRule {
                            action: "Ignore".into(),
                            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                                type_: "DisruptionTarget".into(),
                                status: "True".into(),
                            }]),
                            ..PodFailurePolicyRule::default()
                        }],
                    }),
                    pod_replacement_policy: Some("Failed".into()),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(pod_labels),
                            ..ObjectMeta::default()
                        }),
                        spec: Some(spec),
                    },
                    ..K8sJobSpec::default()
                }
            };
            if job.retries.as_ref().is_some_and(|r| r.backoff.is_some()) {
                ctx.warn(
                    object,
                    "a Kubernetes Job retries with its own exponential backoff (10s doubling, \
                     capped at 6m); the spec's backoff applies locally and in pipelines",
                );
            }
            let k8s_job = Job {
                metadata: meta(object, &name, Some(&ns), "training"),
                spec: Some(job_spec),
                ..Job::default()
            };
            ctx.push_k8s(&k8s_job)?;
            if let Some(mode) = job.rightsizing {
                vpa(ctx, object, &ns, &name, "batch/v1", "Job", "worker", mode)?;
            }
        }
        TrainingBackend::Kubeflow => {
            let n = workers.unwrap_or(1);
            // The training operator sets MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and the
            // PET_* variables itself; mlctl adds the rest of the contract.
            env.push(pod::env("LOCAL_RANK", "0"));
            let p = process(ctx, object, &ns, job, "pytorch", &image, &run, env, &lookup)?;
            let mut container = p.container.clone();
            container.ports = Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                name: Some("pytorchjob-port".into()),
                container_port: i32::from(port),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]);
            let p = Process { container, ..p };
            let spec = pod_spec(p, job, "Never");
            pod_labels.remove("app.kubernetes.io/component");
            pod_labels.insert("app.kubernetes.io/component".into(), "training".into());
            let template = PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            };
            let replica = |replicas: u32| ReplicaSpec {
                replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
                restart_policy: "Never".into(),
                template: template.clone(),
            };
            let mut specs = BTreeMap::from([("Master".to_string(), replica(1))]);
            if n > 1 {
                specs.insert("Worker".into(), replica(n - 1));
            }
            let ptj = PyTorchJob::new(
                meta(object, &name, Some(&ns), "training"),
                PyTorchJobSpec {
                    nproc_per_node: "1".into(),
                    pytorch_replica_specs: specs,
                    run_policy: RunPolicy {
                        backoff_limit: job
                            .retries
                            .as_ref()
                            .map_or(0, |r| i32::try_from(r.limit).unwrap_or(i32::MAX)),
                        clean_pod_policy: "Running".into(),
                        active_deadline_seconds: None,
                    },
                },
            );
            ctx.push(
                PyTorchJob::API_VERSION,
                PyTorchJob::KIND,
                &ptj.metadata,
                &ptj,
            )?;
            if let Some(mode) = job.rightsizing {
                vpa(
                    ctx,
                    object,
                    &ns,
                    &name,
                    PyTorchJob::API_VERSION,
                    PyTorchJob::KIND,
                    "pytorch",
                    mode,
                )?;
            }
        }
    }
    Ok(())
}

/// A VerticalPodAutoscaler that right-sizes CPU and memory only (a VPA cannot manage
/// GPUs) and never evicts a running training pod: `Off` only recommends, `Initial` applies
/// the recommendation to new pods.
#[allow(clippy::too_many_arguments)]
pub fn vpa(
    ctx: &mut Ctx<'_>,
    object: &Object,
    namespace: &str,
    target: &str,
    api_version: &str,
    kind: &str,
    container: &str,
    mode: Rightsizing,
) -> Result<(), RenderError> {
    let vpa = Vpa::new(
        meta(object, target, Some(namespace), "rightsizing"),
        VpaSpec {
            target_ref: VpaTargetRef {
                api_version: api_version.into(),
                kind: kind.into(),
                name: target.into(),
            },
            update_policy: VpaUpdatePolicy {
                update_mode: match mode {
                    Rightsizing::Recommend => "Off",
                    Rightsizing::Initial => "Initial",
                }
                .into(),
            },
            resource_policy: VpaResourcePolicy {
                container_policies: vec![VpaContainerPolicy {
                    container_name: container.into(),
                    controlled_resources: vec!["cpu".into(), "memory".into()],
                    controlled_values: "RequestsAndLimits".into(),
                }],
            },
        },
    );
    ctx.push(Vpa::API_VERSION, Vpa::KIND, &vpa.metadata, &vpa)
}
