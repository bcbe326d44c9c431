//! `mlctl cancel RUN`: stop a run — its workers get SIGTERM, then SIGKILL after the grace
//! period — and wait until it has stopped.

use std::time::{Duration, Instant};

use crate::exit::{self, Failure, Outcome};
use crate::local;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run's id (or a unique prefix of it).
    id: String,
    /// Return at once instead of waiting until the run has stopped.
    #[arg(long)]
    no_wait: bool,
}

fn failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::LOCAL_RUNTIME, e)
}

pub fn run(args: &Args) -> Outcome {
    let store = local::store()?;
    let run = store.find_run(&args.id).map_err(failure)?.ok_or_else(|| {
        Failure::bad_input(anyhow::anyhow!("no run {}", args.id))
            .with_hint("`mlctl get runs` lists the runs")
    })?;
    if run.finished_at.is_some() {
        crate::outln!("run {} already {}", run.id, run.phase.to_lowercase());
        return Ok(exit::OK);
    }
    store.request_cancel(&run.id).map_err(failure)?;
    // a run whose mlctl is gone has nobody to stop it: recovery stops its processes
    let mut runtime = local::open(&local::MachineArgs::default())?;
    let orphans = runtime.recover().map_err(failure)?;
    if orphans.contains(&run.id) {
        local::drive(
            &mut runtime,
            std::slice::from_ref(&run.id),
            &mut local::Printer::new(1),
        )?;
    }
    if args.no_wait {
        crate::outln!("run {} is being cancelled", run.id);
        return Ok(exit::OK);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = store.find_run(&run.id).map_err(failure)?;
        if let Some(r) = now.filter(|r| r.finished_at.is_some()) {
            crate::outln!("run {} {}", r.id, r.phase.to_lowercase());
            return Ok(exit::OK);
        }
        if Instant::now() > deadline {
            return Err(failure(anyhow::anyhow!(
                "run {} did not stop within 60s",
                run.id
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
