//! `mlctl __exec STATUS -- ARGV...`: the shim every worker runs under. It starts the command
//! (same environment, directory, output and process group), waits for it, and writes how it
//! ended to STATUS — so that an mlctl that was killed meanwhile still learns, when it
//! recovers, that the worker succeeded (and does not run a succeeded step twice).
//!
//! It ignores the signals its process group receives (the command gets them and ends; the shim
//! outlives it to write the status). STATUS holds `code N`, `signal N` or `start-error MESSAGE`,
//! and is written whole (to a temporary file, then renamed). Before anything else it writes
//! `STATUS.pid` (its pid and start time), so that a recovering mlctl can stop it even when the
//! mlctl that started it died before recording it; and it does not start the command when that
//! mlctl is already gone.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::exit::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write how the command ended.
    status: PathBuf,
    /// The mlctl that starts the shim: the command is not started when it is gone.
    #[arg(long)]
    parent: Option<u32>,
    /// The command.
    #[arg(last = true, required = true)]
    argv: Vec<String>,
}

fn write_status(path: &PathBuf, text: &str) {
    let partial = path.with_extension("partial");
    if std::fs::write(&partial, text).is_ok() {
        let _ = std::fs::rename(&partial, path);
    }
}

pub fn run(args: &Args) -> Outcome {
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        // registering a flag replaces the default action (exit) with "note it"
        let _ = signal_hook::flag::register(signal, Arc::new(AtomicBool::new(false)));
    }
    let (program, rest) = args.argv.split_first().ok_or_else(|| {
        crate::exit::Failure::new(crate::exit::USAGE, anyhow::anyhow!("no command"))
    })?;
    let me = std::process::id();
    let start_time = mlctl_local::process::start_time(me).unwrap_or(0);
    write_status(
        &PathBuf::from(format!("{}.pid", args.status.display())),
        &format!("{me} {start_time}"),
    );
    if args
        .parent
        .is_some_and(|p| std::os::unix::process::parent_id() != p)
    {
        // no status: the attempt is lost (not the worker's failure), and recovery reruns it
        eprintln!("error: the mlctl that started this worker exited before it could start");
        return Ok(127);
    }
    match std::process::Command::new(program).args(rest).status() {
        Ok(status) => {
            let (text, code) = match (status.code(), status.signal()) {
                (Some(code), _) => (format!("code {code}"), code),
                (None, Some(sig)) => (format!("signal {sig}"), 128 + sig),
                (None, None) => ("code 1".to_string(), 1),
            };
            write_status(&args.status, &text);
            Ok(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            let message = format!("failed to start `{program}`: {e}");
            eprintln!("error: {message}");
            write_status(&args.status, &format!("start-error {message}"));
            Ok(127)
        }
    }
}
