//! Platform → per namespace a `Namespace` with Pod Security Admission labels (never a
//! PodSecurityPolicy, removed in 1.25), a `ResourceQuota` (GPUs as `requests.nvidia.com/gpu`
//! only: extended resources cannot be overcommitted, so the API server allows no `limits.`
//! quota for them), a `LimitRange` (CPU and memory only: any GPU bound there becomes a default
//! that hands every container a GPU), a default-deny `NetworkPolicy` with the
//! allows the spec declares plus DNS to kube-system; and the `PriorityClass`es.
//!
//! Node pools are not rendered: nodes are registered by the kubelet or the cloud's node
//! groups, not applied. `mlctl plan` uses them.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Namespace, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use mlctl_core::quantity::Quantity;
use mlctl_core::spec::Object;
use mlctl_core::spec::platform::{
    NamespaceSpec, NetPort, Peer, PlatformSpec, PodSecurityLevel, ResourceBounds,
};

use super::pod::{GPU_RESOURCE, k8s_q};
use super::{Ctx, KubeVersion, RenderError, meta};

/// The labels of a namespace: Pod Security Admission at `level` (enforced, audited and
/// warned), and the spec's own.
pub fn namespace_labels(
    _name: &str,
    level: PodSecurityLevel,
    extra: &IndexMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> =
        extra.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            level.as_str().into(),
        );
    }
    labels.insert("app.kubernetes.io/managed-by".into(), "mlctl".into());
    labels
}

/// Renders a Platform.
pub fn render(ctx: &mut Ctx<'_>, object: &Object, p: &PlatformSpec) -> Result<(), RenderError> {
    for (name, ns) in &p.namespaces {
        namespace(ctx, object, name, ns)?;
    }
    for (name, class) in &p.priority_classes {
        let pc = PriorityClass {
            metadata: meta(object, name, None, "platform"),
            value: class.value,
            global_default: class.default.then_some(true),
            preemption_policy: Some(
                if class.preempt.unwrap_or(true) {
                    "PreemptLowerPriority"
                } else {
                    "Never"
                }
                .into(),
            ),
            description: class.description.clone(),
        };
        ctx.push_k8s(&pc)?;
    }
    Ok(())
}

fn version_label(ctx: &Ctx<'_>) -> &'static str {
    match ctx.opts.kube_version {
        KubeVersion::V1_33 => "v1.33",
        KubeVersion::V1_36 => "v1.36",
    }
}

fn namespace(
    ctx: &mut Ctx<'_>,
    object: &Object,
    name: &str,
    ns: &NamespaceSpec,
) -> Result<(), RenderError> {
    let level = ns.pod_security.unwrap_or(PodSecurityLevel::Restricted);
    let mut labels = namespace_labels(name, level, &ns.labels);
    labels.insert(
        "pod-security.kubernetes.io/enforce-version".into(),
        version_label(ctx).into(),
    );
    let mut m = meta(object, name, None, "platform");
    let mut all = m.labels.take().unwrap_or_default();
    all.extend(labels);
    m.labels = Some(all);
    ctx.push_k8s(&Namespace {
        metadata: m,
        ..Namespace::default()
    })?;
    if let Some(q) = &ns.quota {
        let mut hard: BTreeMap<String, K8sQuantity> = BTreeMap::new();
        let mut put = |key: &str, v: Option<&Quantity>| {
            if let Some(v) = v {
                hard.insert(key.into(), k8s_q(v));
            }
        };
        put("requests.cpu", q.cpu.as_ref());
        put("requests.memory", q.memory.as_ref());
        put(&format!("requests.{GPU_RESOURCE}"), q.gpu.as_ref());
        if let Some(l) = &q.limits {
            put("limits.cpu", l.cpu.as_ref());
            put("limits.memory", l.memory.as_ref());
        }
        if let Some(pods) = q.pods {
            hard.insert("pods".into(), K8sQuantity(pods.to_string()));
        }
        ctx.push_k8s(&ResourceQuota {
            metadata: meta(object, "compute", Some(name), "platform"),
            spec: Some(ResourceQuotaSpec {
                hard: Some(hard),
                ..ResourceQuotaSpec::default()
            }),
            ..ResourceQuota::default()
        })?;
    }
    if let Some(l) = &ns.limits {
        // GPUs never go in a LimitRange (validation rejects them): Kubernetes turns every
        // bound into a default for containers that set none, handing each of them a GPU.
        let bounds = |b: &Option<ResourceBounds>| {
            b.as_ref().and_then(|b| {
                let mut m = BTreeMap::new();
                if let Some(c) = &b.cpu {
                    m.insert("cpu".to_string(), k8s_q(c));
                }
                if let Some(mem) = &b.memory {
                    m.insert("memory".to_string(), k8s_q(mem));
                }
                (!m.is_empty()).then_some(m)
            })
        };
        ctx.push_k8s(&LimitRange {
            metadata: meta(object, "container-defaults", Some(name), "platform"),
            spec: Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".into(),
                    default: bounds(&l.default),
                    default_request: bounds(&l.default_request),
                    max: bounds(&l.max),
                    min: bounds(&l.min),
                    ..LimitRangeItem::default()
                }],
            }),
        })?;
    }
    if let Some(net) = &ns.network {
        network(ctx, object, name, net)?;
    }
    Ok(())
}

fn network(
    ctx: &mut Ctx<'_>,
    object: &Object,
    ns: &str,
    net: &mlctl_core::spec::platform::NetworkSpec,
) -> Result<(), RenderError> {
    let everything = LabelSelector::default();
    ctx.push_k8s(&NetworkPolicy {
        metadata: meta(object, "default-deny", Some(ns), "platform"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(everything.clone()),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ..NetworkPolicySpec::default()
        }),
    })?;
    if net.allow_dns.unwrap_or(true) {
        ctx.push_k8s(&NetworkPolicy {
            metadata: meta(object, "allow-dns", Some(ns), "platform"),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(everything.clone()),
                policy_types: Some(vec!["Egress".into()]),
                egress: Some(vec![NetworkPolicyEgressRule {
                    to: Some(vec![NetworkPolicyPeer {
                        namespace_selector: Some(by_name("kube-system")),
                        pod_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                "k8s-app".to_string(),
                                "kube-dns".to_string(),
                            )])),
                            ..LabelSelector::default()
                        }),
                        ..NetworkPolicyPeer::default()
                    }]),
                    ports: Some(vec![
                        port(&NetPort {
                            port: 53,
                            protocol: mlctl_core::spec::platform::Protocol::Udp,
                        }),
                        port(&NetPort {
                            port: 53,
                            protocol: mlctl_core::spec::platform::Protocol::Tcp,
                        }),
                    ]),
                }]),
                ..NetworkPolicySpec::default()
            }),
        })?;
    }
    // The workers of a distributed job (and a pipeline's steps) talk to each other.
    let gang = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "app.kubernetes.io/part-of".into(),
            operator: "In".into(),
            values: Some(vec!["mlctl-pipeline".into(), "mlctl-training".into()]),
        }]),
        ..LabelSelector::default()
    };
    let gang_peer = NetworkPolicyPeer {
        pod_selector: Some(gang.clone()),
        ..NetworkPolicyPeer::default()
    };
    ctx.push_k8s(&NetworkPolicy {
        metadata: meta(object, "allow-distributed-training", Some(ns), "platform"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(gang),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![gang_peer.clone()]),
                ..NetworkPolicyIngressRule::default()
            }]),
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![gang_peer]),
                ..NetworkPolicyEgressRule::default()
            }]),
        }),
    })?;
    if net.ingress.is_empty() && net.egress.is_empty() {
        return Ok(());
    }
    let applies_to = LabelSelector {
        match_labels: (!net.applies_to.is_empty()).then(|| {
            net.applies_to
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        ..LabelSelector::default()
    };
    let mut types = Vec::new();
    if !net.ingress.is_empty() {
        types.push("Ingress".to_string());
    }
    if !net.egress.is_empty() {
        types.push("Egress".to_string());
    }
    ctx.push_k8s(&NetworkPolicy {
        metadata: meta(object, "allow", Some(ns), "platform"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(applies_to),
            policy_types: Some(types),
            ingress: (!net.ingress.is_empty()).then(|| {
                net.ingress
                    .iter()
                    .map(|r| NetworkPolicyIngressRule {
                        from: Some(r.from.iter().map(peer).collect()),
                        ports: ports(&r.ports),
                    })
                    .collect()
            }),
            egress: (!net.egress.is_empty()).then(|| {
                net.egress
                    .iter()
                    .map(|r| NetworkPolicyEgressRule {
                        to: Some(r.to.iter().map(peer).collect()),
                        ports: ports(&r.ports),
                    })
                    .collect()
            }),
        }),
    })
}

/// Selects a namespace by the label Kubernetes sets on every namespace.
fn by_name(ns: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            ns.to_string(),
        )])),
        ..LabelSelector::default()
    }
}

fn peer(p: &Peer) -> NetworkPolicyPeer {
    if let Some(cidr) = &p.cidr {
        return NetworkPolicyPeer {
            ip_block: Some(IPBlock {
                cidr: cidr.clone(),
                except: (!p.except.is_empty()).then(|| p.except.clone()),
            }),
            ..NetworkPolicyPeer::default()
        };
    }
    NetworkPolicyPeer {
        namespace_selector: p.namespace.as_deref().map(by_name),
        pod_selector: (!p.pods.is_empty()).then(|| LabelSelector {
            match_labels: Some(p.pods.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

fn port(p: &NetPort) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(p.port))),
        protocol: Some(p.protocol.as_str().into()),
        ..NetworkPolicyPort::default()
    }
}

fn ports(ps: &[NetPort]) -> Option<Vec<NetworkPolicyPort>> {
    (!ps.is_empty()).then(|| ps.iter().map(port).collect())
}
