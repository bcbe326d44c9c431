//! `mlctl run`: run the workloads of the given specs on this machine.

use indexmap::IndexMap;

use crate::exit::{self, Failure, Outcome};
use crate::inputs::FileArgs;
use crate::local::{self, MachineArgs, Printer};
use crate::specs;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    files: FileArgs,
    /// Set a parameter, overriding its default (repeatable).
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Submit and return; the runs go on in the background (`mlctl logs -f RUN` follows one).
    #[arg(short, long)]
    detach: bool,
    /// Run every pipeline step, even those whose results could be reused (unchanged command,
    /// parameters, project files and input artifacts).
    #[arg(long)]
    no_cache: bool,
    /// Time workers get to stop after SIGTERM before SIGKILL (cancel, failed gang, deadline).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    grace_period: mlctl_core::scalar::Duration,
    /// How often InferenceServices' autoscalers measure and decide (the HPA's sync period).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = positive_duration)]
    autoscale_interval: mlctl_core::scalar::Duration,
    #[command(flatten)]
    machine: MachineArgs,
}

fn positive_duration(text: &str) -> Result<mlctl_core::scalar::Duration, String> {
    let d: mlctl_core::scalar::Duration = text.parse()?;
    if d.0.is_zero() {
        return Err("must be more than 0s".into());
    }
    Ok(d)
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

pub fn run(args: &Args) -> Outcome {
    let (files, spec) = specs::load_valid(&args.files)?;
    let overrides: IndexMap<String, String> = args.params.iter().cloned().collect();
    // parameter overrides are checked here, before anything is submitted
    for object in spec.objects() {
        let declared = match &object.spec {
            mlctl_core::spec::Spec::TrainingJob(j) => &j.params,
            mlctl_core::spec::Spec::Pipeline(p) => &p.params,
            mlctl_core::spec::Spec::DataJob(d) => &d.params,
            _ => continue,
        };
        mlctl_core::workload::params(declared, &overrides)
            .map_err(|e| Failure::bad_input(anyhow::anyhow!("{}: {e}", object.id())))?;
    }
    let mut runtime = local::open_for(&args.machine, args.detach)?;
    runtime.set_grace(args.grace_period.0);
    let orphans = runtime
        .recover()
        .map_err(|e| Failure::new(exit::LOCAL_RUNTIME, e))?;
    if !orphans.is_empty() {
        eprintln!(
            "recovered {} run(s) whose mlctl was killed; they continue in the background: {}",
            orphans.len(),
            orphans.join(", ")
        );
        local::spawn_supervisor(&runtime, &orphans)?;
    }
    let sources: Vec<(String, String)> = files.into_iter().map(|f| (f.name, f.text)).collect();
    let ids = runtime
        .submit(
            &spec,
            &sources,
            &overrides,
            &mlctl_local::controller::RunOptions {
                no_cache: args.no_cache,
                model: None,
                autoscale_interval: Some(args.autoscale_interval.0.as_secs_f64()),
            },
        )
        .map_err(|e| Failure::new(exit::LOCAL_RUNTIME, e))?;
    if ids.is_empty() {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "nothing to run: the specs have no TrainingJob, Pipeline, DataJob or InferenceService"
        )));
    }
    if args.detach {
        local::spawn_supervisor(&runtime, &ids)?;
        for id in &ids {
            crate::outln!("{id}");
        }
        eprintln!(
            "running in the background; `mlctl get runs` lists them, `mlctl logs -f {}` follows one",
            ids[0]
        );
        return Ok(exit::OK);
    }
    if let Some(note) = runtime.gpu_note()
        && spec_wants_gpus(&spec)
    {
        eprintln!("note: {note}; declare GPUs with --gpus N to run GPU jobs on this machine");
    }
    let mut printer = Printer::new(ids.len());
    let driven = local::drive(&mut runtime, &ids, &mut printer)?;
    Ok(local::conclude(&driven))
}

fn spec_wants_gpus(spec: &mlctl_core::validate::ValidatedSpec) -> bool {
    spec.objects().iter().any(|o| match &o.spec {
        mlctl_core::spec::Spec::TrainingJob(j) => j.resources.gpu.is_some(),
        mlctl_core::spec::Spec::Pipeline(p) => p.steps.values().any(|s| s.resources.gpu.is_some()),
        _ => false,
    })
}

/// `mlctl __supervise RUN...`: drives runs in the background (started by `run --detach`
/// and by recovery); its output goes to the run's supervisor.log.
#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    runs: Vec<String>,
}

pub fn supervise(args: &SuperviseArgs) -> Outcome {
    let mut runtime = local::open_to_run(&MachineArgs::default())?;
    let mut printer = Printer::new(args.runs.len());
    let driven = local::drive(&mut runtime, &args.runs, &mut printer)?;
    Ok(local::conclude(&driven))
}
