//! `mlctl logs RUN[/JOB[/RANK]] [-f]`: what the workers of a run wrote (the latest attempt of
//! each job), following it with `-f` until the run ends.

use std::time::Duration;

use mlctl_local::tail::{Tailer, Which};

use crate::exit::{self, Failure, Outcome};
use crate::local;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// RUN, RUN/JOB or RUN/JOB/RANK.
    target: String,
    /// Keep printing new output until the run ends.
    #[arg(short, long)]
    follow: bool,
    /// Print this attempt instead of the latest.
    #[arg(long, value_name = "N")]
    attempt: Option<u32>,
    /// Prefix each line with its source.
    #[arg(long)]
    prefix: bool,
}

fn failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::LOCAL_RUNTIME, e)
}

pub fn run(args: &Args) -> Outcome {
    let mut parts = args.target.splitn(3, '/');
    let run_id = parts.next().unwrap_or_default();
    let job_filter = parts.next();
    let rank_filter: Option<u32> = match parts.next() {
        Some(r) => Some(r.parse().map_err(|_| {
            Failure::new(exit::USAGE, anyhow::anyhow!("{r:?} is not a worker rank"))
        })?),
        None => None,
    };
    let store = local::store()?;
    let run = store.find_run(run_id).map_err(failure)?.ok_or_else(|| {
        Failure::bad_input(anyhow::anyhow!("no run {run_id}"))
            .with_hint("`mlctl get runs` lists the runs")
    })?;
    let mut tail = Tailer::default();
    let mut seen_procs = std::collections::BTreeSet::new();
    let mut found_job = job_filter.is_none();
    loop {
        let jobs = store.jobs(&run.id).map_err(failure)?;
        for job in &jobs {
            if job_filter.is_some_and(|j| j != job.name) {
                continue;
            }
            found_job = true;
            let attempts = store.attempts(job.id).map_err(failure)?;
            let attempt = match args.attempt {
                Some(n) => attempts.iter().find(|a| a.number == n),
                None => attempts.iter().rev().find(|a| a.started_at.is_some()),
            };
            let Some(attempt) = attempt else { continue };
            for p in store.processes(attempt.id).map_err(failure)? {
                if rank_filter.is_some_and(|r| r != p.rank) || !seen_procs.insert(p.id) {
                    continue;
                }
                let source = if job.workers > 1 {
                    format!("{}/{}", job.name, p.rank)
                } else {
                    job.name.clone()
                };
                tail.follow(p.log_path.clone().into(), source, 0);
            }
        }
        if !found_job {
            return Err(Failure::bad_input(anyhow::anyhow!(
                "run {} has no job {}",
                run.id,
                job_filter.unwrap_or_default()
            ))
            .with_hint(format!("`mlctl describe run {}` lists its jobs", run.id)));
        }
        let prefix = args.prefix || jobs.len() > 1;
        tail.poll(Which::All, |source, line| {
            if prefix {
                crate::outln!("[{source}] {line}");
            } else {
                crate::outln!("{line}");
            }
        });
        if !args.follow {
            break;
        }
        let finished = store
            .find_run(&run.id)
            .map_err(failure)?
            .is_none_or(|r| r.finished_at.is_some());
        if finished {
            // one last read of everything written before the end
            tail.poll(Which::All, |source, line| {
                if prefix {
                    crate::outln!("[{source}] {line}");
                } else {
                    crate::outln!("{line}");
                }
            });
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(exit::OK)
}
