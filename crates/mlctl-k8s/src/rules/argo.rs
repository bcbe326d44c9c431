//! Argo Workflows: templates, tasks and steps that are referenced but not defined, and
//! `{{...}}` expressions that read outputs or inputs a template does not declare. These are
//! what `argo lint` reports and the controller fails on at run time, after earlier steps
//! have already spent their GPU hours.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mlctl_core::diag::did_you_mean;
use mlctl_core::path::FieldPath;
use mlctl_core::yaml::{Node, Value};

use super::{Ctx, Emitter};
use crate::manifest::Object;

/// The workflow spec of an Argo object and its path.
fn workflow_spec<'a>(obj: &Object<'a>) -> Option<(FieldPath, &'a Node)> {
    let path = match (obj.group(), obj.kind) {
        ("argoproj.io", "Workflow" | "WorkflowTemplate" | "ClusterWorkflowTemplate") => "spec",
        ("argoproj.io", "CronWorkflow") => "spec.workflowSpec",
        _ => return None,
    };
    Some((FieldPath::parse(path), obj.at(path)?))
}

struct Templates<'a> {
    by_name: BTreeMap<&'a str, (usize, &'a Node)>,
}

impl<'a> Templates<'a> {
    fn of(spec: &'a Node) -> Self {
        let mut by_name = BTreeMap::new();
        for (i, t) in spec.seq("templates").iter().enumerate() {
            if let Some(name) = t.get("name").and_then(Node::as_str) {
                by_name.insert(name, (i, t));
            }
        }
        Self { by_name }
    }

    fn get(&self, name: &str) -> Option<&'a Node> {
        self.by_name.get(name).map(|(_, t)| *t)
    }
}

/// A step or a DAG task.
struct Invocation<'a> {
    /// The index of the template that calls it.
    caller: usize,
    /// Where it is in that template.
    place: Place,
    /// Its name.
    name: &'a str,
    node: &'a Node,
}

/// Where a call is in its template: `steps[group][index]` or `dag.tasks[index]`.
enum Place {
    Step(usize, usize),
    Task(usize),
}

impl Invocation<'_> {
    /// Its path (made only for a finding).
    fn path(&self, spec_path: &FieldPath) -> FieldPath {
        let template = spec_path.key("templates").index(self.caller);
        match self.place {
            Place::Step(group, index) => template.key("steps").index(group).index(index),
            Place::Task(index) => template.key("dag").key("tasks").index(index),
        }
    }
}

/// The steps and DAG tasks of every template of `spec`.
fn invocations(spec: &Node) -> Vec<Invocation<'_>> {
    fn name(node: &Node) -> &str {
        node.get("name").and_then(Node::as_str).unwrap_or("")
    }
    let mut out = Vec::new();
    for (caller, t) in spec.seq("templates").iter().enumerate() {
        for (g, group) in t.seq("steps").iter().enumerate() {
            for (s, step) in group.as_seq().unwrap_or_default().iter().enumerate() {
                out.push(Invocation {
                    caller,
                    place: Place::Step(g, s),
                    name: name(step),
                    node: step,
                });
            }
        }
        let tasks = t.get("dag").map(|dag| dag.seq("tasks")).unwrap_or_default();
        for (k, task) in tasks.iter().enumerate() {
            out.push(Invocation {
                caller,
                place: Place::Task(k),
                name: name(task),
                node: task,
            });
        }
    }
    out
}

fn uses_template_ref(spec: &Node) -> bool {
    spec.get("workflowTemplateRef").is_some()
}

/// Templates named but not defined.
pub fn undefined_template(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let Some((spec_path, spec)) = workflow_spec(obj) else {
            continue;
        };
        if uses_template_ref(spec) {
            continue;
        }
        let templates = Templates::of(spec);
        let names: Vec<&str> = templates.by_name.keys().copied().collect();
        let mut check = |name: &str, what: &str, path: &dyn Fn() -> FieldPath| {
            if templates.get(name).is_none() {
                e.report(
                    obj,
                    path(),
                    format!("{what} template `{name}` is not defined in this {}: the workflow fails when it gets there", obj.kind),
                    Some(match did_you_mean(name, names.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("define a template named `{name}` under spec.templates, or use `templateRef` for one in a WorkflowTemplate"),
                    }),
                );
            }
        };
        for field in ["entrypoint", "onExit"] {
            if let Some(name) = spec.get(field).and_then(Node::as_str) {
                check(name, field, &|| spec_path.key(field));
            }
        }
        for call in invocations(spec) {
            for (field, what) in [("template", "the"), ("onExit", "the onExit")] {
                if let Some(name) = call.node.get(field).and_then(Node::as_str) {
                    check(name, what, &|| call.path(&spec_path).key(field));
                }
            }
        }
    }
}

/// Task names in a `depends` expression.
fn depends_names(expr: &str) -> Vec<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .filter(|t| !t.is_empty())
        .map(|t| t.split('.').next().unwrap_or(t))
        .collect()
}

/// Calls `f` with every `{{...}}` expression in the scalars under `node` (its inner text,
/// trimmed) and where it is.
fn expressions<'a>(node: &'a Node, base: &FieldPath, f: &mut dyn FnMut(&str, &At<'_, 'a>)) {
    walk_expressions(node, base, &mut Vec::new(), f);
}

/// A step of a walk down a tree: a key or an index, borrowed from the tree.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where an expression is: steps below a base path. Most expressions are fine, so the
/// path is built only for a finding.
struct At<'s, 'a> {
    base: &'s FieldPath,
    steps: &'s [Step<'a>],
}

impl At<'_, '_> {
    fn path(&self) -> FieldPath {
        let mut path = self.base.clone();
        for step in self.steps {
            match step {
                Step::Key(key) => path.push_key(*key),
                Step::Index(i) => path.push_index(*i),
            }
        }
        path
    }
}

fn walk_expressions<'a>(
    node: &'a Node,
    base: &FieldPath,
    steps: &mut Vec<Step<'a>>,
    f: &mut dyn FnMut(&str, &At<'_, 'a>),
) {
    match &node.value {
        Value::Str(s) if s.contains("{{") => {
            let at = At { base, steps };
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else { break };
                f(after[..end].trim(), &at);
                rest = &after[end + 2..];
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                steps.push(Step::Index(i));
                walk_expressions(item, base, steps, f);
                steps.pop();
            }
        }
        Value::Map(entries) => {
            for entry in entries {
                steps.push(Step::Key(&entry.key));
                walk_expressions(&entry.value, base, steps, f);
                steps.pop();
            }
        }
        _ => {}
    }
}

/// Undefined tasks and steps.
pub fn undefined_task(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let Some((spec_path, spec)) = workflow_spec(obj) else {
            continue;
        };
        for (i, t) in spec.seq("templates").iter().enumerate() {
            let tpath = spec_path.key("templates").index(i);
            let (kind, body, names): (&str, &Node, BTreeSet<&str>) = if let Some(dag) = t.get("dag")
            {
                let names = dag
                    .seq("tasks")
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Node::as_str))
                    .collect();
                ("tasks", dag, names)
            } else if let Some(steps) = t.get("steps") {
                let names = steps
                    .as_seq()
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|g| g.as_seq().unwrap_or_default())
                    .filter_map(|s| s.get("name").and_then(Node::as_str))
                    .collect();
                ("steps", steps, names)
            } else {
                continue;
            };
            let body_path = tpath.key(if kind == "tasks" { "dag" } else { "steps" });
            let mut report = |path: FieldPath, name: &str, how: &str| {
                e.report(
                    obj,
                    path,
                    format!(
                        "{how} `{name}`, which is not a {} of this template",
                        if kind == "tasks" { "task" } else { "step" }
                    ),
                    Some(match did_you_mean(name, names.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!(
                            "the {kind} here are {}",
                            super::list(&names.iter().collect::<Vec<_>>())
                        ),
                    }),
                );
            };
            if kind == "tasks" {
                for (k, task) in body.seq("tasks").iter().enumerate() {
                    let kpath = body_path.key("tasks").index(k);
                    for (d, dep) in task.seq("dependencies").iter().enumerate() {
                        if let Some(dep) = dep.as_str()
                            && !names.contains(dep)
                        {
                            report(kpath.key("dependencies").index(d), dep, "depends on");
                        }
                    }
                    if let Some(expr) = task.get("depends").and_then(Node::as_str) {
                        for dep in depends_names(expr) {
                            if !names.contains(dep) {
                                report(kpath.key("depends"), dep, "depends on");
                            }
                        }
                    }
                }
            }
            expressions(body, &body_path, &mut |expr, at| {
                if expr.starts_with('=') {
                    return;
                }
                let mut parts = expr.splitn(3, '.');
                if parts.next() != Some(kind) {
                    return;
                }
                if let Some(name) = parts.next()
                    && !names.contains(name)
                {
                    report(at.path(), name, "reads");
                }
            });
        }
    }
}

fn declared(template: &Node, section: &str, kind: &str, name: &str) -> Option<bool> {
    let list = template.get(section).and_then(|s| s.get(kind));
    Some(
        list.and_then(Node::as_seq)
            .unwrap_or_default()
            .iter()
            .any(|p| p.get("name").and_then(Node::as_str) == Some(name)),
    )
}

/// Outputs and inputs read but not declared.
pub fn undeclared_output(ctx: &Ctx<'_>, e: &mut Emitter<'_>) {
    for obj in ctx.objects {
        let Some((spec_path, spec)) = workflow_spec(obj) else {
            continue;
        };
        let templates = Templates::of(spec);
        // (calling template, step/task name) -> the step or task (the first of that name)
        let mut calls: HashMap<(usize, &str), &Node> = HashMap::new();
        for call in invocations(spec) {
            calls.entry((call.caller, call.name)).or_insert(call.node);
        }
        for (i, t) in spec.seq("templates").iter().enumerate() {
            let tpath = spec_path.key("templates").index(i);
            let tname = t.get("name").and_then(Node::as_str).unwrap_or("");
            expressions(t, &tpath, &mut |expr, at| {
                if expr.starts_with('=') {
                    return;
                }
                let parts: Vec<&str> = expr.splitn(5, '.').collect();
                match parts.as_slice() {
                    ["inputs", kind @ ("parameters" | "artifacts"), name]
                        if declared(t, "inputs", kind, name) == Some(false) =>
                    {
                        e.report(
                                obj,
                                at.path(),
                                format!("reads `inputs.{kind}.{name}`, but template `{tname}` declares no input {} `{name}`", kind.trim_end_matches('s')),
                                Some(format!("add `{{name: {name}}}` to the template's `inputs.{kind}`")),
                            );
                    }
                    [
                        scope @ ("steps" | "tasks"),
                        step,
                        "outputs",
                        kind @ ("parameters" | "artifacts"),
                        name,
                    ] => {
                        let Some(call) = calls.get(&(i, *step)) else {
                            return;
                        };
                        let Some(callee) = call.get("template").and_then(Node::as_str) else {
                            return; // templateRef or inline: not visible here
                        };
                        let Some(template) = templates.get(callee) else {
                            return;
                        };
                        if declared(template, "outputs", kind, name) == Some(false) {
                            e.report(
                                obj,
                                at.path(),
                                format!("reads `{scope}.{step}.outputs.{kind}.{name}`, but template `{callee}` (run by `{step}`) declares no output {} `{name}`", kind.trim_end_matches('s')),
                                Some(format!("declare it in `{callee}`: `outputs: {{{kind}: [{{name: {name}, valueFrom: {{path: ...}}}}]}}`")),
                            );
                        }
                    }
                    _ => {}
                }
            });
        }
    }
}
