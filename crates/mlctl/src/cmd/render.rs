//! `mlctl render`: specs to Kubernetes manifests (YAML or JSON on stdout, or one file per
//! object in `--out-dir`), ready for `kubectl apply`.

use std::path::PathBuf;

use anyhow::Context;
use indexmap::IndexMap;
use mlctl_k8s::render::{
    self, KubeVersion, RenderOptions, Rendered, ServingBackend, TrainingBackend,
};

use crate::exit::{self, Failure, Outcome};
use crate::inputs::FileArgs;
use crate::specs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    files: FileArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// Write one file per object into this directory (named in apply order) instead of
    /// printing.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Namespace of objects whose spec names none.
    #[arg(short, long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// Kubernetes version to render for.
    #[arg(long, value_name = "VERSION", default_value = "1.33", value_parser = super::check::parse_version)]
    kube_version: KubeVersion,
    /// How TrainingJobs are rendered: an Indexed Job, or a Kubeflow PyTorchJob.
    #[arg(long, value_enum, default_value_t = Training::Native)]
    training: Training,
    /// How InferenceServices are rendered: Deployment+Service+HPA+PDB, KServe or Seldon.
    #[arg(long, value_enum, default_value_t = Serving::Native)]
    serving: Serving,
    /// Set a parameter (repeatable): `-p gpus=4`.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Image of the built-in model server (default: ghcr.io/mlctl/mlctl:<this version>).
    #[arg(long, value_name = "IMAGE")]
    server_image: Option<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Yaml,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Training {
    Native,
    Kubeflow,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Serving {
    Native,
    Kserve,
    Seldon,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

pub fn run(args: &Args) -> Outcome {
    let (_, spec) = specs::load_valid(&args.files)?;
    let mut opts = RenderOptions::new(env!("CARGO_PKG_VERSION"));
    opts.namespace.clone_from(&args.namespace);
    opts.kube_version = args.kube_version;
    opts.training = match args.training {
        Training::Native => TrainingBackend::Native,
        Training::Kubeflow => TrainingBackend::Kubeflow,
    };
    opts.serving = match args.serving {
        Serving::Native => ServingBackend::Native,
        Serving::Kserve => ServingBackend::Kserve,
        Serving::Seldon => ServingBackend::Seldon,
    };
    opts.params = args.params.iter().cloned().collect::<IndexMap<_, _>>();
    if let Some(image) = &args.server_image {
        opts.server_image.clone_from(image);
    }
    let rendered = render::render(&spec, &opts).map_err(Failure::bad_input)?;
    for w in &rendered.warnings {
        eprintln!("warning: {w}");
    }
    match &args.out_dir {
        Some(dir) => write_dir(&rendered, dir, args.output)?,
        None => {
            let text = match args.output {
                Format::Yaml => rendered.to_yaml(),
                Format::Json => rendered.to_json(),
            }
            .map_err(|e| Failure::new(exit::NEGATIVE, e))?;
            crate::out!("{text}");
        }
    }
    Ok(exit::OK)
}

/// One file per object, numbered in apply order (`kubectl apply -f DIR` applies files in
/// name order).
fn write_dir(rendered: &Rendered, dir: &std::path::Path, format: Format) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create {}", dir.display()))
        .map_err(Failure::bad_input)?;
    let width = rendered.objects.len().to_string().len().max(2);
    for (i, m) in rendered.objects.iter().enumerate() {
        let ns = m
            .namespace
            .as_deref()
            .map_or(String::new(), |n| format!("{n}-"));
        let stem = format!(
            "{i:0width$}-{ns}{}-{}",
            m.kind.to_ascii_lowercase(),
            m.name.trim_end_matches('-')
        );
        let (file, text) = match format {
            Format::Yaml => (
                dir.join(format!("{stem}.yaml")),
                render::manifest_yaml(m).map_err(|e| Failure::new(exit::NEGATIVE, e))?,
            ),
            Format::Json => (
                dir.join(format!("{stem}.json")),
                serde_json::to_string_pretty(&m.body).unwrap_or_default() + "\n",
            ),
        };
        std::fs::write(&file, text)
            .with_context(|| format!("failed to write {}", file.display()))
            .map_err(Failure::bad_input)?;
    }
    eprintln!(
        "wrote {} objects to {}",
        rendered.objects.len(),
        dir.display()
    );
    Ok(())
}
