//! `mlctl __deploy`: what a pipeline's deploy step runs. It asks the running
//! InferenceService to serve the model (a rolling update), or starts the service with it in
//! the background, then waits until the model is served by every wanted replica — as
//! `kubectl rollout status` waits for a Deployment. Its output parameters (`service`, `run`,
//! `model`, `url`) are written to `$MLCTL_OUTPUTS`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use mlctl_local::service::ServiceStatus;

use crate::exit::{self, Failure, Outcome};
use crate::local;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run of the pipeline that deploys (its specs declare the service).
    #[arg(long)]
    run: String,
    /// The InferenceService.
    #[arg(long)]
    service: String,
    /// The model file to serve.
    #[arg(long)]
    model: PathBuf,
    /// How long to wait for the model to be served.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    timeout: mlctl_core::scalar::Duration,
}

fn failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::LOCAL_RUNTIME, e)
}

pub fn run(args: &Args) -> Outcome {
    let model = std::fs::canonicalize(&args.model)
        .with_context(|| format!("the model {} cannot be read", args.model.display()))
        .map_err(Failure::bad_input)?;
    if !model.is_file() {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "the model {} is not a file",
            model.display()
        )));
    }
    let model = model.display().to_string();
    let mut runtime = local::open(&local::MachineArgs::default())?;
    let deployment = runtime
        .deploy(&args.run, &args.service, &model)
        .map_err(failure)?;
    let run = &deployment.run;
    if deployment.started {
        local::spawn_supervisor(&runtime, std::slice::from_ref(run))?;
        eprintln!(
            "started InferenceService {} serving {model} (run {run})",
            args.service
        );
    } else {
        eprintln!(
            "asked InferenceService {} (run {run}) to serve {model}",
            args.service
        );
    }
    let store = runtime.store();
    let deadline = Instant::now() + args.timeout.0;
    let mut last: Option<ServiceStatus> = None;
    loop {
        let row = store
            .find_run(run)
            .map_err(failure)?
            .ok_or_else(|| failure(anyhow::anyhow!("run {run} is gone")))?;
        if row.finished_at.is_some() {
            return Err(failure(anyhow::anyhow!(
                "InferenceService {} (run {run}) {}: {}",
                args.service,
                row.phase.to_lowercase(),
                row.message
            ))
            .with_hint(format!("`mlctl describe run {run}` shows why")));
        }
        let status: Option<ServiceStatus> = store
            .service_status(run)
            .map_err(failure)?
            .and_then(|s| serde_json::from_str(&s).ok());
        if let Some(s) = &status {
            if last.as_ref() != Some(s) {
                eprintln!(
                    "{}: {}/{} replicas ready with {}",
                    args.service, s.ready, s.desired, s.model
                );
            }
            if s.model == model && s.ready >= s.desired.max(1) {
                write_outputs(&[
                    ("service", &args.service),
                    ("run", run),
                    ("model", &model),
                    ("url", &s.url),
                ])?;
                eprintln!(
                    "InferenceService {} serves {model} at {}",
                    args.service, s.url
                );
                return Ok(exit::OK);
            }
        }
        if Instant::now() > deadline {
            return Err(failure(anyhow::anyhow!(
                "InferenceService {} did not serve {model} within {}",
                args.service,
                args.timeout
            ))
            .with_hint(format!(
                "`mlctl describe run {run}` and `mlctl logs {run}` show its replicas"
            )));
        }
        last = status;
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_outputs(values: &[(&str, &str)]) -> Result<(), Failure> {
    let Some(dir) = std::env::var_os(mlctl_core::contract::OUTPUTS_ENV) else {
        return Ok(());
    };
    for (name, value) in values {
        let path = PathBuf::from(&dir).join(name);
        std::fs::write(&path, value)
            .with_context(|| format!("failed to write {}", path.display()))
            .map_err(failure)?;
    }
    Ok(())
}
