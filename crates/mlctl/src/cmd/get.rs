//! `mlctl get runs|jobs|services`: list what the local runtime ran and runs.

use crate::exit::{self, Failure, Outcome};
use crate::local::{self, elapsed, now};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to list.
    #[arg(value_enum)]
    what: What,
    /// Only this run (for jobs).
    run: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum What {
    Runs,
    Jobs,
    /// InferenceService runs: address, ready replicas, model, canary.
    #[value(alias = "isvc", alias = "inferenceservices")]
    Services,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

fn failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::LOCAL_RUNTIME, e)
}

fn services(
    store: &mlctl_local::store::Store,
    args: &Args,
    runs: &[mlctl_local::store::RunRow],
    t: f64,
) -> Result<(), Failure> {
    use mlctl_local::service::ServiceStatus;
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (run, status) in store.services().map_err(failure)? {
        if !runs.iter().any(|r| r.id == run.id) {
            continue;
        }
        let status: Option<ServiceStatus> = status
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            // a finished service serves nothing
            .filter(|_| run.finished_at.is_none());
        items.push(
            serde_json::json!({"name": run.name, "namespace": run.namespace, "run": run.id,
            "phase": run.phase, "status": status}),
        );
        let (url, ready, model, canary) = match &status {
            Some(s) => (
                s.url.clone(),
                format!("{}/{}", s.ready, s.desired),
                s.model.clone(),
                s.canary.as_ref().map_or_else(String::new, |c| {
                    format!("{}%{}", c.weight, if c.ready { "" } else { " (not ready)" })
                }),
            ),
            None => Default::default(),
        };
        rows.push(vec![
            run.name.clone(),
            run.id.clone(),
            run.phase.clone(),
            url,
            ready,
            canary,
            elapsed(t - run.created_at),
            model,
        ]);
    }
    show(
        args.output,
        &items,
        &[
            "NAME", "RUN", "PHASE", "URL", "READY", "CANARY", "AGE", "MODEL",
        ],
        &rows,
    );
    Ok(())
}

/// Prints the items as JSON, or the rows as a table.
fn show(format: Format, items: &[serde_json::Value], header: &[&str], rows: &[Vec<String>]) {
    match format {
        Format::Json => crate::out::json(&items),
        Format::Text => table(header, rows),
    }
}

/// Prints rows as aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        crate::outln!("{}", out.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

pub fn run(args: &Args) -> Outcome {
    let store = local::store()?;
    let runs = store.runs().map_err(failure)?;
    let runs: Vec<_> = match &args.run {
        Some(id) => {
            let run = store
                .find_run(id)
                .map_err(failure)?
                .ok_or_else(|| Failure::bad_input(anyhow::anyhow!("no run {id}")))?;
            vec![run]
        }
        None => runs,
    };
    let t = now();
    match args.what {
        What::Services => services(&store, args, &runs, t)?,
        What::Runs => {
            let items: Vec<_> = runs
                .iter()
                .map(|r| {
                    serde_json::json!({"id": r.id, "kind": r.kind, "name": r.name, "namespace": r.namespace,
                    "phase": r.phase, "message": r.message, "createdAt": r.created_at, "finishedAt": r.finished_at})
                })
                .collect();
            let rows: Vec<Vec<String>> = runs
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.kind.clone(),
                        r.phase.clone(),
                        elapsed(t - r.created_at),
                        r.finished_at.map_or_else(
                            || elapsed(t - r.created_at),
                            |f| elapsed(f - r.created_at),
                        ),
                        r.message.clone(),
                    ]
                })
                .collect();
            show(
                args.output,
                &items,
                &["RUN", "KIND", "PHASE", "AGE", "DURATION", "MESSAGE"],
                &rows,
            );
        }
        What::Jobs => {
            let mut rows = Vec::new();
            let mut items = Vec::new();
            for r in &runs {
                for j in store.jobs(&r.id).map_err(failure)? {
                    let duration = match (j.started_at, j.finished_at) {
                        (Some(s), Some(f)) => elapsed(f - s),
                        (Some(s), None) => elapsed(t - s),
                        _ => String::new(),
                    };
                    items.push(serde_json::json!({"run": r.id, "job": j.name, "phase": j.phase, "workers": j.workers,
                        "attempts": j.attempts, "message": j.message, "outputs": serde_json::from_str::<serde_json::Value>(&j.outputs).unwrap_or_default()}));
                    rows.push(vec![
                        r.id.clone(),
                        j.name.clone(),
                        j.phase.clone(),
                        j.workers.to_string(),
                        j.attempts.to_string(),
                        duration,
                        j.message.clone(),
                    ]);
                }
            }
            show(
                args.output,
                &items,
                &[
                    "RUN", "JOB", "PHASE", "WORKERS", "ATTEMPTS", "DURATION", "MESSAGE",
                ],
                &rows,
            );
        }
    }
    Ok(exit::OK)
}
