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
pub mod reaper;
pub mod runtime;
pub mod schedsync;
pub mod service;
pub mod store;
pub mod tail;
pub mod task;

/// Locks `mutex`, also when a holder panicked: what the crate's mutexes guard is changed by
/// single operations (a store, an insert, a removal), so it stays usable.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An error and its causes, on one line.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
