//! The local runtime: runs mlctl workloads on this machine.
//!
//! One dispatcher per `mlctl run` owns the state of its runs and drives the pure state
//! machines of `mlctl-core` (scheduler, DAG); child processes are supervised in their own
//! process groups; everything durable is in a SQLite store under the mlctl home, which is
//! also how concurrent `mlctl` processes share the machine's capacity.

pub mod cache;
pub mod controller;
pub mod gpu;
pub mod home;
pub mod lb;
pub mod process;
pub mod pyenv;
pub mod runtime;
pub mod schedsync;
pub mod service;
pub mod store;
pub mod tail;
pub mod task;
