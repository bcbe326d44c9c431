//! Orchestration cost of the DAG engine: build, seal and run a whole graph whose steps
//! finish at once, so what is measured is the engine alone. `bench/dag-engine.sh` runs this
//! next to the same graphs in Python's `graphlib` and prints the ratio.
//!
//! Usage: `dag_engine SHAPE STEPS REPEATS` with SHAPE `chain`, `wide` or `layered`; prints
//! one line per repeat: the total nanoseconds of build + seal + run.

use std::time::Instant;

use mlctl_core::dag::{Action, DagBuilder, Decision, Execution, Options, Outcome};

/// The dependencies of step `i` (same formulas as `bench/dag_engine_peer.py`).
fn deps(shape: &str, n: usize, i: usize) -> Vec<usize> {
    match shape {
        "chain" => (i > 0).then(|| i - 1).into_iter().collect(),
        // one source, n-2 parallel steps, one sink
        "wide" if i == 0 => vec![],
        "wide" if i == n - 1 => (1..n - 1).collect(),
        "wide" => vec![0],
        // layers of 100; three dependencies in the previous layer
        _ => {
            let (layer, pos) = (i / 100, i % 100);
            if layer == 0 {
                return vec![];
            }
            let mut d: Vec<usize> = (0..3)
                .map(|k| (layer - 1) * 100 + (pos * 7 + k * 13) % 100)
                .collect();
            d.dedup();
            d
        }
    }
}

fn once(shape: &str, n: usize, names: &[String], edges: &[Vec<usize>]) -> u128 {
    let start = Instant::now();
    let mut b = DagBuilder::new();
    for i in 0..n {
        b.node(names[i].clone())
            .needs(edges[i].iter().map(|&d| names[d].clone()));
    }
    let dag = b.seal().expect("a valid graph");
    let mut ex = Execution::new(dag, Options::default());
    let mut running = Vec::new();
    let mut started = 0;
    loop {
        match ex.next_action() {
            Action::Decide(id) => ex.decide(id, Decision::Run).expect("decide"),
            Action::Start(id) => {
                started += 1;
                running.push(id);
            }
            Action::Wait => {
                for id in running.drain(..) {
                    ex.finished(id, Outcome::Succeeded).expect("finish");
                }
            }
            Action::Done(_) => break,
        }
    }
    let elapsed = start.elapsed().as_nanos();
    assert_eq!(started, n, "{shape}: every step runs");
    elapsed
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let shape = args.first().map_or("layered", String::as_str).to_string();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let repeats: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(15);
    let names: Vec<String> = (0..n).map(|i| format!("step-{i}")).collect();
    let edges: Vec<Vec<usize>> = (0..n).map(|i| deps(&shape, n, i)).collect();
    for _ in 0..repeats {
        println!("{}", once(&shape, n, &names, &edges));
    }
}
