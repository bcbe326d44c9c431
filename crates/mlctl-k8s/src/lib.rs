//! mlctl's pure Kubernetes layer: [`render`] turns validated specs into typed Kubernetes
//! objects (k8s-openapi for built-in kinds, hand-modelled types for the operators' kinds);
//! strict schema validation of manifests against the embedded upstream schemas; and
//! `mlctl check`'s rules for ML and data workloads.
//!
//! Nothing here does I/O or reads the clock: callers hand in validated specs or file names and
//! texts, and get objects, YAML, JSON or diagnostics back.
#![warn(missing_docs)]

pub mod apis;
pub mod check;
pub mod manifest;
pub mod render;
pub mod rules;
pub mod schema;
