//! DataJob → a Spark operator `SparkApplication` (with the driver's `ServiceAccount` and the
//! `Role` Spark needs to manage its executors) or a Dask operator `DaskJob`.
//!
//! Spark: memory is written as Kubernetes quantities in the spec and converted to Spark's
//! units (`16Gi` → `16g`); cores are whole (`cores`) with the exact request as `coreRequest`;
//! credentials come only from Secret references (`secretEnv`): a literal credential in
//! `spark.conf` is refused. Dask: the scheduler is a `ClusterIP` Service (the dashboard stays
//! inside the cluster: `kubectl port-forward` to see it), workers and scheduler have their
//! real ports and health checks, and nothing is pip-installed at start.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction, PodSpec, Probe, ServicePort};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mlctl_core::quantity::Quantity;
use mlctl_core::spec::Object;
use mlctl_core::spec::common::Resources;
use mlctl_core::spec::data::{DataJobSpec, Engine};

use super::crd::{
    DaskClusterSpec, DaskClusterTemplate, DaskJob, DaskJobSpec, DaskMetadata, DaskPod,
    DaskScheduler, DaskService, DaskWorker, SparkApplication, SparkDeps, SparkGpu, SparkPod,
    SparkRestartPolicy, SparkSpec,
};
use super::pod::{self, Mounts};
use super::{Ctx, RenderError, meta, secs};

/// Renders a DataJob.
pub fn render(ctx: &mut Ctx<'_>, object: &Object, d: &DataJobSpec) -> Result<(), RenderError> {
    let ns = ctx.namespace(object);
    if d.engine == Engine::Spark {
        let sa = d
            .service_account
            .clone()
            .unwrap_or_else(|| format!("{}-driver", object.name()));
        spark_rbac(ctx, object, &ns, &sa)?;
    }
    let (value, _, _) = workload(ctx, object, d)?;
    let name = object.name().to_string();
    let (api_version, kind) = match d.engine {
        Engine::Spark => (SparkApplication::API_VERSION, SparkApplication::KIND),
        Engine::Dask => (DaskJob::API_VERSION, DaskJob::KIND),
    };
    let m = meta(object, &name, Some(&ns), "data");
    ctx.push(api_version, kind, &m, &value)
}

/// The DataJob's object as JSON, with Argo's success and failure conditions for it.
pub fn workload(
    ctx: &mut Ctx<'_>,
    object: &Object,
    d: &DataJobSpec,
) -> Result<(serde_json::Value, &'static str, &'static str), RenderError> {
    let ns = ctx.namespace(object);
    if let Some(py) = &d.python
        && !py.requirements.is_empty()
    {
        ctx.warn(
            object,
            format!(
                "python.requirements ({}) are installed locally only: on Kubernetes bake them \
                 into the image instead of installing at every start",
                py.requirements.join(", ")
            ),
        );
    }
    let value = match d.engine {
        Engine::Spark => serde_json::to_value(spark(ctx, object, &ns, d)?),
        Engine::Dask => serde_json::to_value(dask(ctx, object, &ns, d)?),
    }
    .map_err(|e| RenderError::Serialize {
        object: object.id(),
        message: e.to_string(),
    })?;
    Ok(match d.engine {
        Engine::Spark => (
            value,
            "status.applicationState.state == COMPLETED",
            "status.applicationState.state in (FAILED, SUBMISSION_FAILED)",
        ),
        Engine::Dask => (
            value,
            "status.jobStatus == Successful",
            "status.jobStatus == Failed",
        ),
    })
}

/// Memory in Spark's units (`g`, `m`, `k`), rounded up to what the quantity says.
pub fn spark_memory(q: &Quantity) -> String {
    let bytes = q.units_ceil();
    const KI: i128 = 1024;
    if bytes % (KI * KI * KI) == 0 {
        format!("{}g", bytes / (KI * KI * KI))
    } else if bytes % (KI * KI) == 0 {
        format!("{}m", bytes / (KI * KI))
    } else {
        format!("{}k", (bytes + KI - 1) / KI)
    }
}

fn spark_rbac(ctx: &mut Ctx<'_>, object: &Object, ns: &str, sa: &str) -> Result<(), RenderError> {
    let rule = |resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(resources.iter().map(|r| (*r).to_string()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_string()).collect(),
        ..PolicyRule::default()
    };
    let manage = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "watch",
    ];
    let rules = vec![
        rule(&["pods"], &manage),
        rule(
            &["services", "configmaps", "persistentvolumeclaims"],
            &manage,
        ),
    ];
    super::service_account_with_role(ctx, object, ns, sa, "data", rules)
}

fn spark(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    d: &DataJobSpec,
) -> Result<SparkApplication, RenderError> {
    let spark = d.spark.clone().unwrap_or_default();
    for key in spark.conf.keys() {
        let k = key.to_ascii_lowercase();
        if ["secret", "password", "access.key", "token", "credential"]
            .iter()
            .any(|w| k.contains(w))
        {
            return Err(RenderError::Unsupported {
                object: object.id(),
                message: format!(
                    "spark.conf.{key} looks like a credential: pass credentials with \
                     secretEnv (Secret references), never as literal configuration"
                ),
            });
        }
    }
    let type_ = if d.script.ends_with(".py") {
        "Python"
    } else if d.script.ends_with(".R") {
        "R"
    } else {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: format!(
                "{}: mlctl renders Python (and R) Spark scripts; a JAR needs a main class",
                d.script
            ),
        });
    };
    let main_file = if d.script.contains("://") {
        d.script.clone()
    } else {
        ctx.warn(
            object,
            format!(
                "script {} is a local path: the image must contain it at \
                 /opt/spark/work-dir/{}",
                d.script, d.script
            ),
        );
        format!("local:///opt/spark/work-dir/{}", d.script)
    };
    let Some(image) = d.image.clone() else {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: "a DataJob needs `image` on Kubernetes".into(),
        });
    };
    let lookup = |p: &str| ctx.param(&d.params, p);
    let mut env = pod::plain_env(&d.env, |v| pod::resolve_params(ctx, object, &d.params, v))?;
    env.extend(pod::secret_env(&d.secret_env));
    let mut mounts = Mounts::default();
    mounts.tmp();
    mounts.spec_volumes(&d.volumes, pod::DEFAULT_WORKDIR);
    let labels = super::labels(object, "data");
    let side = |r: &Resources, instances: Option<i32>| -> Result<SparkPod, RenderError> {
        let sized = pod::size(ctx, object, ns, r, &lookup)?;
        let req = sized.requirements.requests.clone().unwrap_or_default();
        let lim = sized.requirements.limits.clone().unwrap_or_default();
        let cpu: Quantity = req
            .get("cpu")
            .and_then(|q| q.0.parse().ok())
            .unwrap_or_else(|| Quantity::from_milli(1000));
        let memory: Quantity = req
            .get("memory")
            .and_then(|q| q.0.parse().ok())
            .unwrap_or_else(|| Quantity::from_bytes(1 << 30));
        let gpu = sized.gpus > 0;
        let (node_selector, tolerations) = pod::scheduling(
            ctx,
            &d.node_selector,
            &d.tolerations,
            gpu,
            r.gpu_type.as_deref(),
        );
        Ok(SparkPod {
            cores: i32::try_from(cpu.units_ceil().max(1)).unwrap_or(1),
            core_request: cpu.to_string(),
            core_limit: lim
                .get("cpu")
                .map_or_else(|| cpu.to_string(), |q| q.0.clone()),
            memory: spark_memory(&memory),
            instances,
            gpu: gpu.then(|| SparkGpu {
                name: pod::GPU_RESOURCE.into(),
                quantity: i64::try_from(sized.gpus).unwrap_or(1),
            }),
            labels: labels.clone(),
            service_account: None,
            env: env.clone(),
            volume_mounts: mounts.mounts.clone(),
            node_selector,
            tolerations,
            priority_class_name: d.priority_class.clone(),
            pod_security_context: pod::pod_security(),
            security_context: pod::container_security(false),
        })
    };
    let mut driver = side(&d.driver, None)?;
    driver.service_account = Some(
        d.service_account
            .clone()
            .unwrap_or_else(|| format!("{}-driver", object.name())),
    );
    let instances = d
        .executors
        .instances
        .resolve(|r| match r {
            mlctl_core::template::Ref::Param(p) => ctx.param(&d.params, p),
            _ => None,
        })
        .map_err(|why| RenderError::InvalidValue {
            object: object.id(),
            message: format!("executors.instances: {why}"),
        })?;
    let executor = side(
        &d.executors.resources(),
        Some(i32::try_from(instances).unwrap_or(i32::MAX)),
    )?;
    let args = d
        .args
        .iter()
        .map(|a| pod::resolve_params(ctx, object, &d.params, &a.0))
        .collect::<Result<Vec<_>, _>>()?;
    let mut conf: BTreeMap<String, String> = spark
        .conf
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    conf.entry("spark.local.dir".into())
        .or_insert_with(|| "/tmp".into());
    let (retries, interval) = match &d.retries {
        Some(r) => (
            Some(i32::try_from(r.limit).unwrap_or(i32::MAX)),
            Some(r.backoff.as_ref().map_or(10, |b| secs(&b.duration))),
        ),
        None => (None, None),
    };
    if d.deadline.is_some() {
        ctx.warn(
            object,
            "deadline: the Spark operator has no time limit per attempt; it applies locally",
        );
    }
    let deps = SparkDeps {
        jars: spark.jars.clone(),
        py_files: spark.py_files.clone(),
        packages: spark.packages.clone(),
    };
    Ok(SparkApplication::new(
        meta(object, object.name(), Some(ns), "data"),
        SparkSpec {
            type_: type_.into(),
            python_version: (type_ == "Python").then(|| "3".into()),
            mode: "cluster".into(),
            image,
            image_pull_policy: "IfNotPresent".into(),
            main_application_file: main_file,
            arguments: args,
            spark_version: spark.version.clone().unwrap_or_else(|| "3.5.3".into()),
            spark_conf: conf,
            deps: (!deps.jars.is_empty() || !deps.py_files.is_empty() || !deps.packages.is_empty())
                .then_some(deps),
            restart_policy: SparkRestartPolicy {
                type_: if retries.is_some() {
                    "OnFailure"
                } else {
                    "Never"
                }
                .into(),
                on_failure_retries: retries,
                on_failure_retry_interval: interval,
                on_submission_failure_retries: retries,
                on_submission_failure_retry_interval: interval,
            },
            volumes: mounts.volumes.clone(),
            driver,
            executor,
        },
    ))
}

fn dask(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    d: &DataJobSpec,
) -> Result<DaskJob, RenderError> {
    let Some(image) = d.image.clone() else {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: "a DataJob needs `image` on Kubernetes".into(),
        });
    };
    if d.script.contains("://") {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: format!(
                "{}: a Dask job runs a script from its image; put the script in the image",
                d.script
            ),
        });
    }
    let name = object.name().to_string();
    let lookup = |p: &str| ctx.param(&d.params, p);
    let mut env = pod::plain_env(&d.env, |v| pod::resolve_params(ctx, object, &d.params, v))?;
    env.extend(pod::secret_env(&d.secret_env));
    let labels = super::labels(object, "data");
    let pod_for = |container: &str,
                   r: &Resources,
                   run: Vec<String>,
                   ports: Vec<(&str, u16)>,
                   health: Option<&str>,
                   restart: Option<&str>|
     -> Result<PodSpec, RenderError> {
        let sized = pod::size(ctx, object, ns, r, &lookup)?;
        let mut mounts = Mounts::default();
        mounts.tmp();
        mounts.spec_volumes(&d.volumes, pod::DEFAULT_WORKDIR);
        let mut c = pod::container(container, &image, &run, env.clone(), &sized, &mounts, false);
        // Dask's own `$(DASK_WORKER_NAME)` must expand: it is not user text.
        if let Some(args) = c.args.as_mut() {
            for a in args.iter_mut() {
                *a = a.replace("$$(DASK_WORKER_NAME)", "$(DASK_WORKER_NAME)");
            }
        }
        c.ports = (!ports.is_empty()).then(|| {
            ports
                .iter()
                .map(|(n, p)| ContainerPort {
                    name: Some((*n).into()),
                    container_port: i32::from(*p),
                    protocol: Some("TCP".into()),
                    ..ContainerPort::default()
                })
                .collect()
        });
        if let Some(port) = health {
            let probe = |delay: i32, period: i32| Probe {
                http_get: Some(HTTPGetAction {
                    path: Some("/health".into()),
                    port: IntOrString::String(port.into()),
                    ..HTTPGetAction::default()
                }),
                initial_delay_seconds: Some(delay),
                period_seconds: Some(period),
                ..Probe::default()
            };
            c.readiness_probe = Some(probe(5, 10));
            c.liveness_probe = Some(probe(15, 20));
        }
        let (node_selector, tolerations) = pod::scheduling(
            ctx,
            &d.node_selector,
            &d.tolerations,
            sized.gpus > 0,
            r.gpu_type.as_deref(),
        );
        Ok(PodSpec {
            containers: vec![c],
            volumes: Some(mounts.volumes),
            node_selector,
            tolerations,
            restart_policy: restart.map(str::to_string),
            security_context: Some(pod::pod_security()),
            priority_class_name: d.priority_class.clone(),
            service_account_name: d.service_account.clone(),
            automount_service_account_token: d.service_account.is_none().then_some(false),
            active_deadline_seconds: restart.and(d.deadline.as_ref().map(secs)),
            ..PodSpec::default()
        })
    };
    let mut run = vec!["python".to_string(), d.script.clone()];
    for a in &d.args {
        run.push(pod::resolve_params(ctx, object, &d.params, &a.0)?);
    }
    let job = pod_for("job", &d.driver, run, Vec::new(), None, Some("Never"))?;
    let scheduler = pod_for(
        "scheduler",
        &d.scheduler,
        vec!["dask-scheduler".into()],
        vec![("tcp-comm", 8786), ("http-dashboard", 8787)],
        Some("http-dashboard"),
        None,
    )?;
    let worker = pod_for(
        "worker",
        &d.executors.resources(),
        vec![
            "dask-worker".into(),
            "--name".into(),
            "$(DASK_WORKER_NAME)".into(),
            "--dashboard".into(),
            "--dashboard-address".into(),
            "8788".into(),
            "--local-directory".into(),
            "/tmp".into(),
        ],
        vec![("http-dashboard", 8788)],
        None,
        None,
    )?;
    let replicas = d
        .executors
        .instances
        .resolve(|r| match r {
            mlctl_core::template::Ref::Param(p) => ctx.param(&d.params, p),
            _ => None,
        })
        .map_err(|why| RenderError::InvalidValue {
            object: object.id(),
            message: format!("executors.instances: {why}"),
        })?;
    if d.retries.is_some() {
        ctx.warn(object, "retries: the Dask operator does not retry a DaskJob; they apply locally and in pipelines");
    }
    let md = || {
        Some(DaskMetadata {
            labels: labels.clone(),
        })
    };
    let svc_port = |name: &str, port: i32| ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    };
    Ok(DaskJob::new(
        meta(object, &name, Some(ns), "data"),
        DaskJobSpec {
            job: DaskPod {
                metadata: md(),
                spec: job,
            },
            cluster: DaskClusterTemplate {
                spec: DaskClusterSpec {
                    scheduler: DaskScheduler {
                        metadata: md(),
                        spec: scheduler,
                        service: DaskService {
                            type_: "ClusterIP".into(),
                            selector: BTreeMap::from([
                                ("dask.org/cluster-name".to_string(), name.clone()),
                                ("dask.org/component".to_string(), "scheduler".to_string()),
                            ]),
                            ports: vec![
                                svc_port("tcp-comm", 8786),
                                svc_port("http-dashboard", 8787),
                            ],
                        },
                    },
                    worker: DaskWorker {
                        replicas: i32::try_from(replicas).unwrap_or(i32::MAX),
                        metadata: md(),
                        spec: worker,
                    },
                },
            },
        },
    ))
}
