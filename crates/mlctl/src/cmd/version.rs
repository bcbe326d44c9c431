//! `mlctl version`: the version, and which optional features this build has.

use crate::exit::{self, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
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
    let version = env!("CARGO_PKG_VERSION");
    let spec = "mlctl.dev/v1alpha1";
    let features: Vec<&str> = [("onnx", cfg!(feature = "onnx"))]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
    match args.output {
        Format::Text => {
            crate::outln!("mlctl {version}");
            crate::outln!("spec: {spec}");
            crate::outln!("features: {}", features.join(", "));
        }
        Format::Json => crate::outln!(
            "{}",
            serde_json::json!({"version": version, "specApiVersion": spec, "features": features})
        ),
    }
    Ok(exit::OK)
}
