//! `mlctl validate`: parse and check specs, report every finding.

use mlctl_core::diag;

use crate::exit::{self, Outcome};
use crate::inputs::FileArgs;
use crate::specs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    files: FileArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: &Args) -> Outcome {
    let loaded = specs::load(&args.files)?;
    let objects = loaded.spec.as_ref().map_or(&[][..], |s| s.objects());
    match args.output {
        Format::Text => {
            crate::out!("{}", diag::render_text(&loaded.diagnostics));
            if loaded.spec.is_some() {
                let mut kinds: Vec<String> = objects.iter().map(|o| o.kind().to_string()).collect();
                kinds.sort();
                kinds.dedup();
                crate::outln!(
                    "valid: {} objects ({}) in {} files{}",
                    objects.len(),
                    kinds.join(", "),
                    loaded.files.len(),
                    if loaded.diagnostics.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", diag::summary(&loaded.diagnostics))
                    }
                );
            } else {
                crate::outln!("invalid: {}", diag::summary(&loaded.diagnostics));
            }
        }
        Format::Json => {
            let objects: Vec<_> = objects
                .iter()
                .map(|o| {
                    serde_json::json!({
                        "kind": o.kind(),
                        "name": o.name(),
                        "namespace": o.namespace(),
                        "file": o.origin.file,
                    })
                })
                .collect();
            let out = serde_json::json!({
                "valid": loaded.spec.is_some(),
                "objects": objects,
                "diagnostics": loaded.diagnostics,
            });
            crate::out::json(&out);
        }
    }
    Ok(if loaded.spec.is_some() {
        exit::OK
    } else {
        exit::NEGATIVE
    })
}
