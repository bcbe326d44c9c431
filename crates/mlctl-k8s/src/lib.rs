//! mlctl's pure Kubernetes layer: strict schema validation of manifests against the embedded
//! upstream schemas, and `mlctl check`'s rules for ML and data workloads.
//!
//! Nothing here does I/O: callers hand in file names and texts and get diagnostics back.
#![warn(missing_docs)]

pub mod apis;
pub mod check;
pub mod manifest;
pub mod rules;
pub mod schema;
