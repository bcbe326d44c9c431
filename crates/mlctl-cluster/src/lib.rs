//! The boundary of mlctl's Kubernetes client adapter — empty on purpose, until the work that
//! applies rendered manifests to a live cluster starts.
//!
//! What will live here (ARCHITECTURE.md, DESIGN.md): kube-rs server-side apply of what
//! `mlctl-k8s` renders (with `dryRun=All` and field manager `mlctl`), diff, prune, and waiting
//! on rollout/Job/Workflow status. It is the only crate that may depend on `kube`, so that the
//! pure crates and the local runtime never pull it in; its tests will drive a scripted mock of
//! the API server, the one component that cannot run on this machine. Nothing else in the
//! workspace depends on it yet, and no command calls it.
