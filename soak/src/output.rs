//! Printing that survives a closed pipe: `soak … | head -1` or `soak … 2>&1 | true` must
//! not turn a run into a panic. Rust ignores `SIGPIPE`, so a write to a closed pipe fails
//! with `EPIPE`, and `println!` panics on it; these macros drop the line instead, and the
//! exit code stays the run's.

/// `println!` that ends quietly when stdout is closed.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout().lock(), $($arg)*);
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
        let _ = ::std::write!(out, $($arg)*);
        let _ = out.flush();
    }};
}
