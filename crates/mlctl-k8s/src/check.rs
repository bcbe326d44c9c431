//! `mlctl check` as a pure function: manifest texts in, sorted located diagnostics out.
//!
//! Each file is parsed into located YAML documents (a syntax error becomes a finding, and the
//! documents around it are still checked), every object is validated against the schema of
//! its kind for the chosen Kubernetes version, and then every rule of [`crate::rules`] runs
//! over all objects of the invocation, so that rules can follow references between documents
//! (a ServiceMonitor and the Service it scrapes, an HPA and its Deployment).

use mlctl_core::diag::{self, Diagnostic, Severity};
use mlctl_core::parallel::in_parallel;
use mlctl_core::path::FieldPath;
use mlctl_core::yaml::{self, Node};

use crate::manifest::Object;
use crate::rules::{self, Ctx, Emitter};
use crate::schema::{self, KindStatus, KubeVersion};

/// One input text.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// How findings name the file (`-` for standard input).
    pub name: &'a str,
    /// Its contents.
    pub text: &'a str,
}

/// What to check against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The Kubernetes release whose schemas and served APIs apply.
    pub kube_version: KubeVersion,
}

/// The outcome of one check.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every finding, sorted by file, position, severity and rule.
    pub diagnostics: Vec<Diagnostic>,
    /// Documents read.
    pub documents: usize,
    /// Kubernetes objects checked (documents, plus items of `List`s).
    pub objects: usize,
    /// Files that had a YAML syntax error (their other documents were still checked).
    pub unparseable: Vec<String>,
}

/// Checks all `sources` together (parsed on all cores).
pub fn check(sources: &[Source<'_>], options: &Options) -> Report {
    let parsed = in_parallel(sources.len(), |i| parse(sources[i].text));
    let files: Vec<&str> = sources.iter().map(|s| s.name).collect();
    check_parsed(&files, &parsed, options)
}

/// Checks all files together, given their names and what [`parse`] made of their texts: a
/// caller can parse each file as it reads it (and drop its text), and a caller that exits right
/// after can keep the trees instead of freeing them.
pub fn check_parsed(files: &[&str], parsed: &[Parsed], options: &Options) -> Report {
    let mut report = Report::default();
    let mut emitter = Emitter::new(files);
    let mut objects = Vec::new();
    for (file, (name, parsed)) in files.iter().zip(parsed).enumerate() {
        if !parsed.errors.is_empty() {
            report.unparseable.push(name.to_string());
        }
        for err in &parsed.errors {
            emitter.push(
                Diagnostic::error(rules::YAML_SYNTAX.id, FieldPath::root(), &err.message)
                    .with_hint("fix the YAML syntax; the other documents of the file were checked")
                    .at(name, err.pos),
            );
        }
        report.documents += parsed.documents.len();
        for doc in &parsed.documents {
            collect_objects(file, doc, &mut objects, &mut emitter);
        }
    }
    report.objects = objects.len();
    let ctx = Ctx::new(&objects, options.kube_version);
    // Schema validation (per object) and the rules (each over all objects) run on all cores:
    // the rules first, as a rule over all objects is a longer task than a chunk of objects and
    // the chunks fill in around them. Their findings are put together in the order one thread
    // would have made them: schemas, then rules.
    let rules: Vec<&'static rules::Rule> =
        rules::RULES.iter().filter(|r| r.run.is_some()).collect();
    let schema_tasks = objects.len().div_ceil(SCHEMA_CHUNK);
    let mut found = in_parallel(rules.len() + schema_tasks, |task| {
        let mut out = Emitter::new(files);
        if let Some(rule) = rules.get(task) {
            if let Some(run) = rule.run {
                out.rule = Some(rule);
                run(&ctx, &mut out);
            }
        } else {
            let start = (task - rules.len()) * SCHEMA_CHUNK;
            let end = objects.len().min(start + SCHEMA_CHUNK);
            for obj in &objects[start..end] {
                check_schema(obj, options.kube_version, &mut out);
            }
        }
        out.finish()
    });
    let by_rules: Vec<_> = found.drain(..rules.len()).collect();
    for diagnostics in found.into_iter().chain(by_rules) {
        emitter.extend(diagnostics);
    }
    report.diagnostics = emitter.finish();
    diag::sort(&mut report.diagnostics);
    report
}

/// One source parsed.
#[derive(Debug)]
pub struct Parsed {
    /// Its documents (all of them, or those around its syntax errors).
    pub documents: Vec<Node>,
    /// Its syntax errors.
    pub errors: Vec<yaml::SyntaxError>,
}

/// Objects validated against their schemas by one task.
const SCHEMA_CHUNK: usize = 64;

/// Parses a YAML stream; on a syntax error, parses each `---`-separated document on its
/// own so that one broken document does not hide the others.
pub fn parse(text: &str) -> Parsed {
    match yaml::parse_documents(text) {
        Ok(documents) => Parsed {
            documents,
            errors: Vec::new(),
        },
        Err(whole) => {
            let mut documents = Vec::new();
            let mut errors = Vec::new();
            let mut start = 0usize;
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let mut chunks = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                if i > start && is_document_start(line) {
                    chunks.push((start, i));
                    start = i;
                }
            }
            chunks.push((start, lines.len()));
            if chunks.len() == 1 {
                return Parsed {
                    documents,
                    errors: vec![whole],
                };
            }
            for (from, to) in chunks {
                // pad with empty lines so positions stay those of the whole file
                let mut chunk = "\n".repeat(from);
                chunk.extend(lines[from..to].iter().copied());
                match yaml::parse_documents(&chunk) {
                    Ok(d) => documents.extend(d),
                    Err(e) => errors.push(e),
                }
            }
            Parsed { documents, errors }
        }
    }
}

fn is_document_start(line: &str) -> bool {
    let line = line.trim_end();
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
}

fn collect_objects<'a>(
    file: usize,
    doc: &'a Node,
    out: &mut Vec<Object<'a>>,
    emitter: &mut Emitter<'_>,
) {
    if doc.as_map().is_some_and(<[_]>::is_empty) {
        return;
    }
    let Some(obj) = Object::new(file, doc, FieldPath::root(), doc) else {
        let what = if doc.as_map().is_some() {
            "a mapping without `apiVersion` and `kind`".to_string()
        } else {
            doc.type_name().to_string()
        };
        emitter.push(
            Diagnostic::error(
                rules::NOT_AN_OBJECT.id,
                FieldPath::root(),
                format!("this document is {what}, not a Kubernetes object"),
            )
            .with_hint("every document needs `apiVersion`, `kind` and `metadata`")
            .at(emitter.file_name(file), doc.pos),
        );
        return;
    };
    if obj.kind.ends_with("List")
        && let Some(items) = doc.get("items").and_then(Node::as_seq)
    {
        for (i, item) in items.iter().enumerate() {
            let base = FieldPath::root().key("items").index(i);
            if let Some(o) = Object::new(file, doc, base, item) {
                out.push(o);
            }
        }
        return;
    }
    out.push(obj);
}

fn check_schema(obj: &Object<'_>, version: KubeVersion, emitter: &mut Emitter<'_>) {
    let status = schema::status(version, obj.api_version, obj.kind);
    let kind_path = FieldPath::root().key("kind");
    match &status {
        KindStatus::Removed { message } => {
            emitter.report_as(
                &rules::REMOVED_API,
                Severity::Error,
                obj,
                FieldPath::root().key("apiVersion"),
                format!(
                    "{} {} is not served by Kubernetes {version}",
                    obj.api_version, obj.kind
                ),
                Some(message.clone()),
            );
            return;
        }
        KindStatus::Deprecated {
            message,
            replacement,
        } => emitter.report_as(
            &rules::DEPRECATED_API,
            Severity::Warning,
            obj,
            FieldPath::root().key("apiVersion"),
            format!("{} {} is deprecated: {message}", obj.api_version, obj.kind),
            Some(format!("use {replacement}")),
        ),
        KindStatus::Unknown {
            served_as,
            similar_kind,
        } => {
            let (severity, message, hint) = if !served_as.is_empty() {
                (
                    Severity::Error,
                    format!("{} is not served as {}", obj.kind, obj.api_version),
                    Some(format!("use apiVersion: {}", served_as.join(" or "))),
                )
            } else if let Some(similar) = similar_kind {
                (
                    Severity::Error,
                    format!("{} has no kind {}", obj.api_version, obj.kind),
                    Some(format!("did you mean `{similar}`?")),
                )
            } else {
                (
                    Severity::Info,
                    format!(
                        "not checked: no schema for {} {} (rules that do not need a schema still ran)",
                        obj.api_version, obj.kind
                    ),
                    None,
                )
            };
            emitter.report_as(
                &rules::UNKNOWN_KIND,
                severity,
                obj,
                kind_path,
                message,
                hint,
            );
            return;
        }
        KindStatus::Known { .. } => {}
    }
    for v in schema::validate_node(version, obj.node) {
        let rule = rules::schema_rule(v.code());
        emitter.report_as(
            rule,
            rule.severity,
            obj,
            v.path.clone(),
            v.message(),
            v.hint(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_does_not_hide_the_other_documents() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [oops\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, labelz: {}}\n";
        let report = check(
            &[Source {
                name: "f.yaml",
                text,
            }],
            &Options::default(),
        );
        assert_eq!(report.unparseable, vec!["f.yaml"]);
        assert_eq!(report.objects, 2);
        let codes: Vec<_> = report
            .diagnostics
            .iter()
            .map(|d| (d.code.as_str(), d.pos.line))
            .collect();
        assert_eq!(
            codes,
            vec![("yaml-syntax", 6), ("schema-unknown-field", 10)]
        );
    }

    #[test]
    fn list_items_are_objects_located_in_the_list() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  dta: {}\n";
        let report = check(
            &[Source {
                name: "l.yaml",
                text,
            }],
            &Options::default(),
        );
        assert_eq!(report.objects, 1);
        let d = &report.diagnostics[0];
        assert_eq!(d.code, "schema-unknown-field");
        assert_eq!(d.path.to_string(), "items[0].dta");
        assert_eq!(d.pos.line, 7);
        assert_eq!(d.hint.as_deref(), Some("did you mean `data`?"));
    }
}
