//! The reaper (`mlctl __reaper`) as the dispatcher drives it: held requests start nothing until
//! they are sent, and are dropped, failing their starts, when holding stops; workers keep the
//! machine's transparent huge pages, which their dispatcher turns off for itself.

mod support;

use std::path::Path;
use std::time::Duration;

use mlctl_local::process::{Exit, ProcSpec, Spawned};
use mlctl_local::reaper::{Reaper, StatusFile};

/// Asks `reaper` to start a worker that leaves `marker` in `dir` when it runs (recorded in
/// the status file of `dir`'s workers).
fn start_marking(reaper: &Reaper, dir: &Path, marker: &str) -> Spawned {
    let spec = ProcSpec {
        argv: vec!["touch".into(), marker.into()],
        env: Vec::new(),
        cwd: dir.to_path_buf(),
        log: dir.join(format!("{marker}.log")),
    };
    reaper
        .spawn(
            &spec,
            &StatusFile {
                path: dir.join("workers.status"),
                key: marker.into(),
            },
        )
        .expect("asked for")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn held_requests_start_their_processes_only_once_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reaper = Reaper::new(env!("CARGO_BIN_EXE_mlctl").into());
    reaper.start_early();
    runtime().block_on(async {
        reaper.hold();
        assert!(!reaper.holds_any());
        let first = start_marking(&reaper, dir.path(), "a");
        let second = start_marking(&reaper, dir.path(), "b");
        assert!(reaper.holds_any());
        // a started reaper would have run `touch` well within this
        tokio::time::sleep(Duration::from_millis(300)).await;
        for name in ["a", "b", "workers.status"] {
            assert!(
                !dir.path().join(name).exists(),
                "{name} exists before the send"
            );
        }
        reaper.send_held();
        assert!(!reaper.holds_any());
        for (name, spawned) in [("a", first), ("b", second)] {
            let (pid, _) = spawned.running.await.expect("started");
            assert!(pid > 0);
            assert_eq!(spawned.ended.await, Exit::Code(0));
            assert!(dir.path().join(name).exists(), "{name} did not run");
        }
        // still holding: the next request waits for the next send
        let third = start_marking(&reaper, dir.path(), "c");
        assert!(reaper.holds_any());
        reaper.send_held();
        assert_eq!(third.ended.await, Exit::Code(0));
        assert!(dir.path().join("c").exists());
    });
}

#[test]
fn requests_held_when_holding_stops_fail_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reaper = Reaper::new(env!("CARGO_BIN_EXE_mlctl").into());
    runtime().block_on(async {
        reaper.hold();
        let dropped = start_marking(&reaper, dir.path(), "a");
        reaper.stop_holding();
        assert!(!reaper.holding());
        let failed = dropped
            .running
            .await
            .expect_err("a dropped request does not start");
        assert!(
            failed.to_string().contains("its dispatcher stopped"),
            "{failed}"
        );
        // not holding any more: a request is sent at once
        let sent = start_marking(&reaper, dir.path(), "b");
        assert_eq!(sent.ended.await, Exit::Code(0));
        assert!(dir.path().join("b").exists());
        assert!(!dir.path().join("a").exists());
    });
}

/// The `THP_enabled` values in `text`, one per line that has one: `1` where transparent huge
/// pages are on for the process, `0` where they were turned off (`/proc/PID/status` has one
/// such line).
fn thp_values(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            l.split_once("THP_enabled:")
                .map(|(_, v)| v.trim().to_string())
        })
        .collect()
}

/// The setting of a process, from its `/proc/PID/status`.
fn thp_enabled(status: &str) -> String {
    thp_values(status)
        .pop()
        .unwrap_or_else(|| panic!("no THP_enabled line in {status}"))
}

/// This test process's setting: the machine's, which workers are to keep.
fn own_thp() -> String {
    thp_enabled(&std::fs::read_to_string("/proc/self/status").expect("own status"))
}

/// A pipeline whose step prints its own `THP_enabled` line, then its dispatcher's (the parent
/// of its reaper).
const PROBE: &str = "apiVersion: mlctl.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: thp}\nspec:\n  steps:\n    probe:\n      run: [sh, -c, 'grep THP_enabled /proc/self/status; d=$(cut -d\" \" -f4 /proc/$PPID/stat); grep THP_enabled /proc/$d/status']\n";

/// The settings that the probe step printed, from lines that end with its output.
fn probed(output: &[u8]) -> Vec<String> {
    thp_values(&String::from_utf8_lossy(output))
}

#[test]
fn workers_keep_the_huge_pages_setting_that_their_dispatcher_turns_off_for_itself() {
    let env = support::Env::new();
    env.spec("probe.yaml", PROBE);
    let out = env.run(&["-f", "probe.yaml"]);
    assert!(out.status.success(), "{}", support::text(&out));
    assert_eq!(probed(&out.stdout), [own_thp(), "0".to_string()]);
}

#[test]
fn workers_of_a_detached_run_keep_the_huge_pages_setting_too() {
    // the supervisor is started by the submitting mlctl, whose setting it inherits
    let env = support::Env::new();
    env.spec("probe.yaml", PROBE);
    let out = env.run(&["--detach", "-f", "probe.yaml"]);
    assert!(out.status.success(), "{}", support::text(&out));
    let run = String::from_utf8_lossy(&out.stdout).trim().to_string();
    support::wait_until("the detached run ends", Duration::from_secs(60), || {
        env.json(&["get", "runs"])[0]["phase"] == "Succeeded"
    });
    let logs = env.mlctl().args(["logs", &run]).output().expect("logs");
    assert!(logs.status.success(), "{}", support::text(&logs));
    assert_eq!(probed(&logs.stdout), [own_thp(), "0".to_string()]);
}

#[test]
fn a_reaper_started_after_its_dispatcher_turned_huge_pages_off_turns_them_back_on() {
    let machine = own_thp();
    // as `mlctl run` does: off for this process, unless they were off already
    let turned_off = mlctl_local::reaper::dispatch_without_thp();
    assert_eq!(turned_off, machine == "1");
    assert_eq!(own_thp(), "0");
    let dir = tempfile::tempdir().expect("tempdir");
    for (restore, expected) in [(false, "0".to_string()), (true, machine)] {
        let reaper = Reaper::new(env!("CARGO_BIN_EXE_mlctl").into());
        if restore && turned_off {
            reaper.restore_thp();
        }
        let log = dir.path().join(format!("{restore}.log"));
        let spec = ProcSpec {
            argv: vec![
                "grep".into(),
                "THP_enabled".into(),
                "/proc/self/status".into(),
            ],
            env: Vec::new(),
            cwd: dir.path().to_path_buf(),
            log: log.clone(),
        };
        runtime().block_on(async {
            let spawned = reaper
                .spawn(
                    &spec,
                    &StatusFile {
                        path: dir.path().join("workers.status"),
                        key: restore.to_string(),
                    },
                )
                .expect("asked for");
            assert_eq!(spawned.ended.await, Exit::Code(0));
        });
        let seen = thp_enabled(&std::fs::read_to_string(&log).expect("log"));
        assert_eq!(
            seen, expected,
            "a worker of a reaper told to restore: {restore}"
        );
    }
}
