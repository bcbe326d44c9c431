//! References between documents: ServiceMonitors and the Services they scrape, HPA/VPA
//! targets and their containers, NetworkPolicy selectors, and namespace selectors on a
//! `name` label.
//!
//! A reference is only judged when the checked documents could contain its target: a
//! ServiceMonitor checked alone is not blamed for Services it cannot see.

use mlctl_core::diag::did_you_mean;
use mlctl_core::path::FieldPath;
use mlctl_core::yaml::Node;

use super::{Ctx, Emitter, list};
use crate::manifest::{Object, selector_matches, string_map};

fn monitored_services<'a>(
    ctx: &Ctx<'a>,
    sm: &Object<'a>,
) -> (Vec<&'a Object<'a>>, Vec<&'a Object<'a>>) {
    let ns_sel = sm.at("spec.namespaceSelector");
    let any = ns_sel
        .and_then(|n| n.get("any"))
        .and_then(|n| n.scalar_text())
        .as_deref()
        == Some("true");
    let names: Vec<String> = ns_sel
        .and_then(|n| n.get("matchNames"))
        .and_then(Node::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    let candidates: Vec<&Object<'_>> = ctx
        .of_kind("", "Service")
        .filter(|s| {
            if any {
                true
            } else if !names.is_empty() {
                s.namespace.is_none_or(|ns| names.iter().any(|n| n == ns))
            } else {
                s.same_namespace(sm)
            }
        })
        .collect();
    let selected = match sm.at("spec.selector") {
        Some(sel) => candidates
            .iter()
            .copied()
            .filter(|s| selector_matches(sel, &s.labels()))
            .collect(),
        None => Vec::new(),
    };
    (candidates, selected)
}

fn service_port_names<'a>(svc: &Object<'a>) -> Vec<&'a str> {
    svc.at("spec.ports")
        .and_then(Node::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.get("name").and_then(Node::as_str))
        .collect()
}

/// ServiceMonitor endpoints naming ports the selected Services lack.
pub fn servicemonitor_port(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for sm in ctx.of_kind("monitoring.coreos.com", "ServiceMonitor") {
        let (_, selected) = monitored_services(ctx, sm);
        if selected.is_empty() {
            continue;
        }
        let endpoints = sm
            .at("spec.endpoints")
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (i, ep) in endpoints.iter().enumerate() {
            let Some(port) = ep.get("port").and_then(Node::as_str) else {
                continue;
            };
            if selected
                .iter()
                .any(|s| service_port_names(s).contains(&port))
            {
                continue;
            }
            let mut names: Vec<&str> = selected
                .iter()
                .flat_map(|s| service_port_names(s))
                .collect();
            names.sort_unstable();
            names.dedup();
            let services: Vec<String> = selected.iter().map(|s| s.name.to_string()).collect();
            e.report(
                sm,
                FieldPath::parse("spec.endpoints").index(i).key("port"),
                format!(
                    "port `{port}` is not a port name of the selected Service{} {}: Prometheus scrapes nothing",
                    if services.len() == 1 { "" } else { "s" },
                    list(&services)
                ),
                Some(match did_you_mean(port, names.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!(
                        "their ports are {}; add a named `{port}` port (the server's metrics port) to the Service",
                        list(&names)
                    ),
                }),
            );
        }
    }
}

/// ServiceMonitors selecting none of the Services that could be theirs.
pub fn servicemonitor_selector(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for sm in ctx.of_kind("monitoring.coreos.com", "ServiceMonitor") {
        let (candidates, selected) = monitored_services(ctx, sm);
        let Some(sel) = sm.at("spec.selector") else {
            continue;
        };
        if candidates.is_empty() || !selected.is_empty() {
            continue;
        }
        // Judge only what the documents can tell: a Service whose pod selector matches
        // (pod labels used instead of Service labels), or Services that use the selector's
        // label keys with other values. Otherwise the target is likely defined elsewhere.
        let keys: Vec<&str> = string_map(sel.get("matchLabels"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let pod_labels_used = candidates.iter().find(|s| {
            let pod_sel = string_map(s.at("spec.selector"));
            !pod_sel.is_empty() && selector_matches(sel, &pod_sel)
        });
        let keys_used = candidates
            .iter()
            .any(|s| s.labels().iter().any(|(k, _)| keys.contains(k)));
        let message = match pod_labels_used {
            Some(svc) => format!(
                "selects no Service: it matches Service labels (metadata.labels), and Service `{}` has the selected labels only in its pod selector",
                svc.name
            ),
            None if keys_used => format!(
                "selects none of the Services {} of the checked documents",
                list(&candidates.iter().map(|s| s.name).collect::<Vec<_>>())
            ),
            None => continue,
        };
        e.report(
            sm,
            FieldPath::parse("spec.selector"),
            message,
            Some(
                "give the Service to scrape metadata.labels that spec.selector matches".to_string(),
            ),
        );
    }
}

struct ScaleRef<'a> {
    path: FieldPath,
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
}

fn scale_ref<'a>(obj: &Object<'a>) -> Option<ScaleRef<'a>> {
    let path = match (obj.group(), obj.kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => "spec.scaleTargetRef",
        ("autoscaling.k8s.io", "VerticalPodAutoscaler") => "spec.targetRef",
        _ => return None,
    };
    let node = obj.at(path)?;
    Some(ScaleRef {
        path: FieldPath::parse(path),
        api_version: node.get("apiVersion").and_then(Node::as_str).unwrap_or(""),
        kind: node.get("kind")?.as_str()?,
        name: node.get("name")?.as_str()?,
    })
}

fn ref_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// The object an HPA or VPA scales, when it is among the checked documents.
pub(crate) fn scale_target<'a>(ctx: &Ctx<'a>, obj: &Object<'a>) -> Option<&'a Object<'a>> {
    let r = scale_ref(obj)?;
    ctx.objects.iter().find(|o| {
        o.kind == r.kind
            && o.name == r.name
            && o.same_namespace(obj)
            && (r.api_version.is_empty() || o.group() == ref_group(r.api_version))
    })
}

/// HPA/VPA targets missing from documents that hold other objects of that kind.
pub fn scale_target_not_found(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let Some(r) = scale_ref(obj) else { continue };
        if scale_target(ctx, obj).is_some() {
            continue;
        }
        let same_kind: Vec<&str> = ctx
            .objects
            .iter()
            .filter(|o| o.kind == r.kind && o.same_namespace(obj) && !o.name.is_empty())
            .map(|o| o.name)
            .collect();
        if same_kind.is_empty() {
            continue;
        }
        e.report(
            obj,
            r.path.key("name"),
            format!(
                "targets {} `{}`, which is not among the checked documents (they have {} {})",
                r.kind,
                r.name,
                r.kind,
                list(&same_kind)
            ),
            Some(match did_you_mean(r.name, same_kind.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => "point the target at the workload to scale".to_string(),
            }),
        );
    }
}

/// Container names in HPA/VPA that the target does not have.
pub fn container_name_not_found(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let Some(target) = scale_target(ctx, obj) else {
            continue;
        };
        let names: Vec<&str> = target
            .containers()
            .iter()
            .filter(|c| !c.init && c.pod.is_some())
            .map(|c| c.name())
            .collect();
        if names.is_empty() {
            continue;
        }
        let mut refs: Vec<(FieldPath, &str)> = Vec::new();
        let policies = obj
            .at("spec.resourcePolicy.containerPolicies")
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (i, p) in policies.iter().enumerate() {
            if let Some(n) = p.get("containerName").and_then(Node::as_str) {
                refs.push((
                    FieldPath::parse("spec.resourcePolicy.containerPolicies")
                        .index(i)
                        .key("containerName"),
                    n,
                ));
            }
        }
        let metrics = obj
            .at("spec.metrics")
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (i, m) in metrics.iter().enumerate() {
            if let Some(n) = m
                .get("containerResource")
                .and_then(|c| c.get("container"))
                .and_then(Node::as_str)
            {
                refs.push((
                    FieldPath::parse("spec.metrics")
                        .index(i)
                        .key("containerResource")
                        .key("container"),
                    n,
                ));
            }
        }
        for (path, name) in refs {
            if name == "*" || names.contains(&name) {
                continue;
            }
            e.report(
                obj,
                path,
                format!(
                    "{} `{}` has no container `{name}` (its containers are {})",
                    target.kind,
                    target.name,
                    list(&names)
                ),
                Some(match did_you_mean(name, names.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => "name one of the target's containers, or `*`".to_string(),
                }),
            );
        }
    }
}

/// NetworkPolicies whose podSelector matches no pod of the checked documents.
pub fn networkpolicy_selects_nothing(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for np in ctx.of_kind("networking.k8s.io", "NetworkPolicy") {
        let Some(sel) = np.at("spec.podSelector") else {
            continue;
        };
        let empty = sel.as_map().is_none_or(|m| {
            m.iter().all(|e| match &e.value.value {
                mlctl_core::yaml::Value::Map(x) => x.is_empty(),
                mlctl_core::yaml::Value::Seq(x) => x.is_empty(),
                _ => false,
            })
        });
        if empty {
            continue;
        }
        let pods: Vec<_> = ctx
            .objects
            .iter()
            .filter(|o| o.same_namespace(np))
            .flat_map(|o| o.pod_templates())
            .collect();
        if pods.is_empty() || pods.iter().any(|p| p.selected_by(sel)) {
            continue;
        }
        // Only when the checked pods use the selector's label keys: otherwise the pods it
        // protects are most likely created elsewhere (by an operator, in another repository).
        let keys: Vec<&str> = string_map(sel.get("matchLabels"))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if !pods
            .iter()
            .any(|p| p.labels.iter().any(|(k, _)| keys.contains(k)))
        {
            continue;
        }
        e.report(
            np,
            FieldPath::parse("spec.podSelector"),
            format!(
                "selects no pod of the checked documents{}: the policy protects nothing",
                np.namespace
                    .map(|n| format!(" that could run in namespace {n}"))
                    .unwrap_or_default()
            ),
            Some(
                "match the labels of the pod templates to protect (spec.template.metadata.labels)"
                    .to_string(),
            ),
        );
    }
}

/// namespaceSelector on a `name` label that namespaces do not carry.
pub fn namespace_name_label(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    let namespace_has = |value: &str| {
        ctx.of_kind("", "Namespace")
            .any(|n| n.labels().contains(&("name", value)))
    };
    for np in ctx.of_kind("networking.k8s.io", "NetworkPolicy") {
        for dir in [("ingress", "from"), ("egress", "to")] {
            let rules = np
                .at(&format!("spec.{}", dir.0))
                .and_then(Node::as_seq)
                .unwrap_or_default();
            for (i, r) in rules.iter().enumerate() {
                let peers = r.seq(dir.1);
                for (j, peer) in peers.iter().enumerate() {
                    let Some(value) = peer
                        .at(&FieldPath::parse("namespaceSelector.matchLabels.name"))
                        .and_then(Node::as_str)
                    else {
                        continue;
                    };
                    if namespace_has(value) {
                        continue;
                    }
                    e.report(
                        np,
                        FieldPath::parse(&format!("spec.{}", dir.0))
                            .index(i)
                            .key(dir.1)
                            .index(j)
                            .key("namespaceSelector")
                            .key("matchLabels")
                            .key("name"),
                        format!(
                            "namespaces have no `name` label unless someone adds it: this selector matches no namespace, so the rule allows no traffic {} `{value}`",
                            if dir.0 == "ingress" { "from" } else { "to" }
                        ),
                        Some(format!("select `kubernetes.io/metadata.name: {value}`, which the API server sets on every namespace")),
                    );
                }
            }
        }
    }
}
