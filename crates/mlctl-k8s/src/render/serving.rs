//! InferenceService → `Deployment` + `Service` + `HorizontalPodAutoscaler` +
//! `PodDisruptionBudget` (native), a KServe `InferenceService` or a Seldon
//! `SeldonDeployment`; plus a `ServiceMonitor` on the port the server exports metrics on,
//! a `PrometheusRule` for the declared alerts and a Grafana dashboard `ConfigMap`.
//!
//! Each model format is served by its real server, with its real ports, health paths and
//! metrics ([`server`]): ONNX by mlctl's built-in server (`mlctl serve-model`, Open Inference
//! Protocol v2 and `/metrics` on 8080), TensorFlow by TensorFlow Serving (REST 8501, gRPC
//! 8500, health `/v1/models/NAME`, metrics `/monitoring/prometheus/metrics` on 8501),
//! Triton (8000/8001/8002), scikit-learn and XGBoost by MLServer (8080/8081, metrics 8082),
//! PyTorch by TorchServe (8080 inference, 8081 management, 8082 metrics, `/ping`).
//!
//! Where the model comes from: `pvc://CLAIM/PATH` mounts the claim read-only at
//! `/mnt/models`; remote URIs (`s3://`, `gs://`, `https://`, `hf://`, `azureblob://`) are
//! downloaded into `/mnt/models` by KServe's storage initializer as an init container (with
//! the `storageSecret`'s keys as environment); a relative path names a file on the
//! PersistentVolumeClaim `SERVICE-models`, which the user provides.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec,
    MetricTarget, PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvFromSource, EnvVar,
    HTTPGetAction, ObjectReference, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec,
    Probe as K8sProbe, SecretEnvSource, Service, ServiceAccount, ServicePort, ServiceSpec,
    TopologySpreadConstraint, Volume,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mlctl_core::spec::Object;
use mlctl_core::spec::serving::{
    InferenceServiceSpec, Model, ModelFormat, PolicyKind, Probe, ScalingRules, SelectPolicy,
};

use super::crd::{
    Endpoint, KserveInferenceService, KserveModel, KserveModelFormat, KservePredictor, KserveSpec,
    PrometheusRule, PrometheusRuleSpec, Rule, RuleGroup, SeldonComponentSpec, SeldonDeployment,
    SeldonEndpoint, SeldonExplainer, SeldonGraph, SeldonPredictor, SeldonSpec, ServiceMonitor,
    ServiceMonitorSpec,
};
use super::pod::{self, Mounts, Sized};
use super::{Ctx, RenderError, ServingBackend, meta, secs, selector_labels};

/// Where models are mounted in the server container.
pub const MODEL_DIR: &str = "/mnt/models";
/// KServe's storage initializer, which downloads models from object stores.
pub const STORAGE_INITIALIZER: &str = "kserve/storage-initializer:v0.15.2";

/// A model server: image, command, ports, health and metrics.
#[derive(Debug, Clone)]
pub struct Server {
    /// Image.
    pub image: String,
    /// `command` (None: the image's entrypoint).
    pub command: Option<Vec<String>>,
    /// `args`.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<EnvVar>,
    /// HTTP (REST) port.
    pub http: u16,
    /// gRPC port.
    pub grpc: Option<u16>,
    /// Metrics port, when not the HTTP port.
    pub metrics_port: Option<u16>,
    /// Metrics path.
    pub metrics_path: String,
    /// Readiness path.
    pub ready_path: String,
    /// Liveness path.
    pub live_path: String,
    /// A configuration file the server reads: (ConfigMap key, mount directory, content).
    pub config: Option<(String, String, String)>,
    /// How alerts and the dashboard read its metrics.
    pub metrics: Metrics,
}

/// The metrics a server exports, as PromQL pieces.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Counter of requests (a `rate()` of it is the request rate).
    pub requests: Option<String>,
    /// Label matcher that selects failed requests of `requests`.
    pub failed: Option<String>,
    /// Latency histogram (without `_bucket`).
    pub latency: Option<String>,
    /// Seconds per unit of the latency histogram (1e-6 for microseconds).
    pub latency_unit: f64,
    /// The per-pod rate metric the HPA's `requestsPerSecond` target uses (through
    /// prometheus-adapter).
    pub rps: Option<String>,
}

/// Where the model is for a native pod: the path the server loads, and how it gets there.
struct ModelSource {
    path: String,
    volume: Option<Volume>,
    init: Option<Container>,
}

fn model_source(
    ctx: &mut Ctx<'_>,
    object: &Object,
    spec: &InferenceServiceSpec,
    model: &Model,
    volume_name: &str,
    mount: &str,
) -> Result<ModelSource, RenderError> {
    let uri = model.uri.as_str();
    if let Some(rest) = uri.strip_prefix("pvc://") {
        let (claim, path) = rest.split_once('/').unwrap_or((rest, ""));
        return Ok(ModelSource {
            path: join(mount, path),
            volume: Some(pvc_volume(volume_name, claim)),
            init: None,
        });
    }
    if uri.starts_with("oci://") {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: format!(
                "{uri}: OCI model images need KServe's modelcars; render with --serving kserve"
            ),
        });
    }
    if uri.contains("://") {
        let file = uri.rsplit('/').next().unwrap_or_default();
        let path = if file.contains('.') {
            join(mount, file)
        } else {
            mount.to_string()
        };
        let init = Container {
            name: format!("{volume_name}-initializer"),
            image: Some(STORAGE_INITIALIZER.into()),
            args: Some(vec![uri.to_string(), mount.to_string()]),
            env_from: spec.storage_secret.as_ref().map(|s| {
                vec![EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: s.clone(),
                        optional: Some(false),
                    }),
                    ..EnvFromSource::default()
                }]
            }),
            resources: Some(
                pod::size(
                    ctx,
                    object,
                    "",
                    &mlctl_core::spec::common::Resources {
                        cpu: Some(mlctl_core::spec::common::Templated::Value(
                            mlctl_core::quantity::Quantity::from_milli(100),
                        )),
                        memory: Some(mlctl_core::spec::common::Templated::Value(
                            mlctl_core::quantity::Quantity::from_bytes(1 << 30),
                        )),
                        ..Default::default()
                    },
                    &|_| None,
                )?
                .requirements,
            ),
            volume_mounts: Some(vec![k8s_openapi::api::core::v1::VolumeMount {
                name: volume_name.into(),
                mount_path: mount.into(),
                ..Default::default()
            }]),
            security_context: Some(pod::container_security(false)),
            ..Container::default()
        };
        return Ok(ModelSource {
            path,
            volume: Some(Volume {
                name: volume_name.into(),
                empty_dir: Some(Default::default()),
                ..Volume::default()
            }),
            init: Some(init),
        });
    }
    let claim = format!("{}-models", object.name());
    ctx.warn(
        object,
        format!(
            "model {uri} is a local path: on Kubernetes it is read from the \
             PersistentVolumeClaim {claim} (create it and copy the model there), or use a \
             pvc://, s3:// or gs:// URI"
        ),
    );
    Ok(ModelSource {
        path: join(mount, uri),
        volume: Some(pvc_volume(volume_name, &claim)),
        init: None,
    })
}

fn pvc_volume(name: &str, claim: &str) -> Volume {
    Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.into(),
            read_only: Some(true),
        }),
        ..Volume::default()
    }
}

fn join(dir: &str, rest: &str) -> String {
    let rest = rest.trim_matches('/');
    if rest.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{rest}")
    }
}

/// The name clients use for the model.
pub fn model_name(object: &Object, model: &Model) -> String {
    model
        .name
        .clone()
        .unwrap_or_else(|| object.name().to_string())
}

/// The server of `format` loading the model at `path` under `name`.
pub fn server(ctx: &Ctx<'_>, format: ModelFormat, name: &str, path: &str, gpu: bool) -> Server {
    let builtin_metrics = Metrics {
        requests: Some("model_requests_total".into()),
        failed: Some("code=~\"5..\"".into()),
        latency: Some("model_inference_duration_seconds".into()),
        latency_unit: 1.0,
        rps: Some("model_requests".into()),
    };
    match format {
        ModelFormat::Onnx => Server {
            image: ctx.opts.server_image.clone(),
            command: None,
            args: vec![
                "serve-model".into(),
                "--model".into(),
                path.into(),
                "--name".into(),
                name.into(),
                "--port".into(),
                "8080".into(),
            ],
            env: Vec::new(),
            http: 8080,
            grpc: None,
            metrics_port: None,
            metrics_path: "/metrics".into(),
            ready_path: "/v2/health/ready".into(),
            live_path: "/v2/health/live".into(),
            config: None,
            metrics: builtin_metrics,
        },
        ModelFormat::Tensorflow => Server {
            image: format!(
                "tensorflow/serving:2.18.0{}",
                if gpu { "-gpu" } else { "" }
            ),
            command: Some(vec!["tensorflow_model_server".into()]),
            args: vec![
                "--port=8500".into(),
                "--rest_api_port=8501".into(),
                format!("--model_name={name}"),
                format!("--model_base_path={path}"),
                "--monitoring_config_file=/etc/tfserving/monitoring.config".into(),
            ],
            env: Vec::new(),
            http: 8501,
            grpc: Some(8500),
            metrics_port: None,
            metrics_path: "/monitoring/prometheus/metrics".into(),
            ready_path: format!("/v1/models/{name}"),
            live_path: format!("/v1/models/{name}"),
            config: Some((
                "monitoring.config".into(),
                "/etc/tfserving".into(),
                "prometheus_config {\n  enable: true\n  path: \"/monitoring/prometheus/metrics\"\n}\n"
                    .into(),
            )),
            metrics: Metrics {
                requests: Some(":tensorflow:serving:request_count".into()),
                failed: Some("status!=\"OK\"".into()),
                latency: Some(":tensorflow:serving:request_latency".into()),
                latency_unit: 1e-6,
                rps: Some("tensorflow_serving_requests".into()),
            },
        },
        ModelFormat::Triton => Server {
            image: "nvcr.io/nvidia/tritonserver:24.12-py3".into(),
            command: Some(vec!["tritonserver".into()]),
            args: vec![
                format!("--model-repository={path}"),
                "--http-port=8000".into(),
                "--grpc-port=8001".into(),
                "--metrics-port=8002".into(),
            ],
            env: Vec::new(),
            http: 8000,
            grpc: Some(8001),
            metrics_port: Some(8002),
            metrics_path: "/metrics".into(),
            ready_path: "/v2/health/ready".into(),
            live_path: "/v2/health/live".into(),
            config: None,
            metrics: Metrics {
                requests: Some("nv_inference_request_success".into()),
                failed: None,
                latency: None,
                latency_unit: 1e-6,
                rps: Some("nv_inference_requests".into()),
            },
        },
        ModelFormat::Sklearn | ModelFormat::Xgboost => Server {
            image: "seldonio/mlserver:1.6.1".into(),
            command: Some(vec!["mlserver".into(), "start".into(), MODEL_DIR.into()]),
            args: Vec::new(),
            env: vec![
                pod::env("MLSERVER_HTTP_PORT", "8080"),
                pod::env("MLSERVER_GRPC_PORT", "8081"),
                pod::env("MLSERVER_METRICS_PORT", "8082"),
                pod::env("MLSERVER_MODEL_NAME", name),
                pod::env(
                    "MLSERVER_MODEL_IMPLEMENTATION",
                    if format == ModelFormat::Sklearn {
                        "mlserver_sklearn.SKLearnModel"
                    } else {
                        "mlserver_xgboost.XGBoostModel"
                    },
                ),
                pod::env("MLSERVER_MODEL_URI", path),
            ],
            http: 8080,
            grpc: Some(8081),
            metrics_port: Some(8082),
            metrics_path: "/metrics".into(),
            ready_path: "/v2/health/ready".into(),
            live_path: "/v2/health/live".into(),
            config: None,
            metrics: Metrics {
                requests: Some("rest_server_requests_total".into()),
                failed: Some("status_code=~\"5..\"".into()),
                latency: Some("rest_server_request_duration_seconds".into()),
                latency_unit: 1.0,
                rps: Some("rest_server_requests".into()),
            },
        },
        ModelFormat::Pytorch => Server {
            image: format!(
                "pytorch/torchserve:0.12.0-{}",
                if gpu { "gpu" } else { "cpu" }
            ),
            command: Some(vec!["torchserve".into()]),
            args: vec![
                "--start".into(),
                "--foreground".into(),
                "--model-store".into(),
                MODEL_DIR.into(),
                "--models".into(),
                format!("{name}={}", path.rsplit('/').next().unwrap_or(path)),
                "--ts-config".into(),
                "/etc/torchserve/config.properties".into(),
            ],
            env: vec![
                pod::env("LOG_LOCATION", "/tmp/logs"),
                pod::env("METRICS_LOCATION", "/tmp/logs"),
            ],
            http: 8080,
            grpc: Some(7070),
            metrics_port: Some(8082),
            metrics_path: "/metrics".into(),
            ready_path: "/ping".into(),
            live_path: "/ping".into(),
            config: Some((
                "config.properties".into(),
                "/etc/torchserve".into(),
                "inference_address=http://0.0.0.0:8080\nmanagement_address=http://127.0.0.1:8081\n\
                 metrics_address=http://0.0.0.0:8082\ngrpc_inference_port=7070\n\
                 grpc_management_port=7071\nmetrics_mode=prometheus\n\
                 disable_token_authorization=true\nmodel_store=/mnt/models\n"
                    .into(),
            )),
            metrics: Metrics {
                requests: Some("ts_inference_requests_total".into()),
                failed: None,
                latency: None,
                latency_unit: 1e-6,
                rps: Some("ts_inference_requests".into()),
            },
        },
    }
}

/// The server of a custom `server` spec.
fn custom_server(spec: &InferenceServiceSpec, object: &Object) -> Result<Server, RenderError> {
    let Some(custom) = &spec.server else {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: "an InferenceService needs `model` or `server`".into(),
        });
    };
    let Some(image) = custom.image.clone() else {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: "a custom server needs `server.image` on Kubernetes".into(),
        });
    };
    let http = custom.ports.http.unwrap_or(8080);
    let args: Vec<String> = custom
        .run
        .iter()
        .map(|a| a.0.replace("{{port}}", &http.to_string()))
        .collect();
    let (command, args) = match args.split_first() {
        Some((p, rest)) => (Some(vec![p.clone()]), rest.to_vec()),
        None => (None, Vec::new()),
    };
    Ok(Server {
        image,
        command,
        args,
        env: vec![pod::env("PORT", http.to_string())],
        http,
        grpc: custom.ports.grpc,
        metrics_port: custom.ports.metrics,
        metrics_path: "/metrics".into(),
        ready_path: "/".into(),
        live_path: "/".into(),
        config: None,
        metrics: Metrics::default(),
    })
}

/// Renders an InferenceService.
pub fn render(
    ctx: &mut Ctx<'_>,
    object: &Object,
    spec: &InferenceServiceSpec,
) -> Result<(), RenderError> {
    let ns = ctx.namespace(object);
    let metrics = match ctx.opts.serving {
        ServingBackend::Native => native(ctx, object, &ns, spec, None)?,
        ServingBackend::Kserve => kserve(ctx, object, &ns, spec)?,
        ServingBackend::Seldon => seldon(ctx, object, &ns, spec)?,
    };
    monitoring(ctx, object, &ns, spec, &metrics)
}

/// What monitoring needs to know about the rendered server.
pub struct Monitored {
    /// The server's metrics.
    pub metrics: Metrics,
    /// PromQL label matchers selecting this service's series.
    pub selector: String,
    /// A Service port named for scraping, with its path (native only).
    pub scrape: Option<(String, String)>,
}

/// The native workload (a Deployment) of `spec`, its Service, HPA and PDB. With
/// `deploy_model`, only the Deployment is built and returned (for a pipeline's deploy step),
/// with that expression as the model.
pub fn native(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    spec: &InferenceServiceSpec,
    deploy_model: Option<&str>,
) -> Result<Monitored, RenderError> {
    let name = object.name().to_string();
    let sized = pod::size(ctx, object, ns, &spec.resources, &|_| None)?;
    let gpu = sized.gpus > 0;
    let mut mounts = Mounts::default();
    mounts.tmp();
    let mut init = Vec::new();
    let mut env: Vec<EnvVar> = Vec::new();
    let server = match &spec.model {
        Some(model) => {
            let source = model_source(ctx, object, spec, model, "model-store", MODEL_DIR)?;
            if let Some(v) = source.volume {
                mounts.add(v, MODEL_DIR, true);
            }
            init.extend(source.init);
            let path = deploy_model.map_or(source.path, str::to_string);
            let mut s = server(ctx, model.format, &model_name(object, model), &path, gpu);
            if let Some(canary) = &spec.canary {
                ctx.warn(
                    object,
                    format!(
                        "canary ({} of traffic to {}) needs a traffic-splitting router; the \
                         native backend serves the main model only (use --serving kserve or \
                         seldon)",
                        canary.weight, canary.model.uri
                    ),
                );
            }
            if s.metrics.latency.is_none()
                && spec
                    .alerts
                    .as_ref()
                    .is_some_and(|a| a.latency_p95.is_some())
            {
                ctx.warn(object, "this server exports no latency histogram: the latencyP95 alert is not rendered");
            }
            s.env.extend(std::mem::take(&mut env));
            s
        }
        None => custom_server(spec, object)?,
    };
    if let Some((key, dir, content)) = &server.config {
        let cm_name = format!("{name}-server-config");
        ctx.push_k8s(&ConfigMap {
            metadata: meta(object, &cm_name, Some(ns), "serving"),
            data: Some(BTreeMap::from([(key.clone(), content.clone())])),
            ..ConfigMap::default()
        })?;
        mounts.add(
            Volume {
                name: "server-config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: cm_name,
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            dir,
            true,
        );
    }
    env.extend(server.env.clone());
    env.extend(pod::plain_env(&spec.env, |v| Ok(v.to_string()))?);
    env.extend(pod::secret_env(&spec.secret_env));
    if server.image.starts_with("pytorch/torchserve")
        || server.image.starts_with("seldonio/mlserver")
    {
        env.push(pod::env("HOME", "/tmp"));
    }
    let mut ports = vec![port_c("http", server.http)];
    if let Some(g) = server.grpc {
        ports.push(port_c("grpc", g));
    }
    if let Some(m) = server.metrics_port {
        ports.push(port_c("metrics", m));
    }
    let probes = spec.probes.clone().unwrap_or_default();
    let mut container = Container {
        name: "server".into(),
        image: Some(server.image.clone()),
        command: server.command.clone(),
        args: (!server.args.is_empty()).then(|| server.args.clone()),
        env: (!env.is_empty()).then_some(env),
        ports: Some(ports),
        resources: Some(sized.requirements.clone()),
        readiness_probe: Some(probe(probes.readiness.as_ref(), &server.ready_path, 10, 3)),
        liveness_probe: Some(probe(probes.liveness.as_ref(), &server.live_path, 15, 3)),
        startup_probe: Some(probe(probes.startup.as_ref(), &server.live_path, 5, 60)),
        volume_mounts: Some(mounts.mounts.clone()),
        security_context: Some(pod::container_security(false)),
        ..Container::default()
    };
    if server.image.starts_with("pytorch/torchserve") {
        // TorchServe's JVM writes logs and snapshots next to its home.
        container.working_dir = Some("/tmp".into());
    }
    let (node_selector, tolerations) = pod::scheduling(
        ctx,
        &spec.node_selector,
        &spec.tolerations,
        gpu,
        spec.resources.gpu_type.as_deref(),
    );
    let selector = selector_labels(object);
    let pod_spec = PodSpec {
        init_containers: (!init.is_empty()).then_some(init),
        containers: vec![container],
        volumes: Some(mounts.volumes.clone()),
        node_selector,
        tolerations,
        security_context: Some(pod::pod_security()),
        priority_class_name: spec.priority_class.clone(),
        service_account_name: spec.service_account.clone(),
        automount_service_account_token: spec.service_account.is_none().then_some(false),
        termination_grace_period_seconds: Some(30),
        topology_spread_constraints: Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "kubernetes.io/hostname".into(),
            when_unsatisfiable: "ScheduleAnyway".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(selector.clone()),
                ..LabelSelector::default()
            }),
            ..TopologySpreadConstraint::default()
        }]),
        ..PodSpec::default()
    };
    let mut pod_labels = super::labels(object, "serving");
    pod_labels.extend(selector.clone());
    let autoscaled = spec.autoscale.is_some();
    let mut dep_meta = meta(object, &name, Some(ns), "serving");
    if let Some(model) = deploy_model {
        dep_meta
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert("mlctl.dev/model".into(), model.into());
    }
    let deployment = Deployment {
        metadata: dep_meta,
        spec: Some(DeploymentSpec {
            // The HPA owns the replica count; a fixed count here would fight it on every
            // apply.
            replicas: (!autoscaled).then(|| i32::try_from(spec.replicas.min).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };
    if deploy_model.is_some() {
        ctx.deploy_manifest =
            Some(
                serde_json::to_value(&deployment).map_err(|e| RenderError::Serialize {
                    object: object.id(),
                    message: e.to_string(),
                })?,
            );
        return Ok(Monitored {
            metrics: server.metrics,
            selector: String::new(),
            scrape: None,
        });
    }
    ctx.push_k8s(&deployment)?;
    let svc_port = spec.port.unwrap_or(8080);
    let mut ports = vec![port_s("http", svc_port, "http")];
    if let Some(g) = server.grpc {
        ports.push(port_s("grpc", g, "grpc"));
    }
    if let Some(m) = server.metrics_port {
        ports.push(port_s("metrics", m, "metrics"));
    }
    let mut svc_labels = super::labels(object, "serving");
    svc_labels.extend(selector.clone());
    ctx.push_k8s(&Service {
        metadata: ObjectMeta {
            labels: Some(svc_labels),
            ..meta(object, &name, Some(ns), "serving")
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector.clone()),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })?;
    if let Some(a) = &spec.autoscale {
        hpa(ctx, object, ns, spec, a, &server.metrics)?;
    }
    ctx.push_k8s(&PodDisruptionBudget {
        metadata: meta(object, &name, Some(ns), "serving"),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(
                i32::try_from(spec.max_unavailable.unwrap_or(1)).unwrap_or(1),
            )),
            selector: Some(LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })?;
    let scrape_port = if server.metrics_port.is_some() {
        "metrics"
    } else {
        "http"
    };
    Ok(Monitored {
        metrics: server.metrics,
        selector: format!("namespace=\"{ns}\", service=\"{name}\""),
        scrape: Some((scrape_port.into(), server.metrics_path)),
    })
}

fn port_c(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(port),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn port_s(name: &str, port: u16, target: &str) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: i32::from(port),
        target_port: Some(IntOrString::String(target.into())),
        protocol: Some("TCP".into()),
        app_protocol: Some(
            if name == "grpc" {
                "kubernetes.io/h2c"
            } else {
                "http"
            }
            .into(),
        ),
        ..ServicePort::default()
    }
}

fn probe(p: Option<&Probe>, default_path: &str, period: i32, failures: i32) -> K8sProbe {
    let p = p.cloned().unwrap_or_default();
    K8sProbe {
        http_get: Some(HTTPGetAction {
            path: Some(p.path.unwrap_or_else(|| default_path.to_string())),
            port: match p.port {
                Some(port) => IntOrString::Int(i32::from(port)),
                None => IntOrString::String("http".into()),
            },
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: p.initial_delay.as_ref().map(|d| secs32(secs(d))),
        period_seconds: Some(p.period.as_ref().map_or(period, |d| secs32(secs(d)))),
        timeout_seconds: Some(p.timeout.as_ref().map_or(1, |d| secs32(secs(d)))),
        failure_threshold: Some(
            p.failure_threshold
                .map_or(failures, |f| i32::try_from(f).unwrap_or(i32::MAX)),
        ),
        ..K8sProbe::default()
    }
}

fn secs32(s: i64) -> i32 {
    i32::try_from(s).unwrap_or(i32::MAX)
}

fn hpa(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    spec: &InferenceServiceSpec,
    a: &mlctl_core::spec::serving::Autoscale,
    metrics: &Metrics,
) -> Result<(), RenderError> {
    let mut specs = Vec::new();
    for (resource, pct) in [("cpu", a.cpu), ("memory", a.memory)] {
        if let Some(pct) = pct {
            specs.push(MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: resource.into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(pct.0.round() as i32),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            });
        }
    }
    if let Some(rps) = &a.requests_per_second {
        match &metrics.rps {
            Some(metric) => specs.push(MetricSpec {
                type_: "Pods".into(),
                pods: Some(PodsMetricSource {
                    metric: MetricIdentifier {
                        name: metric.clone(),
                        ..MetricIdentifier::default()
                    },
                    target: MetricTarget {
                        type_: "AverageValue".into(),
                        average_value: Some(pod::k8s_q(rps)),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }),
            None => ctx.warn(object, "requestsPerSecond: this server exports no request counter; the target is not rendered"),
        }
    }
    if a.concurrency.is_some() {
        ctx.warn(
            object,
            "autoscale.concurrency needs Knative's autoscaler (KServe serverless mode); the \
             HPA scales on the other targets",
        );
    }
    let behavior = a
        .behavior
        .as_ref()
        .map(|b| HorizontalPodAutoscalerBehavior {
            scale_up: b.scale_up.as_ref().map(rules),
            scale_down: b.scale_down.as_ref().map(rules),
        });
    let name = object.name();
    ctx.push_k8s(&HorizontalPodAutoscaler {
        metadata: meta(object, name, Some(ns), "serving"),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: name.into(),
            },
            min_replicas: Some(i32::try_from(spec.replicas.min).unwrap_or(1)),
            max_replicas: i32::try_from(spec.replicas.max()).unwrap_or(i32::MAX),
            metrics: Some(specs),
            behavior,
        }),
        ..HorizontalPodAutoscaler::default()
    })
}

fn rules(r: &ScalingRules) -> HPAScalingRules {
    HPAScalingRules {
        stabilization_window_seconds: r.stabilization_window.as_ref().map(|d| secs32(secs(d))),
        select_policy: r.select_policy.map(|p| {
            match p {
                SelectPolicy::Max => "Max",
                SelectPolicy::Min => "Min",
                SelectPolicy::Disabled => "Disabled",
            }
            .to_string()
        }),
        policies: (!r.policies.is_empty()).then(|| {
            r.policies
                .iter()
                .map(|p| HPAScalingPolicy {
                    type_: match p.kind {
                        PolicyKind::Pods => "Pods",
                        PolicyKind::Percent => "Percent",
                    }
                    .into(),
                    value: i32::try_from(p.value).unwrap_or(i32::MAX),
                    period_seconds: secs32(secs(&p.period)),
                })
                .collect()
        }),
        ..HPAScalingRules::default()
    }
}

fn kserve_format(format: ModelFormat) -> (&'static str, Option<&'static str>) {
    let protocol = match format {
        ModelFormat::Tensorflow | ModelFormat::Pytorch => None,
        ModelFormat::Onnx | ModelFormat::Sklearn | ModelFormat::Xgboost | ModelFormat::Triton => {
            Some("v2")
        }
    };
    (format.as_str(), protocol)
}

/// The storage URI KServe and Seldon download from (local paths become `pvc://`).
fn storage_uri(ctx: &mut Ctx<'_>, object: &Object, uri: &str) -> String {
    if uri.contains("://") || uri.contains("{{") {
        return uri.to_string();
    }
    let claim = format!("{}-models", object.name());
    ctx.warn(
        object,
        format!("model {uri} is a local path: on Kubernetes it is read from pvc://{claim}/{uri}"),
    );
    format!("pvc://{claim}/{}", uri.trim_start_matches("./"))
}

/// The KServe InferenceService of `spec` (with `deploy_model` as the storage URI when set).
pub fn kserve_object(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    spec: &InferenceServiceSpec,
    deploy_model: Option<&str>,
) -> Result<(KserveInferenceService, Metrics), RenderError> {
    let Some(model) = &spec.model else {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: "a custom server renders with --serving native only".into(),
        });
    };
    let sized = pod::size(ctx, object, ns, &spec.resources, &|_| None)?;
    let (node_selector, tolerations) = pod::scheduling(
        ctx,
        &spec.node_selector,
        &spec.tolerations,
        sized.gpus > 0,
        spec.resources.gpu_type.as_deref(),
    );
    let (format, protocol) = kserve_format(model.format);
    let uri = match deploy_model {
        Some(m) => m.to_string(),
        None => storage_uri(ctx, object, &model.uri),
    };
    let mut annotations = BTreeMap::from([
        (
            "serving.kserve.io/deploymentMode".to_string(),
            "RawDeployment".to_string(),
        ),
        (
            "serving.kserve.io/enable-prometheus-scraping".to_string(),
            "true".to_string(),
        ),
    ]);
    let (mut scale_metric, mut scale_target) = (None, None);
    if let Some(a) = &spec.autoscale {
        if let Some(cpu) = a.cpu {
            scale_metric = Some("cpu".to_string());
            scale_target = Some(cpu.0.round() as i32);
        } else if let Some(mem) = a.memory {
            scale_metric = Some("memory".to_string());
            scale_target = Some(mem.0.round() as i32);
        }
        if a.requests_per_second.is_some()
            || a.concurrency.is_some()
            || (a.cpu.is_some() && a.memory.is_some())
        {
            ctx.warn(object, "KServe's raw deployment mode scales on one of cpu or memory; other autoscale targets are not rendered");
        }
    }
    if let Some(c) = &spec.canary {
        ctx.warn(object, format!("canary: apply the new model {} with canaryTrafficPercent {} as a second revision (KServe serverless mode)", c.model.uri, c.weight));
    }
    if spec.explainer.is_some() {
        ctx.warn(object, "KServe no longer ships Alibi explainers; the explainer is not rendered (use --serving seldon)");
    }
    let mut service_account = spec.service_account.clone();
    if let Some(secret) = &spec.storage_secret
        && service_account.is_none()
        && deploy_model.is_none()
    {
        // KServe's storage initializer takes credentials from the service account's secrets.
        let sa_name = format!("{}-storage", object.name());
        ctx.push_k8s(&ServiceAccount {
            metadata: meta(object, &sa_name, Some(ns), "serving"),
            secrets: Some(vec![ObjectReference {
                name: Some(secret.clone()),
                ..ObjectReference::default()
            }]),
            ..ServiceAccount::default()
        })?;
        service_account = Some(sa_name);
    }
    let mut env = pod::plain_env(&spec.env, |v| Ok(v.to_string()))?;
    env.extend(pod::secret_env(&spec.secret_env));
    let mut m = meta(object, object.name(), Some(ns), "serving");
    m.annotations
        .get_or_insert_with(BTreeMap::new)
        .append(&mut annotations);
    let isvc = KserveInferenceService::new(
        m,
        KserveSpec {
            predictor: KservePredictor {
                min_replicas: i32::try_from(spec.replicas.min).unwrap_or(1),
                max_replicas: Some(i32::try_from(spec.replicas.max()).unwrap_or(1)),
                scale_metric,
                scale_target,
                canary_traffic_percent: None,
                container_concurrency: spec.max_concurrency.map(i64::from),
                model: Some(KserveModel {
                    model_format: KserveModelFormat {
                        name: format.into(),
                    },
                    protocol_version: protocol.map(str::to_string),
                    storage_uri: uri,
                    env: (!env.is_empty()).then_some(env),
                    resources: sized.requirements,
                    security_context: pod::container_security(false),
                }),
                containers: None,
                service_account_name: service_account,
                node_selector,
                tolerations,
                priority_class_name: spec.priority_class.clone(),
                security_context: pod::pod_security(),
                labels: Some(super::labels(object, "serving")),
            },
        },
    );
    let metrics = match model.format {
        ModelFormat::Onnx | ModelFormat::Triton => {
            server(ctx, ModelFormat::Triton, "", "", false).metrics
        }
        f => server(ctx, f, "", "", false).metrics,
    };
    Ok((isvc, metrics))
}

fn kserve(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    spec: &InferenceServiceSpec,
) -> Result<Monitored, RenderError> {
    let (isvc, metrics) = kserve_object(ctx, object, ns, spec, None)?;
    ctx.push(
        KserveInferenceService::API_VERSION,
        KserveInferenceService::KIND,
        &isvc.metadata,
        &isvc,
    )?;
    Ok(Monitored {
        metrics,
        selector: format!(
            "namespace=\"{ns}\", pod=~\"{}-predictor-.*\"",
            object.name()
        ),
        scrape: None,
    })
}

/// The SeldonDeployment of `spec` (with `deploy_model` as the model URI when set).
pub fn seldon_object(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    spec: &InferenceServiceSpec,
    deploy_model: Option<&str>,
) -> Result<(SeldonDeployment, Metrics), RenderError> {
    let Some(model) = &spec.model else {
        return Err(RenderError::Unsupported {
            object: object.id(),
            message: "a custom server renders with --serving native only".into(),
        });
    };
    let node = model_name(object, model).replace('_', "-");
    let sized = pod::size(ctx, object, ns, &spec.resources, &|_| None)?;
    let (node_selector, tolerations) = pod::scheduling(
        ctx,
        &spec.node_selector,
        &spec.tolerations,
        sized.gpus > 0,
        spec.resources.gpu_type.as_deref(),
    );
    let uri = match deploy_model {
        Some(m) => m.to_string(),
        None => storage_uri(ctx, object, &model.uri),
    };
    let mut env = pod::plain_env(&spec.env, |v| Ok(v.to_string()))?;
    env.extend(pod::secret_env(&spec.secret_env));
    let (implementation, protocol, image, args, metrics) = match model.format {
        ModelFormat::Tensorflow => (
            "TENSORFLOW_SERVER",
            "tensorflow",
            None,
            None,
            server(ctx, model.format, "", "", false).metrics,
        ),
        ModelFormat::Sklearn => (
            "SKLEARN_SERVER",
            "v2",
            None,
            None,
            server(ctx, model.format, "", "", false).metrics,
        ),
        ModelFormat::Xgboost => (
            "XGBOOST_SERVER",
            "v2",
            None,
            None,
            server(ctx, model.format, "", "", false).metrics,
        ),
        ModelFormat::Triton => (
            "TRITON_SERVER",
            "v2",
            None,
            None,
            server(ctx, model.format, "", "", false).metrics,
        ),
        ModelFormat::Onnx => {
            // mlctl's own server speaks the Open Inference Protocol: a custom container.
            let s = server(
                ctx,
                model.format,
                &model_name(object, model),
                &join(MODEL_DIR, uri.rsplit('/').next().unwrap_or_default()),
                false,
            );
            (
                "",
                "v2",
                Some(s.image.clone()),
                Some(s.args.clone()),
                s.metrics,
            )
        }
        ModelFormat::Pytorch => {
            return Err(RenderError::Unsupported {
                object: object.id(),
                message: "Seldon Core v1 has no TorchServe server; render pytorch models with --serving native or kserve".into(),
            });
        }
    };
    let mut mounts = Mounts::default();
    mounts.tmp();
    let container = Container {
        name: node.clone(),
        image,
        args,
        env: (!env.is_empty()).then_some(env),
        resources: Some(sized.requirements.clone()),
        volume_mounts: Some(mounts.mounts.clone()),
        security_context: Some(pod::container_security(false)),
        ..Container::default()
    };
    let explainer = spec.explainer.as_ref().map(|e| SeldonExplainer {
        type_: e.kind.clone(),
        model_uri: e.uri.clone(),
        env_secret_ref_name: spec.storage_secret.clone(),
        container_spec: Container {
            name: "explainer".into(),
            resources: Some(
                pod::size(ctx, object, ns, &Default::default(), &|_| None)
                    .map(|s: Sized| s.requirements)
                    .unwrap_or_default(),
            ),
            security_context: Some(pod::container_security(false)),
            volume_mounts: Some(mounts.mounts.clone()),
            ..Container::default()
        },
    });
    if spec.autoscale.is_some() {
        ctx.warn(object, "autoscale is not rendered for Seldon (its hpaSpec uses a removed autoscaling API); replicas are replicas.min");
    }
    if let Some(c) = &spec.canary {
        ctx.warn(
            object,
            format!(
                "canary {} is not rendered: add it as a second predictor with traffic {}",
                c.model.uri, c.weight
            ),
        );
    }
    let sdep = SeldonDeployment::new(
        meta(object, object.name(), Some(ns), "serving"),
        SeldonSpec {
            name: object.name().into(),
            protocol: protocol.into(),
            predictors: vec![SeldonPredictor {
                name: "default".into(),
                replicas: i32::try_from(spec.replicas.min).unwrap_or(1),
                traffic: 100,
                graph: SeldonGraph {
                    name: node.clone(),
                    type_: "MODEL".into(),
                    implementation: (!implementation.is_empty())
                        .then(|| implementation.to_string()),
                    model_uri: Some(uri),
                    env_secret_ref_name: spec.storage_secret.clone(),
                    endpoint: implementation.is_empty().then(|| SeldonEndpoint {
                        type_: "REST".into(),
                        http_port: 8080,
                    }),
                    children: Vec::new(),
                },
                component_specs: vec![SeldonComponentSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(super::labels(object, "serving")),
                        ..ObjectMeta::default()
                    }),
                    spec: PodSpec {
                        containers: vec![container],
                        volumes: Some(mounts.volumes.clone()),
                        node_selector,
                        tolerations,
                        security_context: Some(pod::pod_security()),
                        priority_class_name: spec.priority_class.clone(),
                        ..PodSpec::default()
                    },
                }],
                explainer,
                labels: None,
            }],
        },
    );
    Ok((sdep, metrics))
}

fn seldon(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    spec: &InferenceServiceSpec,
) -> Result<Monitored, RenderError> {
    let (sdep, metrics) = seldon_object(ctx, object, ns, spec, None)?;
    ctx.push(
        SeldonDeployment::API_VERSION,
        SeldonDeployment::KIND,
        &sdep.metadata,
        &sdep,
    )?;
    Ok(Monitored {
        metrics,
        selector: format!(
            "namespace=\"{ns}\", seldon_deployment_id=\"{}\"",
            object.name()
        ),
        scrape: None,
    })
}

fn monitoring(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    spec: &InferenceServiceSpec,
    mon: &Monitored,
) -> Result<(), RenderError> {
    let name = object.name();
    let platform = ctx
        .spec
        .platforms()
        .find_map(|p| p.monitoring.clone())
        .unwrap_or_default();
    let prom_labels: BTreeMap<String, String> = platform
        .prometheus_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let with_prom = |mut m: ObjectMeta| {
        m.labels
            .get_or_insert_with(BTreeMap::new)
            .extend(prom_labels.clone());
        m
    };
    let interval = spec
        .monitoring
        .as_ref()
        .and_then(|m| m.interval)
        .map_or_else(|| "30s".to_string(), |d| d.to_string());
    if let Some((port, path)) = &mon.scrape {
        let sm = ServiceMonitor::new(
            with_prom(meta(object, name, Some(ns), "monitoring")),
            ServiceMonitorSpec {
                selector: LabelSelector {
                    match_labels: Some(selector_labels(object)),
                    ..LabelSelector::default()
                },
                endpoints: vec![Endpoint {
                    port: port.clone(),
                    path: path.clone(),
                    interval,
                }],
            },
        );
        ctx.push(
            ServiceMonitor::API_VERSION,
            ServiceMonitor::KIND,
            &sm.metadata,
            &sm,
        )?;
    }
    let m = &mon.metrics;
    let sel = &mon.selector;
    let latency_q = m
        .latency
        .as_ref()
        .map(|l| format!("histogram_quantile(0.95, sum by (le) (rate({l}_bucket{{{sel}}}[5m])))"));
    let error_q = match (&m.requests, &m.failed) {
        (Some(r), Some(f)) => Some(format!(
            "sum(rate({r}{{{sel}, {f}}}[5m])) / sum(rate({r}{{{sel}}}[5m]))"
        )),
        _ => None,
    };
    if let Some(alerts) = &spec.alerts {
        let for_ = alerts
            .for_
            .map_or_else(|| "5m".to_string(), |d| d.to_string());
        let mut rules = Vec::new();
        let title = to_camel(name);
        if let (Some(limit), Some(q)) = (&alerts.latency_p95, &latency_q) {
            let threshold = limit.0.as_secs_f64() / m.latency_unit;
            rules.push(alert(
                &format!("{title}HighLatency"),
                format!("{q} > {}", fmt_num(threshold)),
                &for_,
                "warning",
                &format!("{name}: 95th percentile inference latency above {limit}"),
                &format!(
                    "p95 latency of {ns}/{name} is {{{{ $value }}}}{} (limit {limit})",
                    if m.latency_unit == 1.0 { "s" } else { "µs" }
                ),
            ));
        }
        if let Some(rate) = &alerts.error_rate {
            match &error_q {
                Some(q) => rules.push(alert(
                    &format!("{title}HighErrorRate"),
                    format!("{q} > {}", fmt_num(rate.0 / 100.0)),
                    &for_,
                    "critical",
                    &format!("{name}: more than {rate} of requests fail"),
                    &format!("{{{{ $value | humanizePercentage }}}} of requests to {ns}/{name} fail (limit {rate})"),
                )),
                None => ctx.warn(object, "this server does not label failed requests: the errorRate alert is not rendered"),
            }
        }
        if let Some(acc) = alerts.min_accuracy {
            let model = spec
                .model
                .as_ref()
                .map_or_else(|| name.to_string(), |mo| model_name(object, mo));
            rules.push(alert(
                &format!("{title}AccuracyDrop"),
                format!("min(model_accuracy{{namespace=\"{ns}\", model=\"{model}\"}}) < {}", fmt_num(acc)),
                &for_,
                "critical",
                &format!("{name}: model accuracy below {}", fmt_num(acc)),
                "model accuracy is {{ $value }} (model_accuracy is exported by the evaluation that scores live predictions)",
            ));
        }
        if !rules.is_empty() {
            let pr = PrometheusRule::new(
                with_prom(meta(object, name, Some(ns), "monitoring")),
                PrometheusRuleSpec {
                    groups: vec![RuleGroup {
                        name: format!("{ns}.{name}"),
                        rules,
                    }],
                },
            );
            ctx.push(
                PrometheusRule::API_VERSION,
                PrometheusRule::KIND,
                &pr.metadata,
                &pr,
            )?;
        }
    }
    if spec
        .monitoring
        .as_ref()
        .and_then(|m| m.dashboard)
        .unwrap_or(true)
    {
        let gpu = spec.resources.gpu.is_some();
        let dashboard = dashboard(
            ns,
            name,
            m,
            sel,
            latency_q.as_deref(),
            error_q.as_deref(),
            gpu,
        );
        let dash_ns = platform
            .dashboards_namespace
            .clone()
            .unwrap_or_else(|| ns.to_string());
        let mut cm_meta = meta(
            object,
            &format!("{name}-dashboard"),
            Some(&dash_ns),
            "monitoring",
        );
        cm_meta
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("grafana_dashboard".into(), "1".into());
        let json =
            serde_json::to_string_pretty(&dashboard).map_err(|e| RenderError::Serialize {
                object: object.id(),
                message: e.to_string(),
            })?;
        ctx.push_k8s(&ConfigMap {
            metadata: cm_meta,
            data: Some(BTreeMap::from([(format!("{ns}-{name}.json"), json)])),
            ..ConfigMap::default()
        })?;
    }
    Ok(())
}

fn fmt_num(v: f64) -> String {
    mlctl_core::yaml::format_float(v)
}

fn to_camel(name: &str) -> String {
    name.split(['-', '_', '.'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn alert(
    name: &str,
    expr: String,
    for_: &str,
    severity: &str,
    summary: &str,
    description: &str,
) -> Rule {
    Rule {
        alert: name.into(),
        expr,
        for_: for_.into(),
        labels: BTreeMap::from([("severity".into(), severity.into())]),
        annotations: BTreeMap::from([
            ("summary".into(), summary.into()),
            ("description".into(), description.into()),
        ]),
    }
}

/// A Grafana dashboard in the format the sidecar of the Grafana Helm chart loads: plain
/// dashboard JSON (no `{"dashboard": ...}` API wrapper), `timeseries` panels, and a
/// Prometheus data source variable.
fn dashboard(
    ns: &str,
    name: &str,
    m: &Metrics,
    sel: &str,
    latency_q: Option<&str>,
    error_q: Option<&str>,
    gpu: bool,
) -> serde_json::Value {
    let mut panels = Vec::new();
    let mut add = |title: &str, unit: &str, targets: Vec<(String, &str)>| {
        let i = panels.len();
        let targets: Vec<serde_json::Value> = targets
            .into_iter()
            .enumerate()
            .map(|(j, (expr, legend))| {
                let ref_id = ["A", "B", "C", "D"][j % 4];
                serde_json::json!({
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "expr": expr,
                    "legendFormat": legend,
                    "refId": ref_id,
                })
            })
            .collect();
        panels.push(serde_json::json!({
            "id": i + 1,
            "type": "timeseries",
            "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
            "targets": targets,
        }));
    };
    if let Some(r) = &m.requests {
        add(
            "Request rate",
            "reqps",
            vec![(format!("sum(rate({r}{{{sel}}}[5m]))"), "requests/s")],
        );
    }
    if let Some(l) = &m.latency {
        let unit = if m.latency_unit == 1.0 { "s" } else { "µs" };
        let q = |p: &str| {
            format!("histogram_quantile({p}, sum by (le) (rate({l}_bucket{{{sel}}}[5m])))")
        };
        let _ = latency_q;
        add(
            "Inference latency",
            unit,
            vec![(q("0.5"), "p50"), (q("0.95"), "p95"), (q("0.99"), "p99")],
        );
    }
    if let Some(q) = error_q {
        add(
            "Error ratio",
            "percentunit",
            vec![(q.to_string(), "errors")],
        );
    }
    if gpu {
        add(
            "GPU utilization",
            "percent",
            vec![(
                format!(
                    "avg by (pod) (DCGM_FI_DEV_GPU_UTIL{{namespace=\"{ns}\", pod=~\"{name}-.*\"}})"
                ),
                "{{pod}}",
            )],
        );
    }
    add(
        "CPU usage",
        "short",
        vec![(
            format!(
                "sum by (pod) (rate(container_cpu_usage_seconds_total{{namespace=\"{ns}\", pod=~\"{name}-.*\", container!=\"\"}}[5m]))"
            ),
            "{{pod}}",
        )],
    );
    let uid: String = format!("mlctl-{ns}-{name}").chars().take(40).collect();
    serde_json::json!({
        "uid": uid,
        "title": format!("{name} ({ns}) model serving"),
        "tags": ["mlctl", "model-serving"],
        "timezone": "browser",
        "schemaVersion": 39,
        "editable": true,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource",
            "type": "datasource",
            "query": "prometheus",
            "label": "Data source",
        }]},
        "panels": panels,
    })
}
