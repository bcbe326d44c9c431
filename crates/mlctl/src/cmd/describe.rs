//! `mlctl describe run ID`: a run in detail, as `kubectl describe` shows an object: its
//! jobs, each attempt with its placement and processes, why it waits, and its events.

use crate::exit::{self, Failure, Outcome};
use crate::local::{self, elapsed, now};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to describe.
    #[arg(value_enum)]
    what: What,
    /// The run's id (or a unique prefix of it).
    id: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum What {
    Run,
}

fn failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::LOCAL_RUNTIME, e)
}

pub fn run(args: &Args) -> Outcome {
    let What::Run = args.what;
    let store = local::store()?;
    let run = store.find_run(&args.id).map_err(failure)?.ok_or_else(|| {
        Failure::bad_input(anyhow::anyhow!("no run {}", args.id))
            .with_hint("`mlctl get runs` lists the runs")
    })?;
    let t = now();
    crate::outln!("Name:        {}", run.id);
    crate::outln!("Kind:        {}", run.kind);
    crate::outln!("Object:      {}/{}", run.namespace, run.name);
    crate::outln!("Phase:       {}", run.phase);
    if !run.message.is_empty() {
        crate::outln!("Message:     {}", run.message);
    }
    crate::outln!("Spec dir:    {}", run.spec_dir);
    if run.params != "{}" {
        crate::outln!("Params:      {}", run.params);
    }
    crate::outln!(
        "Duration:    {}",
        elapsed(run.finished_at.unwrap_or(t) - run.created_at)
    );
    if run.kind == "Pipeline" {
        graph(&store, &run)?;
    }
    crate::outln!("Jobs:");
    for job in store.jobs(&run.id).map_err(failure)? {
        crate::outln!(
            "  {}: {} ({} worker{}, {} attempt{})",
            job.name,
            job.phase,
            job.workers,
            if job.workers == 1 { "" } else { "s" },
            job.attempts,
            if job.attempts == 1 { "" } else { "s" }
        );
        if !job.message.is_empty() {
            let label = if job.phase == "Queued" {
                "Pending"
            } else {
                "Message"
            };
            crate::outln!("    {label}: {}", job.message);
        }
        if job.outputs != "{}" {
            crate::outln!("    Outputs: {}", job.outputs);
        }
        for a in store.attempts(job.id).map_err(failure)? {
            let duration = match (a.started_at, a.finished_at) {
                (Some(s), Some(f)) => elapsed(f - s),
                (Some(s), None) => format!("{} so far", elapsed(t - s)),
                _ => "not started".into(),
            };
            let why = if a.message.is_empty() {
                String::new()
            } else {
                format!(": {}", a.message)
            };
            crate::outln!("    attempt {}: {} ({duration}){why}", a.number, a.phase);
            if let Some(p) = a
                .placement
                .as_deref()
                .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            {
                for w in p["workers"].as_array().into_iter().flatten() {
                    let gpus: Vec<&str> = w["gpus"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|g| g.as_str())
                        .collect();
                    let gpus = if gpus.is_empty() {
                        String::new()
                    } else {
                        format!(", GPUs {}", gpus.join(","))
                    };
                    crate::outln!(
                        "      worker {} on {}{gpus}",
                        w["rank"],
                        w["node"].as_str().unwrap_or("?")
                    );
                }
            }
            for p in store.processes(a.id).map_err(failure)? {
                crate::outln!(
                    "      process {} (rank {}): {}; log {}",
                    p.pid,
                    p.rank,
                    p.exit.as_deref().unwrap_or("running"),
                    p.log_path
                );
            }
        }
    }
    crate::outln!("Events:");
    let events = store.events(&run.id).map_err(failure)?;
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.kind.clone(),
                e.reason.clone(),
                format!("{} ago", elapsed(t - e.at)),
                if e.job.is_empty() {
                    "run".into()
                } else {
                    e.job.clone()
                },
                e.message.clone(),
            ]
        })
        .collect();
    super::get::table(
        &["  TYPE", "REASON", "AGE", "FROM", "MESSAGE"],
        &rows
            .into_iter()
            .map(|mut r| {
                r[0] = format!("  {}", r[0]);
                r
            })
            .collect::<Vec<_>>(),
    );
    Ok(exit::OK)
}

/// The pipeline's steps in graph order with what each needs and how it went.
fn graph(
    store: &mlctl_local::store::Store,
    run: &mlctl_local::store::RunRow,
) -> Result<(), Failure> {
    let texts = store.source_texts(run.sources).map_err(failure)?;
    let refs: Vec<mlctl_core::spec::SourceText<'_>> = texts
        .iter()
        .map(|(name, text)| mlctl_core::spec::SourceText { name, text })
        .collect();
    let Some(spec) = mlctl_core::validate::validate_sources(&refs).spec else {
        return Ok(());
    };
    let Some(object) = spec.get(mlctl_core::spec::Kind::Pipeline, &run.name) else {
        return Ok(());
    };
    let mlctl_core::spec::Spec::Pipeline(pipeline) = &object.spec else {
        return Ok(());
    };
    let jobs = store.jobs(&run.id).map_err(failure)?;
    let t = now();
    let rows: Vec<Vec<String>> = pipeline
        .steps
        .iter()
        .map(|(name, step)| {
            let job = jobs.iter().find(|j| &j.name == name);
            let duration = match job.and_then(|j| j.started_at.map(|s| (s, j.finished_at))) {
                Some((s, Some(f))) => elapsed(f - s),
                Some((s, None)) => elapsed(t - s),
                None => String::new(),
            };
            let outputs: std::collections::BTreeMap<String, String> = job
                .and_then(|j| serde_json::from_str(&j.outputs).ok())
                .unwrap_or_default();
            let mut needs = step.needs.join(",");
            if pipeline.on_exit.as_deref() == Some(name.as_str()) {
                needs = "(on exit)".into();
            } else if needs.is_empty() {
                needs = "-".into();
            }
            vec![
                format!("  {name}"),
                needs,
                job.map_or_else(|| "Waiting".to_string(), |j| j.phase.clone()),
                job.map_or(0, |j| j.attempts).to_string(),
                duration,
                outputs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    crate::outln!("Graph:");
    super::get::table(
        &[
            "  STEP", "NEEDS", "PHASE", "ATTEMPTS", "DURATION", "OUTPUTS",
        ],
        &rows,
    );
    Ok(())
}
