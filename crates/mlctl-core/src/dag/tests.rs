//! Argo's DAG semantics as tables (each case cites the Argo source or document it follows)
//! and properties on random graphs with random outcomes.

use std::collections::HashMap;
use std::num::NonZeroUsize;

use proptest::prelude::*;

use super::*;

// ---------------------------------------------------------------------------------------
// A scripted caller

/// A step's scripted behaviour: its `when` decision and how it ends once started.
#[derive(Debug, Clone, Copy)]
struct Script {
    decision: Decision,
    outcome: Outcome,
}

const RUN_OK: Script = Script {
    decision: Decision::Run,
    outcome: Outcome::Succeeded,
};
const RUN_FAIL: Script = Script {
    decision: Decision::Run,
    outcome: Outcome::Failed,
};
const RUN_ERROR: Script = Script {
    decision: Decision::Run,
    outcome: Outcome::Error,
};
const SKIP: Script = Script {
    decision: Decision::Skip,
    outcome: Outcome::Succeeded,
};
const WHEN_ERROR: Script = Script {
    decision: Decision::Error,
    outcome: Outcome::Succeeded,
};

/// What happened in a run.
struct Trace {
    ex: Execution,
    started: Vec<String>,
    max_active: usize,
    /// The main phase the exit handler saw when it was decided.
    exit_saw: Option<Phase>,
}

impl Trace {
    fn status(&self, name: &str) -> Status {
        self.ex.status(self.ex.dag().id(name).unwrap())
    }

    fn phase(&self) -> Phase {
        self.ex.phase().unwrap()
    }
}

/// Runs `ex`, deciding and finishing steps as `scripts` say (unlisted steps run and
/// succeed). Started steps finish in the order they started, unless `finish_order` lists
/// them: listed steps finish in that order, before the others.
fn drive(mut ex: Execution, scripts: &[(&str, Script)], finish_order: &[&str]) -> Trace {
    let script: HashMap<&str, Script> = scripts.iter().copied().collect();
    let mut running: Vec<NodeId> = Vec::new();
    let mut started = Vec::new();
    let mut max_active = 0;
    let mut exit_saw = None;
    for _ in 0..100_000 {
        match ex.next_action() {
            Action::Decide(id) => {
                let name = ex.dag().name(id).to_string();
                if Some(id) == ex.dag().exit_handler() {
                    exit_saw = ex.main_phase();
                }
                let s = script.get(name.as_str()).copied().unwrap_or(RUN_OK);
                ex.decide(id, s.decision).unwrap();
            }
            Action::Start(id) => {
                started.push(ex.dag().name(id).to_string());
                running.push(id);
                max_active = max_active.max(ex.active());
                ex.started(id).unwrap();
            }
            Action::Wait => {
                let pick = finish_order
                    .iter()
                    .find_map(|n| running.iter().position(|r| ex.dag().name(*r) == *n))
                    .unwrap_or(0);
                let id = running.remove(pick);
                let name = ex.dag().name(id).to_string();
                let s = script.get(name.as_str()).copied().unwrap_or(RUN_OK);
                ex.finished(id, s.outcome).unwrap();
            }
            Action::Done(_) => {
                return Trace {
                    ex,
                    started,
                    max_active,
                    exit_saw,
                };
            }
        }
    }
    panic!("the run did not end");
}

/// A graph from `(name, needs)` pairs.
fn graph(steps: &[(&str, &[&str])]) -> DagBuilder {
    let mut b = DagBuilder::new();
    for (name, needs) in steps {
        b.node(*name).needs(needs.iter().copied());
    }
    b
}

fn run(b: DagBuilder, options: Options, scripts: &[(&str, Script)]) -> Trace {
    drive(Execution::new(b.seal().unwrap(), options), scripts, &[])
}

fn no_fail_fast() -> Options {
    Options {
        fail_fast: false,
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------------------
// Argo semantics

#[test]
fn a_step_after_a_skipped_step_runs() {
    // ancestry.go expandDependency: `dependencies: [A]` is
    // `A.Succeeded || A.Skipped || A.Daemoned`.
    let t = run(
        graph(&[("a", &[]), ("b", &["a"])]),
        Options::default(),
        &[("a", SKIP)],
    );
    assert_eq!(t.status("a"), Status::Skipped);
    assert_eq!(t.status("b"), Status::Succeeded);
    assert_eq!(t.started, ["b"]);
    // dag.go assessDAGPhase: Skipped passes the root's Succeeded on.
    assert_eq!(t.phase(), Phase::Succeeded);
}

#[test]
fn a_failed_dependency_omits_its_dependents_transitively() {
    // dag.go evaluateDependsLogic: depends false -> Omitted ("omitted: depends condition
    // not met"); Omitted satisfies no plain dependency (ancestry.go expandDependency).
    let t = run(
        graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"])]),
        no_fail_fast(),
        &[("a", RUN_FAIL)],
    );
    assert_eq!(t.status("a"), Status::Failed);
    assert_eq!(t.status("b"), Status::Omitted(Omission::DependsNotMet));
    assert_eq!(t.status("c"), Status::Omitted(Omission::DependsNotMet));
    // dag.go assessDAGPhase: the omitted target c inherits a's Failed.
    assert_eq!(t.phase(), Phase::Failed);
}

#[test]
fn continue_on_failed_lets_dependents_run_and_the_dag_succeed() {
    // test/e2e/functional_test.go TestContinueOnFailDag: F fails with continueOn failed,
    // P (dependencies [F]) succeeds, the workflow Succeeds.
    for options in [no_fail_fast(), Options::default()] {
        let mut b = DagBuilder::new();
        b.node("F").continue_on(ContinueOn {
            failed: true,
            error: false,
        });
        b.node("P").needs(["F"]);
        let t = run(b, options, &[("F", RUN_FAIL)]);
        assert_eq!(t.status("F"), Status::Failed);
        assert_eq!(t.status("P"), Status::Succeeded);
        assert_eq!(t.phase(), Phase::Succeeded, "{options:?}");
    }
}

#[test]
fn continue_on_covers_only_the_named_failure() {
    // types.go continues(): `failed` covers the Failed phase, `error` the Error phase.
    let mut b = DagBuilder::new();
    b.node("a").continue_on(ContinueOn {
        failed: true,
        error: false,
    });
    b.node("b").needs(["a"]);
    let t = run(b, no_fail_fast(), &[("a", RUN_ERROR)]);
    assert_eq!(t.status("b"), Status::Omitted(Omission::DependsNotMet));
    assert_eq!(t.phase(), Phase::Error);
}

#[test]
fn a_leaf_with_continue_on_does_not_fail_the_dag() {
    // argo-workflows c67f5ff "Leaf task with continueOn should not fail DAG";
    // dag.go assessDAGPhase: `task.ContinuesOn(branchPhase)` targets are not failures.
    let mut b = DagBuilder::new();
    b.node("a");
    b.node("leaf").needs(["a"]).continue_on(ContinueOn {
        failed: true,
        error: true,
    });
    let t = run(b, Options::default(), &[("leaf", RUN_FAIL)]);
    assert_eq!(t.phase(), Phase::Succeeded);
}

#[test]
fn a_target_with_continue_on_hides_an_ancestors_failure_as_in_argo() {
    // dag.go assessDAGPhase checks the *target's* continueOn against its branch phase, even
    // when that phase was inherited: a -> b (omitted, continueOn failed) succeeds.
    let mut b = DagBuilder::new();
    b.node("a");
    b.node("b").needs(["a"]).continue_on(ContinueOn {
        failed: true,
        error: false,
    });
    let t = run(b, no_fail_fast(), &[("a", RUN_FAIL)]);
    assert_eq!(t.status("b"), Status::Omitted(Omission::DependsNotMet));
    assert_eq!(t.phase(), Phase::Succeeded);
}

#[test]
fn fail_fast_starts_nothing_new_and_lets_running_steps_finish() {
    // docs/walk-through/dag.md "Fail Fast": "when one task fails, no new tasks will be
    // scheduled. Once all running tasks are completed, the DAG will be marked as failed."
    let b = graph(&[("a", &[]), ("b", &[]), ("c", &["b"])]);
    let ex = Execution::new(b.seal().unwrap(), Options::default());
    let t = drive(ex, &[("a", RUN_FAIL)], &["a", "b"]);
    assert_eq!(t.started, ["a", "b"]);
    assert_eq!(t.status("b"), Status::Succeeded, "a running step finishes");
    assert_eq!(t.status("c"), Status::Omitted(Omission::FailFast));
    assert_eq!(t.phase(), Phase::Failed);
}

#[test]
fn without_fail_fast_every_branch_runs_to_completion() {
    // examples/dag-disable-failFast.yaml: A; B and C depend on A; D on B; E on D; C fails.
    // fields.md failFast: "if set to false, it will allow a DAG to run all branches of the
    // DAG to completion ... regardless of the failed outcomes of branches".
    let shape: &[(&str, &[&str])] = &[
        ("A", &[]),
        ("B", &["A"]),
        ("C", &["A"]),
        ("D", &["B"]),
        ("E", &["D"]),
    ];
    let ex = Execution::new(graph(shape).seal().unwrap(), no_fail_fast());
    let t = drive(ex, &[("C", RUN_FAIL)], &["C"]);
    for name in ["A", "B", "D", "E"] {
        assert_eq!(t.status(name), Status::Succeeded, "{name}");
    }
    assert_eq!(t.phase(), Phase::Failed);
    // The same workflow failing fast: C fails while B runs; D and E never start.
    let ex = Execution::new(graph(shape).seal().unwrap(), Options::default());
    let t = drive(ex, &[("C", RUN_FAIL)], &["C"]);
    assert_eq!(t.status("B"), Status::Succeeded);
    assert_eq!(t.status("D"), Status::Omitted(Omission::FailFast));
    assert_eq!(t.status("E"), Status::Omitted(Omission::FailFast));
    assert_eq!(t.phase(), Phase::Failed);
}

#[test]
fn a_failure_handler_written_with_depends_runs_and_the_dag_succeeds() {
    // docs/enhanced-depends-logic.md: `depends: "A.Failed"`; dag.go assessDAGPhase: the
    // handler completes Succeeded, so the target's branch phase is Succeeded. The failure is
    // handled, so it does not trigger fail-fast.
    let mut b = DagBuilder::new();
    b.node("a");
    b.node("cleanup")
        .depends(Depends::parse("a.Failed").unwrap());
    b.node("after").needs(["cleanup"]);
    let t = run(b, Options::default(), &[("a", RUN_FAIL)]);
    assert_eq!(t.status("cleanup"), Status::Succeeded);
    assert_eq!(t.status("after"), Status::Succeeded);
    assert_eq!(t.phase(), Phase::Succeeded);
}

#[test]
fn an_unmet_depends_omits_the_step_and_the_dag_succeeds() {
    // dag.go evaluateDependsLogic: false -> Omitted; assessDAGPhase: an omitted target
    // inherits its parents' branch phase (Succeeded).
    let mut b = DagBuilder::new();
    b.node("a");
    b.node("on-failure")
        .depends(Depends::parse("a.Failed || a.Errored").unwrap());
    let t = run(b, Options::default(), &[]);
    assert_eq!(
        t.status("on-failure"),
        Status::Omitted(Omission::DependsNotMet)
    );
    assert_eq!(t.phase(), Phase::Succeeded);
}

#[test]
fn depends_results_and_bare_names() {
    // docs/enhanced-depends-logic.md: results Succeeded, Failed, Errored, Skipped, Omitted;
    // a bare name is `(task.Succeeded || task.Skipped || task.Daemoned)`.
    type Case<'a> = (&'a str, &'a [(&'a str, Script)], bool);
    let cases: &[Case] = &[
        ("a", &[], true),
        ("a", &[("a", SKIP)], true),
        ("a.Succeeded", &[("a", SKIP)], false),
        ("a.Skipped", &[("a", SKIP)], true),
        ("!a.Skipped", &[], true),
        ("a.Errored", &[("a", WHEN_ERROR)], true),
        ("a.Succeeded && b.Failed", &[("b", RUN_FAIL)], true),
        ("a.Failed || b.Failed", &[], false),
        (
            "(a.Succeeded || a.Failed) && !b.Succeeded",
            &[("b", SKIP)],
            true,
        ),
        ("a.AnySucceeded || a.AllFailed || a.Daemoned", &[], false),
    ];
    for (depends, scripts, runs) in cases {
        let mut b = DagBuilder::new();
        b.node("a");
        b.node("b");
        b.node("x").depends(Depends::parse(depends).unwrap());
        let t = run(b, no_fail_fast(), scripts);
        let want = if *runs {
            Status::Succeeded
        } else {
            Status::Omitted(Omission::DependsNotMet)
        };
        assert_eq!(t.status("x"), want, "depends: {depends}");
    }
}

#[test]
fn an_omitted_dependency_can_be_depended_on() {
    // docs/enhanced-depends-logic.md `.Omitted`: "Task's depends condition evaluated to
    // false".
    let mut b = DagBuilder::new();
    b.node("a");
    b.node("b").needs(["a"]);
    b.node("c").depends(Depends::parse("b.Omitted").unwrap());
    let t = run(b, no_fail_fast(), &[("a", RUN_FAIL)]);
    assert_eq!(t.status("b"), Status::Omitted(Omission::DependsNotMet));
    assert_eq!(t.status("c"), Status::Succeeded);
    assert_eq!(
        t.phase(),
        Phase::Succeeded,
        "c completed Succeeded, replacing a's Failed"
    );
}

#[test]
fn an_invalid_when_errors_the_step() {
    // dag.go executeDAGTask: shouldExecute error -> node phase Error; its dependents are
    // omitted (Errored satisfies no plain dependency) and the DAG ends Error.
    let t = run(
        graph(&[("a", &[]), ("b", &["a"])]),
        Options::default(),
        &[("a", WHEN_ERROR)],
    );
    assert_eq!(t.status("a"), Status::Error);
    assert_eq!(t.status("b"), Status::Omitted(Omission::DependsNotMet));
    assert!(t.started.is_empty());
    assert_eq!(t.phase(), Phase::Error);
}

#[test]
fn the_first_failing_target_by_name_decides_with_fail_fast_and_the_last_without() {
    // dag.go assessDAGPhase: targets are sorted by name (findLeafTaskNames); with failFast
    // the loop stops at the first Failed/Error target, without it the last one wins.
    for (fail_fast, want) in [(true, Phase::Error), (false, Phase::Failed)] {
        let b = graph(&[("b", &[]), ("a", &[])]);
        let ex = Execution::new(
            b.seal().unwrap(),
            Options {
                fail_fast,
                parallelism: None,
            },
        );
        // b finishes first, so the order of finishing is not what decides.
        let t = drive(ex, &[("a", RUN_ERROR), ("b", RUN_FAIL)], &["b", "a"]);
        assert_eq!(t.phase(), want, "fail_fast: {fail_fast}");
    }
}

#[test]
fn a_target_inherits_failed_over_succeeded_from_any_path() {
    // dag.go assessDAGPhase: a target keeps a Failed/Error branch phase once one reaches it
    // ("preference of Failed or Error phases over Succeeded").
    let mut b = DagBuilder::new();
    b.node("root");
    b.node("bad").needs(["root"]).continue_on(ContinueOn {
        failed: true,
        error: false,
    });
    b.node("good").needs(["root"]);
    b.node("skipped").needs(["bad", "good"]);
    let t = run(
        b,
        Options::default(),
        &[("bad", RUN_FAIL), ("skipped", SKIP)],
    );
    assert_eq!(t.status("skipped"), Status::Skipped);
    assert_eq!(
        t.phase(),
        Phase::Failed,
        "the skipped target passes bad's Failed on"
    );
}

#[test]
fn parallelism_bounds_the_started_steps() {
    // Workflow spec.parallelism; operator.go checkParallelism counts active (Pending and
    // Running) pods.
    let mut b = DagBuilder::new();
    for i in 0..7 {
        b.node(format!("s{i}"));
    }
    b.node("join").needs((0..7).map(|i| format!("s{i}")));
    let options = Options {
        fail_fast: true,
        parallelism: NonZeroUsize::new(2),
    };
    let t = run(b, options, &[]);
    assert_eq!(t.max_active, 2);
    assert_eq!(t.started.len(), 8);
    assert_eq!(t.started.last().map(String::as_str), Some("join"));
}

#[test]
fn the_exit_handler_runs_last_and_sees_the_graph_phase() {
    // operator.go operate: onExit runs once the entry node is fulfilled, with
    // {{workflow.status}} set; a Succeeded workflow with a Failed (Error) exit handler ends
    // Failed (Error); otherwise the workflow keeps the graph's phase.
    let cases = [
        (RUN_OK, RUN_OK, Phase::Succeeded, Phase::Succeeded),
        (RUN_OK, RUN_FAIL, Phase::Succeeded, Phase::Failed),
        (RUN_OK, RUN_ERROR, Phase::Succeeded, Phase::Error),
        (RUN_FAIL, RUN_OK, Phase::Failed, Phase::Failed),
        (RUN_FAIL, RUN_ERROR, Phase::Failed, Phase::Failed),
        (RUN_OK, SKIP, Phase::Succeeded, Phase::Succeeded),
        (RUN_FAIL, SKIP, Phase::Failed, Phase::Failed),
    ];
    for (work, exit, seen, want) in cases {
        let mut b = graph(&[("work", &[]), ("more", &["work"])]);
        b.exit_handler("notify");
        let t = run(b, Options::default(), &[("work", work), ("notify", exit)]);
        assert_eq!(t.exit_saw, Some(seen));
        assert_eq!(t.ex.main_phase(), Some(seen));
        assert_eq!(t.phase(), want, "{work:?} then {exit:?}");
        if exit.decision == Decision::Run {
            assert_eq!(t.started.last().map(String::as_str), Some("notify"));
        }
    }
}

#[test]
fn stop_fails_the_graph_and_still_runs_the_exit_handler() {
    // dag.go assessDAGPhase: `if isShutdown { return NodeFailed }`; operator.go runs the
    // onExit handler under the Stop strategy.
    let mut b = graph(&[("a", &[]), ("b", &["a"])]);
    b.exit_handler("notify");
    let mut ex = Execution::new(b.seal().unwrap(), Options::default());
    let a = ex.dag().id("a").unwrap();
    assert_eq!(ex.next_action(), Action::Decide(a));
    ex.decide(a, Decision::Run).unwrap();
    assert_eq!(ex.next_action(), Action::Start(a));
    ex.stop();
    assert_eq!(
        ex.status(ex.dag().id("b").unwrap()),
        Status::Omitted(Omission::Stopped)
    );
    assert_eq!(ex.next_action(), Action::Wait, "a running step finishes");
    ex.finished(a, Outcome::Succeeded).unwrap();
    let t = drive(ex, &[], &[]);
    assert_eq!(t.exit_saw, Some(Phase::Failed));
    assert_eq!(t.started, ["notify"]);
    assert_eq!(t.phase(), Phase::Failed);
}

#[test]
fn an_exit_handler_alone_runs() {
    let mut b = DagBuilder::new();
    b.exit_handler("notify");
    let t = run(b, Options::default(), &[]);
    assert_eq!(t.started, ["notify"]);
    assert_eq!(t.phase(), Phase::Succeeded);
}

#[test]
fn decisions_come_before_starts_and_starts_follow_readiness() {
    let b = graph(&[("a", &[]), ("b", &[]), ("c", &["a", "b"])]);
    let mut ex = Execution::new(b.seal().unwrap(), Options::default());
    let [a, b, c] = ["a", "b", "c"].map(|n| ex.dag().id(n).unwrap());
    assert_eq!(ex.next_action(), Action::Decide(a));
    assert_eq!(
        ex.next_action(),
        Action::Decide(a),
        "asked again until answered"
    );
    ex.decide(b, Decision::Run).unwrap(); // answers may come in any order
    assert_eq!(ex.next_action(), Action::Decide(a));
    ex.decide(a, Decision::Run).unwrap();
    assert_eq!(ex.next_action(), Action::Start(b));
    assert_eq!(ex.next_action(), Action::Start(a));
    assert_eq!(ex.next_action(), Action::Wait);
    ex.finished(a, Outcome::Succeeded).unwrap();
    assert_eq!(ex.status(c), Status::Waiting);
    ex.finished(b, Outcome::Succeeded).unwrap();
    assert_eq!(ex.next_action(), Action::Decide(c));
}

#[test]
fn events_that_do_not_fit_are_errors() {
    let b = graph(&[("a", &[]), ("b", &["a"])]);
    let mut ex = Execution::new(b.seal().unwrap(), Options::default());
    let [a, b] = ["a", "b"].map(|n| ex.dag().id(n).unwrap());
    let err = ex.finished(a, Outcome::Succeeded).unwrap_err();
    assert_eq!(err.to_string(), "cannot finish step 'a': it is deciding");
    assert!(ex.decide(b, Decision::Run).is_err(), "b is waiting for a");
    assert!(ex.started(a).is_err());
    ex.decide(a, Decision::Run).unwrap();
    assert!(ex.decide(a, Decision::Run).is_err(), "decided twice");
    assert_eq!(ex.next_action(), Action::Start(a));
    ex.finished(a, Outcome::Succeeded).unwrap();
    assert!(
        ex.finished(a, Outcome::Succeeded).is_err(),
        "finished twice"
    );
    let foreign = NodeId::new(99);
    assert_eq!(
        ex.decide(foreign, Decision::Run),
        Err(EventError::UnknownStep(foreign))
    );
}

#[test]
fn an_answer_for_a_step_omitted_meanwhile_is_ignored() {
    let b = graph(&[("a", &[]), ("b", &[])]);
    let mut ex = Execution::new(b.seal().unwrap(), Options::default());
    let [a, b] = ["a", "b"].map(|n| ex.dag().id(n).unwrap());
    assert_eq!(ex.next_action(), Action::Decide(a));
    ex.decide(a, Decision::Error).unwrap(); // fails fast: b is omitted before its answer
    assert_eq!(ex.status(b), Status::Omitted(Omission::FailFast));
    assert_eq!(ex.decide(b, Decision::Run), Ok(()));
    assert_eq!(ex.next_action(), Action::Done(Phase::Error));
}

#[test]
fn resume_does_not_rerun_recorded_steps() {
    let shape: &[(&str, &[&str])] = &[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["a"])];
    let dag = graph(shape).seal().unwrap();
    let id = |n: &str| dag.id(n).unwrap();
    let recorded = [
        (id("a"), Recorded::Succeeded),
        (id("b"), Recorded::Succeeded),
        (id("d"), Recorded::Skipped),
    ];
    let ex = Execution::resume(dag.clone(), Options::default(), recorded).unwrap();
    let t = drive(ex, &[], &[]);
    assert_eq!(t.started, ["c"]);
    assert_eq!(t.status("d"), Status::Skipped);
    assert_eq!(t.phase(), Phase::Succeeded);
    // A recorded failure has the same consequences as a live one.
    let a = id("a");
    let ex = Execution::resume(dag, Options::default(), [(a, Recorded::Failed)]).unwrap();
    let t = drive(ex, &[], &[]);
    assert!(t.started.is_empty());
    assert_eq!(t.phase(), Phase::Failed);
}

#[test]
fn thousands_of_steps_are_cheap() {
    // A 2,000-step chain and a 2,000-wide fan-out/fan-in: every step runs once.
    let mut chain = DagBuilder::new();
    chain.node("s0");
    for i in 1..2000 {
        chain.node(format!("s{i}")).needs([format!("s{}", i - 1)]);
    }
    let t = run(chain, Options::default(), &[]);
    assert_eq!(t.started.len(), 2000);
    let mut wide = DagBuilder::new();
    wide.node("src");
    for i in 0..2000 {
        wide.node(format!("w{i}")).needs(["src"]);
    }
    wide.node("sink").needs((0..2000).map(|i| format!("w{i}")));
    let t = run(
        wide,
        Options {
            fail_fast: true,
            parallelism: NonZeroUsize::new(64),
        },
        &[],
    );
    assert_eq!(t.started.len(), 2002);
    assert_eq!(t.max_active, 64);
    assert_eq!(t.phase(), Phase::Succeeded);
}

// ---------------------------------------------------------------------------------------
// Sealing

fn seal_messages(b: DagBuilder) -> Vec<String> {
    b.seal()
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn seal_reports_every_problem_sorted() {
    let mut b = DagBuilder::new();
    b.node("prepare");
    b.node("train").needs(["prepare", "evaluate"]);
    b.node("evaluate").needs(["train", "evalute-data"]);
    b.node("deploy").needs(["deploy", "notify"]);
    b.node("train");
    b.node("x").needs(["y"]);
    b.node("y").needs(["z"]);
    b.node("z").needs(["x", "nothing"]);
    b.exit_handler("notify");
    assert_eq!(
        seal_messages(b),
        [
            "dependency cycle: train -> evaluate -> train",
            "step 'evaluate' depends on 'evalute-data', which is not a step (did you mean 'evaluate'?)",
            "step 'deploy' depends on itself",
            "step 'deploy' depends on 'notify', the exit handler, which runs after every other step",
            "step 'train' is declared twice",
            "dependency cycle: x -> y -> z -> x",
            "step 'z' depends on 'nothing', which is not a step",
        ]
    );
}

#[test]
fn seal_names_the_shortest_cycle_through_the_first_step() {
    let b = graph(&[
        ("a", &["b"]),
        ("b", &["c", "d"]),
        ("c", &["a"]),
        ("d", &["b"]),
    ]);
    let errors = b.seal().unwrap_err().0;
    assert_eq!(
        errors.len(),
        1,
        "one strongly connected component, one report"
    );
    assert_eq!(
        errors[0],
        SealError::Cycle {
            node: 0,
            path: vec!["a".into(), "b".into(), "c".into(), "a".into()]
        }
    );
    assert_eq!(errors[0].code(), "dag-cycle");
}

#[test]
fn seal_checks_depends_and_exit_handlers() {
    let mut b = DagBuilder::new();
    b.node("a");
    b.node("b")
        .needs(["a"])
        .depends(Depends::parse("a").unwrap());
    b.node("c")
        .depends(Depends::parse("a.Failed || ghost.Succeeded").unwrap())
        .continue_on(ContinueOn {
            failed: true,
            error: false,
        });
    b.exit_handler("e1").needs(["a"]);
    b.exit_handler("e2");
    assert_eq!(
        seal_messages(b),
        [
            "step 'b' has both a dependency list and a depends expression",
            "step 'c' uses continueOn with a depends expression; test 'c.Failed' in its dependents instead",
            "step 'c' depends on 'ghost', which is not a step",
            "exit handler 'e1' cannot have dependencies: it runs after every other step",
            "step 'e2' cannot be an exit handler: 'e1' already is",
        ]
    );
}

#[test]
fn seal_handles_long_chains_and_long_cycles() {
    let n = 100_000;
    let mut b = DagBuilder::new();
    for i in 0..n {
        b.node(format!("s{i}")).needs([format!("s{}", (i + 1) % n)]);
    }
    let errors = b.seal().unwrap_err().0;
    assert_eq!(errors.len(), 1);
    let SealError::Cycle { path, .. } = &errors[0] else {
        panic!("{errors:?}")
    };
    assert_eq!(path.len(), n + 1);
    assert_eq!((path[0].as_str(), path[n].as_str()), ("s0", "s0"));
}

#[test]
fn a_sealed_dag_describes_itself() {
    let mut b = graph(&[
        ("c", &[]),
        ("a", &["c"]),
        ("b", &["c"]),
        ("d", &["a", "b"]),
        ("z", &[]),
    ]);
    b.exit_handler("exit");
    let dag = b.seal().unwrap();
    let names = |ids: &[NodeId]| {
        ids.iter()
            .map(|&i| dag.name(i).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(dag.len(), 6);
    assert_eq!(names(dag.targets()), ["d", "z"]);
    assert_eq!(names(dag.dependencies(dag.id("d").unwrap())), ["a", "b"]);
    assert_eq!(names(dag.dependents(dag.id("c").unwrap())), ["a", "b"]);
    assert_eq!(
        names(dag.topological_order()),
        ["c", "z", "exit", "a", "b", "d"]
    );
    assert_eq!(dag.exit_handler(), dag.id("exit"));
}

#[test]
fn depends_parses_argo_syntax() {
    use Depends::*;
    let step = |s: &str| Step(s.to_string());
    let result = |s: &str, r| Result(s.to_string(), r);
    assert_eq!(Depends::parse("a").unwrap(), step("a"));
    assert_eq!(
        Depends::parse("task || task-2.Failed").unwrap(),
        Or(
            Box::new(step("task")),
            Box::new(result("task-2", TaskResult::Failed))
        )
    );
    // docs/enhanced-depends-logic.md example; `&&` binds tighter than `||`.
    let e = Depends::parse("(task-2.Succeeded || task-2.Skipped) && !task-3.Failed").unwrap();
    assert_eq!(
        e.to_string(),
        "((task-2.Succeeded || task-2.Skipped) && !(task-3.Failed))"
    );
    assert_eq!(
        Depends::parse("a || b && c").unwrap().to_string(),
        "(a || (b && c))"
    );
    assert_eq!(e.steps(), ["task-2", "task-3"]);
    for (bad, message) in [
        ("", "expected a step name, found the end (at character 1)"),
        (
            "a.succeeded",
            "unknown task result 'succeeded' of step 'a' (one of: Succeeded, Failed, Errored, Skipped, Omitted, Daemoned, AnySucceeded, AllFailed) (at character 3)",
        ),
        (
            "a &&",
            "expected a step name, found the end (at character 5)",
        ),
        ("(a || b", "expected ')' (at character 8)"),
        ("a b", "unexpected 'b' (at character 3)"),
        ("a & b", "unexpected '&' (at character 3)"),
    ] {
        assert_eq!(
            Depends::parse(bad).unwrap_err().to_string(),
            message,
            "{bad:?}"
        );
    }
    assert!(
        Depends::parse(&"!".repeat(1000)).is_err(),
        "deep nesting is refused"
    );
}

// ---------------------------------------------------------------------------------------
// Properties on random graphs

/// SplitMix64: the random choices of one case, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Debug)]
struct Case {
    names: Vec<String>,
    needs: Vec<Vec<usize>>,
    depends: Vec<Option<Depends>>,
    continue_on: Vec<ContinueOn>,
    scripts: Vec<Script>,
    exit: Option<Script>,
    options: Options,
    stop_after: Option<usize>,
}

fn random_depends(rng: &mut Rng, deps: &[String], depth: usize) -> Depends {
    let results = [
        TaskResult::Succeeded,
        TaskResult::Failed,
        TaskResult::Errored,
        TaskResult::Skipped,
        TaskResult::Omitted,
    ];
    if depth > 2 || rng.chance(50) {
        let dep = deps[rng.below(deps.len())].clone();
        return if rng.chance(40) {
            Depends::Step(dep)
        } else {
            Depends::Result(dep, results[rng.below(results.len())])
        };
    }
    let a = Box::new(random_depends(rng, deps, depth + 1));
    match rng.below(3) {
        0 => Depends::Not(a),
        1 => Depends::And(a, Box::new(random_depends(rng, deps, depth + 1))),
        _ => Depends::Or(a, Box::new(random_depends(rng, deps, depth + 1))),
    }
}

fn random_script(rng: &mut Rng) -> Script {
    let decision = match rng.below(10) {
        0 => Decision::Skip,
        1 => Decision::Error,
        _ => Decision::Run,
    };
    let outcome = match rng.below(10) {
        0..=1 => Outcome::Failed,
        2 => Outcome::Error,
        _ => Outcome::Succeeded,
    };
    Script { decision, outcome }
}

impl Case {
    fn random(seed: u64) -> Case {
        let mut rng = Rng(seed);
        let n = 1 + rng.below(30);
        let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let mut needs = Vec::new();
        let mut depends = Vec::new();
        let mut continue_on = Vec::new();
        for i in 0..n {
            let mut d: Vec<usize> = Vec::new();
            if i > 0 {
                for _ in 0..rng.below(4) {
                    d.push(rng.below(i));
                }
            }
            let use_depends = !d.is_empty() && rng.chance(25);
            if use_depends {
                let dep_names: Vec<String> = d.iter().map(|&j| names[j].clone()).collect();
                depends.push(Some(random_depends(&mut rng, &dep_names, 0)));
                needs.push(Vec::new());
                continue_on.push(ContinueOn::default());
            } else {
                depends.push(None);
                needs.push(d);
                continue_on.push(ContinueOn {
                    failed: rng.chance(15),
                    error: rng.chance(10),
                });
            }
        }
        let scripts = (0..n).map(|_| random_script(&mut rng)).collect();
        let exit = rng.chance(40).then(|| random_script(&mut rng));
        let options = Options {
            fail_fast: rng.chance(50),
            parallelism: if rng.chance(50) {
                NonZeroUsize::new(1 + rng.below(4))
            } else {
                None
            },
        };
        let stop_after = rng.chance(10).then(|| rng.below(3 * n));
        Case {
            names,
            needs,
            depends,
            continue_on,
            scripts,
            exit,
            options,
            stop_after,
        }
    }

    fn dag(&self) -> Dag {
        let mut b = DagBuilder::new();
        for i in 0..self.names.len() {
            let node = b.node(self.names[i].clone());
            node.needs(self.needs[i].iter().map(|&j| self.names[j].clone()))
                .continue_on(self.continue_on[i]);
            if let Some(d) = &self.depends[i] {
                node.depends(d.clone());
            }
        }
        if self.exit.is_some() {
            b.exit_handler("exit");
        }
        b.seal().unwrap()
    }
}

/// The plain rule, written independently of the engine: Succeeded or Skipped, or a failure
/// the dependency's continueOn covers.
fn satisfies(status: Status, continue_on: ContinueOn) -> bool {
    match status {
        Status::Succeeded | Status::Skipped => true,
        Status::Failed => continue_on.failed,
        Status::Error => continue_on.error,
        _ => false,
    }
}

fn holds(case: &Case, dag: &Dag, expr: &Depends, status: &dyn Fn(&str) -> Status) -> bool {
    match expr {
        Depends::Step(s) => satisfies(status(s), case.continue_on[dag.id(s).unwrap().index()]),
        Depends::Result(s, r) => match r {
            TaskResult::Succeeded => status(s) == Status::Succeeded,
            TaskResult::Failed => status(s) == Status::Failed,
            TaskResult::Errored => status(s) == Status::Error,
            TaskResult::Skipped => status(s) == Status::Skipped,
            TaskResult::Omitted => matches!(status(s), Status::Omitted(_)),
            _ => false,
        },
        Depends::Not(x) => !holds(case, dag, x, status),
        Depends::And(a, b) => holds(case, dag, a, status) && holds(case, dag, b, status),
        Depends::Or(a, b) => holds(case, dag, a, status) || holds(case, dag, b, status),
    }
}

fn condition_holds(case: &Case, dag: &Dag, ex: &Execution, i: usize) -> bool {
    let status = |name: &str| ex.status(dag.id(name).unwrap());
    match &case.depends[i] {
        None => case.needs[i]
            .iter()
            .all(|&j| satisfies(ex.status(NodeId::new(j)), case.continue_on[j])),
        Some(expr) => holds(case, dag, expr, &status),
    }
}

/// Argo's assessDAGPhase written as path sets: the phases that reach each step. `None`
/// when a target inherits both Failed and Error (Argo's choice then depends on the order
/// of its breadth-first walk).
fn expected_graph_phase(case: &Case, dag: &Dag, ex: &Execution) -> Option<Phase> {
    let n = case.names.len();
    let mut out: Vec<Vec<Phase>> = vec![Vec::new(); n];
    for v in dag.topological_order() {
        let i = v.index();
        if Some(*v) == dag.exit_handler() {
            continue;
        }
        let own = match ex.status(*v) {
            Status::Succeeded => Some(Phase::Succeeded),
            Status::Failed => Some(Phase::Failed),
            Status::Error => Some(Phase::Error),
            _ => None,
        };
        out[i] = match own {
            Some(p) => vec![p],
            None if dag.dependencies(*v).is_empty() => vec![Phase::Succeeded],
            None => {
                let mut phases: Vec<Phase> = dag
                    .dependencies(*v)
                    .iter()
                    .flat_map(|d| out[d.index()].clone())
                    .collect();
                phases.sort_by_key(|p| *p as u8);
                phases.dedup();
                phases
            }
        };
    }
    let mut targets: Vec<usize> = (0..n)
        .filter(|&i| dag.dependents(NodeId::new(i)).is_empty())
        .collect();
    targets.sort_by(|a, b| case.names[*a].cmp(&case.names[*b]));
    let mut result = Phase::Succeeded;
    for t in targets {
        let failed = out[t].contains(&Phase::Failed);
        let errored = out[t].contains(&Phase::Error);
        let phase = match (failed, errored) {
            (true, true) => return None,
            (true, false) => Phase::Failed,
            (false, true) => Phase::Error,
            (false, false) => continue,
        };
        let covered = match phase {
            Phase::Failed => case.continue_on[t].failed,
            _ => case.continue_on[t].error,
        };
        if covered {
            continue;
        }
        result = phase;
        if case.options.fail_fast {
            break;
        }
    }
    Some(result)
}

fn check_case(seed: u64) -> Result<(), TestCaseError> {
    let case = Case::random(seed);
    let dag = case.dag();
    let exit = dag.exit_handler();
    let graph_steps = || dag.ids().filter(|id| Some(*id) != exit);
    let mut ex = Execution::new(dag.clone(), case.options);
    let mut rng = Rng(seed ^ 0xA5A5);
    let mut running: Vec<NodeId> = Vec::new();
    let mut decided = vec![false; dag.len()];
    let mut started = vec![false; dag.len()];
    let mut starts: Vec<NodeId> = Vec::new();
    // Set once a failure happened that only fail-fast can explain later omissions by.
    let mut failure_seen = false;
    let mut stopped = false;
    let script = |id: NodeId| {
        if Some(id) == exit {
            case.exit.unwrap_or(RUN_OK)
        } else {
            case.scripts[id.index()]
        }
    };
    let mut steps = 0;
    let phase = loop {
        steps += 1;
        prop_assert!(steps < 10 * dag.len() + 50, "the run does not end");
        if case.stop_after == Some(steps) {
            // Stopping once the graph has finished changes nothing (only the exit handler
            // may be left).
            stopped = ex.main_phase().is_none();
            ex.stop();
        }
        match ex.next_action() {
            Action::Decide(id) => {
                prop_assert!(!decided[id.index()], "{} decided twice", dag.name(id));
                decided[id.index()] = true;
                for d in dag.dependencies(id) {
                    prop_assert!(
                        ex.status(*d).is_terminal(),
                        "{} decided before {}",
                        dag.name(id),
                        dag.name(*d)
                    );
                }
                if Some(id) == exit {
                    prop_assert!(graph_steps().all(|g| ex.status(g).is_terminal()));
                    prop_assert!(ex.main_phase().is_some());
                } else {
                    prop_assert!(
                        condition_holds(&case, &dag, &ex, id.index()),
                        "{} decided though its dependencies are not satisfied",
                        dag.name(id)
                    );
                    prop_assert!(!stopped, "{} decided after stop", dag.name(id));
                }
                let decision = script(id).decision;
                ex.decide(id, decision).unwrap();
                if decision == Decision::Error && Some(id) != exit {
                    failure_seen = true;
                }
            }
            Action::Start(id) => {
                let i = id.index();
                prop_assert!(!started[i], "{} started twice", dag.name(id));
                started[i] = true;
                starts.push(id);
                prop_assert_eq!(ex.status(id), Status::Pending);
                for d in dag.dependencies(id) {
                    prop_assert!(
                        ex.status(*d).is_terminal(),
                        "{} started before {} ended",
                        dag.name(id),
                        dag.name(*d)
                    );
                }
                if let Some(limit) = case.options.parallelism {
                    prop_assert!(
                        ex.active() <= limit.get(),
                        "{} active, limit {limit}",
                        ex.active()
                    );
                }
                if Some(id) == exit {
                    prop_assert!(
                        graph_steps().all(|g| ex.status(g).is_terminal()),
                        "the exit handler started early"
                    );
                } else {
                    prop_assert!(!stopped, "{} started after stop", dag.name(id));
                }
                if rng.chance(50) {
                    ex.started(id).unwrap();
                }
                running.push(id);
            }
            Action::Wait => {
                prop_assert!(!running.is_empty(), "waiting with nothing running");
                let id = running.swap_remove(rng.below(running.len()));
                let outcome = script(id).outcome;
                ex.finished(id, outcome).unwrap();
                if outcome != Outcome::Succeeded && Some(id) != exit {
                    failure_seen = true;
                }
            }
            Action::Done(phase) => break phase,
        }
    };

    prop_assert!(running.is_empty());
    prop_assert_eq!(ex.active(), 0);
    for id in dag.ids() {
        let i = id.index();
        let status = ex.status(id);
        prop_assert!(status.is_terminal(), "{} ended {status}", dag.name(id));
        let s = script(id);
        match status {
            Status::Succeeded => prop_assert!(started[i] && s.outcome == Outcome::Succeeded),
            Status::Failed => prop_assert!(started[i] && s.outcome == Outcome::Failed),
            Status::Error => prop_assert!(
                (started[i] && s.outcome == Outcome::Error)
                    || (decided[i] && s.decision == Decision::Error)
            ),
            Status::Skipped => {
                prop_assert!(decided[i] && s.decision == Decision::Skip && !started[i])
            }
            Status::Omitted(why) => {
                prop_assert!(!started[i], "{} omitted after it started", dag.name(id));
                prop_assert!(why != Omission::DependsNotMet || !decided[i]);
                prop_assert!(Some(id) != exit, "the exit handler is never omitted");
                match why {
                    Omission::DependsNotMet => {
                        prop_assert!(
                            !condition_holds(&case, &dag, &ex, i),
                            "{} omitted though satisfied",
                            dag.name(id)
                        )
                    }
                    Omission::FailFast => prop_assert!(case.options.fail_fast && failure_seen),
                    Omission::Stopped => prop_assert!(stopped),
                }
            }
            _ => unreachable!(),
        }
    }
    if let Some(exit) = exit {
        let exit_script = script(exit);
        prop_assert!(decided[exit.index()], "the exit handler was not decided");
        if exit_script.decision == Decision::Run {
            prop_assert_eq!(
                starts.last().copied(),
                Some(exit),
                "the exit handler runs last"
            );
            prop_assert_eq!(starts.iter().filter(|s| **s == exit).count(), 1);
        }
    }
    // The graph's phase, then the exit handler's effect on it.
    let main = ex.main_phase().unwrap();
    if stopped {
        prop_assert_eq!(main, Phase::Failed);
    } else if let Some(want) = expected_graph_phase(&case, &dag, &ex) {
        let statuses: Vec<String> = dag
            .ids()
            .map(|i| format!("{}={}", dag.name(i), ex.status(i)))
            .collect();
        prop_assert_eq!(main, want, "graph phase; {:?}; {:?}", case, statuses);
    }
    let want = match (main, exit.map(|e| ex.status(e))) {
        (Phase::Succeeded, Some(Status::Failed)) => Phase::Failed,
        (Phase::Succeeded, Some(Status::Error)) => Phase::Error,
        _ => main,
    };
    prop_assert_eq!(phase, want);
    prop_assert_eq!(ex.phase(), Some(phase));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// On random graphs with random decisions, outcomes, finishing orders, options and
    /// stops: every step is decided and started at most once and only after its
    /// dependencies ended; the parallelism limit holds; the run ends with every step
    /// terminal; the exit handler runs exactly once and last; omissions and the final phase
    /// follow Argo's rules.
    #[test]
    fn random_runs_follow_the_rules(seed in any::<u64>()) {
        check_case(seed)?;
    }
}

/// Fail-fast, checked on its own: once a failure that nothing tolerates is reported, no
/// graph step starts.
#[test]
fn no_step_starts_after_an_untolerated_failure() {
    for seed in 0..2000u64 {
        let mut case = Case::random(seed);
        case.options.fail_fast = true;
        case.stop_after = None;
        // Plain dependencies only, so "tolerated" is exactly continueOn.
        for i in 0..case.names.len() {
            if case.depends[i].is_some() {
                case.depends[i] = None;
            }
        }
        let dag = case.dag();
        let mut ex = Execution::new(dag.clone(), case.options);
        let mut running = Vec::new();
        let mut halted = false;
        let mut rng = Rng(seed);
        loop {
            match ex.next_action() {
                Action::Decide(id) => {
                    let d = if Some(id) == dag.exit_handler() {
                        Decision::Run
                    } else {
                        case.scripts[id.index()].decision
                    };
                    ex.decide(id, d).unwrap();
                    if d == Decision::Error
                        && !case.continue_on[id.index()].error
                        && Some(id) != dag.exit_handler()
                    {
                        halted = true;
                    }
                }
                Action::Start(id) => {
                    assert!(
                        !halted || Some(id) == dag.exit_handler(),
                        "seed {seed}: {} started after fail-fast",
                        dag.name(id)
                    );
                    running.push(id);
                }
                Action::Wait => {
                    let id = running.swap_remove(rng.below(running.len()));
                    let o = if Some(id) == dag.exit_handler() {
                        Outcome::Succeeded
                    } else {
                        case.scripts[id.index()].outcome
                    };
                    ex.finished(id, o).unwrap();
                    if Some(id) != dag.exit_handler() {
                        let c = case.continue_on[id.index()];
                        let tolerated = match o {
                            Outcome::Succeeded => true,
                            Outcome::Failed => c.failed,
                            Outcome::Error => c.error,
                        };
                        halted |= !tolerated;
                    }
                }
                Action::Done(_) => break,
            }
        }
    }
}
