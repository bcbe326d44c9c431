//! What every rendered pod shares.
//!
//! - Pod Security "restricted": non-root (uid/gid 65532, the distroless `nonroot` user),
//!   `RuntimeDefault` seccomp, no privilege escalation, every capability dropped, and a
//!   read-only root filesystem with writable `emptyDir`s where a process writes (`/tmp`,
//!   the outputs directory, output artifacts, `/dev/shm`).
//! - Requests and limits on every container: the spec's requests, limits equal to the
//!   requests unless the spec raises them, GPUs as limits equal to requests; a missing CPU
//!   or memory request takes the namespace's limit-range default, else 1 CPU / 1Gi.
//! - GPU scheduling: the GPU type as a node selector on the Platform's `gpuTypeLabel`, and a
//!   toleration of the `nvidia.com/gpu` taint GPU node pools carry.
//! - Commands as argv (`command` + `args`) and environment values with Kubernetes'
//!   `$(VAR)` expansion escaped, so what the spec says is what runs.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource,
    ObjectFieldSelector, PersistentVolumeClaimVolumeSource, PodSecurityContext,
    ResourceRequirements, SeccompProfile, SecretKeySelector, SecretVolumeSource, SecurityContext,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use mlctl_core::quantity::Quantity;
use mlctl_core::scalar::ScalarText;
use mlctl_core::spec::Object;
use mlctl_core::spec::common::{
    Resources, SecretKeyRef, TaintEffect, Templated, Toleration as SpecToleration,
    TolerationOperator, Volume as SpecVolume,
};
use mlctl_core::template::{self, Ref};

use super::{Ctx, RenderError};

/// The user and group every container runs as.
pub const RUN_AS: i64 = 65532;
/// Where a process writes its output parameters (`$MLCTL_OUTPUTS`).
pub const OUTPUTS_DIR: &str = "/mlctl/outputs";
/// Where a pipeline step receives input artifacts: `/mlctl/inputs/STEP/ARTIFACT`.
pub const INPUTS_DIR: &str = "/mlctl/inputs";
/// Where the image holds the spec's directory: the working directory of a process (joined
/// with its relative `workingDir`), under which relative volume paths and artifacts are.
pub const DEFAULT_WORKDIR: &str = "/workspace";

/// The container working directory of a process with `working_dir`, when it must be set:
/// the spec names one, or relative paths (volumes, artifacts) must be placed under it.
pub fn workdir(working_dir: Option<&str>, needed: bool) -> Option<String> {
    match working_dir {
        Some(d) if d.starts_with('/') => Some(d.to_string()),
        Some(d) => {
            let d = d.trim_start_matches("./").trim_end_matches('/');
            Some(if d.is_empty() || d == "." {
                DEFAULT_WORKDIR.to_string()
            } else {
                format!("{DEFAULT_WORKDIR}/{d}")
            })
        }
        None => needed.then(|| DEFAULT_WORKDIR.to_string()),
    }
}
/// The extended resource of NVIDIA GPUs.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// The pod-level security context of every rendered pod.
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// The container-level security context: restricted, with a read-only root filesystem
/// unless `writable_root` (a file written at the top of the working directory).
pub fn container_security(writable_root: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        read_only_root_filesystem: Some(!writable_root),
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..SecurityContext::default()
    }
}

/// Escapes Kubernetes' `$(VAR)` expansion in a literal command argument or env value.
pub fn escape(text: &str) -> String {
    text.replace("$(", "$$(")
}

/// An argv as `command` (the program) and `args` (the rest).
pub fn argv(run: &[String]) -> (Option<Vec<String>>, Option<Vec<String>>) {
    match run.split_first() {
        None => (None, None),
        Some((program, rest)) => (
            Some(vec![escape(program)]),
            (!rest.is_empty()).then(|| rest.iter().map(|a| escape(a)).collect()),
        ),
    }
}

/// A plain environment variable.
pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// An environment variable from a field of the pod (downward API).
pub fn env_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Environment variables from Secret keys.
pub fn secret_env(secrets: &IndexMap<String, SecretKeyRef>) -> Vec<EnvVar> {
    secrets
        .iter()
        .map(|(name, r)| EnvVar {
            name: name.clone(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: r.secret.clone(),
                    key: r.key.clone(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        })
        .collect()
}

/// Literal environment variables, their values passed through `value` (which substitutes
/// templates) and escaped.
pub fn plain_env(
    vars: &IndexMap<String, ScalarText>,
    mut value: impl FnMut(&str) -> Result<String, RenderError>,
) -> Result<Vec<EnvVar>, RenderError> {
    vars.iter()
        .map(|(k, v)| Ok(env(k, escape(&value(&v.0)?))))
        .collect()
}

/// Substitutes `{{params.x}}` in `text` with the parameters' values (for kinds rendered
/// without a workflow engine, where parameters are fixed at render time).
pub fn resolve_params(
    ctx: &Ctx<'_>,
    object: &Object,
    params: &IndexMap<String, ScalarText>,
    text: &str,
) -> Result<String, RenderError> {
    template::render(text, |r| match r {
        Ref::Param(p) => ctx.param(params, p),
        _ => None,
    })
    .map_err(|r| RenderError::InvalidValue {
        object: object.id(),
        message: format!("`{{{{{r}}}}}` has no value"),
    })
}

/// Resolves a templated quantity with `lookup` (parameter name → value).
pub fn quantity(
    object: &Object,
    field: &str,
    value: &Templated<Quantity>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Quantity, RenderError> {
    value
        .resolve(|r| match r {
            Ref::Param(p) => lookup(p),
            _ => None,
        })
        .map_err(|why| RenderError::InvalidValue {
            object: object.id(),
            message: format!("{field}: {why}"),
        })
}

/// Requests and limits of one container, resolved.
#[derive(Debug, Clone, Default)]
pub struct Sized {
    /// The Kubernetes resource requirements.
    pub requirements: ResourceRequirements,
    /// Whole GPUs requested (0 when none).
    pub gpus: i128,
    /// Whether the GPU count comes from a parameter (it may be non-zero at run time).
    pub gpu_templated: bool,
}

/// Resolves `r` into requests and limits (see the module doc for the rules).
pub fn size(
    ctx: &Ctx<'_>,
    object: &Object,
    namespace: &str,
    r: &Resources,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Sized, RenderError> {
    let defaults = ctx
        .spec
        .namespace_rules(namespace)
        .and_then(|ns| ns.limits.as_ref())
        .and_then(|l| l.default_request.as_ref());
    let default_cpu = defaults
        .and_then(|d| d.cpu.clone())
        .unwrap_or_else(|| Quantity::from_milli(1000));
    let default_memory = defaults
        .and_then(|d| d.memory.clone())
        .unwrap_or_else(|| Quantity::from_bytes(1 << 30));
    let get = |field: &str, v: Option<&Templated<Quantity>>, default: &Quantity| match v {
        Some(v) => quantity(object, field, v, lookup),
        None => Ok(default.clone()),
    };
    let cpu = get("resources.cpu", r.cpu.as_ref(), &default_cpu)?;
    let memory = get("resources.memory", r.memory.as_ref(), &default_memory)?;
    let limits = r.limits.clone().unwrap_or_default();
    let cpu_limit = get("resources.limits.cpu", limits.cpu.as_ref(), &cpu)?;
    let memory_limit = get("resources.limits.memory", limits.memory.as_ref(), &memory)?;
    let gpu = match &r.gpu {
        Some(g) => quantity(object, "resources.gpu", g, lookup)?,
        None => Quantity::from_milli(0),
    };
    let mut requests = BTreeMap::from([
        ("cpu".to_string(), k8s_q(&cpu)),
        ("memory".to_string(), k8s_q(&memory)),
    ]);
    let mut lims = BTreeMap::from([
        ("cpu".to_string(), k8s_q(&cpu_limit)),
        ("memory".to_string(), k8s_q(&memory_limit)),
    ]);
    let gpus = gpu.units_ceil();
    if gpus > 0 {
        requests.insert(GPU_RESOURCE.into(), k8s_q(&gpu));
        lims.insert(GPU_RESOURCE.into(), k8s_q(&gpu));
    }
    Ok(Sized {
        requirements: ResourceRequirements {
            requests: Some(requests),
            limits: Some(lims),
            ..ResourceRequirements::default()
        },
        gpus,
        gpu_templated: matches!(r.gpu, Some(Templated::Template(_))),
    })
}

/// A spec quantity as Kubernetes writes it.
pub fn k8s_q(q: &Quantity) -> K8sQuantity {
    K8sQuantity(q.to_string())
}

/// Node selector and tolerations of a process: the spec's, plus the GPU type and the GPU
/// taint toleration when it uses GPUs.
pub fn scheduling(
    ctx: &Ctx<'_>,
    node_selector: &IndexMap<String, String>,
    tolerations: &[SpecToleration],
    gpu: bool,
    gpu_type: Option<&str>,
) -> (Option<BTreeMap<String, String>>, Option<Vec<Toleration>>) {
    let mut selector: BTreeMap<String, String> = node_selector
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if gpu && let Some(t) = gpu_type {
        selector.insert(ctx.gpu_type_label(), t.to_string());
    }
    let mut tols: Vec<Toleration> = tolerations.iter().map(toleration).collect();
    if gpu
        && !tolerations.iter().any(|t| {
            t.key == GPU_RESOURCE || (t.key.is_empty() && t.operator == TolerationOperator::Exists)
        })
    {
        tols.push(Toleration {
            key: Some(GPU_RESOURCE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Toleration::default()
        });
    }
    (
        (!selector.is_empty()).then_some(selector),
        (!tols.is_empty()).then_some(tols),
    )
}

fn toleration(t: &SpecToleration) -> Toleration {
    Toleration {
        key: (!t.key.is_empty()).then(|| t.key.clone()),
        operator: Some(
            match t.operator {
                TolerationOperator::Equal => "Equal",
                TolerationOperator::Exists => "Exists",
            }
            .into(),
        ),
        value: t.value.clone(),
        effect: t.effect.map(|e| effect(e).to_string()),
        ..Toleration::default()
    }
}

/// A taint effect as Kubernetes writes it.
pub fn effect(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    }
}

/// Volumes and mounts of a pod, gathered while building it.
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    /// The pod's volumes.
    pub volumes: Vec<Volume>,
    /// The main container's mounts.
    pub mounts: Vec<VolumeMount>,
}

impl Mounts {
    /// Adds a volume mounted at `path`.
    pub fn add(&mut self, volume: Volume, path: &str, read_only: bool) {
        self.mounts.push(VolumeMount {
            name: volume.name.clone(),
            mount_path: path.into(),
            read_only: read_only.then_some(true),
            ..VolumeMount::default()
        });
        self.volumes.push(volume);
    }

    /// Adds a scratch `emptyDir` (in memory when `medium_memory`) mounted at `path`.
    pub fn scratch(&mut self, name: &str, path: &str, size: Option<&Quantity>, memory: bool) {
        self.add(
            Volume {
                name: name.into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: memory.then(|| "Memory".to_string()),
                    size_limit: size.map(k8s_q),
                }),
                ..Volume::default()
            },
            path,
            false,
        );
    }

    /// Adds `/tmp` (every process may need a temporary directory).
    pub fn tmp(&mut self) {
        self.scratch("tmp", "/tmp", None, false);
    }

    /// Adds the spec's volumes; relative mount paths are under `workdir`.
    pub fn spec_volumes(&mut self, volumes: &IndexMap<String, SpecVolume>, workdir: &str) {
        for (name, v) in volumes {
            let mut volume = Volume {
                name: name.clone(),
                ..Volume::default()
            };
            if let Some(claim) = &v.claim {
                volume.persistent_volume_claim = Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: v.read_only.then_some(true),
                });
            } else if let Some(size) = &v.empty_dir {
                volume.empty_dir = Some(EmptyDirVolumeSource {
                    size_limit: Some(k8s_q(size)),
                    ..EmptyDirVolumeSource::default()
                });
            } else if let Some(cm) = &v.config_map {
                volume.config_map = Some(ConfigMapVolumeSource {
                    name: cm.clone(),
                    ..ConfigMapVolumeSource::default()
                });
            } else if let Some(secret) = &v.secret {
                volume.secret = Some(SecretVolumeSource {
                    secret_name: Some(secret.clone()),
                    ..SecretVolumeSource::default()
                });
            }
            let path = if v.path.starts_with('/') {
                v.path.clone()
            } else {
                format!(
                    "{}/{}",
                    workdir.trim_end_matches('/'),
                    v.path.trim_start_matches("./").trim_end_matches('/')
                )
            };
            self.add(volume, &path, v.read_only);
        }
    }

    /// Adds `emptyDir`s where output artifacts are written (relative to `workdir`). Returns
    /// whether the root filesystem must stay writable: a file written at the top of the
    /// working directory has no directory of its own to mount.
    pub fn artifacts(&mut self, workdir: &str, artifacts: &[String]) -> bool {
        let mut writable_root = false;
        let mut seen: Vec<String> = Vec::new();
        for path in artifacts {
            let clean = path.trim_start_matches("./");
            let (first, nested) = match clean.split_once('/') {
                Some((first, rest)) => (first, !rest.is_empty() || clean.ends_with('/')),
                None => (clean, false),
            };
            if !nested {
                writable_root = true;
                continue;
            }
            if seen.iter().any(|s| s == first) {
                continue;
            }
            seen.push(first.to_string());
            self.scratch(
                &volume_name("artifact", first),
                &format!("{}/{first}", workdir.trim_end_matches('/')),
                None,
                false,
            );
        }
        writable_root
    }
}

/// A volume name (DNS label) from a prefix and a free-form name.
pub fn volume_name(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
    out.push('-');
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        out.push(if c.is_ascii_alphanumeric() { c } else { '-' });
    }
    let mut out = out.trim_end_matches('-').to_string();
    out.truncate(63);
    out.trim_end_matches('-').to_string()
}

/// A container with the restricted security context and the given pieces.
pub fn container(
    name: &str,
    image: &str,
    run: &[String],
    env: Vec<EnvVar>,
    sized: &Sized,
    mounts: &Mounts,
    writable_root: bool,
) -> Container {
    let (command, args) = argv(run);
    Container {
        name: name.into(),
        image: Some(image.into()),
        command,
        args,
        env: (!env.is_empty()).then_some(env),
        resources: Some(sized.requirements.clone()),
        volume_mounts: (!mounts.mounts.is_empty()).then(|| mounts.mounts.clone()),
        security_context: Some(container_security(writable_root)),
        ..Container::default()
    }
}
