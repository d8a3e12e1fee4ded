//! Printing that survives a closed pipe: `soak … | head -1` or `soak … 2>&1 | true` must
//! not turn a run into a panic. Rust ignores `SIGPIPE`, so a write to a closed pipe fails
//! with `EPIPE`, and `println!` panics on it; these macros drop the line instead, and the
//! exit code stays the run's. Any other failure to write stdout (a full disk behind a
//! redirection, `>/dev/full`) is remembered, and the process then exits 3 (an output could
//! not be written) instead of reporting a success its reader never saw.

use std::sync::OnceLock;

/// The first failure to write stdout other than a closed pipe.
static STDOUT_LOST: OnceLock<String> = OnceLock::new();

/// Keeps the outcome of a write to stdout: a closed pipe is dropped quietly, anything else
/// is remembered for [`stdout_lost`].
pub(crate) fn kept(result: std::io::Result<()>) {
    if let Err(err) = result {
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = STDOUT_LOST.set(err.to_string());
        }
    }
}

/// Why stdout could not be written, if it could not (after flushing what is left).
pub(crate) fn stdout_lost() -> Option<&'static str> {
    use std::io::Write as _;
    kept(std::io::stdout().lock().flush());
    STDOUT_LOST.get().map(String::as_str)
}

/// `println!` that ends quietly when stdout is closed.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        $crate::output::kept(::std::writeln!(::std::io::stdout().lock(), $($arg)*));
    }};
}

/// `eprintln!` that ends quietly when stderr is closed.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr().lock(), $($arg)*);
    }};
}

/// `print!` (no newline) that ends quietly when stdout is closed.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let mut out = ::std::io::stdout().lock();
        $crate::output::kept(::std::write!(out, $($arg)*).and_then(|()| out.flush()));
    }};
}
