//! The `mlctl` command: parses the command line and hands over to one command.

#[macro_use]
mod out;
mod cli;
mod cmd;
mod exit;
mod inputs;
mod local;
mod specs;

/// mimalloc instead of glibc's malloc: `check` and `validate` spend a sixth of their time
/// allocating the strings and vectors of YAML trees (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
