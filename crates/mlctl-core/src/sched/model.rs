//! The scheduler's input types: resources, jobs, nodes and namespace policies.
//!
//! They are plain data, independent of the spec model: the spec (a `TrainingJob`, a pipeline
//! step, an `InferenceService` replica set, a `Platform`) is converted into these types by its
//! owner. Units are fixed and integral so that every comparison is exact: CPU in thousandths
//! of a core, memory in bytes, GPUs as whole devices.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// Identifies a job: a run attempt, a pipeline step or a set of service replicas.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for JobId {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for JobId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// One of the resources the scheduler places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// CPU, in thousandths of a core.
    Cpu,
    /// Memory, in bytes.
    Memory,
    /// NVIDIA GPUs (`nvidia.com/gpu`), whole devices.
    Gpu,
}

impl Resource {
    /// Every resource, in the order reasons are reported.
    pub const ALL: [Resource; 3] = [Resource::Cpu, Resource::Memory, Resource::Gpu];

    /// The Kubernetes name of the resource.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Gpu => "nvidia.com/gpu",
        }
    }

    /// An amount of this resource written as a Kubernetes quantity (`500m`, `16Gi`, `2`).
    pub fn format(self, amount: u64) -> String {
        match self {
            Resource::Cpu => Quantity::from_milli(i128::from(amount)).to_string(),
            Resource::Memory => Quantity::from_bytes(i128::from(amount)).to_string(),
            Resource::Gpu => amount.to_string(),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Amounts of the three placed resources.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub cpu_milli: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Whole GPUs.
    pub gpus: u32,
}

impl Resources {
    /// Nothing.
    pub const ZERO: Resources = Resources {
        cpu_milli: 0,
        memory_bytes: 0,
        gpus: 0,
    };

    /// The given amounts.
    pub fn new(cpu_milli: u64, memory_bytes: u64, gpus: u32) -> Self {
        Self {
            cpu_milli,
            memory_bytes,
            gpus,
        }
    }

    /// The amount of one resource, widened to `u64`.
    pub fn get(&self, r: Resource) -> u64 {
        match r {
            Resource::Cpu => self.cpu_milli,
            Resource::Memory => self.memory_bytes,
            Resource::Gpu => u64::from(self.gpus),
        }
    }

    /// Whether every amount is at most the matching amount of `other`.
    pub fn fits_in(&self, other: &Resources) -> bool {
        self.cpu_milli <= other.cpu_milli
            && self.memory_bytes <= other.memory_bytes
            && self.gpus <= other.gpus
    }

    /// The sum, saturating at the type's maximum.
    pub fn plus(&self, other: &Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_add(other.cpu_milli),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            gpus: self.gpus.saturating_add(other.gpus),
        }
    }

    /// The difference, stopping at zero.
    pub fn minus(&self, other: &Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_sub(other.cpu_milli),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            gpus: self.gpus.saturating_sub(other.gpus),
        }
    }

    /// `n` times these amounts, saturating.
    pub fn times(&self, n: u32) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.saturating_mul(u64::from(n)),
            memory_bytes: self.memory_bytes.saturating_mul(u64::from(n)),
            gpus: self.gpus.saturating_mul(n),
        }
    }

    /// The component-wise minimum.
    pub fn least(&self, other: &Resources) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.min(other.cpu_milli),
            memory_bytes: self.memory_bytes.min(other.memory_bytes),
            gpus: self.gpus.min(other.gpus),
        }
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu {}, memory {}",
            Resource::Cpu.format(self.cpu_milli),
            Resource::Memory.format(self.memory_bytes)
        )?;
        if self.gpus > 0 {
            write!(f, ", nvidia.com/gpu {}", self.gpus)?;
        }
        Ok(())
    }
}

/// A Kubernetes `ResourceList` restricted to the placed resources: an absent entry is `None`
/// (it may be filled by defaults), which is not the same as zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceList {
    /// CPU in thousandths of a core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_milli: Option<u64>,
    /// Memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Whole GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
}

impl ResourceList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// This list with a CPU amount (thousandths of a core).
    pub fn cpu_milli(mut self, v: u64) -> Self {
        self.cpu_milli = Some(v);
        self
    }

    /// This list with a memory amount (bytes).
    pub fn memory_bytes(mut self, v: u64) -> Self {
        self.memory_bytes = Some(v);
        self
    }

    /// This list with a GPU count.
    pub fn gpus(mut self, v: u32) -> Self {
        self.gpus = Some(v);
        self
    }

    /// The entry for one resource, widened to `u64`.
    pub fn get(&self, r: Resource) -> Option<u64> {
        match r {
            Resource::Cpu => self.cpu_milli,
            Resource::Memory => self.memory_bytes,
            Resource::Gpu => self.gpus.map(u64::from),
        }
    }

    /// Sets the entry for one resource (GPU amounts above `u32::MAX` saturate).
    pub fn set(&mut self, r: Resource, v: u64) {
        match r {
            Resource::Cpu => self.cpu_milli = Some(v),
            Resource::Memory => self.memory_bytes = Some(v),
            Resource::Gpu => self.gpus = Some(u32::try_from(v).unwrap_or(u32::MAX)),
        }
    }

    /// The amounts, with absent entries as zero.
    pub fn or_zero(&self) -> Resources {
        Resources {
            cpu_milli: self.cpu_milli.unwrap_or(0),
            memory_bytes: self.memory_bytes.unwrap_or(0),
            gpus: self.gpus.unwrap_or(0),
        }
    }
}

/// What one container of a worker asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRequest {
    /// The container's name (reasons name it).
    pub name: String,
    /// Requested amounts (what placement and `requests.*` quota count).
    #[serde(default)]
    pub requests: ResourceList,
    /// Limits (what `limits.*` quota and limit-range maxima count).
    #[serde(default)]
    pub limits: ResourceList,
}

impl ContainerRequest {
    /// A container with requests and no limits.
    pub fn new(name: impl Into<String>, requests: ResourceList) -> Self {
        Self {
            name: name.into(),
            requests,
            limits: ResourceList::default(),
        }
    }

    /// This container with limits.
    pub fn with_limits(mut self, limits: ResourceList) -> Self {
        self.limits = limits;
        self
    }
}

/// What a taint does to pods that do not tolerate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    /// Pods that do not tolerate the taint are not placed on the node.
    NoSchedule,
    /// The node is used for such pods only when no other node fits.
    PreferNoSchedule,
    /// Like `NoSchedule` (eviction of running pods is not modelled).
    NoExecute,
}

impl fmt::Display for TaintEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        })
    }
}

/// A node taint (`nvidia.com/gpu=present:NoSchedule`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Taint {
    /// The taint's key.
    pub key: String,
    /// The taint's value (may be empty).
    #[serde(default)]
    pub value: String,
    /// What it does.
    pub effect: TaintEffect,
}

impl Taint {
    /// A taint.
    pub fn new(key: impl Into<String>, value: impl Into<String>, effect: TaintEffect) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

/// How a toleration matches a taint's value.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum TolerationOperator {
    /// The key and the value must be equal.
    #[default]
    Equal,
    /// The key must be equal (or the toleration's key empty); the value is ignored.
    Exists,
}

/// A pod toleration, with Kubernetes' matching rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Toleration {
    /// The taint key it tolerates; empty with `Exists` tolerates every taint.
    #[serde(default)]
    pub key: String,
    /// How the value is matched.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// The value for `Equal`.
    #[serde(default)]
    pub value: String,
    /// The effect it tolerates; `None` tolerates every effect.
    #[serde(default)]
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Tolerates taints with this key, whatever their value and effect.
    pub fn exists(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            operator: TolerationOperator::Exists,
            value: String::new(),
            effect: None,
        }
    }

    /// Tolerates taints with this key and value, whatever their effect.
    pub fn equal(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            operator: TolerationOperator::Equal,
            value: value.into(),
            effect: None,
        }
    }

    /// Whether this toleration tolerates `taint` (Kubernetes `ToleratesTaint`).
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if self.key.is_empty() {
            return self.operator == TolerationOperator::Exists;
        }
        if self.key != taint.key {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => true,
            TolerationOperator::Equal => self.value == taint.value,
        }
    }
}

/// What one worker (pod) of a job asks for and where it may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRequest {
    /// The containers (init containers are not modelled).
    pub containers: Vec<ContainerRequest>,
    /// Only GPU devices of this model are used (`nvidia-tesla-v100`); `None` takes any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
    /// Labels a node must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pod tolerates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

impl PodRequest {
    /// A pod of one container named `main` with these requests.
    pub fn single(requests: ResourceList) -> Self {
        Self::of(vec![ContainerRequest::new("main", requests)])
    }

    /// A pod of these containers.
    pub fn of(containers: Vec<ContainerRequest>) -> Self {
        Self {
            containers,
            gpu_type: None,
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
        }
    }

    /// This pod restricted to GPUs of one model.
    pub fn gpu_type(mut self, model: impl Into<String>) -> Self {
        self.gpu_type = Some(model.into());
        self
    }

    /// This pod with one more node-selector label.
    pub fn select(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.node_selector.insert(key.into(), value.into());
        self
    }

    /// This pod with one more toleration.
    pub fn tolerate(mut self, toleration: Toleration) -> Self {
        self.tolerations.push(toleration);
        self
    }
}

/// A job to place: `workers` identical pods, placed all together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRequest {
    /// Unique among the jobs the scheduler knows.
    pub id: JobId,
    /// The namespace whose limit ranges and quotas apply.
    pub namespace: String,
    /// Higher runs first (Kubernetes `PriorityClass` value).
    #[serde(default)]
    pub priority: i32,
    /// Gang size: 1 for a plain job, N for a distributed job of N workers.
    pub workers: u32,
    /// What each worker asks for.
    pub pod: PodRequest,
}

impl JobRequest {
    /// A one-worker job of priority 0.
    pub fn new(id: impl Into<JobId>, namespace: impl Into<String>, pod: PodRequest) -> Self {
        Self {
            id: id.into(),
            namespace: namespace.into(),
            priority: 0,
            workers: 1,
            pod,
        }
    }

    /// This job with a priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// This job with a gang size.
    pub fn workers(mut self, workers: u32) -> Self {
        self.workers = workers;
        self
    }
}

/// One GPU of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// What `CUDA_VISIBLE_DEVICES` names (an index or a UUID); unique on its node.
    pub id: String,
    /// The model, compared with [`PodRequest::gpu_type`].
    pub model: String,
}

/// A machine to place workers on. Its GPUs are listed in topology order: neighbours in the
/// list are "contiguous" for the fragmentation score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Unique among nodes.
    pub name: String,
    /// Labels matched by node selectors.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints.
    #[serde(default)]
    pub taints: Vec<Taint>,
    /// Allocatable CPU in thousandths of a core.
    pub allocatable_cpu_milli: u64,
    /// Allocatable memory in bytes.
    pub allocatable_memory_bytes: u64,
    /// GPU devices, in topology order.
    #[serde(default)]
    pub gpus: Vec<GpuDevice>,
}

impl Node {
    /// A node without labels, taints or GPUs.
    pub fn new(name: impl Into<String>, cpu_milli: u64, memory_bytes: u64) -> Self {
        Self {
            name: name.into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            allocatable_cpu_milli: cpu_milli,
            allocatable_memory_bytes: memory_bytes,
            gpus: Vec::new(),
        }
    }

    /// This node with `count` GPUs of one model, with ids `0`, `1`, ...
    pub fn with_gpus(mut self, count: u32, model: impl Into<String>) -> Self {
        let model = model.into();
        self.gpus = (0..count)
            .map(|i| GpuDevice {
                id: i.to_string(),
                model: model.clone(),
            })
            .collect();
        self
    }

    /// This node with one more label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// This node with one more taint.
    pub fn taint(mut self, taint: Taint) -> Self {
        self.taints.push(taint);
        self
    }

    /// What the node offers in total.
    pub fn allocatable(&self) -> Resources {
        Resources {
            cpu_milli: self.allocatable_cpu_milli,
            memory_bytes: self.allocatable_memory_bytes,
            gpus: u32::try_from(self.gpus.len()).unwrap_or(u32::MAX),
        }
    }
}

/// The admission policy of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespacePolicy {
    /// The namespace.
    pub name: String,
    /// `LimitRange` objects, applied in this order.
    #[serde(default)]
    pub limit_ranges: Vec<LimitRange>,
    /// `ResourceQuota` objects; every one must hold.
    #[serde(default)]
    pub quotas: Vec<ResourceQuota>,
}

/// A Kubernetes `LimitRange` (the `Container` and `Pod` items).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitRange {
    /// Its name (reasons name it).
    pub name: String,
    /// The `type: Container` item.
    #[serde(default)]
    pub container: Option<ContainerLimitRange>,
    /// The `type: Pod` item.
    #[serde(default)]
    pub pod: Option<PodLimitRange>,
}

/// The `type: Container` item of a `LimitRange`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerLimitRange {
    /// Limits given to containers that set none.
    #[serde(default)]
    pub default: ResourceList,
    /// Requests given to containers that set none.
    #[serde(default)]
    pub default_request: ResourceList,
    /// Smallest request allowed.
    #[serde(default)]
    pub min: ResourceList,
    /// Largest limit allowed.
    #[serde(default)]
    pub max: ResourceList,
}

/// The `type: Pod` item of a `LimitRange` (sums over a pod's containers).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodLimitRange {
    /// Smallest total request allowed.
    #[serde(default)]
    pub min: ResourceList,
    /// Largest total limit allowed.
    #[serde(default)]
    pub max: ResourceList,
}

/// A Kubernetes `ResourceQuota`: hard limits on what the namespace's running jobs hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceQuota {
    /// Its name (reasons name it).
    pub name: String,
    /// Hard limits, in the unit of each resource (milli-CPU, bytes, counts).
    #[serde(default)]
    pub hard: BTreeMap<QuotaResource, u64>,
}

/// A resource a quota can limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum QuotaResource {
    /// `requests.cpu` (also written `cpu`), milli-CPU.
    RequestsCpu,
    /// `requests.memory` (also written `memory`), bytes.
    RequestsMemory,
    /// `requests.nvidia.com/gpu`, GPUs.
    RequestsGpu,
    /// `limits.cpu`, milli-CPU.
    LimitsCpu,
    /// `limits.memory`, bytes.
    LimitsMemory,
    /// `limits.nvidia.com/gpu`, GPUs (equal to requests: GPUs are not overcommitted).
    LimitsGpu,
    /// `pods`: workers.
    Pods,
    /// `count/jobs.batch` (also written `count/jobs`): jobs.
    Jobs,
}

impl QuotaResource {
    /// Every quota resource, in the order reasons are reported.
    pub const ALL: [QuotaResource; 8] = [
        QuotaResource::RequestsCpu,
        QuotaResource::RequestsMemory,
        QuotaResource::RequestsGpu,
        QuotaResource::LimitsCpu,
        QuotaResource::LimitsMemory,
        QuotaResource::LimitsGpu,
        QuotaResource::Pods,
        QuotaResource::Jobs,
    ];

    /// The canonical Kubernetes name.
    pub fn name(self) -> &'static str {
        match self {
            QuotaResource::RequestsCpu => "requests.cpu",
            QuotaResource::RequestsMemory => "requests.memory",
            QuotaResource::RequestsGpu => "requests.nvidia.com/gpu",
            QuotaResource::LimitsCpu => "limits.cpu",
            QuotaResource::LimitsMemory => "limits.memory",
            QuotaResource::LimitsGpu => "limits.nvidia.com/gpu",
            QuotaResource::Pods => "pods",
            QuotaResource::Jobs => "count/jobs.batch",
        }
    }

    /// An amount written as Kubernetes would (`64`, `500m`, `256Gi`, `8`).
    pub fn format(self, amount: u64) -> String {
        match self {
            QuotaResource::RequestsCpu | QuotaResource::LimitsCpu => Resource::Cpu.format(amount),
            QuotaResource::RequestsMemory | QuotaResource::LimitsMemory => {
                Resource::Memory.format(amount)
            }
            _ => amount.to_string(),
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for QuotaResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a text is not a quota resource this scheduler tracks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a quota resource mlctl tracks (expected one of requests.cpu, requests.memory, \
     requests.nvidia.com/gpu, limits.cpu, limits.memory, limits.nvidia.com/gpu, pods, count/jobs.batch)"
)]
pub struct UnknownQuotaResource(pub String);

impl FromStr for QuotaResource {
    type Err = UnknownQuotaResource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "cpu" | "requests.cpu" => QuotaResource::RequestsCpu,
            "memory" | "requests.memory" => QuotaResource::RequestsMemory,
            "requests.nvidia.com/gpu" => QuotaResource::RequestsGpu,
            "limits.cpu" => QuotaResource::LimitsCpu,
            "limits.memory" => QuotaResource::LimitsMemory,
            "limits.nvidia.com/gpu" => QuotaResource::LimitsGpu,
            "pods" | "count/pods" => QuotaResource::Pods,
            "count/jobs.batch" | "count/jobs" => QuotaResource::Jobs,
            other => return Err(UnknownQuotaResource(other.to_string())),
        })
    }
}

impl TryFrom<String> for QuotaResource {
    type Error = UnknownQuotaResource;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<QuotaResource> for String {
    fn from(r: QuotaResource) -> String {
        r.name().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toleration_matching_follows_kubernetes() {
        let gpu = Taint::new("nvidia.com/gpu", "present", TaintEffect::NoSchedule);
        assert!(Toleration::exists("nvidia.com/gpu").tolerates(&gpu));
        assert!(Toleration::equal("nvidia.com/gpu", "present").tolerates(&gpu));
        assert!(!Toleration::equal("nvidia.com/gpu", "absent").tolerates(&gpu));
        assert!(!Toleration::exists("other").tolerates(&gpu));
        let all = Toleration::exists("");
        assert!(all.tolerates(&gpu));
        // An empty key with Equal tolerates nothing.
        assert!(!Toleration::equal("", "").tolerates(&gpu));
        let mut only_execute = Toleration::exists("nvidia.com/gpu");
        only_execute.effect = Some(TaintEffect::NoExecute);
        assert!(!only_execute.tolerates(&gpu));
    }

    #[test]
    fn quota_resource_names_round_trip_and_accept_aliases() {
        for r in QuotaResource::ALL {
            assert_eq!(r.name().parse::<QuotaResource>(), Ok(r));
        }
        assert_eq!("cpu".parse(), Ok(QuotaResource::RequestsCpu));
        assert_eq!("count/jobs".parse(), Ok(QuotaResource::Jobs));
        let err = "requests.storage".parse::<QuotaResource>().unwrap_err();
        assert!(err.to_string().contains("\"requests.storage\""), "{err}");
    }

    #[test]
    fn amounts_are_written_as_quantities() {
        assert_eq!(Resource::Cpu.format(500), "500m");
        assert_eq!(Resource::Cpu.format(64_000), "64");
        assert_eq!(Resource::Memory.format(256 << 30), "256Gi");
        assert_eq!(QuotaResource::RequestsGpu.format(8), "8");
    }
}
