//! `mlctl resume RUN`: continue a run whose mlctl was killed. Steps that succeeded are not run
//! again (their outputs, artifacts and logs are kept); attempts that were running are lost and
//! retried per policy; the rest runs as usual.

use crate::exit::{self, Failure, Outcome};
use crate::local::{self, MachineArgs, Printer};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run's id (or a unique prefix of it).
    id: String,
    /// Continue in the background.
    #[arg(short, long)]
    detach: bool,
    /// Time workers get to stop after SIGTERM before SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    grace_period: mlctl_core::scalar::Duration,
}

fn failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::LOCAL_RUNTIME, e)
}

pub fn run(args: &Args) -> Outcome {
    let mut runtime = local::open_for(&MachineArgs::default(), args.detach)?;
    runtime.set_grace(args.grace_period.0);
    let run = runtime
        .store()
        .find_run(&args.id)
        .map_err(failure)?
        .ok_or_else(|| {
            Failure::bad_input(anyhow::anyhow!("no run {}", args.id))
                .with_hint("`mlctl get runs` lists the runs")
        })?;
    if run.finished_at.is_some() {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "run {} already {}; there is nothing to resume",
            run.id,
            run.phase.to_lowercase()
        ))
        .with_hint("`mlctl run` starts a new run"));
    }
    let orphans = runtime.recover().map_err(failure)?;
    if !orphans.contains(&run.id) {
        return Err(Failure::bad_input(anyhow::anyhow!(
            "run {} is still being driven by a running mlctl process",
            run.id
        ))
        .with_hint(format!("`mlctl logs -f {}` follows it", run.id)));
    }
    let others: Vec<String> = orphans.into_iter().filter(|id| *id != run.id).collect();
    local::spawn_supervisor(&runtime, &others)?;
    if args.detach {
        local::spawn_supervisor(&runtime, std::slice::from_ref(&run.id))?;
        crate::outln!("{}", run.id);
        return Ok(exit::OK);
    }
    eprintln!("resuming run {}", run.id);
    let mut printer = Printer::new(1);
    let driven = local::drive(&mut runtime, std::slice::from_ref(&run.id), &mut printer)?;
    Ok(local::conclude(&driven))
}
