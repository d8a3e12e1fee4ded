//! `soak`: run `soak --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    soak::app::main(soak::cli::parse())
}
