//! The scheduler: an event-fed state machine that admits jobs, queues them and places them
//! on nodes, with reasons for every refusal and wait.
//!
//! It is pure: no I/O, no clock (the policy needs none), no randomness. The local runtime
//! feeds it events ([`Event`]: submit, finish, cancel, node added or removed, namespace
//! policy set) and carries out its [`Decision`]s (place, queue, reject, evict); `plan` feeds
//! it the same events offline for thousands of nodes. The same event sequence always yields
//! the same decisions.
//!
//! # Admission
//!
//! On submit, Kubernetes' admission order (the `admission` module has the details):
//! limit-range defaults and bounds, GPU requests equal to limits, then the quota
//! rules that can be decided on the job alone (a tracked field must be set; the job alone must
//! not exceed a hard amount). A job that cannot fit an empty cluster (no node passes the
//! filters, or the gang's workers cannot all be placed at once) is rejected too: it would
//! wait forever. Everything else is queued.
//!
//! Quota is then charged while a job runs: a queued job starts only if
//! `used + requested ≤ hard` for every quota of its namespace, where `used` sums the jobs of
//! the namespace that were placed and have not finished. Otherwise it waits with the exact
//! reason (`quota gpu-quota in namespace ml: requests.nvidia.com/gpu 8 used + 2 requested > 8
//! hard`). Namespaces without a [`NamespacePolicy`] are unconstrained.
//!
//! # Queue
//!
//! Jobs are ordered by priority (higher first), then by submission (FIFO). Every event runs
//! one pass over the queue in that order, trying each job; a job starts when it passes quota
//! and placement. There is no preemption: running jobs are never stopped to make room.
//!
//! **No starvation: reservations with conservative backfill** (EASY backfilling without
//! run-time estimates). A job that cannot start must not be overtaken forever by smaller
//! jobs behind it. The first job in queue order that fails placement is the *capacity head*;
//! the first job of each namespace that fails its quota is that namespace's *quota head*.
//! A job behind a head may start ("backfill") only if it cannot delay the head:
//!
//! - capacity: the head keeps a *reservation*, the placement it would get if only the jobs
//!   that backfilled past it were running. A backfill job is placed on what is free now minus
//!   that reservation, so the head still fits beside every backfilled job. Hence the head
//!   starts at the latest when the jobs that were running when it became head have finished,
//!   however many jobs backfill meanwhile. (If the reservation cannot be computed, which only
//!   a node removal can cause, nothing backfills until it can.)
//! - quota, capacity head: a backfill job of the head's namespace must leave room for the
//!   head in the quota as it is used now, so the head never falls back to waiting for quota.
//! - quota, quota head: a job of the same namespace may start only if the head, the jobs that
//!   started past it and this job together fit every quota; the jobs that held the quota
//!   when the head started waiting will finish, and then the head fits.
//!
//! A head's set of backfilled jobs is reset when another job becomes head. Each job, once
//! every job ahead of it has started, becomes head, and then waits only for a finite set of
//! running jobs: so every job that fits an empty cluster eventually runs, unless jobs of
//! higher priority keep arriving (that is what priority means). [`Policy::backfill`] `= false`
//! turns backfilling off (strict order: nothing passes a head).
//!
//! # Placement
//!
//! See the `cluster` module: candidates from indexes (node-selector labels, free-GPU
//! counts), Kubernetes' filters (selector, taints and tolerations, GPU model, allocatable,
//! free), and a score that bin-packs GPUs to keep large contiguous free sets (best fit by
//! free GPUs left, then longest contiguous run left), keeps GPU nodes for GPU work, then
//! packs CPU and memory. A distributed job (N identical workers) is placed whole or not at
//! all, workers of one node getting consecutive ranks.
//!
//! # Explanations
//!
//! [`Scheduler::explain`] says why a job waits, computed from the current state: the quota
//! that is short, or per node why a worker does not fit ("0/3 nodes can take a worker:
//! 1 node(s) didn't match node selector accelerator=v100, 2 node(s) had insufficient
//! nvidia.com/gpu"), or which queued-ahead job it must not delay.

mod admission;
mod cluster;
mod model;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub use admission::{LimitRangeViolation, QuotaExceeded, QuotaUsage, Rejection};
pub use model::{
    ContainerLimitRange, ContainerRequest, GpuDevice, JobId, JobRequest, LimitRange,
    NamespacePolicy, Node, PodLimitRange, PodRequest, QuotaResource, Resource, ResourceList,
    ResourceQuota, Resources, Taint, TaintEffect, Toleration, TolerationOperator,
    UnknownQuotaResource,
};

use admission::{Admitted, admit, check_quota, exceeds_hard};
use cluster::{Cluster, NodeIdx, Overlay, Shape, View};

/// Scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Let jobs start past a blocked head when they cannot delay it (default `true`).
    pub backfill: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self { backfill: true }
    }
}

/// Something that happened, fed to [`Scheduler::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// A job is submitted.
    Submit(JobRequest),
    /// A running job ended (success or failure); its resources are free again.
    Finish {
        /// The job.
        job: JobId,
    },
    /// A queued or running job is withdrawn.
    Cancel {
        /// The job.
        job: JobId,
    },
    /// A node joins.
    AddNode(Node),
    /// A node leaves; jobs with a worker on it are evicted.
    RemoveNode {
        /// The node's name.
        node: String,
    },
    /// A namespace's limit ranges and quotas are set (added or replaced).
    SetNamespace(NamespacePolicy),
}

/// Where one worker runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerPlacement {
    /// The worker's rank (0-based); workers on one node have consecutive ranks.
    pub rank: u32,
    /// The node.
    pub node: String,
    /// The GPU device ids it gets (for `CUDA_VISIBLE_DEVICES`).
    pub gpus: Vec<String>,
}

/// Where every worker of a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// The job.
    pub job: JobId,
    /// One entry per worker, by rank.
    pub workers: Vec<WorkerPlacement>,
    /// What each worker was given after limit-range defaults.
    pub per_worker: Resources,
    /// Blocked jobs queued ahead that this job started past (backfill), if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backfilled_past: Vec<JobId>,
}

/// Why a queued job is not running yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PendingReason {
    /// The namespace's running jobs hold too much of a quota.
    Quota {
        /// Which quota and by how much.
        exceeded: QuotaExceeded,
    },
    /// The quota would have room, but using it could delay a job queued ahead.
    QuotaHeld {
        /// The job queued ahead.
        head: JobId,
        /// Which quota; `reserved` is the head's share.
        exceeded: QuotaExceeded,
        /// `used` counts only the jobs that started past the head (the head waits for quota
        /// itself), rather than everything running.
        started_past_head: bool,
    },
    /// No set of nodes has room for every worker now (details: [`Scheduler::explain`]).
    Capacity {
        /// A job queued ahead holds a reservation that this job must not use.
        reserved_for: Option<JobId>,
    },
    /// Waiting behind a blocked job queued ahead, without backfill.
    BehindHead {
        /// The job queued ahead.
        head: JobId,
    },
}

impl fmt::Display for PendingReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PendingReason::Quota { exceeded } => write!(f, "{exceeded}"),
            PendingReason::QuotaHeld {
                head,
                exceeded,
                started_past_head,
            } => {
                write!(
                    f,
                    "held so that job {head}, queued ahead, is not delayed: {exceeded}"
                )?;
                if *started_past_head {
                    f.write_str(" (used: jobs that started past it)")?;
                }
                Ok(())
            }
            PendingReason::Capacity { reserved_for: None } => {
                f.write_str("no room for every worker on the nodes now")
            }
            PendingReason::Capacity {
                reserved_for: Some(head),
            } => write!(
                f,
                "no room for every worker on the nodes now, outside the reservation of job \
                 {head} queued ahead"
            ),
            PendingReason::BehindHead { head } => {
                write!(f, "waiting behind job {head}, queued ahead")
            }
        }
    }
}

/// What the scheduler decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "camelCase")]
pub enum Decision {
    /// Start the job's workers here.
    Place(Placement),
    /// The submitted job waits.
    Queue {
        /// The job.
        job: JobId,
        /// Why it could not start at once.
        reason: PendingReason,
    },
    /// The job can never run as submitted; it is forgotten.
    Reject {
        /// The job.
        job: JobId,
        /// Why.
        reason: Rejection,
    },
    /// The job lost a node; all its workers must stop. It is forgotten.
    Evict {
        /// The job.
        job: JobId,
        /// The removed node.
        node: String,
    },
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum JobStatus {
    /// Waiting.
    Queued {
        /// Jobs ahead of it in the queue.
        position: usize,
        /// Why, as of the last pass.
        reason: PendingReason,
    },
    /// Placed and not finished.
    Running(Placement),
}

/// Why a job is where it is, for `mlctl describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The job.
    pub job: JobId,
    /// Its state.
    pub status: JobStatus,
    /// One line.
    pub summary: String,
    /// Supporting lines (one per node that cannot take a worker, reservations).
    pub details: Vec<String>,
}

/// A node and its load, for `plan` and `describe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeUsage {
    /// The node.
    pub name: String,
    /// What it offers.
    pub allocatable: Resources,
    /// What the running workers requested.
    pub used: Resources,
    /// Each GPU device and the job holding it.
    pub gpus: Vec<(String, Option<JobId>)>,
}

/// A misuse of the scheduler by its caller (not a property of the jobs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    /// The job id is taken.
    #[error("failed to submit job {0}: a job with this id is queued or running")]
    DuplicateJob(JobId),
    /// No such job.
    #[error("failed to {op} job {job}: no such job is queued or running")]
    UnknownJob {
        /// `finish` or `cancel`.
        op: &'static str,
        /// The job.
        job: JobId,
    },
    /// Finish of a job that has not started.
    #[error("failed to finish job {0}: it is queued, not running (cancel it instead)")]
    NotRunning(JobId),
    /// The node name is taken.
    #[error("failed to add node {0}: a node with this name exists")]
    DuplicateNode(String),
    /// Two devices of one node share an id.
    #[error("failed to add node {node}: GPU device id {device:?} is listed twice")]
    DuplicateDevice {
        /// The node.
        node: String,
        /// The repeated id.
        device: String,
    },
    /// No such node.
    #[error("failed to remove node {0}: no such node")]
    UnknownNode(String),
}

type QueueKey = (Reverse<i32>, u64);

/// The placement-relevant part of a job, to remember failed shapes within a pass.
type ShapeKey = (
    Resources,
    u32,
    Option<String>,
    BTreeMap<String, String>,
    Vec<Toleration>,
);

#[derive(Debug, Clone)]
enum EntryState {
    Queued(PendingReason),
    Running {
        placement: Placement,
        placed: Vec<(NodeIdx, Vec<usize>)>,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    request: JobRequest,
    admitted: Admitted,
    key: QueueKey,
    shape: usize,
    state: EntryState,
}

impl Entry {
    fn shape(&self) -> Shape<'_> {
        Shape {
            per_worker: self.admitted.per_worker,
            workers: self.request.workers,
            pod: &self.request.pod,
        }
    }
}

/// A blocked job that others must not delay, and the jobs that started past it.
#[derive(Debug, Clone)]
struct Head {
    job: JobId,
    backfilled: BTreeSet<JobId>,
    /// For the capacity head: the backfill overlay and the reservation, kept until the
    /// backfilled set or the nodes change (a reservation stays valid while backfill jobs
    /// avoid it, so it is not recomputed when one starts).
    cached: Option<(Overlay, Option<Overlay>)>,
}

impl Head {
    fn new(job: JobId) -> Self {
        Self {
            job,
            backfilled: BTreeSet::new(),
            cached: None,
        }
    }
}

/// The capacity head as seen by one pass.
struct CapacityCtx {
    job: JobId,
    namespace: String,
    usage: QuotaUsage,
    backfill: Overlay,
    reservation: Option<Overlay>,
}

/// A namespace's quota head as seen by one pass.
struct QuotaCtx {
    job: JobId,
    usage: QuotaUsage,
    backfill_usage: QuotaUsage,
}

/// The scheduler state machine. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Scheduler {
    policy: Policy,
    cluster: Cluster,
    namespaces: BTreeMap<String, NamespacePolicy>,
    usage: BTreeMap<String, QuotaUsage>,
    queue: BTreeMap<QueueKey, JobId>,
    jobs: BTreeMap<JobId, Entry>,
    next_seq: u64,
    shapes: BTreeMap<ShapeKey, usize>,
    /// Whether a shape fits the empty cluster (cleared when nodes change).
    fits_empty_cache: BTreeMap<usize, bool>,
    capacity_head: Option<Head>,
    quota_heads: BTreeMap<String, Head>,
}

impl Scheduler {
    /// An empty scheduler (no nodes, no namespaces) with this policy.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Applies one event and returns what to do, in order.
    pub fn apply(&mut self, event: Event) -> Result<Vec<Decision>, SchedError> {
        let mut out = Vec::new();
        match event {
            Event::Submit(job) => return self.submit(job),
            Event::Finish { job } => match self.jobs.get(&job).map(|e| &e.state) {
                None => return Err(SchedError::UnknownJob { op: "finish", job }),
                Some(EntryState::Queued(_)) => return Err(SchedError::NotRunning(job)),
                Some(EntryState::Running { .. }) => self.release(&job),
            },
            Event::Cancel { job } => match self.jobs.get(&job).map(|e| (&e.state, e.key)) {
                None => return Err(SchedError::UnknownJob { op: "cancel", job }),
                Some((EntryState::Queued(_), key)) => {
                    self.queue.remove(&key);
                    self.jobs.remove(&job);
                }
                Some((EntryState::Running { .. }, _)) => self.release(&job),
            },
            Event::AddNode(node) => {
                if self.cluster.index_of(&node.name).is_some() {
                    return Err(SchedError::DuplicateNode(node.name));
                }
                let mut ids = BTreeSet::new();
                if let Some(d) = node.gpus.iter().find(|d| !ids.insert(d.id.as_str())) {
                    return Err(SchedError::DuplicateDevice {
                        node: node.name.clone(),
                        device: d.id.clone(),
                    });
                }
                self.cluster.add(node);
                self.fits_empty_cache.clear();
                if let Some(h) = &mut self.capacity_head {
                    h.cached = None;
                }
            }
            Event::RemoveNode { node } => {
                let Some(idx) = self.cluster.index_of(&node) else {
                    return Err(SchedError::UnknownNode(node));
                };
                let evicted: Vec<JobId> = self
                    .cluster
                    .node(idx)
                    .map(|n| n.workers.keys().cloned().collect())
                    .unwrap_or_default();
                for job in evicted {
                    self.release(&job);
                    out.push(Decision::Evict {
                        job,
                        node: node.clone(),
                    });
                }
                self.cluster.remove(idx);
                self.fits_empty_cache.clear();
                if let Some(h) = &mut self.capacity_head {
                    h.cached = None;
                }
                let queued: Vec<JobId> = self.queue.values().cloned().collect();
                for job in queued {
                    if let Some(reason) = self.never_fits(&job) {
                        self.forget_queued(&job);
                        out.push(Decision::Reject { job, reason });
                    }
                }
            }
            Event::SetNamespace(policy) => {
                let name = policy.name.clone();
                self.namespaces.insert(name.clone(), policy);
                let queued: Vec<JobId> = self.queue.values().cloned().collect();
                for job in queued {
                    let Some(entry) = self.jobs.get(&job) else {
                        continue;
                    };
                    if entry.request.namespace != name {
                        continue;
                    }
                    if let Some(reason) =
                        exceeds_hard(self.namespaces.get(&name), &name, &entry.admitted.usage)
                    {
                        self.forget_queued(&job);
                        out.push(Decision::Reject { job, reason });
                    }
                }
            }
        }
        out.extend(self.schedule());
        Ok(out)
    }

    fn submit(&mut self, job: JobRequest) -> Result<Vec<Decision>, SchedError> {
        if self.jobs.contains_key(&job.id) {
            return Err(SchedError::DuplicateJob(job.id));
        }
        let id = job.id.clone();
        let admitted = match admit(&job, self.namespaces.get(&job.namespace)) {
            Ok(a) => a,
            Err(reason) => return Ok(vec![Decision::Reject { job: id, reason }]),
        };
        let shape_key: ShapeKey = (
            admitted.per_worker,
            job.workers,
            job.pod.gpu_type.clone(),
            job.pod.node_selector.clone(),
            job.pod.tolerations.clone(),
        );
        let next_shape = self.shapes.len();
        let shape = *self.shapes.entry(shape_key).or_insert(next_shape);
        let key = (Reverse(job.priority), self.next_seq);
        self.next_seq += 1;
        let entry = Entry {
            request: job,
            admitted,
            key,
            shape,
            state: EntryState::Queued(PendingReason::Capacity { reserved_for: None }),
        };
        if let Err(reason) = self.fits_empty(&entry) {
            return Ok(vec![Decision::Reject { job: id, reason }]);
        }
        self.queue.insert(key, id.clone());
        self.jobs.insert(id.clone(), entry);
        let mut out = self.schedule();
        if let Some(Entry {
            state: EntryState::Queued(reason),
            ..
        }) = self.jobs.get(&id)
        {
            out.push(Decision::Queue {
                job: id,
                reason: reason.clone(),
            });
        }
        Ok(out)
    }

    fn fits_empty(&mut self, entry: &Entry) -> Result<(), Rejection> {
        let shape = entry.shape();
        let fits = match self.fits_empty_cache.get(&entry.shape) {
            Some(f) => *f,
            None => {
                let f = self.cluster.place(&shape, &View::Empty).is_ok();
                self.fits_empty_cache.insert(entry.shape, f);
                f
            }
        };
        if fits {
            return Ok(());
        }
        let (summary, details) = self
            .cluster
            .report(&shape, &View::Empty)
            .render(entry.request.workers);
        let mut message = format!("cannot run even on an empty cluster: {summary}");
        if !details.is_empty() {
            let shown: Vec<&str> = details.iter().take(8).map(String::as_str).collect();
            message.push_str(&format!(" ({})", shown.join("; ")));
        }
        Err(Rejection::Unschedulable { message })
    }

    fn never_fits(&mut self, job: &JobId) -> Option<Rejection> {
        let entry = self.jobs.get(job)?.clone();
        self.fits_empty(&entry).err()
    }

    fn forget_queued(&mut self, job: &JobId) {
        if let Some(entry) = self.jobs.remove(job) {
            self.queue.remove(&entry.key);
        }
    }

    /// Frees a running job's resources and forgets it.
    fn release(&mut self, job: &JobId) {
        let Some(entry) = self.jobs.remove(job) else {
            return;
        };
        if let EntryState::Running { placed, .. } = &entry.state {
            self.cluster
                .release(job, &entry.admitted.per_worker, placed);
            if let Some(u) = self.usage.get_mut(&entry.request.namespace) {
                u.sub(&entry.admitted.usage);
            }
        }
        self.queue.remove(&entry.key);
        if let Some(h) = &mut self.capacity_head
            && h.backfilled.remove(job)
        {
            h.cached = None;
        }
        for h in self.quota_heads.values_mut() {
            h.backfilled.remove(job);
        }
    }

    fn set_reason(&mut self, job: &JobId, reason: PendingReason) {
        if let Some(entry) = self.jobs.get_mut(job) {
            entry.state = EntryState::Queued(reason);
        }
    }

    /// The overlay of the running jobs in `set`, and their usage in `namespace`.
    fn backfill_of(&self, set: &BTreeSet<JobId>, namespace: &str) -> (Overlay, QuotaUsage) {
        let mut overlay = Overlay::default();
        let mut usage = QuotaUsage::default();
        for job in set {
            if let Some(entry) = self.jobs.get(job)
                && let EntryState::Running { placed, .. } = &entry.state
            {
                overlay.add(&entry.admitted.per_worker, placed);
                if entry.request.namespace == namespace {
                    usage.add(&entry.admitted.usage);
                }
            }
        }
        (overlay, usage)
    }

    /// The capacity head's context: its backfill overlay and reservation.
    fn capacity_ctx(&self) -> Option<CapacityCtx> {
        let head = self.capacity_head.as_ref()?;
        let entry = self.jobs.get(&head.job)?;
        let namespace = entry.request.namespace.clone();
        let (backfill, reservation) = match &head.cached {
            Some(cached) => cached.clone(),
            None => {
                let (backfill, _) = self.backfill_of(&head.backfilled, &namespace);
                let reservation = if self.policy.backfill {
                    self.cluster
                        .place(&entry.shape(), &View::Virtual(&backfill))
                        .ok()
                        .map(|placed| {
                            let mut o = Overlay::default();
                            o.add(&entry.admitted.per_worker, &placed);
                            o
                        })
                } else {
                    None
                };
                (backfill, reservation)
            }
        };
        Some(CapacityCtx {
            job: head.job.clone(),
            namespace,
            usage: entry.admitted.usage,
            backfill,
            reservation,
        })
    }

    fn quota_ctx(&self, namespace: &str) -> Option<QuotaCtx> {
        let head = self.quota_heads.get(namespace)?;
        let entry = self.jobs.get(&head.job)?;
        let (_, backfill_usage) = self.backfill_of(&head.backfilled, namespace);
        Some(QuotaCtx {
            job: head.job.clone(),
            usage: entry.admitted.usage,
            backfill_usage,
        })
    }

    /// One pass over the queue in order. See the module documentation for the policy.
    fn schedule(&mut self) -> Vec<Decision> {
        let mut out = Vec::new();
        let order: Vec<JobId> = self.queue.values().cloned().collect();
        let mut capacity: Option<CapacityCtx> = None;
        let mut quota: BTreeMap<String, QuotaCtx> = BTreeMap::new();
        let mut failed_shapes: BTreeSet<usize> = BTreeSet::new();

        for id in order {
            let Some(entry) = self.jobs.get(&id) else {
                continue;
            };
            let namespace = entry.request.namespace.clone();
            let usage = entry.admitted.usage;
            let shape_id = entry.shape;
            let ns = self.namespaces.get(&namespace);
            let used = self.usage.get(&namespace).copied().unwrap_or_default();
            let none = QuotaUsage::default();

            if let Err(exceeded) = check_quota(ns, &namespace, &used, &none, &usage) {
                if !quota.contains_key(&namespace) {
                    if self.quota_heads.get(&namespace).map(|h| &h.job) != Some(&id) {
                        self.quota_heads
                            .insert(namespace.clone(), Head::new(id.clone()));
                    }
                    if let Some(ctx) = self.quota_ctx(&namespace) {
                        quota.insert(namespace.clone(), ctx);
                    }
                }
                self.set_reason(&id, PendingReason::Quota { exceeded });
                continue;
            }

            let mut held = None;
            if let Some(q) = quota.get(&namespace) {
                held = if !self.policy.backfill {
                    Some(PendingReason::BehindHead {
                        head: q.job.clone(),
                    })
                } else {
                    check_quota(ns, &namespace, &q.backfill_usage, &q.usage, &usage)
                        .err()
                        .map(|exceeded| PendingReason::QuotaHeld {
                            head: q.job.clone(),
                            exceeded,
                            started_past_head: true,
                        })
                };
            }
            if held.is_none()
                && let Some(c) = capacity.as_ref().filter(|c| c.namespace == namespace)
                && self.policy.backfill
            {
                held = check_quota(ns, &namespace, &used, &c.usage, &usage)
                    .err()
                    .map(|exceeded| PendingReason::QuotaHeld {
                        head: c.job.clone(),
                        exceeded,
                        started_past_head: false,
                    });
            }
            if let Some(reason) = held {
                self.set_reason(&id, reason);
                continue;
            }

            if let Some(c) = &capacity
                && c.reservation.is_none()
            {
                self.set_reason(
                    &id,
                    PendingReason::BehindHead {
                        head: c.job.clone(),
                    },
                );
                continue;
            }
            let reserved_for = capacity.as_ref().map(|c| c.job.clone());
            if failed_shapes.contains(&shape_id) {
                self.set_reason(&id, PendingReason::Capacity { reserved_for });
                continue;
            }
            let Some(entry) = self.jobs.get(&id) else {
                continue;
            };
            let result = match &capacity {
                None => self.cluster.place(&entry.shape(), &View::Real),
                Some(CapacityCtx {
                    backfill,
                    reservation: Some(reservation),
                    ..
                }) => self.cluster.place(
                    &entry.shape(),
                    &View::Reserved {
                        backfill,
                        reservation,
                    },
                ),
                Some(_) => Err(0),
            };
            match result {
                Ok(placed) => {
                    let mut past = Vec::new();
                    if let Some(c) = &mut capacity {
                        c.backfill.add(&entry.admitted.per_worker, &placed);
                        past.push(c.job.clone());
                        if let Some(h) = &mut self.capacity_head {
                            h.backfilled.insert(id.clone());
                        }
                    }
                    if let Some(q) = quota.get_mut(&namespace) {
                        q.backfill_usage.add(&usage);
                        if !past.contains(&q.job) {
                            past.push(q.job.clone());
                        }
                        if let Some(h) = self.quota_heads.get_mut(&namespace) {
                            h.backfilled.insert(id.clone());
                        }
                    }
                    if let Some(placement) = self.commit(&id, placed, past) {
                        out.push(Decision::Place(placement));
                    }
                }
                Err(_) => {
                    failed_shapes.insert(shape_id);
                    if capacity.is_none() {
                        if self.capacity_head.as_ref().map(|h| &h.job) != Some(&id) {
                            self.capacity_head = Some(Head::new(id.clone()));
                        }
                        capacity = self.capacity_ctx();
                    }
                    self.set_reason(&id, PendingReason::Capacity { reserved_for });
                }
            }
        }
        match (capacity, &mut self.capacity_head) {
            (None, _) => self.capacity_head = None,
            (Some(ctx), Some(head)) => head.cached = Some((ctx.backfill, ctx.reservation)),
            (Some(_), None) => {}
        }
        self.quota_heads.retain(|ns, _| quota.contains_key(ns));
        out
    }

    /// Records a placement; returns it with ranks assigned.
    fn commit(
        &mut self,
        job: &JobId,
        placed: Vec<(NodeIdx, Vec<usize>)>,
        backfilled_past: Vec<JobId>,
    ) -> Option<Placement> {
        let entry = self.jobs.get(job)?;
        let per_worker = entry.admitted.per_worker;
        let usage = entry.admitted.usage;
        let namespace = entry.request.namespace.clone();
        let key = entry.key;

        // Workers of one node get consecutive ranks, nodes in the order first chosen.
        let mut first_seen: BTreeMap<NodeIdx, usize> = BTreeMap::new();
        for (i, (idx, _)) in placed.iter().enumerate() {
            first_seen.entry(*idx).or_insert(i);
        }
        let mut placed = placed;
        placed.sort_by_key(|(idx, _)| first_seen.get(idx).copied().unwrap_or(usize::MAX));

        let mut workers = Vec::with_capacity(placed.len());
        for (rank, (idx, devices)) in placed.iter().enumerate() {
            let node = self.cluster.node(*idx)?;
            workers.push(WorkerPlacement {
                rank: u32::try_from(rank).unwrap_or(u32::MAX),
                node: node.spec.name.clone(),
                gpus: devices
                    .iter()
                    .filter_map(|&d| node.spec.gpus.get(d).map(|g| g.id.clone()))
                    .collect(),
            });
        }
        self.cluster.commit(job, &per_worker, &placed);
        self.usage.entry(namespace).or_default().add(&usage);
        self.queue.remove(&key);
        let placement = Placement {
            job: job.clone(),
            workers,
            per_worker,
            backfilled_past,
        };
        if let Some(entry) = self.jobs.get_mut(job) {
            entry.state = EntryState::Running {
                placement: placement.clone(),
                placed,
            };
        }
        Some(placement)
    }

    /// Why `job` is queued or where it runs; `None` for an unknown job.
    pub fn explain(&self, job: &JobId) -> Option<Explanation> {
        let entry = self.jobs.get(job)?;
        let reason = match &entry.state {
            EntryState::Running { placement, .. } => {
                let workers: Vec<String> = placement
                    .workers
                    .iter()
                    .map(|w| {
                        if w.gpus.is_empty() {
                            format!("worker {} on {}", w.rank, w.node)
                        } else {
                            format!(
                                "worker {} on {} (GPUs {})",
                                w.rank,
                                w.node,
                                w.gpus.join(",")
                            )
                        }
                    })
                    .collect();
                return Some(Explanation {
                    job: job.clone(),
                    status: JobStatus::Running(placement.clone()),
                    summary: format!("running: {}", workers.join(", ")),
                    details: Vec::new(),
                });
            }
            EntryState::Queued(reason) => reason.clone(),
        };
        let position = self.queue.range(..entry.key).count();
        let mut details = Vec::new();
        let summary = match &reason {
            PendingReason::Quota { exceeded } => format!("waiting for quota: {exceeded}"),
            PendingReason::QuotaHeld { .. } => format!("waiting: {reason}"),
            PendingReason::BehindHead { head } => {
                let ctx = self.capacity_ctx().filter(|c| &c.job == head);
                if self.policy.backfill && ctx.is_some_and(|c| c.reservation.is_none()) {
                    format!(
                        "waiting behind job {head}, queued ahead: it does not fit beside the \
                         jobs that started past it, so nothing else starts until they finish"
                    )
                } else {
                    format!("waiting behind job {head}, queued ahead (backfill is off)")
                }
            }
            PendingReason::Capacity { reserved_for } => {
                let report = self.cluster.report(&entry.shape(), &View::Real);
                let room: u64 = report.fits.iter().map(|(_, k)| u64::from(*k)).sum();
                match reserved_for {
                    Some(head) if room >= u64::from(entry.request.workers) => {
                        if let Some(ctx) = self.capacity_ctx()
                            && let Some(reservation) = &ctx.reservation
                        {
                            for (idx, u) in &reservation.nodes {
                                if let Some(node) = self.cluster.node(*idx) {
                                    let ids: Vec<&str> = u
                                        .devices
                                        .iter()
                                        .filter_map(|&d| node.spec.gpus.get(d))
                                        .map(|g| g.id.as_str())
                                        .collect();
                                    let mut line = format!(
                                        "reserved for {head} on {}: {}",
                                        node.spec.name, u.res
                                    );
                                    if !ids.is_empty() {
                                        line.push_str(&format!(" (GPUs {})", ids.join(",")));
                                    }
                                    details.push(line);
                                }
                            }
                        }
                        format!(
                            "would fit now, but held back so that job {head}, queued ahead, is \
                             not delayed"
                        )
                    }
                    _ => {
                        let (summary, lines) = report.render(entry.request.workers);
                        details = lines;
                        format!("waiting for capacity: {summary}")
                    }
                }
            }
        };
        Some(Explanation {
            job: job.clone(),
            status: JobStatus::Queued { position, reason },
            summary,
            details,
        })
    }

    /// The queued jobs, first to be tried first.
    pub fn queued(&self) -> Vec<JobId> {
        self.queue.values().cloned().collect()
    }

    /// Where a running job runs.
    pub fn placement(&self, job: &JobId) -> Option<&Placement> {
        match &self.jobs.get(job)?.state {
            EntryState::Running { placement, .. } => Some(placement),
            EntryState::Queued(_) => None,
        }
    }

    /// The running jobs, by id.
    pub fn running(&self) -> Vec<&Placement> {
        self.jobs
            .values()
            .filter_map(|e| match &e.state {
                EntryState::Running { placement, .. } => Some(placement),
                EntryState::Queued(_) => None,
            })
            .collect()
    }

    /// What the running jobs of a namespace hold of its quota.
    pub fn namespace_usage(&self, namespace: &str) -> QuotaUsage {
        self.usage.get(namespace).copied().unwrap_or_default()
    }

    /// Every node and its load, by name.
    pub fn nodes(&self) -> Vec<NodeUsage> {
        self.cluster
            .iter()
            .map(|(_, n)| NodeUsage {
                name: n.spec.name.clone(),
                allocatable: n.spec.allocatable(),
                used: n.used,
                gpus: n
                    .spec
                    .gpus
                    .iter()
                    .zip(&n.owners)
                    .map(|(d, o)| (d.id.clone(), o.clone()))
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
