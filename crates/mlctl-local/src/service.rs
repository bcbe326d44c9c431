//! InferenceServices on this machine: replicas of the model server (mlctl's own `serve-model`
//! for ONNX models, or the user's server command), each a job of the run on its own loopback
//! port, behind a load balancer on the service port.
//!
//! - **Probes**: each replica is probed over HTTP (readiness and liveness paths, as a
//!   Deployment's probes); only ready replicas get traffic, and a replica failing its liveness
//!   probe `failureThreshold` times in a row is restarted (its retry policy starts it again).
//! - **Autoscaling**: every interval the load balancer's counters (requests per second and
//!   requests in flight per replica) and the replicas' CPU and memory use (their process
//!   groups, from `/proc`) feed the HPA algorithm of `mlctl-core` (the same function `plan`
//!   uses); its decisions are events (`ScaledUp`, `ScaledDown`).
//! - **Graceful drain**: a replica that is removed stops receiving new requests, its requests in
//!   flight complete, then it gets SIGTERM (the model server drains too).
//! - **Canary**: a second model version, one replica, receives `canary.weight` percent of the
//!   requests.
//! - **Model updates**: a pipeline's deploy step replaces the model: new replicas start with it,
//!   and the old ones are drained once the new ones are ready.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mlctl_core::autoscale::{self, HpaSpec, HpaState, Measurement, Observation, PodSample};
use mlctl_core::sched::NamespacePolicy;
use mlctl_core::spec::common::{Retries, RetryPolicy};
use mlctl_core::spec::serving::{InferenceServiceSpec, Model, ModelFormat, Probe};
use mlctl_core::workload;
use tokio::sync::mpsc;

use crate::controller::{
    self, BuildError, Command, Controller, JobResult, Note, RunContext, RunPhase,
};
use crate::lb::{Backend, Balancer, Group};
use crate::process;
use crate::task::{PORT_TOKEN, TaskSpec};

/// The default HTTP port of a service (Kubernetes' convention for model servers).
pub const DEFAULT_PORT: u16 = 8080;

/// How often the autoscaler decides, in seconds (the HPA controller's default sync period).
pub const DEFAULT_AUTOSCALE_INTERVAL: f64 = 15.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Startup,
    Readiness,
    Liveness,
}

struct ProbeResult {
    job: String,
    kind: ProbeKind,
    ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Submitted; its process has not started yet.
    Starting,
    /// Its process runs.
    Running,
    /// Being removed: no new requests, waiting for in-flight ones.
    Draining,
    /// Being restarted (it failed its liveness probe): no new requests, waiting for in-flight
    /// ones, then stopped and started again. It still counts as a replica.
    Restarting,
    /// Asked to stop.
    Stopping,
}

struct Replica {
    id: u64,
    group: Group,
    /// The model it serves (for rolling updates).
    model: String,
    state: State,
    port: Option<u16>,
    pgid: Option<u32>,
    ready: bool,
    ready_failures: u32,
    live_failures: u32,
    probes: Option<tokio::task::AbortHandle>,
    /// CPU time of its process group at the last autoscaler pass (clock ticks).
    cpu_ticks: Option<u64>,
    /// Why it is being restarted, once drained.
    restart: Option<String>,
}

/// One probe of the replicas, as a container probe: an HTTP GET of `path` (a TCP connect
/// without one) every `period`, counted as failed after `failure_threshold` failures in a row.
#[derive(Debug, Clone)]
struct ProbeSpec {
    kind: ProbeKind,
    path: Option<String>,
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    failure_threshold: u32,
}

impl ProbeSpec {
    /// From the spec's probe (defaults as Kubernetes', but a 1s period: a local replica is
    /// expected to be ready in about a second).
    fn new(kind: ProbeKind, probe: Option<&Probe>, default_path: Option<&str>) -> Self {
        let or =
            |d: Option<mlctl_core::scalar::Duration>, default: Duration| d.map_or(default, |d| d.0);
        ProbeSpec {
            kind,
            path: probe
                .and_then(|p| p.path.clone())
                .or_else(|| default_path.map(str::to_string)),
            initial_delay: or(probe.and_then(|p| p.initial_delay), Duration::ZERO),
            period: or(probe.and_then(|p| p.period), Duration::from_secs(1)),
            timeout: or(probe.and_then(|p| p.timeout), Duration::from_secs(1)),
            failure_threshold: probe.and_then(|p| p.failure_threshold).unwrap_or(3).max(1),
        }
    }

    async fn check(&self, port: u16) -> bool {
        match &self.path {
            Some(path) => http_ok(port, path, self.timeout).await,
            None => tokio::time::timeout(
                self.timeout,
                tokio::net::TcpStream::connect(("127.0.0.1", port)),
            )
            .await
            .is_ok_and(|c| c.is_ok()),
        }
    }
}

/// The probes of a service's replicas: the startup probe (if any) first, then readiness and
/// liveness. mlctl's model server has them by default (`/v2/health/ready`,
/// `/v2/health/live`); a custom server gets a TCP readiness probe unless it declares its own.
fn probe_specs(spec: &InferenceServiceSpec, builtin: bool) -> (Option<ProbeSpec>, Vec<ProbeSpec>) {
    let probes = spec.probes.clone().unwrap_or_default();
    let startup = probes.startup.as_ref().map(|p| {
        ProbeSpec::new(
            ProbeKind::Startup,
            Some(p),
            builtin.then_some("/v2/health/ready"),
        )
    });
    let mut rest = vec![ProbeSpec::new(
        ProbeKind::Readiness,
        probes.readiness.as_ref(),
        builtin.then_some("/v2/health/ready"),
    )];
    if probes.liveness.is_some() || builtin {
        rest.push(ProbeSpec::new(
            ProbeKind::Liveness,
            probes.liveness.as_ref(),
            builtin.then_some("/v2/health/live"),
        ));
    }
    (startup, rest)
}

/// The controller of an InferenceService run.
pub struct Service {
    name: String,
    spec: InferenceServiceSpec,
    ctx_task: TaskSpec,
    model: String,
    canary_model: Option<String>,
    balancer: Balancer,
    replicas: BTreeMap<String, Replica>,
    next: u64,
    to_start: Vec<TaskSpec>,
    commands: Vec<Command>,
    notes: Vec<Note>,
    probes_tx: mpsc::UnboundedSender<ProbeResult>,
    probes_rx: mpsc::UnboundedReceiver<ProbeResult>,
    drained_tx: mpsc::UnboundedSender<String>,
    drained_rx: mpsc::UnboundedReceiver<String>,
    startup_probe: Option<ProbeSpec>,
    probes: Vec<ProbeSpec>,
    hpa: Option<HpaSpec>,
    hpa_state: HpaState,
    desired: u32,
    interval: Duration,
    origin: Instant,
    last_scale: Instant,
    last_requests: BTreeMap<u64, u64>,
    namespaces: Vec<NamespacePolicy>,
    done: Option<(RunPhase, String)>,
    exe: Option<PathBuf>,
}

/// The state of a service, as stored for `mlctl get services` and deploy steps.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// Where clients send requests (the load balancer).
    pub url: String,
    /// The model the service serves (or is rolling out).
    pub model: String,
    /// Ready replicas serving `model`.
    pub ready: u32,
    /// The replicas the autoscaler wants.
    pub desired: u32,
    /// Replicas of the main group, whatever their model or state.
    pub replicas: u32,
    /// The canary, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
}

/// The canary of a service.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// Its model.
    pub model: String,
    /// The percentage of requests it gets.
    pub weight: f64,
    /// Whether its replica is ready.
    pub ready: bool,
}

/// Where a model is on this machine: a path next to the spec, or `pvc://CLAIM/PATH` on a
/// claim volume.
fn local_model(ctx: &RunContext<'_>, model: &Model) -> Result<String, BuildError> {
    let uri = &model.uri;
    if let Some(rest) = uri.strip_prefix("pvc://") {
        let (claim, path) = rest.split_once('/').unwrap_or((rest, ""));
        return Ok(ctx.home.volume(claim).join(path).display().to_string());
    }
    if uri.contains("://") {
        return Err(BuildError(format!(
            "model {uri} is remote: on this machine an InferenceService serves a file (a path next to the spec, or pvc://CLAIM/PATH)"
        )));
    }
    Ok(ctx.spec_dir.join(uri).display().to_string())
}

impl Service {
    /// The controller of an InferenceService, serving on its port (default 8080) the model
    /// of the run's options (a deploy step's) or of its spec.
    pub fn new(ctx: &RunContext<'_>, spec: &InferenceServiceSpec) -> Result<Self, BuildError> {
        let name = ctx.object.name().to_string();
        let builtin = spec.server.is_none();
        let autoscale_interval = Duration::from_secs_f64(
            ctx.options
                .autoscale_interval
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(DEFAULT_AUTOSCALE_INTERVAL),
        );
        let model = match (&spec.model, &ctx.options.model) {
            (_, Some(m)) => m.clone(),
            (Some(m), None) if m.format == ModelFormat::Onnx || !builtin => local_model(ctx, m)?,
            (Some(m), None) => {
                return Err(BuildError(format!(
                    "format {} is served by its own server on Kubernetes; on this machine mlctl serves ONNX models (convert the model, or give a custom `server`)",
                    m.format
                )));
            }
            (None, None) => String::new(),
        };
        let canary_model = spec
            .canary
            .as_ref()
            .map(|c| local_model(ctx, &c.model))
            .transpose()?;
        let port = spec.port.unwrap_or(DEFAULT_PORT);
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            BuildError(format!(
                "cannot listen on 127.0.0.1:{port} for InferenceService {name}: {e} (set spec.port)"
            ))
        })?;
        let balancer = Balancer::from_std(listener)
            .map_err(|e| BuildError(format!("cannot start the load balancer: {e}")))?;
        if let Some(c) = &spec.canary {
            balancer.set_canary_weight(c.weight.0);
        }
        let params = workload::Params::new();
        let pod = workload::pod(
            &spec.resources,
            &spec.node_selector,
            &spec.tolerations,
            &params,
        )
        .map_err(BuildError)?;
        let mut env = Vec::new();
        for (k, v) in &spec.env {
            env.push((k.clone(), v.0.clone()));
        }
        let ctx_task = TaskSpec {
            job: String::new(),
            workers: 1,
            distributed: false,
            master_port: None,
            pod,
            namespace: ctx.object.namespace().to_string(),
            priority: workload::priority(spec.priority_class.as_deref(), ctx.spec.platforms()),
            // like a Deployment: a replica that exits is started again, with a growing wait
            retries: Some(Retries {
                limit: u32::MAX,
                policy: RetryPolicy::Always,
                backoff: Some(mlctl_core::spec::common::Backoff {
                    duration: mlctl_core::scalar::Duration(Duration::from_secs(1)),
                    factor: Some(2.0),
                    max_duration: Some(mlctl_core::scalar::Duration(Duration::from_secs(300))),
                }),
            }),
            deadline: None,
            argv: Vec::new(),
            env,
            spec_dir: ctx.spec_dir.to_path_buf(),
            working_dir: None,
            volumes: Vec::new(),
            outputs: Vec::new(),
            cache_key: None,
            python: Vec::new(),
            sidecars: Vec::new(),
            port: true,
        };
        let (startup_probe, probes) = probe_specs(spec, builtin);
        let (probes_tx, probes_rx) = mpsc::unbounded_channel();
        let (drained_tx, drained_rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        let mut service = Self {
            name,
            spec: spec.clone(),
            ctx_task,
            model,
            canary_model,
            balancer,
            replicas: BTreeMap::new(),
            next: 0,
            to_start: Vec::new(),
            commands: Vec::new(),
            notes: Vec::new(),
            probes_tx,
            probes_rx,
            drained_tx,
            drained_rx,
            startup_probe,
            probes,
            hpa: workload::hpa_spec(spec),
            hpa_state: HpaState::default(),
            desired: spec.replicas.min.max(1),
            interval: autoscale_interval,
            origin: now,
            last_scale: now,
            last_requests: BTreeMap::new(),
            namespaces: controller::namespace_policies(ctx.spec),
            done: None,
            exe: ctx.exe.map(Path::to_path_buf),
        };
        for _ in 0..service.desired {
            service.add_replica(Group::Stable);
        }
        if service.canary_model.is_some() {
            service.add_replica(Group::Canary);
        }
        Ok(service)
    }

    /// The address clients use.
    pub fn url(&self) -> String {
        format!("http://{}", self.balancer.local_addr())
    }

    fn argv(&self, model: &str) -> Vec<String> {
        match &self.spec.server {
            Some(server) => server.run.iter().map(|a| a.0.clone()).collect(),
            None => {
                let exe = self
                    .exe
                    .as_ref()
                    .map_or_else(|| "mlctl".to_string(), |e| e.display().to_string());
                let model_name = self
                    .spec
                    .model
                    .as_ref()
                    .and_then(|m| m.name.clone())
                    .unwrap_or_else(|| self.name.clone());
                let mut argv = vec![
                    exe,
                    "serve-model".into(),
                    "--model".into(),
                    model.to_string(),
                    "--name".into(),
                    model_name,
                    "--port".into(),
                    PORT_TOKEN.into(),
                ];
                if let Some(b) = &self.spec.batching {
                    argv.extend([
                        "--max-batch-size".into(),
                        b.max_batch_size.to_string(),
                        "--max-batch-delay".into(),
                        b.max_delay.to_string(),
                    ]);
                }
                if let Some(c) = self.spec.max_concurrency {
                    argv.extend(["--max-concurrency".into(), c.to_string()]);
                }
                argv
            }
        }
    }

    fn add_replica(&mut self, group: Group) -> String {
        self.next += 1;
        let id = self.next;
        let job = match group {
            Group::Stable => format!("replica-{id}"),
            Group::Canary => format!("canary-{id}"),
        };
        let model = match group {
            Group::Stable => self.model.clone(),
            Group::Canary => self.canary_model.clone().unwrap_or_default(),
        };
        let mut task = self.ctx_task.clone();
        task.job = job.clone();
        task.argv = self.argv(&model);
        task.env.push(("MLCTL_SERVICE".into(), self.name.clone()));
        if !model.is_empty() {
            // a custom server finds the model a deploy step gave it here
            task.env.push(("MLCTL_MODEL".into(), model.clone()));
        }
        self.to_start.push(task);
        self.replicas.insert(
            job.clone(),
            Replica {
                id,
                group,
                model,
                state: State::Starting,
                port: None,
                pgid: None,
                ready: false,
                ready_failures: 0,
                live_failures: 0,
                probes: None,
                cpu_ticks: None,
                restart: None,
            },
        );
        self.commands.push(Command::Ready);
        job
    }

    fn routable(&self) {
        let backends = self
            .replicas
            .values()
            .filter_map(|r| {
                Some(Backend {
                    id: r.id,
                    addr: std::net::SocketAddr::from(([127, 0, 0, 1], r.port?)),
                    group: r.group,
                    ready: r.ready && r.state == State::Running,
                })
            })
            .collect();
        self.balancer.set_backends(backends);
    }

    /// Takes a replica out of service: drain, then stop.
    fn remove(&mut self, job: &str) {
        self.drain(job, State::Draining, Duration::from_secs(30));
    }

    /// Takes a replica out of the balancer, then (in `tick`) stops or restarts it.
    fn drain(&mut self, job: &str, state: State, timeout: Duration) {
        let Some(r) = self.replicas.get_mut(job) else {
            return;
        };
        if !matches!(r.state, State::Starting | State::Running) {
            return;
        }
        r.state = state;
        let drain = self.balancer.drain(r.id, timeout);
        let (tx, job) = (self.drained_tx.clone(), job.to_string());
        tokio::spawn(async move {
            drain.await;
            let _ = tx.send(job);
        });
        self.routable();
    }

    fn stable(&self) -> impl Iterator<Item = (&String, &Replica)> {
        self.replicas.iter().filter(|(_, r)| {
            r.group == Group::Stable
                && matches!(
                    r.state,
                    State::Starting | State::Running | State::Restarting
                )
        })
    }

    /// One autoscaler pass.
    fn autoscale(&mut self) {
        let Some(hpa) = self.hpa.clone() else {
            return;
        };
        let elapsed = self.last_scale.elapsed().as_secs_f64().max(1e-3);
        self.last_scale = Instant::now();
        let stats: BTreeMap<u64, crate::lb::BackendStats> = self
            .balancer
            .stats()
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let ticks_per_sec = process::ticks_per_second() as f64;
        let requests =
            workload::container("main", &self.spec.resources, &workload::Params::new()).ok();
        let cpu_request = requests.as_ref().and_then(|c| c.requests.cpu_milli);
        let mem_request = requests.as_ref().and_then(|c| c.requests.memory_bytes);
        let current = u32::try_from(self.stable().count()).unwrap_or(u32::MAX);
        let mut samples: Vec<Vec<PodSample>> = vec![Vec::new(); hpa.metrics.len()];
        let jobs: Vec<String> = self.stable().map(|(j, _)| j.clone()).collect();
        for job in jobs {
            let Some(r) = self.replicas.get_mut(&job) else {
                continue;
            };
            let s = stats.get(&r.id);
            let requests_now = s.map_or(0, |s| s.requests);
            let before = self.last_requests.insert(r.id, requests_now);
            let rps_milli =
                before.map(|b| ((requests_now.saturating_sub(b)) as f64 / elapsed * 1000.0) as i64);
            let in_flight_milli = s.map(|s| i64::try_from(s.in_flight).unwrap_or(i64::MAX) * 1000);
            let ticks = r.pgid.map(process::group_cpu_ticks);
            let cpu_milli = match (ticks, r.cpu_ticks) {
                (Some(now), Some(before)) => Some(
                    (now.saturating_sub(before) as f64 / ticks_per_sec / elapsed * 1000.0) as i64,
                ),
                _ => None,
            };
            r.cpu_ticks = ticks;
            let rss = r
                .pgid
                .map(process::group_rss_bytes)
                .map(|b| i64::try_from(b).unwrap_or(i64::MAX));
            for (m, spec) in hpa.metrics.iter().enumerate() {
                let (value, request) = match &spec.source {
                    autoscale::MetricSource::Resource { name } if name == "cpu" => {
                        (cpu_milli, cpu_request.map(|c| c as i64))
                    }
                    autoscale::MetricSource::Resource { name } if name == "memory" => {
                        (rss.map(|b| b * 1000), mem_request.map(|m| m as i64 * 1000))
                    }
                    autoscale::MetricSource::Pods { name } if name == "requests_per_second" => {
                        (rps_milli, None)
                    }
                    autoscale::MetricSource::Pods { name } if name == "concurrency" => {
                        (in_flight_milli, None)
                    }
                    _ => (None, None),
                };
                samples[m].push(PodSample {
                    pod: job.clone(),
                    ready: r.ready,
                    value,
                    request,
                });
            }
        }
        let measurements: Vec<Measurement> = samples.into_iter().map(Measurement::PerPod).collect();
        let ready = u32::try_from(self.stable().filter(|(_, r)| r.ready).count()).unwrap_or(0);
        let obs = Observation {
            current_replicas: current,
            ready_pods: ready,
            measurements: &measurements,
            now: self.origin.elapsed(),
        };
        let Ok((rec, state)) = autoscale::recommend(&hpa, &obs, &self.hpa_state) else {
            return;
        };
        self.hpa_state = state;
        if !rec.rescale() {
            return;
        }
        let (from, to) = (rec.current_replicas, rec.desired_replicas);
        self.desired = to;
        let reason = if to > from { "ScaledUp" } else { "ScaledDown" };
        self.notes.push(Note {
            job: String::new(),
            phase: None,
            reason,
            message: rec.message(),
            warning: false,
        });
        self.reconcile();
    }

    /// Starts or removes stable replicas until their number is the desired one (newest, and
    /// not-ready ones, go first).
    fn reconcile(&mut self) {
        let current = self.stable().count();
        let desired = self.desired as usize;
        if current < desired {
            for _ in current..desired {
                self.add_replica(Group::Stable);
            }
        } else if current > desired {
            let mut victims: Vec<(bool, u64, String)> = self
                .stable()
                .map(|(j, r)| (r.ready, r.id, j.clone()))
                .collect();
            // not ready first, then newest
            victims.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            for (_, _, job) in victims.into_iter().take(current - desired) {
                self.remove(&job);
            }
        }
    }

    /// Serves `model` from now on: new replicas start with it; the old ones are removed once
    /// as many new ones are ready.
    pub fn update_model(&mut self, model: String) {
        if model == self.model {
            return;
        }
        self.model = model.clone();
        self.notes.push(Note {
            job: String::new(),
            phase: None,
            reason: "Updating",
            message: format!("rolling out model {model}"),
            warning: false,
        });
        for _ in 0..self.desired {
            self.add_replica(Group::Stable);
        }
    }

    /// Removes replicas of an older model once the new model has enough ready replicas.
    fn retire_old(&mut self) {
        let ready_new = self
            .stable()
            .filter(|(_, r)| r.model == self.model && r.ready)
            .count();
        if ready_new < self.desired as usize {
            return;
        }
        let old: Vec<String> = self
            .stable()
            .filter(|(_, r)| r.model != self.model)
            .map(|(j, _)| j.clone())
            .collect();
        for job in old {
            self.remove(&job);
        }
    }

    fn start_probes(&mut self, job: &str, port: u16) {
        let (startup, probes) = (self.startup_probe.clone(), self.probes.clone());
        let (tx, job_name) = (self.probes_tx.clone(), job.to_string());
        let send = move |kind, ok| {
            tx.send(ProbeResult {
                job: job_name.clone(),
                kind,
                ok,
            })
            .is_ok()
        };
        let handle = tokio::spawn(async move {
            if let Some(p) = startup {
                tokio::time::sleep(p.initial_delay).await;
                loop {
                    let ok = p.check(port).await;
                    if !send(ProbeKind::Startup, ok) {
                        return;
                    }
                    if ok {
                        break;
                    }
                    tokio::time::sleep(p.period).await;
                }
            }
            // readiness and liveness, each on its own schedule
            let start = tokio::time::Instant::now();
            let mut next: Vec<_> = probes.iter().map(|p| start + p.initial_delay).collect();
            loop {
                let Some((i, at)) = next.iter().copied().enumerate().min_by_key(|(_, at)| *at)
                else {
                    return;
                };
                tokio::time::sleep_until(at).await;
                let ok = probes[i].check(port).await;
                if !send(probes[i].kind, ok) {
                    return;
                }
                next[i] = tokio::time::Instant::now() + probes[i].period;
            }
        });
        if let Some(r) = self.replicas.get_mut(job) {
            r.probes = Some(handle.abort_handle());
        }
    }

    fn threshold(&self, kind: ProbeKind) -> u32 {
        self.startup_probe
            .iter()
            .chain(&self.probes)
            .find(|p| p.kind == kind)
            .map_or(3, |p| p.failure_threshold)
    }

    fn on_probe(&mut self, p: ProbeResult) {
        let threshold = self.threshold(p.kind);
        let Some(r) = self.replicas.get_mut(&p.job) else {
            return;
        };
        match (p.kind, p.ok) {
            (ProbeKind::Readiness, true) => {
                r.ready_failures = 0;
                if !r.ready {
                    r.ready = true;
                    let message = format!("ready on port {}", r.port.unwrap_or(0));
                    self.notes.push(Note {
                        job: p.job.clone(),
                        phase: None,
                        reason: "Ready",
                        message,
                        warning: false,
                    });
                    self.routable();
                    self.retire_old();
                }
            }
            (ProbeKind::Readiness, false) => {
                r.ready_failures += 1;
                if r.ready && r.ready_failures >= threshold {
                    r.ready = false;
                    self.notes.push(Note {
                        job: p.job.clone(),
                        phase: None,
                        reason: "NotReady",
                        message: "failed its readiness probe: no traffic until it passes".into(),
                        warning: true,
                    });
                    self.routable();
                }
            }
            (ProbeKind::Liveness | ProbeKind::Startup, true) => r.live_failures = 0,
            (kind @ (ProbeKind::Liveness | ProbeKind::Startup), false) => {
                r.live_failures += 1;
                if r.live_failures >= threshold && r.state == State::Running {
                    r.live_failures = 0;
                    r.ready = false;
                    let probe = if kind == ProbeKind::Startup {
                        "startup"
                    } else {
                        "liveness"
                    };
                    r.restart = Some(format!(
                        "failed its {probe} probe {threshold} times in a row: restarting"
                    ));
                    // requests in flight get their answers first
                    self.drain(&p.job, State::Restarting, Duration::from_secs(10));
                }
            }
        }
    }
}

/// Whether `GET path` on the loopback port answers with a 2xx status within `timeout`.
///
/// The answer is read to its end, up to 10 KiB as the kubelet does: closing a socket with
/// unread data resets the connection, and the server would see its write of the body fail
/// (Python's http.server prints a traceback to the replica's log for each one).
async fn http_ok(port: u16, path: &str, timeout: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nUser-Agent: mlctl-probe\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::with_capacity(512);
        (&mut stream)
            .take(10 * 1024)
            .read_to_end(&mut answer)
            .await
            .ok()?;
        let line = answer.split(|&b| b == b'\n').next()?;
        let code: u16 = std::str::from_utf8(line)
            .ok()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        Some((200..300).contains(&code))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

impl Controller for Service {
    fn ready(&mut self) -> Vec<TaskSpec> {
        std::mem::take(&mut self.to_start)
    }

    fn finished(&mut self, job: &str, result: &JobResult) {
        if let Some(p) = self.replicas.remove(job).and_then(|r| r.probes) {
            p.abort();
        }
        self.routable();
        if let JobResult::Failed { message } = result {
            self.notes.push(Note {
                job: job.to_string(),
                phase: None,
                reason: "ReplicaFailed",
                message: message.clone(),
                warning: true,
            });
        }
        if self.done.is_none() && !matches!(result, JobResult::Cancelled) {
            // a replica that ended by itself is replaced, as a Deployment does
            self.reconcile();
        }
    }

    fn outcome(&self) -> Option<(RunPhase, String)> {
        self.done.clone()
    }

    fn namespaces(&self) -> Vec<NamespacePolicy> {
        self.namespaces.clone()
    }

    fn take_notes(&mut self) -> Vec<Note> {
        std::mem::take(&mut self.notes)
    }

    fn attempt_started(&mut self, job: &str, port: Option<u16>, pids: &[u32]) {
        let Some(port) = port else { return };
        if let Some(r) = self.replicas.get_mut(job) {
            // a new backend for the balancer (the old id may be drained)
            self.next += 1;
            r.id = self.next;
            r.port = Some(port);
            r.pgid = pids.first().copied();
            r.state = State::Running;
            r.ready = false;
            r.cpu_ticks = None;
        }
        self.start_probes(job, port);
        self.routable();
    }

    fn attempt_ended(&mut self, job: &str) {
        if let Some(r) = self.replicas.get_mut(job) {
            if let Some(p) = r.probes.take() {
                p.abort();
            }
            r.ready = false;
            r.port = None;
            r.pgid = None;
            if matches!(r.state, State::Running | State::Restarting) {
                r.state = State::Starting; // its retry starts it again
            }
        }
        self.routable();
    }

    fn tick(&mut self) -> Vec<Command> {
        while let Ok(p) = self.probes_rx.try_recv() {
            self.on_probe(p);
        }
        while let Ok(job) = self.drained_rx.try_recv() {
            let Some(r) = self.replicas.get_mut(&job) else {
                continue;
            };
            match (r.state, r.restart.take()) {
                (State::Restarting, Some(reason)) => {
                    self.commands.push(Command::Restart { job, reason });
                }
                (State::Draining, _) => {
                    r.state = State::Stopping;
                    self.commands.push(Command::Stop { job });
                }
                _ => {}
            }
        }
        if self.last_scale.elapsed() >= self.interval {
            self.autoscale();
        }
        std::mem::take(&mut self.commands)
    }

    fn summary(&self) -> Option<String> {
        let ready = self.stable().filter(|(_, r)| r.ready).count();
        let mut text = format!("{} · {ready}/{} ready", self.url(), self.desired);
        if let Some(c) = &self.spec.canary {
            let canary_ready = self
                .replicas
                .values()
                .filter(|r| r.group == Group::Canary && r.ready)
                .count();
            text.push_str(&format!(" · canary {}% ({canary_ready} ready)", c.weight.0));
        }
        text.push_str(&format!(" · model {}", self.model));
        Some(text)
    }

    fn service(&self) -> Option<ServiceStatus> {
        let count = |f: &dyn Fn(&Replica) -> bool| {
            u32::try_from(self.stable().filter(|(_, r)| f(r)).count()).unwrap_or(u32::MAX)
        };
        Some(ServiceStatus {
            url: self.url(),
            model: self.model.clone(),
            ready: count(&|r| r.ready && r.model == self.model),
            desired: self.desired,
            replicas: count(&|_| true),
            canary: self.spec.canary.as_ref().map(|c| CanaryStatus {
                model: self.canary_model.clone().unwrap_or_default(),
                weight: c.weight.0,
                ready: self
                    .replicas
                    .values()
                    .any(|r| r.group == Group::Canary && r.ready),
            }),
        })
    }

    fn update_model(&mut self, model: String) {
        Service::update_model(self, model);
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
