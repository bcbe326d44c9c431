//! Autoscaling pitfalls: fixed replicas under an HPA, utilization targets without requests,
//! memory-based scaling, VPAs on GPUs or evicting training jobs, and HPA and VPA fighting
//! over the same workload.

use mlctl_core::autoscale::{MEMORY_TARGET_HINT, MEMORY_TARGET_PITFALL};
use mlctl_core::path::FieldPath;
use mlctl_core::yaml::Node;

use super::refs::scale_target;
use super::{Ctx, Emitter};
use crate::manifest::{Object, is_gpu_resource};

fn hpas<'a>(ctx: &Ctx<'a>) -> impl Iterator<Item = &'a Object<'a>> {
    ctx.of_kind("autoscaling", "HorizontalPodAutoscaler")
}

fn vpas<'a>(ctx: &Ctx<'a>) -> impl Iterator<Item = &'a Object<'a>> {
    ctx.of_kind("autoscaling.k8s.io", "VerticalPodAutoscaler")
}

/// (index, resource name, target type, container) of `Resource`/`ContainerResource` metrics.
fn resource_metrics<'a>(hpa: &Object<'a>) -> Vec<(usize, &'a str, &'a str, Option<&'a str>)> {
    let metrics = hpa
        .at("spec.metrics")
        .and_then(Node::as_seq)
        .unwrap_or_default();
    metrics
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let (res, container) = match m.get("type").and_then(Node::as_str)? {
                "Resource" => (m.get("resource")?, None),
                "ContainerResource" => {
                    let r = m.get("containerResource")?;
                    (r, r.get("container").and_then(Node::as_str))
                }
                _ => return None,
            };
            let name = res.get("name")?.as_str()?;
            let ty = res
                .get("target")
                .and_then(|t| t.get("type"))
                .and_then(Node::as_str)
                .unwrap_or("");
            Some((i, name, ty, container))
        })
        .collect()
}

/// Targets of HPAs that also fix `spec.replicas`.
pub fn hpa_fixed_replicas(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for hpa in hpas(ctx) {
        let Some(target) = scale_target(ctx, hpa) else {
            continue;
        };
        let Some(replicas) = target.at("spec.replicas").and_then(|n| n.scalar_text()) else {
            continue;
        };
        e.report(
            target,
            FieldPath::parse("spec.replicas"),
            format!(
                "HorizontalPodAutoscaler `{}` scales this {}, but `replicas: {replicas}` is set here: every apply resets the replica count to {replicas} until the HPA corrects it again (a scale-down under load, or a scale-up it undoes)",
                hpa.name, target.kind
            ),
            Some("remove spec.replicas from the manifest and let the HPA's minReplicas set the floor".to_string()),
        );
    }
}

fn limitrange_defaults(ctx: &Ctx<'_>, obj: &Object<'_>, resource: &str) -> bool {
    ctx.of_kind("", "LimitRange")
        .filter(|lr| lr.same_namespace(obj) && lr.namespace.is_some())
        .any(|lr| {
            lr.at("spec.limits")
                .and_then(Node::as_seq)
                .unwrap_or_default()
                .iter()
                .any(|l| {
                    ["defaultRequest", "default"]
                        .iter()
                        .any(|f| l.get(f).and_then(|d| d.get(resource)).is_some())
                })
        })
}

/// Utilization metrics on containers without requests.
pub fn hpa_missing_requests(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for hpa in hpas(ctx) {
        let Some(target) = scale_target(ctx, hpa) else {
            continue;
        };
        for (i, resource, ty, only) in resource_metrics(hpa) {
            if ty != "Utilization" || limitrange_defaults(ctx, target, resource) {
                continue;
            }
            let missing: Vec<String> = target
                .containers()
                .iter()
                .filter(|c| !c.init && c.pod.is_some())
                .filter(|c| only.is_none_or(|o| o == c.name()))
                .filter(|c| {
                    c.resource("requests", resource).is_none()
                        && c.resource("limits", resource).is_none()
                })
                .map(|c| c.name().to_string())
                .collect();
            if missing.is_empty() {
                continue;
            }
            e.report(
                hpa,
                FieldPath::parse("spec.metrics").index(i),
                format!(
                    "scales on {resource} utilization, but container{} {} of {} `{}` request{} no {resource}: utilization is a percentage of the request, so the HPA cannot compute it and never scales",
                    if missing.len() == 1 { "" } else { "s" },
                    super::list(&missing),
                    target.kind,
                    target.name,
                    if missing.len() == 1 { "s" } else { "" },
                ),
                Some(format!("set resources.requests.{resource} on every container of the target")),
            );
        }
    }
}

/// Memory-based scaling.
pub fn hpa_memory(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for hpa in hpas(ctx) {
        for (i, resource, _, _) in resource_metrics(hpa) {
            if resource != "memory" {
                continue;
            }
            e.report(
                hpa,
                FieldPath::parse("spec.metrics").index(i),
                MEMORY_TARGET_PITFALL,
                Some(MEMORY_TARGET_HINT.to_string()),
            );
        }
    }
}

fn vpa_mode<'a>(vpa: &Object<'a>) -> &'a str {
    vpa.at("spec.updatePolicy.updateMode")
        .and_then(Node::as_str)
        .unwrap_or("Auto")
}

/// VPAs controlling GPUs.
pub fn vpa_gpu(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for vpa in vpas(ctx) {
        let policies = vpa
            .at("spec.resourcePolicy.containerPolicies")
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (i, p) in policies.iter().enumerate() {
            let base = FieldPath::parse("spec.resourcePolicy.containerPolicies").index(i);
            let controlled = p.seq("controlledResources");
            for (j, r) in controlled.iter().enumerate() {
                if let Some(name) = r.as_str().filter(|n| is_gpu_resource(n)) {
                    e.report(
                        vpa,
                        base.key("controlledResources").index(j),
                        format!("the VPA recommends and sets only cpu and memory; it cannot control `{name}` (GPUs are whole devices fixed in the pod spec)"),
                        Some(format!("remove `{name}`; size GPUs in the workload itself")),
                    );
                }
            }
            for field in ["minAllowed", "maxAllowed"] {
                for entry in p.get(field).and_then(Node::as_map).unwrap_or_default() {
                    if is_gpu_resource(&entry.key) {
                        e.report(
                            vpa,
                            base.key(field).key(entry.key.clone()),
                            format!(
                                "`{field}.{}` has no effect: the VPA manages only cpu and memory",
                                entry.key
                            ),
                            Some(format!("remove `{}`", entry.key)),
                        );
                    }
                }
            }
        }
    }
}

const TRAINING_KINDS: &[&str] = &[
    "Job",
    "CronJob",
    "PyTorchJob",
    "TFJob",
    "MPIJob",
    "XGBoostJob",
    "PaddleJob",
    "JAXJob",
    "TrainJob",
    "Workflow",
    "SparkApplication",
    "DaskJob",
];

/// VPA in an evicting mode on training jobs.
pub fn vpa_training_job(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for vpa in vpas(ctx) {
        let mode = vpa_mode(vpa);
        if !matches!(mode, "Auto" | "Recreate") {
            continue;
        }
        let Some(kind) = vpa.at("spec.targetRef.kind").and_then(Node::as_str) else {
            continue;
        };
        if !TRAINING_KINDS.contains(&kind) {
            continue;
        }
        let path = if vpa.at("spec.updatePolicy.updateMode").is_some() {
            FieldPath::parse("spec.updatePolicy.updateMode")
        } else {
            FieldPath::parse("spec.targetRef")
        };
        e.report(
            vpa,
            path,
            format!("updateMode {mode} evicts pods to resize them: on a {kind} every eviction kills a training process and loses the work since its last checkpoint (and a distributed job restarts as a whole)"),
            Some("use `updateMode: \"Off\"` (or `Initial`) and apply the recommendation between runs".to_string()),
        );
    }
}

/// HPA and VPA on the same target.
pub fn hpa_vpa_conflict(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for vpa in vpas(ctx) {
        if vpa_mode(vpa) == "Off" {
            continue;
        }
        let (Some(kind), Some(name)) = (
            vpa.at("spec.targetRef.kind").and_then(Node::as_str),
            vpa.at("spec.targetRef.name").and_then(Node::as_str),
        ) else {
            continue;
        };
        for hpa in hpas(ctx).filter(|h| h.same_namespace(vpa)) {
            let same = hpa.at("spec.scaleTargetRef.kind").and_then(Node::as_str) == Some(kind)
                && hpa.at("spec.scaleTargetRef.name").and_then(Node::as_str) == Some(name);
            let cpu_mem: Vec<&str> = resource_metrics(hpa)
                .into_iter()
                .map(|(_, r, _, _)| r)
                .filter(|r| matches!(*r, "cpu" | "memory"))
                .collect();
            if !same || cpu_mem.is_empty() {
                continue;
            }
            e.report(
                vpa,
                FieldPath::parse("spec.targetRef"),
                format!(
                    "HorizontalPodAutoscaler `{}` scales {kind} `{name}` on {} while this VPA changes the same pods' requests: each resize moves the HPA's utilization, and the two fight",
                    hpa.name,
                    super::list(&cpu_mem)
                ),
                Some("let the HPA scale on a custom metric (requests per second), or run the VPA with updateMode \"Off\"".to_string()),
            );
        }
    }
}
