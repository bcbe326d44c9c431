//! Security: the Pod Security Standards (baseline and restricted, as errors where a
//! Namespace of the checked documents enforces them), secrets written as literal env values,
//! and unauthenticated Dask/Jupyter/Ray endpoints published through a LoadBalancer or
//! NodePort.

use mlctl_core::diag::Severity;
use mlctl_core::path::FieldPath;
use mlctl_core::yaml::Node;

use super::{Ctx, Emitter};
use crate::manifest::{Object, PodTemplate, map_selector_matches, string_map};

const BASELINE_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn truthy(n: Option<&Node>) -> bool {
    n.and_then(|n| n.scalar_text()).as_deref() == Some("true")
}

/// The PSA level a Namespace of the checked documents enforces for `obj`.
fn enforced_level(ctx: &Ctx<'_>, obj: &Object<'_>) -> Option<(String, &'static str)> {
    let ns = obj.namespace?;
    ctx.of_kind("", "Namespace")
        .find(|n| n.name == ns)
        .and_then(|n| {
            n.labels()
                .into_iter()
                .find(|(k, _)| *k == "pod-security.kubernetes.io/enforce")
                .map(|(_, v)| v)
        })
        .and_then(|v| match v {
            "baseline" => Some((ns.to_string(), "baseline")),
            "restricted" => Some((ns.to_string(), "restricted")),
            _ => None,
        })
}

fn baseline_violations(pod: &PodTemplate<'_>) -> Vec<(FieldPath, String)> {
    let mut out = Vec::new();
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if truthy(pod.get(field)) {
            out.push((
                pod.path.key(field),
                format!("`{field}: true` shares the node's namespaces"),
            ));
        }
    }
    for (i, v) in pod.spec.seq("volumes").iter().enumerate() {
        if v.get("hostPath").is_some() {
            out.push((
                pod.path.key("volumes").index(i),
                "a hostPath volume exposes the node's filesystem".to_string(),
            ));
        }
    }
    for c in pod.containers() {
        let sc = c.node.get("securityContext");
        if truthy(sc.and_then(|s| s.get("privileged"))) {
            out.push((
                c.path.key("securityContext").key("privileged"),
                format!("container `{}` is privileged", c.name()),
            ));
        }
        let adds = sc
            .and_then(|s| s.at(&FieldPath::parse("capabilities.add")))
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (j, cap) in adds.iter().enumerate() {
            if let Some(cap) = cap.as_str()
                && !BASELINE_CAPS.contains(&cap.trim_start_matches("CAP_"))
            {
                out.push((
                    c.path
                        .key("securityContext")
                        .key("capabilities")
                        .key("add")
                        .index(j),
                    format!("container `{}` adds capability {cap}", c.name()),
                ));
            }
        }
        for (j, p) in c.node.seq("ports").iter().enumerate() {
            if p.get("hostPort")
                .and_then(|h| h.scalar_text())
                .is_some_and(|h| h != "0")
            {
                out.push((
                    c.path.key("ports").index(j).key("hostPort"),
                    format!("container `{}` uses a hostPort", c.name()),
                ));
            }
        }
    }
    out
}

fn restricted_violations(pod: &PodTemplate<'_>) -> Vec<(FieldPath, String)> {
    let mut out = Vec::new();
    for (i, v) in pod.spec.seq("volumes").iter().enumerate() {
        if let Some(kind) = v
            .as_map()
            .and_then(|m| m.iter().find(|e| e.key != "name").map(|e| e.key.as_str()))
            && !RESTRICTED_VOLUMES.contains(&kind)
            && kind != "hostPath"
        {
            out.push((
                pod.path.key("volumes").index(i),
                format!("volume type `{kind}` is not allowed"),
            ));
        }
    }
    let pod_sc = pod.get("securityContext");
    let pod_non_root = truthy(pod_sc.and_then(|s| s.get("runAsNonRoot")));
    let pod_seccomp = pod_sc
        .and_then(|s| s.at(&FieldPath::parse("seccompProfile.type")))
        .and_then(Node::as_str);
    let mut missing: Vec<String> = Vec::new();
    for c in pod.containers() {
        let sc = c.node.get("securityContext");
        let name = c.name();
        let no_escalation = sc
            .and_then(|s| s.get("allowPrivilegeEscalation"))
            .and_then(|n| n.scalar_text())
            .is_some_and(|v| v == "false");
        if !no_escalation {
            missing.push(format!("`{name}`: allowPrivilegeEscalation: false"));
        }
        if !(pod_non_root || truthy(sc.and_then(|s| s.get("runAsNonRoot")))) {
            missing.push(format!("`{name}`: runAsNonRoot: true"));
        }
        let seccomp = sc
            .and_then(|s| s.at(&FieldPath::parse("seccompProfile.type")))
            .and_then(Node::as_str)
            .or(pod_seccomp);
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            missing.push(format!("`{name}`: seccompProfile.type: RuntimeDefault"));
        }
        let drops_all = sc
            .and_then(|s| s.at(&FieldPath::parse("capabilities.drop")))
            .and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .any(|d| d.as_str() == Some("ALL"));
        if !drops_all {
            missing.push(format!("`{name}`: capabilities.drop: [ALL]"));
        }
    }
    if !missing.is_empty() {
        out.push((pod.path.clone(), format!("missing {}", missing.join(", "))));
    }
    out
}

fn pss(ctx: &Ctx<'_>, e: &mut Emitter<'_>, level: &'static str) {
    let Some(rule) = e.rule else { return };
    for obj in ctx.objects {
        let pods = obj.pod_templates();
        if pods.is_empty() {
            continue;
        }
        // KServe/Seldon inject their own containers; the pods they create are judged there
        let enforced = enforced_level(ctx, obj);
        for pod in pods {
            let violations = if level == "baseline" {
                baseline_violations(pod)
            } else {
                restricted_violations(pod)
            };
            for (path, what) in violations {
                let enforcing = enforced
                    .as_ref()
                    .is_some_and(|(_, l)| *l == "restricted" || *l == level);
                let (severity, consequence) = match &enforced {
                    Some((ns, _)) if enforcing => (
                        Severity::Error,
                        format!(
                            "namespace {ns} enforces `{}`, so the API server rejects these pods",
                            enforced.as_ref().map_or(level, |(_, l)| l)
                        ),
                    ),
                    _ => (
                        rule.severity,
                        format!("a namespace that enforces `{level}` rejects these pods"),
                    ),
                };
                e.report_as(
                    rule,
                    severity,
                    obj,
                    path,
                    format!("Pod Security `{level}`: {what}; {consequence}"),
                    Some(if level == "baseline" {
                        "drop the host access or privilege, or run the workload in a namespace labelled for it".to_string()
                    } else {
                        "set them in the container securityContext (runAsNonRoot can go in the pod securityContext)".to_string()
                    }),
                );
            }
        }
    }
}

/// Pod Security Standard `baseline`.
pub fn pss_baseline(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    pss(ctx, e, "baseline");
}

/// Pod Security Standard `restricted`.
pub fn pss_restricted(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    pss(ctx, e, "restricted");
}

fn secret_like(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    let hit = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| n.contains(w));
    let reference = [
        "_FILE",
        "_PATH",
        "_NAME",
        "_REF",
        "_DIR",
        "_URL",
        "_ENDPOINT",
    ]
    .iter()
    .any(|s| n.ends_with(s));
    hit && !reference
}

/// Secrets written as literal env values.
pub fn secret_in_env(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        for c in obj.containers() {
            for (i, name, env) in c.env() {
                let Some(value) = env.get("value").and_then(|v| v.scalar_text()) else {
                    continue;
                };
                if !secret_like(name)
                    || value.is_empty()
                    || value.contains("{{")
                    || value.contains("$(")
                {
                    continue;
                }
                e.report(
                    obj,
                    c.path.key("env").index(i).key("value"),
                    format!("`{name}` holds a secret as a literal value: it is stored in plain text in the manifest, in etcd and in `kubectl get -o yaml` output"),
                    Some(format!("put it in a Secret and use `valueFrom: {{secretKeyRef: {{name: ..., key: ...}}}}` for `{name}`")),
                );
            }
        }
    }
}

/// (port, what listens there) of servers that have no authentication by default.
fn unauthenticated(image: &str) -> &'static [(i64, &'static str)] {
    let i = image.to_ascii_lowercase();
    if i.contains("dask") {
        &[
            (8786, "the Dask scheduler (runs any code a client sends)"),
            (8787, "the Dask dashboard"),
        ]
    } else if i.contains("jupyter") || i.contains("notebook") {
        &[(8888, "Jupyter")]
    } else if i.contains("rayproject") || i.contains("/ray:") || i.starts_with("ray:") {
        &[
            (8265, "the Ray dashboard and job API (runs submitted jobs)"),
            (10001, "the Ray client server"),
        ]
    } else {
        &[]
    }
}

fn public_service(spec: &Node, annotations: &[(&str, &str)]) -> Option<String> {
    let ty = spec.get("type").and_then(Node::as_str)?;
    if !matches!(ty, "LoadBalancer" | "NodePort") {
        return None;
    }
    let internal = annotations
        .iter()
        .any(|(k, v)| k.contains("internal") && matches!(*v, "true" | "Internal" | "internal"));
    let restricted = spec
        .get("loadBalancerSourceRanges")
        .and_then(Node::as_seq)
        .is_some_and(|s| !s.is_empty());
    (!internal && !restricted).then(|| ty.to_string())
}

/// Dask/Jupyter/Ray endpoints published without authentication.
pub fn exposed_dashboard(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        // Dask operator: the scheduler Service is declared in the cluster spec
        let dask_paths = match (obj.group(), obj.kind) {
            ("kubernetes.dask.org", "DaskCluster") => vec!["spec.scheduler.service"],
            ("kubernetes.dask.org", "DaskJob") => vec!["spec.cluster.spec.scheduler.service"],
            _ => Vec::new(),
        };
        for p in dask_paths {
            let Some(svc) = obj.at(p) else { continue };
            let Some(ty) = public_service(svc, &[]) else {
                continue;
            };
            e.report(
                obj,
                FieldPath::parse(p).key("type"),
                format!("the Dask scheduler is published through a {ty}: the scheduler (8786) runs any code a client sends and the dashboard (8787) has no login, for anyone who can reach the address"),
                Some("use `type: ClusterIP` and reach it with `kubectl port-forward`, or put an authenticating proxy in front; enable Dask TLS/auth if it must be public".to_string()),
            );
        }
        if !obj.is("", "Service") {
            continue;
        }
        let Some(spec) = obj.node.get("spec") else {
            continue;
        };
        let annotations = string_map(obj.at("metadata.annotations"));
        let Some(ty) = public_service(spec, &annotations) else {
            continue;
        };
        let selector = string_map(spec.get("selector"));
        if selector.is_empty() {
            continue;
        }
        let servers: Vec<(i64, &str)> = ctx
            .objects
            .iter()
            .filter(|o| o.same_namespace(obj))
            .flat_map(|o| o.pod_templates())
            .filter(|p| map_selector_matches(&selector, &p.labels))
            .flat_map(|p| p.containers())
            .flat_map(|c| unauthenticated(c.image()).iter().copied())
            .collect();
        for (i, port) in spec.seq("ports").iter().enumerate() {
            let target = port
                .get("targetPort")
                .or_else(|| port.get("port"))
                .and_then(|n| n.scalar_text())
                .and_then(|t| t.parse::<i64>().ok());
            if let Some((_, what)) = servers.iter().find(|(p, _)| Some(*p) == target) {
                e.report(
                    obj,
                    FieldPath::parse("spec.ports").index(i),
                    format!("{what} is published through a {ty} without authentication"),
                    Some("use `type: ClusterIP` with `kubectl port-forward`, restrict `loadBalancerSourceRanges`, or put an authenticating proxy in front".to_string()),
                );
            }
        }
    }
}
