//! Semantic validation of parsed specs: everything a type cannot say.
//!
//! Names, quantities, ports and paths; requests against limits; references between steps,
//! outputs, parameters, jobs and services; the pipeline graph; Platform rules. Every finding
//! is returned (sorted), each with a stable code and a location; a [`ValidatedSpec`] exists
//! only when there is no error.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use indexmap::IndexMap;

use crate::diag::{self, Diagnostic, did_you_mean};
use crate::names;
use crate::path::FieldPath;
use crate::scalar::{Duration, ScalarText};
use crate::spec::common::{Resources, Templated, Toleration, TolerationOperator, Volume};
use crate::spec::data::{DataJobSpec, Engine};
use crate::spec::job::JobSpec;
use crate::spec::pipeline::PipelineSpec;
use crate::spec::platform::{NamespaceSpec, Peer, PlatformSpec, ResourceBounds};
use crate::spec::serving::{InferenceServiceSpec, Model, Probe, ScalingRules};
use crate::spec::{Kind, Object, RawSpec, SourceText, Spec};
use crate::template::{self, Ref};

/// Specs that passed validation: references resolve, the graph is acyclic, values are in
/// range. Only [`validate`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedSpec {
    objects: Vec<Object>,
}

impl ValidatedSpec {
    /// The objects, in file and document order.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// The object of `kind` named `name`.
    pub fn get(&self, kind: Kind, name: &str) -> Option<&Object> {
        self.objects
            .iter()
            .find(|o| o.kind() == kind && o.name() == name)
    }

    /// The rules a Platform declares for `namespace`, if any.
    pub fn namespace_rules(&self, namespace: &str) -> Option<&NamespaceSpec> {
        self.platforms().find_map(|p| p.namespaces.get(namespace))
    }

    /// Every Platform spec.
    pub fn platforms(&self) -> impl Iterator<Item = &PlatformSpec> {
        self.objects.iter().filter_map(|o| match &o.spec {
            Spec::Platform(p) => Some(p),
            _ => None,
        })
    }

    /// Every step of every Pipeline, with its pipeline.
    pub fn pipeline_steps(&self) -> impl Iterator<Item = (&Object, &JobSpec)> {
        self.objects
            .iter()
            .filter_map(|o| match &o.spec {
                Spec::Pipeline(p) => Some((o, p)),
                _ => None,
            })
            .flat_map(|(o, p)| p.steps.values().map(move |s| (o, s)))
    }
}

/// The outcome of validation.
#[derive(Debug, Clone)]
pub struct Report {
    /// The validated spec, when there are no errors.
    pub spec: Option<ValidatedSpec>,
    /// Every finding (errors and warnings), sorted.
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses and validates source texts as one set: the findings of both stages, sorted.
pub fn validate_sources(sources: &[SourceText<'_>]) -> Report {
    let (raw, mut diagnostics) = crate::spec::parse(sources);
    let report = validate(raw);
    diagnostics.extend(report.diagnostics);
    diag::sort(&mut diagnostics);
    let spec = if diag::has_errors(&diagnostics) {
        None
    } else {
        report.spec
    };
    Report { spec, diagnostics }
}

/// Validates `raw` as one set of documents (references may cross files).
pub fn validate(raw: RawSpec) -> Report {
    let index = Index::new(&raw.objects);
    let mut diags = Vec::new();
    index.duplicates(&raw.objects, &mut diags);
    let policies: HashMap<&str, crate::sched::NamespacePolicy> = raw
        .objects
        .iter()
        .filter_map(|o| match &o.spec {
            Spec::Platform(p) => Some(p),
            _ => None,
        })
        .flat_map(|p| p.namespaces.iter())
        .map(|(name, ns)| (name.as_str(), crate::workload::namespace_policy(name, ns)))
        .collect();
    for object in &raw.objects {
        if let Some(policy) = policies.get(object.namespace()) {
            diags.extend(
                namespace_fit(object, policy)
                    .into_iter()
                    .map(|d| object.place(d)),
            );
        }
        let mut c = Checker {
            object,
            index: &index,
            out: Vec::new(),
        };
        c.metadata();
        match &object.spec {
            Spec::TrainingJob(job) => c.training_job(job),
            Spec::Pipeline(p) => c.pipeline(p),
            Spec::InferenceService(s) => c.service(s),
            Spec::DataJob(d) => c.data_job(d),
            Spec::Platform(p) => c.platform(p),
        }
        diags.extend(c.out.into_iter().map(|d| object.place(d)));
    }
    diag::sort(&mut diags);
    let spec = (!diag::has_errors(&diags)).then_some(ValidatedSpec {
        objects: raw.objects,
    });
    Report {
        spec,
        diagnostics: diags,
    }
}

/// What the whole set declares, for cross-document references.
struct Index<'a> {
    by_kind: HashMap<Kind, Vec<&'a Object>>,
    namespaces: BTreeMap<&'a str, Vec<&'a Object>>,
    priority_classes: BTreeSet<&'a str>,
    has_platform: bool,
}

impl<'a> Index<'a> {
    fn new(objects: &'a [Object]) -> Self {
        let mut by_kind: HashMap<Kind, Vec<&Object>> = HashMap::new();
        let mut namespaces: BTreeMap<&str, Vec<&Object>> = BTreeMap::new();
        let mut priority_classes = BTreeSet::new();
        for o in objects {
            by_kind.entry(o.kind()).or_default().push(o);
            if let Spec::Platform(p) = &o.spec {
                for ns in p.namespaces.keys() {
                    namespaces.entry(ns.as_str()).or_default().push(o);
                }
                priority_classes.extend(p.priority_classes.keys().map(String::as_str));
            }
        }
        let has_platform = by_kind.contains_key(&Kind::Platform);
        Self {
            by_kind,
            namespaces,
            priority_classes,
            has_platform,
        }
    }

    fn of_kind(&self, kind: Kind) -> &[&'a Object] {
        self.by_kind.get(&kind).map_or(&[], Vec::as_slice)
    }

    fn find(&self, kinds: &[Kind], namespace: &str, name: &str) -> Option<&'a Object> {
        kinds.iter().find_map(|k| {
            self.of_kind(*k)
                .iter()
                .find(|o| o.namespace() == namespace && o.name() == name)
                .copied()
        })
    }

    fn names_of(&self, kinds: &[Kind], namespace: &str) -> Vec<&'a str> {
        kinds
            .iter()
            .flat_map(|k| self.of_kind(*k).iter())
            .filter(|o| o.namespace() == namespace)
            .map(|o| o.name())
            .collect()
    }

    fn duplicates(&self, objects: &[Object], out: &mut Vec<Diagnostic>) {
        let mut seen: HashMap<(Kind, &str, &str), &Object> = HashMap::new();
        for o in objects {
            if let Some(first) = seen.insert((o.kind(), o.namespace(), o.name()), o) {
                out.push(o.place(Diagnostic::error(
                    "duplicate-object",
                    FieldPath::parse("metadata.name"),
                    format!(
                        "{} is declared twice in namespace {} (first in {}:{})",
                        o.id(),
                        o.namespace(),
                        first.origin.file,
                        first.origin.tree.locate(&FieldPath::parse("metadata.name"))
                    ),
                )));
            }
        }
        for (ns, platforms) in &self.namespaces {
            for extra in platforms.iter().skip(1) {
                out.push(extra.place(Diagnostic::error(
                    "duplicate-namespace",
                    FieldPath::root().key("spec").key("namespaces").key(*ns),
                    format!("namespace {ns} is declared by more than one Platform"),
                )));
            }
        }
    }
}

/// Which names templates of one process may refer to.
#[derive(Clone, Copy)]
struct Scope<'a> {
    params: &'a IndexMap<String, ScalarText>,
    /// The pipeline and the step being checked, when inside a pipeline.
    pipeline: Option<(&'a PipelineSpec, &'a str)>,
}

struct Checker<'a> {
    object: &'a Object,
    index: &'a Index<'a>,
    out: Vec<Diagnostic>,
}

fn spec_path() -> FieldPath {
    FieldPath::root().key("spec")
}

const RESERVED_ENV: &[&str] = &[
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "JOB_COMPLETION_INDEX",
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "MLCTL_OUTPUTS",
];

impl Checker<'_> {
    fn error(
        &mut self,
        code: &str,
        path: FieldPath,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.out.push(Diagnostic::error(code, path, message));
        self.out.last_mut().expect("just pushed")
    }

    fn warning(
        &mut self,
        code: &str,
        path: FieldPath,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.out.push(Diagnostic::warning(code, path, message));
        self.out.last_mut().expect("just pushed")
    }

    fn name_check(
        &mut self,
        path: FieldPath,
        what: &str,
        name: &str,
        rule: fn(&str) -> Option<String>,
    ) {
        if let Some(why) = rule(name) {
            self.error(
                "invalid-name",
                path,
                format!("{what} {name:?} is invalid: {why}"),
            );
        }
    }

    fn metadata(&mut self) {
        let meta = &self.object.metadata;
        let path = FieldPath::root().key("metadata");
        self.name_check(path.key("name"), "name", &meta.name, names::dns1123_label);
        if let Some(ns) = &meta.namespace {
            self.name_check(path.key("namespace"), "namespace", ns, names::dns1123_label);
            if self.index.has_platform
                && self.object.kind() != Kind::Platform
                && !self.index.namespaces.contains_key(ns.as_str())
            {
                let hint = match did_you_mean(ns, self.index.namespaces.keys().copied()) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => "declare it under a Platform's spec.namespaces".into(),
                };
                self.warning(
                    "undeclared-namespace",
                    path.key("namespace"),
                    format!("namespace {ns} is not declared by any Platform, so no quota or limit range applies"),
                )
                .hint = Some(hint);
            }
        }
        self.string_map(&path.key("labels"), &meta.labels, true);
        for key in meta.annotations.keys() {
            if let Some(why) = names::label_key(key) {
                self.error(
                    "invalid-name",
                    path.key("annotations").key(key.as_str()),
                    format!("annotation key {key:?} is invalid: {why}"),
                );
            }
        }
    }

    fn string_map(
        &mut self,
        path: &FieldPath,
        map: &IndexMap<String, String>,
        values_are_labels: bool,
    ) {
        for (k, v) in map {
            if let Some(why) = names::label_key(k) {
                self.error(
                    "invalid-name",
                    path.key(k.as_str()),
                    format!("label key {k:?} is invalid: {why}"),
                );
            }
            if values_are_labels && let Some(why) = names::label_value(v) {
                self.error(
                    "invalid-name",
                    path.key(k.as_str()),
                    format!("label value {v:?} is invalid: {why}"),
                );
            }
        }
    }

    fn priority_class(&mut self, path: FieldPath, class: Option<&String>) {
        if let Some(class) = class
            && self.index.has_platform
            && !self.index.priority_classes.contains(class.as_str())
        {
            let hint = did_you_mean(class, self.index.priority_classes.iter().copied())
                .map(|c| format!("did you mean `{c}`?"));
            self.error(
                "unknown-priority-class",
                path,
                format!("priority class {class} is not declared by any Platform"),
            )
            .hint = hint;
        }
    }

    // ---- templates -------------------------------------------------------------------

    /// Checks the templates in `text`; `allow_steps` says whether step outputs may be used.
    fn template(&mut self, path: &FieldPath, text: &str, scope: Scope<'_>, allow_steps: bool) {
        let refs = match template::references(text) {
            Ok(refs) => refs,
            Err(e) => {
                let d = self.error("invalid-template", path.clone(), format!("{e} in {text:?}"));
                d.hint = e.hint;
                return;
            }
        };
        for r in refs {
            self.reference(path, &r, scope, allow_steps);
        }
    }

    fn reference(&mut self, path: &FieldPath, r: &Ref, scope: Scope<'_>, allow_steps: bool) {
        match r {
            Ref::Param(p) => {
                if !scope.params.contains_key(p) {
                    let d = self.error(
                        "unknown-param",
                        path.clone(),
                        format!("`{{{{{r}}}}}` refers to parameter {p}, which is not declared"),
                    );
                    d.hint = Some(
                        match did_you_mean(p, scope.params.keys().map(String::as_str)) {
                            Some(c) => format!("did you mean `{{{{params.{c}}}}}`?"),
                            None => format!(
                                "declare it under spec.params, e.g. `params: {{{p}: \"...\"}}`"
                            ),
                        },
                    );
                }
            }
            Ref::StepOutput { step, name } | Ref::StepArtifact { step, name } => {
                let Some((pipeline, this_step)) = scope.pipeline else {
                    self.error(
                        "unknown-step",
                        path.clone(),
                        format!("`{{{{{r}}}}}` refers to a step, but this is not a pipeline step"),
                    );
                    return;
                };
                if !allow_steps {
                    self.error(
                        "template-not-allowed",
                        path.clone(),
                        format!("`{{{{{r}}}}}`: step outputs cannot be used here, only parameters"),
                    );
                    return;
                }
                let Some(target) = pipeline.steps.get(step) else {
                    let d = self.error(
                        "unknown-step",
                        path.clone(),
                        format!("`{{{{{r}}}}}` refers to step {step}, which does not exist"),
                    );
                    d.hint = did_you_mean(step, pipeline.steps.keys().map(String::as_str))
                        .map(|c| format!("did you mean `{c}`?"));
                    return;
                };
                let is_artifact = matches!(r, Ref::StepArtifact { .. });
                let declared: Vec<&str> = if is_artifact {
                    target.outputs.artifact_names().map(|(n, _)| n).collect()
                } else {
                    target.outputs.params.iter().map(String::as_str).collect()
                };
                if !declared.contains(&name.as_str()) {
                    let what = if is_artifact { "artifact" } else { "output" };
                    let d = self.error(
                        "unknown-output",
                        path.clone(),
                        format!("`{{{{{r}}}}}`: step {step} declares no {what} {name}"),
                    );
                    d.hint = Some(match did_you_mean(name, declared.iter().copied()) {
                        Some(c) => format!("did you mean `{c}`?"),
                        None if is_artifact => format!("add it to steps.{step}.outputs.artifacts"),
                        None => format!("add `{name}` to steps.{step}.outputs.params"),
                    });
                    return;
                }
                if step == this_step {
                    self.error(
                        "output-not-upstream",
                        path.clone(),
                        format!("`{{{{{r}}}}}`: a step cannot use its own outputs"),
                    );
                } else if !needs_transitively(pipeline, this_step, step) {
                    let d = self.error("output-not-upstream", path.clone(), format!("`{{{{{r}}}}}`: step {this_step} uses an output of step {step} but does not need it"));
                    d.hint = Some(format!("add {step} to steps.{this_step}.needs"));
                }
            }
        }
    }

    fn templated_values<T>(
        &mut self,
        path: &FieldPath,
        value: &Templated<T>,
        scope: Scope<'_>,
    ) -> Option<T>
    where
        T: std::str::FromStr + crate::spec::common::Expecting + Clone,
        T::Err: std::fmt::Display,
    {
        match value {
            Templated::Value(v) => Some(v.clone()),
            Templated::Template(text) => {
                let before = self.out.len();
                self.template(path, text, scope, false);
                if self.out.len() != before {
                    return None;
                }
                match value.resolve(|r| match r {
                    Ref::Param(p) => scope.params.get(p).map(|v| v.0.clone()),
                    _ => None,
                }) {
                    Ok(v) => Some(v),
                    Err(why) => {
                        self.error(
                            "invalid-param-value",
                            path.clone(),
                            format!("with the parameters' defaults, {why}"),
                        );
                        None
                    }
                }
            }
        }
    }

    // ---- building blocks -------------------------------------------------------------

    fn relative_path(&mut self, path: FieldPath, what: &str, value: &str) {
        if value.is_empty() {
            self.error("invalid-path", path, format!("{what} must not be empty"));
            return;
        }
        if value.starts_with('/') || value.starts_with('~') {
            self.error(
                "path-escapes",
                path,
                format!("{what} {value:?} must be relative to the spec's directory"),
            );
            return;
        }
        let mut depth: i64 = 0;
        for part in value.split('/') {
            match part {
                ".." => depth -= 1,
                "" | "." => {}
                _ => depth += 1,
            }
            if depth < 0 {
                self.error(
                    "path-escapes",
                    path,
                    format!("{what} {value:?} leaves the spec's directory"),
                );
                return;
            }
        }
    }

    fn model(&mut self, path: &FieldPath, model: &Model) {
        let uri = &model.uri;
        match uri.split_once("://") {
            Some((scheme, _)) => {
                const SCHEMES: &[&str] =
                    &["s3", "gs", "pvc", "http", "https", "hf", "oci", "azureblob"];
                if !SCHEMES.contains(&scheme) {
                    self.error(
                        "invalid-uri",
                        path.key("uri"),
                        format!("unsupported model URI scheme {scheme}://"),
                    )
                    .hint = Some(format!(
                        "use a path relative to the spec or one of {}",
                        SCHEMES
                            .iter()
                            .map(|s| format!("{s}://"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            None if template::is_template(uri) => {}
            None => self.relative_path(path.key("uri"), "model path", uri),
        }
        if let Some(name) = &model.name {
            self.name_check(path.key("name"), "model name", name, names::param);
        }
    }

    fn env(
        &mut self,
        path: &FieldPath,
        env: &IndexMap<String, ScalarText>,
        scope: Scope<'_>,
        allow_steps: bool,
    ) {
        for (name, value) in env {
            let p = path.key("env").key(name.as_str());
            self.env_name(p.clone(), name);
            self.template(&p, &value.0, scope, allow_steps);
        }
    }

    fn env_name(&mut self, path: FieldPath, name: &str) {
        if let Some(why) = names::env_var(name) {
            self.error(
                "invalid-name",
                path,
                format!("environment variable {name:?} is invalid: {why}"),
            );
        } else if RESERVED_ENV.contains(&name) || name.starts_with("PET_") {
            let what = if name.ends_with("VISIBLE_DEVICES") {
                "the GPUs assigned by the scheduler"
            } else {
                "the distributed-training contract"
            };
            self.error(
                "reserved-env",
                path,
                format!("{name} is set by mlctl from {what}"),
            )
            .hint = Some("remove it; mlctl sets it for every process".into());
        }
    }

    fn secret_env(
        &mut self,
        path: &FieldPath,
        secrets: &IndexMap<String, crate::spec::common::SecretKeyRef>,
    ) {
        for (name, r) in secrets {
            let p = path.key("secretEnv").key(name.as_str());
            self.env_name(p.clone(), name);
            self.name_check(
                p.key("secret"),
                "secret name",
                &r.secret,
                names::dns1123_subdomain,
            );
            if r.key.is_empty()
                || !r
                    .key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
            {
                self.error(
                    "invalid-name",
                    p.key("key"),
                    format!(
                        "secret key {:?} must consist of alphanumerics, '-', '_' or '.'",
                        r.key
                    ),
                );
            }
        }
    }

    fn scheduling(
        &mut self,
        path: &FieldPath,
        node_selector: &IndexMap<String, String>,
        tolerations: &[Toleration],
    ) {
        self.string_map(&path.key("nodeSelector"), node_selector, true);
        for (i, t) in tolerations.iter().enumerate() {
            let p = path.key("tolerations").index(i);
            if t.operator == TolerationOperator::Exists && t.value.is_some() {
                self.error(
                    "invalid-toleration",
                    p.key("value"),
                    "a toleration with operator Exists must not have a value",
                );
            }
            if t.key.is_empty() && t.operator != TolerationOperator::Exists {
                self.error(
                    "invalid-toleration",
                    p.key("key"),
                    "a toleration without a key must use operator Exists",
                );
            }
        }
    }

    fn volumes(&mut self, path: &FieldPath, volumes: &IndexMap<String, Volume>) {
        let mut mounts: HashMap<&str, &str> = HashMap::new();
        for (name, v) in volumes {
            let p = path.key("volumes").key(name.as_str());
            self.name_check(p.clone(), "volume name", name, names::dns1123_label);
            let sources = [
                v.claim.is_some(),
                v.empty_dir.is_some(),
                v.config_map.is_some(),
                v.secret.is_some(),
            ];
            match sources.iter().filter(|s| **s).count() {
                1 => {}
                0 => {
                    self.error(
                        "volume-source",
                        p.clone(),
                        "a volume needs one source: claim, emptyDir, configMap or secret",
                    );
                }
                _ => {
                    self.error(
                        "volume-source",
                        p.clone(),
                        "a volume has exactly one source: claim, emptyDir, configMap or secret",
                    );
                }
            }
            for (field, value) in [
                ("claim", &v.claim),
                ("configMap", &v.config_map),
                ("secret", &v.secret),
            ] {
                if let Some(value) = value {
                    self.name_check(p.key(field), field, value, names::dns1123_subdomain);
                }
            }
            if !v.path.starts_with('/') {
                self.relative_path(p.key("path"), "mount path", &v.path);
            }
            if let Some(other) = mounts.insert(v.path.as_str(), name.as_str()) {
                self.error(
                    "duplicate-mount",
                    p.key("path"),
                    format!("volumes {other} and {name} are both mounted at {}", v.path),
                );
            }
        }
    }

    fn retries(&mut self, path: &FieldPath, retries: Option<&crate::spec::common::Retries>) {
        if let Some(backoff) = retries.and_then(|r| r.backoff.as_ref())
            && let Some(f) = backoff.factor
            && !(f >= 1.0 && f.is_finite())
        {
            self.error(
                "invalid-value",
                path.key("retries").key("backoff").key("factor"),
                format!("backoff factor {f} must be at least 1"),
            );
        }
    }

    fn positive_duration(&mut self, path: FieldPath, what: &str, d: Option<&Duration>) {
        if let Some(d) = d
            && d.0.is_zero()
        {
            self.error(
                "invalid-value",
                path,
                format!("{what} must be longer than 0s"),
            );
        }
    }

    fn resources(&mut self, path: &FieldPath, r: &Resources, scope: Scope<'_>) {
        let cpu = r
            .cpu
            .as_ref()
            .and_then(|q| self.templated_values(&path.key("cpu"), q, scope));
        let memory = r
            .memory
            .as_ref()
            .and_then(|q| self.templated_values(&path.key("memory"), q, scope));
        let gpu = r
            .gpu
            .as_ref()
            .and_then(|q| self.templated_values(&path.key("gpu"), q, scope));
        for (field, q) in [("cpu", &cpu), ("memory", &memory), ("gpu", &gpu)] {
            if let Some(q) = q
                && q.is_negative()
            {
                self.error(
                    "negative-quantity",
                    path.key(field),
                    format!("{field} {q} must not be negative"),
                );
            }
        }
        if let Some(g) = &gpu
            && !g.is_whole()
        {
            self.error(
                "fractional-gpu",
                path.key("gpu"),
                format!("gpu {g} must be a whole number: GPUs are not shared between processes"),
            )
            .hint = Some("request 1 GPU; use a smaller GPU type or MIG for small workloads".into());
        }
        if r.gpu_type.is_some() && gpu.as_ref().is_none_or(|g| g.milli() == 0) {
            self.warning(
                "gpu-type-without-gpu",
                path.key("gpuType"),
                "gpuType is set but no GPU is requested, so it has no effect",
            );
        }
        if let Some(limits) = &r.limits {
            let lp = path.key("limits");
            let lcpu = limits
                .cpu
                .as_ref()
                .and_then(|q| self.templated_values(&lp.key("cpu"), q, scope));
            let lmem = limits
                .memory
                .as_ref()
                .and_then(|q| self.templated_values(&lp.key("memory"), q, scope));
            for (field, req, lim) in [("cpu", &cpu, &lcpu), ("memory", &memory, &lmem)] {
                if let (Some(req), Some(lim)) = (req, lim)
                    && req > lim
                {
                    self.error(
                        "request-exceeds-limit",
                        lp.key(field),
                        format!("{field} limit {lim} is below the request {req}"),
                    );
                }
            }
        }
        if let Some(shm) = &r.shm
            && shm.is_negative()
        {
            self.error(
                "negative-quantity",
                path.key("shm"),
                format!("shm {shm} must not be negative"),
            );
        }
    }

    // ---- kinds -----------------------------------------------------------------------

    /// Checks what a TrainingJob and a pipeline step share.
    fn job_spec(&mut self, path: &FieldPath, job: &JobSpec, scope: Scope<'_>) {
        let in_step = scope.pipeline.is_some();
        for (i, arg) in job.run.iter().enumerate() {
            self.template(&path.key("run").index(i), &arg.0, scope, in_step);
        }
        if let Some(image) = &job.image
            && image.trim().is_empty()
        {
            self.error(
                "invalid-value",
                path.key("image"),
                "image must not be empty",
            );
        }
        if let Some(dir) = &job.working_dir {
            self.relative_path(path.key("workingDir"), "workingDir", dir);
        }
        self.env(path, &job.env, scope, in_step);
        self.secret_env(path, &job.secret_env);
        self.resources(&path.key("resources"), &job.resources, scope);
        if let Some(workers) = &job.workers
            && let Some(n) = self.templated_values(&path.key("workers"), workers, scope)
            && n == 0
        {
            self.error(
                "invalid-value",
                path.key("workers"),
                "workers must be at least 1",
            );
        }
        if job.master_port == Some(0) {
            self.error(
                "invalid-port",
                path.key("masterPort"),
                "masterPort must be between 1 and 65535",
            );
        }
        self.scheduling(path, &job.node_selector, &job.tolerations);
        self.volumes(path, &job.volumes);
        self.retries(path, job.retries.as_ref());
        self.positive_duration(path.key("deadline"), "deadline", job.deadline.as_ref());
        self.outputs(path, job);
        if let Some(python) = &job.python {
            self.python(&path.key("python"), python);
        }
        self.priority_class(path.key("priorityClass"), job.priority_class.as_ref());
        if let Some(sa) = &job.service_account {
            self.name_check(
                path.key("serviceAccount"),
                "service account",
                sa,
                names::dns1123_subdomain,
            );
        }
    }

    fn outputs(&mut self, path: &FieldPath, job: &JobSpec) {
        let op = path.key("outputs");
        let mut seen = HashSet::new();
        for (i, name) in job.outputs.params.iter().enumerate() {
            self.name_check(op.key("params").index(i), "output", name, names::param);
            if !seen.insert(name.as_str()) {
                self.error(
                    "duplicate-output",
                    op.key("params").index(i),
                    format!("output {name} is declared twice"),
                );
            }
        }
        let mut seen = HashSet::new();
        for (i, (name, p)) in job.outputs.artifact_names().enumerate() {
            let ap = op.key("artifacts").index(i);
            self.relative_path(ap.clone(), "artifact path", p);
            if names::param(name).is_some() {
                self.error(
                    "invalid-name",
                    ap.clone(),
                    format!("artifact {p:?} must end in a name of letters, digits, '-' or '_'"),
                );
            }
            if !seen.insert(name) {
                self.error(
                    "duplicate-output",
                    ap,
                    format!("two artifacts are named {name}"),
                );
            }
        }
    }

    fn python(&mut self, path: &FieldPath, python: &crate::spec::common::PythonEnv) {
        for (i, req) in python.requirements.iter().enumerate() {
            let req = req.trim();
            if req.is_empty() || req.starts_with('-') {
                self.error(
                    "invalid-requirement",
                    path.key("requirements").index(i),
                    format!("{req:?} is not a requirement specifier"),
                )
                .hint = Some(
                    "write package specifiers such as numpy>=1.26; pip options are not allowed"
                        .into(),
                );
            }
        }
    }

    fn params(&mut self, params: &IndexMap<String, ScalarText>) {
        for name in params.keys() {
            self.name_check(
                spec_path().key("params").key(name.as_str()),
                "parameter",
                name,
                names::param,
            );
        }
    }

    fn training_job(&mut self, job: &JobSpec) {
        let path = spec_path();
        self.params(&job.params);
        for field in job.step_fields_set() {
            self.error(
                "step-only-field",
                path.key(field),
                format!("`{field}` is only meaningful in a Pipeline step"),
            )
            .hint = Some("put this job in a Pipeline's steps".into());
        }
        if job.run.is_empty() {
            self.error(
                "missing-field",
                path.key("run"),
                "a TrainingJob needs a command in `run`",
            )
            .hint = Some("e.g. run: [python, train.py]".into());
        }
        let scope = Scope {
            params: &job.params,
            pipeline: None,
        };
        self.job_spec(&path, job, scope);
    }

    fn pipeline(&mut self, p: &PipelineSpec) {
        let path = spec_path();
        self.params(&p.params);
        if p.steps.is_empty() {
            self.error(
                "missing-field",
                path.key("steps"),
                "a Pipeline needs at least one step",
            );
        }
        if p.parallelism == Some(0) {
            self.error(
                "invalid-value",
                path.key("parallelism"),
                "parallelism must be at least 1",
            );
        }
        self.positive_duration(path.key("deadline"), "deadline", p.deadline.as_ref());
        let no_scope = Scope {
            params: &p.params,
            pipeline: None,
        };
        self.env(&path, &p.env, no_scope, false);
        let steps_path = path.key("steps");
        // references between steps
        for (name, step) in &p.steps {
            let sp = steps_path.key(name.as_str());
            self.name_check(sp.clone(), "step name", name, names::dns1123_label);
            for (i, need) in step.needs.iter().enumerate() {
                let np = sp.key("needs").index(i);
                if need == name {
                    self.error("self-dependency", np, format!("step {name} needs itself"));
                } else if !p.steps.contains_key(need) {
                    let d = self.error(
                        "unknown-step",
                        np,
                        format!("step {name} needs {need}, which does not exist"),
                    );
                    d.hint = did_you_mean(need, p.steps.keys().map(String::as_str))
                        .map(|c| format!("did you mean `{c}`?"));
                } else if p.on_exit.as_deref() == Some(need.as_str()) {
                    self.error("exit-handler-needed", np, format!("{need} is the exit handler: it runs after every other step and cannot be needed"));
                }
            }
        }
        if let Some(exit) = &p.on_exit {
            match p.steps.get(exit) {
                None => {
                    let d = self.error(
                        "unknown-step",
                        path.key("onExit"),
                        format!("onExit names step {exit}, which does not exist"),
                    );
                    d.hint = did_you_mean(exit, p.steps.keys().map(String::as_str))
                        .map(|c| format!("did you mean `{c}`?"));
                }
                Some(step) if !step.needs.is_empty() => {
                    self.error(
                        "exit-handler-needs",
                        steps_path.key(exit.as_str()).key("needs"),
                        "the exit handler runs after all other steps; it cannot have needs",
                    );
                }
                Some(_) => {}
            }
        }
        for cycle in cycles(p) {
            self.error(
                "dag-cycle",
                steps_path.key(cycle[0].as_str()).key("needs"),
                format!("the steps form a cycle: {}", cycle.join(" -> ")),
            );
        }
        for (name, step) in &p.steps {
            let sp = steps_path.key(name.as_str());
            let scope = Scope {
                params: &p.params,
                pipeline: Some((p, name.as_str())),
            };
            self.step(&sp, name, step, scope);
        }
    }

    /// Checks that a `when` parses as Argo's grammar, with its templates stood in for by a
    /// value (Argo substitutes them before evaluating).
    fn when(&mut self, path: &FieldPath, when: &str) {
        let Ok(pieces) = template::parse(when) else {
            return;
        };
        let substituted: String = pieces
            .iter()
            .map(|p| match p {
                template::Piece::Text(t) => (*t).to_string(),
                template::Piece::Ref(_) => "0".to_string(),
            })
            .collect();
        if let Err(e) = crate::expr::parse(&substituted) {
            self.error("invalid-when", path.clone(), format!("`when` does not parse: {}", e.message))
                .hint = Some("Argo's grammar: comparisons (== != < > <= >=) of numbers and quoted strings, joined by && || and !, with parentheses".into());
        }
    }

    fn step(&mut self, sp: &FieldPath, name: &str, step: &JobSpec, scope: Scope<'_>) {
        if !step.params.is_empty() {
            self.error(
                "step-only-field",
                sp.key("params"),
                "steps use the pipeline's parameters; declare them under spec.params",
            );
        }
        let actions = [
            ("run", !step.run.is_empty()),
            ("job", step.job.is_some()),
            ("deploy", step.deploy.is_some()),
        ];
        let set: Vec<&str> = actions.iter().filter(|a| a.1).map(|a| a.0).collect();
        match set.len() {
            1 => {}
            0 => {
                self.error(
                    "step-action",
                    sp.clone(),
                    format!("step {name} does nothing: give it `run`, `job` or `deploy`"),
                );
            }
            _ => {
                self.error(
                    "step-action",
                    sp.key(set[1]),
                    format!(
                        "step {name} has both `{}` and `{}`; a step does one thing",
                        set[0], set[1]
                    ),
                );
            }
        }
        if let Some(when) = &step.when {
            let before = self.out.len();
            self.template(&sp.key("when"), when, scope, true);
            if self.out.len() == before {
                self.when(&sp.key("when"), when);
            }
        }
        let namespace = self.object.namespace().to_string();
        if let Some(job) = &step.job {
            const JOB_KINDS: [Kind; 2] = [Kind::TrainingJob, Kind::DataJob];
            if self.index.find(&JOB_KINDS, &namespace, job).is_none() {
                let candidates = self.index.names_of(&JOB_KINDS, &namespace);
                let d = self.error(
                    "unknown-job",
                    sp.key("job"),
                    format!("no TrainingJob or DataJob named {job} in namespace {namespace}"),
                );
                d.hint = did_you_mean(job, candidates).map(|c| format!("did you mean `{c}`?"));
            }
        }
        if let Some(deploy) = &step.deploy {
            let dp = sp.key("deploy");
            if self
                .index
                .find(&[Kind::InferenceService], &namespace, &deploy.service)
                .is_none()
            {
                let candidates = self.index.names_of(&[Kind::InferenceService], &namespace);
                let d = self.error(
                    "unknown-service",
                    dp.key("service"),
                    format!(
                        "no InferenceService named {} in namespace {namespace}",
                        deploy.service
                    ),
                );
                d.hint = Some(match did_you_mean(&deploy.service, candidates) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "declare the InferenceService in the same files".into(),
                });
            }
            self.template(&dp.key("model"), &deploy.model, scope, true);
        }
        self.job_spec(sp, step, scope);
    }

    fn service(&mut self, s: &InferenceServiceSpec) {
        let path = spec_path();
        let no_params = IndexMap::new();
        let scope = Scope {
            params: &no_params,
            pipeline: None,
        };
        match (&s.model, &s.server) {
            (Some(model), None) => self.model(&path.key("model"), model),
            (None, Some(server)) => {
                if server.run.is_empty() && server.image.is_none() {
                    self.error(
                        "missing-field",
                        path.key("server"),
                        "a custom server needs `run` (locally) or `image` (Kubernetes)",
                    );
                }
                let ports = &server.ports;
                let named = [
                    ("http", ports.http),
                    ("grpc", ports.grpc),
                    ("metrics", ports.metrics),
                ];
                let mut seen: HashMap<u16, &str> = HashMap::new();
                for (field, port) in named {
                    let Some(port) = port else { continue };
                    let pp = path.key("server").key("ports").key(field);
                    if port == 0 {
                        self.error(
                            "invalid-port",
                            pp,
                            format!("{field} port must be between 1 and 65535"),
                        );
                    } else if let Some(other) = seen.insert(port, field) {
                        self.error(
                            "duplicate-port",
                            pp,
                            format!("{field} and {other} ports are both {port}"),
                        );
                    }
                }
            }
            (Some(_), Some(_)) => {
                self.error("serving-source", path.key("server"), "give either `model` (served by the server for its format) or `server` (your own), not both");
            }
            (None, None) => {
                self.error(
                    "serving-source",
                    path.clone(),
                    "an InferenceService needs `model` or `server`",
                );
            }
        }
        let rp = path.key("replicas");
        if s.replicas.min == 0 {
            self.error(
                "invalid-replicas",
                rp.key("min"),
                "replicas.min must be at least 1",
            );
        }
        if s.replicas.max() < s.replicas.min {
            self.error(
                "replicas-min-exceeds-max",
                rp.key("max"),
                format!(
                    "replicas.max {} is below replicas.min {}",
                    s.replicas.max(),
                    s.replicas.min
                ),
            );
        }
        if let Some(a) = &s.autoscale {
            let ap = path.key("autoscale");
            if a.cpu.is_none()
                && a.memory.is_none()
                && a.requests_per_second.is_none()
                && a.concurrency.is_none()
            {
                self.error("autoscale-without-target", ap.clone(), "autoscale needs at least one target: cpu, memory, requestsPerSecond or concurrency");
            }
            if s.replicas.max() <= s.replicas.min {
                self.error(
                    "autoscale-without-range",
                    rp.clone(),
                    format!(
                        "autoscale needs replicas.max above replicas.min (both are {})",
                        s.replicas.min
                    ),
                )
                .hint = Some("e.g. replicas: {min: 2, max: 10}".into());
            }
            if a.memory.is_some() {
                self.warning(
                    "autoscale-memory",
                    ap.key("memory"),
                    crate::autoscale::MEMORY_TARGET_PITFALL,
                )
                .hint = Some(crate::autoscale::MEMORY_TARGET_HINT.into());
            }
            for (field, pct) in [("cpu", a.cpu), ("memory", a.memory)] {
                if let Some(pct) = pct
                    && pct.0 <= 0.0
                {
                    self.error(
                        "invalid-value",
                        ap.key(field),
                        format!("{field} target must be above 0%"),
                    );
                }
            }
            for (field, q) in [
                ("requestsPerSecond", &a.requests_per_second),
                ("concurrency", &a.concurrency),
            ] {
                if let Some(q) = q
                    && q.milli() <= 0
                {
                    self.error(
                        "invalid-value",
                        ap.key(field),
                        format!("{field} target must be above 0"),
                    );
                }
            }
            if let Some(b) = &a.behavior {
                let bp = ap.key("behavior");
                for (field, rules) in [("scaleUp", &b.scale_up), ("scaleDown", &b.scale_down)] {
                    if let Some(rules) = rules {
                        self.scaling_rules(&bp.key(field), rules);
                    }
                }
            }
        }
        if let Some(probes) = &s.probes {
            let pp = path.key("probes");
            for (field, probe) in [
                ("readiness", &probes.readiness),
                ("liveness", &probes.liveness),
                ("startup", &probes.startup),
            ] {
                if let Some(probe) = probe {
                    self.probe(&pp.key(field), probe);
                }
            }
        }
        if let Some(canary) = &s.canary {
            let cp = path.key("canary");
            self.model(&cp.key("model"), &canary.model);
            if !(canary.weight.0 > 0.0 && canary.weight.0 < 100.0) {
                self.error(
                    "invalid-value",
                    cp.key("weight"),
                    format!(
                        "canary weight {} must be between 0% and 100%",
                        canary.weight
                    ),
                );
            }
        }
        if let Some(b) = &s.batching
            && b.max_batch_size == 0
        {
            self.error(
                "invalid-value",
                path.key("batching").key("maxBatchSize"),
                "maxBatchSize must be at least 1",
            );
        }
        if s.max_concurrency == Some(0) {
            self.error(
                "invalid-value",
                path.key("maxConcurrency"),
                "maxConcurrency must be at least 1",
            );
        }
        if let Some(alerts) = &s.alerts {
            if let Some(rate) = alerts.error_rate
                && rate.0 > 100.0
            {
                self.error(
                    "invalid-value",
                    path.key("alerts").key("errorRate"),
                    "errorRate cannot exceed 100%",
                );
            }
            if let Some(acc) = alerts.min_accuracy
                && !(0.0..=1.0).contains(&acc)
            {
                self.error(
                    "invalid-value",
                    path.key("alerts").key("minAccuracy"),
                    format!("minAccuracy {acc} must be between 0 and 1"),
                );
            }
            self.positive_duration(
                path.key("alerts").key("latencyP95"),
                "latencyP95",
                alerts.latency_p95.as_ref(),
            );
        }
        if let Some(m) = &s.monitoring {
            self.positive_duration(
                path.key("monitoring").key("interval"),
                "interval",
                m.interval.as_ref(),
            );
        }
        if s.port == Some(0) {
            self.error(
                "invalid-port",
                path.key("port"),
                "port must be between 1 and 65535",
            );
        }
        if let Some(secret) = &s.storage_secret {
            self.name_check(
                path.key("storageSecret"),
                "secret name",
                secret,
                names::dns1123_subdomain,
            );
        }
        self.resources(&path.key("resources"), &s.resources, scope);
        self.env(&path, &s.env, scope, false);
        self.secret_env(&path, &s.secret_env);
        self.scheduling(&path, &s.node_selector, &s.tolerations);
        self.priority_class(path.key("priorityClass"), s.priority_class.as_ref());
        if let Some(sa) = &s.service_account {
            self.name_check(
                path.key("serviceAccount"),
                "service account",
                sa,
                names::dns1123_subdomain,
            );
        }
    }

    fn scaling_rules(&mut self, path: &FieldPath, rules: &ScalingRules) {
        if let Some(w) = &rules.stabilization_window
            && w.0.as_secs() > 3600
        {
            self.error(
                "invalid-value",
                path.key("stabilizationWindow"),
                format!("stabilizationWindow {w} exceeds the HPA maximum of 1h"),
            );
        }
        for (i, policy) in rules.policies.iter().enumerate() {
            let pp = path.key("policies").index(i);
            if policy.value == 0 {
                self.error(
                    "invalid-value",
                    pp.key("value"),
                    "a scaling policy value must be at least 1",
                );
            }
            let secs = policy.period.0.as_secs();
            if !(1..=1800).contains(&secs) || policy.period.0.subsec_nanos() != 0 {
                self.error(
                    "invalid-value",
                    pp.key("period"),
                    format!(
                        "period {} must be whole seconds between 1s and 30m (HPA limits)",
                        policy.period
                    ),
                );
            }
        }
    }

    fn probe(&mut self, path: &FieldPath, probe: &Probe) {
        if probe.port == Some(0) {
            self.error(
                "invalid-port",
                path.key("port"),
                "probe port must be between 1 and 65535",
            );
        }
        if let Some(p) = &probe.path
            && !p.starts_with('/')
        {
            self.error(
                "invalid-path",
                path.key("path"),
                format!("probe path {p:?} must start with /"),
            );
        }
        for (field, d) in [("period", &probe.period), ("timeout", &probe.timeout)] {
            if let Some(d) = d
                && d.0.as_secs() < 1
            {
                self.error(
                    "invalid-value",
                    path.key(field),
                    format!("probe {field} must be at least 1s (Kubernetes counts whole seconds)"),
                );
            }
        }
        if probe.failure_threshold == Some(0) {
            self.error(
                "invalid-value",
                path.key("failureThreshold"),
                "failureThreshold must be at least 1",
            );
        }
    }

    fn data_job(&mut self, d: &DataJobSpec) {
        let path = spec_path();
        self.params(&d.params);
        let scope = Scope {
            params: &d.params,
            pipeline: None,
        };
        if d.script.contains("://") {
            let scheme = d.script.split("://").next().unwrap_or_default();
            const SCHEMES: &[&str] = &[
                "s3", "s3a", "gs", "hdfs", "local", "http", "https", "abfs", "abfss", "wasbs",
            ];
            if !SCHEMES.contains(&scheme) {
                self.error(
                    "invalid-uri",
                    path.key("script"),
                    format!("unsupported script URI scheme {scheme}://"),
                );
            }
        } else {
            self.relative_path(path.key("script"), "script", &d.script);
        }
        for (i, arg) in d.args.iter().enumerate() {
            self.template(&path.key("args").index(i), &arg.0, scope, false);
        }
        if d.engine == Engine::Dask && d.spark.is_some() {
            self.error(
                "engine-mismatch",
                path.key("spark"),
                "`spark` settings are for engine spark; this job uses dask",
            );
        }
        if d.engine == Engine::Spark && d.scheduler != Resources::default() {
            self.error(
                "engine-mismatch",
                path.key("scheduler"),
                "`scheduler` is the Dask scheduler; Spark has none (the driver schedules)",
            );
        }
        let ep = path.key("executors");
        if let Some(n) = self.templated_values(&ep.key("instances"), &d.executors.instances, scope)
            && n == 0
        {
            self.error(
                "invalid-value",
                ep.key("instances"),
                "executors.instances must be at least 1",
            );
        }
        self.resources(&ep, &d.executors.resources(), scope);
        self.resources(&path.key("driver"), &d.driver, scope);
        self.resources(&path.key("scheduler"), &d.scheduler, scope);
        self.env(&path, &d.env, scope, false);
        self.secret_env(&path, &d.secret_env);
        if let Some(python) = &d.python {
            self.python(&path.key("python"), python);
        }
        self.retries(&path, d.retries.as_ref());
        self.positive_duration(path.key("deadline"), "deadline", d.deadline.as_ref());
        self.scheduling(&path, &d.node_selector, &d.tolerations);
        self.volumes(&path, &d.volumes);
        self.priority_class(path.key("priorityClass"), d.priority_class.as_ref());
        if let Some(sa) = &d.service_account {
            self.name_check(
                path.key("serviceAccount"),
                "service account",
                sa,
                names::dns1123_subdomain,
            );
        }
    }

    fn platform(&mut self, p: &PlatformSpec) {
        let path = spec_path();
        if let Some(label) = &p.gpu_type_label
            && let Some(why) = names::label_key(label)
        {
            self.error(
                "invalid-name",
                path.key("gpuTypeLabel"),
                format!("label key {label:?} is invalid: {why}"),
            );
        }
        for (name, pool) in &p.node_pools {
            let pp = path.key("nodePools").key(name.as_str());
            self.name_check(pp.clone(), "node pool name", name, names::dns1123_label);
            if pool.count == 0 {
                self.error("invalid-value", pp.key("count"), "count must be at least 1");
            }
            self.string_map(&pp.key("labels"), &pool.labels, true);
            let ap = pp.key("allocatable");
            for (field, q) in [
                ("cpu", Some(&pool.allocatable.cpu)),
                ("memory", Some(&pool.allocatable.memory)),
                ("gpu", pool.allocatable.gpu.as_ref()),
            ] {
                if let Some(q) = q
                    && q.is_negative()
                {
                    self.error(
                        "negative-quantity",
                        ap.key(field),
                        format!("{field} {q} must not be negative"),
                    );
                }
            }
            if let Some(g) = &pool.allocatable.gpu
                && !g.is_whole()
            {
                self.error(
                    "fractional-gpu",
                    ap.key("gpu"),
                    format!("gpu {g} must be a whole number"),
                );
            }
            for (i, t) in pool.taints.iter().enumerate() {
                if let Some(why) = names::label_key(&t.key) {
                    self.error(
                        "invalid-name",
                        pp.key("taints").index(i).key("key"),
                        format!("taint key {:?} is invalid: {why}", t.key),
                    );
                }
            }
        }
        for (name, ns) in &p.namespaces {
            let np = path.key("namespaces").key(name.as_str());
            self.name_check(np.clone(), "namespace", name, names::dns1123_label);
            self.string_map(&np.key("labels"), &ns.labels, true);
            self.namespace(&np, ns);
        }
        let mut default_class: Option<&str> = None;
        for (name, class) in &p.priority_classes {
            let cp = path.key("priorityClasses").key(name.as_str());
            self.name_check(cp.clone(), "priority class", name, names::dns1123_subdomain);
            if class.value > 1_000_000_000 {
                self.error("invalid-value", cp.key("value"), "user-defined priority classes must be at most 1000000000 (higher values are reserved for system classes)");
            }
            if class.default {
                if let Some(first) = default_class {
                    self.error(
                        "duplicate-default",
                        cp.key("default"),
                        format!("priority classes {first} and {name} are both the default"),
                    );
                }
                default_class = Some(name);
            }
        }
        if let Some(m) = &p.monitoring {
            self.string_map(
                &path.key("monitoring").key("prometheusLabels"),
                &m.prometheus_labels,
                true,
            );
        }
    }

    fn namespace(&mut self, np: &FieldPath, ns: &NamespaceSpec) {
        if let Some(q) = &ns.quota {
            let qp = np.key("quota");
            for (field, v) in [("cpu", &q.cpu), ("memory", &q.memory), ("gpu", &q.gpu)] {
                if let Some(v) = v
                    && v.is_negative()
                {
                    self.error(
                        "negative-quantity",
                        qp.key(field),
                        format!("{field} {v} must not be negative"),
                    );
                }
            }
            if let Some(g) = &q.gpu
                && !g.is_whole()
            {
                self.error(
                    "fractional-gpu",
                    qp.key("gpu"),
                    format!("gpu {g} must be a whole number"),
                );
            }
        }
        if let Some(l) = &ns.limits {
            let lp = np.key("limits");
            // Kubernetes defaults a LimitRange's `default` to its `max` and `defaultRequest` to
            // its `default` or `min`: a GPU in any of them becomes a GPU for every container
            for (field, bounds, how) in [
                ("default", &l.default, "gives"),
                ("defaultRequest", &l.default_request, "gives"),
                (
                    "max",
                    &l.max,
                    "becomes the default limit (Kubernetes defaults `default` to `max`), which gives",
                ),
                (
                    "min",
                    &l.min,
                    "becomes the default request (Kubernetes defaults `defaultRequest` to `min`), which gives",
                ),
            ] {
                if bounds.as_ref().is_some_and(|b| b.gpu.is_some()) {
                    self.error("limit-range-gpu-default", lp.key(field).key("gpu"), format!("a GPU in limits.{field} {how} every container of the namespace that sets no GPU a GPU, including sidecars and CPU-only jobs"))
                        .hint = Some("remove it; request GPUs in the workloads that need them, and bound the namespace's total with quota.gpu".into());
                }
            }
            let pairs: [(&str, &Option<ResourceBounds>, &str, &Option<ResourceBounds>); 3] = [
                ("defaultRequest", &l.default_request, "default", &l.default),
                ("min", &l.min, "max", &l.max),
                ("default", &l.default, "max", &l.max),
            ];
            for (low_name, low, high_name, high) in pairs {
                let (Some(low), Some(high)) = (low, high) else {
                    continue;
                };
                for (field, a, b) in [
                    ("cpu", &low.cpu, &high.cpu),
                    ("memory", &low.memory, &high.memory),
                    ("gpu", &low.gpu, &high.gpu),
                ] {
                    if let (Some(a), Some(b)) = (a, b)
                        && a > b
                    {
                        self.error("limit-range-inverted", lp.key(low_name).key(field), format!("limits.{low_name}.{field} {a} exceeds limits.{high_name}.{field} {b}"));
                    }
                }
            }
        }
        if let Some(net) = &ns.network {
            let netp = np.key("network");
            self.string_map(&netp.key("appliesTo"), &net.applies_to, true);
            for (i, rule) in net.ingress.iter().enumerate() {
                let rp = netp.key("ingress").index(i);
                if rule.from.is_empty() {
                    self.error(
                        "missing-field",
                        rp.key("from"),
                        "an ingress rule needs at least one peer in `from`",
                    );
                }
                for (j, peer) in rule.from.iter().enumerate() {
                    self.peer(&rp.key("from").index(j), peer);
                }
            }
            for (i, rule) in net.egress.iter().enumerate() {
                let rp = netp.key("egress").index(i);
                if rule.to.is_empty() {
                    self.error("missing-field", rp.key("to"), "an egress rule needs at least one peer in `to` (use cidr: 0.0.0.0/0 for anywhere)");
                }
                for (j, peer) in rule.to.iter().enumerate() {
                    self.peer(&rp.key("to").index(j), peer);
                }
            }
        }
    }

    fn peer(&mut self, path: &FieldPath, peer: &Peer) {
        if peer.namespace.is_none() && peer.pods.is_empty() && peer.cidr.is_none() {
            self.error(
                "empty-peer",
                path.clone(),
                "a peer needs `namespace`, `pods` or `cidr`",
            );
        }
        if peer.cidr.is_some() && (peer.namespace.is_some() || !peer.pods.is_empty()) {
            self.error(
                "invalid-peer",
                path.key("cidr"),
                "`cidr` cannot be combined with `namespace` or `pods`",
            );
        }
        if let Some(ns) = &peer.namespace {
            self.name_check(path.key("namespace"), "namespace", ns, names::dns1123_label);
        }
        self.string_map(&path.key("pods"), &peer.pods, true);
        for (i, cidr) in peer.cidr.iter().chain(&peer.except).enumerate() {
            let p = if i == 0 && peer.cidr.is_some() {
                path.key("cidr")
            } else {
                path.key("except")
                    .index(i - usize::from(peer.cidr.is_some()))
            };
            if !is_cidr(cidr) {
                self.error(
                    "invalid-cidr",
                    p,
                    format!("{cidr:?} is not an address block such as 10.0.0.0/8"),
                );
            }
        }
        if !peer.except.is_empty() && peer.cidr.is_none() {
            self.error(
                "invalid-peer",
                path.key("except"),
                "`except` needs a `cidr`",
            );
        }
    }
}

/// The workloads of an object: each process shape, how many run together, and where its
/// resources are written.
fn workloads(object: &Object) -> Vec<(FieldPath, Resources, u32, &IndexMap<String, ScalarText>)> {
    static NO_PARAMS: std::sync::OnceLock<IndexMap<String, ScalarText>> =
        std::sync::OnceLock::new();
    let none = NO_PARAMS.get_or_init(IndexMap::new);
    let spec = spec_path();
    let workers = |w: &Option<Templated<u32>>, params: &IndexMap<String, ScalarText>| {
        w.as_ref()
            .and_then(|w| {
                crate::workload::resolve(
                    w,
                    &crate::workload::params(params, &IndexMap::new()).ok()?,
                )
                .ok()
            })
            .unwrap_or(1)
    };
    match &object.spec {
        Spec::TrainingJob(j) => vec![(
            spec.key("resources"),
            j.resources.clone(),
            workers(&j.workers, &j.params),
            &j.params,
        )],
        Spec::Pipeline(p) => p
            .steps
            .iter()
            .filter(|(_, s)| s.job.is_none() && s.deploy.is_none())
            .map(|(name, s)| {
                (
                    spec.key("steps").key(name.as_str()).key("resources"),
                    s.resources.clone(),
                    workers(&s.workers, &p.params),
                    &p.params,
                )
            })
            .collect(),
        Spec::InferenceService(s) => vec![(
            spec.key("resources"),
            s.resources.clone(),
            s.replicas.min.max(1),
            none,
        )],
        Spec::DataJob(d) => {
            let mut out = vec![
                (spec.key("driver"), d.driver.clone(), 1, &d.params),
                (
                    spec.key("executors"),
                    d.executors.resources(),
                    workers(&Some(d.executors.instances.clone()), &d.params),
                    &d.params,
                ),
            ];
            if d.engine == Engine::Dask {
                out.push((spec.key("scheduler"), d.scheduler.clone(), 1, &d.params));
            }
            out
        }
        Spec::Platform(_) => Vec::new(),
    }
}

/// Whether each workload of `object` could ever be admitted in its namespace: the limit
/// range's bounds and the quota's hard amounts, applied exactly as the scheduler applies them,
/// on a node large enough that only the namespace's rules can refuse it.
fn namespace_fit(object: &Object, policy: &crate::sched::NamespacePolicy) -> Vec<Diagnostic> {
    use crate::sched::{Decision, Event, GpuDevice, JobRequest, Node, Policy, Scheduler};
    let mut out = Vec::new();
    for (path, resources, workers, params) in workloads(object) {
        let Ok(params) = crate::workload::params(params, &IndexMap::new()) else {
            continue;
        };
        let Ok(pod) = crate::workload::pod(&resources, &IndexMap::new(), &[], &params) else {
            continue; // a parameter that does not resolve is reported by the checks above
        };
        let gpus: u64 = pod
            .containers
            .iter()
            .map(|c| u64::from(c.requests.gpus.unwrap_or(0)))
            .sum();
        let mut node = Node::new("any", u64::MAX / 4, u64::MAX / 4);
        node.gpus = (0..gpus * u64::from(workers))
            .map(|i| GpuDevice {
                id: i.to_string(),
                model: resources.gpu_type.clone().unwrap_or_default(),
            })
            .collect();
        let mut scheduler = Scheduler::new(Policy::default());
        let job = JobRequest {
            id: crate::sched::JobId("check".into()),
            namespace: policy.name.clone(),
            priority: 0,
            workers,
            pod,
        };
        let decisions = [
            Event::AddNode(node),
            Event::SetNamespace(policy.clone()),
            Event::Submit(job),
        ]
        .into_iter()
        .flat_map(|e| scheduler.apply(e).unwrap_or_default())
        .collect::<Vec<_>>();
        for d in decisions {
            if let Decision::Reject { reason, .. } = d {
                let many = if workers > 1 {
                    format!(" ({workers} together)")
                } else {
                    String::new()
                };
                out.push(
                    Diagnostic::error(
                        "exceeds-namespace-limits",
                        path.clone(),
                        format!("these resources{many} can never be admitted in namespace {}: {reason}", policy.name),
                    )
                    .with_hint("the namespace's quota and limit range are declared by a Platform; lower the request or raise the bound"),
                );
            }
        }
    }
    out
}

fn is_cidr(text: &str) -> bool {
    let Some((addr, bits)) = text.split_once('/') else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits.parse::<u8>().is_ok_and(|b| b <= 32),
        Ok(std::net::IpAddr::V6(_)) => bits.parse::<u8>().is_ok_and(|b| b <= 128),
        Err(_) => false,
    }
}

/// Every cycle of the steps' `needs` graph (as the DAG engine finds them when sealing), each
/// a path that starts and ends with the same step. Unknown and self references are left out:
/// they have their own findings.
fn cycles(p: &PipelineSpec) -> Vec<Vec<String>> {
    let mut b = crate::dag::DagBuilder::new();
    for (name, step) in &p.steps {
        b.node(name.clone()).needs(
            step.needs
                .iter()
                .filter(|n| *n != name && p.steps.contains_key(*n))
                .cloned(),
        );
    }
    match b.seal() {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .0
            .into_iter()
            .filter_map(|e| match e {
                crate::dag::SealError::Cycle { path, .. } => Some(path),
                _ => None,
            })
            .collect(),
    }
}

/// Whether step `from` needs step `target`, directly or through other steps.
fn needs_transitively(p: &PipelineSpec, from: &str, target: &str) -> bool {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = vec![from];
    while let Some(step) = todo.pop() {
        for need in p.steps.get(step).map_or(&[][..], |s| s.needs.as_slice()) {
            if need == target {
                return true;
            }
            if seen.insert(need.as_str()) {
                todo.push(need.as_str());
            }
        }
    }
    false
}
