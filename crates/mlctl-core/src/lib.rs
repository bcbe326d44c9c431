//! The pure domain of mlctl: the spec model and its parsing with located diagnostics,
//! validation, quantities, templating and `when` expressions, the scheduler state machine,
//! the DAG and the autoscaling math.
//!
//! Nothing here does I/O, reads the clock or spawns anything: time is a parameter, and
//! adapters (`mlctl-local`, `mlctl-serve`, `mlctl-cluster`) feed events in and carry
//! decisions out.
#![warn(missing_docs)]

pub mod autoscale;
pub mod contract;
pub mod dag;
pub mod de;
pub mod diag;
pub mod expr;
pub mod names;
pub mod parallel;
pub mod path;
pub mod quantity;
pub mod retry;
pub mod scalar;
pub mod sched;
pub mod spec;
pub mod template;
pub mod validate;
pub mod workload;
pub mod yaml;
