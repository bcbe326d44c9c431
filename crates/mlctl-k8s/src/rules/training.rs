//! Distributed training mistakes: the completion index outside Indexed mode, rendezvous hosts
//! that do not resolve, PyTorchJobs without a master, and PyTorch pods without a
//! memory-backed `/dev/shm`.

use mlctl_core::path::FieldPath;
use mlctl_core::yaml::Node;

use super::{Ctx, Emitter};
use crate::manifest::{Container, Object, is_gpu_resource, map_selector_matches, string_map};

const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

/// The Job spec of a Job or a CronJob, with its path.
fn job_spec<'a>(obj: &Object<'a>) -> Option<(FieldPath, &'a Node)> {
    let path = match (obj.group(), obj.kind) {
        ("batch", "Job") => "spec",
        ("batch", "CronJob") => "spec.jobTemplate.spec",
        _ => return None,
    };
    Some((FieldPath::parse(path), obj.at(path)?))
}

/// The completion index read outside Indexed mode.
pub fn completion_index(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let Some((spec_path, spec)) = job_spec(obj) else {
            continue;
        };
        let mode = spec
            .get("completionMode")
            .and_then(Node::as_str)
            .unwrap_or("NonIndexed");
        if mode == "Indexed" {
            continue;
        }
        for c in obj.containers() {
            let mut reported = false;
            for (i, name, env) in c.env() {
                let field = env
                    .at(&FieldPath::parse("valueFrom.fieldRef.fieldPath"))
                    .and_then(Node::as_str)
                    .unwrap_or("");
                if field.contains(INDEX_ANNOTATION) {
                    e.report(
                        obj,
                        c.path.key("env").index(i),
                        format!("`{name}` reads the `{INDEX_ANNOTATION}` annotation, which only Jobs with `completionMode: Indexed` have (this Job is {mode}): it is empty in every pod, so all workers get the same rank"),
                        Some(format!("set `{spec_path}.completionMode: Indexed` (Kubernetes then also sets JOB_COMPLETION_INDEX itself)")),
                    );
                    reported = true;
                }
            }
            let defined = c.env().iter().any(|(_, n, _)| *n == "JOB_COMPLETION_INDEX");
            if !reported
                && !defined
                && c.argv()
                    .iter()
                    .any(|a| a.contains("$(JOB_COMPLETION_INDEX)"))
            {
                e.report(
                    obj,
                    c.path.clone(),
                    format!("`$(JOB_COMPLETION_INDEX)` is used, but Kubernetes sets JOB_COMPLETION_INDEX only in Indexed mode (this Job is {mode}): every pod gets the literal text"),
                    Some(format!("set `{spec_path}.completionMode: Indexed`")),
                );
            }
        }
    }
}

/// Hosts named by rendezvous flags and variables: (where, host).
fn rendezvous_hosts(c: &Container<'_>) -> Vec<(FieldPath, String)> {
    let mut out = Vec::new();
    for (i, name, env) in c.env() {
        if matches!(name, "MASTER_ADDR" | "PET_MASTER_ADDR" | "RDZV_HOST")
            && let Some(v) = env.get("value").and_then(|v| v.scalar_text())
        {
            out.push((c.path.key("env").index(i), v.into_owned()));
        }
    }
    let argv = c.argv();
    const FLAGS: &[&str] = &[
        "--master-addr",
        "--master_addr",
        "--master-address",
        "--master_address",
        "--rdzv-endpoint",
        "--rdzv_endpoint",
    ];
    for (i, arg) in argv.iter().enumerate() {
        for word in arg.split_whitespace() {
            for flag in FLAGS {
                let value = if let Some(v) = word
                    .strip_prefix(flag)
                    .and_then(|rest| rest.strip_prefix('='))
                {
                    Some(v.to_string())
                } else if word == *flag {
                    argv.get(i + 1).cloned()
                } else {
                    None
                };
                if let Some(v) = value {
                    let host = v
                        .rsplit_once(':')
                        .map_or(v.as_str(), |(h, _)| h)
                        .to_string();
                    out.push((c.path.clone(), host));
                }
            }
        }
    }
    out
}

fn is_literal_host(host: &str) -> bool {
    !host.is_empty()
        && !host.contains("$(")
        && !host.contains("${")
        && !host.contains("{{")
        && !host.starts_with('$')
        && host != "localhost"
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// Rendezvous hosts that do not resolve to a Service of the checked documents.
pub fn rendezvous_host(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        // operators (Kubeflow, Trainer) set MASTER_ADDR themselves
        if matches!(obj.group(), "kubeflow.org" | "trainer.kubeflow.org") {
            continue;
        }
        let pods = obj.pod_templates();
        for c in obj.containers() {
            for (path, host) in rendezvous_hosts(c) {
                if !is_literal_host(&host) {
                    continue;
                }
                let labels: Vec<&str> = host.split('.').collect();
                let services: Vec<&Object<'_>> = ctx
                    .of_kind("", "Service")
                    .filter(|s| s.same_namespace(obj))
                    .collect();
                let find = |name: &str| services.iter().find(|s| s.name == name).copied();
                let pod = c.pod.and_then(|i| pods.get(i));
                if labels.len() == 1 {
                    match find(labels[0]) {
                        None => e.report(
                            obj,
                            path,
                            format!("rendezvous host `{host}` is not a Service of the checked documents: workers cannot resolve it"),
                            Some("add a headless Service (`clusterIP: None`) that selects the rank-0 pod, set the pod's `spec.subdomain` to it, and use `<job>-0.<service>` as the host".to_string()),
                        ),
                        Some(svc) => {
                            let sel = string_map(svc.at("spec.selector"));
                            if let Some(pod) = pod
                                && !sel.is_empty()
                                && map_selector_matches(&sel, &pod.labels)
                                && pods.len() == 1
                                && job_parallelism(obj) > 1
                            {
                                e.report(
                                    obj,
                                    path,
                                    format!("rendezvous host `{host}` is a Service that selects every worker of this Job: connections land on a random worker, not on rank 0"),
                                    Some("point the host at the rank-0 pod (`<job>-0.<headless-service>`) instead".to_string()),
                                );
                            }
                        }
                    }
                } else if labels.len() >= 2 && !host.ends_with(".svc") {
                    let svc_name = labels[1];
                    match find(svc_name) {
                        None => e.report(
                            obj,
                            path,
                            format!("rendezvous host `{host}` needs a headless Service `{svc_name}`, which is not in the checked documents"),
                            Some(format!("add a Service `{svc_name}` with `clusterIP: None` selecting the job's pods")),
                        ),
                        Some(svc) => {
                            let headless = svc.at("spec.clusterIP").and_then(Node::as_str) == Some("None");
                            let subdomain = pod.and_then(|p| p.get("subdomain")).and_then(Node::as_str);
                            if !headless {
                                e.report(
                                    obj,
                                    path,
                                    format!("rendezvous host `{host}` is a per-pod DNS name, but Service `{svc_name}` is not headless: such names exist only under a Service with `clusterIP: None`"),
                                    Some(format!("set `clusterIP: None` on Service `{svc_name}`")),
                                );
                            } else if pod.is_some() && subdomain != Some(svc_name) {
                                e.report(
                                    obj,
                                    path,
                                    format!("rendezvous host `{host}` is a per-pod DNS name under `{svc_name}`, but the pods do not set `spec.subdomain: {svc_name}`: the name never resolves"),
                                    Some(format!("set `subdomain: {svc_name}` in the pod template")),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn job_parallelism(obj: &Object<'_>) -> i64 {
    job_spec(obj)
        .and_then(|(_, s)| s.get("parallelism"))
        .and_then(|n| n.scalar_text())
        .and_then(|t| t.parse().ok())
        .unwrap_or(1)
}

/// PyTorchJob without Master and without elasticPolicy; more than one Master.
pub fn pytorchjob_no_master(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.of_kind("kubeflow.org", "PyTorchJob") {
        let Some(specs) = obj.at("spec.pytorchReplicaSpecs") else {
            continue;
        };
        match specs.get("Master") {
            None if obj.at("spec.elasticPolicy").is_none() => e.report(
                obj,
                FieldPath::parse("spec.pytorchReplicaSpecs"),
                "no `Master` replica and no `elasticPolicy`: the workers wait for a master that never starts (MASTER_ADDR points at `<name>-master-0`)",
                Some("add a `Master` replica spec with `replicas: 1`, or an `elasticPolicy` for torchrun rendezvous among workers".to_string()),
            ),
            Some(master) => {
                let replicas = master.get("replicas").and_then(|n| n.scalar_text());
                if let Some(r) = replicas
                    && r.parse::<i64>().is_ok_and(|r| r != 1)
                {
                    e.report(
                        obj,
                        FieldPath::parse("spec.pytorchReplicaSpecs.Master.replicas"),
                        format!("`Master` has {r} replicas; a PyTorchJob has exactly one master"),
                        Some("set `replicas: 1` and put the other processes in `Worker`".to_string()),
                    );
                }
            }
            None => {}
        }
    }
}

fn is_torch_image(image: &str) -> bool {
    let i = image.to_ascii_lowercase();
    i.contains("pytorch") || i.contains("torch") || i.contains("deepspeed")
}

/// PyTorch training pods without `/dev/shm` from a memory emptyDir.
pub fn dev_shm_missing(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let training_kind = matches!(
            (obj.group(), obj.kind),
            ("", "Pod")
                | ("batch", "Job")
                | ("kubeflow.org", "PyTorchJob")
                | (
                    "trainer.kubeflow.org",
                    "TrainingRuntime" | "ClusterTrainingRuntime"
                )
        );
        if !training_kind {
            continue;
        }
        let distributed = match obj.kind {
            "Job" => job_parallelism(obj) > 1,
            "Pod" => false,
            _ => true,
        };
        for pod in obj.pod_templates() {
            let memory_volumes: Vec<&str> = pod
                .spec
                .seq("volumes")
                .iter()
                .filter(|v| {
                    v.at(&FieldPath::parse("emptyDir.medium"))
                        .and_then(Node::as_str)
                        == Some("Memory")
                })
                .filter_map(|v| v.get("name").and_then(Node::as_str))
                .collect();
            for c in pod.containers().into_iter().filter(|c| !c.init) {
                if !is_torch_image(c.image()) {
                    continue;
                }
                let gpu = c
                    .resource_names("limits")
                    .into_iter()
                    .chain(c.resource_names("requests"))
                    .any(is_gpu_resource);
                if !(gpu || distributed) {
                    continue;
                }
                let has_shm = c.node.seq("volumeMounts").iter().any(|m| {
                    m.get("mountPath").and_then(Node::as_str) == Some("/dev/shm")
                        && m.get("name")
                            .and_then(Node::as_str)
                            .is_some_and(|n| memory_volumes.contains(&n))
                });
                if !has_shm {
                    e.report(
                        obj,
                        c.path.clone(),
                        format!("PyTorch container `{}` has no memory-backed /dev/shm: the runtime default is 64 MiB, and DataLoader workers and NCCL fail with \"bus error\" or \"No space left on device\"", c.name()),
                        Some("add a volume `{name: dshm, emptyDir: {medium: Memory, sizeLimit: 8Gi}}` and mount it at /dev/shm".to_string()),
                    );
                }
            }
        }
    }
}
