//! From parsed arguments to an exit code.

use std::process::ExitCode;

use runlog::Status;

use crate::cli::{Cli, Command};
use crate::live;
use crate::progress::{Progress, summary};
use crate::records;
use crate::run::{RunError, RunOptions, prepare};
use crate::scenario;
use crate::tune::{self, TuneError, TuneOptions};

/// Exit code for a run whose assessment passed or warned.
pub const EXIT_PASS: u8 = 0;
/// Exit code for a run whose assessment failed, or that broke down.
pub const EXIT_FAIL: u8 = 1;
/// Exit code for bad arguments or input.
pub const EXIT_USAGE: u8 = 2;

/// Runs what the command line asks for and returns the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    match &cli.command {
        None => soak(cli),
        Some(Command::Report { run_dir }) => records::report(run_dir.as_deref()),
        Some(Command::Compare {
            base,
            candidate,
            threshold,
            force,
            fail_on_regression,
            output,
        }) => records::compare(&records::CompareArgs {
            base: base.clone(),
            candidate: candidate.clone(),
            threshold_pct: *threshold,
            force: *force,
            fail_on_regression: *fail_on_regression,
            output: output.clone(),
        }),
        Some(Command::Watch { run_dir, fps }) => live::watch(run_dir.as_deref(), *fps),
        Some(Command::Tune {
            payload,
            budget,
            latency_target,
            out,
        }) => {
            let options = TuneOptions {
                latency_target: *latency_target,
                out: out.clone(),
                runs_out: cli.out.clone(),
                quiet: cli.quiet,
                ..TuneOptions::new(payload, *budget)
            };
            tune_command(&options)
        }
    }
}

/// `soak tune`: exit 0 with a recommendation, 1 when nothing was healthy.
fn tune_command(options: &TuneOptions) -> ExitCode {
    match tune::tune(options) {
        Ok(report) => {
            print!("{}", tune::output::render(&report));
            ExitCode::from(if report.recommendation.is_some() {
                EXIT_PASS
            } else {
                EXIT_FAIL
            })
        }
        Err(err @ TuneError::Input(_)) => {
            eprintln!("soak tune: {err}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(err) => {
            eprintln!("soak tune: {err}");
            ExitCode::from(EXIT_FAIL)
        }
    }
}

/// A soak run: resolve the scenario, run it, write its report, summarize.
fn soak(cli: Cli) -> ExitCode {
    let config = match scenario::resolve(&cli.scenario) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("soak: {err}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let options = RunOptions {
        metrics_addr: cli.metrics_addr,
        sink: cli.sink_spec(),
        ..RunOptions::new(&cli.out)
    };
    let outcome = prepare(&config, &options).and_then(|prepared| {
        if let Some(addr) = prepared.metrics_addr() {
            let exposed = if addr.ip().is_loopback() {
                ""
            } else {
                " (reachable from the network)"
            };
            eprintln!("soak: metrics at http://{addr}/metrics{exposed}");
        }
        if live::wanted(cli.tui, cli.no_tui, cli.json) {
            live::run_with_dashboard(prepared, cli.fps)
        } else {
            prepared.run(&mut Progress::new(cli.quiet), None)
        }
    });
    let outcome = match outcome {
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
    match records::write_report(outcome.dir.path()) {
        Ok(path) => eprintln!("soak: report {}", path.display()),
        Err(err) => eprintln!("soak: warning: no report: {err}"),
    }
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
