//! `mlctl completion SHELL`: a completion script generated from the command definitions.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit::{self, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: &Args) -> Outcome {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "mlctl", &mut script);
    crate::out!("{}", String::from_utf8_lossy(&script));
    Ok(exit::OK)
}
