//! `Platform`: what the cluster (or this machine) offers and how it is shared: node pools,
//! namespaces with quotas, limit ranges, pod security and network rules, priority classes.

use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;
use crate::scalar::ScalarText;
use crate::spec::common::{StringMap, TaintEffect};

/// The platform workloads run on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlatformSpec {
    /// Groups of identical nodes.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub node_pools: IndexMap<String, NodePool>,
    /// Namespaces and their rules.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub namespaces: IndexMap<String, NamespaceSpec>,
    /// Priority classes by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub priority_classes: IndexMap<String, PriorityClassSpec>,
    /// The node label that carries the GPU model (default `accelerator`, as in the Kubernetes
    /// GPU scheduling guide; GKE uses `cloud.google.com/gke-accelerator`, NVIDIA's feature
    /// discovery `nvidia.com/gpu.product`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_type_label: Option<String>,
    /// How Prometheus and Grafana discover what mlctl renders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<PlatformMonitoring>,
}

/// A group of identical nodes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodePool {
    /// How many nodes (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Node labels.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: StringMap,
    /// Node taints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Allocatable resources of each node.
    pub allocatable: Capacity,
}

fn one() -> u32 {
    1
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Taint {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Effect.
    pub effect: TaintEffect,
}

/// Resources a node offers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Capacity {
    /// CPU cores.
    pub cpu: Quantity,
    /// Memory.
    pub memory: Quantity,
    /// GPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Quantity>,
    /// GPU model (sets the GPU type label on the nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
}

/// A namespace and its rules.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceSpec {
    /// Namespace labels.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: StringMap,
    /// Total resources all workloads of the namespace may request (ResourceQuota).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
    /// Per-container defaults and bounds (LimitRange).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<LimitRangeSpec>,
    /// Pod Security Standard enforced (default `restricted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_security: Option<PodSecurityLevel>,
    /// Network rules (a default-deny NetworkPolicy plus these allows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
}

/// A namespace quota. `cpu`, `memory` and `gpu` bound the requests; `limits` the limits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Quota {
    /// Sum of CPU requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Sum of memory requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// Sum of GPU requests (`requests.nvidia.com/gpu`; extended resources have no limits quota).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Quantity>,
    /// Number of pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<u32>,
    /// Sums of limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<QuotaLimits>,
}

/// Quota on the sums of limits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaLimits {
    /// Sum of CPU limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Sum of memory limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
}

/// Per-container defaults and bounds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitRangeSpec {
    /// Limits of containers that set none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<ResourceBounds>,
    /// Requests of containers that set none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_request: Option<ResourceBounds>,
    /// Largest allowed per container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<ResourceBounds>,
    /// Smallest allowed per container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<ResourceBounds>,
}

/// CPU, memory and GPU amounts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceBounds {
    /// CPU cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Quantity>,
    /// Memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// GPUs: never in a LimitRange (every bound becomes a default for containers that set
    /// none, which would give each of them a GPU); validation rejects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Quantity>,
}

/// Pod Security Standards levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    /// Unrestricted.
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Hardened (non-root, no capabilities, seccomp).
    Restricted,
}

impl PodSecurityLevel {
    /// The level as Pod Security Admission labels write it.
    pub fn as_str(&self) -> &'static str {
        match self {
            PodSecurityLevel::Privileged => "privileged",
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        }
    }
}

/// Network rules of a namespace.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetworkSpec {
    /// The pods these rules apply to (default: every pod of the namespace).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub applies_to: StringMap,
    /// Allowed incoming traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress: Vec<IngressRule>,
    /// Allowed outgoing traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<EgressRule>,
    /// Allow DNS lookups to kube-system (default true; a default-deny egress breaks DNS
    /// otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_dns: Option<bool>,
}

/// Allowed incoming traffic.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IngressRule {
    /// From these peers (any of them).
    pub from: Vec<Peer>,
    /// On these ports (`8080`, `53/UDP`); all ports when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetPort>,
}

/// Allowed outgoing traffic.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EgressRule {
    /// To these peers (any of them).
    pub to: Vec<Peer>,
    /// On these ports; all ports when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NetPort>,
}

/// A network peer: pods of a namespace, pods with labels, or addresses.
///
/// `namespace` and `pods` together mean the labelled pods of that namespace.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Peer {
    /// A namespace by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Pods by labels (in this namespace unless `namespace` is given).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub pods: StringMap,
    /// An address block (`0.0.0.0/0`, `10.0.0.0/8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// Address blocks excluded from `cidr`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
}

/// A port and protocol: `8080` or `"53/UDP"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetPort {
    /// The port.
    pub port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// An IP protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Protocol {
    /// TCP.
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP.
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// The protocol as Kubernetes writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

impl FromStr for NetPort {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not a port; write 8080 or \"53/UDP\"");
        let (port, protocol) = match text.split_once('/') {
            Some((p, proto)) => (
                p,
                match proto.to_ascii_uppercase().as_str() {
                    "TCP" => Protocol::Tcp,
                    "UDP" => Protocol::Udp,
                    "SCTP" => Protocol::Sctp,
                    _ => return Err(bad()),
                },
            ),
            None => (text, Protocol::Tcp),
        };
        match port.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(NetPort { port: p, protocol }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for NetPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.protocol {
            Protocol::Tcp => write!(f, "{}", self.port),
            _ => write!(f, "{}/{}", self.port, self.protocol.as_str()),
        }
    }
}

impl Serialize for NetPort {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NetPort {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ScalarText::deserialize(d)?
            .0
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for NetPort {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NetPort".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A port, with an optional protocol: 8080 or \"53/UDP\".",
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string", "pattern": "^[0-9]+(/(TCP|UDP|SCTP|tcp|udp|sctp))?$"}]
        })
    }
}

/// A priority class.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PriorityClassSpec {
    /// Higher runs first.
    pub value: i32,
    /// Used by workloads that name no class.
    #[serde(default)]
    pub default: bool,
    /// Whether workloads of this class may preempt lower ones (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preempt: Option<bool>,
    /// What the class is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// How Prometheus and Grafana discover rendered monitoring objects.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlatformMonitoring {
    /// Labels Prometheus selects ServiceMonitors and PrometheusRules by
    /// (kube-prometheus-stack: `release: <release name>`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub prometheus_labels: StringMap,
    /// The namespace the Grafana dashboard sidecar watches, if not the workload's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboards_namespace: Option<String>,
}
