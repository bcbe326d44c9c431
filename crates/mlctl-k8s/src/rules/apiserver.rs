//! Checks the API server makes that JSON Schemas cannot express: name and label syntax,
//! selectors that must select their own template, unique container and port names, port
//! name syntax, extended resources (limits equal to requests, whole numbers) and the quota
//! keys that exist for extended resources.

use std::collections::HashMap;

use mlctl_core::path::FieldPath;
use mlctl_core::yaml::Node;

use super::{Ctx, Emitter};
use crate::manifest::{Object, is_extended_resource, is_gpu_resource, string_map};

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Kinds whose names must be DNS-1035 labels (they become DNS names on their own).
fn needs_label_name(obj: &Object<'_>) -> Option<&'static str> {
    match (obj.group(), obj.kind) {
        ("", "Service") => Some(
            "DNS-1035 label (lowercase letters, digits and `-`, starting with a letter, at most 63 characters)",
        ),
        ("", "Namespace") => {
            Some("DNS-1123 label (lowercase letters, digits and `-`, at most 63 characters)")
        }
        _ => None,
    }
}

/// `metadata.name` syntax.
pub fn invalid_name(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        if obj.name.is_empty() || obj.name.contains("{{") {
            continue;
        }
        let path = FieldPath::parse("metadata.name");
        let suggestion = suggest_name(obj.name);
        let hint = Some(
            if suggestion != obj.name
                && (obj.kind != "Service"
                    || suggestion.starts_with(|c: char| c.is_ascii_lowercase()))
            {
                format!("use lowercase letters, digits and `-` (e.g. `{suggestion}`)")
            } else {
                "use lowercase letters, digits and `-`, starting with a letter".to_string()
            },
        );
        if let Some(what) = needs_label_name(obj) {
            let starts_ok =
                obj.kind != "Service" || obj.name.starts_with(|c: char| c.is_ascii_lowercase());
            if !is_dns_label(obj.name) || !starts_ok {
                e.report(
                    obj,
                    path,
                    format!(
                        "`{}` is not a valid {} name: it must be a {what}",
                        obj.name, obj.kind
                    ),
                    hint,
                );
            }
        } else if !is_dns_subdomain(obj.name) {
            e.report(
                obj,
                path,
                format!(
                    "`{}` is not a valid name: it must be a DNS-1123 subdomain (lowercase letters, digits, `-` and `.`, at most 253 characters)",
                    obj.name
                ),
                hint,
            );
        }
    }
}

fn suggest_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_matches('-').to_string();
    if s.is_empty() { "name".into() } else { s }
}

fn label_key_ok(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(is_dns_subdomain) && label_value_ok(name) && !name.is_empty()
}

fn label_value_ok(v: &str) -> bool {
    v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && v.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && v.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

/// Label keys and values on objects and pod templates.
pub fn invalid_label(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let mut places = vec![FieldPath::parse("metadata.labels")];
        for pod in obj.pod_templates() {
            let mut p = pod.path.clone();
            p.pop();
            places.push(p.key("metadata").key("labels"));
        }
        for place in places {
            let Some(map) = obj.node.at(&place).and_then(Node::as_map) else {
                continue;
            };
            for entry in map {
                let path = place.key(entry.key.clone());
                if !label_key_ok(&entry.key) {
                    e.report(
                        obj,
                        path.clone(),
                        format!("`{}` is not a valid label key", entry.key),
                        Some("a label key is an optional DNS subdomain prefix and `/`, then at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit".to_string()),
                    );
                }
                let value = entry.value.scalar_text();
                match value {
                    Some(v) if !v.contains("{{") && !label_value_ok(&v) => e.report(
                        obj,
                        path,
                        format!("`{v}` is not a valid label value"),
                        Some("at most 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit".to_string()),
                    ),
                    _ => {}
                }
            }
        }
    }
}

/// Workload selectors must select their own template.
pub fn selector_mismatch(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let applies = matches!(
            (obj.group(), obj.kind),
            (
                "apps",
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
            )
        ) || (obj.is("batch", "Job")
            && obj
                .at("spec.manualSelector")
                .and_then(|n| n.scalar_text())
                .as_deref()
                == Some("true"));
        if !applies {
            continue;
        }
        let Some(selector) = obj.at("spec.selector") else {
            continue;
        };
        let Some(pod) = obj.pod_templates().iter().next() else {
            continue;
        };
        let empty = string_map(selector.get("matchLabels")).is_empty()
            && selector
                .get("matchExpressions")
                .and_then(Node::as_seq)
                .is_none_or(<[_]>::is_empty);
        if empty {
            e.report(
                obj,
                FieldPath::parse("spec.selector"),
                format!("an empty selector is invalid for a {}", obj.kind),
                Some("select the template's labels with `matchLabels`".to_string()),
            );
        } else if !pod.selected_by(selector) {
            let labels: Vec<String> = pod
                .labels
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            e.report(
                obj,
                FieldPath::parse("spec.selector"),
                "selector does not match the template labels: the API server rejects the object",
                Some(format!(
                    "template labels are {{{}}}; make spec.selector.matchLabels a subset of them",
                    labels.join(", ")
                )),
            );
        }
    }
}

/// Container names are unique within a pod.
pub fn duplicate_container_name(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        for pod in obj.pod_templates() {
            let mut seen: HashMap<&str, FieldPath> = HashMap::new();
            for c in pod.containers() {
                let name = c.name();
                if name.is_empty() {
                    continue;
                }
                if let Some(first) = seen.get(name) {
                    e.report(
                        obj,
                        c.path.key("name"),
                        format!("container name `{name}` is already used by {first}"),
                        Some(
                            "container names (init containers included) must be unique in a pod"
                                .to_string(),
                        ),
                    );
                } else {
                    seen.insert(name, c.path.clone());
                }
            }
        }
    }
}

/// IANA service name: at most 15 characters, lowercase letters, digits and single `-`,
/// at least one letter.
fn iana_svc_name_problem(name: &str) -> Option<&'static str> {
    if name.len() > 15 {
        Some("longer than 15 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("not only lowercase letters, digits and `-`")
    } else if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        Some("without a letter")
    } else if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        Some("starting or ending with `-`, or with `--`")
    } else {
        None
    }
}

/// Container and Service port names.
pub fn invalid_port_name(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        for pod in obj.pod_templates() {
            let mut seen: HashMap<&str, FieldPath> = HashMap::new();
            for c in pod.containers() {
                for (i, _, name) in c.ports() {
                    let Some(name) = name else { continue };
                    let path = c.path.key("ports").index(i).key("name");
                    if let Some(problem) = iana_svc_name_problem(name) {
                        e.report(
                            obj,
                            path.clone(),
                            format!("port name `{name}` is invalid: {problem}"),
                            Some("a port name is an IANA service name: at most 15 lowercase letters, digits and `-`, with at least one letter".to_string()),
                        );
                    }
                    if let Some(first) = seen.get(name) {
                        e.report(
                            obj,
                            path,
                            format!("port name `{name}` is already used by {first}"),
                            Some(
                                "port names must be unique across the containers of a pod"
                                    .to_string(),
                            ),
                        );
                    } else {
                        seen.insert(name, path);
                    }
                }
            }
        }
        if obj.is("", "Service") {
            let ports = obj
                .at("spec.ports")
                .and_then(Node::as_seq)
                .unwrap_or_default();
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for (i, p) in ports.iter().enumerate() {
                let path = FieldPath::parse("spec.ports").index(i);
                match p.get("name").and_then(Node::as_str) {
                    None if ports.len() > 1 => e.report(
                        obj,
                        path.clone(),
                        "a Service with more than one port must name every port",
                        Some("add `name:` (e.g. `http`, `grpc`, `metrics`)".to_string()),
                    ),
                    None => {}
                    Some(name) => {
                        if !is_dns_label(name) {
                            e.report(
                                obj,
                                path.key("name"),
                                format!("Service port name `{name}` is not a DNS-1123 label"),
                                Some("use lowercase letters, digits and `-`".to_string()),
                            );
                        }
                        if let Some(first) = seen.insert(name, i) {
                            e.report(
                                obj,
                                path.key("name"),
                                format!("Service port name `{name}` is already used by spec.ports[{first}]"),
                                None,
                            );
                        }
                    }
                }
                if let Some(target) = p.get("targetPort").and_then(Node::as_str)
                    && target.parse::<u32>().is_err()
                    && let Some(problem) = iana_svc_name_problem(target)
                {
                    e.report(
                        obj,
                        path.key("targetPort"),
                        format!("targetPort `{target}` is not a valid port name: {problem}"),
                        None,
                    );
                }
            }
        }
    }
}

/// Extended resources: limits set, equal to requests, whole numbers.
pub fn extended_resource_limits(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        for c in obj.containers() {
            let mut names: Vec<&str> = c.resource_names("requests");
            names.extend(c.resource_names("limits"));
            names.sort_unstable();
            names.dedup();
            for name in names.into_iter().filter(|n| is_extended_resource(n)) {
                let request = c.resource("requests", name);
                let limit = c.resource("limits", name);
                let kind = if is_gpu_resource(name) {
                    "GPUs"
                } else {
                    "extended resources"
                };
                match (&request, &limit) {
                    (Some((_, rpath)), None) => e.report(
                        obj,
                        rpath.clone(),
                        format!("`{name}` is requested without a limit: the API server rejects the pod (limits must be set for {kind}, which are never overcommitted)"),
                        Some(format!("set `limits.{name}` to the same value (or set only the limit: the request defaults to it)")),
                    ),
                    (Some((r, rpath)), Some((l, _))) if r.milli() != l.milli() => e.report(
                        obj,
                        rpath.clone(),
                        format!("`{name}` request {} differs from its limit {}: {kind} must have requests equal to limits", r.as_str(), l.as_str()),
                        Some("set the same value in requests and limits, or only the limit".to_string()),
                    ),
                    _ => {}
                }
                for (q, path) in [request, limit].into_iter().flatten() {
                    if !q.is_whole() {
                        e.report(
                            obj,
                            path,
                            format!("`{name}: {}` is not a whole number: devices cannot be shared by fractions", q.as_str()),
                            Some("request whole devices; share GPUs with MIG profiles or time-slicing in the device plugin".to_string()),
                        );
                    }
                }
            }
        }
    }
}

/// ResourceQuota keys for extended resources.
pub fn quota_extended_resource(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.of_kind("", "ResourceQuota") {
        let Some(hard) = obj.at("spec.hard").and_then(Node::as_map) else {
            continue;
        };
        for entry in hard {
            let key = entry.key.as_str();
            let path = FieldPath::parse("spec.hard").key(key);
            if let Some(resource) = key.strip_prefix("limits.")
                && is_extended_resource(resource)
            {
                e.report(
                    obj,
                    path,
                    format!("`{key}` is accepted but never enforced: quota tracks extended resources only as `requests.{resource}`"),
                    Some(format!("remove `{key}`; `requests.{resource}` already caps {resource} (requests always equal limits for it)")),
                );
            } else if is_extended_resource(key) {
                e.report(
                    obj,
                    path,
                    format!("`{key}` is accepted but never enforced: quota tracks extended resources only as `requests.{key}`"),
                    Some(format!("write `requests.{key}`")),
                );
            }
        }
    }
}
