//! From parsed arguments to an exit code.

use std::process::ExitCode;

use runlog::Status;

use crate::cli::Cli;
use crate::progress::{Progress, summary};
use crate::run::{RunError, RunOptions, run};
use crate::scenario;

/// Exit code for a run whose assessment passed or warned.
pub const EXIT_PASS: u8 = 0;
/// Exit code for a run whose assessment failed, or that broke down.
pub const EXIT_FAIL: u8 = 1;
/// Exit code for bad arguments or input.
pub const EXIT_USAGE: u8 = 2;

/// Runs what the command line asks for and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let config = match scenario::resolve(&cli.scenario) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut progress = Progress::new(cli.quiet);
    let options = RunOptions {
        out: cli.out.clone(),
    };
    let outcome = match run(&config, &options, &mut progress, None) {
        Ok(outcome) => outcome,
        Err(err @ RunError::Input(_)) => {
            eprintln!("soak: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(err) => {
            eprintln!("soak: run failed: {err}");
            return ExitCode::from(EXIT_FAIL);
        }
    };
    let text = summary(&outcome.results, &outcome.dir);
    if cli.json {
        eprintln!("{text}");
        match serde_json::to_string_pretty(&outcome.results) {
            Ok(json) => println!("{json}"),
            Err(err) => {
                eprintln!("soak: cannot print results: {err}");
                return ExitCode::from(EXIT_FAIL);
            }
        }
    } else {
        println!("{text}");
    }
    match outcome.results.assessment.overall {
        Status::Pass | Status::Warn => ExitCode::from(EXIT_PASS),
        Status::Fail => ExitCode::from(EXIT_FAIL),
    }
}
