//! From specs to the scheduler's inputs: what each process of a workload asks for
//! ([`PodRequest`]), the namespace policies a Platform declares ([`NamespacePolicy`]), the
//! nodes of its node pools, and priorities. Used by the local runtime, by validation (does a
//! workload fit its namespace at all?) and by `plan`.

use indexmap::IndexMap;

use crate::quantity::Quantity;
use crate::sched::{
    ContainerLimitRange, ContainerRequest, GpuDevice, LimitRange, NamespacePolicy, Node,
    PodRequest, QuotaResource, ResourceList, ResourceQuota, Taint, TaintEffect, Toleration,
    TolerationOperator,
};
use crate::spec::common::{self, Resources, Templated};
use crate::spec::platform::{NamespaceSpec, NodePool, PlatformSpec, ResourceBounds};
use crate::template::Ref;

/// Parameter values, by name (defaults merged with overrides).
pub type Params = IndexMap<String, String>;

/// Resolves a templated value with `params`.
pub fn resolve<T>(value: &Templated<T>, params: &Params) -> Result<T, String>
where
    T: std::str::FromStr + common::Expecting + Clone,
    T::Err: std::fmt::Display,
{
    value.resolve(|r| match r {
        Ref::Param(p) => params.get(p).cloned(),
        _ => None,
    })
}

fn milli(q: &Quantity) -> u64 {
    u64::try_from(q.milli().max(0)).unwrap_or(u64::MAX)
}

fn units(q: &Quantity) -> u64 {
    u64::try_from(q.units_ceil().max(0)).unwrap_or(u64::MAX)
}

/// The requests and limits of one container with `resources`. Limits default to the
/// requests for CPU and memory (and always equal them for GPUs); what is not requested at
/// all is left to the namespace's limit-range defaults, as on Kubernetes.
pub fn container(
    name: &str,
    resources: &Resources,
    params: &Params,
) -> Result<ContainerRequest, String> {
    let get = |v: &Option<Templated<Quantity>>| v.as_ref().map(|t| resolve(t, params)).transpose();
    let cpu = get(&resources.cpu)?;
    let memory = get(&resources.memory)?;
    let gpu = get(&resources.gpu)?;
    let limits = resources.limits.clone().unwrap_or_default();
    let cpu_limit = get(&limits.cpu)?.or_else(|| cpu.clone());
    let memory_limit = get(&limits.memory)?.or_else(|| memory.clone());
    let gpus = gpu
        .as_ref()
        .map(|g| u32::try_from(units(g)).unwrap_or(u32::MAX))
        .filter(|g| *g > 0);
    let requests = ResourceList {
        cpu_milli: cpu.as_ref().map(milli),
        memory_bytes: memory.as_ref().map(units),
        gpus,
    };
    let limits = ResourceList {
        cpu_milli: cpu_limit.as_ref().map(milli),
        memory_bytes: memory_limit.as_ref().map(units),
        gpus,
    };
    Ok(ContainerRequest::new(name, requests).with_limits(limits))
}

/// What one process (one worker, one replica) asks for and where it may run.
pub fn pod(
    resources: &Resources,
    node_selector: &IndexMap<String, String>,
    tolerations: &[common::Toleration],
    params: &Params,
) -> Result<PodRequest, String> {
    let mut pod = PodRequest::of(vec![container("main", resources, params)?]);
    if let Some(gpu_type) = &resources.gpu_type {
        pod = pod.gpu_type(gpu_type.clone());
    }
    for (k, v) in node_selector {
        pod = pod.select(k.clone(), v.clone());
    }
    for t in tolerations {
        pod = pod.tolerate(Toleration {
            key: t.key.clone(),
            operator: match t.operator {
                common::TolerationOperator::Equal => TolerationOperator::Equal,
                common::TolerationOperator::Exists => TolerationOperator::Exists,
            },
            value: t.value.clone().unwrap_or_default(),
            effect: t.effect.map(taint_effect),
        });
    }
    Ok(pod)
}

fn taint_effect(e: common::TaintEffect) -> TaintEffect {
    match e {
        common::TaintEffect::NoSchedule => TaintEffect::NoSchedule,
        common::TaintEffect::PreferNoSchedule => TaintEffect::PreferNoSchedule,
        common::TaintEffect::NoExecute => TaintEffect::NoExecute,
    }
}

/// The name mlctl gives a namespace's ResourceQuota (rendered and in messages).
pub fn quota_name(namespace: &str) -> String {
    format!("{namespace}-quota")
}

/// The name mlctl gives a namespace's LimitRange (rendered and in messages).
pub fn limit_range_name(namespace: &str) -> String {
    format!("{namespace}-limits")
}

fn bounds(b: Option<&ResourceBounds>) -> ResourceList {
    let Some(b) = b else {
        return ResourceList::default();
    };
    ResourceList {
        cpu_milli: b.cpu.as_ref().map(milli),
        memory_bytes: b.memory.as_ref().map(units),
        gpus: b
            .gpu
            .as_ref()
            .map(|g| u32::try_from(units(g)).unwrap_or(u32::MAX)),
    }
}

/// The scheduler policy of a namespace a Platform declares.
pub fn namespace_policy(name: &str, ns: &NamespaceSpec) -> NamespacePolicy {
    let limit_ranges = ns
        .limits
        .as_ref()
        .map(|l| LimitRange {
            name: limit_range_name(name),
            container: Some(ContainerLimitRange {
                default: bounds(l.default.as_ref()),
                default_request: bounds(l.default_request.as_ref()),
                min: bounds(l.min.as_ref()),
                max: bounds(l.max.as_ref()),
            }),
            pod: None,
        })
        .into_iter()
        .collect();
    let quotas = ns
        .quota
        .as_ref()
        .map(|q| {
            let mut hard = std::collections::BTreeMap::new();
            if let Some(v) = &q.cpu {
                hard.insert(QuotaResource::RequestsCpu, milli(v));
            }
            if let Some(v) = &q.memory {
                hard.insert(QuotaResource::RequestsMemory, units(v));
            }
            if let Some(v) = &q.gpu {
                hard.insert(QuotaResource::RequestsGpu, units(v));
            }
            if let Some(v) = q.pods {
                hard.insert(QuotaResource::Pods, u64::from(v));
            }
            if let Some(l) = &q.limits {
                if let Some(v) = &l.cpu {
                    hard.insert(QuotaResource::LimitsCpu, milli(v));
                }
                if let Some(v) = &l.memory {
                    hard.insert(QuotaResource::LimitsMemory, units(v));
                }
            }
            ResourceQuota {
                name: quota_name(name),
                hard,
            }
        })
        .into_iter()
        .collect();
    NamespacePolicy {
        name: name.to_string(),
        limit_ranges,
        quotas,
    }
}

/// The nodes of a node pool (`<pool>-0`, `<pool>-1`, ...), GPUs labelled with their model
/// under `gpu_type_label`.
pub fn pool_nodes(pool_name: &str, pool: &NodePool, gpu_type_label: &str) -> Vec<Node> {
    (0..pool.count)
        .map(|i| {
            let mut node = Node::new(
                format!("{pool_name}-{i}"),
                milli(&pool.allocatable.cpu),
                units(&pool.allocatable.memory),
            );
            node.labels = pool
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let model = pool
                .allocatable
                .gpu_type
                .clone()
                .unwrap_or_else(|| "nvidia-gpu".into());
            if pool.allocatable.gpu_type.is_some() {
                node.labels
                    .insert(gpu_type_label.to_string(), model.clone());
            }
            let gpus = pool.allocatable.gpu.as_ref().map(units).unwrap_or(0);
            node.gpus = (0..gpus)
                .map(|g| GpuDevice {
                    id: g.to_string(),
                    model: model.clone(),
                })
                .collect();
            node.taints = pool
                .taints
                .iter()
                .map(|t| {
                    Taint::new(
                        t.key.clone(),
                        t.value.clone().unwrap_or_default(),
                        taint_effect(t.effect),
                    )
                })
                .collect();
            node
        })
        .collect()
}

/// The priority of a workload naming `class` (or none) among the Platforms' classes: the
/// class's value, else the default class's, else 0.
pub fn priority<'a>(
    class: Option<&str>,
    platforms: impl IntoIterator<Item = &'a PlatformSpec>,
) -> i32 {
    let classes: Vec<_> = platforms
        .into_iter()
        .flat_map(|p| p.priority_classes.iter())
        .collect();
    match class {
        Some(name) => classes
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| c.value),
        None => classes
            .iter()
            .find(|(_, c)| c.default)
            .map_or(0, |(_, c)| c.value),
    }
}

/// The autoscaler of an InferenceService, as an HPA: `None` without `autoscale` (or with no
/// room between `replicas.min` and `replicas.max`). Metric names are the ones the local
/// autoscaler measures and rendered HPAs use (`requests_per_second`, `concurrency`).
pub fn hpa_spec(service: &crate::spec::InferenceServiceSpec) -> Option<crate::autoscale::HpaSpec> {
    use crate::autoscale::{self as hpa, HpaSpec, MetricSource, MetricSpec, MetricTarget};
    use crate::spec::serving::{PolicyKind, SelectPolicy};
    let a = service.autoscale.as_ref()?;
    if service.replicas.max() <= service.replicas.min {
        return None;
    }
    let mut metrics = Vec::new();
    for (name, pct) in [("cpu", a.cpu), ("memory", a.memory)] {
        if let Some(p) = pct {
            metrics.push(MetricSpec {
                source: MetricSource::Resource { name: name.into() },
                target: MetricTarget::Utilization(
                    p.0.round().clamp(1.0, f64::from(u32::MAX)) as u32
                ),
            });
        }
    }
    for (name, q) in [
        ("requests_per_second", &a.requests_per_second),
        ("concurrency", &a.concurrency),
    ] {
        if let Some(q) = q {
            metrics.push(MetricSpec {
                source: MetricSource::Pods { name: name.into() },
                target: MetricTarget::AverageValue(i64::try_from(q.milli()).unwrap_or(i64::MAX)),
            });
        }
    }
    let rules = |r: &crate::spec::serving::ScalingRules| hpa::ScalingRules {
        stabilization_window_seconds: r
            .stabilization_window
            .map(|w| u32::try_from(w.0.as_secs()).unwrap_or(u32::MAX)),
        select_policy: r.select_policy.map(|p| match p {
            SelectPolicy::Max => hpa::SelectPolicy::Max,
            SelectPolicy::Min => hpa::SelectPolicy::Min,
            SelectPolicy::Disabled => hpa::SelectPolicy::Disabled,
        }),
        policies: (!r.policies.is_empty()).then(|| {
            r.policies
                .iter()
                .map(|p| {
                    let period = u32::try_from(p.period.0.as_secs()).unwrap_or(u32::MAX);
                    match p.kind {
                        PolicyKind::Pods => hpa::ScalingPolicy::pods(p.value, period),
                        PolicyKind::Percent => hpa::ScalingPolicy::percent(p.value, period),
                    }
                })
                .collect()
        }),
        tolerance: None,
    };
    Some(HpaSpec {
        min_replicas: service.replicas.min,
        max_replicas: service.replicas.max(),
        metrics,
        behavior: a.behavior.as_ref().map(|b| hpa::Behavior {
            scale_up: b.scale_up.as_ref().map(rules),
            scale_down: b.scale_down.as_ref().map(rules),
        }),
    })
}

/// Parameter values: the declared defaults, with `overrides` applied. Unknown overrides are
/// an error (a typo would otherwise silently do nothing).
pub fn params(
    declared: &IndexMap<String, crate::scalar::ScalarText>,
    overrides: &IndexMap<String, String>,
) -> Result<Params, String> {
    let mut out: Params = declared
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in overrides {
        match out.get_mut(k) {
            Some(slot) => *slot = v.clone(),
            None => {
                let hint = crate::diag::did_you_mean(k, declared.keys().map(String::as_str))
                    .map(|c| format!(" (did you mean {c}?)"))
                    .unwrap_or_default();
                return Err(format!("unknown parameter {k}{hint}"));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(yaml: &str) -> Resources {
        let node = crate::yaml::parse_documents(yaml).expect("yaml").remove(0);
        crate::de::from_node(&node, crate::path::FieldPath::root()).expect("resources")
    }

    #[test]
    fn limits_default_to_requests_and_params_resolve() {
        let mut params = Params::new();
        params.insert("gpus".into(), "2".into());
        let c = container(
            "main",
            &res("{cpu: 500m, memory: 1Gi, gpu: '{{params.gpus}}', limits: {cpu: 2}}"),
            &params,
        )
        .expect("resolves");
        assert_eq!(c.requests.cpu_milli, Some(500));
        assert_eq!(c.limits.cpu_milli, Some(2000));
        assert_eq!(c.requests.memory_bytes, Some(1 << 30));
        assert_eq!(c.limits.memory_bytes, Some(1 << 30));
        assert_eq!((c.requests.gpus, c.limits.gpus), (Some(2), Some(2)));
    }

    #[test]
    fn unset_resources_are_left_to_limit_range_defaults() {
        let c = container("main", &res("{}"), &Params::new()).expect("resolves");
        assert_eq!(c.requests, ResourceList::default());
        assert_eq!(c.limits, ResourceList::default());
    }

    #[test]
    fn the_seed_autoscaling_becomes_a_valid_hpa() {
        let text = include_str!("../../../examples/seed/03-model-serving.yaml");
        let node = crate::yaml::parse_documents(text).expect("yaml").remove(0);
        let spec: crate::spec::InferenceServiceSpec = crate::de::from_node(
            node.get("spec").expect("spec"),
            crate::path::FieldPath::root(),
        )
        .expect("spec");
        let hpa = hpa_spec(&spec).expect("autoscaled");
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (2, 20));
        // cpu and the request rate (the seed's memory target is left out: autoscale-memory)
        assert_eq!(hpa.metrics.len(), 2);
        assert_eq!(
            hpa.metrics[1].target,
            crate::autoscale::MetricTarget::AverageValue(100_000)
        );
        hpa.validate().expect("valid");
        let up = hpa
            .behavior
            .as_ref()
            .and_then(|b| b.scale_up.as_ref())
            .expect("scale up");
        assert_eq!(up.stabilization_window_seconds, Some(60));
    }

    #[test]
    fn parameter_overrides() {
        let mut declared = IndexMap::new();
        declared.insert("epochs".into(), crate::scalar::ScalarText("3".into()));
        let mut o = IndexMap::new();
        o.insert("epochs".into(), "5".into());
        assert_eq!(params(&declared, &o).expect("ok")["epochs"], "5");
        o.insert("epoch".into(), "5".into());
        assert_eq!(
            params(&declared, &o).expect_err("unknown"),
            "unknown parameter epoch (did you mean epochs?)"
        );
    }
}
