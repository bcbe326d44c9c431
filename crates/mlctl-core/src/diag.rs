//! Diagnostics: findings about the user's input, as data.
//!
//! Validation (of mlctl specs) and `check` (of Kubernetes manifests) both report a list of
//! [`Diagnostic`]s: every finding, sorted, each with a stable code, a location
//! (file:line:column and a field path), a message and, where useful, a hint. Errors of the
//! program itself are not diagnostics.

use std::fmt::{self, Write as _};

use serde::Serialize;

use crate::path::FieldPath;
use crate::yaml::Pos;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input is wrong: it cannot be used as it is.
    Error,
    /// The input works but very likely not as intended.
    Warning,
    /// Worth knowing; nothing to fix.
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// A stable identifier of the kind of finding (`unknown-field`, `dag-cycle`).
    pub code: String,
    /// The file the finding is in (`-` for standard input); empty when not about a file.
    pub file: String,
    /// Line and column in `file` (0:0 when unknown).
    #[serde(flatten)]
    pub pos: Pos,
    /// The object the finding is about (`TrainingJob/train`, `Deployment/ml/server`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The field the finding is about.
    #[serde(serialize_with = "serialize_path")]
    pub path: FieldPath,
    /// What is wrong, in one sentence without a trailing period.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

fn serialize_path<S: serde::Serializer>(path: &FieldPath, s: S) -> Result<S::Ok, S::Error> {
    if path.is_root() {
        s.serialize_str("")
    } else {
        s.collect_str(path)
    }
}

impl Diagnostic {
    /// A new error finding about `path`.
    pub fn error(code: &str, path: FieldPath, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, path, message)
    }

    /// A new warning finding about `path`.
    pub fn warning(code: &str, path: FieldPath, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, path, message)
    }

    /// A new finding.
    pub fn new(
        severity: Severity,
        code: &str,
        path: FieldPath,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            code: code.to_string(),
            file: String::new(),
            pos: Pos::default(),
            object: None,
            path,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Names the object the finding is about.
    #[must_use]
    pub fn with_object(mut self, object: impl Into<String>) -> Self {
        self.object = Some(object.into());
        self
    }

    /// Places the finding in a file.
    #[must_use]
    pub fn at(mut self, file: &str, pos: Pos) -> Self {
        self.file = file.to_string();
        self.pos = pos;
        self
    }

    fn sort_key(&self) -> impl Ord + '_ {
        (
            &self.file,
            self.pos,
            self.severity,
            &self.code,
            &self.path,
            &self.message,
        )
    }
}

/// Sorts findings by file, position, severity and code, and drops exact duplicates.
pub fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    diags.dedup();
}

/// Whether any finding is an error.
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}

/// Renders findings as text, one per line, `file:line:column: severity[code]: ...`, each
/// followed by its hint; then a summary line when there are any.
pub fn render_text(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let _ = write!(out, "{}", d);
        out.push('\n');
    }
    out
}

/// A one-line summary: `2 errors, 1 warning`.
pub fn summary(diags: &[Diagnostic]) -> String {
    let count = |s| diags.iter().filter(|d| d.severity == s).count();
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let (e, w, i) = (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let mut parts = vec![plural(e, "error"), plural(w, "warning")];
    if i > 0 {
        parts.push(plural(i, "note"));
    }
    parts.join(", ")
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            if self.pos.is_known() {
                write!(f, "{}:{}: ", self.file, self.pos)?;
            } else {
                write!(f, "{}: ", self.file)?;
            }
        }
        write!(f, "{}[{}]: ", self.severity, self.code)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if !self.path.is_root() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The closest of `candidates` to `word`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_typos_only() {
        let fields = ["cpu", "memory", "gpu", "gpuType", "limits"];
        assert_eq!(did_you_mean("gpus", fields), Some("gpu"));
        assert_eq!(did_you_mean("memroy", fields), Some("memory"));
        assert_eq!(did_you_mean("gpu_type", fields), Some("gpuType"));
        assert_eq!(did_you_mean("zzz", fields), None);
    }

    #[test]
    fn text_rendering() {
        let d = Diagnostic::error(
            "unknown-field",
            FieldPath::parse("spec.resources"),
            "unknown field `gpus`",
        )
        .with_hint("did you mean `gpu`?")
        .with_object("TrainingJob/train")
        .at("a.yaml", Pos { line: 3, column: 5 });
        assert_eq!(
            d.to_string(),
            "a.yaml:3:5: error[unknown-field]: TrainingJob/train: spec.resources: unknown field `gpus`\n  hint: did you mean `gpu`?"
        );
    }

    #[test]
    fn summary_counts() {
        let e = Diagnostic::error("x", FieldPath::root(), "m");
        let w = Diagnostic::warning("y", FieldPath::root(), "m");
        assert_eq!(summary(&[e.clone(), e, w]), "2 errors, 1 warning");
    }
}
