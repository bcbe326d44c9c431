//! Kubernetes objects as the rules see them: identity (apiVersion, kind, namespace, name),
//! the pod templates and containers inside any workload kind (built-in controllers, Kubeflow
//! training jobs, Seldon, Dask, KServe, Argo templates, JobSets of Trainer runtimes), label
//! selectors and resource quantities.
//!
//! Everything borrows from the located YAML tree, so a rule can report any field it looks at
//! by its path.

use std::sync::OnceLock;

use mlctl_core::path::FieldPath;
use mlctl_core::quantity::Quantity;
use mlctl_core::yaml::{Node, Value};

/// One Kubernetes object of the checked input.
#[derive(Debug, Clone)]
pub struct Object<'a> {
    /// Index of the file in the checked input.
    pub file: usize,
    /// The root node of the document the object is in.
    pub doc: &'a Node,
    /// Where the object is inside its document (the root, or `items[3]` of a `List`).
    pub base: FieldPath,
    /// The object's own mapping.
    pub node: &'a Node,
    /// `apiVersion`.
    pub api_version: &'a str,
    /// `kind`.
    pub kind: &'a str,
    /// `metadata.name` (empty when missing; `generateName` objects have none).
    pub name: &'a str,
    /// `metadata.namespace`, when set.
    pub namespace: Option<&'a str>,
    /// `metadata.generateName`, when set.
    pub generate_name: Option<&'a str>,
    group: &'a str,
    pods: OnceLock<Vec<PodTemplate<'a>>>,
    containers: OnceLock<Vec<Container<'a>>>,
}

impl<'a> Object<'a> {
    /// Reads the identity of `node`; `None` if it is not a mapping with `apiVersion` and `kind`.
    pub fn new(file: usize, doc: &'a Node, base: FieldPath, node: &'a Node) -> Option<Self> {
        let api_version = node.get("apiVersion")?.as_str()?;
        let kind = node.get("kind")?.as_str()?;
        let meta = node.get("metadata");
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .unwrap_or("");
        let namespace = meta.and_then(|m| m.get("namespace")).and_then(Node::as_str);
        let generate_name = meta
            .and_then(|m| m.get("generateName"))
            .and_then(Node::as_str);
        Some(Self {
            file,
            doc,
            base,
            node,
            api_version,
            kind,
            name,
            namespace,
            generate_name,
            group: api_version.rsplit_once('/').map_or("", |(g, _)| g),
            pods: OnceLock::new(),
            containers: OnceLock::new(),
        })
    }

    /// The API group (`apps`, `kubeflow.org`; empty for the core group).
    pub fn group(&self) -> &'a str {
        self.group
    }

    /// `Kind/namespace/name`, or `Kind/name` without a namespace (`Kind/prefix-*` for
    /// objects named by `generateName`).
    pub fn display(&self) -> String {
        let name = match (self.name, self.generate_name) {
            ("", Some(prefix)) => format!("{prefix}*"),
            (name, _) => name.to_string(),
        };
        match self.namespace {
            Some(ns) => format!("{}/{}/{}", self.kind, ns, name),
            None => format!("{}/{}", self.kind, name),
        }
    }

    /// Whether this object may live in the same namespace as `other` (an unset namespace is
    /// whichever the user applies to, so it may match any).
    pub fn same_namespace(&self, other: &Object<'_>) -> bool {
        match (self.namespace, other.namespace) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// Whether this is `kind` of `group` (any version).
    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.kind == kind && self.group() == group
    }

    /// The node at a dotted path of keys (`spec.template.spec`), relative to the object.
    pub fn at(&self, path: &str) -> Option<&'a Node> {
        walk(self.node, path)
    }

    /// The object's labels.
    pub fn labels(&self) -> Vec<(&'a str, &'a str)> {
        string_map(walk(self.node, "metadata.labels"))
    }

    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.node
            .get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
    }

    /// Every pod template of this object (computed once).
    pub fn pod_templates(&self) -> &[PodTemplate<'a>] {
        self.pods.get_or_init(|| pod_templates(self))
    }

    /// Every container of this object, in pod templates or elsewhere (Argo templates,
    /// KServe model specs); computed once.
    pub fn containers(&self) -> &[Container<'a>] {
        self.containers.get_or_init(|| {
            let mut out = Vec::new();
            for (i, pod) in self.pod_templates().iter().enumerate() {
                out.extend(pod.containers_of(Some(i)));
            }
            out.extend(loose_containers(self));
            out
        })
    }
}

/// A pod template (or a bare pod spec) inside an object.
#[derive(Debug, Clone)]
pub struct PodTemplate<'a> {
    /// Path of the pod spec, relative to the object.
    pub path: FieldPath,
    /// The pod spec.
    pub spec: &'a Node,
    /// The labels its pods get.
    pub labels: Vec<(&'a str, &'a str)>,
    /// The replica role in a training job (`Master`, `Worker`), the component in Dask
    /// (`scheduler`, `worker`).
    pub role: Option<String>,
}

impl<'a> PodTemplate<'a> {
    /// The containers of this pod (`containers`, `initContainers`).
    pub fn containers(&self) -> Vec<Container<'a>> {
        self.containers_of(None)
    }

    fn containers_of(&self, pod: Option<usize>) -> Vec<Container<'a>> {
        let mut out = Vec::new();
        for (field, init) in [("initContainers", true), ("containers", false)] {
            if let Some(items) = self.spec.get(field).and_then(Node::as_seq) {
                for (i, node) in items.iter().enumerate() {
                    out.push(Container {
                        path: self.path.key(field).index(i),
                        node,
                        init,
                        pod,
                    });
                }
            }
        }
        out
    }

    /// Whether a label selector (`matchLabels`/`matchExpressions`) selects these pods.
    pub fn selected_by(&self, selector: &Node) -> bool {
        selector_matches(selector, &self.labels)
    }

    /// The pod-level field at `key`.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.spec.get(key)
    }
}

/// A container (or container-like spec) inside an object.
#[derive(Debug, Clone)]
pub struct Container<'a> {
    /// Path relative to the object.
    pub path: FieldPath,
    /// The container mapping.
    pub node: &'a Node,
    /// Whether it is an init container.
    pub init: bool,
    /// Index of its pod template in [`Object::pod_templates`], when it has one.
    pub pod: Option<usize>,
}

impl<'a> Container<'a> {
    /// `name` (empty when missing).
    pub fn name(&self) -> &'a str {
        self.node.get("name").and_then(Node::as_str).unwrap_or("")
    }

    /// `image` (empty when missing).
    pub fn image(&self) -> &'a str {
        self.node.get("image").and_then(Node::as_str).unwrap_or("")
    }

    /// The resource quantity `resources.<section>.<name>` with its path, if set and valid.
    pub fn resource(&self, section: &str, name: &str) -> Option<(Quantity, FieldPath)> {
        let node = self.node.get("resources")?.get(section)?.get(name)?;
        let q = node.scalar_text()?.parse::<Quantity>().ok()?;
        Some((
            q,
            self.path
                .key("resources")
                .key(section)
                .key(name.to_string()),
        ))
    }

    /// The resource names set in `resources.<section>`.
    pub fn resource_names(&self, section: &str) -> Vec<&'a str> {
        self.node
            .get("resources")
            .and_then(|r| r.get(section))
            .and_then(Node::as_map)
            .map(|m| m.iter().map(|e| e.key.as_str()).collect())
            .unwrap_or_default()
    }

    /// The env entries: (index, name, node).
    pub fn env(&self) -> Vec<(usize, &'a str, &'a Node)> {
        self.node
            .get("env")
            .and_then(Node::as_seq)
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| Some((i, e.get("name")?.as_str()?, e)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The literal value of env var `name`, if set with `value:`.
    pub fn env_value(&self, name: &str) -> Option<String> {
        self.env()
            .into_iter()
            .find(|(_, n, _)| *n == name)
            .and_then(|(_, _, e)| e.get("value")?.scalar_text().map(|s| s.into_owned()))
    }

    /// `command` and `args` as one list of words.
    pub fn argv(&self) -> Vec<String> {
        let mut out = Vec::new();
        for field in ["command", "args"] {
            if let Some(items) = self.node.get(field).and_then(Node::as_seq) {
                out.extend(
                    items
                        .iter()
                        .filter_map(|n| n.scalar_text().map(|s| s.into_owned())),
                );
            }
        }
        // Argo script templates carry their program in `source`
        if let Some(src) = self.node.get("source").and_then(Node::as_str) {
            out.push(src.to_string());
        }
        out
    }

    /// Declared `ports`: (index, containerPort, name).
    pub fn ports(&self) -> Vec<(usize, i64, Option<&'a str>)> {
        self.node
            .get("ports")
            .and_then(Node::as_seq)
            .map(|items| {
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, p)| {
                        let port = match p.get("containerPort")?.value {
                            Value::Int(n) => n,
                            _ => return None,
                        };
                        Some((i, port, p.get("name").and_then(Node::as_str)))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn labels_at<'a>(node: &'a Node, path: &str) -> Vec<(&'a str, &'a str)> {
    string_map(walk(node, path))
}

/// The node at a dotted path of mapping keys, without allocating.
pub fn walk<'a>(node: &'a Node, path: &str) -> Option<&'a Node> {
    path.split('.').try_fold(node, |n, key| n.get(key))
}

/// A mapping of strings as pairs (non-string values are skipped).
pub fn string_map(node: Option<&Node>) -> Vec<(&str, &str)> {
    node.and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .filter_map(|e| Some((e.key.as_str(), e.value.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn template_at<'a>(
    obj: &Object<'a>,
    template: &str,
    role: Option<String>,
    out: &mut Vec<PodTemplate<'a>>,
) {
    let path = FieldPath::parse(template);
    if let Some(t) = obj.node.at(&path)
        && let Some(spec) = t.get("spec")
    {
        out.push(PodTemplate {
            path: path.key("spec"),
            spec,
            labels: labels_at(t, "metadata.labels"),
            role,
        });
    }
}

fn pod_templates<'a>(obj: &Object<'a>) -> Vec<PodTemplate<'a>> {
    let mut out = Vec::new();
    match (obj.group(), obj.kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.node.get("spec") {
                out.push(PodTemplate {
                    path: FieldPath::parse("spec"),
                    spec,
                    labels: obj.labels(),
                    role: None,
                });
            }
        }
        ("", "PodTemplate") => template_at(obj, "template", None, &mut out),
        ("apps" | "extensions", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("", "ReplicationController")
        | ("batch", "Job") => template_at(obj, "spec.template", None, &mut out),
        ("batch", "CronJob") => template_at(obj, "spec.jobTemplate.spec.template", None, &mut out),
        ("kubeflow.org", _) => {
            if let Some(spec) = obj.node.get("spec").and_then(Node::as_map) {
                for entry in spec.iter().filter(|e| e.key.ends_with("ReplicaSpecs")) {
                    for role in entry.value.as_map().unwrap_or_default() {
                        template_at(
                            obj,
                            &format!("spec.{}.{}.template", entry.key, role.key),
                            Some(role.key.clone()),
                            &mut out,
                        );
                    }
                }
            }
        }
        ("machinelearning.seldon.io", "SeldonDeployment") => {
            let predictors = obj.at("spec.predictors").and_then(Node::as_seq);
            for (p, pred) in predictors.unwrap_or_default().iter().enumerate() {
                let specs = pred.get("componentSpecs").and_then(Node::as_seq);
                for (c, _) in specs.unwrap_or_default().iter().enumerate() {
                    template_at(
                        obj,
                        &format!("spec.predictors[{p}].componentSpecs[{c}]"),
                        None,
                        &mut out,
                    );
                }
            }
        }
        ("kubernetes.dask.org", "DaskCluster") => {
            template_at(obj, "spec.worker", Some("worker".into()), &mut out);
            template_at(obj, "spec.scheduler", Some("scheduler".into()), &mut out);
        }
        ("kubernetes.dask.org", "DaskWorkerGroup") => {
            template_at(obj, "spec.worker", Some("worker".into()), &mut out);
        }
        ("kubernetes.dask.org", "DaskJob") => {
            template_at(obj, "spec.job", Some("job".into()), &mut out);
            template_at(
                obj,
                "spec.cluster.spec.worker",
                Some("worker".into()),
                &mut out,
            );
            template_at(
                obj,
                "spec.cluster.spec.scheduler",
                Some("scheduler".into()),
                &mut out,
            );
        }
        ("trainer.kubeflow.org", "TrainingRuntime" | "ClusterTrainingRuntime") => {
            let jobs = obj
                .at("spec.template.spec.replicatedJobs")
                .and_then(Node::as_seq);
            for (i, job) in jobs.unwrap_or_default().iter().enumerate() {
                let role = job.get("name").and_then(Node::as_str).map(str::to_string);
                template_at(
                    obj,
                    &format!("spec.template.spec.replicatedJobs[{i}].template.spec.template"),
                    role,
                    &mut out,
                );
            }
        }
        ("serving.kserve.io", "InferenceService") => {
            for component in ["predictor", "transformer", "explainer"] {
                if let Some(spec) = obj.at(&format!("spec.{component}")) {
                    out.push(PodTemplate {
                        path: FieldPath::parse(&format!("spec.{component}")),
                        spec,
                        labels: labels_at(obj.node, "metadata.labels"),
                        role: Some(component.to_string()),
                    });
                }
            }
        }
        ("serving.kserve.io", "ServingRuntime" | "ClusterServingRuntime") => {
            if let Some(spec) = obj.node.get("spec") {
                out.push(PodTemplate {
                    path: FieldPath::parse("spec"),
                    spec,
                    labels: Vec::new(),
                    role: None,
                });
            }
        }
        _ => {}
    }
    out
}

/// KServe model-format keys of a predictor: each is a container spec without a name.
pub const KSERVE_FRAMEWORKS: &[&str] = &[
    "model",
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "pmml",
    "lightgbm",
    "paddle",
    "huggingface",
];

fn loose_containers<'a>(obj: &Object<'a>) -> Vec<Container<'a>> {
    let mut out = Vec::new();
    match (obj.group(), obj.kind) {
        ("argoproj.io", "Workflow" | "WorkflowTemplate" | "ClusterWorkflowTemplate") => {
            argo_containers(obj.node, FieldPath::parse("spec"), &mut out);
        }
        ("argoproj.io", "CronWorkflow") => {
            argo_containers(obj.node, FieldPath::parse("spec.workflowSpec"), &mut out);
        }
        ("serving.kserve.io", "InferenceService") => {
            for fw in KSERVE_FRAMEWORKS {
                let path = FieldPath::parse("spec.predictor").key(*fw);
                if let Some(node) = obj.node.at(&path) {
                    out.push(Container {
                        path,
                        node,
                        init: false,
                        pod: None,
                    });
                }
            }
        }
        _ => {}
    }
    out
}

fn argo_containers<'a>(root: &'a Node, spec: FieldPath, out: &mut Vec<Container<'a>>) {
    let Some(templates) = root.at(&spec.key("templates")).and_then(Node::as_seq) else {
        return;
    };
    for (i, t) in templates.iter().enumerate() {
        let tpath = spec.key("templates").index(i);
        for field in ["container", "script"] {
            if let Some(node) = t.get(field) {
                out.push(Container {
                    path: tpath.key(field),
                    node,
                    init: false,
                    pod: None,
                });
            }
        }
        for (field, init) in [("initContainers", true), ("sidecars", false)] {
            for (j, node) in t.seq(field).iter().enumerate() {
                out.push(Container {
                    path: tpath.key(field).index(j),
                    node,
                    init,
                    pod: None,
                });
            }
        }
        if let Some(items) = t
            .get("containerSet")
            .and_then(|c| c.get("containers"))
            .and_then(Node::as_seq)
        {
            for (j, node) in items.iter().enumerate() {
                out.push(Container {
                    path: tpath.key("containerSet").key("containers").index(j),
                    node,
                    init: false,
                    pod: None,
                });
            }
        }
    }
}

/// Whether a `LabelSelector` (`matchLabels` and `matchExpressions`) selects `labels`. An
/// empty selector selects everything.
pub fn selector_matches(selector: &Node, labels: &[(&str, &str)]) -> bool {
    let has = |k: &str| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v);
    for (k, v) in string_map(selector.get("matchLabels")) {
        if has(k) != Some(v) {
            return false;
        }
    }
    for expr in selector.seq("matchExpressions") {
        let key = expr.get("key").and_then(Node::as_str).unwrap_or("");
        let values: Vec<String> = expr
            .seq("values")
            .iter()
            .filter_map(|n| n.scalar_text().map(|s| s.into_owned()))
            .collect();
        let actual = has(key);
        let ok = match expr.get("operator").and_then(Node::as_str).unwrap_or("") {
            "In" => actual.is_some_and(|a| values.iter().any(|v| v == a)),
            "NotIn" => actual.is_none_or(|a| values.iter().all(|v| v != a)),
            "Exists" => actual.is_some(),
            "DoesNotExist" => actual.is_none(),
            _ => true,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a plain `key: value` selector (Service `spec.selector`) selects `labels`.
pub fn map_selector_matches(selector: &[(&str, &str)], labels: &[(&str, &str)]) -> bool {
    selector.iter().all(|(k, v)| labels.contains(&(*k, *v)))
}

/// Whether `name` is an extended resource (a vendor-domain name such as `nvidia.com/gpu`),
/// which the API server never overcommits.
pub fn is_extended_resource(name: &str) -> bool {
    match name.split_once('/') {
        Some((domain, _)) => {
            !(domain == "kubernetes.io"
                || domain.ends_with(".kubernetes.io")
                || domain == "count"
                || name.starts_with("requests.")
                || name.starts_with("limits."))
        }
        None => false,
    }
}

/// Whether `name` is a GPU resource of a known device plugin.
pub fn is_gpu_resource(name: &str) -> bool {
    is_extended_resource(name)
        && (name.contains("gpu")
            || name.starts_with("nvidia.com/mig-")
            || name.starts_with("habana.ai/")
            || name.starts_with("aws.amazon.com/neuron"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlctl_core::yaml::parse_documents;

    #[test]
    fn templates_of_training_jobs_and_selectors() {
        let docs = parse_documents(
            "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {name: t}\nspec:\n  pytorchReplicaSpecs:\n    Master:\n      template:\n        metadata: {labels: {role: m}}\n        spec: {containers: [{name: pytorch, image: x}]}\n    Worker:\n      template:\n        spec: {containers: [{name: pytorch, image: x}]}\n",
        )
        .expect("parses");
        let obj = Object::new(0, &docs[0], FieldPath::root(), &docs[0]).expect("object");
        let pods = obj.pod_templates();
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[0].role.as_deref(), Some("Master"));
        assert_eq!(
            obj.containers()[1].path.to_string(),
            "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]"
        );
        let sel = parse_documents("matchExpressions: [{key: role, operator: In, values: [m]}]")
            .expect("parses");
        assert!(pods[0].selected_by(&sel[0]));
        assert!(!pods[1].selected_by(&sel[0]));
    }

    #[test]
    fn extended_resources() {
        assert!(is_extended_resource("nvidia.com/gpu"));
        assert!(is_gpu_resource("amd.com/gpu"));
        assert!(!is_extended_resource("cpu"));
        assert!(!is_extended_resource("kubernetes.io/something"));
        assert!(!is_extended_resource("count/workflows.argoproj.io"));
        assert!(!is_gpu_resource("example.com/foo"));
    }
}
