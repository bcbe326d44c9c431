//! `mlctl get runs|jobs`: list what the local runtime ran and runs.

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
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

fn failure(e: impl Into<anyhow::Error>) -> Failure {
    Failure::new(exit::LOCAL_RUNTIME, e)
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
        What::Runs => {
            if matches!(args.output, Format::Json) {
                let items: Vec<_> = runs
                    .iter()
                    .map(|r| {
                        serde_json::json!({"id": r.id, "kind": r.kind, "name": r.name, "namespace": r.namespace,
                        "phase": r.phase, "message": r.message, "createdAt": r.created_at, "finishedAt": r.finished_at})
                    })
                    .collect();
                crate::outln!(
                    "{}",
                    serde_json::to_string_pretty(&items).unwrap_or_default()
                );
                return Ok(exit::OK);
            }
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
            table(
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
            if matches!(args.output, Format::Json) {
                crate::outln!(
                    "{}",
                    serde_json::to_string_pretty(&items).unwrap_or_default()
                );
            } else {
                table(
                    &[
                        "RUN", "JOB", "PHASE", "WORKERS", "ATTEMPTS", "DURATION", "MESSAGE",
                    ],
                    &rows,
                );
            }
        }
    }
    Ok(exit::OK)
}
