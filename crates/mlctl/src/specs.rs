//! Loading mlctl specs for a command: read the files, parse, validate, and report findings.

use mlctl_core::diag::{self, Diagnostic};
use mlctl_core::spec::{self, SourceText};
use mlctl_core::validate::{self, ValidatedSpec};

use crate::exit::{self, Failure};
use crate::inputs::{self, FileArgs, SourceFile};

/// Specs read and validated, with every finding.
pub struct Loaded {
    pub files: Vec<SourceFile>,
    pub spec: Option<ValidatedSpec>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads, parses and validates the files `args` name. Fails only when a file cannot be read.
pub fn load(args: &FileArgs) -> Result<Loaded, Failure> {
    let files = inputs::read_all(&args.files, args.walk)?;
    let sources: Vec<SourceText<'_>> = files
        .iter()
        .map(|f| SourceText {
            name: &f.name,
            text: &f.text,
        })
        .collect();
    let (raw, mut diagnostics) = spec::parse(&sources);
    let report = validate::validate(raw);
    diagnostics.extend(report.diagnostics);
    diag::sort(&mut diagnostics);
    let spec = if diag::has_errors(&diagnostics) {
        None
    } else {
        report.spec
    };
    Ok(Loaded {
        files,
        spec,
        diagnostics,
    })
}

/// Like [`load`], for commands that need a valid spec: findings go to stderr, and an invalid
/// spec is bad input (exit 3).
pub fn load_valid(args: &FileArgs) -> Result<(Vec<SourceFile>, ValidatedSpec), Failure> {
    let loaded = load(args)?;
    if !loaded.diagnostics.is_empty() {
        eprint!("{}", diag::render_text(&loaded.diagnostics));
    }
    match loaded.spec {
        Some(spec) => Ok((loaded.files, spec)),
        None => Err(Failure::new(
            exit::BAD_INPUT,
            anyhow::anyhow!(
                "the spec is invalid ({})",
                diag::summary(&loaded.diagnostics)
            ),
        )
        .with_hint("`mlctl validate -f ...` lists every problem")),
    }
}
