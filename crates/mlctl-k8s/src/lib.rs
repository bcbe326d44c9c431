//! mlctl's pure Kubernetes layer: [`render`] turns validated specs into typed Kubernetes
//! objects (k8s-openapi for built-in kinds, hand-modelled types for the operators' kinds).
//!
//! Nothing here does I/O or reads the clock: callers hand in validated specs and options and
//! get objects, YAML or JSON back.
#![warn(missing_docs)]

pub mod render;
