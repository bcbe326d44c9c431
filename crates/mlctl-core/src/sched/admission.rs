//! Admission: limit-range defaults and bounds, then quota, with Kubernetes' semantics.
//!
//! Order, as the API server does it:
//!
//! 1. pod defaulting: a container that sets a limit but no request gets request = limit
//!    (and, see 3, a GPU request without a limit gets limit = request);
//! 2. every `LimitRange` of the namespace, in order, after the API's own defaulting of the
//!    range (`default` ← `max`, `defaultRequest` ← `default`, then ← `min`): a missing limit
//!    takes `default`, a missing request takes `defaultRequest`;
//! 3. GPU requests must equal limits (extended resources are not overcommitted): a GPU
//!    request without a limit gets limit = request before the limit-range defaults (mlctl's
//!    contract; the API server would reject such a pod), a limit without a request gets
//!    request = limit;
//! 4. validation: request ≤ limit, container `min` ≤ request, limit ≤ container `max`, and the
//!    pod sums against the `Pod` item;
//! 5. quota: a quota that tracks `limits.cpu` (etc.) requires every container to set it, and
//!    a job asking more than a quota's hard amount on its own can never run.
//!
//! The running check ("used + requested ≤ hard") is [`check_quota`], called by the queue at
//! placement time: quota is charged while a job runs, and a job waits (not fails) while
//! other jobs hold the quota.

use std::fmt;

use serde::Serialize;

use super::model::{
    ContainerLimitRange, JobRequest, NamespacePolicy, QuotaResource, Resource, ResourceList,
    Resources,
};

/// A job after admission: what each worker asks of a node and what the whole job charges to
/// its namespace's quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admitted {
    pub per_worker: Resources,
    pub usage: QuotaUsage,
}

/// Amounts charged to a namespace's quota, indexed by [`QuotaResource`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QuotaUsage([u64; 8]);

impl QuotaUsage {
    /// The amount of one quota resource.
    pub fn get(&self, r: QuotaResource) -> u64 {
        self.0[r.index()]
    }

    pub(crate) fn add(&mut self, other: &QuotaUsage) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    pub(crate) fn sub(&mut self, other: &QuotaUsage) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_sub(b);
        }
    }
}

/// Why a job can never run as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Rejection {
    /// The request itself is malformed.
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// A `LimitRange` bound is violated.
    LimitRange(Box<LimitRangeViolation>),
    /// A quota requires a field the job does not set.
    QuotaMissing {
        /// The `ResourceQuota`.
        quota: String,
        /// Its namespace.
        namespace: String,
        /// The tracked resource.
        resource: QuotaResource,
        /// The container without it.
        container: String,
    },
    /// The job alone asks more than a quota allows.
    QuotaHard {
        /// The `ResourceQuota`.
        quota: String,
        /// Its namespace.
        namespace: String,
        /// The resource.
        resource: QuotaResource,
        /// What the job asks.
        requested: u64,
        /// The hard amount.
        hard: u64,
    },
    /// No set of nodes could take the job even if nothing else ran.
    Unschedulable {
        /// Why, node by node.
        message: String,
    },
}

/// Which `LimitRange` bound a job violates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitRangeViolation {
    /// The `LimitRange`.
    pub limit_range: String,
    /// Its namespace.
    pub namespace: String,
    /// `Container` or `Pod`.
    pub scope: String,
    /// The container, for `Container` bounds.
    pub container: Option<String>,
    /// The resource.
    pub resource: Resource,
    /// `minimum` or `maximum`.
    pub bound: String,
    /// The bound's amount.
    pub allowed: u64,
    /// The job's amount (`None`: the job sets no limit where a maximum applies).
    pub actual: Option<u64>,
}

impl fmt::Display for LimitRangeViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.resource;
        write!(
            f,
            "limit range {} in namespace {}: {} {r} usage per {} is {}",
            self.limit_range,
            self.namespace,
            self.bound,
            self.scope,
            r.format(self.allowed)
        )?;
        let what = if self.bound == "minimum" {
            "request"
        } else {
            "limit"
        };
        match self.actual {
            Some(a) => write!(f, ", but {what} is {}", r.format(a))?,
            None => write!(f, ", but no {what} is set")?,
        }
        if let Some(c) = &self.container {
            write!(f, " (container {c})")?;
        }
        Ok(())
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Invalid { message } => f.write_str(message),
            Rejection::LimitRange(v) => v.fmt(f),
            Rejection::QuotaMissing {
                quota,
                namespace,
                resource,
                container,
            } => write!(
                f,
                "quota {quota} in namespace {namespace}: must specify {resource} for container \
                 {container}"
            ),
            Rejection::QuotaHard {
                quota,
                namespace,
                resource,
                requested,
                hard,
            } => write!(
                f,
                "quota {quota} in namespace {namespace}: {resource} {} requested > {} hard",
                resource.format(*requested),
                resource.format(*hard)
            ),
            Rejection::Unschedulable { message } => f.write_str(message),
        }
    }
}

/// A quota that the running jobs of a namespace leave too little of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaExceeded {
    /// The `ResourceQuota`.
    pub quota: String,
    /// Its namespace.
    pub namespace: String,
    /// The first resource (in [`QuotaResource::ALL`] order) that does not fit.
    pub resource: QuotaResource,
    /// What the namespace's running jobs hold.
    pub used: u64,
    /// What is kept for a job queued ahead (0 outside a reservation).
    pub reserved: u64,
    /// What this job asks.
    pub requested: u64,
    /// The hard amount.
    pub hard: u64,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.resource;
        write!(
            f,
            "quota {} in namespace {}: {r} {} used",
            self.quota,
            self.namespace,
            r.format(self.used)
        )?;
        if self.reserved > 0 {
            write!(f, " + {} reserved", r.format(self.reserved))?;
        }
        write!(
            f,
            " + {} requested > {} hard",
            r.format(self.requested),
            r.format(self.hard)
        )
    }
}

/// Checks `used + reserved + requested ≤ hard` for every quota of the namespace.
pub(crate) fn check_quota(
    ns: Option<&NamespacePolicy>,
    namespace: &str,
    used: &QuotaUsage,
    reserved: &QuotaUsage,
    requested: &QuotaUsage,
) -> Result<(), QuotaExceeded> {
    let Some(ns) = ns else { return Ok(()) };
    for quota in &ns.quotas {
        for (&r, &hard) in &quota.hard {
            let (u, v, q) = (used.get(r), reserved.get(r), requested.get(r));
            if u.saturating_add(v).saturating_add(q) > hard {
                return Err(QuotaExceeded {
                    quota: quota.name.clone(),
                    namespace: namespace.to_string(),
                    resource: r,
                    used: u,
                    reserved: v,
                    requested: q,
                    hard,
                });
            }
        }
    }
    Ok(())
}

/// A container's resources after defaulting.
struct Resolved {
    name: String,
    requests: ResourceList,
    limits: ResourceList,
}

/// `LimitRange` defaulting as the API server stores the object.
fn normalized(c: &ContainerLimitRange) -> ContainerLimitRange {
    let mut out = c.clone();
    for r in Resource::ALL {
        if out.default.get(r).is_none()
            && let Some(v) = out.max.get(r)
        {
            out.default.set(r, v);
        }
        if out.default_request.get(r).is_none() {
            if let Some(v) = out.default.get(r) {
                out.default_request.set(r, v);
            } else if let Some(v) = out.min.get(r) {
                out.default_request.set(r, v);
            }
        }
    }
    out
}

/// Applies limit ranges and checks the static quota rules. `job.workers` must be ≥ 1.
pub(crate) fn admit(job: &JobRequest, ns: Option<&NamespacePolicy>) -> Result<Admitted, Rejection> {
    let invalid = |message: String| Rejection::Invalid { message };
    if job.workers == 0 {
        return Err(invalid(format!(
            "job {}: workers must be at least 1",
            job.id
        )));
    }
    if job.pod.containers.is_empty() {
        return Err(invalid(format!(
            "job {}: a worker needs a container",
            job.id
        )));
    }
    let namespace = job.namespace.as_str();
    let ranges: Vec<(&str, ContainerLimitRange)> = ns
        .map(|ns| {
            ns.limit_ranges
                .iter()
                .filter_map(|lr| {
                    lr.container
                        .as_ref()
                        .map(|c| (lr.name.as_str(), normalized(c)))
                })
                .collect()
        })
        .unwrap_or_default();

    let mut containers = Vec::with_capacity(job.pod.containers.len());
    for c in &job.pod.containers {
        let mut requests = c.requests;
        let mut limits = c.limits;
        for r in Resource::ALL {
            if requests.get(r).is_none()
                && let Some(l) = limits.get(r)
            {
                requests.set(r, l);
            }
        }
        // mlctl's contract: a GPU request is also the limit, before any default applies.
        if limits.gpus.is_none() {
            limits.gpus = requests.gpus;
        }
        for (_, range) in &ranges {
            for r in Resource::ALL {
                if limits.get(r).is_none()
                    && let Some(v) = range.default.get(r)
                {
                    limits.set(r, v);
                }
                if requests.get(r).is_none()
                    && let Some(v) = range.default_request.get(r)
                {
                    requests.set(r, v);
                }
            }
        }
        match (requests.gpus, limits.gpus) {
            (None, Some(lim)) => requests.gpus = Some(lim),
            (Some(req), Some(lim)) if req != lim => {
                return Err(invalid(format!(
                    "job {}: container {}: nvidia.com/gpu request {req} must equal its limit \
                     {lim} (GPUs are not overcommitted)",
                    job.id, c.name
                )));
            }
            _ => {}
        }
        for r in [Resource::Cpu, Resource::Memory] {
            if let (Some(req), Some(lim)) = (requests.get(r), limits.get(r))
                && req > lim
            {
                return Err(invalid(format!(
                    "job {}: container {}: {r} request {} must be less than or equal to its \
                     limit {}",
                    job.id,
                    c.name,
                    r.format(req),
                    r.format(lim)
                )));
            }
        }
        for (name, range) in &ranges {
            for r in Resource::ALL {
                let violation = |bound: &str, allowed: u64, actual: Option<u64>| {
                    Rejection::LimitRange(Box::new(LimitRangeViolation {
                        limit_range: (*name).to_string(),
                        namespace: namespace.to_string(),
                        scope: "Container".to_string(),
                        container: Some(c.name.clone()),
                        resource: r,
                        bound: bound.to_string(),
                        allowed,
                        actual,
                    }))
                };
                if let Some(min) = range.min.get(r) {
                    match requests.get(r) {
                        Some(v) if v >= min => {}
                        other => return Err(violation("minimum", min, other)),
                    }
                }
                if let Some(max) = range.max.get(r) {
                    match limits.get(r) {
                        Some(v) if v <= max => {}
                        other => return Err(violation("maximum", max, other)),
                    }
                }
            }
        }
        containers.push(Resolved {
            name: c.name.clone(),
            requests,
            limits,
        });
    }

    let per_worker = containers
        .iter()
        .fold(Resources::ZERO, |acc, c| acc.plus(&c.requests.or_zero()));
    let limit_sum = |r: Resource| -> Option<u64> {
        containers
            .iter()
            .map(|c| c.limits.get(r))
            .try_fold(0u64, |acc, v| v.map(|v| acc.saturating_add(v)))
    };

    if let Some(ns) = ns {
        for lr in &ns.limit_ranges {
            let Some(pod) = &lr.pod else { continue };
            for r in Resource::ALL {
                let violation = |bound: &str, allowed: u64, actual: Option<u64>| {
                    Rejection::LimitRange(Box::new(LimitRangeViolation {
                        limit_range: lr.name.clone(),
                        namespace: namespace.to_string(),
                        scope: "Pod".to_string(),
                        container: None,
                        resource: r,
                        bound: bound.to_string(),
                        allowed,
                        actual,
                    }))
                };
                if let Some(min) = pod.min.get(r)
                    && per_worker.get(r) < min
                {
                    return Err(violation("minimum", min, Some(per_worker.get(r))));
                }
                if let Some(max) = pod.max.get(r) {
                    match limit_sum(r) {
                        Some(v) if v <= max => {}
                        other => return Err(violation("maximum", max, other)),
                    }
                }
            }
        }
    }

    let workers = job.workers;
    let total = per_worker.times(workers);
    let mut usage = QuotaUsage::default();
    let w = u64::from(workers);
    usage.0[QuotaResource::RequestsCpu.index()] = total.cpu_milli;
    usage.0[QuotaResource::RequestsMemory.index()] = total.memory_bytes;
    usage.0[QuotaResource::RequestsGpu.index()] = u64::from(total.gpus);
    usage.0[QuotaResource::LimitsCpu.index()] =
        limit_sum(Resource::Cpu).unwrap_or(0).saturating_mul(w);
    usage.0[QuotaResource::LimitsMemory.index()] =
        limit_sum(Resource::Memory).unwrap_or(0).saturating_mul(w);
    usage.0[QuotaResource::LimitsGpu.index()] = u64::from(total.gpus);
    usage.0[QuotaResource::Pods.index()] = w;
    usage.0[QuotaResource::Jobs.index()] = 1;

    if let Some(ns) = ns {
        for quota in &ns.quotas {
            for (&r, &hard) in &quota.hard {
                let tracked = match r {
                    QuotaResource::RequestsCpu => Some((Resource::Cpu, false)),
                    QuotaResource::RequestsMemory => Some((Resource::Memory, false)),
                    QuotaResource::LimitsCpu => Some((Resource::Cpu, true)),
                    QuotaResource::LimitsMemory => Some((Resource::Memory, true)),
                    _ => None,
                };
                if let Some((res, is_limit)) = tracked
                    && let Some(c) = containers.iter().find(|c| {
                        let list = if is_limit { &c.limits } else { &c.requests };
                        list.get(res).is_none()
                    })
                {
                    return Err(Rejection::QuotaMissing {
                        quota: quota.name.clone(),
                        namespace: namespace.to_string(),
                        resource: r,
                        container: c.name.clone(),
                    });
                }
                if usage.get(r) > hard {
                    return Err(Rejection::QuotaHard {
                        quota: quota.name.clone(),
                        namespace: namespace.to_string(),
                        resource: r,
                        requested: usage.get(r),
                        hard,
                    });
                }
            }
        }
    }
    Ok(Admitted { per_worker, usage })
}

/// Re-checks a queued job against quotas that may have changed since it was submitted.
pub(crate) fn exceeds_hard(
    ns: Option<&NamespacePolicy>,
    namespace: &str,
    usage: &QuotaUsage,
) -> Option<Rejection> {
    let ns = ns?;
    for quota in &ns.quotas {
        for (&r, &hard) in &quota.hard {
            if usage.get(r) > hard {
                return Some(Rejection::QuotaHard {
                    quota: quota.name.clone(),
                    namespace: namespace.to_string(),
                    resource: r,
                    requested: usage.get(r),
                    hard,
                });
            }
        }
    }
    None
}
