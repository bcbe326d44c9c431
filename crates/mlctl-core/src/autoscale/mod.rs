//! The Kubernetes HorizontalPodAutoscaler (`autoscaling/v2`) algorithm as one pure function.
//!
//! [`recommend`] takes the autoscaler's spec, what was measured, the time and the previous
//! [`HpaState`], and returns a [`Recommendation`] (the new replica count and why) with the
//! next state. It reads no clock and keeps nothing between calls: the local autoscaler calls
//! it every sync period (15 s upstream) with fresh measurements; `plan` calls it over a
//! simulated load. It follows the upstream controller (`replica_calculator.go`,
//! `horizontal.go`) step by step:
//!
//! 1. **Guards.** Target at 0 replicas while `min > 0`: autoscaling is disabled (the
//!    documented "maintenance mode"). Above `max` or below `min`: go straight to the bound.
//! 2. **Per metric**, `desired = ceil(current × metric / target)` with a tolerance (0.1,
//!    per direction with `behavior.scale{Up,Down}.tolerance`), where the ratio is formed as
//!    upstream does, in integer milli-units:
//!    - `Resource` + `Utilization`: utilization = Σ usage × 100 / Σ requests (integer %) over
//!      ready pods with a sample; every pod needs a request;
//!    - `Resource` + `AverageValue`, `Pods` + `AverageValue`: average = Σ usage / n;
//!    - `Object`/`External` + `Value`: ratio = value / target, times the ready pods;
//!    - `Object`/`External` + `AverageValue`: `ceil(value / target)` unless within tolerance.
//!
//!    Pods without a sample (missing) and pods that are not ready are set aside; if any are,
//!    the ratio is recomputed conservatively: missing pods count as using 100 % of the
//!    target (of the request for utilization, or the target if above 100 %) on a scale-down
//!    and 0 % on a scale-up; not-ready pods count as 0 % on a scale-up and are ignored on a
//!    scale-down. If that recomputation lands within tolerance or reverses the direction,
//!    the metric proposes the current count.
//! 3. **Across metrics**, the largest proposal wins. If every metric failed, or some failed
//!    and the others propose a scale-down, nothing changes.
//! 4. **Stabilization**: every proposal is recorded with its time. The result is the current
//!    count, raised to the lowest proposal of the scale-up window and lowered to the highest
//!    proposal of the scale-down window (so a scale-down never goes below what was wanted
//!    within the window). A new autoscaler starts with the current count as a proposal.
//! 5. **Rate policies**: `Pods`/`Percent` policies bound the change against the count at the
//!    start of each policy's period (current − added + removed within the period, from the
//!    scale-event history); `selectPolicy` `Max` (default) takes the most permissive policy,
//!    `Min` the strictest, `Disabled` forbids that direction. Percent scale-ups round up,
//!    scale-downs round down, as upstream (same float arithmetic). Then `[min, max]`.
//! 6. A change is recorded as a scale event for the policies of later calls.
//!
//! Without `behavior`, the documented defaults apply: scale-up no stabilization,
//! `max(100 %, 4 pods)` per 15 s; scale-down a 300 s window, 100 % per 15 s. (The upstream
//! controller's legacy path for an absent `behavior` allows `max(2 × current, 4)` per sync
//! without a history; with the default 15 s sync this is the same limit.)
//!
//! The caller is expected to apply the recommendation: the returned state records the change
//! as done. Pods that are deleted or failed must not be passed in (upstream discards them);
//! a pod is "not ready" when it is starting or failing its readiness probe.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a memory utilization target is a pitfall, as the spec's validation (`autoscale-memory`)
/// and `mlctl check` (`hpa-memory`) both say it.
pub const MEMORY_TARGET_PITFALL: &str = "scales on memory: model servers and Python/JVM runtimes keep memory after load drops (caches, allocator arenas), so the HPA scales up and then rarely scales down";

/// What to do instead of scaling on memory.
pub const MEMORY_TARGET_HINT: &str =
    "scale on CPU, requests per second or queue length, and keep memory as a limit";

/// The default tolerance (`--horizontal-pod-autoscaler-tolerance`).
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// The default scale-down stabilization window (`--horizontal-pod-autoscaler-downscale-stabilization`).
pub const DEFAULT_SCALE_DOWN_WINDOW_SECONDS: u32 = 300;
/// The largest policy period the API accepts.
pub const MAX_PERIOD_SECONDS: u32 = 1800;
/// The largest stabilization window the API accepts.
pub const MAX_STABILIZATION_WINDOW_SECONDS: u32 = 3600;

/// An autoscaler: bounds, metrics and behaviour (`HorizontalPodAutoscalerSpec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaSpec {
    /// The fewest replicas (0 only with an `Object` or `External` metric, as upstream's
    /// `HPAScaleToZero`).
    pub min_replicas: u32,
    /// The most replicas.
    pub max_replicas: u32,
    /// What to scale on; the largest proposal wins.
    pub metrics: Vec<MetricSpec>,
    /// Stabilization and rate policies; `None` takes the defaults.
    #[serde(default)]
    pub behavior: Option<Behavior>,
}

/// One metric and its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    /// Where the measurement comes from.
    pub source: MetricSource,
    /// What it should be.
    pub target: MetricTarget,
}

/// Where a metric comes from (`type:` of a `MetricSpec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum MetricSource {
    /// A resource of every pod (`cpu`, `memory`): per-pod samples and requests.
    Resource {
        /// The resource.
        name: String,
    },
    /// A custom per-pod metric (`requests_per_second`): per-pod samples.
    Pods {
        /// The metric.
        name: String,
    },
    /// One value describing an object (`Ingress/main` requests per second).
    Object {
        /// The metric.
        name: String,
        /// The object (`Kind/name`).
        object: String,
    },
    /// One value from outside the cluster (a queue length).
    External {
        /// The metric.
        name: String,
    },
}

impl MetricSource {
    /// How upstream names the metric in events (`cpu resource utilization (percentage of
    /// request)`, `pods metric requests_per_second`).
    pub fn describe(&self, target: &MetricTarget) -> String {
        match (self, target) {
            (MetricSource::Resource { name }, MetricTarget::Utilization(_)) => {
                format!("{name} resource utilization (percentage of request)")
            }
            (MetricSource::Resource { name }, _) => format!("{name} resource"),
            (MetricSource::Pods { name }, _) => format!("pods metric {name}"),
            (MetricSource::Object { name, object }, _) => {
                format!("{name} metric on {object}")
            }
            (MetricSource::External { name }, _) => format!("external metric {name}"),
        }
    }
}

/// A metric's target. Values are in thousandths of the metric's unit (Kubernetes'
/// `MilliValue()`): a target of 100 requests per second is `AverageValue(100_000)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricTarget {
    /// Percent of the pods' request (`Resource` only).
    Utilization(u32),
    /// Per pod, in milli-units (`Resource`, `Pods`, `Object`, `External`).
    AverageValue(i64),
    /// In total, in milli-units (`Object`, `External`).
    Value(i64),
}

impl fmt::Display for MetricTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricTarget::Utilization(p) => write!(f, "{p}%"),
            MetricTarget::AverageValue(v) => write!(f, "{} per pod", milli(*v)),
            MetricTarget::Value(v) => write!(f, "{}", milli(*v)),
        }
    }
}

/// A milli-value written as a Kubernetes quantity (`1500m`, `2`).
fn milli(v: i64) -> String {
    crate::quantity::Quantity::from_milli(i128::from(v)).to_string()
}

/// `behavior`: rules per direction.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    /// Scaling up; absent fields take the defaults.
    #[serde(default)]
    pub scale_up: Option<ScalingRules>,
    /// Scaling down; absent fields take the defaults.
    #[serde(default)]
    pub scale_down: Option<ScalingRules>,
}

/// `HPAScalingRules`; every field is optional and defaults as upstream.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRules {
    /// Seconds of past proposals to consider (0..=3600).
    #[serde(default)]
    pub stabilization_window_seconds: Option<u32>,
    /// Which policy applies when several do.
    #[serde(default)]
    pub select_policy: Option<SelectPolicy>,
    /// Rate limits.
    #[serde(default)]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// Ratio distance from 1.0 under which nothing changes (default 0.1).
    #[serde(default)]
    pub tolerance: Option<f64>,
}

/// `selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// A rate policy: at most `value` pods, or `value` percent, per `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingPolicy {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// The amount (> 0).
    pub value: u32,
    /// The period (1..=1800 seconds).
    pub period_seconds: u32,
}

impl ScalingPolicy {
    /// `value` pods per `period_seconds`.
    pub fn pods(value: u32, period_seconds: u32) -> Self {
        Self {
            kind: PolicyKind::Pods,
            value,
            period_seconds,
        }
    }

    /// `value` percent per `period_seconds`.
    pub fn percent(value: u32, period_seconds: u32) -> Self {
        Self {
            kind: PolicyKind::Percent,
            value,
            period_seconds,
        }
    }
}

impl fmt::Display for ScalingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PolicyKind::Pods => write!(f, "{} pods per {}s", self.value, self.period_seconds),
            PolicyKind::Percent => write!(f, "{}% per {}s", self.value, self.period_seconds),
        }
    }
}

/// The unit of a [`ScalingPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyKind {
    /// A number of pods.
    Pods,
    /// A percentage of the count at the start of the period.
    Percent,
}

/// Rules with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedRules {
    /// Stabilization window.
    pub window_seconds: u32,
    /// Policy selection.
    pub select: SelectPolicy,
    /// Rate policies.
    pub policies: Vec<ScalingPolicy>,
    /// Tolerance.
    pub tolerance: f64,
}

impl Behavior {
    /// Scale-up rules with upstream's defaults (no window, `Max` of 4 pods and 100 % per
    /// 15 s).
    pub fn scale_up_rules(behavior: Option<&Behavior>) -> ResolvedRules {
        resolve(
            behavior.and_then(|b| b.scale_up.as_ref()),
            0,
            vec![ScalingPolicy::pods(4, 15), ScalingPolicy::percent(100, 15)],
        )
    }

    /// Scale-down rules with upstream's defaults (300 s window, 100 % per 15 s).
    pub fn scale_down_rules(behavior: Option<&Behavior>) -> ResolvedRules {
        resolve(
            behavior.and_then(|b| b.scale_down.as_ref()),
            DEFAULT_SCALE_DOWN_WINDOW_SECONDS,
            vec![ScalingPolicy::percent(100, 15)],
        )
    }
}

fn resolve(
    rules: Option<&ScalingRules>,
    window: u32,
    policies: Vec<ScalingPolicy>,
) -> ResolvedRules {
    ResolvedRules {
        window_seconds: rules
            .and_then(|r| r.stabilization_window_seconds)
            .unwrap_or(window),
        select: rules
            .and_then(|r| r.select_policy)
            .unwrap_or(SelectPolicy::Max),
        policies: rules.and_then(|r| r.policies.clone()).unwrap_or(policies),
        tolerance: rules.and_then(|r| r.tolerance).unwrap_or(DEFAULT_TOLERANCE),
    }
}

/// One pod's sample of a per-pod metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSample {
    /// The pod (for messages).
    pub pod: String,
    /// `false` sets the pod aside (counted as 0 % on a scale-up, ignored on a scale-down).
    /// Upstream sets aside pending pods, and for CPU also pods not yet ready after start.
    pub ready: bool,
    /// The measurement in milli-units; `None` when the pod has none (missing).
    pub value: Option<i64>,
    /// The pod's request of the resource in milli-units (`Resource` metrics only).
    #[serde(default)]
    pub request: Option<i64>,
}

impl PodSample {
    /// A ready pod with a sample.
    pub fn ready(pod: impl Into<String>, value: i64) -> Self {
        Self {
            pod: pod.into(),
            ready: true,
            value: Some(value),
            request: None,
        }
    }

    /// This sample with a request.
    pub fn with_request(mut self, request: i64) -> Self {
        self.request = Some(request);
        self
    }
}

/// What was measured for one metric, in the order of [`HpaSpec::metrics`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Measurement {
    /// Per-pod samples (`Resource`, `Pods`): one per pod of the target that is not being
    /// deleted and has not failed.
    PerPod(Vec<PodSample>),
    /// One value (`Object`, `External`), in milli-units.
    Total(i64),
    /// The metric could not be read.
    Unavailable(String),
}

/// What [`recommend`] needs besides the spec and the state.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The target's replica count now (`spec.replicas` of the scaled object).
    pub current_replicas: u32,
    /// Pods that are running and ready (used by `Object`/`External` `Value` targets).
    pub ready_pods: u32,
    /// One measurement per metric of the spec.
    pub measurements: &'a [Measurement],
    /// The time, from any fixed origin (the same for the whole history).
    pub now: Duration,
}

/// A time-stamped replica count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timed {
    /// When.
    pub at: Duration,
    /// The count (a recommendation, or pods added or removed).
    pub replicas: u32,
}

/// The autoscaler's memory between calls: recommendation and scale-event history.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaState {
    /// Whether the initial recommendation (the count at the first call) was recorded.
    pub started: bool,
    /// Unstabilized proposals within the longer stabilization window.
    pub recommendations: Vec<Timed>,
    /// Pods added per scale-up, within the longest scale-up policy period.
    pub scale_ups: Vec<Timed>,
    /// Pods removed per scale-down, within the longest scale-down policy period.
    pub scale_downs: Vec<Timed>,
}

/// What one metric proposed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricProposal {
    /// Upstream's name of the metric.
    pub metric: String,
    /// The measured value as compared with the target (`140%`, `120 per pod`), if any.
    pub current: Option<String>,
    /// The target.
    pub target: String,
    /// The proposed replica count, or why there is none.
    pub replicas: Result<u32, String>,
}

/// Why the count is what it is, before limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ScaleReason {
    /// The target has 0 replicas and `min > 0`: autoscaling is off until someone scales it.
    ScalingDisabled,
    /// The count is above `max`.
    AboveMax,
    /// The count is below `min`.
    BelowMin,
    /// No usable proposal (all metrics failed, or some failed and the rest propose a
    /// scale-down).
    MetricsUnavailable {
        /// The first failure.
        error: String,
    },
    /// A metric proposes more replicas.
    AboveTarget {
        /// The metric with the largest proposal.
        metric: String,
    },
    /// Every metric proposes fewer replicas.
    BelowTarget,
    /// The largest proposal is the current count.
    AtTarget,
}

/// What bounded the change after stabilization.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Limit {
    /// A scale-up rate policy.
    ScaleUpRate {
        /// The policy that set the bound.
        policy: ScalingPolicy,
        /// The count at the start of its period.
        period_start: u32,
        /// The most replicas allowed now.
        limit: u32,
    },
    /// A scale-down rate policy.
    ScaleDownRate {
        /// The policy that set the bound.
        policy: ScalingPolicy,
        /// The count at the start of its period.
        period_start: u32,
        /// The fewest replicas allowed now.
        limit: u32,
    },
    /// `selectPolicy: Disabled` for this direction.
    Disabled {
        /// `up` or `down`.
        direction: String,
    },
    /// `maxReplicas`.
    TooManyReplicas {
        /// The bound.
        max: u32,
    },
    /// `minReplicas`.
    TooFewReplicas {
        /// The bound.
        min: u32,
    },
}

/// The result of [`recommend`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// The count before.
    pub current_replicas: u32,
    /// The count to set.
    pub desired_replicas: u32,
    /// Per metric, in spec order (empty on the guard paths).
    pub metrics: Vec<MetricProposal>,
    /// The largest metric proposal, before stabilization and limits.
    pub proposal: Option<u32>,
    /// The proposal after stabilization, when stabilization changed it.
    pub stabilized: Option<u32>,
    /// Why.
    pub reason: ScaleReason,
    /// What bounded the change, if anything did.
    pub limit: Option<Limit>,
}

impl Recommendation {
    /// Whether the count changes.
    pub fn rescale(&self) -> bool {
        self.desired_replicas != self.current_replicas
    }

    /// One line for `mlctl describe` (upstream's event text where there is one).
    pub fn message(&self) -> String {
        let reason = match &self.reason {
            ScaleReason::ScalingDisabled => {
                "scaling is disabled since the replica count of the target is zero".to_string()
            }
            ScaleReason::AboveMax => "Current number of replicas above Spec.MaxReplicas".into(),
            ScaleReason::BelowMin => "Current number of replicas below Spec.MinReplicas".into(),
            ScaleReason::MetricsUnavailable { error } => {
                format!("failed to compute desired number of replicas: {error}")
            }
            ScaleReason::AboveTarget { metric } => format!("{metric} above target"),
            ScaleReason::BelowTarget => "All metrics below target".into(),
            ScaleReason::AtTarget => "recommended size matches current size".into(),
        };
        let mut out = if self.rescale() {
            format!("New size: {}; reason: {reason}", self.desired_replicas)
        } else {
            format!("Size stays {}; reason: {reason}", self.current_replicas)
        };
        if let (Some(p), Some(s)) = (self.proposal, self.stabilized) {
            let dir = if p >= self.current_replicas {
                "lower"
            } else {
                "higher"
            };
            out.push_str(&format!(
                "; stabilized from {p} to {s}: recent recommendations were {dir}"
            ));
        }
        match &self.limit {
            None => {}
            Some(Limit::ScaleUpRate {
                policy,
                period_start,
                limit,
            }) => out.push_str(&format!(
                "; limited to {limit} by scale-up policy {policy} (from {period_start} at the \
                 start of the period)"
            )),
            Some(Limit::ScaleDownRate {
                policy,
                period_start,
                limit,
            }) => out.push_str(&format!(
                "; limited to {limit} by scale-down policy {policy} (from {period_start} at the \
                 start of the period)"
            )),
            Some(Limit::Disabled { direction }) => {
                out.push_str(&format!("; scaling {direction} is disabled"))
            }
            Some(Limit::TooManyReplicas { max }) => {
                out.push_str(&format!("; limited to maxReplicas {max}"))
            }
            Some(Limit::TooFewReplicas { min }) => {
                out.push_str(&format!("; limited to minReplicas {min}"))
            }
        }
        out
    }
}

/// A spec or input the algorithm cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutoscaleError {
    /// The spec breaks a rule the Kubernetes API enforces.
    #[error("failed to validate the autoscaler: {0}")]
    InvalidSpec(String),
    /// The measurements do not match the metrics.
    #[error("failed to compute replicas: {0}")]
    BadMeasurements(String),
}

impl HpaSpec {
    /// Checks the rules the Kubernetes API server enforces on an HPA.
    pub fn validate(&self) -> Result<(), AutoscaleError> {
        let bad = |m: String| Err(AutoscaleError::InvalidSpec(m));
        if self.max_replicas < 1 {
            return bad("maxReplicas must be at least 1".into());
        }
        if self.min_replicas > self.max_replicas {
            return bad(format!(
                "minReplicas {} must be at most maxReplicas {}",
                self.min_replicas, self.max_replicas
            ));
        }
        if self.metrics.is_empty() {
            return bad(
                "at least one metric is needed (Kubernetes defaults to cpu at 80% utilization)"
                    .into(),
            );
        }
        if self.min_replicas == 0
            && !self.metrics.iter().any(|m| {
                matches!(
                    m.source,
                    MetricSource::Object { .. } | MetricSource::External { .. }
                )
            })
        {
            return bad(
                "minReplicas 0 needs at least one Object or External metric (scale to zero)".into(),
            );
        }
        for (i, m) in self.metrics.iter().enumerate() {
            let ok = matches!(
                (&m.source, m.target),
                (
                    MetricSource::Resource { .. },
                    MetricTarget::Utilization(_) | MetricTarget::AverageValue(_)
                ) | (MetricSource::Pods { .. }, MetricTarget::AverageValue(_))
                    | (
                        MetricSource::Object { .. } | MetricSource::External { .. },
                        MetricTarget::Value(_) | MetricTarget::AverageValue(_)
                    )
            );
            if !ok {
                return bad(format!(
                    "metrics[{i}]: a {:?} target is not allowed for this metric type (Resource: \
                     Utilization or AverageValue; Pods: AverageValue; Object and External: Value \
                     or AverageValue)",
                    m.target
                ));
            }
            let positive = match m.target {
                MetricTarget::Utilization(p) => p > 0,
                MetricTarget::AverageValue(v) | MetricTarget::Value(v) => v > 0,
            };
            if !positive {
                return bad(format!("metrics[{i}]: the target must be greater than 0"));
            }
        }
        if let Some(b) = &self.behavior {
            for (dir, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
                let Some(r) = rules else { continue };
                if r.stabilization_window_seconds
                    .is_some_and(|w| w > MAX_STABILIZATION_WINDOW_SECONDS)
                {
                    return bad(format!(
                        "behavior.{dir}.stabilizationWindowSeconds must be at most \
                         {MAX_STABILIZATION_WINDOW_SECONDS}"
                    ));
                }
                if r.tolerance.is_some_and(|t| !(t >= 0.0 && t.is_finite())) {
                    return bad(format!("behavior.{dir}.tolerance must be 0 or more"));
                }
                if let Some(policies) = &r.policies {
                    if policies.is_empty() && r.select_policy != Some(SelectPolicy::Disabled) {
                        return bad(format!(
                            "behavior.{dir}.policies must have at least one policy"
                        ));
                    }
                    for (j, p) in policies.iter().enumerate() {
                        if p.value == 0 {
                            return bad(format!(
                                "behavior.{dir}.policies[{j}].value must be greater than 0"
                            ));
                        }
                        if p.period_seconds == 0 || p.period_seconds > MAX_PERIOD_SECONDS {
                            return bad(format!(
                                "behavior.{dir}.policies[{j}].periodSeconds must be between 1 \
                                 and {MAX_PERIOD_SECONDS}"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Tolerances per direction: ratios in `[1 - down, 1 + up]` change nothing.
#[derive(Debug, Clone, Copy)]
struct Tolerance {
    up: f64,
    down: f64,
}

impl Tolerance {
    fn within(&self, ratio: f64) -> bool {
        (1.0 - self.down) <= ratio && ratio <= (1.0 + self.up)
    }
}

/// `ceil` of a non-negative float as a replica count (saturating, NaN as 0), like Go's
/// `int32(math.Ceil(x))` for the values that occur.
fn ceil_count(x: f64) -> u32 {
    let c = x.ceil();
    if c.is_nan() || c <= 0.0 {
        0
    } else if c >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        c as u32
    }
}

/// A per-pod proposal: upstream's `GetResourceReplicas` (with `requests`) or
/// `calcPlainMetricReplicas` (without). Returns the proposal and the current value shown.
fn per_pod(
    current: u32,
    samples: &[PodSample],
    target: i64,
    utilization: bool,
    tol: Tolerance,
) -> Result<(u32, String), String> {
    if samples.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    if utilization && let Some(p) = samples.iter().find(|s| s.request.is_none_or(|r| r <= 0)) {
        return Err(format!("missing request for pod {}", p.pod));
    }
    let request = |s: &PodSample| s.request.unwrap_or(0);
    let ready: Vec<&PodSample> = samples
        .iter()
        .filter(|s| s.ready && s.value.is_some())
        .collect();
    let missing: Vec<&PodSample> = samples
        .iter()
        .filter(|s| s.ready && s.value.is_none())
        .collect();
    let unready = samples.iter().filter(|s| !s.ready).count();
    if ready.is_empty() {
        return Err("did not receive metrics for any ready pods".into());
    }
    // The ratio over (value, request) pairs, as upstream forms it in integers.
    let ratio_of = |pairs: &[(i64, i64)]| -> (f64, i64) {
        let total: i64 = pairs.iter().map(|p| p.0).sum();
        if utilization {
            let requests: i64 = pairs.iter().map(|p| p.1).sum();
            let util = total.saturating_mul(100) / requests.max(1);
            (util as f64 / target as f64, util)
        } else {
            let avg = total / pairs.len().max(1) as i64;
            (avg as f64 / target as f64, avg)
        }
    };
    let mut pairs: Vec<(i64, i64)> = ready
        .iter()
        .map(|s| (s.value.unwrap_or(0), request(s)))
        .collect();
    let (ratio, shown) = ratio_of(&pairs);
    let shown = if utilization {
        format!("{shown}%")
    } else {
        format!("{} per pod", milli(shown))
    };
    let scale_up_with_unready = unready > 0 && ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if tol.within(ratio) {
            return Ok((current, shown));
        }
        return Ok((ceil_count(ratio * ready.len() as f64), shown));
    }
    if !missing.is_empty() {
        for s in &missing {
            let value = if ratio < 1.0 {
                if utilization {
                    request(s).saturating_mul(target.max(100)) / 100
                } else {
                    target
                }
            } else {
                0
            };
            // Exactly 1.0 leaves missing pods out, as upstream.
            if ratio != 1.0 {
                pairs.push((value, request(s)));
            }
        }
    }
    if scale_up_with_unready {
        for s in samples.iter().filter(|s| !s.ready) {
            pairs.push((0, request(s)));
        }
    }
    let (new_ratio, _) = ratio_of(&pairs);
    if tol.within(new_ratio) || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok((current, shown));
    }
    let proposal = ceil_count(new_ratio * pairs.len() as f64);
    if (new_ratio < 1.0 && proposal > current) || (new_ratio > 1.0 && proposal < current) {
        return Ok((current, shown));
    }
    Ok((proposal, shown))
}

/// One metric's proposal.
fn propose(
    spec: &MetricSpec,
    m: &Measurement,
    obs: &Observation<'_>,
    tol: Tolerance,
) -> Result<(u32, String), String> {
    let current = obs.current_replicas;
    match (m, &spec.source, spec.target) {
        (Measurement::Unavailable(e), _, _) => Err(e.clone()),
        (
            Measurement::PerPod(samples),
            MetricSource::Resource { .. },
            MetricTarget::Utilization(p),
        ) => per_pod(current, samples, i64::from(p), true, tol),
        (
            Measurement::PerPod(samples),
            MetricSource::Resource { .. } | MetricSource::Pods { .. },
            MetricTarget::AverageValue(v),
        ) => per_pod(current, samples, v, false, tol),
        (
            Measurement::Total(value),
            MetricSource::Object { .. } | MetricSource::External { .. },
            MetricTarget::Value(target),
        ) => {
            let ratio = *value as f64 / target as f64;
            let shown = milli(*value);
            if current == 0 {
                return Ok((ceil_count(ratio), shown));
            }
            if tol.within(ratio) {
                return Ok((current, shown));
            }
            Ok((ceil_count(ratio * f64::from(obs.ready_pods)), shown))
        }
        (
            Measurement::Total(value),
            MetricSource::Object { .. } | MetricSource::External { .. },
            MetricTarget::AverageValue(target),
        ) => {
            let ratio = *value as f64 / (target as f64 * f64::from(current));
            let per_pod = if current == 0 {
                *value
            } else {
                (*value as f64 / f64::from(current)).ceil() as i64
            };
            let shown = format!("{} per pod", milli(per_pod));
            if tol.within(ratio) {
                return Ok((current, shown));
            }
            Ok((ceil_count(*value as f64 / target as f64), shown))
        }
        (m, source, target) => Err(format!(
            "a {} measurement does not fit a {source:?} metric with a {target:?} target",
            match m {
                Measurement::PerPod(_) => "per-pod",
                Measurement::Total(_) => "single-value",
                Measurement::Unavailable(_) => "missing",
            }
        )),
    }
}

/// Pods added (or removed) within the last `period_seconds`.
fn changed_within(events: &[Timed], period_seconds: u32, now: Duration) -> u32 {
    let period = Duration::from_secs(u64::from(period_seconds));
    events
        .iter()
        .filter(|e| e.at + period > now)
        .fold(0u32, |acc, e| acc.saturating_add(e.replicas))
}

/// The bound of the rate policies for scaling up (`up`) or down, and the deciding policy.
fn rate_bound(
    rules: &ResolvedRules,
    current: u32,
    state: &HpaState,
    now: Duration,
    up: bool,
) -> Option<(u32, ScalingPolicy, u32)> {
    let mut best: Option<(i64, ScalingPolicy, u32)> = None;
    for p in &rules.policies {
        let added = changed_within(&state.scale_ups, p.period_seconds, now);
        let removed = changed_within(&state.scale_downs, p.period_seconds, now);
        let start = i64::from(current) - i64::from(added) + i64::from(removed);
        let start_f = start as f64;
        let v = f64::from(p.value);
        let proposed = match (p.kind, up) {
            (PolicyKind::Pods, true) => start + i64::from(p.value),
            (PolicyKind::Pods, false) => start - i64::from(p.value),
            (PolicyKind::Percent, true) => (start_f * (1.0 + v / 100.0)).ceil() as i64,
            (PolicyKind::Percent, false) => (start_f * (1.0 - v / 100.0)) as i64,
        };
        // Max selects the largest change: the highest bound up, the lowest bound down.
        let better = |new: i64, old: i64| match (rules.select, up) {
            (SelectPolicy::Min, true) | (SelectPolicy::Max, false) => new < old,
            _ => new > old,
        };
        if best.is_none_or(|(b, _, _)| better(proposed, b)) {
            best = Some((
                proposed,
                *p,
                u32::try_from(start.max(0)).unwrap_or(u32::MAX),
            ));
        }
    }
    best.map(|(b, p, s)| (u32::try_from(b.max(0)).unwrap_or(u32::MAX), p, s))
}

/// The furthest the count may move from `current` in one direction now, and what sets it:
/// the rate policies (or `Disabled`), then `maxReplicas` / `minReplicas`.
fn direction_limit(
    spec: &HpaSpec,
    rules: &ResolvedRules,
    up: bool,
    current: u32,
    state: &HpaState,
    now: Duration,
) -> (u32, Limit) {
    let direction = if up { "up" } else { "down" };
    let disabled = || {
        (
            current,
            Limit::Disabled {
                direction: direction.into(),
            },
        )
    };
    let (rate, limit) = if rules.select == SelectPolicy::Disabled {
        disabled()
    } else {
        match rate_bound(rules, current, state, now, up) {
            // Validation guarantees a policy unless the direction is disabled.
            None => disabled(),
            Some((bound, policy, period_start)) if up => {
                let limit = bound.max(current);
                (
                    limit,
                    Limit::ScaleUpRate {
                        policy,
                        period_start,
                        limit,
                    },
                )
            }
            Some((bound, policy, period_start)) => {
                let limit = bound.min(current);
                (
                    limit,
                    Limit::ScaleDownRate {
                        policy,
                        period_start,
                        limit,
                    },
                )
            }
        }
    };
    if up && spec.max_replicas <= rate {
        let max = spec.max_replicas;
        (max, Limit::TooManyReplicas { max })
    } else if !up && spec.min_replicas >= rate {
        let min = spec.min_replicas;
        (min, Limit::TooFewReplicas { min })
    } else {
        (rate, limit)
    }
}

/// The HPA algorithm: see the module documentation.
pub fn recommend(
    spec: &HpaSpec,
    obs: &Observation<'_>,
    state: &HpaState,
) -> Result<(Recommendation, HpaState), AutoscaleError> {
    spec.validate()?;
    if obs.measurements.len() != spec.metrics.len() {
        return Err(AutoscaleError::BadMeasurements(format!(
            "{} measurement(s) for {} metric(s)",
            obs.measurements.len(),
            spec.metrics.len()
        )));
    }
    let now = obs.now;
    let current = obs.current_replicas;
    let up_rules = Behavior::scale_up_rules(spec.behavior.as_ref());
    let down_rules = Behavior::scale_down_rules(spec.behavior.as_ref());
    let mut state = state.clone();
    if !state.started {
        state.started = true;
        state.recommendations.push(Timed {
            at: now,
            replicas: current,
        });
    }
    let mut rec = Recommendation {
        current_replicas: current,
        desired_replicas: current,
        metrics: Vec::new(),
        proposal: None,
        stabilized: None,
        reason: ScaleReason::AtTarget,
        limit: None,
    };

    if current == 0 && spec.min_replicas > 0 {
        rec.reason = ScaleReason::ScalingDisabled;
        return Ok((rec, state));
    }
    if current > spec.max_replicas {
        rec.reason = ScaleReason::AboveMax;
        rec.desired_replicas = spec.max_replicas;
    } else if current < spec.min_replicas {
        rec.reason = ScaleReason::BelowMin;
        rec.desired_replicas = spec.min_replicas;
    } else {
        let tol = Tolerance {
            up: up_rules.tolerance,
            down: down_rules.tolerance,
        };
        let mut best: Option<(u32, usize)> = None;
        let mut first_error = None;
        let mut invalid = 0;
        for (i, (m, measured)) in spec.metrics.iter().zip(obs.measurements).enumerate() {
            let result = propose(m, measured, obs, tol);
            let (replicas, shown) = match result {
                Ok((r, shown)) => (Ok(r), Some(shown)),
                Err(e) => (Err(e), None),
            };
            match &replicas {
                Ok(r) => {
                    if best.is_none_or(|(b, _)| *r > b) {
                        best = Some((*r, i));
                    }
                }
                Err(e) => {
                    invalid += 1;
                    first_error
                        .get_or_insert_with(|| format!("{}: {e}", m.source.describe(&m.target)));
                }
            }
            rec.metrics.push(MetricProposal {
                metric: m.source.describe(&m.target),
                current: shown,
                target: m.target.to_string(),
                replicas,
            });
        }
        let Some((proposal, driver)) = best.filter(|(r, _)| invalid == 0 || *r >= current) else {
            let error = first_error.unwrap_or_default();
            let error = if invalid < spec.metrics.len() {
                format!(
                    "invalid metrics ({invalid} invalid out of {}), first error is: {error}",
                    spec.metrics.len()
                )
            } else {
                error
            };
            rec.reason = ScaleReason::MetricsUnavailable { error };
            return Ok((rec, state));
        };
        rec.proposal = Some(proposal);
        rec.reason = if proposal > current {
            ScaleReason::AboveTarget {
                metric: rec.metrics[driver].metric.clone(),
            }
        } else if proposal < current {
            ScaleReason::BelowTarget
        } else {
            ScaleReason::AtTarget
        };

        // Stabilization.
        let up_window = Duration::from_secs(u64::from(up_rules.window_seconds));
        let down_window = Duration::from_secs(u64::from(down_rules.window_seconds));
        let mut up_rec = proposal;
        let mut down_rec = proposal;
        for r in &state.recommendations {
            if r.at + up_window > now {
                up_rec = up_rec.min(r.replicas);
            }
            if r.at + down_window > now {
                down_rec = down_rec.max(r.replicas);
            }
        }
        let stabilized = current.max(up_rec).min(down_rec);
        state
            .recommendations
            .retain(|r| r.at + up_window > now || r.at + down_window > now);
        state.recommendations.push(Timed {
            at: now,
            replicas: proposal,
        });
        if stabilized != proposal {
            rec.stabilized = Some(stabilized);
        }

        // Rate policies, then the bounds.
        let mut desired = stabilized;
        if stabilized != current {
            let up = stabilized > current;
            let rules = if up { &up_rules } else { &down_rules };
            let (allowed, limit) = direction_limit(spec, rules, up, current, &state, now);
            if (up && desired > allowed) || (!up && desired < allowed) {
                desired = allowed;
                rec.limit = Some(limit);
            }
        }
        rec.desired_replicas = desired;
    }

    // Record the change for the rate policies of later calls.
    let desired = rec.desired_replicas;
    if desired > current {
        state.scale_ups.push(Timed {
            at: now,
            replicas: desired - current,
        });
    } else if desired < current {
        state.scale_downs.push(Timed {
            at: now,
            replicas: current - desired,
        });
    }
    let longest = |r: &ResolvedRules| {
        Duration::from_secs(u64::from(
            r.policies
                .iter()
                .map(|p| p.period_seconds)
                .max()
                .unwrap_or(0),
        ))
    };
    let (up_period, down_period) = (longest(&up_rules), longest(&down_rules));
    state.scale_ups.retain(|e| e.at + up_period > now);
    state.scale_downs.retain(|e| e.at + down_period > now);
    Ok((rec, state))
}

#[cfg(test)]
mod tests;
