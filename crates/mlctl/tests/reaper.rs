//! The reaper (`mlctl __reaper`) as the dispatcher drives it: held requests start nothing until
//! they are sent, and are dropped, failing their starts, when holding stops.

use std::path::Path;
use std::time::Duration;

use mlctl_local::process::{Exit, ProcSpec, Spawned};
use mlctl_local::reaper::Reaper;

/// Asks `reaper` to start a worker that leaves `marker` in `dir` when it runs (its status
/// file beside it).
fn start_marking(reaper: &Reaper, dir: &Path, marker: &str) -> Spawned {
    let spec = ProcSpec {
        argv: vec!["touch".into(), marker.into()],
        env: Vec::new(),
        cwd: dir.to_path_buf(),
        log: dir.join(format!("{marker}.log")),
    };
    reaper
        .spawn(&spec, &dir.join(format!("{marker}.status")))
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
        for name in ["a", "b", "a.status", "b.status"] {
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
