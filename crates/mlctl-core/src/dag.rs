//! The DAG engine: Argo Workflows' DAG semantics as a pure state machine.
//!
//! A [`DagBuilder`] collects steps by name with their dependencies; [`DagBuilder::seal`]
//! checks the graph and reports every problem at once, sorted ([`SealError`]: duplicate
//! names, missing references, self-dependencies, cycles named by their path
//! `a -> b -> c -> a`, misplaced exit handlers). A sealed [`Dag`] is run by an
//! [`Execution`]: the caller feeds it events ([`Execution::decide`], [`Execution::started`],
//! [`Execution::finished`], [`Execution::stop`]) and asks it what to do next
//! ([`Execution::next_action`]): decide a step's `when`, start a step, wait, or done with the
//! pipeline's [`Phase`]. The engine knows nothing of specs, processes or time; it works on
//! names and edges. Updates cost O(degree) per event (a per-step counter of unfinished
//! dependencies; the ready steps in a queue), so a 10,000-step pipeline is as cheap per step
//! as a 10-step one. Retries happen inside a step: the engine sees its final outcome.
//!
//! ```
//! use mlctl_core::dag::{Action, DagBuilder, Decision, Execution, Options, Outcome, Phase};
//! use mlctl_core::expr;
//!
//! let mut b = DagBuilder::new();
//! b.node("prepare");
//! b.node("train").needs(["prepare"]);
//! b.node("deploy").needs(["train"]); // with `when: "{{...accuracy}} > 0.85"`
//! let mut run = Execution::new(b.seal()?, Options::default());
//! let mut running = Vec::new();
//! let phase = loop {
//!     match run.next_action() {
//!         Action::Decide(step) => {
//!             // Substitute the step's `when`, then evaluate it as Argo does.
//!             let when = if run.dag().name(step) == "deploy" { "0.91 > 0.85" } else { "" };
//!             let decision = match expr::should_execute(when) {
//!                 Ok(true) => Decision::Run,
//!                 Ok(false) => Decision::Skip,
//!                 Err(_) => Decision::Error,
//!             };
//!             run.decide(step, decision)?;
//!         }
//!         Action::Start(step) => running.push(step), // start its process here
//!         Action::Wait => {
//!             // Wait for a step to end; here, the oldest one succeeds.
//!             let step = running.remove(0);
//!             run.finished(step, Outcome::Succeeded)?;
//!         }
//!         Action::Done(phase) => break phase,
//!     }
//! };
//! assert_eq!(phase, Phase::Succeeded);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics (Argo's, with the sources they come from)
//!
//! - **Dependencies.** A step's plain dependency list ([`NodeDef::needs`], Argo's
//!   `dependencies`) is satisfied by each dependency ending Succeeded or Skipped (or Daemoned,
//!   which mlctl steps never are), plus Failed when that dependency has
//!   `continueOn: {failed: true}` and Errored with `continueOn: {error: true}`
//!   (`expandDependency` in argo-workflows `workflow/common/ancestry.go`). So a step after a
//!   skipped step runs.
//! - **Enhanced depends.** Instead, a step may carry a [`Depends`] expression over its
//!   dependencies' results (`a.Succeeded || b.Failed`, `!c.Skipped`, a bare name meaning the
//!   plain rule above), Argo's `depends` (docs/enhanced-depends-logic.md). `AnySucceeded`,
//!   `AllFailed` and `Daemoned` are accepted and false, as Argo evaluates them for steps that
//!   are neither expanded nor daemons.
//! - **Readiness.** A step is considered once every dependency is in a terminal state
//!   (`evaluateDependsLogic` in `workflow/controller/dag.go`). If its dependencies are not
//!   satisfied it is **Omitted** ("omitted: depends condition not met") and never asked about,
//!   which propagates: a step depending on an Omitted step is Omitted too (Omitted satisfies
//!   no plain dependency). Otherwise the engine asks for its `when` ([`Action::Decide`]): false
//!   makes it **Skipped**, an invalid `when` makes it **Error** (both as Argo records them in
//!   `executeDAGTask`), true makes it ready to start.
//! - **Fail fast** ([`Options::fail_fast`], Argo's `dag.failFast`, default true). After a
//!   step fails or errors, no new step starts; steps already started finish; the steps that
//!   never started end Omitted ([`Omission::FailFast`]), and the pipeline then fails
//!   (docs/walk-through/dag.md "Fail Fast"). A failure does not count when it is tolerated:
//!   the step's `continueOn` covers it, or a dependent's `depends` is written to run on it
//!   (`b: depends: a.Failed`, `!a.Succeeded`, `!a`). Argo's controller, unlike its
//!   documentation, keeps starting steps while others run (argo-workflows#5223, #10312,
//!   left unfixed); mlctl implements the documented behaviour, which agrees with Argo's
//!   actual behaviour whenever no other step is running at the time of the failure.
//! - **Continue on failure.** With fail-fast off, every branch runs as far as its
//!   dependencies allow; a failed step's dependents are Omitted unless they tolerate it.
//! - **Parallelism** ([`Options::parallelism`], Argo's `spec.parallelism`): at most that many
//!   steps are started and not finished (Argo counts Pending and Running pods).
//! - **Phase of the graph**, Argo's `assessDAGPhase` (`dag.go`): the targets are the steps no
//!   other step depends on, by name. Each target inherits a *branch phase*, the phase of the
//!   nearest completed (Succeeded, Failed or Error) step on a path from a root, Failed or Error
//!   winning when paths disagree; Skipped and Omitted steps pass their parents' phase on. A
//!   target whose branch phase is Failed or Error fails the graph unless the target's own
//!   `continueOn` covers that phase. With fail-fast, the first such target by name decides
//!   between Failed and Error; without, the last. [`Execution::stop`] makes it Failed, as
//!   Argo's stop strategy does.
//! - **Exit handler** ([`DagBuilder::exit_handler`], Argo's `onExit`): a step outside the
//!   graph that is decided and started once every other step is terminal, whatever the
//!   outcome and even after [`Execution::stop`]; [`Execution::main_phase`] is the status it
//!   sees (`{{workflow.status}}`). The pipeline's final phase is the graph's, except that a
//!   Succeeded graph with a Failed or Error exit handler ends Failed or Error (`operate` in
//!   `workflow/controller/operator.go`).
//! - **Resume.** [`Execution::resume`] takes the outcomes of an earlier run; a recorded step
//!   takes it, instead of being decided and started, when it becomes ready.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::num::NonZeroUsize;

use crate::diag::did_you_mean;

// ---------------------------------------------------------------------------------------
// Building

/// A step of a sealed [`Dag`]: its position in declaration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    /// The step's position in declaration order.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    fn new(index: usize) -> Self {
        // Seal refuses more than u32::MAX steps.
        NodeId(index as u32)
    }
}

/// Which failures of a step its dependents tolerate (Argo's `continueOn`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContinueOn {
    /// The step's process failed.
    pub failed: bool,
    /// The step could not run (including an invalid `when`).
    pub error: bool,
}

impl ContinueOn {
    fn covers(self, status: Status) -> bool {
        match status {
            Status::Failed => self.failed,
            Status::Error => self.error,
            _ => false,
        }
    }
}

/// A result a [`Depends`] expression can test (Argo's task results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskResult {
    /// Finished successfully.
    Succeeded,
    /// Ran and failed.
    Failed,
    /// Could not run.
    Errored,
    /// Its `when` was false.
    Skipped,
    /// Its dependencies were not satisfied (or it never started, after fail-fast or stop).
    Omitted,
    /// A daemon step that is running; mlctl steps never are.
    Daemoned,
    /// Some expansion of the step succeeded; mlctl steps are not expanded, so always false.
    AnySucceeded,
    /// Every expansion failed; always false, as above.
    AllFailed,
}

impl TaskResult {
    const ALL: [(&'static str, TaskResult); 8] = [
        ("Succeeded", TaskResult::Succeeded),
        ("Failed", TaskResult::Failed),
        ("Errored", TaskResult::Errored),
        ("Skipped", TaskResult::Skipped),
        ("Omitted", TaskResult::Omitted),
        ("Daemoned", TaskResult::Daemoned),
        ("AnySucceeded", TaskResult::AnySucceeded),
        ("AllFailed", TaskResult::AllFailed),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("", |(n, _)| n)
    }

    fn holds(self, status: Status) -> bool {
        match self {
            TaskResult::Succeeded => status == Status::Succeeded,
            TaskResult::Failed => status == Status::Failed,
            TaskResult::Errored => status == Status::Error,
            TaskResult::Skipped => status == Status::Skipped,
            TaskResult::Omitted => matches!(status, Status::Omitted(_)),
            TaskResult::Daemoned | TaskResult::AnySucceeded | TaskResult::AllFailed => false,
        }
    }
}

/// An enhanced `depends` expression (Argo's syntax: `a && (b.Succeeded || b.Failed)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Depends {
    /// A bare step name: satisfied as a plain dependency is.
    Step(String),
    /// `step.Result`.
    Result(String, TaskResult),
    /// `!x`
    Not(Box<Depends>),
    /// `x && y`
    And(Box<Depends>, Box<Depends>),
    /// `x || y`
    Or(Box<Depends>, Box<Depends>),
}

/// A `depends` expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {})", .offset + 1)]
pub struct DependsError {
    /// 0-based character offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl Depends {
    /// Parses Argo's `depends` syntax: step names (letters, digits, `-`, `_`), optionally
    /// with `.Succeeded`, `.Failed`, `.Errored`, `.Skipped`, `.Omitted`, `.Daemoned`,
    /// `.AnySucceeded` or `.AllFailed`, combined with `&&`, `||`, `!` and parentheses.
    pub fn parse(text: &str) -> Result<Depends, DependsError> {
        let chars: Vec<char> = text.chars().collect();
        let mut p = DependsParser {
            chars: &chars,
            pos: 0,
        };
        let expr = p.or(0)?;
        p.skip_space();
        if p.pos < chars.len() {
            return Err(p.error(format!("unexpected '{}'", chars[p.pos])));
        }
        Ok(expr)
    }

    /// The step names the expression refers to, in order of first appearance.
    pub fn steps(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Depends::Step(s) | Depends::Result(s, _) => {
                if !out.contains(&s.as_str()) {
                    out.push(s);
                }
            }
            Depends::Not(x) => x.collect(out),
            Depends::And(a, b) | Depends::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }
}

impl fmt::Display for Depends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Depends::Step(s) => f.write_str(s),
            Depends::Result(s, r) => write!(f, "{s}.{}", r.name()),
            Depends::Not(x) => write!(f, "!({x})"),
            Depends::And(a, b) => write!(f, "({a} && {b})"),
            Depends::Or(a, b) => write!(f, "({a} || {b})"),
        }
    }
}

/// How deeply a `depends` expression may nest.
const MAX_DEPENDS_DEPTH: usize = 128;

struct DependsParser<'a> {
    chars: &'a [char],
    pos: usize,
}

impl DependsParser<'_> {
    fn error(&self, message: impl Into<String>) -> DependsError {
        DependsError {
            offset: self.pos,
            message: message.into(),
        }
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, op: &str) -> bool {
        self.skip_space();
        let n = op.chars().count();
        let matches = self.chars.len() >= self.pos + n
            && self.chars[self.pos..self.pos + n]
                .iter()
                .copied()
                .eq(op.chars());
        if matches {
            self.pos += n;
        }
        matches
    }

    fn or(&mut self, depth: usize) -> Result<Depends, DependsError> {
        let mut left = self.and(depth)?;
        while self.eat("||") {
            let right = self.and(depth)?;
            left = Depends::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Depends, DependsError> {
        let mut left = self.unary(depth)?;
        while self.eat("&&") {
            let right = self.unary(depth)?;
            left = Depends::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Depends, DependsError> {
        if depth > MAX_DEPENDS_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPENDS_DEPTH} levels deep")));
        }
        if self.eat("!") {
            return Ok(Depends::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.eat("(") {
            let inner = self.or(depth + 1)?;
            if !self.eat(")") {
                return Err(self.error("expected ')'"));
            }
            return Ok(inner);
        }
        self.skip_space();
        let start = self.pos;
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        while self.chars.get(self.pos).is_some_and(|&c| is_name(c)) {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(match self.chars.get(self.pos) {
                Some(c) => self.error(format!("expected a step name, found '{c}'")),
                None => self.error("expected a step name, found the end"),
            });
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if self.chars.get(self.pos) != Some(&'.') {
            return Ok(Depends::Step(name));
        }
        self.pos += 1;
        let result_start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(char::is_ascii_alphabetic)
        {
            self.pos += 1;
        }
        let result: String = self.chars[result_start..self.pos].iter().collect();
        match TaskResult::ALL.iter().find(|(n, _)| *n == result) {
            Some((_, r)) => Ok(Depends::Result(name, *r)),
            None => Err(DependsError {
                offset: result_start,
                message: format!(
                    "unknown task result '{result}' of step '{name}' (one of: {})",
                    TaskResult::ALL.map(|(n, _)| n).join(", ")
                ),
            }),
        }
    }
}

/// A step being declared; see [`DagBuilder::node`].
#[derive(Debug, Clone)]
pub struct NodeDef {
    name: String,
    needs: Vec<String>,
    depends: Option<Depends>,
    continue_on: ContinueOn,
    exit: bool,
}

impl NodeDef {
    /// Adds plain dependencies (Argo's `dependencies`).
    pub fn needs<I, S>(&mut self, steps: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.needs.extend(steps.into_iter().map(Into::into));
        self
    }

    /// Sets an enhanced `depends` expression instead of plain dependencies.
    pub fn depends(&mut self, depends: Depends) -> &mut Self {
        self.depends = Some(depends);
        self
    }

    /// Sets which failures of this step its dependents tolerate.
    pub fn continue_on(&mut self, continue_on: ContinueOn) -> &mut Self {
        self.continue_on = continue_on;
        self
    }
}

/// Collects steps and their dependencies; [`DagBuilder::seal`] checks them.
#[derive(Debug, Clone, Default)]
pub struct DagBuilder {
    nodes: Vec<NodeDef>,
}

/// A problem of a graph, found by [`DagBuilder::seal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Two steps have the same name.
    #[error("step '{name}' is declared twice")]
    DuplicateName {
        /// The later declaration.
        node: usize,
        /// The name.
        name: String,
        /// The first declaration.
        first: usize,
    },
    /// A dependency names no step.
    #[error("step '{name}' depends on '{missing}', which is not a step{}", .did_you_mean.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default())]
    MissingDependency {
        /// The step with the dependency.
        node: usize,
        /// Its name.
        name: String,
        /// The name that matches no step.
        missing: String,
        /// A step with a similar name.
        did_you_mean: Option<String>,
    },
    /// A step depends on itself.
    #[error("step '{name}' depends on itself")]
    SelfDependency {
        /// The step.
        node: usize,
        /// Its name.
        name: String,
    },
    /// Steps depend on each other in a circle.
    #[error("dependency cycle: {}", .path.join(" -> "))]
    Cycle {
        /// The step of the cycle declared first; the path starts and ends with it.
        node: usize,
        /// Each step depends on the next: `[a, b, c, a]`.
        path: Vec<String>,
    },
    /// Both plain dependencies and a `depends` expression.
    #[error("step '{name}' has both a dependency list and a depends expression")]
    NeedsAndDepends {
        /// The step.
        node: usize,
        /// Its name.
        name: String,
    },
    /// `continueOn` together with `depends`, which Argo rejects.
    #[error(
        "step '{name}' uses continueOn with a depends expression; test '{name}.Failed' in its dependents instead"
    )]
    ContinueOnWithDepends {
        /// The step.
        node: usize,
        /// Its name.
        name: String,
    },
    /// The exit handler has dependencies.
    #[error("exit handler '{name}' cannot have dependencies: it runs after every other step")]
    ExitHandlerHasDependencies {
        /// The exit handler.
        node: usize,
        /// Its name.
        name: String,
    },
    /// A step depends on the exit handler.
    #[error(
        "step '{name}' depends on '{exit}', the exit handler, which runs after every other step"
    )]
    DependsOnExitHandler {
        /// The step.
        node: usize,
        /// Its name.
        name: String,
        /// The exit handler's name.
        exit: String,
    },
    /// A second exit handler.
    #[error("step '{name}' cannot be an exit handler: '{first}' already is")]
    SecondExitHandler {
        /// The second exit handler.
        node: usize,
        /// Its name.
        name: String,
        /// The first exit handler's name.
        first: String,
    },
    /// More steps than the engine counts.
    #[error("a graph has at most {} steps", u32::MAX)]
    TooManySteps,
}

impl SealError {
    /// The declaration index of the step the problem is about (for cycles, the step of the
    /// cycle declared first).
    pub fn node(&self) -> usize {
        match self {
            SealError::DuplicateName { node, .. }
            | SealError::MissingDependency { node, .. }
            | SealError::SelfDependency { node, .. }
            | SealError::Cycle { node, .. }
            | SealError::NeedsAndDepends { node, .. }
            | SealError::ContinueOnWithDepends { node, .. }
            | SealError::ExitHandlerHasDependencies { node, .. }
            | SealError::DependsOnExitHandler { node, .. }
            | SealError::SecondExitHandler { node, .. } => *node,
            SealError::TooManySteps => 0,
        }
    }

    /// A stable identifier of the kind of problem, for diagnostics.
    pub fn code(&self) -> &'static str {
        match self {
            SealError::DuplicateName { .. } => "dag-duplicate-step",
            SealError::MissingDependency { .. } => "dag-missing-dependency",
            SealError::SelfDependency { .. } => "dag-self-dependency",
            SealError::Cycle { .. } => "dag-cycle",
            SealError::NeedsAndDepends { .. } => "dag-needs-and-depends",
            SealError::ContinueOnWithDepends { .. } => "dag-continue-on-with-depends",
            SealError::ExitHandlerHasDependencies { .. } => "dag-exit-handler-dependencies",
            SealError::DependsOnExitHandler { .. } => "dag-depends-on-exit-handler",
            SealError::SecondExitHandler { .. } => "dag-second-exit-handler",
            SealError::TooManySteps => "dag-too-many-steps",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            SealError::TooManySteps => 0,
            SealError::DuplicateName { .. } => 1,
            SealError::SecondExitHandler { .. } => 2,
            SealError::NeedsAndDepends { .. } => 3,
            SealError::ContinueOnWithDepends { .. } => 4,
            SealError::ExitHandlerHasDependencies { .. } => 5,
            SealError::SelfDependency { .. } => 6,
            SealError::MissingDependency { .. } => 7,
            SealError::DependsOnExitHandler { .. } => 8,
            SealError::Cycle { .. } => 9,
        }
    }
}

/// Every problem of a graph, sorted by the step they are about (declaration order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealErrors(pub Vec<SealError>);

impl fmt::Display for SealErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SealErrors {}

impl DagBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a step; chain [`NodeDef::needs`], [`NodeDef::depends`] and
    /// [`NodeDef::continue_on`] on the result.
    pub fn node(&mut self, name: impl Into<String>) -> &mut NodeDef {
        self.push(name.into(), false)
    }

    /// Declares the exit handler: a step that runs once, after every other step is
    /// terminal, whatever the outcome. It has no dependencies and nothing depends on it.
    pub fn exit_handler(&mut self, name: impl Into<String>) -> &mut NodeDef {
        self.push(name.into(), true)
    }

    fn push(&mut self, name: String, exit: bool) -> &mut NodeDef {
        self.nodes.push(NodeDef {
            name,
            needs: Vec::new(),
            depends: None,
            continue_on: ContinueOn::default(),
            exit,
        });
        let last = self.nodes.len() - 1;
        &mut self.nodes[last]
    }

    /// Checks the graph and builds it. Reports every problem, sorted.
    pub fn seal(self) -> Result<Dag, SealErrors> {
        let nodes = self.nodes;
        if u32::try_from(nodes.len()).is_err() {
            return Err(SealErrors(vec![SealError::TooManySteps]));
        }
        let mut errors = Vec::new();

        // Dependencies by index, deduplicated in order of appearance.
        let mut deps: Vec<Vec<NodeId>> = vec![Vec::new(); nodes.len()];
        let mut exit: Option<usize> = None;
        {
            let mut index: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
            for (i, node) in nodes.iter().enumerate() {
                match index.get(node.name.as_str()) {
                    Some(&first) => errors.push(SealError::DuplicateName {
                        node: i,
                        name: node.name.clone(),
                        first,
                    }),
                    None => {
                        index.insert(&node.name, i);
                    }
                }
            }

            for (i, node) in nodes.iter().enumerate().filter(|(_, n)| n.exit) {
                match exit {
                    Some(first) => errors.push(SealError::SecondExitHandler {
                        node: i,
                        name: node.name.clone(),
                        first: nodes[first].name.clone(),
                    }),
                    None => exit = Some(i),
                }
            }

            // `added[d] == i + 1`: d is already a dependency of i (O(1) deduplication).
            let mut added = vec![0usize; nodes.len()];
            for (i, node) in nodes.iter().enumerate() {
                let has_depends = node.depends.is_some();
                if has_depends && !node.needs.is_empty() {
                    errors.push(SealError::NeedsAndDepends {
                        node: i,
                        name: node.name.clone(),
                    });
                }
                if has_depends && node.continue_on != ContinueOn::default() {
                    errors.push(SealError::ContinueOnWithDepends {
                        node: i,
                        name: node.name.clone(),
                    });
                }
                if node.exit && (has_depends || !node.needs.is_empty()) {
                    errors.push(SealError::ExitHandlerHasDependencies {
                        node: i,
                        name: node.name.clone(),
                    });
                    continue;
                }
                let in_depends = node
                    .depends
                    .as_ref()
                    .map(Depends::steps)
                    .unwrap_or_default();
                let mut self_reported = false;
                for name in node.needs.iter().map(String::as_str).chain(in_depends) {
                    if name == node.name {
                        if !self_reported {
                            errors.push(SealError::SelfDependency {
                                node: i,
                                name: node.name.clone(),
                            });
                            self_reported = true;
                        }
                        continue;
                    }
                    let Some(&d) = index.get(name) else {
                        let already = errors.iter().any(|e| {
                            matches!(e, SealError::MissingDependency { node, missing, .. } if *node == i && missing == name)
                        });
                        if !already {
                            errors.push(SealError::MissingDependency {
                                node: i,
                                name: node.name.clone(),
                                missing: name.to_string(),
                                did_you_mean: did_you_mean(
                                    name,
                                    nodes.iter().filter(|n| !n.exit).map(|n| n.name.as_str()),
                                )
                                .map(str::to_string),
                            });
                        }
                        continue;
                    };
                    if added[d] == i + 1 {
                        continue;
                    }
                    added[d] = i + 1;
                    if nodes[d].exit {
                        errors.push(SealError::DependsOnExitHandler {
                            node: i,
                            name: node.name.clone(),
                            exit: nodes[d].name.clone(),
                        });
                    } else {
                        deps[i].push(NodeId::new(d));
                    }
                }
            }
        }

        for path in cycles(&deps) {
            errors.push(SealError::Cycle {
                node: path[0],
                path: path.iter().map(|&i| nodes[i].name.clone()).collect(),
            });
        }

        if !errors.is_empty() {
            errors.sort_by_key(|e| (e.node(), e.rank()));
            return Err(SealErrors(errors));
        }
        Ok(Dag::build(nodes, deps, exit))
    }
}

/// One cycle per strongly connected component of more than one step: the shortest cycle
/// through the component's first-declared step, as `[a, b, c, a]` (each depends on the
/// next). Iterative, so a 100,000-step chain does not exhaust the stack.
fn cycles(deps: &[Vec<NodeId>]) -> Vec<Vec<usize>> {
    let n = deps.len();
    // Tarjan's algorithm with an explicit stack.
    const UNVISITED: usize = usize::MAX;
    let mut order = vec![UNVISITED; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut component = vec![UNVISITED; n];
    let mut components: Vec<Vec<usize>> = Vec::new();
    let mut counter = 0;
    let mut call: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if order[root] != UNVISITED {
            continue;
        }
        call.push((root, 0));
        order[root] = counter;
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = call.last_mut() {
            if let Some(w) = deps[v].get(*edge).map(|w| w.index()) {
                *edge += 1;
                if order[w] == UNVISITED {
                    order[w] = counter;
                    low[w] = counter;
                    counter += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            call.pop();
            if let Some(&(parent, _)) = call.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == order[v] {
                if stack.last() == Some(&v) {
                    // A single step (self-dependencies are not edges): no cycle.
                    stack.pop();
                    on_stack[v] = false;
                    continue;
                }
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component[w] = components.len();
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(members);
            }
        }
    }

    let mut out = Vec::new();
    for (c, members) in components.iter().enumerate() {
        let start = members.iter().copied().min().unwrap_or(0);
        // Breadth-first from `start` along dependencies inside the component, back to it.
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(v) = queue.pop_front() {
            for w in deps[v].iter().map(|w| w.index()) {
                if component[w] != c {
                    continue;
                }
                if w == start {
                    last = Some(v);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        let Some(mut v) = last else { continue };
        let mut path = vec![start, v];
        while v != start {
            v = parent[&v];
            path.push(v);
        }
        path.reverse();
        out.push(path);
    }
    out.sort();
    out
}

/// A compiled dependency condition.
#[derive(Debug, Clone)]
enum Cond {
    /// Plain dependencies: every one satisfied.
    All,
    Expr(CondExpr),
}

#[derive(Debug, Clone)]
enum CondExpr {
    Step(NodeId),
    Result(NodeId, TaskResult),
    Not(Box<CondExpr>),
    And(Box<CondExpr>, Box<CondExpr>),
    Or(Box<CondExpr>, Box<CondExpr>),
}

/// A checked graph of steps. Build one with [`DagBuilder`].
#[derive(Debug, Clone)]
pub struct Dag {
    names: Vec<String>,
    index: HashMap<String, NodeId>,
    deps: Vec<Vec<NodeId>>,
    dependents: Vec<Vec<NodeId>>,
    cond: Vec<Cond>,
    continue_on: Vec<ContinueOn>,
    /// Whether some dependent's `depends` runs on this step's failure / error.
    handles_failed: Vec<bool>,
    handles_error: Vec<bool>,
    exit: Option<NodeId>,
    roots: Vec<NodeId>,
    targets: Vec<NodeId>,
    is_target: Vec<bool>,
    topological: Vec<NodeId>,
}

impl Dag {
    fn build(mut nodes: Vec<NodeDef>, deps: Vec<Vec<NodeId>>, exit: Option<usize>) -> Dag {
        let n = nodes.len();
        let id = NodeId::new;
        let index: HashMap<String, NodeId> = nodes
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.clone(), id(i)))
            .collect();
        let mut dependents = vec![Vec::new(); n];
        for (i, ds) in deps.iter().enumerate() {
            for d in ds {
                dependents[d.index()].push(id(i));
            }
        }
        let mut handles_failed = vec![false; n];
        let mut handles_error = vec![false; n];
        let cond: Vec<Cond> = nodes
            .iter()
            .map(|d| match &d.depends {
                None => Cond::All,
                Some(expr) => {
                    let compiled = compile(expr, &index);
                    mark_tolerated(&compiled, true, &mut handles_failed, &mut handles_error);
                    Cond::Expr(compiled)
                }
            })
            .collect();
        let exit = exit.map(id);
        let main = |i: &usize| Some(id(*i)) != exit;
        let roots = (0..n)
            .filter(main)
            .filter(|&i| deps[i].is_empty())
            .map(id)
            .collect();
        let mut targets: Vec<NodeId> = (0..n)
            .filter(main)
            .filter(|&i| dependents[i].is_empty())
            .map(id)
            .collect();
        targets.sort_by(|a, b| nodes[a.index()].name.cmp(&nodes[b.index()].name));
        let mut is_target = vec![false; n];
        for t in &targets {
            is_target[t.index()] = true;
        }
        // Kahn's algorithm, taking steps in declaration order where there is a choice.
        let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
        let mut ready: VecDeque<NodeId> = (0..n).filter(|&i| remaining[i] == 0).map(id).collect();
        let mut topological = Vec::with_capacity(n);
        while let Some(v) = ready.pop_front() {
            topological.push(v);
            for w in &dependents[v.index()] {
                remaining[w.index()] -= 1;
                if remaining[w.index()] == 0 {
                    ready.push_back(*w);
                }
            }
        }
        Dag {
            names: nodes
                .iter_mut()
                .map(|d| std::mem::take(&mut d.name))
                .collect(),
            index,
            deps,
            dependents,
            cond,
            continue_on: nodes.iter().map(|d| d.continue_on).collect(),
            handles_failed,
            handles_error,
            exit,
            roots,
            targets,
            is_target,
            topological,
        }
    }

    /// The number of steps, the exit handler included.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every step, in declaration order.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.names.len()).map(NodeId::new)
    }

    /// The step with this name.
    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.index.get(name).copied()
    }

    /// The name of a step. Panics on an id of another graph.
    pub fn name(&self, id: NodeId) -> &str {
        &self.names[id.index()]
    }

    /// The steps `id` depends on.
    pub fn dependencies(&self, id: NodeId) -> &[NodeId] {
        &self.deps[id.index()]
    }

    /// The steps that depend on `id`.
    pub fn dependents(&self, id: NodeId) -> &[NodeId] {
        &self.dependents[id.index()]
    }

    /// The step's `continueOn`.
    pub fn continue_on(&self, id: NodeId) -> ContinueOn {
        self.continue_on[id.index()]
    }

    /// The exit handler, if there is one.
    pub fn exit_handler(&self) -> Option<NodeId> {
        self.exit
    }

    /// The steps nothing depends on (the exit handler aside), by name: Argo's targets.
    pub fn targets(&self) -> &[NodeId] {
        &self.targets
    }

    /// Every step after its dependencies (declaration order where free); the exit handler is
    /// among the steps without dependencies.
    pub fn topological_order(&self) -> &[NodeId] {
        &self.topological
    }

    fn check(&self, id: NodeId) -> Result<usize, EventError> {
        let i = id.index();
        if i < self.names.len() {
            Ok(i)
        } else {
            Err(EventError::UnknownStep(id))
        }
    }

    /// Whether a Failed/Error outcome of `i` does not trigger fail-fast.
    fn tolerates(&self, i: usize, status: Status) -> bool {
        self.continue_on[i].covers(status)
            || match status {
                Status::Failed => self.handles_failed[i],
                Status::Error => self.handles_error[i],
                _ => false,
            }
    }

    /// Whether `dep` ending with `status` satisfies a plain dependency on it.
    fn satisfies(&self, dep: usize, status: Status) -> bool {
        matches!(status, Status::Succeeded | Status::Skipped)
            || self.continue_on[dep].covers(status)
    }

    fn eval(&self, expr: &CondExpr, status: &[Status]) -> bool {
        match expr {
            CondExpr::Step(d) => self.satisfies(d.index(), status[d.index()]),
            CondExpr::Result(d, r) => r.holds(status[d.index()]),
            CondExpr::Not(x) => !self.eval(x, status),
            CondExpr::And(a, b) => self.eval(a, status) && self.eval(b, status),
            CondExpr::Or(a, b) => self.eval(a, status) || self.eval(b, status),
        }
    }
}

fn compile(expr: &Depends, names: &HashMap<String, NodeId>) -> CondExpr {
    // Seal has checked every name.
    let id = |s: &String| names.get(s).copied().unwrap_or(NodeId(0));
    match expr {
        Depends::Step(s) => CondExpr::Step(id(s)),
        Depends::Result(s, r) => CondExpr::Result(id(s), *r),
        Depends::Not(x) => CondExpr::Not(Box::new(compile(x, names))),
        Depends::And(a, b) => {
            CondExpr::And(Box::new(compile(a, names)), Box::new(compile(b, names)))
        }
        Depends::Or(a, b) => CondExpr::Or(Box::new(compile(a, names)), Box::new(compile(b, names))),
    }
}

/// Marks the steps whose failure (error) can make `expr` true: an atom that holds when the
/// step failed, in a positive position, or one that does not hold, under a negation.
fn mark_tolerated(expr: &CondExpr, positive: bool, failed: &mut [bool], error: &mut [bool]) {
    match expr {
        CondExpr::Step(d) => {
            // A bare name does not hold on failure (beyond continueOn, handled apart).
            if !positive {
                failed[d.index()] = true;
                error[d.index()] = true;
            }
        }
        CondExpr::Result(d, r) => {
            let on_failed = *r == TaskResult::Failed;
            let on_error = *r == TaskResult::Errored;
            if on_failed == positive {
                failed[d.index()] = true;
            }
            if on_error == positive {
                error[d.index()] = true;
            }
        }
        CondExpr::Not(x) => mark_tolerated(x, !positive, failed, error),
        CondExpr::And(a, b) | CondExpr::Or(a, b) => {
            mark_tolerated(a, positive, failed, error);
            mark_tolerated(b, positive, failed, error);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running

/// How an [`Execution`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Start no new step after an untolerated failure (Argo's `failFast`, default true).
    pub fail_fast: bool,
    /// At most this many steps started and not finished (unlimited when `None`).
    pub parallelism: Option<NonZeroUsize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fail_fast: true,
            parallelism: None,
        }
    }
}

/// Why a step never ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Omission {
    /// Its dependencies were not satisfied.
    DependsNotMet,
    /// Fail-fast stopped new steps before it was ready.
    FailFast,
    /// [`Execution::stop`] was called before it started.
    Stopped,
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Some dependency is not terminal yet.
    Waiting,
    /// Ready to be decided: the engine asks for its `when` ([`Action::Decide`]).
    Deciding,
    /// Decided to run, waiting for a parallelism slot.
    Ready,
    /// Handed to the caller by [`Action::Start`], not reported running yet.
    Pending,
    /// Reported running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Ran and failed.
    Failed,
    /// Could not run, or its `when` was invalid.
    Error,
    /// Its `when` was false.
    Skipped,
    /// Never ran.
    Omitted(Omission),
}

impl Status {
    /// Whether the step will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Succeeded
                | Status::Failed
                | Status::Error
                | Status::Skipped
                | Status::Omitted(_)
        )
    }

    /// Whether the step counts against the parallelism limit.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Pending | Status::Running)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Waiting => "waiting",
            Status::Deciding => "deciding",
            Status::Ready => "ready",
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Error => "errored",
            Status::Skipped => "skipped",
            Status::Omitted(Omission::DependsNotMet) => "omitted",
            Status::Omitted(Omission::FailFast) => "omitted (fail-fast)",
            Status::Omitted(Omission::Stopped) => "omitted (stopped)",
        })
    }
}

/// The answer to [`Action::Decide`]: the step's `when`, evaluated by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No `when`, or it is true.
    Run,
    /// The `when` is false: the step is Skipped.
    Skip,
    /// The `when` could not be evaluated: the step is Error.
    Error,
}

/// How a started step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Succeeded,
    /// It failed (after its retries).
    Failed,
    /// It could not run.
    Error,
}

/// A step's outcome recorded by an earlier run (see [`Execution::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// It succeeded.
    Succeeded,
    /// It failed.
    Failed,
    /// It errored.
    Error,
    /// It was skipped.
    Skipped,
}

/// The phase of a finished pipeline (Argo's node phases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Everything that had to succeed succeeded.
    Succeeded,
    /// A step failed.
    Failed,
    /// A step errored.
    Error,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Argo's spelling, as `{{workflow.status}}` shows it.
        f.write_str(match self {
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Error => "Error",
        })
    }
}

/// What the caller should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Evaluate this step's `when` and answer with [`Execution::decide`]. Returned again
    /// until answered.
    Decide(NodeId),
    /// Start this step; report it with [`Execution::started`] (optional) and
    /// [`Execution::finished`]. Returned once per step.
    Start(NodeId),
    /// Nothing to do until a started step finishes.
    Wait,
    /// Every step is terminal; the pipeline ended with this phase.
    Done(Phase),
}

/// An event that does not fit the step's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The id is not a step of this graph.
    #[error("no step has id {}", .0.index())]
    UnknownStep(NodeId),
    /// The step is not in a state that accepts the event.
    #[error("cannot {event} step '{step}': it is {status}")]
    Unexpected {
        /// The step's name.
        step: String,
        /// What was attempted.
        event: &'static str,
        /// Where the step is.
        status: Status,
    },
}

/// A run of a [`Dag`]: a state machine fed events.
#[derive(Debug, Clone)]
pub struct Execution {
    dag: Dag,
    options: Options,
    status: Vec<Status>,
    /// Dependencies not yet terminal.
    remaining: Vec<u32>,
    /// For plain dependencies: some terminal dependency did not satisfy it.
    blocked: Vec<bool>,
    preset: Vec<Option<Recorded>>,
    decide_queue: VecDeque<NodeId>,
    ready_queue: VecDeque<NodeId>,
    active: usize,
    /// Graph steps not yet terminal and settled.
    unsettled: usize,
    halted: Option<Omission>,
    stopped: bool,
    main_phase: Option<Phase>,
    phase: Option<Phase>,
    worklist: Vec<NodeId>,
}

impl Execution {
    /// Starts running `dag`: the steps without dependencies are ready to be decided.
    pub fn new(dag: Dag, options: Options) -> Self {
        let n = dag.len();
        Self::create(dag, options, vec![None; n])
    }

    /// Starts running `dag` again after an interrupted run: each recorded step takes its
    /// recorded outcome when it becomes ready, instead of being decided and started; the
    /// other steps run as usual. Record only terminal outcomes (a step that was running
    /// when the run was interrupted runs again).
    pub fn resume(
        dag: Dag,
        options: Options,
        recorded: impl IntoIterator<Item = (NodeId, Recorded)>,
    ) -> Result<Self, EventError> {
        let mut preset = vec![None; dag.len()];
        for (id, outcome) in recorded {
            let i = dag.check(id)?;
            preset[i] = Some(outcome);
        }
        Ok(Self::create(dag, options, preset))
    }

    fn create(dag: Dag, options: Options, preset: Vec<Option<Recorded>>) -> Self {
        let n = dag.len();
        let remaining = dag.deps.iter().map(|d| d.len() as u32).collect();
        let unsettled = n - usize::from(dag.exit.is_some());
        let mut ex = Execution {
            status: vec![Status::Waiting; n],
            remaining,
            blocked: vec![false; n],
            preset,
            decide_queue: VecDeque::new(),
            ready_queue: VecDeque::new(),
            active: 0,
            unsettled,
            halted: None,
            stopped: false,
            main_phase: None,
            phase: None,
            worklist: Vec::new(),
            options,
            dag,
        };
        for r in 0..ex.dag.roots.len() {
            let root = ex.dag.roots[r];
            ex.become_ready(root);
        }
        ex.settle();
        ex
    }

    /// The graph being run.
    pub fn dag(&self) -> &Dag {
        &self.dag
    }

    /// The options of this run.
    pub fn options(&self) -> Options {
        self.options
    }

    /// Where a step is. Panics on an id of another graph.
    pub fn status(&self, id: NodeId) -> Status {
        self.status[id.index()]
    }

    /// The number of steps started and not finished.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The phase of the graph without the exit handler, once every graph step is terminal:
    /// what the exit handler sees as the workflow status.
    pub fn main_phase(&self) -> Option<Phase> {
        self.main_phase
    }

    /// The final phase, once everything is terminal.
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// What to do next: decisions first, then starts (within the parallelism limit).
    pub fn next_action(&mut self) -> Action {
        while let Some(&v) = self.decide_queue.front() {
            if self.status[v.index()] == Status::Deciding {
                return Action::Decide(v);
            }
            self.decide_queue.pop_front();
        }
        while let Some(&v) = self.ready_queue.front() {
            if self.status[v.index()] != Status::Ready {
                self.ready_queue.pop_front();
                continue;
            }
            if self
                .options
                .parallelism
                .is_some_and(|limit| self.active >= limit.get())
            {
                break;
            }
            self.ready_queue.pop_front();
            self.status[v.index()] = Status::Pending;
            self.active += 1;
            return Action::Start(v);
        }
        match self.phase {
            Some(phase) => Action::Done(phase),
            None => Action::Wait,
        }
    }

    /// Answers [`Action::Decide`]. An answer for a step that fail-fast or [`Execution::stop`]
    /// omitted in the meantime is ignored.
    pub fn decide(&mut self, id: NodeId, decision: Decision) -> Result<(), EventError> {
        let i = self.dag.check(id)?;
        match self.status[i] {
            Status::Deciding => {}
            Status::Omitted(Omission::FailFast | Omission::Stopped) => return Ok(()),
            _ => return Err(self.unexpected(i, "decide")),
        }
        match decision {
            Decision::Run => {
                self.status[i] = Status::Ready;
                self.ready_queue.push_back(id);
            }
            Decision::Skip => self.terminate(id, Status::Skipped),
            Decision::Error => self.terminate(id, Status::Error),
        }
        Ok(())
    }

    /// Reports that a started step is running (optional: [`Execution::finished`] accepts a
    /// step that was only started).
    pub fn started(&mut self, id: NodeId) -> Result<(), EventError> {
        let i = self.dag.check(id)?;
        if self.status[i] != Status::Pending {
            return Err(self.unexpected(i, "mark running"));
        }
        self.status[i] = Status::Running;
        Ok(())
    }

    /// Reports how a started step ended.
    pub fn finished(&mut self, id: NodeId, outcome: Outcome) -> Result<(), EventError> {
        let i = self.dag.check(id)?;
        if !self.status[i].is_active() {
            return Err(self.unexpected(i, "finish"));
        }
        self.active -= 1;
        let status = match outcome {
            Outcome::Succeeded => Status::Succeeded,
            Outcome::Failed => Status::Failed,
            Outcome::Error => Status::Error,
        };
        self.terminate(id, status);
        Ok(())
    }

    /// Stops the pipeline (Argo's stop strategy): no new graph step starts, started steps
    /// finish, the graph ends Failed, and the exit handler still runs.
    pub fn stop(&mut self) {
        if self.main_phase.is_some() {
            return;
        }
        self.stopped = true;
        self.halt(Omission::Stopped);
        self.settle();
    }

    fn unexpected(&self, i: usize, event: &'static str) -> EventError {
        EventError::Unexpected {
            step: self.dag.names[i].clone(),
            event,
            status: self.status[i],
        }
    }

    fn terminate(&mut self, id: NodeId, status: Status) {
        self.status[id.index()] = status;
        self.worklist.push(id);
        self.settle();
    }

    fn become_ready(&mut self, id: NodeId) {
        let i = id.index();
        match self.preset[i] {
            Some(recorded) => {
                self.status[i] = match recorded {
                    Recorded::Succeeded => Status::Succeeded,
                    Recorded::Failed => Status::Failed,
                    Recorded::Error => Status::Error,
                    Recorded::Skipped => Status::Skipped,
                };
                self.worklist.push(id);
            }
            None => {
                self.status[i] = Status::Deciding;
                self.decide_queue.push_back(id);
            }
        }
    }

    /// Propagates the consequences of the terminal steps in the worklist.
    fn settle(&mut self) {
        loop {
            let Some(v) = self.worklist.pop() else {
                self.finish_graph_if_done();
                if self.worklist.is_empty() {
                    return;
                }
                continue;
            };
            let i = v.index();
            let status = self.status[i];
            if Some(v) == self.dag.exit {
                let main = self.main_phase.unwrap_or(Phase::Succeeded);
                self.phase = Some(match (main, status) {
                    (Phase::Succeeded, Status::Failed) => Phase::Failed,
                    (Phase::Succeeded, Status::Error) => Phase::Error,
                    _ => main,
                });
                continue;
            }
            self.unsettled -= 1;
            for k in 0..self.dag.dependents[i].len() {
                let w = self.dag.dependents[i][k];
                let wi = w.index();
                if self.status[wi].is_terminal() {
                    continue;
                }
                self.remaining[wi] -= 1;
                if matches!(self.dag.cond[wi], Cond::All) && !self.dag.satisfies(i, status) {
                    self.blocked[wi] = true;
                }
                if self.remaining[wi] == 0 {
                    let run = match &self.dag.cond[wi] {
                        Cond::All => !self.blocked[wi],
                        Cond::Expr(e) => self.dag.eval(e, &self.status),
                    };
                    if run {
                        self.become_ready(w);
                    } else {
                        self.status[wi] = Status::Omitted(Omission::DependsNotMet);
                        self.worklist.push(w);
                    }
                }
            }
            // After the dependents: those the failure leaves unsatisfied are Omitted for that
            // reason, as Argo records them, before fail-fast omits the rest.
            if matches!(status, Status::Failed | Status::Error)
                && self.options.fail_fast
                && !self.dag.tolerates(i, status)
            {
                self.halt(Omission::FailFast);
            }
        }
    }

    /// After fail-fast or stop: every graph step that has not started never will.
    fn halt(&mut self, why: Omission) {
        if self.halted.is_some() {
            return;
        }
        self.halted = Some(why);
        for i in 0..self.status.len() {
            if Some(NodeId::new(i)) == self.dag.exit {
                continue;
            }
            if matches!(
                self.status[i],
                Status::Waiting | Status::Deciding | Status::Ready
            ) {
                self.status[i] = Status::Omitted(why);
                self.unsettled -= 1;
            }
        }
    }

    fn finish_graph_if_done(&mut self) {
        if self.unsettled != 0 || self.main_phase.is_some() {
            return;
        }
        let phase = if self.stopped {
            Phase::Failed
        } else {
            self.assess()
        };
        self.main_phase = Some(phase);
        match self.dag.exit {
            Some(exit) => self.become_ready(exit),
            None => self.phase = Some(phase),
        }
    }

    /// Argo's `assessDAGPhase` on terminal steps: branch phases flow from the roots, a
    /// completed step (Succeeded, Failed, Error) replacing its parents' phase.
    fn assess(&self) -> Phase {
        const S: u8 = 1;
        const F: u8 = 2;
        const E: u8 = 4;
        let n = self.dag.len();
        let mut seen = vec![0u8; n];
        let mut target_phase = vec![0u8; n];
        let mut queue: VecDeque<(usize, u8)> = VecDeque::new();
        for root in &self.dag.roots {
            seen[root.index()] |= S;
            queue.push_back((root.index(), S));
        }
        while let Some((v, phase)) = queue.pop_front() {
            let branch = match self.status[v] {
                Status::Succeeded => S,
                Status::Failed => F,
                Status::Error => E,
                _ => phase,
            };
            // A target keeps the first Failed or Error phase that reaches it.
            if self.dag.is_target[v] && target_phase[v] & (F | E) == 0 {
                target_phase[v] = branch;
            }
            for w in &self.dag.dependents[v] {
                let w = w.index();
                if seen[w] & branch == 0 {
                    seen[w] |= branch;
                    queue.push_back((w, branch));
                }
            }
        }
        let mut result = Phase::Succeeded;
        for t in &self.dag.targets {
            let (phase, status) = match target_phase[t.index()] {
                F => (Phase::Failed, Status::Failed),
                E => (Phase::Error, Status::Error),
                _ => continue,
            };
            if self.dag.continue_on[t.index()].covers(status) {
                continue;
            }
            result = phase;
            if self.options.fail_fast {
                break;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests;
