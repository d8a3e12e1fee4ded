//! `soak`: run `soak --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    soak::app::main(soak::cli::Cli::parse())
}
