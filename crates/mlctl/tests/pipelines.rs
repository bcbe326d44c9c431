//! Pipelines on the local runtime, with real processes: Argo's DAG semantics end to end,
//! outputs and artifacts between steps, `when`, retries per step, parallelism, the exit
//! handler, and resuming after `kill -9` of mlctl at many points.

mod support;

use std::time::Duration;

use support::{Env, text, wait_until};

const HEAD: &str =
    "apiVersion: mlctl.dev/v1alpha1\nkind: Pipeline\nmetadata: {name: pipe}\nspec:\n";

#[test]
fn outputs_artifacts_and_when_flow_between_steps() {
    let env = Env::new();
    let spec = env.spec(
        "p.yaml",
        &format!(
            "{HEAD}  params: {{threshold: \"0.5\"}}\n  steps:\n    make:\n      run: [sh, -c, 'mkdir -p out && echo 42 > out/value && printf 0.9 > $MLCTL_OUTPUTS/score']\n      outputs: {{params: [score], artifacts: [out/]}}\n    use:\n      needs: [make]\n      run: [sh, -c, 'test \"$(cat {{{{steps.make.outputs.artifacts.out}}}}/value)\" = 42 && echo score={{{{steps.make.outputs.score}}}}']\n    gated:\n      needs: [make]\n      when: \"{{{{steps.make.outputs.score}}}} > {{{{params.threshold}}}}\"\n      run: [\"true\"]\n    never:\n      needs: [make]\n      when: \"{{{{steps.make.outputs.score}}}} < {{{{params.threshold}}}}\"\n      run: [\"false\"]\n    after-never:\n      needs: [never]\n      run: [\"true\"]\n"
        ),
    );
    let out = env.run(&["-f", spec.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("[use] score=0.9"), "{}", text(&out));
    assert_eq!(env.job("gated")["phase"], "Succeeded");
    assert_eq!(env.job("never")["phase"], "Skipped");
    // Argo: a step after a skipped step runs
    assert_eq!(env.job("after-never")["phase"], "Succeeded");
    assert_eq!(env.job("make")["outputs"]["score"], "0.9");
    let described = env.describe("pipe");
    let graph: Vec<&str> = described
        .lines()
        .skip_while(|l| *l != "Graph:")
        .take_while(|l| *l != "Jobs:")
        .collect();
    let row = |step: &str| {
        graph
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{step} ")))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no row for {step}: {graph:?}"))
    };
    assert_eq!(row("make")[..3], ["make", "-", "Succeeded"]);
    assert_eq!(row("make")[5], "score=0.9");
    assert_eq!(row("never")[..3], ["never", "make", "Skipped"]);
    assert_eq!(
        row("after-never")[..3],
        ["after-never", "never", "Succeeded"]
    );
}

#[test]
fn a_failed_step_fails_fast_and_omits_what_depends_on_it() {
    let env = Env::new();
    let spec = env.spec(
        "p.yaml",
        &format!(
            "{HEAD}  steps:\n    bad:\n      run: [sh, -c, 'exit 2']\n    after-bad:\n      needs: [bad]\n      run: [\"true\"]\n    tolerated:\n      run: [sh, -c, 'exit 3']\n      continueOn: {{failed: true}}\n    after-tolerated:\n      needs: [tolerated]\n      run: [\"true\"]\n"
        ),
    );
    let out = env.run(&["-f", spec.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(env.job("bad")["phase"], "Failed");
    assert_eq!(env.job("after-bad")["phase"], "Omitted");
    assert!(
        text(&out).contains("step bad did not succeed"),
        "{}",
        text(&out)
    );
}

#[test]
fn step_retries_parallelism_and_the_exit_handler() {
    let env = Env::new();
    let times = env.path("times");
    let status = env.path("status");
    let spec = env.spec(
        "p.yaml",
        &format!(
            "{HEAD}  parallelism: 1\n  onExit: report\n  steps:\n    a:\n      run: [sh, -c, 'echo \"$(date +%s.%N) a\" >> {times}; sleep 0.3; echo \"$(date +%s.%N) a-end\" >> {times}']\n    b:\n      run: [sh, -c, 'echo \"$(date +%s.%N) b\" >> {times}; sleep 0.3; echo \"$(date +%s.%N) b-end\" >> {times}']\n    flaky:\n      needs: [a, b]\n      run: [sh, -c, 'test -e {times}.once || {{ touch {times}.once; exit 1; }}']\n      retries: {{limit: 1}}\n    report:\n      run: [sh, -c, 'echo $MLCTL_PIPELINE_STATUS > {status}']\n"
        ),
    );
    let out = env.run(&["-f", spec.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(env.job("flaky")["attempts"], 2);
    assert_eq!(
        std::fs::read_to_string(&status).expect("status").trim(),
        "Succeeded"
    );
    // parallelism 1: a and b never overlap
    let lines: Vec<(f64, String)> = std::fs::read_to_string(&times)
        .expect("times")
        .lines()
        .map(|l| {
            let (t, what) = l.split_once(' ').expect("line");
            (t.parse().expect("time"), what.to_string())
        })
        .collect();
    let names: Vec<&str> = lines.iter().map(|l| l.1.as_str()).collect();
    assert!(
        names == ["a", "a-end", "b", "b-end"] || names == ["b", "b-end", "a", "a-end"],
        "{names:?}"
    );
}

#[test]
fn kill_9_at_many_points_then_resume_runs_every_step_once() {
    // a -> (b, c) -> d -> e; each step appends its name to done.log as its last action
    let env = Env::new();
    let done = env.path("done.log");
    let started = env.path("started.log");
    let step = |name: &str| {
        format!(
            "      run: [sh, -c, 'echo {name} >> {started}; sleep 0.2; echo {name} >> {done}']\n"
        )
    };
    let spec = env.spec(
        "p.yaml",
        &format!(
            "{HEAD}  steps:\n    a:\n{}    b:\n      needs: [a]\n{}    c:\n      needs: [a]\n{}    d:\n      needs: [b, c]\n{}    e:\n      needs: [d]\n{}",
            step("a"),
            step("b"),
            step("c"),
            step("d"),
            step("e")
        ),
    );
    // kill points: as soon as the run exists, then after each of 1..=5 steps started
    for kill_after in 0..=5usize {
        let _ = std::fs::remove_file(&done);
        let _ = std::fs::remove_file(&started);
        // each round runs the same pipeline: without the cache, every step runs
        let mut child = env.spawn_run(&["-f", spec.to_str().expect("utf8"), "--no-cache"]);
        wait_until("the kill point", Duration::from_secs(30), || {
            let n = std::fs::read_to_string(&started).map_or(0, |s| s.lines().count());
            if kill_after == 0 {
                env.json(&["get", "runs"])
                    .as_array()
                    .is_some_and(|runs| runs.iter().any(|r| r["phase"] == "Running"))
            } else {
                n >= kill_after
            }
        });
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        let runs = env.json(&["get", "runs"]);
        let run = runs.as_array().expect("runs")[0]["id"]
            .as_str()
            .expect("id")
            .to_string();
        let out = env
            .mlctl()
            .args(["resume", &run, "--grace-period", "1s"])
            .output()
            .expect("resume");
        assert!(
            out.status.success(),
            "kill point {kill_after}: {}",
            text(&out)
        );
        let mut finished: Vec<String> = std::fs::read_to_string(&done)
            .expect("done.log")
            .lines()
            .map(str::to_string)
            .collect();
        finished.sort();
        assert_eq!(
            finished,
            ["a", "b", "c", "d", "e"],
            "kill point {kill_after}: every step succeeded exactly once\n{}",
            env.describe(&run)
        );
    }
}

#[test]
fn unchanged_steps_are_reused_until_an_input_changes() {
    let env = Env::new();
    let log = env.path("ran.log");
    std::fs::write(env.path("script.sh"), "echo hello\n").expect("project file");
    let spec = env.spec(
        "p.yaml",
        &format!(
            "{HEAD}  params: {{n: \"1\"}}\n  steps:\n    make:\n      run: [sh, -c, 'echo make >> {log}; mkdir -p out; cat script.sh > out/f']\n      outputs: {{artifacts: [out/]}}\n    use:\n      needs: [make]\n      run: [sh, -c, 'echo use-{{{{params.n}}}} >> {log}; cat {{{{steps.make.outputs.artifacts.out}}}}/f']\n    always:\n      cache: false\n      run: [sh, -c, 'echo always >> {log}']\n"
        ),
    );
    let path = spec.to_str().expect("utf8");
    let ran = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert!(env.run(&["-f", path]).status.success());
    assert_eq!(ran(), ["always", "make", "use-1"]);
    // nothing changed: only the step that opts out runs
    let out = env.run(&["-f", path]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(ran(), ["always"]);
    assert!(text(&out).contains("make: Cached"), "{}", text(&out));
    // a parameter only `use` reads
    assert!(env.run(&["-f", path, "-p", "n=2"]).status.success());
    assert_eq!(ran(), ["always", "use-2"]);
    // a project file changes: `make` runs again and, its artifact being the same, `use` is reused
    std::fs::write(env.path("script.sh"), "echo hello\n\n").expect("edit");
    assert!(env.run(&["-f", path, "-p", "n=2"]).status.success());
    assert_eq!(ran(), ["always", "make", "use-2"]);
    // --no-cache runs everything
    assert!(env.run(&["-f", path, "--no-cache"]).status.success());
    assert_eq!(ran(), ["always", "make", "use-1"]);
}

#[test]
fn steps_run_in_a_python_environment_built_once_per_requirement_set() {
    let env = Env::new();
    let check = "import six, sys, os; assert sys.prefix.startswith(os.environ['MLCTL_HOME']), sys.prefix; print('six', six.__version__)";
    let spec = env.spec(
        "p.yaml",
        &format!(
            "{HEAD}  steps:\n    first:\n      run: [python3, -c, \"{check}\"]\n      python: {{requirements: [six==1.16.0]}}\n    second:\n      needs: [first]\n      run: [python, -c, \"{check}\"]\n      python: {{requirements: [\"six==1.16.0\"]}}\n"
        ),
    );
    let out = env
        .mlctl()
        .env("MLCTL_HOME", env.home.path())
        .args(["run", "-f", spec.to_str().expect("utf8")])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("[first] six 1.16.0").count(),
        1,
        "{}",
        text(&out)
    );
    assert_eq!(
        text(&out).matches("[second] six 1.16.0").count(),
        1,
        "{}",
        text(&out)
    );
    assert_eq!(
        text(&out).matches("Preparing").count(),
        1,
        "built once: {}",
        text(&out)
    );
    let venvs: Vec<_> = std::fs::read_dir(env.home.path().join("venvs"))
        .expect("venvs")
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(venvs.len(), 1);
}
