//! Property tests of the scheduler. A checker independent of the scheduler replays every
//! decision and verifies: no node resource or GPU device is ever over-committed, a gang is
//! placed whole, filters are respected, quotas are never exceeded, rejections are exactly
//! the jobs that can never run, every job that fits an empty cluster eventually runs even
//! while small jobs keep arriving, and the same events always give the same decisions.

use std::collections::{BTreeMap, BTreeSet};

use mlctl_core::sched::{
    Decision, Event, JobId, JobRequest, NamespacePolicy, Node, Placement, PodRequest, Policy,
    QuotaResource, Rejection, ResourceList, ResourceQuota, Scheduler, Taint, TaintEffect,
    Toleration,
};
use proptest::prelude::*;

const GI: u64 = 1 << 30;

#[derive(Debug, Clone)]
struct JobSpec {
    half_cores: u64,
    mem_gi: u64,
    gpus: u32,
    workers: u32,
    priority: i32,
    ns: usize,
    pool: Option<usize>,
    tolerate: bool,
    model: Option<usize>,
}

impl JobSpec {
    fn request(&self, id: &str) -> JobRequest {
        let mut r = ResourceList::new()
            .cpu_milli(self.half_cores * 500)
            .memory_bytes(self.mem_gi * GI);
        if self.gpus > 0 {
            r = r.gpus(self.gpus);
        }
        let mut pod = PodRequest::single(r);
        if let Some(p) = self.pool {
            pod = pod.select("pool", format!("p{p}"));
        }
        if self.tolerate {
            pod = pod.tolerate(Toleration::exists("dedicated"));
        }
        if let Some(m) = self.model {
            pod = pod.gpu_type(format!("m{m}"));
        }
        JobRequest::new(id, format!("n{}", self.ns), pod)
            .priority(self.priority)
            .workers(self.workers)
    }
}

fn job_spec() -> impl Strategy<Value = JobSpec> {
    (
        1u64..=12,
        1u64..=16,
        prop_oneof![3 => Just(0u32), 2 => 1u32..=2, 1 => 3u32..=4],
        prop_oneof![3 => Just(1u32), 1 => 2u32..=3],
        0i32..=2,
        0usize..3,
        prop::option::weighted(0.2, 0usize..2),
        prop::bool::weighted(0.3),
        prop::option::weighted(0.2, 0usize..2),
    )
        .prop_map(
            |(half_cores, mem_gi, gpus, workers, priority, ns, pool, tolerate, model)| JobSpec {
                half_cores,
                mem_gi,
                gpus,
                workers,
                priority,
                ns,
                pool,
                tolerate,
                model,
            },
        )
}

fn node(name: String) -> impl Strategy<Value = Node> {
    (
        2u64..=16,
        4u64..=64,
        0u32..=8,
        0usize..2,
        prop::option::weighted(0.5, 0usize..2),
        prop::bool::weighted(0.2),
    )
        .prop_map(move |(cores, mem, gpus, model, pool, tainted)| {
            let mut n = Node::new(name.clone(), cores * 1000, mem * GI)
                .with_gpus(gpus, format!("m{model}"));
            if let Some(p) = pool {
                n = n.label("pool", format!("p{p}"));
            }
            if tainted {
                n = n.taint(Taint::new("dedicated", "ml", TaintEffect::NoSchedule));
            }
            n
        })
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    (1usize..=4).prop_flat_map(|k| {
        (0..k)
            .map(|i| node(format!("node-{i}")))
            .collect::<Vec<_>>()
    })
}

fn namespaces() -> impl Strategy<Value = Vec<NamespacePolicy>> {
    (4u64..=40, 0u64..=8, 1u64..=8, 8u64..=64).prop_map(|(cpu, gpu, pods, mem)| {
        vec![
            NamespacePolicy {
                name: "n0".into(),
                limit_ranges: vec![],
                quotas: vec![ResourceQuota {
                    name: "compute".into(),
                    hard: [
                        (QuotaResource::RequestsCpu, cpu * 500),
                        (QuotaResource::RequestsGpu, gpu),
                        (QuotaResource::Pods, pods),
                    ]
                    .into_iter()
                    .collect(),
                }],
            },
            NamespacePolicy {
                name: "n1".into(),
                limit_ranges: vec![],
                quotas: vec![ResourceQuota {
                    name: "memory".into(),
                    hard: [
                        (QuotaResource::RequestsMemory, mem * GI),
                        (QuotaResource::Jobs, 3),
                    ]
                    .into_iter()
                    .collect(),
                }],
            },
        ]
    })
}

#[derive(Debug, Clone)]
enum Op {
    Submit(JobSpec),
    FinishOldest,
    FinishNth(usize),
    CancelNth(usize),
    RemoveNode(usize),
    AddNode(Node),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            6 => job_spec().prop_map(Op::Submit),
            3 => Just(Op::FinishOldest),
            2 => any::<usize>().prop_map(Op::FinishNth),
            1 => any::<usize>().prop_map(Op::CancelNth),
            1 => any::<usize>().prop_map(Op::RemoveNode),
            1 => node("late".into()).prop_map(Op::AddNode),
        ],
        1..60,
    )
}

/// The checker: what should hold, computed from the inputs and the decisions alone.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<String, Node>,
    namespaces: BTreeMap<String, NamespacePolicy>,
    submitted: BTreeMap<JobId, JobRequest>,
    queued: BTreeSet<JobId>,
    running: BTreeMap<JobId, Placement>,
    started: Vec<JobId>,
    added: usize,
}

impl Model {
    /// Workers of `job` that `node` can hold when empty.
    fn capacity(node: &Node, job: &JobRequest) -> u64 {
        let pod = &job.pod;
        if pod
            .node_selector
            .iter()
            .any(|(k, v)| node.labels.get(k) != Some(v))
        {
            return 0;
        }
        let tolerated = node
            .taints
            .iter()
            .all(|t| pod.tolerations.iter().any(|tol| tol.tolerates(t)));
        if !tolerated {
            return 0;
        }
        let r = pod.containers[0].requests;
        let gpus = node
            .gpus
            .iter()
            .filter(|d| pod.gpu_type.as_ref().is_none_or(|m| &d.model == m))
            .count() as u64;
        let mut k = u64::MAX;
        for (free, need) in [
            (node.allocatable_cpu_milli, r.cpu_milli.unwrap_or(0)),
            (node.allocatable_memory_bytes, r.memory_bytes.unwrap_or(0)),
            (gpus, u64::from(r.gpus.unwrap_or(0))),
        ] {
            if let Some(fit) = free.checked_div(need) {
                k = k.min(fit);
            }
        }
        k
    }

    fn fits_empty(&self, job: &JobRequest) -> bool {
        let total: u64 = self.nodes.values().map(|n| Self::capacity(n, job)).sum();
        total >= u64::from(job.workers)
    }

    fn usage(job: &JobRequest, r: QuotaResource) -> u64 {
        let req = job.pod.containers[0].requests;
        let w = u64::from(job.workers);
        match r {
            QuotaResource::RequestsCpu => req.cpu_milli.unwrap_or(0) * w,
            QuotaResource::RequestsMemory => req.memory_bytes.unwrap_or(0) * w,
            QuotaResource::RequestsGpu | QuotaResource::LimitsGpu => {
                u64::from(req.gpus.unwrap_or(0)) * w
            }
            QuotaResource::Pods => w,
            QuotaResource::Jobs => 1,
            QuotaResource::LimitsCpu | QuotaResource::LimitsMemory => 0,
        }
    }

    fn within_hard(&self, job: &JobRequest) -> bool {
        self.namespaces.get(&job.namespace).is_none_or(|ns| {
            ns.quotas
                .iter()
                .all(|q| q.hard.iter().all(|(r, hard)| Self::usage(job, *r) <= *hard))
        })
    }

    fn release(&mut self, job: &JobId) {
        self.running.remove(job);
        self.queued.remove(job);
        self.started.retain(|j| j != job);
    }

    /// Applies an event and its decisions, checking each decision.
    fn apply(&mut self, s: &mut Scheduler, event: Event) -> Vec<Decision> {
        match &event {
            Event::Submit(j) => {
                self.submitted.insert(j.id.clone(), j.clone());
                self.queued.insert(j.id.clone());
            }
            Event::Finish { job } | Event::Cancel { job } => self.release(job),
            Event::AddNode(n) => {
                self.nodes.insert(n.name.clone(), n.clone());
            }
            Event::RemoveNode { node } => {
                self.nodes.remove(node);
            }
            Event::SetNamespace(ns) => {
                self.namespaces.insert(ns.name.clone(), ns.clone());
            }
        }
        let ds = s.apply(event).expect("the driver only sends valid events");
        for d in &ds {
            match d {
                Decision::Place(p) => {
                    assert!(
                        self.queued.remove(&p.job),
                        "{} placed but not queued",
                        p.job
                    );
                    let job = &self.submitted[&p.job];
                    assert_eq!(
                        p.workers.len(),
                        job.workers as usize,
                        "gang {} placed partly",
                        p.job
                    );
                    for w in &p.workers {
                        let node = &self.nodes[&w.node];
                        assert!(
                            Self::capacity(node, job) > 0,
                            "{} on unfit node {}",
                            p.job,
                            w.node
                        );
                        assert_eq!(w.gpus.len() as u32, p.per_worker.gpus);
                        for g in &w.gpus {
                            let dev = node
                                .gpus
                                .iter()
                                .find(|d| &d.id == g)
                                .expect("device exists");
                            if let Some(m) = &job.pod.gpu_type {
                                assert_eq!(&dev.model, m);
                            }
                        }
                    }
                    self.running.insert(p.job.clone(), p.clone());
                    self.started.push(p.job.clone());
                }
                Decision::Queue { job, .. } => assert!(self.queued.contains(job)),
                Decision::Reject { job, reason } => {
                    let j = &self.submitted[job];
                    match reason {
                        Rejection::Unschedulable { .. } => {
                            assert!(!self.fits_empty(j), "{job} rejected but fits: {reason}")
                        }
                        Rejection::QuotaHard { .. } => {
                            assert!(!self.within_hard(j), "{job} rejected but within quota")
                        }
                        other => panic!("unexpected rejection of {job}: {other}"),
                    }
                    self.queued.remove(job);
                }
                Decision::Evict { job, .. } => {
                    assert!(self.running.contains_key(job));
                    self.release(job);
                }
            }
        }
        // A queued job is one that fits an empty cluster and its quota on its own.
        for job in &self.queued {
            let j = &self.submitted[job];
            assert!(
                self.fits_empty(j) && self.within_hard(j),
                "{job} queued but can never run"
            );
        }
        self.check_invariants(s);
        ds
    }

    fn check_invariants(&self, s: &Scheduler) {
        // Node resources and devices.
        let mut used: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut devices: BTreeSet<(&str, &str)> = BTreeSet::new();
        for p in self.running.values() {
            for w in &p.workers {
                let u = used.entry(w.node.as_str()).or_default();
                u.0 += p.per_worker.cpu_milli;
                u.1 += p.per_worker.memory_bytes;
                for g in &w.gpus {
                    assert!(
                        devices.insert((&w.node, g)),
                        "GPU {g} of {} given twice",
                        w.node
                    );
                }
            }
        }
        for (name, (cpu, mem)) in &used {
            let n = &self.nodes[*name];
            assert!(
                *cpu <= n.allocatable_cpu_milli,
                "cpu over-committed on {name}"
            );
            assert!(
                *mem <= n.allocatable_memory_bytes,
                "memory over-committed on {name}"
            );
        }
        // The scheduler's own view agrees with the checker's.
        for n in s.nodes() {
            let (cpu, mem) = used.get(n.name.as_str()).copied().unwrap_or_default();
            assert_eq!(
                (n.used.cpu_milli, n.used.memory_bytes),
                (cpu, mem),
                "{}",
                n.name
            );
        }
        // Quotas.
        for ns in self.namespaces.values() {
            for q in &ns.quotas {
                for (r, hard) in &q.hard {
                    let sum: u64 = self
                        .running
                        .keys()
                        .map(|j| &self.submitted[j])
                        .filter(|j| j.namespace == ns.name)
                        .map(|j| Self::usage(j, *r))
                        .sum();
                    assert!(sum <= *hard, "quota {} {r}: {sum} > {hard}", q.name);
                }
            }
        }
    }

    fn setup(&mut self, s: &mut Scheduler, nodes: &[Node], namespaces: &[NamespacePolicy]) {
        for n in nodes {
            self.apply(s, Event::AddNode(n.clone()));
        }
        for ns in namespaces {
            self.apply(s, Event::SetNamespace(ns.clone()));
        }
    }

    /// The event for an operation, or `None` when it does not apply now.
    fn event(&mut self, op: &Op, seq: usize) -> Option<Event> {
        Some(match op {
            Op::Submit(spec) => Event::Submit(spec.request(&format!("j{seq}"))),
            Op::FinishOldest => Event::Finish {
                job: self.started.first()?.clone(),
            },
            Op::FinishNth(i) => {
                let ids: Vec<&JobId> = self.running.keys().collect();
                Event::Finish {
                    job: (*ids.get(i % ids.len().max(1))?).clone(),
                }
            }
            Op::CancelNth(i) => {
                let ids: Vec<JobId> = self
                    .queued
                    .iter()
                    .chain(self.running.keys())
                    .cloned()
                    .collect();
                Event::Cancel {
                    job: ids.get(i % ids.len().max(1))?.clone(),
                }
            }
            Op::RemoveNode(i) => {
                let names: Vec<&String> = self.nodes.keys().collect();
                Event::RemoveNode {
                    node: (*names.get(i % names.len().max(1))?).clone(),
                }
            }
            Op::AddNode(n) => {
                self.added += 1;
                let mut n = n.clone();
                n.name = format!("late-{}", self.added);
                Event::AddNode(n)
            }
        })
    }
}

fn run(
    policy: Policy,
    nodes: &[Node],
    namespaces: &[NamespacePolicy],
    ops: &[Op],
) -> Vec<Decision> {
    let mut s = Scheduler::new(policy);
    let mut m = Model::default();
    m.setup(&mut s, nodes, namespaces);
    let mut all = Vec::new();
    for (seq, op) in ops.iter().enumerate() {
        if let Some(e) = m.event(op, seq) {
            all.extend(m.apply(&mut s, e));
        }
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over-commit, gang, filter, quota and rejection checks after every event.
    #[test]
    fn never_overcommits_gangs_are_whole_quota_holds(
        nodes in nodes(),
        namespaces in namespaces(),
        ops in ops(),
        backfill in any::<bool>(),
    ) {
        run(Policy { backfill }, &nodes, &namespaces, &ops);
    }

    /// The same events give the same decisions.
    #[test]
    fn decisions_are_deterministic(nodes in nodes(), namespaces in namespaces(), ops in ops()) {
        let a = run(Policy::default(), &nodes, &namespaces, &ops);
        let b = run(Policy::default(), &nodes, &namespaces, &ops);
        prop_assert_eq!(a, b);
    }

    /// Every job that fits an empty cluster and its quota runs, even while small jobs keep
    /// arriving behind it, provided running jobs keep finishing (oldest first). A scheduler
    /// that let small jobs take every freed resource would fail this.
    #[test]
    fn no_starvation(
        nodes in nodes(),
        namespaces in namespaces(),
        first in prop::collection::vec(job_spec(), 1..10),
        fillers in prop::collection::vec(job_spec(), 1..20),
    ) {
        starvation_scenario(&nodes, &namespaces, &first, &fillers)?;
    }
}

fn starvation_scenario(
    nodes: &[Node],
    namespaces: &[NamespacePolicy],
    first: &[JobSpec],
    fillers: &[JobSpec],
) -> Result<(), TestCaseError> {
    let mut s = Scheduler::new(Policy::default());
    let mut m = Model::default();
    m.setup(&mut s, nodes, namespaces);
    let mut waiting: BTreeSet<JobId> = BTreeSet::new();
    for (i, spec) in first.iter().enumerate() {
        let job = spec.request(&format!("first-{i}"));
        let id = job.id.clone();
        m.apply(&mut s, Event::Submit(job));
        if m.queued.contains(&id) {
            waiting.insert(id);
        }
    }
    let mut step = 0;
    while !waiting.is_empty() {
        waiting.retain(|j| m.queued.contains(j));
        prop_assert!(step < 500, "still waiting after {step} steps: {waiting:?}");
        // Fillers come behind every first job (lower priority) and keep coming: tiny
        // clones of waiting jobs (same namespace, selector, toleration and GPU model)
        // that plug every hole a finished job leaves.
        let targets: Vec<usize> = waiting
            .iter()
            .filter_map(|j| j.0.strip_prefix("first-")?.parse().ok())
            .collect();
        for k in 0..4 {
            if m.queued.len() >= 40 {
                break;
            }
            let mut spec = if targets.is_empty() {
                fillers[step % fillers.len()].clone()
            } else {
                let mut tiny = first[targets[(step + k) % targets.len()]].clone();
                tiny.half_cores = 1;
                tiny.mem_gi = 1;
                tiny.gpus = tiny.gpus.min(1);
                tiny.workers = 1;
                tiny
            };
            spec.priority = -1;
            m.apply(
                &mut s,
                Event::Submit(spec.request(&format!("filler-{step}-{k}"))),
            );
        }
        let Some(oldest) = m.started.first().cloned() else {
            prop_assert!(
                waiting.iter().all(|j| !m.queued.contains(j)),
                "nothing runs, yet {waiting:?} wait"
            );
            break;
        };
        m.apply(&mut s, Event::Finish { job: oldest });
        step += 1;
    }
    Ok(())
}
