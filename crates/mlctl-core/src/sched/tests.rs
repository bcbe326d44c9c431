//! Table tests of the scheduler: one scenario each, readable top to bottom.

use super::*;

const GI: u64 = 1 << 30;

fn cores(n: u64) -> u64 {
    n * 1000
}

fn req(cpu_cores: u64, mem_gi: u64, gpus: u32) -> ResourceList {
    let mut r = ResourceList::new()
        .cpu_milli(cores(cpu_cores))
        .memory_bytes(mem_gi * GI);
    if gpus > 0 {
        r = r.gpus(gpus);
    }
    r
}

fn job(id: &str, ns: &str, r: ResourceList) -> JobRequest {
    JobRequest::new(id, ns, PodRequest::single(r))
}

fn sched(nodes: Vec<Node>) -> Scheduler {
    let mut s = Scheduler::new(Policy::default());
    for n in nodes {
        s.apply(Event::AddNode(n)).unwrap();
    }
    s
}

fn submit(s: &mut Scheduler, j: JobRequest) -> Vec<Decision> {
    s.apply(Event::Submit(j)).unwrap()
}

fn finish(s: &mut Scheduler, id: &str) -> Vec<Decision> {
    s.apply(Event::Finish { job: id.into() }).unwrap()
}

/// The jobs placed by these decisions, in order.
fn placed(ds: &[Decision]) -> Vec<String> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Place(p) => Some(p.job.0.clone()),
            _ => None,
        })
        .collect()
}

fn placement<'a>(ds: &'a [Decision], id: &str) -> &'a Placement {
    ds.iter()
        .find_map(|d| match d {
            Decision::Place(p) if p.job.0 == id => Some(p),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} was not placed: {ds:#?}"))
}

fn queued_reason(ds: &[Decision], id: &str) -> String {
    ds.iter()
        .find_map(|d| match d {
            Decision::Queue { job, reason } if job.0 == id => Some(reason.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} was not queued: {ds:#?}"))
}

fn rejection(ds: &[Decision], id: &str) -> String {
    ds.iter()
        .find_map(|d| match d {
            Decision::Reject { job, reason } if job.0 == id => Some(reason.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{id} was not rejected: {ds:#?}"))
}

fn gpus_of(p: &Placement) -> Vec<(String, Vec<String>)> {
    p.workers
        .iter()
        .map(|w| (w.node.clone(), w.gpus.clone()))
        .collect()
}

/// The seed's `gpu-node-1` and the `ml-training` namespace of `08-gpu-resource-quota.yaml`.
fn seed() -> Scheduler {
    let node = Node::new("gpu-node-1", cores(30), 120 * GI)
        .with_gpus(4, "nvidia-tesla-v100")
        .label("accelerator", "nvidia-tesla-v100");
    let mut s = sched(vec![node]);
    let quota = ResourceQuota {
        name: "gpu-quota".into(),
        hard: [
            (QuotaResource::RequestsGpu, 8),
            (QuotaResource::LimitsGpu, 8),
            (QuotaResource::RequestsMemory, 256 * GI),
            (QuotaResource::RequestsCpu, cores(64)),
        ]
        .into_iter()
        .collect(),
    };
    let limits = LimitRange {
        name: "gpu-limits".into(),
        container: Some(ContainerLimitRange {
            default: req(4, 8, 1),
            default_request: req(2, 4, 1),
            min: ResourceList::new(),
            max: req(32, 64, 4),
        }),
        pod: None,
    };
    s.apply(Event::SetNamespace(NamespacePolicy {
        name: "ml-training".into(),
        limit_ranges: vec![limits],
        quotas: vec![quota],
    }))
    .unwrap();
    s
}

#[test]
fn limit_range_defaults_fill_a_container_without_resources() {
    let mut s = seed();
    let ds = submit(&mut s, job("train", "ml-training", ResourceList::new()));
    let p = placement(&ds, "train");
    // defaultRequest: cpu 2, memory 4Gi, one GPU.
    assert_eq!(p.per_worker, Resources::new(cores(2), 4 * GI, 1));
    assert_eq!(gpus_of(p), vec![("gpu-node-1".into(), vec!["0".into()])]);
    let u = s.namespace_usage("ml-training");
    assert_eq!(u.get(QuotaResource::RequestsGpu), 1);
    assert_eq!(u.get(QuotaResource::LimitsCpu), cores(4));
    assert_eq!(u.get(QuotaResource::Jobs), 1);
}

#[test]
fn a_request_defaults_to_its_own_limit_before_the_limit_range_default() {
    let mut s = seed();
    let pod = PodRequest::of(vec![
        ContainerRequest::new("main", ResourceList::new())
            .with_limits(ResourceList::new().cpu_milli(cores(3))),
    ]);
    let ds = submit(&mut s, JobRequest::new("j", "ml-training", pod));
    assert_eq!(placement(&ds, "j").per_worker.cpu_milli, cores(3));
}

#[test]
fn rejections_say_which_rule_and_by_how_much() {
    let mut s = seed();
    let cases: Vec<(JobRequest, &str)> = vec![
        (
            job("too-many-gpus", "ml-training", req(4, 8, 8)),
            "limit range gpu-limits in namespace ml-training: maximum nvidia.com/gpu usage per \
             Container is 4, but limit is 8 (container main)",
        ),
        (
            JobRequest::new(
                "too-much-memory",
                "ml-training",
                PodRequest::of(vec![
                    ContainerRequest::new("main", ResourceList::new())
                        .with_limits(ResourceList::new().memory_bytes(100 * GI)),
                ]),
            ),
            "limit range gpu-limits in namespace ml-training: maximum memory usage per \
             Container is 64Gi, but limit is 100Gi (container main)",
        ),
        // Kubernetes' pitfall: the default limit (8Gi) is applied below the request.
        (
            job(
                "over-default-limit",
                "ml-training",
                ResourceList::new().memory_bytes(10 * GI),
            ),
            "job over-default-limit: container main: memory request 10Gi must be less than or \
             equal to its limit 8Gi",
        ),
        (
            job("over-quota", "ml-training", req(2, 4, 4)).workers(3),
            "quota gpu-quota in namespace ml-training: requests.nvidia.com/gpu 12 requested > \
             8 hard",
        ),
        (
            JobRequest::new(
                "gpu-mismatch",
                "default",
                PodRequest::of(vec![
                    ContainerRequest::new("main", ResourceList::new().gpus(1))
                        .with_limits(ResourceList::new().gpus(2)),
                ]),
            ),
            "job gpu-mismatch: container main: nvidia.com/gpu request 1 must equal its limit 2 \
             (GPUs are not overcommitted)",
        ),
        (
            JobRequest::new(
                "request-over-limit",
                "default",
                PodRequest::of(vec![
                    ContainerRequest::new("main", req(8, 1, 0))
                        .with_limits(ResourceList::new().cpu_milli(cores(4))),
                ]),
            ),
            "job request-over-limit: container main: cpu request 8 must be less than or equal \
             to its limit 4",
        ),
        (
            job("no-workers", "default", req(1, 1, 0)).workers(0),
            "job no-workers: workers must be at least 1",
        ),
        (
            JobRequest::new(
                "a100",
                "default",
                PodRequest::single(req(1, 1, 1)).gpu_type("nvidia-a100"),
            ),
            "cannot run even on an empty cluster: 0/1 nodes can take a worker: 1 node(s) had \
             fewer than 1 nvidia-a100 GPU(s) (gpu-node-1: 0 nvidia-a100 GPU(s), 1 needed per \
             worker)",
        ),
        (
            job("gang-too-big", "default", req(1, 1, 2)).workers(3),
            "cannot run even on an empty cluster: gang of 3 workers, room for 2 \
             (gpu-node-1: 2)",
        ),
        (
            job("huge", "default", req(31, 1, 0)),
            "cannot run even on an empty cluster: 0/1 nodes can take a worker: 1 node(s) had \
             too little allocatable cpu for one worker (gpu-node-1: 30 allocatable cpu, 31 \
             needed per worker)",
        ),
    ];
    for (j, want) in cases {
        let id = j.id.0.clone();
        assert_eq!(rejection(&submit(&mut s, j), &id), want, "{id}");
    }
    assert!(s.queued().is_empty() && s.running().is_empty());
}

#[test]
fn a_quota_that_tracks_limits_requires_them() {
    let mut s = sched(vec![Node::new("n", cores(8), 8 * GI)]);
    s.apply(Event::SetNamespace(NamespacePolicy {
        name: "team".into(),
        limit_ranges: vec![],
        quotas: vec![ResourceQuota {
            name: "compute".into(),
            hard: [(QuotaResource::LimitsCpu, cores(4))].into_iter().collect(),
        }],
    }))
    .unwrap();
    let got = rejection(&submit(&mut s, job("j", "team", req(1, 1, 0))), "j");
    assert_eq!(
        got,
        "quota compute in namespace team: must specify limits.cpu for container main"
    );
}

#[test]
fn pod_limit_range_bounds_the_sum_of_containers() {
    let mut s = sched(vec![Node::new("n", cores(8), 8 * GI)]);
    s.apply(Event::SetNamespace(NamespacePolicy {
        name: "team".into(),
        limit_ranges: vec![LimitRange {
            name: "per-pod".into(),
            container: None,
            pod: Some(PodLimitRange {
                min: ResourceList::new(),
                max: ResourceList::new().cpu_milli(cores(3)),
            }),
        }],
        quotas: vec![],
    }))
    .unwrap();
    let two = |cpu| ContainerRequest::new("c", req(cpu, 1, 0)).with_limits(req(cpu, 1, 0));
    let pod = PodRequest::of(vec![two(2), two(2)]);
    let got = rejection(&submit(&mut s, JobRequest::new("j", "team", pod)), "j");
    assert_eq!(
        got,
        "limit range per-pod in namespace team: maximum cpu usage per Pod is 3, but limit is 4"
    );
}

#[test]
fn a_job_queues_behind_the_quota_and_starts_when_it_frees() {
    let mut s = sched(vec![Node::new("n", cores(16), 64 * GI).with_gpus(4, "t4")]);
    s.apply(Event::SetNamespace(NamespacePolicy {
        name: "ml".into(),
        limit_ranges: vec![],
        quotas: vec![ResourceQuota {
            name: "gpu-quota".into(),
            hard: [(QuotaResource::RequestsGpu, 2)].into_iter().collect(),
        }],
    }))
    .unwrap();
    assert_eq!(placed(&submit(&mut s, job("a", "ml", req(1, 1, 2)))), ["a"]);
    let ds = submit(&mut s, job("b", "ml", req(1, 1, 1)));
    assert_eq!(
        queued_reason(&ds, "b"),
        "quota gpu-quota in namespace ml: requests.nvidia.com/gpu 2 used + 1 requested > 2 hard"
    );
    // Another namespace is not affected by ml's quota.
    assert_eq!(
        placed(&submit(&mut s, job("c", "other", req(1, 1, 1)))),
        ["c"]
    );
    let e = s.explain(&"b".into()).unwrap();
    assert_eq!(
        e.summary,
        "waiting for quota: quota gpu-quota in namespace ml: requests.nvidia.com/gpu 2 used + 1 \
         requested > 2 hard"
    );
    assert_eq!(placed(&finish(&mut s, "a")), ["b"]);
}

#[test]
fn higher_priority_first_then_first_come_first_served() {
    let mut s = sched(vec![Node::new("n", cores(4), 16 * GI)]);
    assert_eq!(
        placed(&submit(&mut s, job("running", "d", req(4, 1, 0)))),
        ["running"]
    );
    submit(&mut s, job("low-1", "d", req(4, 1, 0)));
    submit(&mut s, job("low-2", "d", req(4, 1, 0)));
    submit(&mut s, job("high", "d", req(4, 1, 0)).priority(10));
    assert_eq!(
        s.queued(),
        vec![JobId::from("high"), "low-1".into(), "low-2".into()]
    );
    assert_eq!(placed(&finish(&mut s, "running")), ["high"]);
    assert_eq!(placed(&finish(&mut s, "high")), ["low-1"]);
    assert_eq!(placed(&finish(&mut s, "low-1")), ["low-2"]);
}

#[test]
fn a_gang_is_placed_whole_with_consecutive_ranks_per_node() {
    let mut s = sched(vec![
        Node::new("a", cores(16), 64 * GI).with_gpus(2, "t4"),
        Node::new("b", cores(16), 64 * GI).with_gpus(2, "t4"),
    ]);
    assert_eq!(
        placed(&submit(&mut s, job("one", "d", req(1, 1, 1)))),
        ["one"]
    );
    // Three free GPUs: a gang of 2 x 2 GPUs does not fit, and nothing is half placed.
    let ds = submit(&mut s, job("gang", "d", req(1, 1, 2)).workers(2));
    assert_eq!(
        queued_reason(&ds, "gang"),
        "no room for every worker on the nodes now"
    );
    let e = s.explain(&"gang".into()).unwrap();
    assert_eq!(
        e.summary,
        "waiting for capacity: gang of 2 workers, room for 1 (b: 1): 1 node(s) had \
         insufficient nvidia.com/gpu"
    );
    assert_eq!(e.details, ["a: 1 nvidia.com/gpu free, 2 needed per worker"]);
    let ds = finish(&mut s, "one");
    let p = placement(&ds, "gang");
    assert_eq!(
        gpus_of(p),
        vec![
            ("a".into(), vec!["0".into(), "1".into()]),
            ("b".into(), vec!["0".into(), "1".into()])
        ]
    );
    assert_eq!(p.workers.iter().map(|w| w.rank).collect::<Vec<_>>(), [0, 1]);

    // Four single-GPU workers on two 2-GPU nodes: ranks 0,1 on one node, 2,3 on the other.
    finish(&mut s, "gang");
    let ds = submit(&mut s, job("ddp", "d", req(1, 1, 1)).workers(4));
    let nodes: Vec<String> = placement(&ds, "ddp")
        .workers
        .iter()
        .map(|w| w.node.clone())
        .collect();
    assert_eq!(nodes, ["a", "a", "b", "b"]);
}

#[test]
fn gpus_are_bin_packed_to_keep_large_free_sets() {
    let mut s = sched(vec![
        Node::new("big", cores(32), 128 * GI).with_gpus(8, "a100"),
        Node::new("small", cores(32), 128 * GI).with_gpus(2, "a100"),
    ]);
    // Best fit: a 2-GPU job fills the small node exactly; the 8 stay whole for a big gang.
    let ds = submit(&mut s, job("pair", "d", req(1, 1, 2)));
    assert_eq!(
        gpus_of(placement(&ds, "pair")),
        vec![("small".into(), vec!["0".into(), "1".into()])]
    );
    let ds = submit(&mut s, job("eight", "d", req(1, 1, 8)));
    assert_eq!(placement(&ds, "eight").workers[0].node, "big");
    finish(&mut s, "eight");
    finish(&mut s, "pair");

    // Within a node: with GPUs 0 and 2-3 free (1 busy), one GPU goes to the lone 0.
    let mut s = sched(vec![
        Node::new("n", cores(32), 128 * GI).with_gpus(4, "a100"),
    ]);
    submit(&mut s, job("x", "d", req(1, 1, 1))); // takes 0
    submit(&mut s, job("y", "d", req(1, 1, 1))); // takes 1
    finish(&mut s, "x"); // free: 0, 2, 3
    let ds = submit(&mut s, job("z", "d", req(1, 1, 1)));
    assert_eq!(
        gpus_of(placement(&ds, "z")),
        vec![("n".into(), vec!["0".into()])]
    );
    let ds = submit(&mut s, job("w", "d", req(1, 1, 2)));
    assert_eq!(
        gpus_of(placement(&ds, "w")),
        vec![("n".into(), vec!["2".into(), "3".into()])]
    );
}

#[test]
fn node_selectors_taints_and_gpu_models_filter_nodes() {
    let gpu_taint = Taint::new("nvidia.com/gpu", "present", TaintEffect::NoSchedule);
    let mut s = sched(vec![
        Node::new("cpu-1", cores(16), 64 * GI),
        Node::new("v100-1", cores(16), 64 * GI)
            .with_gpus(4, "nvidia-tesla-v100")
            .label("accelerator", "nvidia-tesla-v100")
            .taint(gpu_taint.clone()),
    ]);
    // Untolerated taint: CPU jobs never land on the GPU node.
    let ds = submit(&mut s, job("etl", "d", req(1, 1, 0)));
    assert_eq!(placement(&ds, "etl").workers[0].node, "cpu-1");
    // A GPU job without the toleration cannot run anywhere: rejected, with the reason.
    let got = rejection(&submit(&mut s, job("no-tol", "d", req(1, 1, 1))), "no-tol");
    assert_eq!(
        got,
        "cannot run even on an empty cluster: 0/2 nodes can take a worker: 1 node(s) had too \
         little allocatable nvidia.com/gpu for one worker, 1 node(s) had untolerated taint \
         {nvidia.com/gpu=present:NoSchedule} (cpu-1: 0 allocatable nvidia.com/gpu, 1 needed per \
         worker; v100-1: taint nvidia.com/gpu=present:NoSchedule not tolerated)"
    );
    let pod = PodRequest::single(req(1, 1, 1))
        .select("accelerator", "nvidia-tesla-v100")
        .tolerate(Toleration::exists("nvidia.com/gpu"))
        .gpu_type("nvidia-tesla-v100");
    let ds = submit(&mut s, JobRequest::new("train", "d", pod));
    assert_eq!(placement(&ds, "train").workers[0].node, "v100-1");
    // A CPU job that tolerates the taint still prefers the node without GPUs.
    let pod = PodRequest::single(req(1, 1, 0)).tolerate(Toleration::exists("nvidia.com/gpu"));
    let ds = submit(&mut s, JobRequest::new("etl-2", "d", pod));
    assert_eq!(placement(&ds, "etl-2").workers[0].node, "cpu-1");
    // A selector no node matches.
    let pod = PodRequest::single(req(1, 1, 0)).select("accelerator", "nvidia-a100");
    let got = rejection(&submit(&mut s, JobRequest::new("a100", "d", pod)), "a100");
    assert!(
        got.contains("2 node(s) didn't match node selector accelerator=nvidia-a100"),
        "{got}"
    );
}

#[test]
fn prefer_no_schedule_taints_are_avoided_not_forbidden() {
    let soft = Taint::new("spot", "", TaintEffect::PreferNoSchedule);
    let mut s = sched(vec![
        Node::new("a-spot", cores(4), 8 * GI).taint(soft),
        Node::new("b-ondemand", cores(4), 8 * GI),
    ]);
    let ds = submit(&mut s, job("one", "d", req(1, 1, 0)));
    assert_eq!(placement(&ds, "one").workers[0].node, "b-ondemand");
    let ds = submit(&mut s, job("big", "d", req(4, 1, 0)));
    assert_eq!(placement(&ds, "big").workers[0].node, "a-spot");
}

#[test]
fn small_jobs_cannot_overtake_a_blocked_big_job_forever() {
    let mut s = sched(vec![
        Node::new("n", cores(16), 64 * GI).with_gpus(4, "a100"),
    ]);
    assert_eq!(placed(&submit(&mut s, job("a", "d", req(2, 4, 2)))), ["a"]);
    let ds = submit(&mut s, job("head", "d", req(4, 8, 4)));
    assert_eq!(
        queued_reason(&ds, "head"),
        "no room for every worker on the nodes now"
    );
    // One GPU is free, but taking it would delay `head`: held back.
    let ds = submit(&mut s, job("small", "d", req(1, 1, 1)));
    assert_eq!(
        queued_reason(&ds, "small"),
        "no room for every worker on the nodes now, outside the reservation of job head queued \
         ahead"
    );
    let e = s.explain(&"small".into()).unwrap();
    assert_eq!(
        e.summary,
        "would fit now, but held back so that job head, queued ahead, is not delayed"
    );
    assert_eq!(
        e.details,
        ["reserved for head on n: cpu 4, memory 8Gi, nvidia.com/gpu 4 (GPUs 0,1,2,3)"]
    );
    // A CPU-only job cannot delay it: it backfills.
    let ds = submit(&mut s, job("cpu", "d", req(2, 2, 0)));
    assert_eq!(
        placement(&ds, "cpu").backfilled_past,
        vec![JobId::from("head")]
    );
    // When `a` finishes, the head starts although the backfilled job still runs.
    assert_eq!(placed(&finish(&mut s, "a")), ["head"]);
    assert_eq!(placed(&finish(&mut s, "head")), ["small"]);
}

#[test]
fn without_backfill_nothing_passes_a_blocked_head() {
    let mut s = Scheduler::new(Policy { backfill: false });
    s.apply(Event::AddNode(
        Node::new("n", cores(16), 64 * GI).with_gpus(4, "a100"),
    ))
    .unwrap();
    submit(&mut s, job("a", "d", req(2, 4, 2)));
    submit(&mut s, job("head", "d", req(4, 8, 4)));
    let ds = submit(&mut s, job("cpu", "d", req(1, 1, 0)));
    assert_eq!(
        queued_reason(&ds, "cpu"),
        "waiting behind job head, queued ahead"
    );
    assert_eq!(
        s.explain(&"cpu".into()).unwrap().summary,
        "waiting behind job head, queued ahead (backfill is off)"
    );
    assert_eq!(placed(&finish(&mut s, "a")), ["head", "cpu"]);
}

#[test]
fn a_quota_blocked_job_keeps_its_share_against_later_jobs_of_its_namespace() {
    let mut s = sched(vec![Node::new("n", cores(32), 64 * GI)]);
    s.apply(Event::SetNamespace(NamespacePolicy {
        name: "ml".into(),
        limit_ranges: vec![],
        quotas: vec![ResourceQuota {
            name: "cpu".into(),
            hard: [(QuotaResource::RequestsCpu, cores(8))]
                .into_iter()
                .collect(),
        }],
    }))
    .unwrap();
    submit(&mut s, job("a", "ml", req(4, 1, 0)));
    let ds = submit(&mut s, job("head", "ml", req(6, 1, 0)));
    assert_eq!(
        queued_reason(&ds, "head"),
        "quota cpu in namespace ml: requests.cpu 4 used + 6 requested > 8 hard"
    );
    // 4 used + 3 fits the quota now, but 6 for the head + 3 would not: held.
    let ds = submit(&mut s, job("b", "ml", req(3, 1, 0)));
    assert_eq!(
        queued_reason(&ds, "b"),
        "held so that job head, queued ahead, is not delayed: quota cpu in namespace ml: \
         requests.cpu 0 used + 6 reserved + 3 requested > 8 hard (used: jobs that started past \
         it)"
    );
    // 2 fits beside the head: it starts.
    let ds = submit(&mut s, job("c", "ml", req(2, 1, 0)));
    assert_eq!(
        placement(&ds, "c").backfilled_past,
        vec![JobId::from("head")]
    );
    assert_eq!(placed(&finish(&mut s, "a")), ["head"]);
}

#[test]
fn removing_a_node_evicts_its_jobs_and_rejects_what_can_no_longer_fit() {
    let mut s = sched(vec![
        Node::new("a", cores(8), 8 * GI).with_gpus(2, "t4"),
        Node::new("b", cores(8), 8 * GI).with_gpus(2, "t4"),
    ]);
    submit(&mut s, job("gang", "d", req(1, 1, 2)).workers(2));
    let ds = submit(&mut s, job("waits", "d", req(1, 1, 2)).workers(2));
    assert_eq!(
        queued_reason(&ds, "waits"),
        "no room for every worker on the nodes now"
    );
    let ds = s.apply(Event::RemoveNode { node: "b".into() }).unwrap();
    assert_eq!(
        ds[0],
        Decision::Evict {
            job: "gang".into(),
            node: "b".into()
        }
    );
    assert!(rejection(&ds, "waits").starts_with("cannot run even on an empty cluster"));
    assert!(s.running().is_empty());
    let a = &s.nodes()[0];
    assert_eq!((a.name.as_str(), a.used), ("a", Resources::ZERO));
}

#[test]
fn lowering_a_quota_rejects_queued_jobs_that_can_never_fit_it() {
    let mut s = sched(vec![Node::new("n", cores(4), 8 * GI)]);
    submit(&mut s, job("a", "ml", req(4, 1, 0)));
    submit(&mut s, job("b", "ml", req(4, 1, 0)));
    let ds = s
        .apply(Event::SetNamespace(NamespacePolicy {
            name: "ml".into(),
            limit_ranges: vec![],
            quotas: vec![ResourceQuota {
                name: "q".into(),
                hard: [(QuotaResource::RequestsCpu, cores(2))]
                    .into_iter()
                    .collect(),
            }],
        }))
        .unwrap();
    assert_eq!(
        rejection(&ds, "b"),
        "quota q in namespace ml: requests.cpu 4 requested > 2 hard"
    );
    // The running job is not stopped.
    assert!(s.placement(&"a".into()).is_some());
}

#[test]
fn misuse_is_an_error_not_a_decision() {
    let mut s = sched(vec![Node::new("n", cores(4), 8 * GI)]);
    submit(&mut s, job("a", "d", req(4, 1, 0)));
    submit(&mut s, job("b", "d", req(4, 1, 0)));
    let err = |s: &mut Scheduler, e| s.apply(e).unwrap_err().to_string();
    assert_eq!(
        err(&mut s, Event::Submit(job("a", "d", req(1, 1, 0)))),
        "failed to submit job a: a job with this id is queued or running"
    );
    assert_eq!(
        err(&mut s, Event::Finish { job: "b".into() }),
        "failed to finish job b: it is queued, not running (cancel it instead)"
    );
    assert_eq!(
        err(&mut s, Event::Cancel { job: "zz".into() }),
        "failed to cancel job zz: no such job is queued or running"
    );
    assert_eq!(
        err(&mut s, Event::AddNode(Node::new("n", 1, 1))),
        "failed to add node n: a node with this name exists"
    );
    let mut twice = Node::new("m", 1, 1).with_gpus(2, "t4");
    twice.gpus[1].id = "0".into();
    assert_eq!(
        err(&mut s, Event::AddNode(twice)),
        "failed to add node m: GPU device id \"0\" is listed twice"
    );
    assert_eq!(
        err(&mut s, Event::RemoveNode { node: "zz".into() }),
        "failed to remove node zz: no such node"
    );
    // Cancelling a queued job forgets it; cancelling a running one frees its resources.
    assert_eq!(s.apply(Event::Cancel { job: "b".into() }).unwrap(), vec![]);
    assert!(s.explain(&"b".into()).is_none());
    s.apply(Event::Cancel { job: "a".into() }).unwrap();
    assert_eq!(s.nodes()[0].used, Resources::ZERO);
}

#[test]
fn decisions_and_explanations_serialize_for_the_store_and_json_output() {
    let mut s = sched(vec![Node::new("n", cores(4), 8 * GI).with_gpus(1, "t4")]);
    let ds = submit(&mut s, job("a", "d", req(1, 1, 1)));
    let json = serde_json::to_string(&ds).unwrap();
    assert_eq!(
        json,
        r#"[{"decision":"place","job":"a","workers":[{"rank":0,"node":"n","gpus":["0"]}],"perWorker":{"cpuMilli":1000,"memoryBytes":1073741824,"gpus":1}}]"#
    );
    let ds = submit(&mut s, job("b", "d", req(1, 1, 1)));
    let json = serde_json::to_value(&ds).unwrap();
    assert_eq!(json[0]["reason"]["kind"], "capacity");
    let event: Event = serde_json::from_str(r#"{"event":"finish","job":"a"}"#).unwrap();
    assert_eq!(event, Event::Finish { job: "a".into() });
}

#[test]
fn a_stream_of_small_jobs_does_not_starve_a_big_one() {
    let mut s = sched(vec![Node::new("n", cores(4), 16 * GI)]);
    let mut started: Vec<String> = placed(&submit(&mut s, job("a", "d", req(2, 1, 0))));
    submit(&mut s, job("big", "d", req(4, 1, 0)));
    for step in 0..20 {
        for k in 0..3 {
            let tiny = ResourceList::new().cpu_milli(500).memory_bytes(GI);
            started.extend(placed(&submit(
                &mut s,
                job(&format!("f{step}-{k}"), "d", tiny),
            )));
        }
        let oldest = started.remove(0);
        started.extend(placed(&finish(&mut s, &oldest)));
        if started.iter().any(|j| j == "big") {
            // `a` was the only job running when `big` started waiting; tiny jobs backfill
            // beside it only where they cannot delay it, i.e. nowhere.
            assert_eq!(oldest, "a");
            return;
        }
    }
    panic!("big never started; running: {started:?}");
}
