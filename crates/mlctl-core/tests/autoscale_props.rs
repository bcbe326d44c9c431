//! Property tests of the HPA function over random specs, behaviours and load histories. The
//! test keeps its own history (proposals and replica counts over time) and checks: the
//! result stays within [min, max]; within the scale-down window a scale-down never goes
//! below the highest proposal of the window (and a scale-up never above the lowest of the
//! scale-up window); the rate policies bound the change against the count at the start of
//! each policy's period, as `selectPolicy` combines them.

use std::time::Duration;

use mlctl_core::autoscale::{
    Behavior, HpaSpec, HpaState, Measurement, MetricSource, MetricSpec, MetricTarget, Observation,
    PodSample, PolicyKind, ResolvedRules, ScalingPolicy, ScalingRules, SelectPolicy, recommend,
};
use proptest::prelude::*;

fn policy() -> impl Strategy<Value = ScalingPolicy> {
    (prop::bool::ANY, 1u32..=150, 1u32..=120).prop_map(|(pods, value, period_seconds)| {
        ScalingPolicy {
            kind: if pods {
                PolicyKind::Pods
            } else {
                PolicyKind::Percent
            },
            value,
            period_seconds,
        }
    })
}

fn rules() -> impl Strategy<Value = Option<ScalingRules>> {
    prop::option::of(
        (
            prop::option::of(0u32..=600),
            prop::option::of(prop_oneof![
                4 => Just(SelectPolicy::Max),
                4 => Just(SelectPolicy::Min),
                1 => Just(SelectPolicy::Disabled),
            ]),
            prop::option::of(prop::collection::vec(policy(), 1..=3)),
        )
            .prop_map(|(window, select, policies)| ScalingRules {
                stabilization_window_seconds: window,
                select_policy: select,
                policies,
                tolerance: None,
            }),
    )
}

fn hpa() -> impl Strategy<Value = HpaSpec> {
    (
        1u32..=5,
        0u32..=30,
        prop::option::of((rules(), rules())),
        prop::bool::ANY,
    )
        .prop_map(|(min, extra, behavior, two_metrics)| {
            let mut metrics = vec![MetricSpec {
                source: MetricSource::Pods { name: "rps".into() },
                target: MetricTarget::AverageValue(100_000),
            }];
            if two_metrics {
                metrics.push(MetricSpec {
                    source: MetricSource::External {
                        name: "queue".into(),
                    },
                    target: MetricTarget::Value(50_000),
                });
            }
            HpaSpec {
                min_replicas: min,
                max_replicas: min + extra,
                metrics,
                behavior: behavior.map(|(scale_up, scale_down)| Behavior {
                    scale_up,
                    scale_down,
                }),
            }
        })
}

/// One sync: seconds since the previous one, a per-pod load level, how many pods miss a
/// sample or are not ready, and the external queue.
#[derive(Debug, Clone)]
struct Tick {
    dt: u64,
    load: i64,
    missing: usize,
    unready: usize,
    queue: i64,
}

fn ticks() -> impl Strategy<Value = Vec<Tick>> {
    prop::collection::vec(
        (
            1u64..=90,
            0i64..=400_000,
            0usize..=2,
            0usize..=2,
            0i64..=400_000,
        )
            .prop_map(|(dt, load, missing, unready, queue)| Tick {
                dt,
                load,
                missing,
                unready,
                queue,
            }),
        1..40,
    )
}

fn measurements(spec: &HpaSpec, pods: u32, t: &Tick) -> Vec<Measurement> {
    let samples = (0..pods as usize)
        .map(|i| PodSample {
            pod: format!("p{i}"),
            ready: i >= t.unready,
            value: (i < t.unready || i >= t.unready + t.missing)
                .then_some(t.load + (i as i64 % 3) * 7_000),
            request: None,
        })
        .collect();
    let mut out = vec![Measurement::PerPod(samples)];
    if spec.metrics.len() > 1 {
        out.push(Measurement::Total(t.queue));
    }
    out
}

/// The count in effect at `x`: the last change at or before `x`.
fn replicas_at(initial: u32, changes: &[(Duration, u32)], x: Option<Duration>) -> u32 {
    let Some(x) = x else { return initial };
    changes
        .iter()
        .rfind(|(at, _)| *at <= x)
        .map_or(initial, |(_, r)| *r)
}

/// The bound the policies allow from `current`, per the test's own timeline.
fn policy_bound(
    rules: &ResolvedRules,
    up: bool,
    current: u32,
    now: Duration,
    initial: u32,
    changes: &[(Duration, u32)],
) -> i64 {
    if rules.select == SelectPolicy::Disabled {
        return i64::from(current);
    }
    let bounds = rules.policies.iter().map(|p| {
        let start = replicas_at(
            initial,
            changes,
            now.checked_sub(Duration::from_secs(p.period_seconds.into())),
        );
        let (s, v) = (f64::from(start), f64::from(p.value));
        match (p.kind, up) {
            (PolicyKind::Pods, true) => i64::from(start) + i64::from(p.value),
            (PolicyKind::Pods, false) => i64::from(start) - i64::from(p.value),
            (PolicyKind::Percent, true) => (s * (1.0 + v / 100.0)).ceil() as i64,
            (PolicyKind::Percent, false) => (s * (1.0 - v / 100.0)) as i64,
        }
    });
    // The policy allowing the largest change (Max) or the smallest (Min).
    match (rules.select, up) {
        (SelectPolicy::Max, true) | (SelectPolicy::Min, false) => bounds.max(),
        _ => bounds.min(),
    }
    .unwrap_or(i64::from(current))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bounds_stabilization_and_rate_policies_hold(
        spec in hpa(),
        start in 0u32..=35,
        ticks in ticks(),
    ) {
        let initial = spec.min_replicas + start % (spec.max_replicas - spec.min_replicas + 1);
        let up_rules = Behavior::scale_up_rules(spec.behavior.as_ref());
        let down_rules = Behavior::scale_down_rules(spec.behavior.as_ref());
        let up_window = Duration::from_secs(up_rules.window_seconds.into());
        let down_window = Duration::from_secs(down_rules.window_seconds.into());

        let mut state = HpaState::default();
        let mut current = initial;
        let mut now = Duration::ZERO;
        let mut proposals: Vec<(Duration, u32)> = vec![(now, initial)];
        let mut changes: Vec<(Duration, u32)> = Vec::new();
        for t in &ticks {
            let m = measurements(&spec, current, t);
            let obs = Observation {
                current_replicas: current,
                ready_pods: current - t.unready.min(current as usize) as u32,
                measurements: &m,
                now,
            };
            let (r, next) = recommend(&spec, &obs, &state).unwrap();
            let desired = r.desired_replicas;
            prop_assert!(
                (spec.min_replicas..=spec.max_replicas).contains(&desired),
                "{desired} outside [{}, {}]", spec.min_replicas, spec.max_replicas
            );
            if let Some(p) = r.proposal {
                proposals.push((now, p));
            }
            let in_window = |w: Duration| proposals.iter().filter(move |(at, _)| *at + w > now);
            if desired < current {
                let highest = in_window(down_window).map(|(_, p)| *p).max().unwrap_or(0);
                prop_assert!(desired >= highest, "scale-down to {desired} below {highest} in the window");
                let bound = policy_bound(&down_rules, false, current, now, initial, &changes);
                prop_assert!(
                    i64::from(desired) >= bound.min(i64::from(current)),
                    "scale-down from {current} to {desired} beyond the policies' {bound}: {}", r.message()
                );
            }
            if desired > current {
                let lowest = in_window(up_window).map(|(_, p)| *p).min().unwrap_or(u32::MAX);
                prop_assert!(desired <= lowest, "scale-up to {desired} above {lowest} in the window");
                let bound = policy_bound(&up_rules, true, current, now, initial, &changes);
                prop_assert!(
                    i64::from(desired) <= bound.max(i64::from(current)),
                    "scale-up from {current} to {desired} beyond the policies' {bound}: {}", r.message()
                );
            }
            if desired != current {
                changes.push((now, desired));
            }
            current = desired;
            state = next;
            now += Duration::from_secs(t.dt);
        }
    }
}
