//! Table tests: the Kubernetes documentation's examples (horizontal-pod-autoscale.md) and the
//! data points of upstream's replica-calculator tests, run through [`recommend`].

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn spec(min: u32, max: u32, metrics: Vec<MetricSpec>, behavior: Option<Behavior>) -> HpaSpec {
    HpaSpec {
        min_replicas: min,
        max_replicas: max,
        metrics,
        behavior,
    }
}

fn cpu(target_percent: u32) -> MetricSpec {
    MetricSpec {
        source: MetricSource::Resource { name: "cpu".into() },
        target: MetricTarget::Utilization(target_percent),
    }
}

fn pods(name: &str, target_milli: i64) -> MetricSpec {
    MetricSpec {
        source: MetricSource::Pods { name: name.into() },
        target: MetricTarget::AverageValue(target_milli),
    }
}

fn external(target: MetricTarget) -> MetricSpec {
    MetricSpec {
        source: MetricSource::External {
            name: "queue".into(),
        },
        target,
    }
}

fn object(target: MetricTarget) -> MetricSpec {
    MetricSpec {
        source: MetricSource::Object {
            name: "qps".into(),
            object: "Deployment/some-deployment".into(),
        },
        target,
    }
}

/// Pods that are all ready, one value each (request 1000m for utilization).
fn samples(values: &[i64]) -> Measurement {
    Measurement::PerPod(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| PodSample::ready(format!("p{i}"), *v).with_request(1000))
            .collect(),
    )
}

/// A pod: `Some(v)` with a sample, `None` missing; `ready` as given; request 1000m.
fn pod(i: usize, ready: bool, value: Option<i64>) -> PodSample {
    PodSample {
        pod: format!("p{i}"),
        ready,
        value,
        request: Some(1000),
    }
}

/// One call.
fn step(
    spec: &HpaSpec,
    state: &HpaState,
    current: u32,
    ready: u32,
    measurements: &[Measurement],
    now: Duration,
) -> (Recommendation, HpaState) {
    recommend(
        spec,
        &Observation {
            current_replicas: current,
            ready_pods: ready,
            measurements,
            now,
        },
        state,
    )
    .unwrap()
}

/// The proposal of one metric for `current` replicas on a fresh autoscaler.
fn proposal(metric: MetricSpec, current: u32, m: Measurement) -> u32 {
    let s = spec(1, 1000, vec![metric], None);
    step(&s, &HpaState::default(), current, current, &[m], secs(0))
        .0
        .proposal
        .unwrap()
}

#[test]
fn the_ratio_of_current_to_target_scales_the_count() {
    // "if the current metric value is 200m, and the desired value is 100m, the number of
    // replicas will be doubled ... If the current value is instead 50m, you'll halve".
    assert_eq!(
        proposal(pods("rps", 100), 4, samples(&[200, 200, 200, 200])),
        8
    );
    assert_eq!(proposal(pods("rps", 100), 4, samples(&[50, 50, 50, 50])), 2);
    // "The control plane skips any scaling action if the ratio is sufficiently close to 1.0".
    assert_eq!(
        proposal(pods("rps", 100), 4, samples(&[109, 109, 109, 109])),
        4
    );
    assert_eq!(
        proposal(pods("rps", 100), 4, samples(&[111, 111, 111, 111])),
        5
    );
}

#[test]
fn upstream_replica_calculator_cases() {
    let all_ready = |levels: &[i64], n: usize| {
        Measurement::PerPod(
            (0..n)
                .map(|i| pod(i, true, levels.get(i).copied()))
                .collect(),
        )
    };
    // (case, metric, current replicas, measurement, expected proposal)
    let cases: Vec<(&str, MetricSpec, u32, Measurement, u32)> = vec![
        (
            "ScaleDownIgnoresFailedPods",
            cpu(50),
            5,
            samples(&[100, 300, 500, 250, 250]),
            3,
        ),
        (
            "Tolerance",
            cpu(100),
            3,
            Measurement::PerPod(vec![
                PodSample::ready("a", 1010).with_request(900),
                PodSample::ready("b", 1030).with_request(1000),
                PodSample::ready("c", 1020).with_request(1100),
            ]),
            3,
        ),
        ("MissingMetrics", cpu(100), 4, all_ready(&[400, 95], 4), 3),
        (
            "MissingMetricsNoChangeEq",
            cpu(100),
            2,
            all_ready(&[1000], 2),
            2,
        ),
        (
            "MissingMetricsNoChangeGt",
            cpu(100),
            2,
            all_ready(&[1900], 2),
            2,
        ),
        (
            "MissingMetricsNoChangeLt",
            cpu(100),
            2,
            all_ready(&[600], 2),
            2,
        ),
        (
            "MissingMetricsUnreadyChange",
            cpu(50),
            3,
            Measurement::PerPod(vec![
                pod(0, false, Some(100)),
                pod(1, true, Some(450)),
                pod(2, true, None),
            ]),
            3,
        ),
        (
            "MissingMetricsUnreadyScaleUp",
            cpu(50),
            3,
            Measurement::PerPod(vec![
                pod(0, false, Some(100)),
                pod(1, true, Some(2000)),
                pod(2, true, None),
            ]),
            4,
        ),
        (
            "MissingMetricsUnreadyScaleDown",
            cpu(50),
            4,
            Measurement::PerPod(vec![
                pod(0, false, Some(100)),
                pod(1, true, Some(100)),
                pod(2, true, Some(100)),
                pod(3, true, None),
            ]),
            3,
        ),
        (
            "DuringRollingUpdateWithMaxSurge",
            cpu(50),
            2,
            all_ready(&[100, 100], 3),
            2,
        ),
        (
            "ToleranceCM",
            pods("qps", 20000),
            3,
            samples(&[20000, 21000, 21000]),
            3,
        ),
        (
            "ToleranceCMObject",
            object(MetricTarget::Value(20000)),
            3,
            Measurement::Total(20666),
            3,
        ),
        (
            "TolerancePerPodCMObject",
            object(MetricTarget::AverageValue(5000)),
            4,
            Measurement::Total(20166),
            4,
        ),
        (
            "ToleranceCMExternal",
            external(MetricTarget::Value(8888)),
            3,
            Measurement::Total(8600),
            3,
        ),
        (
            "TolerancePerPodCMExternal",
            external(MetricTarget::AverageValue(2900)),
            3,
            Measurement::Total(8600),
            3,
        ),
        (
            "ScaleUpCMExternal",
            external(MetricTarget::Value(4400)),
            1,
            Measurement::Total(8600),
            2,
        ),
        (
            "ScaleUpPerPodCMExternal",
            external(MetricTarget::AverageValue(2150)),
            1,
            Measurement::Total(8600),
            4,
        ),
    ];
    for (name, metric, current, m, want) in cases {
        assert_eq!(proposal(metric, current, m), want, "{name}");
    }
}

#[test]
fn a_metric_without_requests_or_ready_pods_gives_no_proposal() {
    let s = spec(1, 10, vec![cpu(50)], None);
    let m = [Measurement::PerPod(vec![PodSample::ready("p0", 200)])];
    let (r, _) = step(&s, &HpaState::default(), 1, 1, &m, secs(0));
    assert_eq!(
        r.metrics[0].replicas,
        Err("missing request for pod p0".into())
    );
    assert_eq!(r.desired_replicas, 1);
    let m = [Measurement::PerPod(vec![pod(0, false, Some(100))])];
    let (r, _) = step(&s, &HpaState::default(), 1, 1, &m, secs(0));
    assert_eq!(
        r.message(),
        "Size stays 1; reason: failed to compute desired number of replicas: cpu resource \
         utilization (percentage of request): did not receive metrics for any ready pods"
    );
}

#[test]
fn the_largest_proposal_wins_and_a_failed_metric_blocks_only_scale_down() {
    let s = spec(1, 10, vec![cpu(50), pods("rps", 100)], None);
    let cpu_down = samples(&[100, 100, 100, 100]); // 10% of 50% → 1
    let rps_up = samples(&[300, 300, 300, 300]); // 3x → 12 → max 10
    let (r, _) = step(
        &s,
        &HpaState::default(),
        4,
        4,
        &[cpu_down.clone(), rps_up],
        secs(0),
    );
    assert_eq!(r.proposal, Some(12));
    assert_eq!(r.desired_replicas, 8, "{}", r.message());
    assert_eq!(
        r.reason,
        ScaleReason::AboveTarget {
            metric: "pods metric rps".into()
        }
    );

    // "If any of these metrics cannot be converted into a desired replica count ... and a
    // scale down is suggested by the metrics which can be fetched, scaling is skipped."
    let unavailable = Measurement::Unavailable("metrics server unreachable".into());
    let (r, _) = step(
        &s,
        &HpaState::default(),
        4,
        4,
        &[cpu_down, unavailable.clone()],
        secs(0),
    );
    assert_eq!(r.desired_replicas, 4);
    assert_eq!(
        r.reason,
        ScaleReason::MetricsUnavailable {
            error: "invalid metrics (1 invalid out of 2), first error is: pods metric rps: \
                    metrics server unreachable"
                .into()
        }
    );
    // "This means that the HPA is still capable of scaling up if one or more metrics give a
    // desiredReplicas greater than the current value."
    let cpu_up = samples(&[100, 100, 100, 100].map(|v| v * 10)); // 200% of 50% → 16
    let (r, _) = step(
        &s,
        &HpaState::default(),
        4,
        4,
        &[cpu_up, unavailable],
        secs(0),
    );
    assert_eq!(r.desired_replicas, 8);
}

#[test]
fn default_scale_up_adds_four_pods_or_doubles_every_15_seconds() {
    let s = spec(
        1,
        100,
        vec![external(MetricTarget::AverageValue(1000))],
        None,
    );
    let m = [Measurement::Total(1_000_000)]; // wants 1000 pods
    let mut state = HpaState::default();
    let mut current = 1;
    let mut seen = Vec::new();
    for t in [0, 5, 15, 30, 45, 60, 75] {
        let (r, next) = step(&s, &state, current, current, &m, secs(t));
        if t == 0 {
            assert_eq!(
                r.message(),
                "New size: 5; reason: external metric queue above target; limited to 5 by \
                 scale-up policy 4 pods per 15s (from 1 at the start of the period)"
            );
        }
        current = r.desired_replicas;
        state = next;
        seen.push(current);
    }
    // At 5 s the 15 s period still holds the first scale-up.
    assert_eq!(seen, [5, 5, 10, 20, 40, 80, 100]);
}

#[test]
fn scale_down_waits_for_the_stabilization_window() {
    let s = spec(1, 10, vec![pods("rps", 100)], None);
    let (r, mut state) = step(
        &s,
        &HpaState::default(),
        4,
        4,
        &[samples(&[200; 4])],
        secs(0),
    );
    assert_eq!(r.desired_replicas, 8);
    let calm = [samples(&[25; 8])];
    let mut t = 15;
    let mut current = 8;
    while t <= 300 {
        let (r, next) = step(&s, &state, current, current, &calm, secs(t));
        state = next;
        if t < 300 {
            // The recommendation of 8 at t=0 is within the last 300 s.
            assert_eq!((t, r.proposal, r.desired_replicas), (t, Some(2), 8));
            assert_eq!(
                r.message(),
                "Size stays 8; reason: All metrics below target; stabilized from 2 to 8: recent \
                 recommendations were higher"
            );
        } else {
            assert_eq!(r.desired_replicas, 2, "{}", r.message());
        }
        current = r.desired_replicas;
        t += 15;
    }
}

#[test]
fn new_autoscalers_do_not_scale_down_at_once() {
    // The current count is the first recommendation: a scale-down waits for the window.
    let s = spec(1, 10, vec![pods("rps", 100)], None);
    let (r, state) = step(
        &s,
        &HpaState::default(),
        4,
        4,
        &[samples(&[50; 4])],
        secs(0),
    );
    assert_eq!(
        (r.proposal, r.stabilized, r.desired_replicas),
        (Some(2), Some(4), 4)
    );
    let (r, _) = step(&s, &state, 4, 4, &[samples(&[50; 4])], secs(300));
    assert_eq!(r.desired_replicas, 2);
}

#[test]
fn scaling_policies_example_from_the_documentation() {
    // "if there are 80 replicas and the target has to be scaled down to 10 replicas then
    // during the first step 8 replicas will be reduced. In the next iteration when the number
    // of replicas is 72, 10% of the pods is 7.2 but the number is rounded up to 8 ... When the
    // number of replicas falls below 40 the first policy (Pods) is applied and 4 replicas will
    // be reduced at a time."
    let behavior = Behavior {
        scale_up: None,
        scale_down: Some(ScalingRules {
            stabilization_window_seconds: Some(0),
            select_policy: None,
            policies: Some(vec![
                ScalingPolicy::pods(4, 60),
                ScalingPolicy::percent(10, 60),
            ]),
            tolerance: None,
        }),
    };
    let s = spec(
        1,
        100,
        vec![external(MetricTarget::AverageValue(1000))],
        Some(behavior),
    );
    let m = [Measurement::Total(10_000)]; // wants 10 pods
    let mut state = HpaState::default();
    let mut current = 80;
    let mut seen = Vec::new();
    let mut t = 0;
    // One step inside the period (15 s), then once per period.
    for dt in std::iter::once(15).chain(std::iter::repeat_n(61, 14)) {
        let (r, next) = step(&s, &state, current, current, &m, secs(t));
        current = r.desired_replicas;
        state = next;
        seen.push(current);
        t += dt;
    }
    assert_eq!(
        seen,
        [72, 72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10]
    );
}

#[test]
fn select_policy_min_and_disabled() {
    // "no more than 5 Pods are removed per minute ... selectPolicy: Min".
    let rules = |select, policies| {
        Some(Behavior {
            scale_up: None,
            scale_down: Some(ScalingRules {
                stabilization_window_seconds: Some(0),
                select_policy: Some(select),
                policies,
                tolerance: None,
            }),
        })
    };
    let metric = vec![external(MetricTarget::AverageValue(1000))];
    let m = [Measurement::Total(10_000)];
    let s = spec(
        1,
        200,
        metric.clone(),
        rules(
            SelectPolicy::Min,
            Some(vec![
                ScalingPolicy::percent(10, 60),
                ScalingPolicy::pods(5, 60),
            ]),
        ),
    );
    let (r, _) = step(&s, &HpaState::default(), 100, 100, &m, secs(0));
    assert_eq!(r.desired_replicas, 95);
    assert_eq!(
        r.limit,
        Some(Limit::ScaleDownRate {
            policy: ScalingPolicy::pods(5, 60),
            period_start: 100,
            limit: 95
        })
    );
    // "selectPolicy: Disabled turns off scaling the given direction".
    let s = spec(1, 200, metric, rules(SelectPolicy::Disabled, None));
    let (r, _) = step(&s, &HpaState::default(), 100, 100, &m, secs(0));
    assert_eq!(r.desired_replicas, 100);
    assert_eq!(
        r.message(),
        "Size stays 100; reason: All metrics below target; scaling down is disabled"
    );
}

#[test]
fn guards_come_before_metrics() {
    let s = spec(2, 20, vec![pods("rps", 100)], None);
    let m = [samples(&[100])];
    // "If the target's desired replica count is set to 0, and the HPA's minimum replica count
    // is greater than 0, the HPA stops adjusting the target".
    let (r, _) = step(&s, &HpaState::default(), 0, 0, &m, secs(0));
    assert_eq!(
        (r.reason.clone(), r.desired_replicas),
        (ScaleReason::ScalingDisabled, 0)
    );
    let (r, state) = step(&s, &HpaState::default(), 25, 25, &m, secs(0));
    assert_eq!(
        r.message(),
        "New size: 20; reason: Current number of replicas above Spec.MaxReplicas"
    );
    assert_eq!(
        state.scale_downs,
        [Timed {
            at: secs(0),
            replicas: 5
        }]
    );
    let (r, _) = step(&s, &HpaState::default(), 1, 1, &m, secs(0));
    assert_eq!(
        (r.reason.clone(), r.desired_replicas),
        (ScaleReason::BelowMin, 2)
    );
}

#[test]
fn the_seed_model_server_hpa() {
    // 11-ml-model-serving-hpa.yaml: 2..20 replicas; cpu 70%, memory 80%, 100 requests/s per
    // pod; scale up 60 s window, max(50%, 2 pods) per minute; scale down 300 s, 10%/minute.
    let behavior = Behavior {
        scale_up: Some(ScalingRules {
            stabilization_window_seconds: Some(60),
            select_policy: Some(SelectPolicy::Max),
            policies: Some(vec![
                ScalingPolicy::percent(50, 60),
                ScalingPolicy::pods(2, 60),
            ]),
            tolerance: None,
        }),
        scale_down: Some(ScalingRules {
            stabilization_window_seconds: Some(300),
            select_policy: None,
            policies: Some(vec![ScalingPolicy::percent(10, 60)]),
            tolerance: None,
        }),
    };
    let memory = MetricSpec {
        source: MetricSource::Resource {
            name: "memory".into(),
        },
        target: MetricTarget::Utilization(80),
    };
    let s = spec(
        2,
        20,
        vec![cpu(70), memory, pods("requests_per_second", 100_000)],
        Some(behavior),
    );
    let load = [
        samples(&[1400, 1400]),       // 140% of 70% → 4
        samples(&[500, 500]),         // 50% of 80% → 2
        samples(&[150_000, 150_000]), // 150 of 100 → 3
    ];
    let (r, state) = step(&s, &HpaState::default(), 2, 2, &load, secs(0));
    // The new autoscaler's first recommendation (2) is within the 60 s scale-up window.
    assert_eq!((r.proposal, r.desired_replicas), (Some(4), 2));
    let (r, state) = step(&s, &state, 2, 2, &load, secs(30));
    assert_eq!(r.desired_replicas, 2);
    let (r, _) = step(&s, &state, 2, 2, &load, secs(61));
    assert_eq!(
        r.message(),
        "New size: 4; reason: cpu resource utilization (percentage of request) above target"
    );
    assert_eq!(
        r.metrics
            .iter()
            .map(|m| (m.current.clone().unwrap(), m.replicas.clone().unwrap()))
            .collect::<Vec<_>>(),
        [
            ("140%".to_string(), 4),
            ("50%".to_string(), 2),
            ("150 per pod".to_string(), 3)
        ]
    );
}

#[test]
fn invalid_specs_are_refused_with_the_rule() {
    let ok = spec(1, 5, vec![cpu(70)], None);
    assert!(ok.validate().is_ok());
    let cases: Vec<(HpaSpec, &str)> = vec![
        (
            spec(6, 5, vec![cpu(70)], None),
            "minReplicas 6 must be at most maxReplicas 5",
        ),
        (spec(1, 5, vec![], None), "at least one metric is needed"),
        (
            spec(0, 5, vec![cpu(70)], None),
            "minReplicas 0 needs at least one Object or External metric",
        ),
        (
            spec(1, 5, vec![external(MetricTarget::Utilization(50))], None),
            "metrics[0]: a Utilization(50) target is not allowed",
        ),
        (
            spec(1, 5, vec![cpu(0)], None),
            "metrics[0]: the target must be greater than 0",
        ),
        (
            spec(
                1,
                5,
                vec![cpu(70)],
                Some(Behavior {
                    scale_up: Some(ScalingRules {
                        policies: Some(vec![ScalingPolicy::pods(1, 3600)]),
                        ..ScalingRules::default()
                    }),
                    scale_down: None,
                }),
            ),
            "behavior.scaleUp.policies[0].periodSeconds must be between 1 and 1800",
        ),
    ];
    for (s, want) in cases {
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains(want), "{err} should contain {want}");
    }
    let err = recommend(
        &ok,
        &Observation {
            current_replicas: 1,
            ready_pods: 1,
            measurements: &[],
            now: secs(0),
        },
        &HpaState::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to compute replicas: 0 measurement(s) for 1 metric(s)"
    );
}

#[test]
fn state_and_recommendation_serialize() {
    let s = spec(1, 10, vec![pods("rps", 100)], None);
    let (r, state) = step(
        &s,
        &HpaState::default(),
        2,
        2,
        &[samples(&[200, 200])],
        secs(0),
    );
    let back: HpaState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    assert_eq!(back, state);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["desiredReplicas"], 4);
    assert_eq!(json["reason"]["kind"], "aboveTarget");
}
