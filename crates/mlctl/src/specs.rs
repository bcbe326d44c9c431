//! Loading mlctl specs for a command: read the files, parse, validate, and report findings.

use mlctl_core::diag::Diagnostic;
use mlctl_core::spec::SourceText;
use mlctl_core::validate::{self, ValidatedSpec};

use crate::exit::Failure;
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
    let report = validate::validate_sources(&sources);
    Ok(Loaded {
        files,
        spec: report.spec,
        diagnostics: report.diagnostics,
    })
}

/// Like [`load`], for commands that need a valid spec: findings go to stderr, and an invalid
/// spec is bad input (exit 3).
pub fn load_valid(args: &FileArgs) -> Result<(Vec<SourceFile>, ValidatedSpec), Failure> {
    let loaded = load(args)?;
    if !loaded.diagnostics.is_empty() {
        eprint!("{}", mlctl_core::diag::render_text(&loaded.diagnostics));
    }
    match loaded.spec {
        Some(spec) => Ok((loaded.files, spec)),
        None => Err(Failure::bad_input(anyhow::anyhow!(
            "the spec is invalid ({})",
            mlctl_core::diag::summary(&loaded.diagnostics)
        ))
        .with_hint("`mlctl validate -f ...` lists every problem")),
    }
}
