//! `mlctl check PATH...`: finds the mistakes in Kubernetes manifests (schemas of the chosen
//! Kubernetes version and CRDs, API-server checks, ML/data rules) and prints them as text,
//! JSON or SARIF 2.1.0.
//!
//! Exit codes: 0 when no finding reaches `--fail-on`, 1 when one does, 3 when an input could
//! not be read or a file is not valid YAML (its syntax error is still reported, located, and
//! the other files and documents are still checked).

use std::path::PathBuf;

use mlctl_core::diag::{self, Diagnostic, Severity};
use mlctl_k8s::check::{self as checker, Options};
use mlctl_k8s::rules;
use mlctl_k8s::schema::KubeVersion;
use serde_json::json;

use crate::exit::{self, Outcome};
use crate::inputs::{self, WalkArgs};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories (`-` for standard input).
    #[arg(value_name = "PATH", required_unless_present = "files")]
    paths: Vec<PathBuf>,
    /// The same as PATH, kubectl-style; may be repeated.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    walk: WalkArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Kubernetes version whose schemas and served APIs apply.
    #[arg(long, value_name = "VERSION", default_value = "1.33", value_parser = parse_version)]
    kube_version: KubeVersion,
    /// Exit with 1 when a finding is at least this severe.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    fail_on: FailOn,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FailOn {
    Error,
    Warning,
}

pub fn parse_version(s: &str) -> Result<KubeVersion, String> {
    s.parse()
        .map_err(|e: mlctl_k8s::schema::UnsupportedVersion| e.to_string())
}

pub fn run(args: &Args) -> Outcome {
    let paths: Vec<PathBuf> = args.paths.iter().chain(&args.files).cloned().collect();
    // Each file is parsed by the thread that read it, and its text dropped: the texts are
    // not needed once parsed, and not holding them all keeps ~a quarter of the memory that
    // such a run would touch (touching fresh memory is a large part of its time).
    let files = inputs::read_all_with(&paths, args.walk, |text| checker::parse(&text))?;
    let (names, parsed): (Vec<String>, Vec<checker::Parsed>) = files.into_iter().unzip();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let options = Options {
        kube_version: args.kube_version,
    };
    let report = checker::check_parsed(&names, &parsed, &options);
    // The trees are not freed: the process ends once the report is printed, and freeing the
    // trees of ten thousand documents node by node took a fifth of such a run, on one core
    // (clang's `-disable-free` makes the same choice).
    std::mem::forget(parsed);
    match args.output {
        Format::Text => {
            if !report.diagnostics.is_empty() {
                crate::out!("{}", diag::render_text(&report.diagnostics));
            }
        }
        Format::Json => crate::out::json(&JsonReport {
            kube_version: args.kube_version.to_string(),
            files: names.len(),
            documents: report.documents,
            objects: report.objects,
            summary: summary_json(&report.diagnostics),
            diagnostics: &report.diagnostics,
        }),
        Format::Sarif => crate::out::json(&sarif(&report.diagnostics)),
    }
    eprintln!(
        "{} ({} objects in {} files, Kubernetes {})",
        diag::summary(&report.diagnostics),
        report.objects,
        names.len(),
        args.kube_version
    );
    if !report.unparseable.is_empty() {
        return Ok(exit::BAD_INPUT);
    }
    let threshold = match args.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
    };
    if report.diagnostics.iter().any(|d| d.severity <= threshold) {
        Ok(exit::NEGATIVE)
    } else {
        Ok(exit::OK)
    }
}

/// What `-o json` prints.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    kube_version: String,
    files: usize,
    documents: usize,
    objects: usize,
    summary: serde_json::Value,
    diagnostics: &'a [Diagnostic],
}

fn summary_json(diags: &[Diagnostic]) -> serde_json::Value {
    let count = |s| diags.iter().filter(|d| d.severity == s).count();
    json!({
        "errors": count(Severity::Error),
        "warnings": count(Severity::Warning),
        "notes": count(Severity::Info),
    })
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// The findings as a SARIF 2.1.0 log with one run.
fn sarif(diags: &[Diagnostic]) -> serde_json::Value {
    let catalog = rules::catalog();
    let rules_json: Vec<serde_json::Value> = catalog
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": {"text": r.summary},
                "defaultConfiguration": {"level": sarif_level(r.severity)},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(hint) = &d.hint {
                text.push_str(&format!(" (hint: {hint})"));
            }
            let mut physical = json!({"artifactLocation": {"uri": artifact_uri(&d.file)}});
            if d.pos.is_known() {
                physical["region"] =
                    json!({"startLine": d.pos.line, "startColumn": d.pos.column.max(1)});
            }
            let mut location = json!({"physicalLocation": physical});
            if let Some(object) = &d.object {
                location["logicalLocations"] =
                    json!([{"fullyQualifiedName": object, "kind": "resource"}]);
            }
            let mut result = json!({
                "ruleId": d.code,
                "level": sarif_level(d.severity),
                "message": {"text": text},
                "locations": [location],
                "properties": {"fieldPath": d.path.to_string()},
            });
            if let Some(i) = catalog.iter().position(|r| r.id == d.code) {
                result["ruleIndex"] = json!(i);
            }
            result
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "mlctl",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/mlctl/mlctl",
                "rules": rules_json,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    })
}

/// A relative URI reference for a file path (standard input is `stdin`).
fn artifact_uri(file: &str) -> String {
    if file == "-" || file.is_empty() {
        return "stdin".to_string();
    }
    let mut out = String::new();
    for b in file.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
