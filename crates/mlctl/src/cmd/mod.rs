//! One module per command: each has `Args` (its flags) and `run`.

pub mod completion;
pub mod schema;
pub mod validate;
pub mod version;
