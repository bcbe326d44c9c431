//! Data jobs on the local runtime with the real engines: a Dask scheduler and workers from the
//! `distributed` package, and Spark through `spark-submit --master local[N]` (PySpark). Both
//! engines come from .ci/requirements.txt; these tests fail, not skip, without them.

mod support;

use std::path::Path;

use support::{Env, text};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data")
        .join(name)
        .canonicalize()
        .expect("example")
        .display()
        .to_string()
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

#[test]
fn a_dask_job_runs_on_a_real_scheduler_and_workers_that_are_stopped_after() {
    let env = Env::new();
    let out = env.run(&[
        "-f",
        &example("dask-stats.yaml"),
        "-p",
        "rows=400000",
        "--grace-period",
        "5s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("[dask-stats] 2 workers: mean "), "{all}");
    assert!(all.contains("[dask-stats/dask-scheduler]"), "{all}");
    assert!(all.contains("[dask-stats/dask-worker-1]"), "{all}");
    let home = env.home.path().display().to_string();
    let left: Vec<String> = processes_with("distributed.cli.dask")
        .into_iter()
        .filter(|c| c.contains(&home))
        .collect();
    assert!(
        left.is_empty(),
        "scheduler and workers are stopped: {left:?}"
    );
    let described = env.describe("dask-stats");
    assert!(described.contains("SidecarsStarted"), "{described}");
}

#[test]
fn a_spark_job_runs_with_spark_submit_on_a_local_master() {
    let env = Env::new();
    let out = env.run(&["-f", &example("spark-wordcount.yaml")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("8 distinct words, 300000 words in 100000 lines (master local[2])"),
        "{}",
        text(&out)
    );
    // the driver and its web UI listen on loopback only (Spark's own log lines say where)
    assert!(
        text(&out).contains("Start Jetty 127.0.0.1:")
            && !text(&out).contains("Start Jetty 0.0.0.0"),
        "{}",
        text(&out)
    );
}
