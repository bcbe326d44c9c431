//! Probes and Service target ports against the ports a container really listens on: its
//! declared `ports`, and the default ports of common model servers recognised by image
//! (TensorFlow Serving, Triton, MLServer, TorchServe, vLLM), with their port flags and
//! environment variables applied.

use std::collections::HashMap;

use mlctl_core::path::FieldPath;
use mlctl_core::yaml::{Node, Value};

use super::{Ctx, Emitter};
use crate::manifest::{Container, Object, PodTemplate, map_selector_matches, string_map};
use mlctl_core::diag::Severity;

/// A model server's listening ports.
struct Server {
    name: &'static str,
    images: &'static [&'static str],
    /// (default port, protocol, flag that changes it, env var that changes it)
    ports: &'static [(i64, &'static str, &'static str, &'static str)],
}

const SERVERS: &[Server] = &[
    Server {
        name: "TensorFlow Serving",
        images: &["tensorflow/serving", "tensorflow-serving"],
        ports: &[
            (8500, "gRPC", "--port", ""),
            (8501, "REST", "--rest_api_port", ""),
        ],
    },
    Server {
        name: "Triton Inference Server",
        images: &["tritonserver"],
        ports: &[
            (8000, "HTTP", "--http-port", ""),
            (8001, "gRPC", "--grpc-port", ""),
            (8002, "metrics", "--metrics-port", ""),
        ],
    },
    Server {
        name: "MLServer",
        images: &["seldonio/mlserver", "/mlserver:", "/mlserver"],
        ports: &[
            (8080, "HTTP", "", "MLSERVER_HTTP_PORT"),
            (8081, "gRPC", "", "MLSERVER_GRPC_PORT"),
            (8082, "metrics", "", "MLSERVER_METRICS_PORT"),
        ],
    },
    Server {
        name: "TorchServe",
        images: &["pytorch/torchserve", "torchserve"],
        ports: &[
            (8080, "inference", "", "TS_INFERENCE_ADDRESS"),
            (8081, "management", "", "TS_MANAGEMENT_ADDRESS"),
            (8082, "metrics", "", "TS_METRICS_ADDRESS"),
            (7070, "gRPC inference", "", ""),
            (7071, "gRPC management", "", ""),
        ],
    },
    Server {
        name: "vLLM",
        images: &["vllm/vllm-openai", "vllm-openai"],
        ports: &[(8000, "HTTP", "--port", "")],
    },
];

/// What a known server listens on: (port, protocol) pairs, and the server's name.
fn listening(c: &Container<'_>) -> Option<(&'static str, Vec<(i64, &'static str)>)> {
    let image = c.image().to_ascii_lowercase();
    let server = SERVERS
        .iter()
        .find(|s| s.images.iter().any(|i| image.contains(i)))?;
    let argv = c.argv();
    // a config file can move the ports where we cannot see: do not guess then
    if argv
        .iter()
        .any(|a| a.contains("--ts-config") || a.contains("--model-config-file-path"))
        && server.name == "TorchServe"
    {
        return None;
    }
    let mut out = Vec::new();
    for &(default, proto, flag, env) in server.ports {
        let mut port = default;
        if !flag.is_empty() {
            for (i, a) in argv.iter().enumerate() {
                for word in a.split_whitespace() {
                    let value = if let Some(v) = word.strip_prefix(&format!("{flag}=")) {
                        Some(v.to_string())
                    } else if word == flag {
                        argv.get(i + 1).cloned()
                    } else {
                        None
                    };
                    if let Some(v) = value {
                        match v.parse() {
                            Ok(p) => port = p,
                            Err(_) => return None, // $(VAR) or a template: unknown
                        }
                    }
                }
            }
        }
        if !env.is_empty() {
            if let Some(v) = c.env_value(env) {
                let tail = v.rsplit(':').next().unwrap_or(&v);
                match tail.parse() {
                    Ok(p) => port = p,
                    Err(_) => return None,
                }
            } else if c.env().iter().any(|(_, n, _)| *n == env) {
                return None; // from a ConfigMap or Secret
            }
        }
        out.push((port, proto));
    }
    Some((server.name, out))
}

fn describe(server: &str, ports: &[(i64, &str)]) -> String {
    let parts: Vec<String> = ports
        .iter()
        .map(|(p, proto)| format!("{p} ({proto})"))
        .collect();
    format!("{server} listens on {}", parts.join(", "))
}

enum Port<'a> {
    Number(i64),
    Name(&'a str),
}

fn port_of(node: &Node) -> Option<Port<'_>> {
    match &node.value {
        Value::Int(n) => Some(Port::Number(*n)),
        Value::Str(s) => match s.parse() {
            Ok(n) => Some(Port::Number(n)),
            Err(_) => Some(Port::Name(s)),
        },
        _ => None,
    }
}

/// Probes on ports the container does not expose or its server does not listen on.
pub fn probe_port(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        // KServe and Seldon inject and rewrite their own probes and ports
        if matches!(obj.group(), "serving.kserve.io") {
            continue;
        }
        for c in obj.containers().iter().filter(|c| c.pod.is_some()) {
            let declared = c.ports();
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                let Some(p) = c.node.get(probe) else { continue };
                for handler in ["httpGet", "tcpSocket", "grpc"] {
                    let Some(port_node) = p.get(handler).and_then(|h| h.get("port")) else {
                        continue;
                    };
                    let path = c.path.key(probe).key(handler).key("port");
                    match port_of(port_node) {
                        Some(Port::Name(name))
                            if !declared.iter().any(|(_, _, n)| *n == Some(name)) =>
                        {
                            e.report(
                                    obj,
                                    path,
                                    format!("{probe} uses port name `{name}`, which container `{}` does not declare: the kubelet cannot resolve it and the probe fails", c.name()),
                                    Some(format!("declare `ports: [{{name: {name}, containerPort: N}}]` or use the port number")),
                                );
                        }
                        Some(Port::Number(n)) => {
                            if let Some((server, ports)) = listening(c) {
                                if !ports.iter().any(|(p, _)| *p == n) {
                                    e.report(
                                        obj,
                                        path,
                                        format!("{probe} checks port {n}, but {}: nothing answers on {n}, so the pod {}", describe(server, &ports), if probe == "readinessProbe" { "never becomes ready" } else { "is restarted forever" }),
                                        Some(format!("probe one of the server's ports ({})", ports.iter().map(|(p, _)| p.to_string()).collect::<Vec<_>>().join(", "))),
                                    );
                                }
                            } else if !declared.is_empty()
                                && !declared.iter().any(|(_, p, _)| *p == n)
                            {
                                let rule = e.rule;
                                if let Some(rule) = rule {
                                    e.report_as(
                                        rule,
                                        Severity::Warning,
                                        obj,
                                        path,
                                        format!("{probe} checks port {n}, which container `{}` does not expose (it declares {})", c.name(), declared.iter().map(|(_, p, _)| p.to_string()).collect::<Vec<_>>().join(", ")),
                                        Some("probe a declared port, or declare the one the server listens on".to_string()),
                                    );
                                }
                            }
                        }
                        Some(Port::Name(_)) | None => {}
                    }
                }
            }
        }
    }
}

/// Service targetPorts that no selected pod exposes or listens on.
pub fn service_target_port(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    // every pod template, with its object, gathered once for all Services
    let templates: Vec<(&Object<'_>, &PodTemplate<'_>)> = ctx
        .objects
        .iter()
        .filter(|o| o.group() != "serving.kserve.io")
        .flat_map(|o| o.pod_templates().iter().map(move |p| (o, p)))
        .collect();
    // the templates that have each label, in order: a Service's pods are among those that
    // have the first label of its selector (a scan of all templates per Service grew with
    // the square of the input)
    let mut by_label: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (i, (_, p)) in templates.iter().enumerate() {
        for label in &p.labels {
            let with = by_label.entry(*label).or_default();
            if with.last() != Some(&i) {
                with.push(i);
            }
        }
    }
    for svc in ctx.of_kind("", "Service") {
        let selector = string_map(svc.at("spec.selector"));
        let Some(first) = selector.first() else {
            continue;
        };
        let pods: Vec<&PodTemplate<'_>> = by_label
            .get(first)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|&i| templates[i])
            .filter(|(o, p)| o.same_namespace(svc) && map_selector_matches(&selector, &p.labels))
            .map(|(_, p)| p)
            .collect();
        if pods.is_empty() {
            continue;
        }
        let ports = svc
            .at("spec.ports")
            .and_then(Node::as_seq)
            .unwrap_or_default();
        for (i, p) in ports.iter().enumerate() {
            let target = p.get("targetPort").or_else(|| p.get("port"));
            let Some(target) = target.and_then(port_of) else {
                continue;
            };
            let path =
                FieldPath::parse("spec.ports")
                    .index(i)
                    .key(if p.get("targetPort").is_some() {
                        "targetPort"
                    } else {
                        "port"
                    });
            match target {
                Port::Name(name) => {
                    let found = pods.iter().any(|pod| {
                        pod.containers()
                            .iter()
                            .any(|c| c.ports().iter().any(|(_, _, n)| *n == Some(name)))
                    });
                    if !found {
                        e.report(
                            svc,
                            path,
                            format!("targetPort `{name}` is not a port name of the selected pods: the Service has no endpoints for it"),
                            Some(format!("name the container port `{name}` or target its number")),
                        );
                    }
                }
                Port::Number(n) => {
                    let containers: Vec<Container<'_>> = pods
                        .iter()
                        .flat_map(|p| p.containers())
                        .filter(|c| !c.init)
                        .collect();
                    let servers: Vec<_> = containers.iter().map(listening).collect();
                    let declared = containers.iter().any(|c| !c.ports().is_empty());
                    // a known server's real ports win over its (informational) declared ports
                    let hit = containers.iter().zip(&servers).any(|(c, s)| match s {
                        Some((_, ports)) => ports.iter().any(|(p, _)| *p == n),
                        None => c.ports().iter().any(|(_, p, _)| *p == n),
                    });
                    if hit {
                        continue;
                    }
                    if servers.iter().all(Option::is_some) {
                        let mut known: Vec<String> = servers
                            .iter()
                            .flatten()
                            .map(|(server, ports)| describe(server, ports))
                            .collect();
                        known.dedup();
                        e.report(
                            svc,
                            path,
                            format!("targetPort {n} reaches no server: {}", known.join("; ")),
                            Some("target the server's port (and name the Service port after its protocol)".to_string()),
                        );
                    } else if declared && let Some(rule) = e.rule {
                        e.report_as(
                            rule,
                            Severity::Warning,
                            svc,
                            path,
                            format!("targetPort {n} is not a port the selected pods declare"),
                            Some("target a declared containerPort".to_string()),
                        );
                    }
                }
            }
        }
    }
}
