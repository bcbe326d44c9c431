//! `{{...}}` templates in spec strings: `{{params.x}}`, `{{steps.train.outputs.model-path}}`,
//! `{{steps.prepare.outputs.artifacts.features}}`.
//!
//! The syntax follows Argo Workflows (whose `{{workflow.parameters.x}}` and
//! `{{tasks.t.outputs.parameters.y}}` they render to), with shorter names. This module parses
//! templates, lists what they reference, and substitutes resolved values; deciding whether a
//! reference is declared is validation's job.

use std::fmt;

/// What a `{{...}}` placeholder refers to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ref {
    /// `{{params.NAME}}`: a parameter of the pipeline or job.
    Param(String),
    /// `{{steps.STEP.outputs.NAME}}`: an output parameter of a pipeline step.
    StepOutput {
        /// The step.
        step: String,
        /// The output parameter.
        name: String,
    },
    /// `{{steps.STEP.outputs.artifacts.NAME}}`: the path of an output artifact of a step.
    StepArtifact {
        /// The step.
        step: String,
        /// The artifact.
        name: String,
    },
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Param(p) => write!(f, "params.{p}"),
            Ref::StepOutput { step, name } => write!(f, "steps.{step}.outputs.{name}"),
            Ref::StepArtifact { step, name } => {
                write!(f, "steps.{step}.outputs.artifacts.{name}")
            }
        }
    }
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text copied as it is.
    Text(&'a str),
    /// A placeholder.
    Ref(Ref),
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// Character offset of the problem in the template text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when known.
    pub hint: Option<String>,
}

/// Whether `text` contains a placeholder at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{")
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses `text` into literal text and references.
pub fn parse(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut consumed = 0usize;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let offset = text[..consumed + start].chars().count();
        let end = after.find("}}").ok_or_else(|| TemplateError {
            offset,
            message: "`{{` is not closed by `}}`".into(),
            hint: None,
        })?;
        let inner = after[..end].trim();
        pieces.push(Piece::Ref(parse_ref(inner).map_err(
            |(message, hint)| TemplateError {
                offset,
                message,
                hint,
            },
        )?));
        let advance = start + 2 + end + 2;
        consumed += advance;
        rest = &rest[advance..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

fn parse_ref(inner: &str) -> Result<Ref, (String, Option<String>)> {
    let parts: Vec<&str> = inner.split('.').collect();
    let unknown = || {
        (
            format!("unknown reference `{{{{{inner}}}}}`"),
            Some(
                "use {{params.NAME}}, {{steps.STEP.outputs.NAME}} or \
                 {{steps.STEP.outputs.artifacts.NAME}}"
                    .to_string(),
            ),
        )
    };
    match parts.as_slice() {
        ["params", name] if is_name(name) => Ok(Ref::Param((*name).to_string())),
        ["steps", step, "outputs", name] if is_name(step) && is_name(name) => Ok(Ref::StepOutput {
            step: (*step).to_string(),
            name: (*name).to_string(),
        }),
        ["steps", step, "outputs", "artifacts", name] if is_name(step) && is_name(name) => {
            Ok(Ref::StepArtifact {
                step: (*step).to_string(),
                name: (*name).to_string(),
            })
        }
        ["workflow", "parameters", name] | ["inputs", "parameters", name] => Err((
            format!("`{{{{{inner}}}}}` is Argo's syntax"),
            Some(format!("mlctl writes it {{{{params.{name}}}}}")),
        )),
        ["steps" | "tasks", step, "outputs", "parameters", name] => Err((
            format!("`{{{{{inner}}}}}` is Argo's syntax"),
            Some(format!(
                "mlctl writes it {{{{steps.{step}.outputs.{name}}}}}"
            )),
        )),
        _ => Err(unknown()),
    }
}

/// Every reference in `text`, in order of appearance.
pub fn references(text: &str) -> Result<Vec<Ref>, TemplateError> {
    Ok(parse(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(r) => Some(r),
            Piece::Text(_) => None,
        })
        .collect())
}

/// Substitutes every reference with what `resolve` returns; the first reference it cannot
/// resolve is returned as the error.
pub fn render(text: &str, mut resolve: impl FnMut(&Ref) -> Option<String>) -> Result<String, Ref> {
    let pieces = match parse(text) {
        Ok(p) => p,
        // Validation rejects malformed templates; at run time, keep the text as it is.
        Err(_) => return Ok(text.to_string()),
    };
    let mut out = String::with_capacity(text.len());
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Ref(r) => match resolve(&r) {
                Some(v) => out.push_str(&v),
                None => return Err(r),
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_reference_forms() {
        let refs = references(
            "{{ params.x }}/{{steps.train.outputs.model-path}} {{steps.p.outputs.artifacts.features}}",
        )
        .expect("valid");
        assert_eq!(
            refs,
            vec![
                Ref::Param("x".into()),
                Ref::StepOutput {
                    step: "train".into(),
                    name: "model-path".into()
                },
                Ref::StepArtifact {
                    step: "p".into(),
                    name: "features".into()
                },
            ]
        );
    }

    #[test]
    fn argo_syntax_gets_a_translation_hint() {
        let err = parse("x {{workflow.parameters.gpus}}").expect_err("argo syntax");
        assert_eq!(err.offset, 2);
        assert_eq!(err.hint.as_deref(), Some("mlctl writes it {{params.gpus}}"));
        let err = parse("{{tasks.t.outputs.parameters.acc}}").expect_err("argo syntax");
        assert_eq!(
            err.hint.as_deref(),
            Some("mlctl writes it {{steps.t.outputs.acc}}")
        );
    }

    #[test]
    fn unclosed_and_unknown() {
        assert_eq!(parse("ab {{params.x").expect_err("unclosed").offset, 3);
        assert!(parse("{{params}}").is_err());
        assert!(parse("{{params.a b}}").is_err());
    }

    #[test]
    fn render_substitutes_and_reports_the_missing_reference() {
        let out = render("--lr={{params.lr}} --n={{params.n}}", |r| match r {
            Ref::Param(p) if p == "lr" => Some("0.1".into()),
            Ref::Param(p) if p == "n" => Some("3".into()),
            _ => None,
        });
        assert_eq!(out.as_deref(), Ok("--lr=0.1 --n=3"));
        let missing = render("{{params.zz}}", |_| None).expect_err("unresolved");
        assert_eq!(missing, Ref::Param("zz".into()));
    }

    #[test]
    fn offsets_count_characters_after_earlier_placeholders() {
        let err = parse("é{{params.a}} {{bad}}").expect_err("bad ref");
        assert_eq!(err.offset, 14);
    }
}
