//! The `mlctl` command: parses the command line and hands over to one command.

#[macro_use]
mod out;
mod cli;
mod cmd;
mod exit;
mod inputs;
mod local;
mod specs;

fn main() -> std::process::ExitCode {
    cli::main()
}
