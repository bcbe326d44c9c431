//! Monitoring and serving: PromQL `histogram_quantile` without `sum by (le)` (in
//! PrometheusRules and in Grafana dashboards), Grafana dashboards provisioned in the HTTP API
//! wrapper or with panel types Grafana no longer ships, and KServe canaries in raw deployment
//! mode.

use mlctl_core::path::FieldPath;
use mlctl_core::yaml::Node;

use super::{Ctx, Emitter};
use crate::manifest::Object;

/// What is wrong with one `histogram_quantile(...)` call, if anything.
fn histogram_quantile_problem(expr: &str) -> Option<&'static str> {
    let mut rest = expr;
    while let Some(at) = rest.find("histogram_quantile") {
        let after = &rest[at + "histogram_quantile".len()..];
        let open = after.find('(')?;
        let args = balanced(&after[open..]);
        rest = &after[open + args.len().max(1)..];
        // classic histograms only: native histograms have no `le` label
        if !args.contains("_bucket") {
            continue;
        }
        let rated = ["rate(", "irate(", "increase(", "rate (", "increase ("]
            .iter()
            .any(|f| args.contains(f));
        if !rated {
            continue;
        }
        let clauses = grouping_clauses(args);
        let aggregated = ["sum", "avg", "max", "min", "count"]
            .iter()
            .any(|a| contains_word(args, a));
        if clauses.is_empty() {
            if aggregated {
                return Some(
                    "the aggregation drops the `le` label, so there are no buckets left and the result is empty",
                );
            }
            return Some(
                "without `sum by (le)` it computes one quantile per series (per pod and label set), not the quantile of the service",
            );
        }
        let keeps_le = clauses.iter().any(|(without, labels)| {
            let has_le = labels.contains(&"le");
            if *without { !has_le } else { has_le }
        });
        if !keeps_le {
            return Some(
                "the aggregation drops the `le` label, so there are no buckets left and the result is empty",
            );
        }
    }
    None
}

/// The text from an opening parenthesis to its matching close, inclusive.
fn balanced(s: &str) -> &str {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[..=i];
                }
            }
            _ => {}
        }
    }
    s
}

fn contains_word(s: &str, word: &str) -> bool {
    s.match_indices(word).any(|(i, _)| {
        let before = s[..i].chars().next_back();
        let after = s[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// `by (...)` / `without (...)` clauses: (is_without, labels).
fn grouping_clauses(s: &str) -> Vec<(bool, Vec<&str>)> {
    let mut out = Vec::new();
    for word in ["by", "without"] {
        for (i, _) in s.match_indices(word) {
            let before = s[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let tail = s[i + word.len()..].trim_start();
            if !tail.starts_with('(') {
                continue;
            }
            let inner = balanced(tail);
            let labels = inner
                .trim_start_matches('(')
                .trim_end_matches(')')
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            out.push((word == "without", labels));
        }
    }
    out
}

fn report_promql(e: &mut Emitter<'_>, obj: &Object<'_>, path: FieldPath, expr: &str) {
    if let Some(problem) = histogram_quantile_problem(expr) {
        e.report(
            obj,
            path,
            format!("histogram_quantile over rate() of buckets: {problem}"),
            Some("aggregate the bucket rates first: `histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))` (add other labels to `by` to keep them)".to_string()),
        );
    }
}

/// Grafana dashboards in ConfigMaps: (data key, parsed JSON).
fn dashboards<'a>(obj: &Object<'a>) -> Vec<(&'a str, serde_json::Value)> {
    if !obj.is("", "ConfigMap") {
        return Vec::new();
    }
    let labelled = obj
        .labels()
        .iter()
        .any(|(k, _)| k.contains("grafana_dashboard") || k.contains("grafana-dashboard"));
    obj.at("data")
        .and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .filter(|e| labelled || e.key.ends_with(".json"))
        .filter_map(|e| {
            let v: serde_json::Value = serde_json::from_str(e.value.as_str()?).ok()?;
            let looks = v.get("panels").is_some()
                || v.get("dashboard").is_some()
                || v.get("rows").is_some();
            looks.then_some((e.key.as_str(), v))
        })
        .collect()
}

fn panels(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    for key in ["panels", "rows"] {
        if let Some(items) = v.get(key).and_then(serde_json::Value::as_array) {
            for p in items {
                out.push(p.clone());
                panels(p, out);
            }
        }
    }
}

/// PromQL `histogram_quantile` pitfalls.
pub fn histogram_quantile(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.of_kind("monitoring.coreos.com", "PrometheusRule") {
        for (g, group) in obj
            .at("spec.groups")
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            for (r, rule) in group.seq("rules").iter().enumerate() {
                if let Some(expr) = rule.get("expr").and_then(|n| n.scalar_text()) {
                    let path = FieldPath::parse("spec.groups")
                        .index(g)
                        .key("rules")
                        .index(r)
                        .key("expr");
                    report_promql(e, obj, path, &expr);
                }
            }
        }
    }
    for obj in ctx.objects {
        for (key, dash) in dashboards(obj) {
            let root = dash.get("dashboard").unwrap_or(&dash);
            let mut all = Vec::new();
            panels(root, &mut all);
            let mut seen = Vec::new();
            for p in &all {
                for t in p
                    .get("targets")
                    .and_then(serde_json::Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(expr) = t.get("expr").and_then(serde_json::Value::as_str)
                        && !seen.contains(&expr.to_string())
                    {
                        seen.push(expr.to_string());
                        report_promql(e, obj, FieldPath::root().key("data").key(key), expr);
                    }
                }
            }
        }
    }
}

/// Dashboards in the HTTP API wrapper.
pub fn grafana_dashboard_wrapper(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        for (key, dash) in dashboards(obj) {
            if dash
                .get("dashboard")
                .is_some_and(serde_json::Value::is_object)
                && dash.get("panels").is_none()
                && dash.get("title").is_none()
            {
                e.report(
                    obj,
                    FieldPath::root().key("data").key(key),
                    "the dashboard is wrapped in {\"dashboard\": ...}, the format of Grafana's HTTP API: file provisioning (and the dashboard sidecar) reads the file itself as the dashboard and fails with \"Dashboard title cannot be empty\"",
                    Some("put the content of `dashboard` at the top level of the JSON (drop the wrapper and fields such as `overwrite`/`folderId`)".to_string()),
                );
            }
        }
    }
}

const REMOVED_PANELS: &[(&str, &str)] = &[
    ("graph", "timeseries"),
    ("singlestat", "stat"),
    ("table-old", "table"),
    ("grafana-piechart-panel", "piechart"),
    ("grafana-worldmap-panel", "geomap"),
];

/// Panel types Grafana no longer ships.
pub fn grafana_removed_panel(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        for (key, dash) in dashboards(obj) {
            let root = dash.get("dashboard").unwrap_or(&dash);
            let mut all = Vec::new();
            panels(root, &mut all);
            let mut found: Vec<(&str, &str)> = Vec::new();
            for p in &all {
                let ty = p
                    .get("type")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                if let Some(hit) = REMOVED_PANELS.iter().find(|(old, _)| *old == ty)
                    && !found.contains(hit)
                {
                    found.push(*hit);
                }
            }
            for (old, new) in found {
                e.report(
                    obj,
                    FieldPath::root().key("data").key(key),
                    format!("panel type `{old}` is an AngularJS panel, removed with Angular support in Grafana 12: it renders as an error unless Grafana migrates it on load"),
                    Some(format!("use `{new}` (its field config differs: re-create the panel or export it from a Grafana that migrated it)")),
                );
            }
        }
    }
}

/// KServe canary split in raw deployment mode.
pub fn kserve_canary_raw(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.of_kind("serving.kserve.io", "InferenceService") {
        let mode = obj
            .annotation("serving.kserve.io/deploymentMode")
            .unwrap_or("");
        if !matches!(mode, "RawDeployment" | "Standard") {
            continue;
        }
        for component in ["predictor", "transformer", "explainer"] {
            let path = FieldPath::parse(&format!("spec.{component}.canaryTrafficPercent"));
            if obj.node.at(&path).is_some() {
                e.report(
                    obj,
                    path,
                    format!("canaryTrafficPercent needs Knative revisions (Serverless mode); with `deploymentMode: {mode}` KServe ignores it and the new version gets all traffic at once"),
                    Some("use Serverless mode for canaries, or split traffic with two InferenceServices behind a Gateway API HTTPRoute / Istio VirtualService".to_string()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantile_cases() {
        assert!(
            histogram_quantile_problem("histogram_quantile(0.95, rate(x_bucket[5m])) > 1")
                .is_some()
        );
        assert!(
            histogram_quantile_problem(
                "histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))"
            )
            .is_none()
        );
        assert!(
            histogram_quantile_problem(
                "histogram_quantile(0.95, sum(rate(x_bucket[5m])) by (le, job))"
            )
            .is_none()
        );
        assert!(
            histogram_quantile_problem(
                "histogram_quantile(0.95, sum by (job) (rate(x_bucket[5m])))"
            )
            .is_some()
        );
        assert!(
            histogram_quantile_problem(
                "histogram_quantile(0.95, sum without (pod) (rate(x_bucket[5m])))"
            )
            .is_none()
        );
        assert!(
            histogram_quantile_problem("histogram_quantile(0.9, rate(native_hist[5m]))").is_none()
        );
    }
}
