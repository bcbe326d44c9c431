//! One module per command: each has `Args` (its flags) and `run`.

pub mod cancel;
pub mod check;
pub mod completion;
pub mod deploy;
pub mod describe;
pub mod get;
pub mod logs;
pub mod render;
pub mod resume;
pub mod run;
pub mod schema;
pub mod serve_model;
pub mod validate;
pub mod version;
