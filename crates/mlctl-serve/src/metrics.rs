//! The server's Prometheus metrics, exposed as OpenMetrics text on `/metrics`.
//!
//! The names are a contract with the `PrometheusRule`s and dashboards that `mlctl render`
//! writes and with the local autoscaler: `model_requests_total{model,code}`,
//! `model_inference_duration_seconds` (histogram, label `model`), `model_batch_size`
//! (histogram), `model_queue_depth`, `model_inflight_requests` and `model_ready` (gauges).
//! `model_busy_polls_total{model,result}` counts the busy-polling windows of idle
//! connections (see `busy_poll`): `hit` when the client's next request (or its close) came
//! within the window, `miss` when the window ended with nothing to read.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request latency buckets, in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PollLabels {
    model: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    code: u16,
}

/// The registry and the handles the server updates.
pub struct Metrics {
    registry: Registry,
    model: String,
    requests: Family<RequestLabels, Counter>,
    /// Seconds from receiving an inference request to having its response, for requests
    /// that were admitted to the queue.
    pub inference_duration: Histogram,
    /// Rows per model run.
    pub batch_size: Histogram,
    /// Requests waiting for a model run.
    pub queue_depth: Gauge,
    /// Inference requests being handled (queued or running).
    pub inflight: Gauge,
    /// 1 when the model is loaded and the server is not draining, else 0.
    pub ready: Gauge,
    /// Busy-polling windows that ended with something to read.
    pub busy_poll_hits: Counter,
    /// Busy-polling windows that ended with nothing to read.
    pub busy_poll_misses: Counter,
}

impl Metrics {
    /// Metrics for a server of the model called `model`; `max_batch_size` sizes the batch
    /// size buckets.
    pub fn new(model: &str, max_batch_size: usize) -> Metrics {
        let mut registry = Registry::default();
        let labels = ModelLabels {
            model: model.to_owned(),
        };
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "model_requests",
            "Inference requests by model and HTTP status code",
            requests.clone(),
        );
        let inference_duration = Family::<ModelLabels, Histogram, _>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        registry.register(
            "model_inference_duration_seconds",
            "Time from receiving an inference request to its response",
            inference_duration.clone(),
        );
        let buckets = batch_buckets(max_batch_size.max(1));
        let batch_size = Family::<ModelLabels, Histogram, _>::new_with_constructor(move || {
            Histogram::new(buckets.iter().copied())
        });
        registry.register(
            "model_batch_size",
            "Rows per model run after dynamic batching",
            batch_size.clone(),
        );
        let queue_depth = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "model_queue_depth",
            "Inference requests waiting for a model run",
            queue_depth.clone(),
        );
        let inflight = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "model_inflight_requests",
            "Inference requests being handled, queued or running",
            inflight.clone(),
        );
        let ready = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "model_ready",
            "1 when the model is loaded and the server takes requests",
            ready.clone(),
        );
        let busy_polls = Family::<PollLabels, Counter>::default();
        registry.register(
            "model_busy_polls",
            "Busy-polling windows of idle connections, by whether the next request came in them",
            busy_polls.clone(),
        );
        let poll_result = |result| PollLabels {
            model: model.to_owned(),
            result,
        };
        Metrics {
            registry,
            model: model.to_owned(),
            requests,
            inference_duration: inference_duration.get_or_create_owned(&labels),
            batch_size: batch_size.get_or_create_owned(&labels),
            queue_depth: queue_depth.get_or_create_owned(&labels),
            inflight: inflight.get_or_create_owned(&labels),
            ready: ready.get_or_create_owned(&labels),
            busy_poll_hits: busy_polls.get_or_create_owned(&poll_result("hit")),
            busy_poll_misses: busy_polls.get_or_create_owned(&poll_result("miss")),
        }
    }

    /// Counts one inference request answered with `code`.
    pub fn count_request(&self, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                model: self.model.clone(),
                code,
            })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// 1, 2, 4, ... up to and including `max`.
fn batch_buckets(max: usize) -> Vec<f64> {
    let mut buckets = Vec::new();
    let mut b = 1usize;
    while b < max {
        buckets.push(b as f64);
        b = b.saturating_mul(2);
    }
    buckets.push(max as f64);
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_rendered_rules() {
        let m = Metrics::new("mlp", 8);
        m.count_request(200);
        m.inference_duration.observe(0.002);
        m.batch_size.observe(3.0);
        m.queue_depth.set(2);
        let text = m.encode();
        assert!(
            text.contains("model_requests_total{model=\"mlp\",code=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("model_inference_duration_seconds_bucket{le=\"0.0025\",model=\"mlp\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("model_batch_size_bucket{le=\"4.0\",model=\"mlp\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("model_queue_depth{model=\"mlp\"} 2"),
            "{text}"
        );
        m.busy_poll_hits.inc();
        let text = m.encode();
        assert!(
            text.contains("model_busy_polls_total{model=\"mlp\",result=\"hit\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("model_busy_polls_total{model=\"mlp\",result=\"miss\"} 0"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn batch_buckets_end_at_max() {
        assert_eq!(batch_buckets(1), vec![1.0]);
        assert_eq!(batch_buckets(6), vec![1.0, 2.0, 4.0, 6.0]);
        assert_eq!(batch_buckets(8), vec![1.0, 2.0, 4.0, 8.0]);
    }
}
