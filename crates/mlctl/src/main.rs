//! The `mlctl` command: parses the command line and hands over to one command.

mod cli;
mod cmd;
mod exit;
mod inputs;
mod local;
mod specs;

fn main() -> std::process::ExitCode {
    cli::main()
}
