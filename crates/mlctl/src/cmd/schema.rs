//! `mlctl schema`: the JSON Schema of mlctl specs, for editors and CI.

use crate::exit::{self, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: &Args) -> Outcome {
    let schema = mlctl_core::spec::json_schema();
    crate::out::json(&schema);
    Ok(exit::OK)
}
