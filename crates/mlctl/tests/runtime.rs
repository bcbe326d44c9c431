//! The local runtime with real processes, as a user runs it: success, retries with backoff,
//! deadlines, gang restart, Ctrl-C without orphans, two `mlctl run` sharing two GPUs, a quota
//! queue, and recovery after `kill -9` of mlctl.
//!
//! Every test has its own `MLCTL_HOME` and waits on events (files, exit) with deadlines.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Env, alive, text, wait_for_lines, wait_until};

fn rendezvous_check() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/quickstart/rendezvous_check.py")
        .canonicalize()
        .expect("rendezvous_check.py")
        .display()
        .to_string()
}

fn pids_in(describe: &str) -> Vec<u32> {
    describe
        .lines()
        .filter_map(|l| l.trim().strip_prefix("process "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn distributed_training_with_a_real_rendezvous() {
    let env = Env::new();
    let spec = env.spec(
        "job.yaml",
        &format!(
            "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: ddp}}\nspec:\n  run: [python3, {}]\n  workers: 3\n  resources: {{cpu: 100m, memory: 64Mi, gpu: 1}}\n",
            rendezvous_check()
        ),
    );
    let out = env.run(&["-f", spec.to_str().expect("utf8"), "--gpus", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    for rank in 0..3 {
        assert!(
            all.contains(&format!("[ddp/{rank}] rank {rank}/3: ok (ranks sum to 3")),
            "{all}"
        );
    }
    let job = env.job("ddp");
    assert_eq!(job["phase"], "Succeeded");
    assert_eq!(job["attempts"], 1);
    let described = env.describe("ddp");
    // each worker got its own GPU
    for rank in 0..3 {
        assert!(
            described.contains(&format!("worker {rank} on local, GPUs ")),
            "{described}"
        );
    }
}

#[test]
fn failures_are_retried_with_backoff_until_the_limit() {
    let env = Env::new();
    let times = env.path("times");
    let spec = env.spec(
        "job.yaml",
        &format!(
            "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: flaky}}\nspec:\n  run: [sh, -c, 'date +%s.%N >> {times}; exit 7']\n  retries: {{limit: 2, backoff: {{duration: 1s, factor: 2}}}}\n"
        ),
    );
    let out = env.run(&["-f", spec.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the retry limit (2) is reached"),
        "{}",
        text(&out)
    );
    let starts: Vec<f64> = std::fs::read_to_string(&times)
        .expect("times")
        .lines()
        .map(|l| l.parse().expect("timestamp"))
        .collect();
    assert_eq!(starts.len(), 3, "1 attempt + 2 retries");
    // Argo: the first retry waits `duration`, the second `duration * factor`
    assert!(starts[1] - starts[0] >= 1.0, "{starts:?}");
    assert!(starts[2] - starts[1] >= 2.0, "{starts:?}");
    let job = env.job("flaky");
    assert_eq!(
        (job["phase"].as_str(), job["attempts"].as_u64()),
        (Some("Failed"), Some(3))
    );
}

#[test]
fn a_program_that_does_not_exist_fails_to_start() {
    let env = Env::new();
    let spec = env.spec(
        "job.yaml",
        "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: typo}\nspec:\n  run: [mlctl-test-no-such-program]\n  workers: 2\n",
    );
    let out = env.run(&["-f", spec.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("FailedToStart"), "{all}");
    assert!(
        all.contains("failed to start `mlctl-test-no-such-program`"),
        "{all}"
    );
    assert!(!all.contains("Started"), "no worker ran: {all}");
    let job = env.job("typo");
    assert_eq!(
        (job["phase"].as_str(), job["attempts"].as_u64()),
        (Some("Failed"), Some(1))
    );
    let described = env.describe("typo");
    assert!(pids_in(&described).is_empty(), "{described}");
}

#[test]
fn a_deadline_stops_the_attempt() {
    let env = Env::new();
    let spec = env.spec(
        "job.yaml",
        "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: slow}\nspec:\n  run: [sleep, \"60\"]\n  deadline: 500ms\n",
    );
    let started = Instant::now();
    let out = env.run(&["-f", spec.to_str().expect("utf8"), "--grace-period", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(text(&out).contains("DeadlineExceeded"), "{}", text(&out));
    let described = env.describe("slow");
    assert!(described.contains("killed by SIGTERM"), "{described}");
}

#[test]
fn one_failing_worker_restarts_the_whole_gang() {
    let env = Env::new();
    let marker = env.path("failed-once");
    let spec = env.spec(
        "job.yaml",
        &format!(
            "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: gang}}\nspec:\n  run: [python3, {}, --fail-rank, \"1\", --fail-once, {marker}, --timeout, \"20\"]\n  workers: 2\n  retries: {{limit: 1}}\n",
            rendezvous_check()
        ),
    );
    let out = env.run(&["-f", spec.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    let job = env.job("gang");
    assert_eq!(job["attempts"], 2);
    let described = env.describe("gang");
    assert!(
        described.contains("attempt 1: Failed")
            && described.contains("worker 1 of gang ended with exit code 3"),
        "{described}"
    );
    assert!(described.contains("attempt 2: Succeeded"), "{described}");
}

#[test]
fn ctrl_c_cancels_and_leaves_no_orphan() {
    let env = Env::new();
    // workers ignore SIGTERM and start grandchildren that ignore it too
    let spec = env.spec(
        "job.yaml",
        "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: stubborn}\nspec:\n  run: [sh, -c, 'trap \"\" TERM; (trap \"\" TERM; sleep 300) & sleep 300 & echo ready; wait']\n  workers: 2\n",
    );
    let mut child = env.spawn_run(&[
        "-f",
        spec.to_str().expect("utf8"),
        "--grace-period",
        "500ms",
    ]);
    wait_for_lines(&mut child, "ready", 2);
    let pids = pids_in(&env.describe("stubborn"));
    assert_eq!(pids.len(), 2);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("send SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    // nothing of either process group survives
    let groups: Vec<u32> = pids;
    let survivors: Vec<u32> = std::fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(')').next().map(str::to_string))
                .and_then(|rest| {
                    rest.split_whitespace()
                        .nth(2)
                        .and_then(|g| g.parse::<u32>().ok())
                })
                .is_some_and(|pgrp| groups.contains(&pgrp))
        })
        .filter(|pid| alive(*pid))
        .collect();
    assert!(survivors.is_empty(), "orphans: {survivors:?}");
    assert_eq!(env.job("stubborn")["phase"], "Cancelled");
}

#[test]
fn two_runs_share_two_declared_gpus_without_overcommit() {
    let env = Env::new();
    let spec_for = |name: &str| {
        let log = env.path(&format!("{name}.log"));
        env.spec(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: {name}}}\nspec:\n  run: [sh, -c, 'echo \"$(date +%s.%N) start $CUDA_VISIBLE_DEVICES\" >> {log}; sleep 0.5; echo \"$(date +%s.%N) end\" >> {log}']\n  workers: 2\n  resources: {{gpu: 1}}\n"
            ),
        )
    };
    let a = spec_for("a");
    let b = spec_for("b");
    let mut first = env.spawn_run(&["-f", a.to_str().expect("utf8"), "--gpus", "2"]);
    let mut second = env.spawn_run(&["-f", b.to_str().expect("utf8"), "--gpus", "2"]);
    assert!(first.wait().expect("wait").success());
    assert!(second.wait().expect("wait").success());
    let span = |name: &str| {
        let text = std::fs::read_to_string(env.path(&format!("{name}.log"))).expect("log");
        let times: Vec<(f64, String)> = text
            .lines()
            .map(|l| {
                let (t, rest) = l.split_once(' ').expect("line");
                (t.parse().expect("time"), rest.to_string())
            })
            .collect();
        let starts: Vec<&(f64, String)> =
            times.iter().filter(|t| t.1.starts_with("start")).collect();
        let gpus: Vec<&str> = starts
            .iter()
            .map(|t| t.1.trim_start_matches("start "))
            .collect();
        let begin = starts.iter().map(|t| t.0).fold(f64::MAX, f64::min);
        let end = times.iter().map(|t| t.0).fold(0.0, f64::max);
        (
            begin,
            end,
            gpus.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        )
    };
    let (a_begin, a_end, mut a_gpus) = span("a");
    let (b_begin, b_end, mut b_gpus) = span("b");
    a_gpus.sort();
    b_gpus.sort();
    assert_eq!(a_gpus, ["0", "1"]);
    assert_eq!(b_gpus, ["0", "1"]);
    assert!(
        a_end <= b_begin || b_end <= a_begin,
        "the two runs held the same GPUs at once: a [{a_begin}, {a_end}] b [{b_begin}, {b_end}]"
    );
}

#[test]
fn a_job_waits_behind_its_namespace_quota() {
    let env = Env::new();
    let log = env.path("order.log");
    let spec = env.spec(
        "jobs.yaml",
        &format!(
            "apiVersion: mlctl.dev/v1alpha1\nkind: Platform\nmetadata: {{name: p}}\nspec:\n  namespaces:\n    ml:\n      quota: {{gpu: 2}}\n---\napiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: big, namespace: ml}}\nspec:\n  run: [sh, -c, 'echo big-start >> {log}; sleep 0.5; echo big-end >> {log}']\n  resources: {{gpu: 2}}\n---\napiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: small, namespace: ml}}\nspec:\n  run: [sh, -c, 'echo small >> {log}']\n  resources: {{gpu: 1}}\n"
        ),
    );
    let out = env.run(&["-f", spec.to_str().expect("utf8"), "--gpus", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&log).expect("log"),
        "big-start\nbig-end\nsmall\n",
        "small ran only after big released the quota"
    );
    let described = env.describe("small");
    assert!(
        described.contains(
            "quota ml-quota in namespace ml: requests.nvidia.com/gpu 2 used + 1 requested > 2 hard"
        ),
        "{described}"
    );
}

#[test]
fn kill_9_of_mlctl_then_recovery_retries_the_lost_attempt() {
    let env = Env::new();
    let marker = env.path("started-once");
    let spec = env.spec(
        "long.yaml",
        &format!(
            "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {{name: long}}\nspec:\n  run: [sh, -c, 'if [ -e {marker} ]; then echo second; exit 0; fi; touch {marker}; echo first; sleep 300']\n  retries: {{limit: 1}}\n"
        ),
    );
    let mut child = env.spawn_run(&["-f", spec.to_str().expect("utf8")]);
    wait_for_lines(&mut child, "first", 1);
    let pids = pids_in(&env.describe("long"));
    assert_eq!(pids.len(), 1);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    assert!(alive(pids[0]), "the worker outlives a killed mlctl");
    // the next mlctl finds the orphan, kills its processes and retries it in the background
    let quick = env.spec(
        "quick.yaml",
        "apiVersion: mlctl.dev/v1alpha1\nkind: TrainingJob\nmetadata: {name: quick}\nspec:\n  run: [\"true\"]\n",
    );
    let out = env.run(&["-f", quick.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("recovered 1 run(s)"), "{}", text(&out));
    assert!(!alive(pids[0]), "the lost attempt's process was stopped");
    wait_until(
        "the recovered run to succeed",
        Duration::from_secs(30),
        || env.job("long")["phase"] == "Succeeded",
    );
    let described = env.describe("long");
    assert!(described.contains("attempt 1: Lost"), "{described}");
    assert!(described.contains("attempt 2: Succeeded"), "{described}");
}

#[test]
fn the_seed_training_jobs_run_for_real() {
    let env = Env::new();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed");
    // the examples ask for production resources (a V100, 8 CPUs per worker): declare a machine
    // that has them; the processes themselves are small
    let machine = [
        "--gpus",
        "4",
        "--gpu-type",
        "nvidia-tesla-v100",
        "--cpus",
        "64",
        "--memory",
        "256Gi",
    ];
    for (file, job) in [
        ("01-training-job.yaml", "ml-training"),
        ("02-distributed-training.yaml", "distributed-training"),
        ("12-training-rightsizing.yaml", "ml-training-job"),
    ] {
        let path = seed.join(file);
        let mut args = vec!["-f", path.to_str().expect("utf8")];
        args.extend(machine);
        let out = env.run(&args);
        assert!(out.status.success(), "{file}: {}", text(&out));
        assert!(
            text(&out).contains("exported"),
            "{file} exports its model: {}",
            text(&out)
        );
        assert_eq!(env.job(job)["phase"], "Succeeded");
    }
    // 01's model lands on its `model-output` claim volume, which outlives the run
    assert!(
        env.home
            .path()
            .join("volumes/model-output-pvc/model.onnx")
            .exists()
    );
}
