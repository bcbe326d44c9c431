//! Writing to stdout without dying on a closed pipe (`mlctl get runs | head`): when the reader
//! is gone, the command's output is not wanted any more, so mlctl exits quietly.

use std::io::Write;

/// Writes formatted text to stdout.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    exit_if_closed(out.write_fmt(args).and_then(|()| out.flush()));
}

/// Writes `value` to stdout as pretty-printed JSON and a newline, through a buffer (a large
/// report is not built as a `serde_json::Value` and then as a `String` first).
pub fn json(value: &impl serde::Serialize) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    exit_if_closed(written);
}

/// Ends the process quietly when the reader of stdout is gone.
fn exit_if_closed(written: std::io::Result<()>) {
    if let Err(e) = written
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

/// `println!` for command output.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for command output.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*)) };
}
