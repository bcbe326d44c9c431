//! The command line: global options, the list of commands, and dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::exit::{self, Failure};

/// Run, render, check and plan ML and data workloads: one spec, on this machine or on
/// Kubernetes.
#[derive(Debug, Parser)]
#[command(
    name = "mlctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Globals {
    /// More log output on stderr (repeat for more); MLCTL_LOG=debug does the same.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the workloads of specs on this machine (queued, placed, supervised, retried).
    Run(cmd::run::Args),
    /// List runs, jobs or services (InferenceServices) of the local runtime.
    Get(cmd::get::Args),
    /// Show a run in detail: jobs, attempts, placements, why it waits, events.
    Describe(cmd::describe::Args),
    /// Print (or follow) what a run's workers wrote.
    Logs(cmd::logs::Args),
    /// Stop a run.
    Cancel(cmd::cancel::Args),
    /// Continue a run whose mlctl was killed (succeeded steps are not run again).
    Resume(cmd::resume::Args),
    /// Parse and check specs; report every problem with its location.
    Validate(cmd::validate::Args),
    /// Render specs to Kubernetes manifests, ready for `kubectl apply -f -`.
    Render(cmd::render::Args),
    /// Print the JSON Schema of mlctl specs (for editors).
    Schema(cmd::schema::Args),
    /// Find the mistakes in Kubernetes manifests: schemas, API-server checks, ML/data rules.
    Check(cmd::check::Args),
    /// Print mlctl's version and build information.
    Version(cmd::version::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion(cmd::completion::Args),
    /// Serve an ONNX model over the Open Inference Protocol v2 and TensorFlow Serving's REST
    /// API, with dynamic batching and Prometheus metrics.
    ServeModel(cmd::serve_model::Args),
    #[command(name = "__supervise", hide = true)]
    Supervise(cmd::run::SuperviseArgs),
    #[command(name = "__reaper", hide = true)]
    Reaper(ReaperArgs),
    #[command(name = "__deploy", hide = true)]
    Deploy(cmd::deploy::Args),
}

/// `mlctl __reaper`: starts and waits for the workers of the mlctl that started it.
#[derive(Debug, clap::Args)]
pub struct ReaperArgs {
    /// Turn transparent huge pages back on (the dispatcher turned them off for itself).
    #[arg(long)]
    restore_thp: bool,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    init_logging(&cli.globals);
    let outcome = match cli.command {
        Command::Run(args) => cmd::run::run(&args),
        Command::Get(args) => cmd::get::run(&args),
        Command::Describe(args) => cmd::describe::run(&args),
        Command::Logs(args) => cmd::logs::run(&args),
        Command::Cancel(args) => cmd::cancel::run(&args),
        Command::Resume(args) => cmd::resume::run(&args),
        Command::Supervise(args) => cmd::run::supervise(&args),
        Command::Deploy(args) => cmd::deploy::run(&args),
        Command::Reaper(args) => Ok(mlctl_local::reaper::serve(args.restore_thp)),
        Command::Validate(args) => cmd::validate::run(&args),
        Command::Render(args) => cmd::render::run(&args),
        Command::Schema(args) => cmd::schema::run(&args),
        Command::Check(args) => cmd::check::run(&args),
        Command::Version(args) => cmd::version::run(&args),
        Command::Completion(args) => cmd::completion::run(&args),
        Command::ServeModel(args) => cmd::serve_model::run(&args),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => Failure::report(failure),
    }
}

fn init_logging(globals: &Globals) {
    use tracing_subscriber::EnvFilter;
    let default = match (globals.quiet, globals.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = std::env::var("MLCTL_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .try_init();
}
