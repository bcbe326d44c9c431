//! Exit codes, documented once (README "Exit codes"; constants are added here as commands
//! use them), and the failure type every command returns.

use std::fmt;
use std::process::ExitCode;

/// Success.
pub const OK: u8 = 0;
/// A negative result: findings at or above `--fail-on`, a failed run, an invalid spec.
pub const NEGATIVE: u8 = 1;
/// Wrong usage: unknown flag, missing argument (clap's own code).
pub const USAGE: u8 = 2;
/// Bad input: a file that cannot be read or parsed at all.
pub const BAD_INPUT: u8 = 3;
/// The local runtime failed (state store, process spawning, ports).
pub const LOCAL_RUNTIME: u8 = 5;
/// Interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// Why a command could not do its job: an exit code, the error chain and maybe a hint.
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
            hint: None,
        }
    }

    pub fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        Self::new(BAD_INPUT, error)
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prints `error: ...`, each `caused by: ...` and the hint to stderr, and returns the
    /// exit code.
    pub fn report(self) -> ExitCode {
        eprintln!("{self}");
        ExitCode::from(self.code)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.error)?;
        for cause in self.error.chain().skip(1) {
            write!(f, "\n  caused by: {cause}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// What a command returns.
pub type Outcome = Result<u8, Failure>;
